"""The built-in adapters give gym-anytrading and gym-trading-env a full float ledger.

On the real packages the money invariants run (and pass, except the findings of
tests/test_peer_findings.py); each adapter also still catches the bugs it exists for:
subclasses of the real envs broken on purpose, one mechanism each, are caught by the right
invariant with a short counterexample, and a fixed twin of a real finding passes.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from gym_anytrading.envs import Actions, ForexEnv, Positions, StocksEnv

from tradeguard.env import Market
from tradeguard.invariants import check_trace, record_episode
from tradeguard.invariants._gate import check_trading_env
from tradeguard.invariants.peers import (
    AnyTradingAdapter,
    GymTradingEnvAdapter,
    make_forex_env,
    make_margin_trading_env,
    make_stocks_env,
    make_trading_env,
)

pytestmark = pytest.mark.filterwarnings("default")

with warnings.catch_warnings():  # the import runs warnings.filterwarnings("error") (finding G1)
    from gym_trading_env.environments import TradingEnv
    from gym_trading_env.utils.portfolio import Portfolio

MONEY = ("equity-identity", "self-financing", "no-negative-position-or-cash", "fees-only-on-trades",
         "fees-match-schedule", "reward-is-sum-of-components", "metrics-match-trace")


def statuses(report: Any) -> dict[str, str]:
    return {r.invariant.id: r.status for r in report.results}


def forex(unit_side: str, **kw: Any) -> Any:
    return lambda: make_forex_env(unit_side=unit_side, **kw)


# --------------------------------------------------------------------------- the real packages
ANYTRADING_NA = {"mask-matches-execution", "position-within-limits", "leverage-within-limit",
                 "financing-as-declared", "reported-equity-matches-ledger", "executed-within-requested"}


@pytest.mark.parametrize(("make", "kind"), [(make_stocks_env, "stocks"), (forex("left"), "forex"),
                                            (forex("right"), "forex")], ids=["stocks", "forex-left", "forex-right"])
def test_anytrading_money_invariants_run_and_hold(make: Any, kind: str) -> None:
    trace_ids = [*MONEY, "no-sell-without-position", "no-buy-while-in-position", "ruin-ends-episode",
                 "executed-never-exceeds-predicted", "no-add-without-profitable-position", *ANYTRADING_NA]
    report = check_trading_env(make, adapter=AnyTradingAdapter(kind), only=trace_ids, examples=40, max_steps=10,
                               seed=3, database=None)
    s = statuses(report)
    assert {i for i, v in s.items() if v == "not-applicable"} == ANYTRADING_NA
    assert all(v == "pass" for i, v in s.items() if i not in ANYTRADING_NA), report.format()


def test_anytrading_ledger_is_the_envs_total_profit_and_its_fees() -> None:
    env = make_stocks_env(steps=6)
    # A window of 4 ticks, then step t executes at tick 5 + t: buy at 110.00, hold, sell at 121.00.
    market = Market(np.array([10_000] * 5 + [11_000] + [12_100] * 5, dtype=np.int64), 0.01, "up")
    ep = record_episode(env, [1, 1, 0, 0], seed=0, options={"market": market}, adapter=AnyTradingAdapter("stocks"))
    buy, hold, sell, idle = ep.trace
    assert (buy.price, buy.cash_before, buy.cash_after) == (110.0, 1.0, 0.0)
    assert buy.position_after == pytest.approx(0.995 / 110.0) and buy.fee == pytest.approx(0.005)
    assert hold.reason == "ALREADY_IN_POSITION" and hold.quantity == 0.0
    assert sell.cash_after == float(env.unwrapped._total_profit) == pytest.approx(0.995 * 1.21 / 1.1 * 0.99, rel=1e-6)
    assert sell.fee == pytest.approx(0.01 * 0.995 * 1.21 / 1.1, rel=1e-5)  # float32: the kept shares are rounded
    assert sell.components == (sell.reward,) == (pytest.approx(11.0, rel=1e-6),)  # 121.00 - 110.00, fees excluded
    assert idle.reason == "NO_POSITION" and ep.reported == {"episode_reward": sell.reward}
    assert ep.trace.meta.precision.describe() == "float32"
    assert check_trace(ep.trace, reported=ep.reported) == []


def test_anytrading_forex_left_starts_in_the_quote_currency() -> None:
    ep = record_episode(make_forex_env(steps=4), [1, 0, 0], seed=0, adapter=AnyTradingAdapter("forex"))
    meta = ep.trace.meta
    assert meta.env_id == "gym-anytrading ForexEnv (unit_side='left')"
    assert meta.action_kinds == ("open", "close", "hold")  # Sell buys the quote currency, Buy sells it
    first = ep.trace[0]
    assert first.position_before > 0 and first.cash_before == 0.0 and first.position_after == 0.0
    assert [r.reason for r in ep.trace] == [None, None, "ALREADY_SHORT"]
    assert check_trace(ep.trace, reported=ep.reported) == []


GTE_NA = {"mask-matches-execution", "position-within-limits", "executed-within-requested"}
MARGIN_NA = {"mask-matches-execution", "position-within-limits", "no-sell-without-position",
             "no-add-without-profitable-position", "no-buy-while-in-position", "no-negative-position-or-cash",
             "fees-match-schedule"}


def test_gym_trading_env_default_settings_run_every_money_invariant() -> None:
    report = check_trading_env(lambda: make_trading_env(initial_position=0), only=[
        *MONEY, "reported-equity-matches-ledger", "financing-as-declared", "ruin-ends-episode", "leverage-within-limit",
        *GTE_NA,
        "no-buy-while-in-position", "no-sell-without-position"], examples=40, max_steps=10, seed=3, database=None)
    s = statuses(report)
    assert {i for i, v in s.items() if v == "not-applicable"} == GTE_NA
    assert all(v == "pass" for i, v in s.items() if i not in GTE_NA), report.format()


def test_gym_trading_env_with_shorts_and_leverage_runs_the_ledger_it_can() -> None:
    ids = [*MONEY, "reported-equity-matches-ledger", "ruin-ends-episode", "executed-within-requested",
           "leverage-within-limit", *MARGIN_NA]
    report = check_trading_env(make_margin_trading_env, only=ids, examples=40, max_steps=10, seed=3, database=None)
    s = statuses(report)
    assert {i for i, v in s.items() if v == "not-applicable"} == MARGIN_NA
    assert all(v == "pass" for i, v in s.items() if i not in MARGIN_NA), report.format()
    # Without a borrow rate a short owes no units of interest: the fee schedule is declared again.
    no_rate = check_trading_env(lambda: make_margin_trading_env(borrow_interest_rate=0), only=["fees-match-schedule"],
                                examples=40, max_steps=12, seed=3, database=None)
    assert statuses(no_rate) == {"fees-match-schedule": "pass"}


def test_gym_trading_env_ledger_is_the_envs_portfolio() -> None:
    env = make_margin_trading_env(steps=6)
    ep = record_episode(env, [0, 0, 1, 3, 2], seed=0, adapter=GymTradingEnvAdapter())
    short, hold, close, lever, delever = ep.trace
    assert delever.position_after == pytest.approx(lever.position_after / 2, rel=0.05)
    assert short.position_after < 0 and short.cash_after > short.cash_before  # sold borrowed units
    assert short.fee == pytest.approx(0.001 * -short.quantity * short.price)
    assert short.financing == pytest.approx(0.0001 * -short.position_after * short.next_price)
    assert hold.reason == "ALREADY_AT_TARGET" and hold.quantity == 0.0
    assert close.position_after == 0.0 and lever.position_after > 0 and lever.cash_after < 0
    for r in ep.trace:
        assert r.reported_equity == pytest.approx(r.equity_after, rel=1e-12)
        assert r.components == (pytest.approx(r.reward, rel=1e-12),)
    assert "legs" in ep.trace.meta.supplies  # positions 1 and 2 are no single kind of action
    assert ep.reported == {"steps": 5}


# --------------------------------------------------------------------------- broken on purpose
class StocksBidFeeTwice(StocksEnv):
    """Closing a long takes the bid fee twice from total_profit."""

    def _update_profit(self, action: Any) -> None:
        before = self._total_profit
        super()._update_profit(action)
        if self._total_profit != before:
            self._total_profit = self._total_profit * (1 - self.trade_fee_bid_percent)


class StocksPaysOnBuy(StocksEnv):
    """The reward also pays the price move since the last trade on a buy."""

    def _calculate_reward(self, action: Any) -> Any:
        reward = super()._calculate_reward(action)
        if action == Actions.Buy.value and self._position == Positions.Short:
            reward += self.prices[self._current_tick] - self.prices[self._last_trade_tick]
        return reward


class ForexTotalRewardTwice(ForexEnv):
    """total_reward adds each reward twice."""

    def _calculate_reward(self, action: Any) -> Any:
        reward = super()._calculate_reward(action)
        self._total_reward += reward
        return reward


class ForexSpreadTwice(ForexEnv):
    """A left-unit account pays the spread again when it leaves the quote currency."""

    def _update_profit(self, action: Any) -> None:
        before = self._total_profit
        super()._update_profit(action)
        if self._total_profit != before:
            price = self.prices[self._current_tick]
            self._total_profit = self._total_profit * (price - self.trade_fee) / price


class FeesTwice(TradingEnv):  # type: ignore[misc]
    """Every trade pays twice the trading fee."""

    def _trade(self, position: Any, price: Any = None) -> None:
        self._portfolio.trade_to_position(position, price=self._get_price() if price is None else price,
                                          trading_fees=2 * self.trading_fees)
        self._position = position


class OverTrades(TradingEnv):  # type: ignore[misc]
    """Trades to 1.25 times the target position: exposure the env never offered."""

    def _trade(self, position: Any, price: Any = None) -> None:
        self._portfolio.trade_to_position(1.25 * position, price=self._get_price() if price is None else price,
                                          trading_fees=self.trading_fees)
        self._position = position


class StaleValuation(TradingEnv):  # type: ignore[misc]
    """info["portfolio_valuation"] is the portfolio valued at the previous close."""

    def step(self, position_index: Any = None) -> Any:
        obs, reward, done, truncated, info = super().step(position_index)
        info["portfolio_valuation"] = self._portfolio.valorisation(self._get_price(-1))
        return obs, reward, done, truncated, info


class TradesOnWhenRuined(TradingEnv):  # type: ignore[misc]
    """A portfolio valued at or below zero does not end the episode."""

    def step(self, position_index: Any = None) -> Any:
        obs, reward, _, truncated, info = super().step(position_index)
        return obs, reward, False, truncated, info


class CountsTradesAsSteps(TradingEnv):  # type: ignore[misc]
    """info["step"] counts only the steps that traded."""

    def step(self, position_index: Any = None) -> Any:
        before = self._position
        obs, reward, done, truncated, info = super().step(position_index)
        if self._position == before:
            self._step -= 1
            info["step"] = self._step
        return obs, reward, done, truncated, info


def _no_reward(history: Any) -> float:
    return 0.0


@dataclass(frozen=True)
class Broken:
    name: str
    make: Any
    invariant: str
    message: str  # the first violation's message, a regex matched in full


BROKEN = [
    Broken("stocks: bid fee taken twice", lambda: make_stocks_env(steps=12, env_class=StocksBidFeeTwice),
           "self-financing", r"cash changed by [\d.]+ but the trade of -[\d.e-]+ units at [\d,.]+ with fee [\d.e-]+ "
           r"accounts for [\d.]+: value lost \([\d.e-]+ vanished\)"),
    Broken("stocks: reward paid on a buy", lambda: make_stocks_env(steps=12, env_class=StocksPaysOnBuy),
           "reward-is-sum-of-components", r"reward -?[\d.e-]+ but its components sum to 0\.0 \(all zero\)"),
    Broken("forex: total_reward counts twice", lambda: make_forex_env(steps=12, env_class=ForexTotalRewardTwice),
           "metrics-match-trace", r"episode_reward reported -?[\d.e+-]+; the trace gives -?[\d.e+-]+"),
    Broken("forex left: spread paid twice", lambda: make_forex_env(steps=12, env_class=ForexSpreadTwice),
           "self-financing", r"cash changed by [\d.e-]+ but the trade of -[\d.e+-]+ units at [\d.e-]+ with fee "
           r"0\.00 accounts for [\d.e-]+: value lost \([\d.e-]+ vanished\)"),
    Broken("gym-trading-env: fee charged twice", lambda: make_trading_env(steps=12, env_class=FeesTwice,
                                                                             initial_position=0),
           "fees-match-schedule", r"fee charged [\d.]+ on -?[\d.]+ units at [\d,.]+ \(notional [\d,.]+\); the declared "
           r"schedule \(trading_fees=0\.001 of the notional\) charges [\d.]+"),
    Broken("gym-trading-env: trades past the target", lambda: make_trading_env(steps=12, env_class=OverTrades,
                                                                                initial_position=0),
           "leverage-within-limit", r"step \d+ left a gross exposure of [\d,.]+ on equity [\d,.]+ \(1\.2\dx\), past "
           r"the declared leverage limit of 1x"),
    Broken("gym-trading-env: stale valuation", lambda: make_trading_env(steps=12, env_class=StaleValuation,
                                                                           initial_position=0),
           "reported-equity-matches-ledger", r"the env reports a portfolio value of [\d,.]+ after step \d+; its "
           r"ledger says [\d,.]+ \(cash -?[\d,.e-]+ plus positions at the next price\) \(off by -?[\d,.e-]+; "
           r"precision float64\)"),
    Broken("gym-trading-env: trades on when ruined",
           lambda: make_margin_trading_env(steps=12, env_class=TradesOnWhenRuined, reward_function=_no_reward,
                                           positions=[-4, 0, 4]),
           "ruin-ends-episode", r"step \d+ traded on \(position -?\d\) with equity -?[\d,.]+ at its start; a ruined "
           r"account must end the episode .*"),
    Broken("gym-trading-env: step counter counts trades", lambda: make_trading_env(steps=12,
                                                                                      env_class=CountsTradesAsSteps,
                                                                                      initial_position=0),
           "metrics-match-trace", r"steps reported \d+; the trace gives \d+"),
]


@pytest.mark.parametrize("bad", BROKEN, ids=[b.name for b in BROKEN])
def test_the_adapters_catch_a_broken_subclass_of_the_real_env(bad: Broken) -> None:
    report = check_trading_env(bad.make, only=[bad.invariant], examples=50, max_steps=8, seed=1, database=None)
    (result,) = report.results
    assert result.status == "fail", report.format()
    assert result.counterexample is not None and len(result.counterexample.actions) <= 10
    assert re.fullmatch(bad.message, result.violations[0].message), result.violations[0].message


def test_each_broken_subclass_is_one_mechanism_and_its_healthy_package_passes() -> None:
    assert len({b.make for b in BROKEN}) == len(BROKEN)
    healthy = {"stocks": make_stocks_env, "forex": make_forex_env, "gym-trading-env": make_trading_env}
    for bad in BROKEN:
        package = bad.name.split(":")[0].split(" ")[0]
        make = healthy[package]
        kwargs = {"initial_position": 0} if package == "gym-trading-env" else {}
        report = check_trading_env(lambda make=make, kwargs=kwargs: make(steps=12, **kwargs), only=[bad.invariant],
                                   examples=20, max_steps=8, seed=1, database=None)
        assert statuses(report) == {bad.invariant: "pass"}, (bad.name, report.format())


class AccruingPortfolio(Portfolio):  # type: ignore[misc]
    """Interest that accrues every step, as borrow_interest_rate's documentation says."""

    def update_interest(self, borrow_interest_rate: float) -> None:
        self.interest_asset += max(0, -self.asset) * borrow_interest_rate
        self.interest_fiat += max(0, -self.fiat) * borrow_interest_rate


class AccruesInterest(TradingEnv):  # type: ignore[misc]
    def reset(self, *args: Any, **kwargs: Any) -> Any:
        out = super().reset(*args, **kwargs)
        self._portfolio = AccruingPortfolio(asset=self._portfolio.asset, fiat=self._portfolio.fiat)
        return out


def test_an_env_whose_interest_accrues_as_documented_passes_financing_as_declared() -> None:
    """The healthy twin of finding G6: the declared schedule is not one only the buggy env fails."""
    make = lambda: make_margin_trading_env(steps=12, env_class=AccruesInterest)  # noqa: E731
    report = check_trading_env(make, only=["financing-as-declared", "self-financing", "equity-identity",
                                           "reported-equity-matches-ledger", "fees-only-on-trades"],
                               examples=50, max_steps=10, seed=1, database=None)
    assert report.passed, report.format()
    ep = record_episode(make(), [0, 0, 0, 1], seed=0, adapter=GymTradingEnvAdapter())
    assert [r.financing > 0 for r in ep.trace] == [True, True, True, False]  # charged on every step short


def test_a_position_shown_as_a_fraction_of_value_is_observable() -> None:
    """gym-trading-env shows the agent its target (-1, 0, 1, 2), not its units: two shorts of
    -9.97 and -9.99 units after different fees are the same state to the agent, not a hidden
    position (position-observable warned on it before it compared the side, not the size)."""
    report = check_trading_env(make_margin_trading_env, only=["position-observable"], examples=40, max_steps=10,
                               seed=0, database=None)
    assert statuses(report) == {"position-observable": "pass"}, report.format()
