"""Differential checking: an env against a reference implementation it must match exactly.

A fast port of an env (vectorized, jitted, rewritten in another framework) is only as
good as its agreement with the env it replaces. ``matches-reference`` plays every example
on both, built with the same settings, with the same seed, market and actions, and reports
the first observation, reward, end of episode or trace record that differs.

The reference comes from the caller (``check_trading_env(..., reference=make_reference)``,
called like ``make_env``: with the drawn settings as keyword arguments) or from the
adapter's optional ``reference(env)`` hook (``reference="adapter"``), which returns a
zero-argument factory of the env that ``env`` must match, or ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from tradeguard.errors import InvalidConfig
from tradeguard.invariants._adapter import TraceAdapter
from tradeguard.invariants._contract import (
    EnvFactory,
    MaskedPlan,
    RecordedEpisode,
    _same,
    record_episode,
)
from tradeguard.invariants._model import Violation
from tradeguard.trace import StepRecord

__all__ = ["REFERENCE_INVARIANT", "ReferenceSpec", "check_matches_reference", "check_reference_spec",
           "declared_reference"]

REFERENCE_INVARIANT = "matches-reference"
"""The id of the invariant this module checks: a check of a pair (an env and its reference), left
out of a whole-catalog run that has no reference."""

ReferenceSpec = Callable[..., Any] | Literal["adapter"] | None
"""What ``check_trading_env(reference=...)`` takes: a factory of the reference env (called with the
same keyword arguments as the env's, i.e. the drawn settings), ``"adapter"`` (the adapter's
``reference(env)`` hook, if it has one), or ``None`` (no reference: ``matches-reference`` is not
applicable)."""

NO_REFERENCE = (
    "no reference env to compare with: give check_trading_env(reference=...), tradeguard check "
    "--reference, or an adapter reference(env) hook"
)


def check_reference_spec(reference: Any) -> None:
    """Refuse a ``reference=`` that is none of a callable, ``"adapter"`` and ``None``."""
    if reference is None or reference == "adapter" or callable(reference):
        return
    raise InvalidConfig(
        f"reference={reference!r} (a {type(reference).__name__}); expected a factory of the reference env "
        "(called like make_env, with the drawn settings as keyword arguments), 'adapter' (the adapter's "
        "reference(env) hook), or None (no reference)."
    )


def declared_reference(adapter: Any, env: Any) -> Callable[[], Any] | None:
    """The factory of the env ``env`` must match, from ``adapter``'s optional ``reference(env)`` hook.

    Raises:
        InvalidConfig: the hook returned something other than a zero-argument factory or ``None``.
    """
    hook = getattr(adapter, "reference", None)
    if not callable(hook):
        return None
    made: Callable[[], Any] | None = hook(env)
    if made is None or callable(made):
        return made
    name = getattr(adapter, "name", None) or type(adapter).__name__
    raise InvalidConfig(
        f"the {name} adapter's reference(env) returned a {type(made).__name__}; expected a zero-argument "
        "factory of the env that env must match step for step (e.g. lambda: ScalarEnv(**env.settings)), "
        "or None for none (docs/adapters.md, 'A reference env')."
    )


def check_matches_reference(
    make_env: EnvFactory,
    actions: Sequence[Any] | MaskedPlan,
    *,
    seed: int,
    options: dict[str, Any] | None = None,
    adapter: TraceAdapter | None = None,
    reference_of: Callable[[Any], Callable[[], Any]],
) -> list[Violation]:
    """The env and its reference (``reference_of(env)()``) play the same episode identically.

    The episode is played with ``options`` (the example's market) and, when there are options,
    once more without them: then each env draws its own market from the seed, so that the code
    that generates markets is compared too. Observations, rewards, the end of the episode, every
    trace record field and an exception raised (its type) must agree.
    """
    env = make_env()
    reference = reference_of(env)()
    out: list[Violation] = []
    for opts in (options, None) if options is not None else (None,):
        a = record_episode(env, actions, seed=seed, options=opts, adapter=adapter)
        b = record_episode(reference, actions, seed=seed, options=opts, adapter=adapter)
        found = _differs(a, b)
        if found is not None:
            market = "the example's market" if opts is not None else "the market the seed draws"
            out.append(Violation(
                invariant=REFERENCE_INVARIANT, step=found[0], seed=seed, replay=a.trace.meta.replay,
                message=f"on {market} (seed {seed}), the env and its reference differ: {found[1]} "
                "(the env's value first, then the reference's)",
            ))
            break
    return out


def _differs(a: RecordedEpisode, b: RecordedEpisode) -> tuple[int | None, str] | None:
    """The first difference, in the order the episode happened: the reset's observation, then each
    step's trace record (the ledger: cash, position, fee, reward...) before the observation it returned."""
    steps = min(len(a.trace.records), len(b.trace.records))
    for i in range(steps + 1):
        if i > 0:
            ra, rb = a.trace.records[i - 1], b.trace.records[i - 1]
            for name in StepRecord._fields:
                va, vb = getattr(ra, name), getattr(rb, name)
                if not _same(va, vb):
                    return ra.t, f"step {ra.t}'s {name} is {_shown(a, name, va)} against {_shown(a, name, vb)}"
        if i < len(a.observations) and i < len(b.observations) and not _same(a.observations[i], b.observations[i]):
            where = "reset" if i == 0 else f"step {i - 1}"
            return (None if i == 0 else i - 1), f"the observation from {where} differs: {_observation_difference(a.observations[i], b.observations[i])}"
    if len(a.observations) != len(b.observations):  # every common step agreed: one episode is longer
        return None, f"episode lengths differ ({len(a.observations) - 1} vs {len(b.observations) - 1} steps)"
    if a.ended != b.ended:
        return len(a.trace) - 1 if a.trace.records else None, (
            f"the episode {'ended' if a.ended else 'went on'} after step {len(a.trace) - 1} and the "
            f"reference's {'ended' if b.ended else 'went on'}"
        )
    ea, eb = type(a.error).__name__ if a.error else None, type(b.error).__name__ if b.error else None
    if ea != eb:
        step = len(a.trace)
        return step, f"at step {step} the env {f'raised {ea}' if ea else 'did not raise'} and the reference " + (
            f"raised {eb}" if eb else "did not") + (f" ({b.error})" if b.error else f" ({a.error})")
    return None


_MONEY = frozenset({"price", "next_price", "cash_before", "cash_after", "equity_before", "equity_after", "fee"})
_UNITS = frozenset({"position_before", "position_after", "quantity"})


def _shown(episode: RecordedEpisode, name: str, value: Any) -> str:
    """A record field as the ledger shows it: money in currency, positions in units."""
    meta = episode.trace.meta
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if name in _MONEY:
            return meta.money(value)
        if name in _UNITS:
            return f"{meta.units(value)} units"
    return repr(value)


def _observation_difference(x: Any, y: Any) -> str:
    """Where two observations differ: the first element that does, in full precision."""
    ax, ay = np.asarray(x), np.asarray(y)
    if ax.shape != ay.shape or ax.dtype != ay.dtype:
        return f"shape {ax.shape} dtype {ax.dtype} against shape {ay.shape} dtype {ay.dtype}"
    if ax.dtype.kind not in "biuf":
        return f"{x!r} against {y!r}"
    unequal = np.argwhere(~((ax == ay) | (np.isnan(ax) & np.isnan(ay)) if ax.dtype.kind == "f" else ax == ay))
    if not len(unequal):
        return f"{x!r} against {y!r}"
    at = tuple(int(i) for i in unequal[0])
    where = f"[{', '.join(map(str, at))}]" if at else ""
    return (f"element{where} is {ax[at].item()!r} against {ay[at].item()!r} "
            f"({len(unequal)} of {ax.size} element{'s' if ax.size != 1 else ''} differ)")
