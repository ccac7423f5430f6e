"""The invariant catalog: every check speaks only the trace model, never env internals."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

from tradeguard.invariants._accounting import (
    REL_TOL,
    _below,
    _declares,
    _equity_identity,
    _executed_within_requested,
    _fees_match_schedule,
    _fees_only_on_trades,
    _financing_as_declared,
    _flat_before,
    _leg_name,
    _leverage_within_limit,
    _long_only,
    _long_only_or_no_credit,
    _non_negative,
    _position_within_limits,
    _reported_equity,
    _ruin_ends_episode,
    _self_financing,
    _single_position,
)
from tradeguard.invariants._model import Context, Invariant
from tradeguard.trace import (
    BUY_KINDS,
    METRIC_ALIASES,
    StepRecord,
    Trace,
    TraceMeta,
    compute_metrics,
    total_reward,
)

__all__ = ["CATALOG", "REL_TOL", "get_invariant", "invariant_ids"]


_SELL_KINDS = frozenset({"reduce", "close"})


def _close(a: float, b: float, scale: float = 1.0) -> bool:
    return abs(a - b) <= REL_TOL * max(1.0, abs(a), abs(b), scale)


# --------------------------------------------------------------------------- the seed's three
def _no_sell_without_position(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    if r.legs is None and c.kind(r.executed) in _SELL_KINDS and r.position_before <= 0:
        return (
            f"{c.name(r.executed)} executed with position {c.units(r.position_before)} units (no "
            f"position to sell); predicted {c.name(r.predicted)}"
        )
    legs = r.instrument_legs()
    for i, leg in enumerate(legs):
        if leg.quantity < 0 and _below(leg.position_before + leg.quantity, 0, c, leg.position_before, leg.quantity):
            action = (f"{c.name(r.executed)}; predicted {c.name(r.predicted)}" if r.legs is None
                      else f"step {r.t}")
            return (
                f"sold {c.units(-leg.quantity)} units{_leg_name(c, i, len(legs))} holding only "
                f"{c.units(leg.position_before)} ({action})"
            )
    return None


def _executed_is_predicted_or_hold(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    if r.executed != r.predicted and r.executed != c.hold:
        return (
            f"executed {c.name(r.executed)} although {c.name(r.predicted)} was predicted; a step "
            f"executes what was predicted or, if rejected, {c.name(c.hold)}"
        )
    if r.rejected == (r.executed == r.predicted) and r.predicted != c.hold:
        state = "rejected" if r.rejected else "not rejected"
        return (
            f"predicted {c.name(r.predicted)}, executed {c.name(r.executed)}, but the step is "
            f"marked {state}"
        )
    return None


def _executed_counts(trace: Trace, c: Context) -> Iterable[tuple[int | None, str]]:
    n = len(c.meta.action_names)
    predicted = [0] * n
    executed = [0] * n
    for r in trace:
        if 0 <= r.predicted < n:
            predicted[r.predicted] += 1
        if 0 <= r.executed < n:
            executed[r.executed] += 1
    for a in range(n):
        if a != c.hold and executed[a] > predicted[a]:
            yield None, (
                f"{c.name(a)} executed {executed[a]} times but was predicted only {predicted[a]} "
                "times: something executed actions the agent did not choose"
            )


def _penalty_on_step(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    i = c.penalty_index
    if i is None:
        return None
    got = r.components[i]
    want = c.meta.failed_action_penalty if r.rejected else 0.0
    if got != want:
        what = f"rejected ({r.reason})" if r.rejected else "executed"
        return (
            f"failed-action penalty {got!r} on a step whose {c.name(r.predicted)} was {what}; "
            f"expected {want!r} (penalty {c.meta.failed_action_penalty!r} on rejected steps only)"
        )
    return None


def _penalty_total(trace: Trace, c: Context) -> Iterable[tuple[int | None, str]]:
    i = c.penalty_index
    if i is None:
        return
    rejections = sum(1 for r in trace if r.rejected)
    total = math.fsum(r.components[i] for r in trace)
    want = rejections * c.meta.failed_action_penalty
    if not _close(total, want):
        yield None, (
            f"failed-action penalty total {total!r} over {len(trace)} steps; expected "
            f"{rejections} rejections x {c.meta.failed_action_penalty!r} = {want!r}"
        )


# --------------------------------------------------------------------------- rules
def _no_add_without_profit(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    if c.kind(r.executed) != "add":
        return None
    if r.position_before <= 0:
        return f"{c.name(r.executed)} executed with no open position (position {r.position_before})"
    value = r.position_before * r.price
    if value <= r.cost_basis_before:
        return (
            f"{c.name(r.executed)} executed at price {c.money(r.price)} with the position worth "
            f"{c.money(value)} against a cost basis of {c.money(r.cost_basis_before)} (not profitable)"
        )
    return None


def _no_buy_in_position(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    if c.kind(r.executed) == "open" and not _flat_before(r, c):
        add = next((c.name(a) for a, kind in enumerate(c.kinds) if kind == "add"), None)
        return (
            f"{c.name(r.executed)} executed while already holding {r.position_before} units; "
            f"opening is only valid when flat{f' (adding is {add})' if add is not None else ''}"
        )
    return None


def _rejection_reason_holds(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    # The reasons of tradeguard's rule vocabulary (RejectReason) state a fact about the account
    # before the step; that fact must hold. Reasons of other names are not judged.
    if not r.rejected or r.reason is None:
        return None
    reason, before, what = str(r.reason), r.position_before, c.name(r.predicted)
    # A float ledger's residue (a closed position's -8.9e-16 units) is no position either; an env
    # that calls such a residue a position is not contradicted.
    if reason == "NO_POSITION" and not _flat_before(r, c):
        return f"{what} was rejected NO_POSITION while holding {c.units(before)} units"
    if reason == "ALREADY_IN_POSITION" and before == 0:
        return f"{what} was rejected ALREADY_IN_POSITION while flat"
    if reason == "NOT_PROFITABLE" and before != 0 and {"price", "cost_basis_before"} <= c.meta.supplies:
        value = before * r.price
        if value > r.cost_basis_before + c.meta.precision.tolerance(value, r.cost_basis_before):
            return (f"{what} was rejected NOT_PROFITABLE with the position worth {c.money(value)} against a "
                    f"cost basis of {c.money(r.cost_basis_before)} (a profit)")
    if reason == "DISABLED" and c.meta.disabled_actions and r.predicted not in c.meta.disabled_actions:
        return f"{what} was rejected DISABLED but the configuration does not disable it"
    if reason == "INSUFFICIENT_CASH":
        return _insufficient_cash(r, c, what)
    return None


def _insufficient_cash(r: StepRecord, c: Context, what: str) -> str | None:
    """A buy refused for want of cash while its smallest order (``TraceMeta.min_order`` units at
    the step's price, plus the declared fee on them) was affordable. Judged only when both are
    declared, for a long-only env's open or add, and the cash and price are supplied."""
    meta = c.meta
    least, schedule = meta.min_order, meta.fee_schedule
    if least is None or schedule is None or not meta.long_only or not {"price", "cash_before"} <= meta.supplies:
        return None
    if c.kind(r.predicted) not in BUY_KINDS:
        return None
    notional = least * r.price
    fee = schedule.expected(least, r.price)
    cost = notional + fee
    if _below(r.cash_before, cost, c, notional, fee):
        return None
    return (f"{what} was rejected INSUFFICIENT_CASH with cash {c.money(r.cash_before)}, but its smallest order, "
            f"{c.units(least)} units at {c.money(r.price)} plus a fee of {c.money(fee)}, costs {c.money(cost)}")


def _disabled_never_execute(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    if r.executed != c.hold and r.executed in c.meta.disabled_actions:
        return f"{c.name(r.executed)} executed but the configuration disables it"
    return None


def _mask_matches(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    mask = r.mask
    if mask is None:
        return None
    if len(mask) != len(c.meta.action_names):
        return f"mask has {len(mask)} entries for {len(c.meta.action_names)} actions"
    if not any(mask):
        return "the action mask is all False: no action is allowed, not even HOLD"
    if not 0 <= r.predicted < len(mask):
        return None
    allowed = mask[r.predicted]
    executed = not r.rejected
    if allowed != executed:
        said = "allowed" if allowed else "forbade"
        did = "it executed" if executed else f"it was rejected ({r.reason})"
        return f"the mask {said} {c.name(r.predicted)} but {did}"
    return None


_GROWS = {"open": "opened", "add": "added to", "buy": "bought into"}


def _allowed_executes(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    # A step the env did not reject must do what its action's kind says to the position. An
    # action the mask allows must not be rejected either (mask-matches-execution): so an
    # allowed action, unrejected, that leaves the position as it was is caught either way.
    if r.rejected or r.executed != r.predicted or r.reason is not None:
        return None
    kind = c.kind(r.executed)
    if kind not in ("open", "add", "buy", "reduce", "close"):
        return None
    before, after = r.position_before, r.position_after
    if kind == "open" and before != 0:
        return None  # opening while in a position is no-buy-while-in-position's finding
    tol = c.meta.precision.tolerance(before, after)
    if kind in _GROWS:
        ok = abs(after) > abs(before) + tol
        said = f"{_GROWS[kind]} the position"
    elif kind == "reduce":
        ok = abs(after) < abs(before) - tol
        said = "reduced the position"
    else:
        ok = abs(after) <= tol and before != 0
        said = "closed the position"
        if before == 0:
            return None  # closing nothing is no-sell-without-position's finding
    if ok:
        return None
    # The mask is not among what this invariant needs: named only where the adapter supplies it.
    masked = "mask" in c.meta.supplies and r.mask is not None and 0 <= r.predicted < len(r.mask) and r.mask[r.predicted]
    allowed = " (the mask allowed it)" if masked else ""
    return (
        f"{c.name(r.executed)}{allowed} executed, not rejected and with no reason, but the position went "
        f"{c.units(before)} -> {c.units(after)} units: a {kind} action must have {said}. An action the env "
        "cannot carry out must be rejected with a reason, not silently do nothing"
    )


def _initial_state(trace: Trace, c: Context) -> Iterable[tuple[int | None, str]]:
    if not trace.records:
        return
    r, m = trace.records[0], c.meta
    wrong: list[str] = []
    if m.initial_position is not None:
        held = [leg.position_before for leg in r.instrument_legs()]
        want = list(m.initial_position) if isinstance(m.initial_position, tuple) else [m.initial_position] * len(held)
        if len(want) != len(held) or any(abs(h - w) > m.precision.tolerance(h, w) for h, w in zip(held, want, strict=False)):
            wrong.append(f"holdings {'/'.join(c.units(h) for h in held)} units where the settings give "
                         f"{'/'.join(c.units(w) for w in want)}")
        if abs(r.cash_before - m.initial_cash) > m.precision.tolerance(r.cash_before, m.initial_cash, rounded=1):
            wrong.append(f"cash {c.money(r.cash_before)} where the settings give {c.money(m.initial_cash)}")
        flat = all(w == 0 for w in want)
        if flat and "cost_basis_before" in m.supplies and abs(r.cost_basis_before) > m.precision.tolerance(
                r.cost_basis_before, 0, rounded=1):
            wrong.append(f"a cost basis of {c.money(r.cost_basis_before)} for no position (nothing held, nothing paid)")
    if m.initial_equity is not None and abs(r.equity_before - m.initial_equity) > m.precision.tolerance(
            r.equity_before, m.initial_equity, rounded=1):
        wrong.append(f"equity {c.money(r.equity_before)} where the env reports {c.money(m.initial_equity)}")
    if wrong:
        yield r.t, (f"the ledger at reset holds {'; '.join(wrong)}: the episode does not start from the state "
                    "the env's settings and its own report promise (a reset that keeps the last episode's "
                    "position or cash?)")


def _declares_start(meta: TraceMeta) -> str | None:
    if meta.initial_position is None and meta.initial_equity is None:
        return "the trace declares no starting ledger (TraceMeta.initial_position, initial_equity)"
    return None


# --------------------------------------------------------------------------- rewards and metrics
def _reward_sum(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    # The sum is total_reward's: left to right from 0.0, what tradeguard's envs pay, the
    # same on every interpreter (never builtin sum(), which compensates from CPython 3.12).
    # An env that adds its components another way is within REL_TOL of the exact sum.
    if not r.components:
        return None
    total = total_reward(r.components)
    if r.reward != total and not _close(r.reward, math.fsum(r.components)):
        parts = ", ".join(
            f"{n}={v!r}" for n, v in zip(c.meta.component_names, r.components, strict=False) if v
        )
        return f"reward {r.reward!r} but its components sum to {total!r} ({parts or 'all zero'})"
    return None


def _finite(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    if not math.isfinite(r.reward):
        return f"reward is {r.reward!r}"
    if "components" not in c.meta.supplies:
        return None  # an env without reward components: the reward is all there is to check
    for name, v in zip(c.meta.component_names, r.components, strict=False):
        if not math.isfinite(v):
            return f"reward component {name} is {v!r}"
    return None


def _reward_is_pnl(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    if not c.meta.reward_is_pnl:
        return None
    penalty = r.components[c.penalty_index] if c.penalty_index is not None else 0.0
    shaped = r.reward - penalty
    pnl = (r.equity_after - r.equity_before) * c.meta.pnl_scale
    # The equities may each be rounded to the declared money step; the reward may have been
    # computed before that rounding: a money step of reward is within precision.
    rounding = abs(c.meta.pnl_scale) * c.meta.precision.money_step
    if not abs(shaped - pnl) <= rounding + REL_TOL * max(1.0, abs(shaped), abs(pnl),
                                                        abs(r.equity_before * c.meta.pnl_scale)):
        return (
            f"the reward claims to be PnL but pays {shaped!r} (penalty excluded) for an equity "
            f"change of {c.money(r.equity_after - r.equity_before)} = {pnl!r} reward units"
        )
    return None


def _metrics_match(trace: Trace, c: Context) -> Iterable[tuple[int | None, str]]:
    reported = c.reported
    if reported is None:
        return
    truth = compute_metrics(trace).as_dict()
    for key, value in reported.items():
        key = METRIC_ALIASES.get(key, key)  # (an unknown name is refused where the adapter hands them over)
        if key not in truth:
            continue
        want = truth[key]
        if isinstance(want, Mapping) and isinstance(value, Mapping):
            wrong = {
                k: (value.get(k, 0.0), w)
                for k, w in want.items()
                if not _close(float(value.get(k, 0.0)), float(w))
            }
            if wrong:
                shown = ", ".join(f"{k} reported {v!r}, trace says {w!r}" for k, (v, w) in wrong.items())
                yield None, f"{key} disagrees with the trace: {shown}"
        elif (
            isinstance(want, (int, float))
            and isinstance(value, (int, float))
            and not _close(float(value), float(want))
            and not (key == "episode_reward" and _within_running_sum(float(value), float(want), trace, c))
        ):
            yield None, f"{key} reported {value!r}; the trace gives {want!r}"


def _within_running_sum(reported: float, exact: float, trace: Trace, c: Context) -> bool:
    """Whether an env's running total of its rewards is the trace's sum within the trace's
    float precision: ``len(trace)`` additions, each rounded at most to the ulp of the sum
    of the rewards' magnitudes (a float32 env's total drifts by float32 ulps)."""
    if c.meta.exact:
        return False
    magnitudes = [abs(r.reward) for r in trace]
    bound = math.fsum(magnitudes)
    return abs(reported - exact) <= c.meta.precision.tolerance(*magnitudes, bound, reported, exact)


def _shows_position(meta: TraceMeta) -> str | None:
    if meta.hides_position:
        return "the env declares it hides the position on purpose (TraceMeta.hides_position)"
    if not {"position_after", "legs"} & meta.supplies:
        return "does not supply position_after or legs"
    return None


# --------------------------------------------------------------------------- nothing to check
def _no_penalty(meta: TraceMeta) -> str | None:
    if meta.penalty_component is not None and meta.penalty_component in meta.component_names:
        return None
    return "no failed-action penalty is declared (TraceMeta.penalty_component)"


def _nothing_disabled(meta: TraceMeta) -> str | None:
    return None if meta.disabled_actions else "no action is disabled (TraceMeta.disabled_actions)"


def _no_pnl_claim(meta: TraceMeta) -> str | None:
    return None if meta.reward_is_pnl else "the reward does not claim to be the PnL (TraceMeta.reward_is_pnl)"


def _no_kind(kind: str, what: str) -> Callable[[TraceMeta], str | None]:
    def idle(meta: TraceMeta) -> str | None:
        return None if kind in meta.action_kinds else f"no action {what} (no action kind {kind!r})"

    return idle


# --------------------------------------------------------------------------- the catalog
def _inv(**kw: object) -> Invariant:
    return Invariant(**kw)  # type: ignore[arg-type]


_F = frozenset
CATALOG: tuple[Invariant, ...] = (
    _inv(
        id="no-sell-without-position",
        statement="A sell executes only with an open position, and never sells more than is held "
        "(per instrument; long-only envs).",
        family="seed",
        scope="step",
        needs=_F({"executed", "position_before", "quantity"}),
        step_check=_no_sell_without_position,
        declared=_long_only,
    ),
    _inv(
        id="executed-never-exceeds-predicted",
        statement="Each step executes what was predicted or HOLD; no non-HOLD action executes "
        "more often than it was predicted.",
        family="seed",
        scope="step",
        needs=_F({"predicted", "executed", "rejected"}),
        step_check=_executed_is_predicted_or_hold,
        episode_check=_executed_counts,
    ),
    _inv(
        id="penalty-matches-rejections",
        statement="The failed-action penalty is applied on exactly the rejected steps; its total "
        "is rejections x penalty.",
        family="seed",
        scope="step",
        needs=_F({"rejected", "reason", "components"}),
        step_check=_penalty_on_step,
        episode_check=_penalty_total,
        idle=_no_penalty,
    ),
    _inv(
        id="no-add-without-profitable-position",
        statement="ADD_POSITION executes only on an open position whose value exceeds its cost basis.",
        family="rules",
        scope="step",
        needs=_F({"executed", "position_before", "cost_basis_before", "price"}),
        step_check=_no_add_without_profit,
        declared=_single_position,
        idle=_no_kind("add", "adds to a position"),
    ),
    _inv(
        id="no-buy-while-in-position",
        statement="An opening buy executes only when flat.",
        family="rules",
        scope="step",
        needs=_F({"executed", "position_before"}),
        step_check=_no_buy_in_position,
        declared=_single_position,
        idle=_no_kind("open", "opens a position"),
    ),
    _inv(
        id="disabled-actions-never-execute",
        statement="An action the configuration disables never executes.",
        family="rules",
        scope="step",
        needs=_F({"executed"}),
        step_check=_disabled_never_execute,
        idle=_nothing_disabled,
    ),
    _inv(
        id="mask-matches-execution",
        statement="An action is masked valid if and only if it would execute; the mask is never all False.",
        family="rules",
        scope="step",
        needs=_F({"mask", "predicted", "rejected", "reason"}),
        step_check=_mask_matches,
    ),
    _inv(
        id="equity-identity",
        statement="equity = cash + sum of position x price, before (at the execution price) and "
        "after (at the next price) every step.",
        family="accounting",
        scope="step",
        needs=_F({"price", "next_price", "position_before", "position_after", "cash_before", "cash_after", "equity_before", "equity_after"}),
        step_check=_equity_identity,
    ),
    _inv(
        id="self-financing",
        statement="Cash and position change only by the trade and its fee; equity changes only "
        "by position x price change minus fees: no value from nothing.",
        family="accounting",
        scope="step",
        needs=_F({"price", "next_price", "position_before", "position_after", "cash_before", "cash_after", "equity_before", "equity_after", "quantity", "fee"}),
        step_check=_self_financing,
    ),
    _inv(
        id="no-negative-position-or-cash",
        statement="Positions are never negative unless the env declares shorts, and cash never "
        "negative unless it declares borrowing.",
        family="accounting",
        scope="step",
        needs=_F({"executed", "position_before", "position_after", "cash_before", "cash_after"}),
        step_check=_non_negative,
        declared=_long_only_or_no_credit,
    ),
    _inv(
        id="fees-only-on-trades",
        statement="Fees are non-negative and charged only on steps that trade; HOLD trades nothing.",
        family="accounting",
        scope="step",
        needs=_F({"fee", "quantity", "executed"}),
        step_check=_fees_only_on_trades,
    ),
    _inv(
        id="fees-match-schedule",
        statement="Every fee charged is what the declared fee schedule charges for that trade.",
        family="accounting",
        scope="step",
        needs=_F({"fee", "quantity", "price"}),
        step_check=_fees_match_schedule,
        declared=_declares("fee_schedule", "fee schedule"),
    ),
    _inv(
        id="position-within-limits",
        statement="Every position stays within the position limits the env declares.",
        family="accounting",
        scope="step",
        needs=_F({"position_after"}),
        step_check=_position_within_limits,
        declared=_declares("position_limits", "position limits"),
    ),
    _inv(
        id="leverage-within-limit",
        statement="No trade leaves a gross exposure past the declared leverage times the equity it was "
        "sized on.",
        family="accounting",
        scope="step",
        needs=_F({"price", "quantity", "position_after", "equity_before", "cash_before", "cash_after"}),
        step_check=_leverage_within_limit,
        declared=_declares("max_leverage", "leverage limit"),
    ),
    _inv(
        id="financing-as-declared",
        statement="Interest and borrow costs accrue every step as the declared schedule says.",
        family="accounting",
        scope="step",
        needs=_F({"financing", "cash_before", "position_before", "price"}),
        step_check=_financing_as_declared,
        declared=_declares("financing_schedule", "financing schedule"),
    ),
    _inv(
        id="reported-equity-matches-ledger",
        statement="The portfolio value the env reports equals the ledger's equity after each step.",
        family="accounting",
        scope="step",
        needs=_F({"reported_equity", "equity_after", "cash_after"}),
        step_check=_reported_equity,
    ),
    _inv(
        id="ruin-ends-episode",
        statement="Once equity is at or below zero the episode ends, unless the env declares otherwise.",
        family="accounting",
        scope="step",
        needs=_F({"equity_before"}),
        step_check=_ruin_ends_episode,
        declared=_declares("ends_on_ruin", "end on ruin"),
    ),
    _inv(
        id="executed-within-requested",
        statement="Per instrument, the executed quantity never exceeds the requested one in size nor "
        "has the opposite sign; a partial fill or rejection carries a reason.",
        family="seed",
        scope="step",
        needs=_F({"legs"}),
        step_check=_executed_within_requested,
    ),
    _inv(
        id="allowed-actions-execute",
        statement="An action the env does not reject (and the mask allows) changes the position as its kind "
        "says: an open, add or buy grows it, a reduce shrinks it, a close flattens it.",
        family="rules",
        scope="step",
        needs=_F({"predicted", "executed", "rejected", "reason", "position_before", "position_after"}),
        step_check=_allowed_executes,
        declared=_single_position,
    ),
    _inv(
        id="rejection-reason-holds",
        statement="A rejection's reason is true of the account before the step: NO_POSITION only when flat, "
        "ALREADY_IN_POSITION only when holding, NOT_PROFITABLE only when the position is worth no more than "
        "its cost basis, DISABLED only for an action the configuration disables, INSUFFICIENT_CASH only when "
        "the smallest order (TraceMeta.min_order, with its fee) costs more than the cash (other reasons: not judged).",
        family="rules",
        scope="step",
        needs=_F({"predicted", "rejected", "reason", "position_before"}),
        step_check=_rejection_reason_holds,
        declared=_single_position,
    ),
    _inv(
        id="initial-state-consistent",
        statement="The ledger at reset (cash, holdings, equity; no cost basis when flat) is what the env's settings and its own "
        "report at reset say.",
        family="accounting",
        scope="episode",
        needs=_F({"cash_before", "position_before", "equity_before"}),
        episode_check=_initial_state,
        declared=_declares_start,
    ),
    _inv(
        id="reward-is-sum-of-components",
        statement="Every step's reward equals the sum of its named components.",
        family="rewards",
        scope="step",
        needs=_F({"reward", "components"}),
        step_check=_reward_sum,
    ),
    _inv(
        id="finite-rewards",
        statement="Rewards and reward components are finite (no NaN, no infinity).",
        family="rewards",
        scope="step",
        needs=_F({"reward"}),
        step_check=_finite,
    ),
    _inv(
        id="reward-consistent-with-pnl",
        statement="Where the reward claims to be PnL, each step's reward (penalty excluded) equals "
        "the equity change in reward units.",
        family="rewards",
        scope="step",
        needs=_F({"reward", "components", "equity_before", "equity_after"}),
        step_check=_reward_is_pnl,
        idle=_no_pnl_claim,
    ),
    _inv(
        id="metrics-match-trace",
        statement="Every reported metric, action distributions included, agrees with the same "
        "metric recomputed from the trace.",
        family="rewards",
        scope="episode",
        needs=_F({"reported_metrics"}),
        episode_check=_metrics_match,
    ),
    _inv(
        id="replay-determinism",
        statement="The same seed and actions give an identical trace and observations over a whole episode.",
        family="contract",
        scope="env",
    ),
    _inv(
        id="returned-data-not-reused",
        statement="No observation or info array is aliased across steps or resets, nor changed after it was returned.",
        family="contract",
        scope="env",
    ),
    _inv(
        id="observation-in-space",
        statement="Every observation, from reset and every step, lies in the observation space.",
        family="contract",
        scope="env",
    ),
    _inv(
        id="action-range-enforced",
        statement="Actions the action space does not contain (out of range, floats, None) raise "
        "instead of being silently taken as some other action; membership is action_space.contains.",
        family="contract",
        scope="env",
    ),
    _inv(
        id="valid-steps-do-not-raise",
        statement="reset() and step() with an action from the action space never raise.",
        family="contract",
        scope="env",
    ),
    _inv(
        id="step-after-end-refused",
        statement="step() after the episode ended raises a deliberate refusal (not a crash such as an IndexError "
        "from the data) instead of trading on.",
        family="contract",
        scope="env",
    ),
    _inv(
        id="seeding-honored",
        statement="reset(seed=s) makes the env's randomness and action_space.sample() reproducible, an unseeded "
        "reset reseeds neither to a constant, and the global numpy and random generators are left alone.",
        family="contract",
        scope="env",
    ),
    _inv(
        id="episode-length-as-configured",
        statement="An episode lasts the steps the env's settings declare, unless ruin ends it early.",
        family="contract",
        scope="env",
        declared=_declares("episode_length", "episode length"),
    ),
    _inv(
        id="position-observable",
        statement="Two reachable states on different sides of a position (flat, long, short) never give identical observations "
        "(a warning; an env that hides the position on purpose declares it).",
        family="contract",
        scope="env",
        declared=_shows_position,
        severity="warning",
    ),
    _inv(
        id="matches-reference",
        statement="Where a reference implementation is given, the env plays every episode as the reference "
        "does: the same observations, rewards, episode ends and trace records for the same settings, seed, "
        "market and actions.",
        family="contract",
        scope="env",
    ),
)

_BY_ID = {inv.id: inv for inv in CATALOG}



def invariant_ids() -> tuple[str, ...]:
    """The ids of every invariant in the catalog, in catalog order."""
    return tuple(_BY_ID)


def get_invariant(invariant_id: str) -> Invariant:
    """Look an invariant up by id; an unknown id raises with the closest match."""
    from tradeguard._validation import suggest
    from tradeguard.errors import InvalidConfig

    try:
        return _BY_ID[invariant_id]
    except KeyError:
        raise InvalidConfig(
            f"no invariant {invariant_id!r}; the catalog has {', '.join(_BY_ID)}."
            f"{suggest(invariant_id, _BY_ID)}"
        ) from None
