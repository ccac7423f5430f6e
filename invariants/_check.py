"""Checking traces against the catalog: every violation, with context and a replay command."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tradeguard.errors import InvariantViolation
from tradeguard.invariants._catalog import CATALOG, get_invariant
from tradeguard.invariants._model import Context, Invariant, Status, Violation
from tradeguard.trace import StepRecord, Trace, TraceMeta

__all__ = [
    "InvariantResult",
    "assert_trace",
    "check_reported_metrics",
    "check_trace",
    "compress_actions",
    "evaluate_trace",
    "format_steps",
    "raise_violations",
    "replay_command",
    "select",
    "trace_invariants",
]


def select(only: Iterable[str] | None = None) -> tuple[Invariant, ...]:
    """The catalog, or the invariants named in ``only`` (unknown ids raise with a suggestion)."""
    if only is None:
        return CATALOG
    return tuple(get_invariant(i) for i in only)


def trace_invariants(only: Iterable[str] | None = None) -> tuple[Invariant, ...]:
    """The invariants checkable on a recorded trace (scope ``step`` or ``episode``)."""
    return tuple(inv for inv in select(only) if inv.scope != "env")


def format_steps(records: Sequence[StepRecord], meta: TraceMeta, at: int | None, radius: int = 2) -> str:
    """Ledger lines for the steps around index ``at`` (the failing one marked ``>``)."""
    if not records:
        return ""
    lo, hi = (0, min(len(records), 2 * radius + 1)) if at is None else (
        max(0, at - radius),
        min(len(records), at + radius),
    )
    if at is not None:
        hi = max(hi, at + 1)
    lines = [
        f"       {'t':>4} {'price':>12} {'predicted':<13}   {'executed':<13} {'reason':<20}"
        f"{'position':>16} {'cash after':>14} {'fee':>8} {'reward':>10}"
    ]
    for i in range(lo, hi):
        r = records[i]
        mark = "  >" if i == at else "   "
        reason = r.reason or ""
        if r.legs is None:
            price = meta.money(r.price)
            position = f"{meta.units(r.position_before)} -> {meta.units(r.position_after)}"
            fee = meta.money(r.fee)
        else:  # several instruments: each one's price, position and fee, in the order of meta.instruments
            price = "/".join(meta.money(leg.price) for leg in r.legs)
            position = (f"{'/'.join(meta.units(leg.position_before) for leg in r.legs)} -> "
                        f"{'/'.join(meta.units(leg.position_after) for leg in r.legs)}")
            fee = "/".join(meta.money(leg.fee) for leg in r.legs)
        lines.append(
            f"    {mark}{r.t:>4} {price:>12} {meta.action_name(r.predicted):<13} -> "
            f"{meta.action_name(r.executed):<13} {reason:<20}"
            f"{position:>16} {meta.money(r.cash_after):>14} "
            f"{fee:>8} {r.reward:>+10.4f}"
        )
    return "\n".join(lines)


def replay_command(meta: TraceMeta, records: Sequence[StepRecord], upto: int | None) -> str | None:
    """``tradeguard run ... --actions ...`` replaying the predicted actions through index ``upto``."""
    if meta.replay is None:
        return None
    end = len(records) if upto is None else upto + 1
    return f"tradeguard run {meta.replay} --actions {compress_actions([r.predicted for r in records[:end]])}"


def compress_actions(actions: Sequence[int]) -> str:
    """Actions as ``tradeguard run --actions`` reads them, runs shortened: ``4x500,1,0x3``."""
    parts: list[str] = []
    i = 0
    while i < len(actions):
        j = i
        while j < len(actions) and actions[j] == actions[i]:
            j += 1
        run = j - i
        parts.append(f"{actions[i]}x{run}" if run > 2 else ",".join([str(actions[i])] * run))
        i = j
    return ",".join(parts)


def _violation(inv: Invariant, trace: Trace, index: int | None, message: str) -> Violation:
    records = trace.records
    step = records[index].t if index is not None else None
    return Violation(
        invariant=inv.id,
        step=step,
        message=message,
        seed=trace.meta.seed,
        context=format_steps(records, trace.meta, index),
        replay=replay_command(trace.meta, records, index),
    )


def _check_one(inv: Invariant, trace: Trace, ctx: Context) -> list[Violation]:
    out: list[Violation] = []
    if inv.step_check is not None:
        check = inv.step_check
        prev: StepRecord | None = None
        for i, r in enumerate(trace.records):
            msg = check(prev, r, ctx)
            if msg is not None:
                out.append(_violation(inv, trace, i, msg))
            prev = r
    if inv.episode_check is not None:
        for step, msg in inv.episode_check(trace, ctx):
            index = None
            if step is not None:
                index = next((i for i, r in enumerate(trace.records) if r.t == step), None)
            out.append(_violation(inv, trace, index, msg))
    return out


@dataclass(frozen=True, slots=True)
class InvariantResult:
    """One invariant's verdict on one trace."""

    invariant: Invariant
    status: Status
    violations: tuple[Violation, ...] = ()


def evaluate_trace(
    trace: Trace,
    *,
    only: Iterable[str] | None = None,
    reported: Mapping[str, Any] | None = None,
) -> list[InvariantResult]:
    """Every trace invariant's status on ``trace``: pass, fail, or not-applicable.

    An invariant whose fields the trace's producer does not supply (``meta.supplies``)
    is ``not-applicable``, never ``pass``.
    """
    ctx = Context.of(trace.meta, reported)
    results = []
    for inv in trace_invariants(only):
        if not inv.applicable(trace.meta, reported=reported is not None):
            results.append(InvariantResult(inv, "not-applicable"))
            continue
        found = _check_one(inv, trace, ctx)
        results.append(InvariantResult(inv, "fail" if found else "pass", tuple(found)))
    return results


def check_trace(
    trace: Trace,
    *,
    only: Iterable[str] | None = None,
    reported: Mapping[str, Any] | None = None,
) -> list[Violation]:
    """Check ``trace`` against the catalog (or the invariants in ``only``); return every violation.

    Args:
        trace: The episode to check.
        only: Invariant ids to check; all trace invariants by default.
        reported: Metrics some evaluator reported for this episode (for example the
            ``--json`` of ``tradeguard run``); enables ``metrics-match-trace``.

    Returns:
        Every violation, in catalog order then step order: not only the first.

    Example:
        >>> from tradeguard.env import TradingEnv, parse_policy, run_episode
        >>> trace = run_episode(TradingEnv(scenario="v10"), parse_policy("random"), seed=0)
        >>> check_trace(trace)
        []
    """
    return [v for res in evaluate_trace(trace, only=only, reported=reported) for v in res.violations]


def check_reported_metrics(trace: Trace, reported: Mapping[str, Any]) -> list[Violation]:
    """Check an evaluator's reported metrics against the trace (``metrics-match-trace``).

    Example: the seed's Bug #1, an evaluator that counted predicted actions:

        >>> from tradeguard.env import TradingEnv, parse_policy, run_episode
        >>> trace = run_episode(TradingEnv(scenario="v10"), parse_policy("constant:SELL_PARTIAL"), seed=0)
        >>> wrong = {"action_distribution_executed": {"SELL_PARTIAL": 1.0}}
        >>> print(check_reported_metrics(trace, wrong)[0].message)  # doctest: +ELLIPSIS
        action_distribution_executed disagrees with the trace: HOLD reported 0.0, trace says 1.0, SELL_PARTIAL reported 1.0, trace says 0.0
    """
    return check_trace(trace, only=["metrics-match-trace"], reported=reported)


def raise_violations(violations: Sequence[Violation], *, what: str = "trace") -> None:
    """Raise :class:`InvariantViolation` listing every violation, if there is any."""
    if not violations:
        return
    ids = sorted({v.invariant for v in violations})
    head = f"{len(violations)} invariant violation(s) in the {what} ({', '.join(ids)}):"
    shown = "\n\n".join(str(v) for v in violations[:20])
    more = f"\n\n... and {len(violations) - 20} more" if len(violations) > 20 else ""
    raise InvariantViolation(f"{head}\n\n{shown}{more}")


def assert_trace(
    trace: Trace,
    *,
    only: Iterable[str] | None = None,
    reported: Mapping[str, Any] | None = None,
) -> None:
    """Raise :class:`~tradeguard.errors.InvariantViolation` (an AssertionError) listing every
    violation of the catalog in ``trace``; return quietly when all hold."""
    raise_violations(check_trace(trace, only=only, reported=reported))
