"""Real ledgers: float money, fractional and short positions, several instruments.

Every broken ``Book`` (tests/float_envs.py) is a one-line bug in the env's own logic; the
gate must name the right invariant with a counterexample of at most 10 steps and a
message a trader can read. Every healthy configuration passes the whole catalog: a false
positive is as serious as a miss.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from float_envs import (
    HEALTHY,
    LONG,
    MARGIN,
    PORTFOLIO,
    Book,
    BookAdapter,
    BookConfig,
    CountsRequests,
    FeeChargedTwice,
    LeverageUnchecked,
    LongsCarryFree,
    MinimumFeeOnNothing,
    NoBorrowFee,
    OverFills,
    PositionRounded,
    SellsTheWrongInstrument,
    ShortPastLimit,
    StaleValuation,
    TradesOnWhenRuined,
    TruncatesCents,
    factory,
)

from tradeguard.invariants import CATALOG, check_trace, check_trading_env, record_episode
from tradeguard.trace import (
    CORE_FIELDS,
    EXACT,
    FeeSchedule,
    Leg,
    Precision,
    StepRecord,
    Trace,
    TraceMeta,
)


@dataclass(frozen=True)
class BadBook:
    name: str
    cls: type[Book]
    config: BookConfig
    invariant: str
    message: str  # a regex the first violation's message must match in full


BAD_BOOKS = [
    BadBook("fee charged twice, cash, fee and reward consistent", FeeChargedTwice, LONG, "fees-match-schedule",
            r"fee of BTC charged [\d,.]+ on [\d.]+ units at [\d,.]+ \(notional [\d,.]+\); the declared schedule "
            r"\(10 bps\) charges [\d,.]+ - charged twice\?"),
    BadBook("portfolio value marked at the previous price", StaleValuation, LONG, "reported-equity-matches-ledger",
            r"the env reports a portfolio value of [\d,.]+ after step \d+; its ledger says [\d,.]+ \(cash "
            r"[-\d,.]+ plus positions at the next price\) \(off by -?[\d,.e-]+; precision float64\)"),
    BadBook("trade counter counts requests", CountsRequests, LONG, "metrics-match-trace",
            r"trades reported \d+; the trace gives \d+"),
    BadBook("borrow fee declared, never charged", NoBorrowFee, PORTFOLIO, "financing-as-declared",
            r"no interest or borrow cost charged on step \d+ with cash [\d,.]+, longs worth [\d,.]+ and shorts worth "
            r"[\d,.]+ before the trade; the declared schedule charges [\d,.]+"),
    BadBook("carry on longs declared, only shorts charged", LongsCarryFree, PORTFOLIO, "financing-as-declared",
            r"(no interest or borrow cost|financing of [\d,.]+) charged on step \d+ with cash [-\d,.]+, longs worth "
            r"[1-9][\d,.]* and shorts worth [\d,.]+ before the trade; the declared schedule charges [\d,.]+"),
    BadBook("short past its limit", ShortPastLimit, PORTFOLIO, "position-within-limits",
            r"position of \w+ is -[\d.]+ units after step \d+, beyond the declared limits -40\.\.40 "
            r"\(a short past its limit\)"),
    BadBook("a buy past the declared leverage", LeverageUnchecked, MARGIN, "leverage-within-limit",
            r"step \d+ left a gross exposure of [\d,.]+ on equity [\d,.]+ \([\d.]+x\), past the declared "
            r"leverage limit of 10x"),
    BadBook("a ruined account trades on", TradesOnWhenRuined, MARGIN, "ruin-ends-episode",
            r"step \d+ traded on \((HOLD|BUY BTC|SELL BTC)\) with equity -?[\d,.]+ at its start; a ruined "
            r"account must end the episode .*"),
    BadBook("a sell fills on the wrong instrument", SellsTheWrongInstrument, PORTFOLIO, "executed-within-requested",
            r"\w+: (executed -[\d.]+ units although 0 were requested \(the opposite side, or a trade nobody "
            r"asked for\)|executed 0 of the -[\d.]+ units requested, with no rejection and no reason: a partial "
            r"fill or a rejection must say why)"),
    BadBook("cash truncated to cents, declared as rounded", TruncatesCents, PORTFOLIO, "self-financing",
            r"cash changed by -?[\d,.]+ but .* accounts for -?[\d,.]+: value lost \([\d.]+ vanished\)"),
    BadBook("a buy over-fills", OverFills, LONG, "executed-within-requested",
            r"BTC: executed [\d.]+ units, more than the [\d.]+ requested"),
    BadBook("minimum fee on instruments that did not trade", MinimumFeeOnNothing, PORTFOLIO, "fees-only-on-trades",
            r"fee of \w+ 1\.00 charged on a step that traded nothing \(step \d+\)"),
    BadBook("position stored rounded, cash paid unrounded", PositionRounded, LONG, "self-financing",
            r"position of BTC went [\d.]+ -> [\d.]+ units but the trade was [+-][\d.]+ units"),
]


@pytest.mark.parametrize("bad", BAD_BOOKS, ids=[b.invariant + ":" + b.name for b in BAD_BOOKS])
def test_gate_catches_a_broken_float_ledger(bad: BadBook) -> None:
    report = check_trading_env(factory(bad.cls, bad.config), adapter=BookAdapter(), only=[bad.invariant],
                               examples=100, max_steps=12, seed=1, name=bad.name, database=None)
    (result,) = report.results
    assert result.status == "fail", f"{bad.name}: {bad.invariant} did not fire\n{report.format()}"
    assert result.counterexample is not None
    assert len(result.counterexample.actions) <= 10, str(result.counterexample)
    first = result.violations[0]
    assert first.invariant == bad.invariant
    assert re.fullmatch(bad.message, first.message), first.message


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_every_healthy_float_ledger_passes_the_whole_catalog(name: str) -> None:
    report = check_trading_env(factory(Book, HEALTHY[name]), adapter=BookAdapter(), examples=150, max_steps=12,
                               seed=2, name=name, database=None)
    assert report.passed, report.format()
    statuses = {r.invariant.id: r.status for r in report.results}
    # The money invariants really run on a float env (none is switched off to avoid a false positive).
    for money in ("equity-identity", "self-financing", "reward-consistent-with-pnl", "fees-only-on-trades",
                  "fees-match-schedule", "reported-equity-matches-ledger", "metrics-match-trace"):
        assert statuses[money] == "pass", (money, statuses[money])


def test_each_broken_book_is_caught_by_an_invariant_its_healthy_twin_passes() -> None:
    assert len(BAD_BOOKS) >= 10
    assert len({b.cls for b in BAD_BOOKS}) == len(BAD_BOOKS)  # one mechanism each
    ids = {inv.id for inv in CATALOG}
    assert {b.invariant for b in BAD_BOOKS} <= ids


# --------------------------------------------------------------------------- precision, by hand
def _meta(**changes: Any) -> TraceMeta:
    base: dict[str, Any] = {"env_id": "hand", "action_names": ("HOLD", "BUY"), "action_kinds": ("hold", "open"),
                                "minor_unit": 1.0, "precision": Precision.float64()}
    return TraceMeta(**{**base, **changes})


def _buy(cash: float, quantity: float, price: float, fee: float, *, cash_after: float | None = None) -> StepRecord:
    after = cash - quantity * price - fee if cash_after is None else cash_after
    return StepRecord(t=0, price=price, next_price=price, predicted=1, executed=1, rejected=False, reason=None,
                      position_before=0.0, position_after=quantity, cash_before=cash, cash_after=after,
                      equity_before=cash, equity_after=after + quantity * price, quantity=quantity, fee=fee,
                      reward=0.0, components=(), mask=None, cost_basis_before=0.0)


def test_a_healthy_fractional_buy_with_all_cash_passes() -> None:
    """The false positive the integer ledger gave: all cash into a fractional position, 0.1% fee."""
    cash, price = 10_000.0, 123.456789
    quantity = cash / (price * 1.001)
    fee = quantity * price * 0.001
    record = _buy(cash, quantity, price, fee)
    meta = _meta(fee_schedule=FeeSchedule(rate=0.001), reward_is_pnl=False)
    assert check_trace(Trace((record,), meta)) == []


def test_one_cent_on_a_10000_account_is_caught() -> None:
    cash, price, quantity = 10_000.0, 100.0, 50.0
    honest = _buy(cash, quantity, price, 5.0)
    short = _buy(cash, quantity, price, 5.0, cash_after=honest.cash_after - 0.01)
    meta = _meta()
    assert check_trace(Trace((honest,), meta)) == []
    found = {v.invariant for v in check_trace(Trace((short,), meta))}
    assert "self-financing" in found


def test_declared_rounding_allows_half_a_cent_and_no_more() -> None:
    meta = _meta(precision=Precision.float64(money_step=0.01))
    exact = 10_000.0 - 33.3333 * 100.0 - 1.0
    rounded = _buy(10_000.0, 33.3333, 100.0, 1.0, cash_after=round(exact, 2))
    assert [v.invariant for v in check_trace(Trace((rounded,), meta), only=["self-financing"])] == []
    off = _buy(10_000.0, 33.3333, 100.0, 1.0, cash_after=round(exact, 2) - 0.01)
    assert [v.invariant for v in check_trace(Trace((off,), meta), only=["self-financing"])] == ["self-financing"]


def test_a_reported_value_is_judged_at_the_scale_of_the_positions_it_nets() -> None:
    # tradingenv at --profile thorough: a short of ~1e6 units at 0.01 and a long of ~1e4 at 0.99
    # net to an equity of ~97; the broker sums them in another order than the ledger, 9e-13 apart
    # (half an ulp of the 10,000-sized terms). That is float error; a cent is not.
    legs = (Leg(price=0.01, next_price=0.01, position_before=0.0, position_after=-1000326.379, quantity=-1000326.379,
                fee=2.0),
            Leg(price=0.99, next_price=0.99, position_before=0.0, position_after=10104.30686, quantity=10104.30686,
                fee=2.0))
    cash = 97.04
    equity = cash + math.fsum(leg.position_after * leg.next_price for leg in legs)
    broker = equity - 9.094947017729282e-13  # what the broker reported, summing in its own order

    def step(reported: float) -> StepRecord:
        return StepRecord(t=0, price=0.0, next_price=0.0, predicted=1, executed=1, rejected=False, reason=None,
                          position_before=0.0, position_after=0.0, cash_before=equity + 4.0, cash_after=cash,
                          equity_before=equity + 4.0, equity_after=equity, quantity=0.0, fee=4.0, reward=0.0,
                          components=(), mask=None, cost_basis_before=0.0, legs=legs, reported_equity=reported)

    meta = _meta(instruments=("A", "B"), supplies=CORE_FIELDS | {"legs", "reported_equity"})
    assert check_trace(Trace((step(broker),), meta), only=["reported-equity-matches-ledger"]) == []
    off = check_trace(Trace((step(equity - 0.01),), meta), only=["reported-equity-matches-ledger"])
    assert [v.invariant for v in off] == ["reported-equity-matches-ledger"]
    # An account that nets nothing (cash and one long, no short) keeps the equity's own scale:
    # on float32, a cent on 10,000.00 is still caught (the gross terms would have let it pass).
    long_leg = (Leg(price=100.0, next_price=100.0, position_before=0.0, position_after=50.0, quantity=50.0, fee=0.0),)
    f32 = _meta(instruments=("A",), supplies=CORE_FIELDS | {"legs", "reported_equity"}, precision=Precision.float32())

    def held(reported: float) -> StepRecord:
        return StepRecord(t=0, price=0.0, next_price=0.0, predicted=0, executed=0, rejected=False, reason=None,
                          position_before=0.0, position_after=0.0, cash_before=5000.0, cash_after=5000.0,
                          equity_before=10_000.0, equity_after=10_000.0, quantity=0.0, fee=0.0, reward=0.0,
                          components=(), mask=None, cost_basis_before=0.0, legs=long_leg, reported_equity=reported)

    assert check_trace(Trace((held(10_000.0),), f32), only=["reported-equity-matches-ledger"]) == []
    cent = float(np.float32(10_000.01))
    found = check_trace(Trace((held(cent),), f32), only=["reported-equity-matches-ledger"])
    assert [v.invariant for v in found] == ["reported-equity-matches-ledger"]


def test_the_exact_ledger_stays_exact() -> None:
    """tradeguard's own env declares EXACT: one minor unit off fails, with no tolerance."""
    meta = _meta(precision=EXACT, minor_unit=0.01)
    record = _buy(1_000_000, 3, 10_000, 30)
    assert check_trace(Trace((record,), meta)) == []
    off = record._replace(cash_after=record.cash_after - 1)
    assert "self-financing" in {v.invariant for v in check_trace(Trace((off,), meta))}
    assert Precision().tolerance(1e12, 5.0) == 0.0


def test_precision_tolerance_comes_from_the_magnitudes() -> None:
    p = Precision.float64()
    assert p.tolerance(10_000.0) == 4 * math.ulp(10_000.0)
    assert p.tolerance(1e9, 1.0) == 4 * 2 * math.ulp(1e9)
    assert math.isnan(p.tolerance(float("nan"), 1.0))
    assert Precision.float64(money_step=0.01).tolerance(1.0, rounded=2) == pytest.approx(0.01 + 4 * math.ulp(1.0))


def test_nan_money_never_passes() -> None:
    record = _buy(10_000.0, 1.0, 100.0, 0.1)._replace(cash_after=float("nan"))
    found = {v.invariant for v in check_trace(Trace((record,), _meta()))}
    assert {"self-financing", "equity-identity"} <= found


def test_multi_instrument_self_financing_sums_legs() -> None:
    legs = (Leg(100.0, 101.0, 0.0, 2.5, 2.5, 0.25, 2.5), Leg(10.0, 9.0, 4.0, 0.0, -4.0, 0.04, -4.0))
    cash0, cash1 = 1_000.0, 1_000.0 - 250.0 + 40.0 - 0.29
    eq0 = cash0 + 4.0 * 10.0
    eq1 = cash1 + 2.5 * 101.0
    r = StepRecord(t=0, price=0, next_price=0, predicted=0, executed=0, rejected=False, reason=None,
                   position_before=0, position_after=0, cash_before=cash0, cash_after=cash1, equity_before=eq0,
                   equity_after=eq1, quantity=0, fee=0.29, reward=0.0, components=(), mask=None,
                   cost_basis_before=0, legs=legs)
    meta = _meta(instruments=("A", "B"), supplies=frozenset(StepRecord._fields) - {"reported_equity"})
    assert check_trace(Trace((r,), meta)) == []
    leak = r._replace(cash_after=cash1 - 0.5, equity_after=eq1 - 0.5)
    (v,) = [v for v in check_trace(Trace((leak,), meta)) if v.invariant == "self-financing"]
    assert "trades worth" in v.message and "value lost (0.50 vanished)" in v.message


def test_invariants_that_need_a_declaration_say_so() -> None:
    meta = _meta()
    by_id = {inv.id: inv for inv in CATALOG}
    assert by_id["fees-match-schedule"].why_not_applicable(meta) == (
        "the trace declares no fee schedule (TraceMeta.fee_schedule)"
    )
    shorts = _meta(long_only=False)
    assert by_id["no-sell-without-position"].why_not_applicable(shorts) == (
        "the env declares short positions (long_only=False)"
    )


def test_bad_ledger_declarations_are_refused_clearly() -> None:
    from tradeguard.errors import InvalidConfig

    with pytest.raises(InvalidConfig, match=r"position_limits=\(-1\.0, 1\.0\) allow a short position, but long_only=True"):
        _meta(position_limits=(-1.0, 1.0))
    with pytest.raises(InvalidConfig, match=r"Precision\(money_step=-0\.01\); expected a finite amount >= 0"):
        Precision.float64(money_step=-0.01)
    with pytest.raises(InvalidConfig, match=r"FeeSchedule\(rounding='up' with step=0\)"):
        FeeSchedule(rate=0.001, rounding="up")


def test_the_healthy_book_really_trades_and_shorts() -> None:
    """The healthy configurations are not vacuous: episodes buy, sell, short and pay fees."""
    adapter = BookAdapter()
    ep = record_episode(Book(PORTFOLIO), [1, 4, 6, 6, 2, 3, 0, 5], seed=0, adapter=adapter)
    legs = [leg for r in ep.trace for leg in r.instrument_legs()]
    assert any(leg.quantity > 0 for leg in legs) and any(leg.position_after < 0 for leg in legs)
    assert any(r.financing > 0 for r in ep.trace) and any(r.fee > 0 for r in ep.trace)
    assert check_trace(ep.trace, reported=ep.reported) == []


def test_the_monitor_checks_the_envs_own_metrics_at_the_end_of_each_episode() -> None:
    from tradeguard.invariants import InvariantMonitor

    for cls, expected in ((Book, []), (CountsRequests, ["metrics-match-trace"])):
        env = InvariantMonitor(cls(LONG), adapter=BookAdapter(), mode="record")
        env.reset(seed=0)
        for action in [2, 1, 1, 2, 2] + [0] * (LONG.length - 5):  # a rejected sell, buys, sells
            env.step(action)
        assert [v.invariant for v in env.violations] == expected, env.violations


def test_a_rounding_left_by_one_step_is_judged_by_that_step_not_the_next() -> None:
    """All cash into a long at 85.43 leaves -1.1e-13 (zero within float64 of 1,000.00); the next
    step, a crash to 0.85, sells out. Its cash before is that same -1.1e-13: it must not be
    judged negative against the small magnitudes of a step at 0.85 (found on gym-trading-env)."""
    quantity = 1_000.0 / 85.43
    buy = _buy(1_000.0, quantity, 85.43, 0.0, cash_after=-1.1368683772161603e-13)._replace(next_price=0.85)
    buy = buy._replace(equity_after=buy.cash_after + quantity * 0.85)
    sell = StepRecord(t=1, price=0.85, next_price=0.86, predicted=1, executed=1, rejected=False, reason=None,
                      position_before=quantity, position_after=0.0, cash_before=buy.cash_after,
                      cash_after=buy.cash_after + quantity * 0.85, equity_before=buy.equity_after,
                      equity_after=buy.cash_after + quantity * 0.85, quantity=-quantity, fee=0.0, reward=0.0,
                      components=(), mask=None, cost_basis_before=0.0)
    meta = _meta(action_names=("HOLD", "TRADE"))
    assert check_trace(Trace((buy, sell), meta), only=["no-negative-position-or-cash"]) == []
    # Negative beyond precision where the value was made is still caught there ...
    deep = buy._replace(cash_after=-1e-9)
    (v,) = check_trace(Trace((deep, sell._replace(cash_before=-1e-9)), meta), only=["no-negative-position-or-cash"])
    assert (v.step, v.message) == (0, "cash is -1e-09 (negative) after TRADE; the env declares no credit")
    # ... and a cash before that is not the previous step's cash after is judged on its own.
    jumped = sell._replace(cash_before=-1e-9)
    (v,) = check_trace(Trace((buy, jumped), meta), only=["no-negative-position-or-cash"])
    assert (v.step, v.message) == (1, "cash before is -1e-09 (negative) after TRADE; the env declares no credit")


def test_a_rounding_carried_unchanged_through_a_step_is_judged_where_it_was_made() -> None:
    """Found at --profile thorough (benchmarks/study_thorough.py): all cash into BTC at
    10,084,147.10 leaves -1.75e-13; a HOLD after a crash to 0.01 carries it unchanged. The HOLD
    must not judge it against the magnitudes of a step at 0.01."""
    quantity = 1_000.0 / 85.43
    buy = _buy(1_000.0, quantity, 85.43, 0.0, cash_after=-1.1368683772161603e-13)._replace(next_price=0.01)
    buy = buy._replace(equity_after=buy.cash_after + quantity * 0.01)
    hold = StepRecord(t=1, price=0.01, next_price=0.01, predicted=0, executed=0, rejected=False, reason=None,
                      position_before=quantity, position_after=quantity, cash_before=buy.cash_after,
                      cash_after=buy.cash_after, equity_before=buy.equity_after, equity_after=buy.equity_after,
                      quantity=0.0, fee=0.0, reward=0.0, components=(), mask=None, cost_basis_before=0.0)
    meta = _meta(action_names=("HOLD", "TRADE"))
    assert check_trace(Trace((buy, hold), meta), only=["no-negative-position-or-cash"]) == []
    # A value negative beyond precision where it was made is caught there ...
    deep = buy._replace(cash_after=-1e-9)
    (v,) = check_trace(Trace((deep, hold._replace(cash_before=-1e-9, cash_after=-1e-9)), meta),
                       only=["no-negative-position-or-cash"])
    assert (v.step, v.message) == (0, "cash is -1e-09 (negative) after TRADE; the env declares no credit")
    # ... a first record that carries one is judged by its own "before" value ...
    (v,) = check_trace(Trace((hold._replace(t=0, cash_before=-1e-9, cash_after=-1e-9),), meta),
                       only=["no-negative-position-or-cash"])
    assert (v.step, v.message) == (0, "cash before is -1e-09 (negative) after HOLD; the env declares no credit")
    # ... and a position carried negative by a long-only env is caught where it went negative.
    short = buy._replace(position_after=-quantity, quantity=-quantity, cash_after=2_000.0)
    carried = hold._replace(position_before=-quantity, position_after=-quantity, cash_before=2_000.0,
                            cash_after=2_000.0)
    (v,) = check_trace(Trace((short, carried), meta), only=["no-negative-position-or-cash"])
    assert v.step == 0 and v.message.startswith("position is -11.7")


def test_a_closed_position_that_keeps_a_rounding_residue_is_flat() -> None:
    """Found at --profile thorough with drawn settings (gym-trading-env, positions [0, -1], a 5%
    fee): closing a short left -8.9e-16 units, and the next opening was judged "while already
    holding". Flat is judged as zero is, within the precision of the step's own amounts; a
    position worth more than that is still held, and an exact ledger still compares with 0."""
    residue = -8.881784197001252e-16
    cash = 1_399.04
    opening = _buy(cash, 6.99, 100.0, 0.0)._replace(position_before=residue, position_after=residue + 6.99,
                                                      equity_before=cash + residue * 100.0)
    meta = _meta()
    assert check_trace(Trace((opening,), meta), only=["no-buy-while-in-position"]) == []
    held = opening._replace(position_before=-1e-6, equity_before=cash - 1e-4)  # worth -1e-4: a real position
    (v,) = check_trace(Trace((held,), meta), only=["no-buy-while-in-position"])
    assert v.message.startswith("BUY executed while already holding -1e-06 units")
    exact = _meta(precision=EXACT, minor_unit=0.01)
    one_unit = _buy(100_000, 5, 10_000, 0)._replace(position_before=1, position_after=6)
    (v,) = check_trace(Trace((one_unit,), exact), only=["no-buy-while-in-position"])
    assert v.message.startswith("BUY executed while already holding 1 units")
    # A rejection "NO_POSITION" on that residue holds too; on a real position it does not.
    refused = opening._replace(executed=0, rejected=True, reason="NO_POSITION", position_after=residue,
                               quantity=0.0, cash_after=cash, equity_after=opening.equity_before)
    assert check_trace(Trace((refused,), meta), only=["rejection-reason-holds"]) == []
    (v,) = check_trace(Trace((refused._replace(position_before=-1e-6, position_after=-1e-6),), meta),
                       only=["rejection-reason-holds"])
    assert v.message == "BUY was rejected NO_POSITION while holding -1e-06 units"


def test_a_multi_instrument_step_shows_each_legs_fee_in_the_counterexample() -> None:
    """The fee column of a step with legs is each leg's fee, as its price and position columns
    are: a message about one leg's fee must be readable against the table beside it."""
    from tradeguard.invariants._check import format_steps

    meta = _meta(instruments=("BTC", "ETH"), action_kinds=("hold", "rebalance"), action_names=("HOLD", "REBALANCE"))
    legs = (Leg(price=100.0, next_price=100.0, position_before=1.0, position_after=-1.0, quantity=-2.0, fee=0.003),
            Leg(price=10.0, next_price=10.0, position_before=0.0, position_after=5.0, quantity=5.0, fee=0.05))
    record = StepRecord(t=0, price=0, next_price=0, predicted=1, executed=1, rejected=False, reason=None,
                        position_before=0, position_after=0, cash_before=1000.0, cash_after=1149.947,
                        equity_before=1100.0, equity_after=1099.947, quantity=0, fee=0.053, reward=0.0,
                        components=(), mask=None, cost_basis_before=0, legs=legs)
    row = format_steps([record], meta, 0).splitlines()[1]
    assert "100.00/10.00" in row and "1/0 -> -1/5" in row and " 0.003/0.05 " in row, row


def test_a_fee_read_off_the_cash_is_judged_at_the_cashs_precision_and_a_cent_is_still_caught() -> None:
    """An env that reports no fee: the adapter reads it off the cash (before, less after, less what the
    units cost). At 1,000,000.00 of cash that carries the cash's rounding (a 1.00 commission reads
    0.99999999997...): no false positive; a fee a cent off is still caught, and says by how much."""
    schedule = FeeSchedule(fixed=1.0)
    meta = _meta(fee_schedule=schedule)
    cash, price, quantity = 1_000_000.0, 100.01, 10.0
    after = cash - (quantity * price + 1.0)
    derived = cash - after - quantity * price
    assert derived != 1.0  # the float rounding this test is about
    honest = _buy(cash, quantity, price, derived, cash_after=after)
    assert [v.message for v in check_trace(Trace((honest,), meta), only=["fees-match-schedule"])] == []
    cent = _buy(cash, quantity, price, derived + 0.01, cash_after=after - 0.01)
    (v,) = check_trace(Trace((cent,), meta), only=["fees-match-schedule"])
    assert v.message.startswith("fee charged 1.01 on 10 units at 100.01")
    close = _buy(cash, quantity, price, 1.004, cash_after=cash - quantity * price - 1.004)
    (w,) = check_trace(Trace((close,), meta), only=["fees-match-schedule"])
    assert "charges 1.00 (off by 0.004" in w.message, w.message  # both print as 1.00: the difference is shown
