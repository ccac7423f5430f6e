"""The reward audit: what a reward shaper makes optimal, found before anyone trains on it.

Hypothesis generates short markets (and, in fuzz mode, reward configs within the
ranges you give); on each, the exact oracle finds the action sequence that
maximizes the shaped return and the one that maximizes PnL, and the reference
policies play the same market. Findings are properties of the reward, each with
a stable ``kind``:

``rejection-in-optimum`` (error)
    The shaped optimum predicts an action the machine rejects, and every sequence
    without rejections earns strictly less: the reward pays for trying the
    impossible (the seed's V10.1 double bind).
``invalid-not-worse-than-hold`` (error)
    In some state a rejected action earns at least what HOLD earns on that step.
``idle-optimum`` (error)
    The shaped optimum never trades although trading makes money on that market.
``never-close-optimum`` (error)
    The shaped optimum opens a position and never closes it while the PnL optimum
    closes and earns more, or buy-and-never-sell beats the PnL optimum on shaped
    return while losing on PnL (the seed's V1-V9 collapse into buying).
``pnl-regret`` (error)
    The PnL of the shaped optimum falls short of the best PnL by more than the
    tolerance: the shaping changes what is optimal.
``weak-penalty`` (warning)
    The failed-action penalty is small against the spread of the per-step rewards
    an exploring (uniform random) policy sees, so a gradient learner barely feels
    it (the seed's V10: -0.05).

Each oracle finding is searched for with ``hypothesis.target`` (pushing towards the
worst case), then shrunk by Hypothesis to a minimal market: fewest steps, smallest
price moves. See ``docs/reward-audit.md``.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tradeguard._validation import check_int, check_number, suggest
from tradeguard.env import (
    EnvConfig,
    MarketSpec,
    RewardConfig,
    Scenario,
    load_scenario,
)
from tradeguard.errors import InvalidConfig, InvariantViolation
from tradeguard.invariants.audit._baseline import BaselineSpec, changed_optima, resolve_baseline
from tradeguard.invariants.audit._reference_policies import ReferencePolicy, reference_policies
from tradeguard.invariants.audit._reward_analysis import (
    _Analysis,
    _Auditor,
    _counterexample,
    _message,
    penalty_strength,
)
from tradeguard.invariants.audit._reward_report import (
    _CHANGED,
    _ORACLE_KINDS,
    REWARD_FINDING_KINDS,
    REWARD_SEVERITY,
    BaselineComparison,
    RewardAuditReport,
    RewardComponent,
    RewardCounterexample,
    RewardFinding,
    Severity,
    component_table,
)
from tradeguard.invariants.audit._reward_search import _explore, _Setup
from tradeguard.limits import AUDIT_EXAMPLES_PER_SECOND, MAX_AUDIT_EXAMPLES, MAX_AUDIT_HORIZON

__all__ = [
    "DEFAULT_AUDIT_BUDGET",
    "MAX_AUDIT_HORIZON",
    "REWARD_FINDING_KINDS",
    "REWARD_SEVERITY",
    "WEAK_PENALTY_RATIO",
    "BaselineComparison",
    "RewardAuditReport",
    "RewardComponent",
    "RewardCounterexample",
    "RewardFinding",
    "Severity",
    "assert_reward_sound",
    "audit_reward",
    "component_table",
    "penalty_strength",
]

DEFAULT_AUDIT_BUDGET = 20.0
"""Seconds one audit may take by default (measured under 30 s on 2 cores)."""

WEAK_PENALTY_RATIO = 1.0
"""``weak-penalty`` fires when |penalty| is below this many standard deviations of the
per-step reward (penalty excluded) a uniformly random policy sees."""

EXAMPLES_PER_SECOND = AUDIT_EXAMPLES_PER_SECOND
"""Markets explored per second of budget when ``max_examples`` is not given."""

MAX_EXAMPLES = MAX_AUDIT_EXAMPLES
"""The most markets one audit generates (the default, ``EXAMPLES_PER_SECOND * budget``, is capped there)."""


# ----------------------------------------------------------------------------- entry points


def default_max_examples(budget: float) -> int:
    """Markets an audit of ``budget`` seconds generates when not told: ``EXAMPLES_PER_SECOND``
    a second, at least 10 and at most ``MAX_EXAMPLES``."""
    return min(MAX_EXAMPLES, max(10, int(EXAMPLES_PER_SECOND * budget)))


def audit_reward(
    scenario_or_configs: Scenario | str | RewardConfig | tuple[EnvConfig, RewardConfig],
    *,
    baseline: BaselineSpec | None = None,
    budget: float = DEFAULT_AUDIT_BUDGET,
    seed: int | None = 0,
    max_examples: int | None = None,
    horizon: tuple[int, int] = (2, 6),
    max_move_bps: int = 500,
    fuzz: Mapping[str, tuple[float, float]] | None = None,
    pnl_tolerance: float = 0.01,
    weak_penalty_ratio: float = WEAK_PENALTY_RATIO,
    progress: Callable[[int, int, str], None] | None = None,
) -> RewardAuditReport:
    """Audit a reward config: search markets where its optimum is degenerate.

    Args:
        scenario_or_configs: A :class:`~tradeguard.env.Scenario`, a shipped scenario
            name (``"v10.1"``) or scenario file path, a :class:`RewardConfig` (with the
            default machine), or an ``(EnvConfig, RewardConfig)`` pair.
        baseline: The reward this one replaces (same forms, or a reward component or several
            on the same env, a factory of tradeguard's env, ``"module:name"`` of either); the
            report then lists the markets on which the optimal behaviour changes and the
            findings that are new.
        budget: Seconds the audit may take (the search stops generating at the budget).
        seed: Seed of the search; the same seed gives the same markets and findings
            when the budget is not exhausted. ``None``: random.
        max_examples: Markets to generate (default: ``EXAMPLES_PER_SECOND * budget``).
        horizon: Shortest and longest market, in steps (``1 <= lo <= hi <= 12``).
        max_move_bps: Largest price move per step, in basis points (1..5000).
        fuzz: Reward fields to draw per example, ``{"failed_action_penalty": (-2.0, 0.0)}``.
        pnl_tolerance: PnL shortfall, in percent of starting cash, that counts as regret.
        weak_penalty_ratio: ``weak-penalty`` fires below this ratio.
        progress: Called as ``progress(done, total, label)`` as the audit goes: the penalty
            measurement, each market searched (``total`` is ``max_examples``; the budget
            may stop the search before), each finding shrunk (the CLI draws it on stderr
            when attached to a terminal).

    Returns:
        The :class:`RewardAuditReport`.

    Raises:
        InvalidConfig: a bad argument, with what was expected.

    Example:
        >>> report = audit_reward("v10.1", budget=5, max_examples=30)
        >>> "rejection-in-optimum" in report.kinds, report.passed
        (True, False)
    """
    t0 = time.perf_counter()
    name, env, reward, market = _resolve(scenario_or_configs, "scenario_or_configs")
    check_number("budget", budget, min_value=0.0, min_exclusive=True, max_value=86_400)
    if seed is not None:
        check_int("seed", seed, min_value=0, max_value=2**63 - 1)
    if max_examples is None:
        max_examples = default_max_examples(budget)
    check_int("max_examples", max_examples, min_value=1, max_value=MAX_EXAMPLES)
    h_min, h_max = _check_horizon(horizon)
    check_int("max_move_bps", max_move_bps, min_value=1, max_value=5_000)
    check_number("pnl_tolerance", pnl_tolerance, min_value=0.0, max_value=100.0)
    check_number("weak_penalty_ratio", weak_penalty_ratio, min_value=0.0, max_value=1e6)
    fuzz_ranges = _check_fuzz(fuzz)
    base_resolved = None
    if baseline is not None:
        if fuzz_ranges:
            raise InvalidConfig(
                "baseline= and fuzz= cannot be combined: a baseline comparison audits two fixed "
                "configs. Run the fuzz audit and the baseline comparison separately."
            )
        baseline = resolve_baseline(baseline, Scenario(name=name, env=env, reward=reward, market=market))
        base_resolved = _resolve(baseline, "baseline")
        if base_resolved[1] != env:
            raise InvalidConfig(
                f"the baseline {base_resolved[0]!r} has a different [env] table than {name!r}; a "
                "baseline comparison changes the reward only. Give both the same machine settings."
            )
    start = max(1, round(market.start_price / market.minor_unit))
    setup = _Setup(env, reward, start, h_min, h_max, max_move_bps, fuzz_ranges, seed)
    deadline = t0 + budget
    explore_deadline = t0 + budget * 0.5
    auditor = _Auditor(
        env, pnl_tolerance=pnl_tolerance, deadline=explore_deadline, policies=_policies(env)
    )
    unit = env.minor_unit

    # weak-penalty: a measurement, not a search.
    if progress is not None:
        progress(0, max_examples, "measuring the failed-action penalty")
    findings: list[RewardFinding] = []
    ratio, spread = penalty_strength(env, reward, market, seed=seed or 0)
    weak_configs = [reward]
    if fuzz_ranges and "failed_action_penalty" in fuzz_ranges:
        # The weakest penalty of the range is its highest value.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            weak_configs.append(
                dataclasses.replace(reward, failed_action_penalty=fuzz_ranges["failed_action_penalty"][1])
            )
    for cfg in weak_configs:
        r_ratio, r_spread = (
            (ratio, spread) if cfg is reward else penalty_strength(env, cfg, market, seed=seed or 0)
        )
        if r_ratio < weak_penalty_ratio:
            findings.append(_weak_finding(cfg, r_ratio, r_spread, weak_penalty_ratio, market))
            break

    baseline_reward = base_resolved[2] if base_resolved is not None else None
    generated: list[tuple[RewardConfig, tuple[int, ...]]] = []
    _explore(setup, auditor, max_examples, baseline_reward, visited=generated, progress=progress)
    visited = list(dict.fromkeys(generated))  # Hypothesis may replay an example
    explored_budget_hit = auditor.budget_hit

    fired_counts: dict[str, int] = {}
    worst: dict[str, tuple[float, _Analysis]] = {}
    for key in visited:
        a = auditor.cache[key]
        for kind in a.fired:
            fired_counts[kind] = fired_counts.get(kind, 0) + 1
            score = a.scores[kind]
            if kind not in worst or score > worst[kind][0]:
                worst[kind] = (score, a)

    hunt_kinds = [k for k in _ORACLE_KINDS if k in fired_counts]
    changed_count = 0
    if baseline_reward is not None:
        for rw, prices in visited:
            b = auditor.cache.get((baseline_reward, prices))
            if b is not None and b.shaped.predicted != auditor.cache[(rw, prices)].shaped.predicted:
                changed_count += 1
        if changed_count:
            hunt_kinds.append(_CHANGED)

    # Shrink each kind that fired, sharing the rest of the budget.
    shrunk: dict[str, Any] = {}
    for i, kind in enumerate(hunt_kinds):
        if progress is not None:
            progress(i, len(hunt_kinds), f"shrinking the {kind} counterexample")
        remaining = deadline - time.perf_counter()
        auditor.deadline = time.perf_counter() + max(0.0, remaining) / (len(hunt_kinds) - i)
        result = _explore(setup, auditor, max_examples, baseline_reward, hunt=kind)
        if result is None:
            # Not reproduced within the budget: report the first market it fired on, unshrunk.
            for key in visited:
                a = auditor.cache[key]
                if kind == _CHANGED:
                    assert baseline_reward is not None
                    b = auditor.cache.get((baseline_reward, key[1]))
                    if b is not None and b.shaped.predicted != a.shaped.predicted:
                        result = (a, b)
                        break
                elif kind in a.fired:
                    result = a
                    break
        shrunk[kind] = result

    for kind in _ORACLE_KINDS:
        found: _Analysis | None = shrunk.get(kind)
        if found is None:
            continue
        a = found
        findings.append(
            RewardFinding(
                kind=kind,
                severity=REWARD_SEVERITY[kind],
                message=_message(kind, a, unit),
                counterexample=_counterexample(kind, a, unit),
                details={
                    "markets_fired": fired_counts.get(kind, 0),
                    "markets_explored": len(visited),
                    "worst_score": worst[kind][0],
                    "worst_prices": list(worst[kind][1].prices),
                },
                worst=(
                    None
                    if worst[kind][1] is a
                    else _counterexample(kind, worst[kind][1], unit)
                ),
            )
        )
    findings.sort(key=lambda f: (f.severity != "error", REWARD_FINDING_KINDS.index(f.kind)))

    comparison = None
    if base_resolved is not None and baseline_reward is not None:
        comparison = _compare(
            base_resolved[0], baseline_reward, auditor, visited, shrunk.get(_CHANGED), changed_count,
            findings, env, market, seed, weak_penalty_ratio, unit,
        )

    return RewardAuditReport(
        scenario=name,
        env=env,
        reward=reward,
        findings=tuple(findings),
        components=component_table(reward),
        examples=sum(1 for rw, _ in auditor.cache if rw == reward or rw != baseline_reward),
        seconds=time.perf_counter() - t0,
        budget=float(budget),
        budget_exhausted=explored_budget_hit or auditor.budget_hit,
        seed=seed,
        horizon=(h_min, h_max),
        explored=len(visited),
        fuzz=fuzz_ranges,
        baseline=comparison,
        penalty_ratio=ratio,
    )


def _compare(
    base_name: str,
    base_reward: RewardConfig,
    auditor: _Auditor,
    visited: list[tuple[RewardConfig, tuple[int, ...]]],
    changed: Any,
    changed_count: int,
    findings: list[RewardFinding],
    env: EnvConfig,
    market: MarketSpec,
    seed: int | None,
    weak_ratio: float,
    unit: float,
) -> BaselineComparison:
    base_kinds: set[str] = set()
    compared = 0
    for _, prices in visited:
        b = auditor.cache.get((base_reward, prices))
        if b is None:
            continue
        compared += 1
        base_kinds.update(b.fired)
    if penalty_strength(env, base_reward, market, seed=seed or 0)[0] < weak_ratio:
        base_kinds.add("weak-penalty")
    new_kinds = [f.kind for f in findings]
    cex = None
    if changed is not None:
        a, b = changed
        cex = RewardCounterexample(
            prices=a.prices,
            minor_unit=unit,
            reward=a.reward,
            shaped_optimal=a.shaped,
            pnl_optimal=a.pnl,
            others={"baseline shaped-optimal": b.shaped},
            detail={
                "pnl_change": a.shaped.pnl - b.shaped.pnl,
                "pnl_change_percent": a.shaped.pnl_percent - b.shaped.pnl_percent,
            },
        )
    return BaselineComparison(
        baseline=base_name,
        baseline_reward=base_reward,
        markets_compared=compared,
        markets_changed=changed_count,
        changed=cex,
        new_findings=tuple(k for k in REWARD_FINDING_KINDS if k in new_kinds and k not in base_kinds),
        resolved_findings=tuple(k for k in REWARD_FINDING_KINDS if k in base_kinds and k not in new_kinds),
        baseline_kinds=tuple(k for k in REWARD_FINDING_KINDS if k in base_kinds),
        changed_markets=changed_optima(
            (auditor.cache[(rw, prices)].shaped, auditor.cache[(base_reward, prices)].shaped)
            for rw, prices in visited
            if (base_reward, prices) in auditor.cache
        ),
    )


def _weak_finding(
    reward: RewardConfig, ratio: float, spread: float, threshold: float, market: MarketSpec
) -> RewardFinding:
    penalty = reward.failed_action_penalty
    if penalty > 0:
        what = f"The failed-action penalty is positive ({penalty:+g}): rejected actions are paid."
    elif penalty == 0:
        what = "There is no failed-action penalty (0): rejected actions cost nothing."
    else:
        frac = f"1/{1 / ratio:.0f}" if 0 < ratio < 1 else f"{ratio:.2f}x"
        what = (
            f"The failed-action penalty ({penalty:+g}) is {frac} of the spread of per-step rewards "
            f"({spread:.4f}, one standard deviation) a random exploring policy sees."
        )
    return RewardFinding(
        kind="weak-penalty",
        severity="warning",
        message=(
            f"{what} A gradient learner can barely tell a rejected action from an unlucky step "
            f"(the seed's V10: -0.05, 1/20th of a typical PnL reward, and the agent learned to spam "
            f"SELL_PARTIAL). Make |penalty| at least {threshold:g}x the spread "
            f"(here {threshold * spread:.4f}), or mask invalid actions."
        ),
        details={
            "ratio": ratio,
            "spread": spread,
            "penalty": penalty,
            "threshold": threshold,
            "market": {"kind": market.kind, "volatility": market.volatility, "drift": market.drift},
        },
    )


def assert_reward_sound(
    scenario_or_configs: Scenario | str | RewardConfig | tuple[EnvConfig, RewardConfig],
    *,
    allow: Iterable[str] = (),
    **kwargs: Any,
) -> RewardAuditReport:
    """Audit a reward and raise when it has an error-severity finding (for pytest).

    Args:
        scenario_or_configs: As for :func:`audit_reward`.
        allow: RewardFinding kinds to accept (reported, but not raised).
        **kwargs: Passed to :func:`audit_reward` (``budget``, ``seed``, ``baseline``...).

    Returns:
        The report, when it passes.

    Raises:
        InvariantViolation: an error-severity finding not in ``allow``; the message is
            the report, with each counterexample. It is an ``AssertionError``.

    Example:
        >>> assert_reward_sound("default", budget=5, max_examples=20).passed
        True
    """
    allowed = set(allow)
    for k in allowed:
        if k not in REWARD_FINDING_KINDS:
            raise InvalidConfig(
                f"allow contains {k!r}, which is not a finding kind; expected some of "
                f"{', '.join(REWARD_FINDING_KINDS)}.{suggest(k, REWARD_FINDING_KINDS)}"
            )
    report = audit_reward(scenario_or_configs, **kwargs)
    bad = [f for f in report.errors if f.kind not in allowed]
    if bad:
        raise InvariantViolation(
            f"reward audit failed: {', '.join(f.kind for f in bad)}\n\n{report.format()}"
        )
    return report


# ----------------------------------------------------------------------------- helpers


def _policies(env: EnvConfig) -> tuple[ReferencePolicy, ...]:
    return tuple(p for p in reference_policies(env))


def _resolve(
    value: Any, what: str
) -> tuple[str, EnvConfig, RewardConfig, MarketSpec]:
    if isinstance(value, Scenario):
        return value.name, value.env, value.reward, value.market
    if isinstance(value, str):
        sc = load_scenario(value)
        return sc.name, sc.env, sc.reward, sc.market
    if isinstance(value, RewardConfig):
        return "custom", EnvConfig(), value, MarketSpec()
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], EnvConfig)
        and isinstance(value[1], RewardConfig)
    ):
        return "custom", value[0], value[1], MarketSpec()
    raise InvalidConfig(
        f"{what}={value!r} is not a reward to audit; expected a Scenario, a scenario name or file, "
        "a RewardConfig, or an (EnvConfig, RewardConfig) pair."
    )


def _check_horizon(horizon: Any) -> tuple[int, int]:
    if not (isinstance(horizon, (tuple, list)) and len(horizon) == 2):
        raise InvalidConfig(f"horizon={horizon!r} must be a pair (shortest, longest) of step counts, e.g. (2, 6).")
    lo = check_int("horizon[0]", horizon[0], min_value=1, max_value=MAX_AUDIT_HORIZON)
    hi = check_int("horizon[1]", horizon[1], min_value=1, max_value=MAX_AUDIT_HORIZON)
    if lo > hi:
        raise InvalidConfig(f"horizon={horizon!r}: the shortest market is longer than the longest.")
    return lo, hi


_FUZZABLE = (
    "realized_pnl",
    "unrealized_pnl_change",
    "unrealized_pnl_level",
    "transaction_cost",
    "failed_action_penalty",
    "curriculum_min_share",
    "curriculum_weight",
    "curriculum_scale",
    "diversity_bonus",
)


def _check_fuzz(fuzz: Mapping[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]] | None:
    if not fuzz:
        return None
    out: dict[str, tuple[float, float]] = {}
    for name, rng in fuzz.items():
        if name not in _FUZZABLE:
            raise InvalidConfig(
                f"fuzz field {name!r} is not a numeric RewardConfig field; expected one of "
                f"{', '.join(_FUZZABLE)}.{suggest(name, _FUZZABLE)}"
            )
        if not (isinstance(rng, (tuple, list)) and len(rng) == 2):
            raise InvalidConfig(f"fuzz[{name!r}]={rng!r} must be a (low, high) pair.")
        lo = check_number(f"fuzz[{name!r}][0]", rng[0], min_value=-1e6, max_value=1e6)
        hi = check_number(f"fuzz[{name!r}][1]", rng[1], min_value=-1e6, max_value=1e6)
        if lo > hi:
            raise InvalidConfig(f"fuzz[{name!r}]=({lo}, {hi}): low is above high.")
        if name == "curriculum_min_share" and not (lo >= 0.0 and hi <= 1.0):
            raise InvalidConfig(f"fuzz['curriculum_min_share']=({lo}, {hi}) must lie in [0, 1].")
        out[name] = (lo, hi)
    return out
