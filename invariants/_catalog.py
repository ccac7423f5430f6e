"""The invariant catalog: every check speaks only the trace model, never env internals."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

from tradeguard.invariants._model import Context, Invariant
from tradeguard.trace import (
    FeeSchedule,
    Leg,
    Number,
    StepRecord,
    Trace,
    TraceMeta,
    compute_metrics,
    total_reward,
)

__all__ = ["CATALOG", "REL_TOL", "get_invariant", "invariant_ids"]

REL_TOL = 1e-9
"""Relative tolerance of float reward identities (money identities are exact integers)."""

_SELL_KINDS = frozenset({"reduce", "close"})


def _close(a: float, b: float, scale: float = 1.0) -> bool:
    return abs(a - b) <= REL_TOL * max(1.0, abs(a), abs(b), scale)


# --------------------------------------------------------------------------- precision
def _same(got: Number, want: Number, c: Context, *terms: Number, rounded: int = 0) -> bool:
    """``got == want`` on an exact ledger; within the trace's declared precision otherwise.

    The tolerance comes from :meth:`Precision.tolerance` over ``got``, ``want`` and the
    ``terms`` that made them, and ``rounded`` stored amounts the env rounds. NaN never passes.
    """
    precision = c.meta.precision
    if precision.exact:
        return bool(got == want)
    return abs(got - want) <= precision.tolerance(got, want, *terms, rounded=rounded)


def _below(value: Number, limit: Number, c: Context, *terms: Number) -> bool:
    """``value < limit``, beyond the trace's precision (a float that rounds just under is not)."""
    precision = c.meta.precision
    if precision.exact:
        return bool(value < limit)
    return value < limit - precision.tolerance(value, limit, *terms)


def _leg_name(c: Context, i: int, n: int) -> str:
    return f" of {c.meta.instrument(i)}" if n > 1 or c.meta.instruments else ""


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
    if c.kind(r.executed) == "open" and r.position_before != 0:
        add = next((c.name(a) for a, kind in enumerate(c.kinds) if kind == "add"), None)
        return (
            f"{c.name(r.executed)} executed while already holding {r.position_before} units; "
            f"opening is only valid when flat{f' (adding is {add})' if add is not None else ''}"
        )
    return None


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


# --------------------------------------------------------------------------- accounting
def _equity_identity(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    legs = r.instrument_legs()
    for when, cash, equity, marks in (
        ("before the step", r.cash_before, r.equity_before, [(leg.position_before, leg.price) for leg in legs]),
        ("after the step", r.cash_after, r.equity_after, [(leg.position_after, leg.next_price) for leg in legs]),
    ):
        values = [q * p for q, p in marks]
        computed = cash + sum(values) if c.meta.exact else cash + math.fsum(values)
        if not _same(equity, computed, c, cash, *values, rounded=1):
            held = " + ".join(
                f"{c.meta.instrument(i) + ' ' if len(legs) > 1 else ''}{c.units(q)} units x {c.money(p)}"
                for i, (q, p) in enumerate(marks)
            )
            return (
                f"equity {when} is {c.money(equity)} but cash {c.money(cash)} + {held} = "
                f"{c.money(computed)}{_off_by(equity, computed, c)}"
            )
    return None


def _self_financing(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    legs = r.instrument_legs()
    n = len(legs)
    if prev is not None:
        if not _same(prev.cash_after, r.cash_before, c):
            return (f"cash jumped between steps {prev.t} and {r.t}: {c.money(prev.cash_after)} after, "
                    f"{c.money(r.cash_before)} before")
        for i, (was, now) in enumerate(zip(prev.instrument_legs(), legs, strict=False)):
            for name, a, b in (("position", was.position_after, now.position_before),
                               ("price", was.next_price, now.price)):
                if not _same(a, b, c):
                    shown = (c.units(a), c.units(b)) if name == "position" else (c.money(a), c.money(b))
                    return (f"{name}{_leg_name(c, i, n)} jumped between steps {prev.t} and {r.t}: "
                            f"{shown[0]} after, {shown[1]} before")
    for i, leg in enumerate(legs):
        if not _same(leg.position_after - leg.position_before, leg.quantity, c,
                     leg.position_before, leg.position_after):
            return (
                f"position{_leg_name(c, i, n)} went {c.units(leg.position_before)} -> "
                f"{c.units(leg.position_after)} units but the trade was {c.units(leg.quantity)} units"
                if leg.quantity < 0 else
                f"position{_leg_name(c, i, n)} went {c.units(leg.position_before)} -> "
                f"{c.units(leg.position_after)} units but the trade was +{c.units(leg.quantity)} units"
            )
    exact = c.meta.exact
    if r.legs is not None:
        leg_fees = [leg.fee for leg in legs]
        total_fee = sum(leg_fees) if exact else math.fsum(leg_fees)
        if not _same(r.fee, total_fee, c, *leg_fees):
            return f"the step's fee is {c.money(r.fee)} but its legs' fees add up to {c.money(total_fee)}"
    notionals = [leg.quantity * leg.price for leg in legs]
    traded = sum(notionals) if exact else math.fsum(notionals)
    financing = r.financing if "financing" in c.meta.supplies else 0
    cash_change = r.cash_after - r.cash_before
    expected_cash = -traded - r.fee - financing
    if not _same(cash_change, expected_cash, c, r.cash_before, r.cash_after, *notionals, r.fee, financing,
                 rounded=1):
        trade = (f"the trade of {c.units(legs[0].quantity) if legs[0].quantity < 0 else '+' + c.units(legs[0].quantity)} "
                 f"units at {c.money(legs[0].price)}" if n == 1 else f"trades worth {c.money(traded)}")
        also = f" and financing {c.money(financing)}" if financing else ""
        return (
            f"cash changed by {c.money(cash_change)} but {trade} with fee {c.money(r.fee)}{also} accounts "
            f"for {c.money(expected_cash)}: {_unaccounted(cash_change, expected_cash, c)}"
        )
    moves = [leg.position_after * (leg.next_price - leg.price) for leg in legs]
    change = r.equity_after - r.equity_before
    expected = (sum(moves) if exact else math.fsum(moves)) - r.fee - financing
    if not _same(change, expected, c, *_account_terms(r, legs), *moves, r.fee, financing, rounded=2):
        if n == 1:
            held = (f"holding {c.units(legs[0].position_after)} units through {c.money(legs[0].price)} -> "
                    f"{c.money(legs[0].next_price)}")
        else:
            held = f"price moves on the positions held ({c.money(expected + r.fee + financing)})"
        also = f" and financing {c.money(financing)}" if financing else ""
        return (
            f"equity changed by {c.money(change)}; {held} minus fee {c.money(r.fee)}{also} accounts "
            f"for {c.money(expected)}: {_unaccounted(change, expected, c)}"
        )
    return None


def _account_terms(r: StepRecord, legs: tuple[Leg, ...]) -> list[Number]:
    """The stored amounts an equity is made of, before and after: its float error is theirs."""
    return [r.equity_before, r.equity_after, r.cash_before, r.cash_after,
            *(leg.position_before * leg.price for leg in legs), *(leg.position_after * leg.next_price for leg in legs)]


def _off_by(got: Number, want: Number, c: Context) -> str:
    """`` (off by 0.01)``: how far apart two amounts are, on an inexact ledger."""
    if c.meta.exact or not (math.isfinite(got) and math.isfinite(want)):
        return ""
    return f" (off by {c.money(got - want)}; precision {c.meta.precision.describe()})"


def _unaccounted(change: Number, expected: Number, c: Context) -> str:
    """What a change the trade does not account for means: money made up, or money gone."""
    if change > expected:
        return "value from nothing" + ("" if c.meta.exact else f" ({c.money(change - expected)} appeared)")
    if change < expected:
        return f"value lost ({c.money(expected - change)} vanished)"
    return "a change that is not a number"  # NaN compares neither way


def _non_negative(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    # On a float ledger "zero" is as precise as the terms that made it: all the cash spent on
    # a fractional position leaves -3.5e-13, which is zero within float64 of 10,000.00. A
    # "before" value that is the previous step's "after" was checked with the magnitudes
    # that made it, not again with this step's (a -1.1e-13 left by a buy at 85.43 is not
    # negative beyond the precision of a step at 0.85). Tolerance terms come from the
    # fields the producer supplies, beyond the ones this check needs.
    legs = r.instrument_legs()
    supplied = c.meta.supplies
    was = prev.instrument_legs() if prev is not None else ()
    after = c.name(r.executed) if r.legs is None and "executed" in supplied else f"step {r.t}"
    priced = "price" in supplied and "next_price" in supplied
    scale = [] if c.meta.exact else _supplied_terms(r, legs, supplied, priced)
    if c.meta.long_only:
        for i, leg in enumerate(legs):
            checks = [("position", leg.position_after, leg.next_price)]
            if not (i < len(was) and was[i].position_after == leg.position_before):
                checks.append(("position before", leg.position_before, leg.price))
            for name, value, price in checks:
                # A position is below zero when its value is, beyond the account's precision.
                if value < 0 and (_below(value * price, 0, c, *scale) if priced else
                                  _below(value, 0, c, leg.position_before, leg.position_after)):
                    return (f"{name}{_leg_name(c, i, len(legs))} is {c.units(value)} units (negative) after "
                            f"{after}; the env is long-only")
    if not c.meta.borrows_cash:
        cash = [("cash", r.cash_after)]
        if prev is None or prev.cash_after != r.cash_before:
            cash.append(("cash before", r.cash_before))
        for name, value in cash:
            if _below(value, 0, c, *scale):
                return f"{name} is {c.money(value)} (negative) after {after}; the env declares no credit"
    return None


def _supplied_terms(r: StepRecord, legs: tuple[Leg, ...], supplied: frozenset[str], priced: bool) -> list[Number]:
    """The stored amounts of a step the producer supplies, whose float error a value may carry."""
    terms: list[Number] = [getattr(r, f) for f in ("equity_before", "equity_after", "cash_before", "cash_after", "fee")
                           if f in supplied]
    if priced:
        terms += [leg.position_before * leg.price for leg in legs]
        terms += [leg.position_after * leg.next_price for leg in legs]
        if "quantity" in supplied:
            terms += [leg.quantity * leg.price for leg in legs]
    return terms


def _long_only_or_no_credit(meta: TraceMeta) -> str | None:
    if not meta.long_only and meta.borrows_cash:
        return "the trace declares shorts and borrowing (long_only=False, borrows_cash=True)"
    return None


def _fees_only_on_trades(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    legs = r.instrument_legs()
    for i, leg in enumerate(legs):
        where = _leg_name(c, i, len(legs))
        if leg.fee < 0:
            return f"negative fee{where} {c.money(leg.fee)} (a fee is a cost)"
        if leg.fee > 0 and leg.quantity == 0:
            what = c.name(r.executed) if "executed" in c.meta.supplies and r.legs is None else f"step {r.t}"
            return f"fee{where} {c.money(leg.fee)} charged on a step that traded nothing ({what})"
    if r.legs is not None and r.fee < 0:
        return f"negative fee {c.money(r.fee)} (a fee is a cost)"
    if "executed" in c.meta.supplies and r.executed == c.hold and r.legs is None and r.quantity != 0:
        return f"{c.units(r.quantity)} units traded on a {c.name(c.hold)}"
    return None


def _fees_match_schedule(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    schedule = c.meta.fee_schedule
    if schedule is None:
        return None
    legs = r.instrument_legs()
    rounded = 1 if (schedule.step or c.meta.precision.money_step) else 0
    for i, leg in enumerate(legs):
        charged = r.fee if r.legs is None and i == 0 else leg.fee
        try:
            want = schedule.expected(leg.quantity, leg.price)
        except Exception as exc:  # the declared function failed: the adapter's mistake, named
            return f"the declared fee schedule raised {type(exc).__name__}: {exc} on {c.units(leg.quantity)} units"
        notional = abs(leg.quantity * leg.price)
        if c.meta.exact:
            ok = abs(charged - want) <= REL_TOL * max(1.0, abs(want), notional)
        else:
            ok = _same(charged, want, c, notional, rounded=rounded)
        if not ok:
            return (
                f"fee{_leg_name(c, i, len(legs))} charged {c.money(charged)} on {c.units(leg.quantity)} units at "
                f"{c.money(leg.price)} (notional {c.money(notional)}); the declared schedule "
                f"({_describe_schedule(schedule, c)}) charges {c.money(want)}"
                f"{' - charged twice?' if want > 0 and abs(charged - 2 * want) <= abs(want) * 1e-6 else ''}"
            )
    return None


def _describe_schedule(s: FeeSchedule, c: Context) -> str:
    if s.function is not None:
        return getattr(s.function, "__name__", "a function")
    parts = []
    if s.rate:
        parts.append(f"{s.rate * 10_000:g} bps")
    if s.fixed:
        parts.append(f"{c.money(s.fixed)} a trade")
    if s.minimum:
        parts.append(f"at least {c.money(s.minimum)}")
    if s.rounding != "none":
        parts.append(f"rounded {s.rounding} to {s.step:g}")
    return ", ".join(parts) or "free"


def _position_within_limits(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    legs = r.instrument_legs()
    limits = c.meta.position_limits
    if limits is None:
        return None
    lo, hi = limits
    for i, leg in enumerate(legs):
        q = leg.position_after
        if _below(q, lo, c) or _below(hi, q, c):
            side = "short" if q < 0 else "long"
            return (f"position{_leg_name(c, i, len(legs))} is {c.units(q)} units after step {r.t}, "
                    f"beyond the declared limits {c.units(lo)}..{c.units(hi)} (a {side} past its limit)")
    return None


def _leverage_within_limit(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    legs = r.instrument_legs()
    lev = c.meta.max_leverage
    if lev is not None and any(leg.quantity != 0 for leg in legs):
        # What the trade left, at the price it executed at, against the equity it was sized on.
        values = [leg.position_after * leg.price for leg in legs]
        gross = math.fsum(abs(v) for v in values)
        equity = r.equity_before
        if equity > 0 and _below(lev * equity, gross, c, r.cash_before, r.cash_after, *values):
            return (f"step {r.t} left a gross exposure of {c.money(gross)} on equity {c.money(equity)} "
                    f"({gross / equity:.3g}x), past the declared leverage limit of {lev:g}x")
    return None


def _financing_as_declared(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    schedule = c.meta.financing_schedule
    if schedule is None:
        return None
    try:
        want = schedule.expected(r.cash_before, r.instrument_legs(), r)
    except Exception as exc:
        return f"the declared financing schedule raised {type(exc).__name__}: {exc}"
    if c.meta.exact:
        ok = abs(r.financing - want) <= REL_TOL * max(1.0, abs(want), abs(r.cash_before))
    else:
        ok = _same(r.financing, want, c, r.cash_before, rounded=1)
    if not ok:
        what = "no interest or borrow cost" if r.financing == 0 else f"financing of {c.money(r.financing)}"
        return (f"{what} charged on step {r.t} with cash {c.money(r.cash_before)}; the declared schedule "
                f"charges {c.money(want)}")
    return None


def _reported_equity(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    reported = r.reported_equity
    if reported is None:
        return None
    if not _same(reported, r.equity_after, c, rounded=1):
        return (f"the env reports a portfolio value of {c.money(reported)} after step {r.t}; its ledger "
                f"says {c.money(r.equity_after)} (cash {c.money(r.cash_after)} plus positions at the "
                f"next price){_off_by(reported, r.equity_after, c)}")
    return None


def _ruin_ends_episode(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    # Equity before a step is the previous step's equity after (self-financing checks that).
    if r.equity_before <= 0:
        return (
            f"step {r.t} traded on ({c.name(r.predicted) if 'predicted' in c.meta.supplies else 'a step'}) "
            f"with equity {c.money(r.equity_before)} at its start; a ruined account must end the "
            "episode (declare ends_on_ruin=False if yours trades on by design)"
        )
    return None


def _executed_within_requested(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    if r.legs is None:
        return None
    for i, leg in enumerate(r.legs):
        req = leg.requested
        if req is None:
            continue
        where = f"{c.meta.instrument(i)}: "
        q = leg.quantity
        if q != 0 and (req == 0 or (q > 0) != (req > 0)):
            return (f"{where}executed {c.units(q)} units although {c.units(req)} were requested "
                    "(the opposite side, or a trade nobody asked for)")
        if _below(abs(req), abs(q), c, req, q):
            return f"{where}executed {c.units(q)} units, more than the {c.units(req)} requested"
        if ({"rejected", "reason"} <= c.meta.supplies and _below(abs(q), abs(req), c, req, q)
                and not r.rejected and r.reason is None):
            return (f"{where}executed {c.units(q)} of the {c.units(req)} units requested, with no rejection "
                    "and no reason: a partial fill or a rejection must say why")
    return None


def _single_position(meta: TraceMeta) -> str | None:
    if "legs" in meta.supplies:
        return "the records carry legs: action kinds describe a single position (see executed-within-requested)"
    return None


def _long_only(meta: TraceMeta) -> str | None:
    return None if meta.long_only else "the env declares short positions (long_only=False)"


def _declares(attribute: str, what: str) -> Callable[[TraceMeta], str | None]:
    def declared(meta: TraceMeta) -> str | None:
        return None if getattr(meta, attribute) not in (None, False) else f"the trace declares no {what} (TraceMeta.{attribute})"

    return declared


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


_UNQUALIFIED = {
    "action_distribution": "action_distribution_executed",
    "action_entropy": "action_entropy_executed",
}


def _metrics_match(trace: Trace, c: Context) -> Iterable[tuple[int | None, str]]:
    reported = c.reported
    if reported is None:
        return
    truth = compute_metrics(trace).as_dict()
    for key, value in reported.items():
        # Evaluators that report one unqualified distribution or entropy (the seed's
        # did: "action_distribution") claim what the agent *did*: the executed one.
        key = _UNQUALIFIED.get(key, key)
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
    ),
    _inv(
        id="no-add-without-profitable-position",
        statement="ADD_POSITION executes only on an open position whose value exceeds its cost basis.",
        family="rules",
        scope="step",
        needs=_F({"executed", "position_before", "cost_basis_before", "price"}),
        step_check=_no_add_without_profit,
        declared=_single_position,
    ),
    _inv(
        id="no-buy-while-in-position",
        statement="An opening buy executes only when flat.",
        family="rules",
        scope="step",
        needs=_F({"executed", "position_before"}),
        step_check=_no_buy_in_position,
        declared=_single_position,
    ),
    _inv(
        id="disabled-actions-never-execute",
        statement="An action the configuration disables never executes.",
        family="rules",
        scope="step",
        needs=_F({"executed"}),
        step_check=_disabled_never_execute,
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
        statement="step() after the episode ended raises instead of trading on.",
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
