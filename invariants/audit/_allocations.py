"""Continuous-action policies (``Box`` target weights): predicted vs executed per instrument,
and collapse to one allocation.

A policy that sends the same allocation whatever it observes has collapsed, exactly as a
discrete policy that always predicts one action; and an allocation the env cuts (a leg
executed below its request, or a rebalance rejected) is the continuous form of a rejected
action. :func:`audit_allocations` plays a policy on ``tradeguard/Portfolio-v0`` (or any env
whose records carry legs) over market families and says both, per instrument.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeguard.errors import InvalidConfig
from tradeguard.invariants import Violation, check_trace
from tradeguard.trace import Trace

__all__ = ["AllocationAuditReport", "InstrumentStats", "allocation_collapse", "audit_allocations"]

COLLAPSE_TOLERANCE = 0.01
"""Two allocations closer than this in every component count as the same one."""
COLLAPSE_LIMIT = 0.95
"""Share of steps on one allocation beyond which a policy has collapsed."""


def allocation_collapse(
    actions: Sequence[Any] | npt.NDArray[Any], *, tolerance: float = COLLAPSE_TOLERANCE, limit: float = COLLAPSE_LIMIT,
) -> str | None:
    """The continuous analogue of single-action collapse, or ``None``.

    Allocations are bucketed on a grid of ``tolerance`` per component; the share of steps
    in the most common bucket over ``limit`` is a collapse.

    Example:
        >>> allocation_collapse([[1.0, 0.0]] * 99 + [[0.5, 0.5]])
        '99.0% of 100 allocations are within 0.01 of [1, 0] (limit 95.0%): the policy sends one allocation whatever it observes'
        >>> allocation_collapse([[x / 10, 1 - x / 10] for x in range(10)]) is None
        True
    """
    arr = np.asarray(actions, dtype=np.float64)
    if arr.size == 0:
        return None
    arr = arr.reshape(len(arr), -1)
    keys = [tuple(row) for row in np.round(arr / tolerance).astype(np.int64).tolist()]
    (key, count), = Counter(keys).most_common(1)
    share = count / len(keys)
    if share <= limit:
        return None
    center = arr[[k == key for k in keys]].mean(axis=0)
    shown = ", ".join(f"{x:.4g}" if abs(x) >= 1e-9 else "0" for x in center.tolist())
    return (f"{share:.1%} of {len(keys)} allocations are within {tolerance:g} of [{shown}] "
            f"(limit {limit:.1%}): the policy sends one allocation whatever it observes")


@dataclass(frozen=True, slots=True)
class InstrumentStats:
    """One instrument's requested vs executed trading over an audit."""

    name: str
    requested_units: float
    executed_units: float
    legs_cut: int
    legs_asked: int

    @property
    def cut_rate(self) -> float:
        """Share of the legs that asked for a trade and executed less (or nothing)."""
        return self.legs_cut / self.legs_asked if self.legs_asked else 0.0


@dataclass(frozen=True, slots=True)
class AllocationAuditReport:
    """What a continuous-action policy did: per instrument, rejections, collapse, violations."""

    policy: str
    steps: int
    instruments: tuple[InstrumentStats, ...]
    rejection_rate: float
    reasons: dict[str, int]
    findings: tuple[str, ...]
    violations: tuple[Violation, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.findings and not self.violations

    def format(self) -> str:
        lines = [f"allocation audit of {self.policy}: {self.steps} steps", "",
                 f"  {'instrument':<12} {'requested units':>16} {'executed units':>15} {'legs cut':>10}"]
        for s in self.instruments:
            lines.append(f"  {s.name:<12} {s.requested_units:>16,.1f} {s.executed_units:>15,.1f} "
                         f"{s.cut_rate:>9.1%}")
        lines.append(f"  rejected rebalances: {self.rejection_rate:.1%}"
                     + (f"; reasons {dict(sorted(self.reasons.items()))}" if self.reasons else ""))
        lines += [f"  [collapse] {f}" for f in self.findings]
        lines += [f"  {v.headline()}" for v in self.violations[:5]]
        lines.append("PASS" if self.passed else "FAIL")
        return "\n".join(lines)


def _predict(policy: Any) -> Callable[[Any], Any]:
    predict = getattr(policy, "predict", None)
    if callable(predict):
        return lambda obs: predict(obs, deterministic=True)[0]
    if callable(policy):
        return policy  # type: ignore[no-any-return]
    raise InvalidConfig(f"policy={policy!r}; expected an SB3 model (with predict) or a callable obs -> action.")


def audit_allocations(
    policy: Any,
    make_env: Callable[[], Any],
    *,
    episodes: int = 2,
    kinds: Sequence[str] = ("trend", "crash", "flat", "random_walk"),
    seed: int = 0,
    tolerance: float = COLLAPSE_TOLERANCE,
    limit: float = COLLAPSE_LIMIT,
) -> AllocationAuditReport:
    """Play a ``Box``-action policy on ``make_env()``'s env over market families and audit it.

    Reports, per instrument, the units requested and executed and the share of legs cut;
    the rejected rebalances and their reasons; collapse to one allocation
    (:func:`allocation_collapse`); and every invariant violation of the traces.

    Args:
        policy: An SB3 model (``predict(obs, deterministic=True)``), or ``obs -> action``.
        make_env: Zero-argument factory of a ``tradeguard/Portfolio-v0``-like env (its
            ``trace`` records carry legs; it takes ``PortfolioEnv``'s ``prices`` reset option).
        episodes: Episodes per market family.
        kinds: Market families (:data:`tradeguard.env.MARKET_KINDS`).
        seed: Seed of the first episode (then ``seed + 1``, ...).

    Example:
        >>> import numpy as np
        >>> from tradeguard.env import make_portfolio_env
        >>> report = audit_allocations(lambda obs: np.array([1.0, 0.0, 0.0]), lambda: make_portfolio_env(steps=20))
        >>> report.findings[0].split(" (")[0]
        '100.0% of 160 allocations are within 0.01 of [1, 0, 0]'
    """
    from tradeguard.env import MarketSpec

    act = _predict(policy)
    actions: list[Any] = []
    traces: list[Trace] = []
    n = seed
    for kind in kinds:
        for _ in range(episodes):
            env = make_env()
            base = env.unwrapped
            # Each instrument its own path of this family, through the env's `prices` option.
            rng = np.random.default_rng(n)
            length, width = base.config.episode_length + 1, len(base.config.instruments)
            paths = [MarketSpec(kind=kind, start_price=100.0 * (1 + i / 2), volatility=0.02)  # type: ignore[arg-type]
                     .generate(length, rng).prices for i in range(width)]
            obs, _ = env.reset(seed=n, options={"prices": np.stack(paths, axis=1)})
            n += 1
            done = False
            while not done:
                a = np.asarray(act(obs))
                actions.append(a.reshape(-1).astype(np.float64))
                obs, _, terminated, truncated, _ = env.step(a)
                done = bool(terminated or truncated)
            traces.append(base.trace)
    meta = traces[0].meta
    names = meta.instruments or ("instrument 0",)
    req = [0.0] * len(names)
    exe = [0.0] * len(names)
    cut = [0] * len(names)
    asked = [0] * len(names)
    reasons: Counter[str] = Counter()
    rejected = steps = 0
    violations: list[Violation] = []
    for trace in traces:
        violations += check_trace(trace)
        for r in trace:
            steps += 1
            rejected += r.rejected
            if r.reason:
                reasons[r.reason] += 1
            for i, leg in enumerate(r.instrument_legs()):
                want = leg.requested if leg.requested is not None else leg.quantity
                req[i] += abs(want)
                exe[i] += abs(leg.quantity)
                if want:
                    asked[i] += 1
                    cut[i] += abs(leg.quantity) < abs(want)
    found = allocation_collapse(actions, tolerance=tolerance, limit=limit)
    return AllocationAuditReport(
        policy=getattr(policy, "__class__", type(policy)).__name__ if hasattr(policy, "predict") else
        getattr(policy, "__name__", "policy"),
        steps=steps,
        instruments=tuple(InstrumentStats(nm, req[i], exe[i], cut[i], asked[i]) for i, nm in enumerate(names)),
        rejection_rate=rejected / steps if steps else 0.0,
        reasons=dict(reasons),
        findings=() if found is None else (found,),
        violations=tuple(violations),
    )

