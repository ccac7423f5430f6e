"""The accounting invariants' checks, and the precision every one of them compares with.

Each compares on an exact ledger with ``==`` and otherwise within the tolerance the trace's
:class:`~tradeguard.trace.Precision` derives from the magnitudes it adds; the catalog
(:mod:`tradeguard.invariants._catalog`) names them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tradeguard.invariants._model import Context
from tradeguard.trace import FeeSchedule, Leg, Number, StepRecord, TraceMeta

REL_TOL = 1e-9
"""Relative tolerance of float reward identities (money identities follow the trace's precision)."""


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
    # negative beyond the precision of a step at 0.85). Nor is an "after" value that the step
    # left unchanged: a HOLD at 0.01 carries the -1.75e-13 a buy at 10,084,147.10 left, and
    # it was judged there (or is judged here as the "before" value, when nothing judged it).
    # Tolerance terms come from the fields the producer supplies, beyond the ones this check needs.
    legs = r.instrument_legs()
    supplied = c.meta.supplies
    was = prev.instrument_legs() if prev is not None else ()
    after = c.name(r.executed) if r.legs is None and "executed" in supplied else f"step {r.t}"
    priced = "price" in supplied and "next_price" in supplied
    scale = [] if c.meta.exact else _supplied_terms(r, legs, supplied, priced)
    if c.meta.long_only:
        for i, leg in enumerate(legs):
            checks = [] if leg.position_after == leg.position_before else [
                ("position", leg.position_after, leg.next_price)]
            if not (i < len(was) and was[i].position_after == leg.position_before):
                checks.append(("position before", leg.position_before, leg.price))
            for name, value, price in checks:
                # A position is below zero when its value is, beyond the account's precision.
                if value < 0 and (_below(value * price, 0, c, *scale) if priced else
                                  _below(value, 0, c, leg.position_before, leg.position_after)):
                    return (f"{name}{_leg_name(c, i, len(legs))} is {c.units(value)} units (negative) after "
                            f"{after}; the env is long-only")
    if not c.meta.borrows_cash:
        cash = [] if r.cash_after == r.cash_before else [("cash", r.cash_after)]
        if prev is None or prev.cash_after != r.cash_before:
            cash.append(("cash before", r.cash_before))
        for name, value in cash:
            if _below(value, 0, c, *scale):
                return f"{name} is {c.money(value)} (negative) after {after}; the env declares no credit"
    return None


def _flat_before(r: StepRecord, c: Context) -> bool:
    """Whether the step starts flat. On a float ledger a closed position may keep a residue
    (gym-trading-env closing a short with fees leaves -8.9e-16 units): flat when it is
    :func:`worth_nothing` at the step's price. Exact ledgers, and records without prices to
    value the residue at, compare with 0."""
    if r.position_before == 0:
        return True
    supplied = c.meta.supplies
    if c.meta.exact or "price" not in supplied or "next_price" not in supplied:
        return False
    return worth_nothing(r.position_before, r.price, r, c.meta)


def worth_nothing(position: Number, price: Number, r: StepRecord, meta: TraceMeta) -> bool:
    """Whether ``position`` at ``price`` is worth zero within the precision of the step's own
    amounts (:func:`_supplied_terms`), as ``_non_negative`` judges zero: on a float ledger, a
    residue no agent could act on. Needs the step's prices supplied (the legs read them)."""
    value = position * price
    scale = _supplied_terms(r, r.instrument_legs(), meta.supplies, True)
    return abs(value) <= meta.precision.tolerance(value, *scale)


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
            # A float ledger's quantity is a difference of positions, as precise as the larger of
            # them: a small trade of a large holding (a rebalance) carries that holding's rounding.
            # (read only where the adapter supplies positions: fees-match-schedule does not need them)
            positions = r.legs is not None or {"position_before", "position_after"} <= c.meta.supplies
            held = max(abs(leg.position_before), abs(leg.position_after)) * abs(leg.price) if positions else 0.0
            # A fee the adapter can only read off the cash (an env that reports none: cash before, less
            # cash after, less what the units cost) carries the cash's rounding: its magnitudes too.
            cash = max(abs(r.cash_before), abs(r.cash_after)) if {"cash_before", "cash_after"} <= c.meta.supplies else 0.0
            ok = _same(charged, want, c, notional, held, cash, rounded=rounded)
        if not ok:
            return (
                f"fee{_leg_name(c, i, len(legs))} charged {c.money(charged)} on {c.units(leg.quantity)} units at "
                f"{c.money(leg.price)} (notional {c.money(notional)}); the declared schedule "
                f"({_describe_schedule(schedule, c)}) charges {c.money(want)}"
                f"{_off_by(charged, want, c) if c.money(charged) == c.money(want) else ''}"
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
        held = ""
        if schedule.function is None and (schedule.long_rate or schedule.short_rate):
            legs = r.instrument_legs()
            longs = math.fsum(max(leg.position_before, 0) * leg.price for leg in legs)
            shorts = math.fsum(max(-leg.position_before, 0) * leg.price for leg in legs)
            held = f", longs worth {c.money(longs)} and shorts worth {c.money(shorts)} before the trade"
        return (f"{what} charged on step {r.t} with cash {c.money(r.cash_before)}{held}; the declared schedule "
                f"charges {c.money(want)}")
    return None


def _reported_equity(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
    reported = r.reported_equity
    if reported is None:
        return None
    # Both values sum the cash and every position's value: their float error scales with the
    # largest of those terms when it exceeds the equity they net to (a short of 1e6 units at
    # 0.01 beside a long worth as much); otherwise the equity's own scale, as before.
    gross = max((abs(t) for t in (r.cash_after, *(leg.position_after * leg.next_price
                                                   for leg in r.instrument_legs()))), default=0.0)
    scale = (gross,) if gross > abs(r.equity_after) else ()
    if not _same(reported, r.equity_after, c, *scale, rounded=1):
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
