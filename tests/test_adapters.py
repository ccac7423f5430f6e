"""Adapters, `check_trading_env` on other envs, isolation, bounds, and `tradeguard check --env`.

The example adapter of docs/adapters.md is executed from the document itself, then
driven with deliberately broken versions of its env: an adapter is only worth
something if the invariants it feeds still catch bugs. Toy envs below hang, crash and
touch process-wide state on purpose; the real gym-anytrading and gym-trading-env
packages (the `peers` extra) are checked through their built-in adapters.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import re
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from tradeguard._cli import main
from tradeguard.env import Market
from tradeguard.errors import InvalidConfig, InvalidMarket
from tradeguard.invariants import NativeAdapter, check_trace, record_episode
from tradeguard.invariants._adapter import ADAPTERS, GymAdapter, adapter_for, get_adapter
from tradeguard.invariants._gate import check_trading_env
from tradeguard.invariants.peers._anytrading import (
    AnyTradingAdapter,
    make_forex_env,
    make_stocks_env,
)
from tradeguard.invariants.peers._gym_trading_env import GymTradingEnvAdapter, make_trading_env

DOC = Path(__file__).resolve().parents[1] / "docs" / "adapters.md"
_BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
_DOC: dict[str, Any] = {"__name__": "adapters_md"}
exec(compile(_BLOCKS[0], str(DOC), "exec"), _DOC)  # the env and adapter (the check is block 2)
CoinEnv: Any = _DOC["CoinEnv"]
CoinAdapter: Any = _DOC["CoinAdapter"]


def _block(marker: str) -> str:
    """The one python block of docs/adapters.md that contains ``marker``."""
    (block,) = [b for b in _BLOCKS if marker in b]
    return block


def statuses(report: Any) -> dict[str, str]:
    return {r.invariant.id: r.status for r in report.results}


# --------------------------------------------------------------------------- the documented example
def test_the_documented_adapter_example_runs_and_passes(capsys: pytest.CaptureFixture[str]) -> None:
    ns = dict(_DOC)
    exec(compile(_block("print(report.format())"), str(DOC), "exec"), ns)
    report = ns["report"]
    assert report.passed
    assert "29 passed, 0 failed, 5 not applicable" in capsys.readouterr().out
    na = {i for i, s in statuses(report).items() if s == "not-applicable"}
    assert na == {"no-add-without-profitable-position", "position-within-limits", "leverage-within-limit",
                  "financing-as-declared", "executed-within-requested"}
    assert report.adapter == "coin"
    exec(compile(_block("report.statuses"), str(DOC), "exec"), ns)  # "Reading the report", as written
    assert report.statuses == statuses(report)
    assert report.result("fees-match-schedule").invariant.id == "fees-match-schedule"
    with pytest.raises(InvalidConfig, match=r"has no result for 'fees-match-schedul'; it has .*Did you mean "
                                            r"'fees-match-schedule'\?"):
        report.result("fees-match-schedul")
    # The money invariants run on the env's own floats: nothing is switched off to avoid a false positive.
    for money in ("equity-identity", "self-financing", "fees-only-on-trades", "fees-match-schedule",
                  "reported-equity-matches-ledger", "reward-consistent-with-pnl", "metrics-match-trace"):
        assert statuses(report)[money] == "pass", money


def test_the_documented_adapter_is_at_most_40_lines_and_uses_no_unit_tricks() -> None:
    adapter = _BLOCKS[0][_BLOCKS[0].index("class CoinAdapter") :]
    assert len(adapter.splitlines()) <= 40
    assert "round(" not in adapter and "minor_unit=1.0" in adapter  # the env's currency floats, as they are
    env = CoinEnv()
    _, info = env.reset(seed=0)
    _, _, _, _, info = env.step(1)
    assert 0 < info["coins"] < 1 and isinstance(info["cash"], float)  # a fractional buy with all the cash


def test_the_documented_fractional_buy_is_a_healthy_ledger_line() -> None:
    """The false positive of the integer ledger: all the cash into 0.333 coins, 0.1% fee; cash left at -1.8e-12."""
    ep = record_episode(CoinEnv(), [1, 0, 2], seed=0, adapter=CoinAdapter())
    buy = ep.trace[0]
    assert buy.quantity == pytest.approx(10_000 / 30_030) and buy.fee == pytest.approx(10_000 * 0.001 / 1.001)
    assert -1e-9 < buy.cash_after < 0  # all of it: float64 leaves -1.8e-12, zero within precision
    assert check_trace(ep.trace, reported=ep.reported) == []


class FeeTwice(CoinEnv):  # type: ignore[misc, valid-type]
    """Every trade pays the fee twice: cash, the reported fee and the reward all agree."""

    def fee(self, coins: Any, price: Any) -> Any:
        return 2 * super().fee(coins, price)


class CashLeak(CoinEnv):  # type: ignore[misc, valid-type]
    """Cash loses the fee a second time; the fee reported is the fee charged once."""

    def step(self, action: Any) -> Any:
        obs, reward, term, trunc, info = super().step(action)
        self.cash -= info["fee"]
        info["cash"] = self.cash
        return obs, reward, term, trunc, info


class SellsWithoutCoins(CoinEnv):  # type: ignore[misc, valid-type]
    def step(self, action: Any) -> Any:
        if action == 2 and not self.coins:
            self.coins = 0.5  # the rule "SELL needs coins" forgotten: sells coins it never had
        return super().step(action)


class LyingMask(CoinEnv):  # type: ignore[misc, valid-type]
    def _out(self, fee: Any, reason: Any) -> Any:
        obs, info = super()._out(fee, reason)
        info["action_mask"] = [True, True, True]
        return obs, info


class StaleValue(CoinEnv):  # type: ignore[misc, valid-type]
    """The reported portfolio value is marked at the previous step's price."""

    def _out(self, fee: Any, reason: Any) -> Any:
        obs, info = super()._out(fee, reason)
        info["portfolio_value"] = self.cash + self.coins * self.prices[max(self.t - 1, 0)]
        return obs, info


class CountsRequests(CoinEnv):  # type: ignore[misc, valid-type]
    """The trade counter counts requested trades, rejected ones too (the seed's Bug 1)."""

    def step(self, action: Any) -> Any:
        out = super().step(action)
        if out[4]["reason"] is not None:
            self.trades += 1
            out[4]["trades"] = self.trades
        return out


@pytest.mark.parametrize(
    ("env", "invariant", "message"),
    [
        (FeeTwice, "fees-match-schedule", r"fee charged [\d,.]+ on -?[\d.]+ units at [\d,.]+ \(notional [\d,.]+\); the "
         r"declared schedule \(10 bps\) charges [\d,.]+ - charged twice\?"),
        (CashLeak, "self-financing", r"cash changed by -?[\d,.]+ but the trade of [+-][\d.]+ units at [\d,.]+ with fee "
         r"[\d.]+ accounts for -?[\d,.]+: value lost \([\d.]+ vanished\)"),
        (SellsWithoutCoins, "no-sell-without-position", r"SELL executed with position 0 units \(no position to sell\); predicted SELL"),
        (LyingMask, "mask-matches-execution", r"the mask allowed (BUY|SELL) but it was rejected \(\w+\)"),
        (StaleValue, "reported-equity-matches-ledger", r"the env reports a portfolio value of [\d,.]+ after step \d+; "
         r"its ledger says [\d,.]+ \(cash [-\d,.e]+ plus positions at the next price\) \(off by -?[\d,.e-]+; "
         r"precision float64\)"),
        (CountsRequests, "metrics-match-trace", r"trades reported \d+; the trace gives \d+"),
    ],
    ids=["fee-twice", "cash-leak", "sell-without-coins", "lying-mask", "stale-value", "counts-requests"],
)
def test_the_documented_adapter_catches_broken_envs(env: Any, invariant: str, message: str) -> None:
    report = check_trading_env(env, adapter=CoinAdapter(), only=[invariant], examples=60, max_steps=3, seed=0)
    (result,) = report.results
    assert result.status == "fail", report.format()
    assert re.fullmatch(message, result.violations[0].message), result.violations[0].message
    assert result.counterexample is not None and len(result.counterexample.actions) <= 3


def test_the_documented_multi_instrument_example_runs_passes_and_catches_a_wrong_leg() -> None:
    ns = dict(_DOC)
    exec(compile(_block("class PairEnv"), str(DOC), "exec"), ns)
    exec(compile(_block("pair = check_trading_env"), str(DOC), "exec"), ns)
    pair = ns["pair"]
    assert pair.passed
    s = statuses(pair)
    for money in ("self-financing", "fees-match-schedule", "executed-within-requested", "no-sell-without-position",
                  "reported-equity-matches-ledger"):
        assert s[money] == "pass", money
    adapter = _block("class PairAdapter")[_block("class PairAdapter").index("class PairAdapter") :]
    assert len(adapter.splitlines()) <= 40

    class SellsTheOtherCoin(ns["PairEnv"]):  # type: ignore[misc, name-defined]
        """A sell order for one coin fills on the other."""

        def fill(self, ordered: Any) -> Any:
            return np.where(ordered < 0, np.roll(ordered, 1), ordered)

    report = check_trading_env(SellsTheOtherCoin, adapter=ns["PairAdapter"](), only=["executed-within-requested"],
                               examples=60, max_steps=4, seed=0)
    (result,) = report.results
    assert result.status == "fail", report.format()
    assert re.fullmatch(r"[AB]: (executed -[\d.]+ units although 0 were requested \(the opposite side, or a trade "
                        r"nobody asked for\)|executed 0 of the -[\d.]+ units requested, with no rejection and no "
                        r"reason: a partial fill or a rejection must say why)", result.violations[0].message)
    assert result.counterexample is not None and len(result.counterexample.actions) <= 4


# --------------------------------------------------------------------------- adapters by name and by env
def test_adapters_are_found_by_name_with_a_suggestion_for_typos() -> None:
    assert {get_adapter(n).name for n in ADAPTERS} == set(ADAPTERS)
    with pytest.raises(InvalidConfig, match=r"adapter='anytrading-stock'.*Did you mean 'anytrading-stocks'\?"):
        get_adapter("anytrading-stock")


def test_the_adapter_is_chosen_from_the_env_class() -> None:
    from tradeguard.env import TradingEnv

    assert isinstance(adapter_for(TradingEnv()), NativeAdapter)
    assert adapter_for(make_stocks_env(steps=3)).name == "anytrading-stocks"
    assert adapter_for(make_forex_env(steps=3)).name == "anytrading-forex"
    with warnings.catch_warnings():  # importing gym_trading_env.environments sets filterwarnings("error")
        assert adapter_for(make_trading_env(steps=3)).name == "gym-trading-env"
    assert isinstance(adapter_for(CoinEnv()), GymAdapter)


def test_record_episode_without_an_adapter_chooses_one_for_the_env() -> None:
    from tradeguard.env import EnvConfig, TradingEnv

    # CoinEnv reports its mask as info["action_mask"], from reset on: GymAdapter supplies it
    assert record_episode(CoinEnv(), [1, 2], seed=0).trace.meta.supplies == frozenset({"t", "predicted", "reward", "mask"})
    own = record_episode(TradingEnv(config=EnvConfig(episode_length=4)), [1, 2], seed=0)
    assert own.trace.meta.env_id.startswith("tradeguard") and len(own.trace) == 2


def test_a_plain_gym_env_gets_the_contract_and_not_applicable_for_the_rest() -> None:
    report = check_trading_env(CoinEnv, examples=10, max_steps=3, seed=0)
    s = statuses(report)
    assert report.adapter == "gym" and report.passed
    assert {i for i, v in s.items() if v == "pass"} == {
        "finite-rewards", "replay-determinism", "returned-data-not-reused", "observation-in-space",
        "action-range-enforced", "valid-steps-do-not-raise", "step-after-end-refused", "seeding-honored",
    }
    note = next(r.note for r in report.results if r.invariant.id == "self-financing")
    assert note == (
        "the gym adapter does not supply cash_after, cash_before, equity_after, equity_before, fee, "
        "next_price, position_after, position_before, price, quantity"
    )


# --------------------------------------------------------------------------- the built-in adapters, on the real packages
def test_anytrading_stocks_records_what_executed_not_what_was_asked() -> None:
    env = make_stocks_env(steps=6)
    ep = record_episode(env, [0, 1, 1, 0, 0], seed=0, adapter=AnyTradingAdapter("stocks"))
    names = ep.trace.meta.action_names
    assert [names[r.executed] for r in ep.trace] == ["(no trade)", "Buy", "(no trade)", "Sell", "(no trade)"]
    assert [r.reason for r in ep.trace] == ["NO_POSITION", None, "ALREADY_IN_POSITION", None, "NO_POSITION"]
    held = [(r.position_before > 0, r.position_after > 0) for r in ep.trace]
    assert held == [(False, False), (False, True), (True, True), (True, False), (False, False)]
    assert [r.cash_after for r in ep.trace][:2] == [1.0, 0.0]  # total_profit while flat; all of it in shares
    assert {"cash_after", "position_before", "fee", "components"} <= ep.trace.meta.supplies


def test_anytrading_forex_left_holds_the_quote_currency_while_short() -> None:
    ep = record_episode(make_forex_env(steps=4), [1, 0, 0], seed=0, adapter=AnyTradingAdapter("forex"))
    held = [(r.position_before > 0, r.position_after > 0) for r in ep.trace]
    assert held == [(True, False), (False, True), (True, True)]  # starts Short: in the quote currency
    assert [r.reason for r in ep.trace] == [None, None, "ALREADY_SHORT"]
    right = record_episode(make_forex_env(steps=4, unit_side="right"), [1, 0, 0], seed=0,
                           adapter=AnyTradingAdapter("forex"))
    assert [(r.position_before > 0, r.position_after > 0) for r in right.trace] == [
        (False, True), (True, False), (False, False)]  # Long holds the base currency


def test_gym_trading_env_records_the_target_reached() -> None:
    with warnings.catch_warnings():
        env = make_trading_env(steps=5, initial_position=0)
    ep = record_episode(env, [1, 1, 0], seed=0, adapter=GymTradingEnvAdapter())
    names = ep.trace.meta.action_names
    assert names == ("position 0", "position 1", "(no trade)")
    assert [names[r.executed] for r in ep.trace] == ["position 1", "(no trade)", "position 0"]
    assert [r.reason for r in ep.trace] == [None, "ALREADY_AT_TARGET", None]


def test_peer_envs_trade_the_market_given_to_reset() -> None:
    market = Market(np.array([100, 120, 90, 150, 80, 110, 130, 70], dtype=np.int64), 0.01, "test")
    env = make_stocks_env(steps=3)
    obs, _ = env.reset(seed=0, options={"market": market})
    assert env.unwrapped.prices.tolist() == pytest.approx([1.0, 1.2, 0.9, 1.5, 0.8, 1.1, 1.3, 0.7])
    assert obs[:, 0].tolist() == pytest.approx([1.2, 0.9, 1.5, 0.8])  # the window before the first step
    with warnings.catch_warnings():
        gte = make_trading_env(steps=7)
    gte.reset(seed=0, options={"market": market})
    assert gte.unwrapped.df["close"].tolist() == pytest.approx([1.0, 1.2, 0.9, 1.5, 0.8, 1.1, 1.3, 0.7])
    with pytest.raises(InvalidMarket, match=r"a market of 3 prices cannot feed StocksEnv with window_size=4; it needs at least 6"):
        env.reset(options={"market": Market(np.array([1, 2, 3], dtype=np.int64))})


# --------------------------------------------------------------------------- isolation
class Messy(CoinEnv):  # type: ignore[misc, valid-type]
    """Touches every kind of process-wide state a careless env can touch."""

    def __init__(self) -> None:
        super().__init__()
        warnings.simplefilter("ignore")
        logging.getLogger().setLevel(logging.DEBUG)
        np.seterr(all="ignore")

    def reset(self, *, seed: Any = None, options: Any = None) -> Any:
        np.random.rand()
        random.random()
        print("new episode")
        return super().reset(seed=seed, options=options)


def test_changes_to_process_state_are_findings_and_the_host_keeps_its_own() -> None:
    filters, err, level = warnings.filters[:], np.geterr(), logging.getLogger().level
    np.random.seed(7)
    random.seed(7)
    report = check_trading_env(Messy, examples=5, max_steps=3, seed=0, only=["finite-rewards"])
    assert warnings.filters == filters and np.geterr() == err and logging.getLogger().level == level
    assert np.random.rand() == np.random.RandomState(7).rand()
    assert random.random() == random.Random(7).random()
    found = "\n".join(report.findings)
    assert "make_env() changed the process-wide warning filters: added warnings.filterwarnings('ignore', category=Warning): every warning anywhere in the program is now hidden" in found
    assert "make_env() changed the root logger: level WARNING -> DEBUG" in found
    assert "make_env() changed numpy's floating-point error handling" in found
    assert "reset(seed=0) draws from numpy's global random generator (np.random.*)" in found
    assert "the env draws from Python's global random module" in found
    assert "reset(seed=0) wrote to stdout (1 line, first: 'new episode')" in found
    assert len(report.findings) == 6  # each reported once, not once per call


class DrawsItsInitialPositionGlobally(CoinEnv):  # type: ignore[misc, valid-type]
    def reset(self, *, seed: Any = None, options: Any = None) -> Any:
        super().reset(seed=seed, options=options)
        self.coins = float(np.random.randint(2))  # gym-trading-env's pattern
        return self._out(0.0, None)


def test_an_env_seeded_from_the_global_rng_fails_replay_determinism_under_isolation() -> None:
    # The env's private stream continues from call to call: a restored-per-call RNG would
    # hand every reset the same draw and hide the bug.
    report = check_trading_env(DrawsItsInitialPositionGlobally, examples=20, max_steps=3, seed=0, only=["replay-determinism"])
    assert statuses(report) == {"replay-determinism": "fail"}


# --------------------------------------------------------------------------- bounds: hangs and crashes
RELEASE = threading.Event()


class Hangs(CoinEnv):  # type: ignore[misc, valid-type]
    """SELL after a BUY spins forever, swallowing every ordinary exception."""

    def step(self, action: Any) -> Any:
        if action == 2 and self.coins:
            while not RELEASE.is_set():
                try:  # noqa: SIM105 - the point: an env that swallows every ordinary exception
                    time.sleep(0.005)
                except Exception:
                    pass
        return super().step(action)


def test_a_hanging_env_is_a_finding_with_its_reproduction_not_a_hang_of_the_checker() -> None:
    started = time.monotonic()
    report = check_trading_env(Hangs, examples=30, max_steps=3, seed=0, timeout=0.3)
    assert time.monotonic() - started < 20
    crash = next(r for r in report.results if r.invariant.id == "valid-steps-do-not-raise")
    assert crash.status == "fail" and not report.passed
    assert re.fullmatch(
        r"the example's 0\.3 s budget ran out during step\(2\) \(which had run 0\.\d s of it\): the env "
        r"hangs, or is too slow for timeout=0\.3",
        crash.violations[0].message,
    )
    cx = crash.counterexample
    assert cx is not None and cx.actions[-1] == 2 and 1 in cx.actions  # SELL after a BUY
    assert cx.action_names[-1] == "action 2"  # the gym adapter knows ids, not names
    notes = {r.note for r in report.results if r.status == "not-applicable"}
    assert "not checked: the env timed out 3 times (see valid-steps-do-not-raise)" in notes
    assert report.findings[-1] == "the check stopped early: 3 examples ran out of their 0.3 s budget"


def test_a_hang_is_bounded_off_the_main_thread_too() -> None:
    out: dict[str, Any] = {}

    def run() -> None:
        out["report"] = check_trading_env(Hangs, examples=30, max_steps=3, seed=0, timeout=0.2, only=["valid-steps-do-not-raise"])

    worker = threading.Thread(target=run)
    try:
        worker.start()
        worker.join(30)
        assert not worker.is_alive()
        (result,) = out["report"].results
        assert result.status == "fail" and "budget ran out during step(2)" in result.violations[0].message
    finally:
        RELEASE.set()  # let the abandoned daemon threads finish
        time.sleep(0.05)
        RELEASE.clear()


class SlowFirstImport(CoinEnv):  # type: ignore[misc, valid-type]
    """Its first construction in the process takes 0.6 s (as importing a package can on a busy
    machine); every later one is instant."""

    imported = False

    def __init__(self) -> None:
        if not SlowFirstImport.imported:
            time.sleep(0.6)
            SlowFirstImport.imported = True
        super().__init__()


class NeverBuilt(CoinEnv):  # type: ignore[misc, valid-type]
    """Its construction never returns."""

    def __init__(self) -> None:
        while not RELEASE.is_set():
            time.sleep(0.005)
        super().__init__()


def test_the_first_episode_pays_the_envs_one_time_costs_under_its_own_budget() -> None:
    """A slow first import is not a hang: with timeout=0.3 the 0.6 s first make_env() passes."""
    SlowFirstImport.imported = False
    report = check_trading_env(SlowFirstImport, examples=5, max_steps=3, seed=0, timeout=0.3,
                               only=["valid-steps-do-not-raise"], database=None)
    (result,) = report.results
    assert result.status == "pass", result.violations


def test_a_make_env_that_never_returns_fails_when_the_first_episodes_budget_runs_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tradeguard.invariants._gate as gate

    monkeypatch.setattr(gate, "FIRST_EPISODE_TIMEOUT", 0.5)  # 120 s in earnest
    try:
        report = check_trading_env(NeverBuilt, examples=5, max_steps=3, seed=0, timeout=0.2, database=None)
    finally:
        RELEASE.set()
        time.sleep(0.05)
        RELEASE.clear()
    crash = next(r for r in report.results if r.invariant.id == "valid-steps-do-not-raise")
    assert crash.status == "fail"
    assert re.fullmatch(
        r"the first episode's 0\.5 s budget \(for the env's one-time costs: imports, data\) ran out during "
        r"make_env\(\) \(which had run 0\.\d s of it\): the env hangs",
        crash.violations[0].message,
    ), crash.violations[0].message


class CrashesLate(CoinEnv):  # type: ignore[misc, valid-type]
    """Raises on the last step of the data: beyond the generated episodes, inside the fast-forward."""

    def __init__(self) -> None:
        super().__init__(prices=tuple(range(10_000, 10_012)))

    def step(self, action: Any) -> Any:
        if self.t == len(self.prices) - 2:
            raise ZeroDivisionError("division by zero in the final mark-to-market")
        return super().step(action)


def test_a_crash_outside_the_generated_episodes_fails_valid_steps_with_its_call() -> None:
    report = check_trading_env(CrashesLate, examples=10, max_steps=3, seed=0, only=["step-after-end-refused"])
    crash = next(r for r in report.results if r.invariant.id == "valid-steps-do-not-raise")
    assert crash.status == "fail"
    line = next(i for i, text in enumerate(Path(__file__).read_text().splitlines(), 1)
                if 'raise ZeroDivisionError("division by zero in the final' in text)
    assert crash.violations[0].message == ("step(0) raised ZeroDivisionError: division by zero in the final mark-to-market, "
                                           f"in step() at {os.path.relpath(__file__)}:{line}")
    assert crash.counterexample is not None and len(crash.counterexample.actions) == 11


def test_an_env_that_cannot_be_built_is_reported_not_raised() -> None:
    def broken() -> Any:
        raise FileNotFoundError("prices.csv")

    report = check_trading_env(broken, examples=5, seed=0)
    assert not report.passed
    crash = next(r for r in report.results if r.status == "fail")
    assert crash.invariant.id == "valid-steps-do-not-raise"
    assert re.fullmatch(r"make_env\(\) raised FileNotFoundError: prices\.csv, in broken\(\) at \S*test_adapters\.py:\d+",
                        crash.violations[0].message), crash.violations[0].message
    assert {r.note for r in report.results if r.status == "not-applicable"} == {
        "not checked: the env could not reset and step once (see valid-steps-do-not-raise)"
    }


def test_an_adapter_that_does_not_fit_the_env_is_a_clear_error() -> None:
    with pytest.raises(InvalidConfig, match=r"the anytrading-stocks adapter failed on the env's first episode: KeyError: 'position'"):
        check_trading_env(CoinEnv, adapter=AnyTradingAdapter("stocks"), examples=5, seed=0)



def test_an_adapter_hook_that_raises_is_named_with_its_line() -> None:
    """The adapter's own mistake (here in meta(), run after the first reset) says where it is."""

    class MetaRaises(CoinAdapter):  # type: ignore[misc, valid-type]
        def meta(self, env: Any, *, seed: int | None) -> Any:
            return dataclasses.replace(super().meta(env, seed=seed).action_names, seed=seed)  # not a dataclass

    with pytest.raises(InvalidConfig) as info:
        check_trading_env(CoinEnv, adapter=MetaRaises(), examples=5, seed=0)
    assert re.fullmatch(r"the coin adapter failed on the env's first (step|episode): TypeError: .*, in meta\(\) at "
                        r"\S*test_adapters\.py:\d+\. Check that the adapter fits this env\.", str(info.value)), info.value

NATIVE_MISFIT = (
    "adapter 'tradeguard' (NativeAdapter) was given for a CoinEnv, which is not tradeguard's "
    "TradingEnv: that adapter reads the records TradingEnv keeps itself (trace_meta and "
    "info['record']), and this env keeps none. Leave the adapter out to have adapter_for(env) "
    "choose one (GymAdapter for a plain gymnasium env, which knows nothing of its trading), or "
    "write an adapter for this env to check its trading (docs/adapters.md)."
)


def test_the_native_adapter_given_for_another_env_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InvalidConfig) as info:
        check_trading_env(CoinEnv, adapter=NativeAdapter(), examples=2, seed=0)
    assert str(info.value) == NATIVE_MISFIT
    status = main(["check", "--env", "test_adapters:CoinEnv", "--adapter", "tradeguard", "--examples", "2",
                   "--database", "none"])
    assert status == 2
    assert NATIVE_MISFIT in capsys.readouterr().err


class NoObservationSpace:
    """Has reset, step and action_space, but no observation_space."""

    action_space = gym.spaces.Discrete(2)

    def reset(self, **kwargs: Any) -> Any:
        return np.zeros(1), {}

    def step(self, action: Any) -> Any:
        return np.zeros(1), 0.0, True, False, {}


@pytest.mark.parametrize(
    ("factory", "name", "message"),
    [
        (lambda: None, "mine:make_env", "the env factory mine:make_env returned None, not a gymnasium env: the check "
         "needs reset, step, action_space and observation_space, and it has none of them."),
        (lambda: "prices.csv", "mine:load", "the env factory mine:load returned a str ('prices.csv'), not a gymnasium "
         "env: the check needs reset, step, action_space and observation_space, and it has none of them."),
        (lambda: list(range(100)), "mine:data", "the env factory mine:data returned a list ([0, 1, 2, 3, 4, 5, 6, 7, 8, "
         "9, 10, 11, 12, 13, 14, 15, 16...), not a gymnasium env: the check needs reset, step, "
         "action_space and observation_space, and it has none of them."),
        (NoObservationSpace, None, "the env factory test_adapters:NoObservationSpace returned a NoObservationSpace "
         "(<test_adapters.NoObservationSpace object at 0x...>), not a gymnasium env: the check needs reset, "
         "step, action_space and observation_space, and it has no observation_space."),
    ],
    ids=["none", "str", "long-repr", "no-observation-space"],
)
def test_a_factory_that_returns_no_env_is_blamed_not_the_adapter(factory: Any, name: str | None, message: str) -> None:
    fix = " Give a zero-argument callable that returns a fresh env each call (e.g. mypackage.envs:make_env)."
    with pytest.raises(InvalidConfig) as info:
        check_trading_env(factory, name=name, examples=2, seed=0)
    text = re.sub(r" at 0x[0-9a-f]+>", " at 0x...>", str(info.value))
    assert text == message + fix


def test_check_env_blames_a_factory_that_returns_no_env(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    assert main(["check", "--env", "os:getcwd", "--examples", "2", "--database", "none"]) == 2
    assert capsys.readouterr().err == (
        "tradeguard check: error: the env factory os:getcwd returned a str ('/'), not a gymnasium env: the "
        "check needs reset, step, action_space and observation_space, and it has none of them. Give a "
        "zero-argument callable that returns a fresh env each call (e.g. mypackage.envs:make_env).\n"
    )


def test_the_report_says_when_the_adapter_left_the_trading_invariants_unchecked() -> None:
    report = check_trading_env(CoinEnv, examples=5, max_steps=3, seed=0)
    # (CoinEnv's info["action_mask"], present from reset on, is supplied by GymAdapter: no "action masks")
    assert report.format().splitlines()[-2:] == [
        "8 passed, 0 failed, 26 not applicable",
        "23 invariants were not checked: the gym adapter does not supply positions, cost bases, cash, equity, "
        "prices, fees, financing, instrument legs, the env's reported equity, executions or reward components. "
        "Write an adapter for this env (about 40 lines, see docs/adapters.md) to check them.",
    ]
    unchecked = [i for i, s in statuses(report).items() if s == "not-applicable" and i != "metrics-match-trace"]
    # (episode-length-as-configured and position-observable are not applicable for want of a declaration)
    unchecked = [i for i in unchecked if i not in ("episode-length-as-configured", "position-observable")]
    assert report.as_dict()["not_checked_by_adapter"] == unchecked and len(unchecked) == 23
    # An adapter that supplies nearly everything: one line for the fields it lacks (not for what its env
    # does not declare, like position limits it does not have).
    coin = check_trading_env(CoinEnv, adapter=CoinAdapter(), examples=5, max_steps=3, seed=0)
    assert coin.format().splitlines()[-3:] == [
        "29 passed, 0 failed, 5 not applicable",
        "3 invariants were not checked: the coin adapter does not supply cost bases, financing or instrument "
        "legs. An adapter that supplies them checks them too (docs/adapters.md).",
        "2 passes had nothing to check on this env (penalty-matches-rejections, disabled-actions-never-execute): "
        "their notes say why.",
    ]
    assert coin.as_dict()["not_checked_by_adapter"] == [
        "no-add-without-profitable-position", "financing-as-declared", "executed-within-requested"]
    # Not applicable for want of reported metrics is no adapter's doing: no such line.
    from tradeguard.env import EnvConfig, TradingEnv

    own = check_trading_env(lambda: TradingEnv(config=EnvConfig(episode_length=4)), examples=2, max_steps=3, seed=0,
                            only=["metrics-match-trace", "finite-rewards"])
    assert own.format().splitlines()[-1] == "1 passed, 0 failed, 1 not applicable"
    assert own.as_dict()["not_checked_by_adapter"] == []


def _step_after_end_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "even though this environment has already returned" in str(w.message)]


def test_the_deliberate_step_past_the_end_shows_no_gymnasium_warning(recwarn: pytest.WarningsRecorder) -> None:
    # gymnasium warns on a step after termination; step-after-end-refused takes that step on
    # purpose, so its warning is the probe's business, not the user's.
    from tradeguard.invariants import check_env_contract

    filters = list(warnings.filters)
    assert check_env_contract(lambda: gym.make("CartPole-v1"), [0], seed=0, only=["step-after-end-refused"])
    report = check_trading_env(lambda: gym.make("CartPole-v1"), examples=3, max_steps=3, seed=0,
                               only=["step-after-end-refused"])
    assert statuses(report) == {"step-after-end-refused": "fail"}
    assert _step_after_end_warnings(list(recwarn)) == []
    assert list(warnings.filters) == filters
    # The warning is real: the same step taken outside the probe shows it.
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    while not env.step(0)[2]:
        pass
    env.step(0)
    assert len(_step_after_end_warnings(list(recwarn))) == 1


def test_action_spaces_the_gate_cannot_drive_are_refused_with_a_way_forward() -> None:
    class Nested(CoinEnv):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.action_space = gym.spaces.Dict({"side": gym.spaces.Discrete(2)})

    with pytest.raises(InvalidConfig, match=r"check_trading_env drives gymnasium.spaces.Discrete, MultiDiscrete "
                       r"and Box spaces. Flatten the space"):
        check_trading_env(Nested, examples=5, seed=0)

    class Shifted(CoinEnv):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.action_space = gym.spaces.Discrete(2, start=1)

    with pytest.raises(InvalidConfig, match=r"Discrete spaces numbered from 0 .* wrap the env"):
        check_trading_env(Shifted, examples=5, seed=0)


# --------------------------------------------------------------------------- the command line
def test_check_env_shortcut_prints_the_same_json_shape_with_every_status(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", "--env", "anytrading-stocks", "--examples", "5", "--max-steps", "6", "--json", "--database", "none"])
    out = json.loads(capsys.readouterr().out)
    assert status == 1 and out["passed"] is False
    assert out["env"] == "gym-anytrading StocksEnv" and out["adapter"] == "anytrading-stocks"
    assert {i["status"] for i in out["invariants"]} == {"pass", "fail", "warn", "not-applicable"}
    for inv in out["invariants"]:
        assert set(inv) >= {"id", "statement", "family", "scope", "status", "examples", "violations"}
    failed = {i["id"] for i in out["invariants"] if i["status"] == "fail"}
    assert failed == {"returned-data-not-reused", "action-range-enforced", "step-after-end-refused", "seeding-honored"}
    warned = {i["id"] for i in out["invariants"] if i["status"] == "warn"}
    assert warned == {"position-observable"}  # its observation is the price window alone


def test_check_env_module_factory_with_an_adapter_class(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", "--env", "test_adapters:CoinEnv", "--adapter", "test_adapters:CoinAdapter",
                   "--examples", "5", "--max-steps", "3", "--database", "none"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.startswith("tradeguard check: test_adapters:CoinEnv via the coin adapter")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env", "anytrading-stock"], r"--env 'anytrading-stock'; expected one of tradeguard/Trading-v0, anytrading-stocks, anytrading-forex, gym-trading-env, tradeguard/Portfolio-v0, tradingenv, tradeguard/TradingBatch-v0 or MODULE:FACTORY .*Did you mean 'anytrading-stocks'\?"),
        (["--env", "no_such_module_xyz:make"], r"--env 'no_such_module_xyz:make': no module named 'no_such_module_xyz': looked in the current directory \(.+\) and on the Python path"),
        (["--env", "test_adapters:CoinEnvv"], r"--env 'test_adapters:CoinEnvv': module test_adapters has no 'CoinEnvv'\. Did you mean 'CoinEnv'\?"),
        (["--env", "test_adapters:CoinEnv", "--adapter", "test_adapters:statuses"], r"--adapter 'test_adapters:statuses' is a function, not a trace adapter"),
        (["--env", "anytrading-stocks", "--scenario", "v10"], r"--env 'anytrading-stocks' checks another env; --scenario"),
    ],
    ids=["typo", "no-module", "no-attribute", "not-an-adapter", "env-and-scenario"],
)
def test_check_env_usage_errors_exit_2_with_a_clear_message(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", *argv, "--examples", "2", "--database", "none"]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_gym_trading_env_changes_warning_filters_at_import_found_by_the_cli() -> None:
    # A fresh interpreter: in this one the package may already be imported (import-time
    # changes happen once per process).
    proc = subprocess.run(
        [sys.executable, "-m", "tradeguard", "check", "--env", "gym-trading-env", "--only", "finite-rewards",
         "--examples", "3", "--max-steps", "5", "--json", "--database", "none"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # stdout is JSON only: nothing the env printed leaked into it
    assert out["findings"][0].startswith(
        "make_env() changed the process-wide warning filters: added warnings.filterwarnings('error', "
        "category=Warning): every warning anywhere in the program now raises an exception"
    )
    assert any(f.startswith("reset(seed=0) draws from numpy's global random generator") for f in out["findings"])


def test_reported_metrics_with_a_name_no_invariant_checks_are_refused_not_passed() -> None:
    """An env's 'buys' has no counterpart in the trace: refused with the names there are, not ignored
    (metrics-match-trace would pass having checked nothing)."""

    class ReportsBuys(CoinAdapter):  # type: ignore[misc, valid-type]
        def reported_metrics(self, env: Any, info: Any) -> Any:
            return {"trades": info["trades"], "buys": info["trades"]}

    with pytest.raises(InvalidConfig) as info:
        check_trading_env(CoinEnv, adapter=ReportsBuys(), examples=5, max_steps=3, seed=0)
    message = str(info.value)
    assert message.startswith("the coin adapter's reported_metrics() returned 'buys', which is not a metric tradeguard "
                              "can check; expected names among steps, episode_reward, ")
    assert "action_distribution_executed" in message and "Leave out what the env reports" in message


def test_a_reported_metrics_hook_that_raises_is_named_with_its_line() -> None:
    class ReadsAMissingKey(CoinAdapter):  # type: ignore[misc, valid-type]
        def reported_metrics(self, env: Any, info: Any) -> Any:
            return {"trades": info["trade_count"]}

    with pytest.raises(InvalidConfig) as info:
        check_trading_env(CoinEnv, adapter=ReadsAMissingKey(), examples=5, max_steps=3, seed=0)
    assert re.fullmatch(r"the coin adapter's reported_metrics\(\) raised KeyError: 'trade_count', in reported_metrics\(\) "
                        r"at \S*test_adapters\.py:\d+\. It is called at the end of each episode with its last info "
                        r"\(docs/adapters\.md\)\.", str(info.value)), info.value


def test_reported_metrics_are_not_asked_of_an_episode_of_no_step() -> None:
    """reset's info need not carry the env's counters: an episode of no step has no metrics to hand over."""
    calls: list[Any] = []

    class Counting(CoinAdapter):  # type: ignore[misc, valid-type]
        def reported_metrics(self, env: Any, info: Any) -> Any:
            calls.append(info)
            return {"trades": info["trades"]}

    assert record_episode(CoinEnv(), [], seed=0, adapter=Counting()).reported is None and calls == []
    assert record_episode(CoinEnv(), [0], seed=0, adapter=Counting()).reported == {"trades": 0} and len(calls) == 1


def test_a_coerced_action_is_described_from_the_state_begin_read_before_the_step() -> None:
    """An adapter that reads the starting state from the env in begin() (an old-API env has no reset info)
    must see it before the probe's step: step(1.5) taken as BUY is said to execute as BUY, not HOLD."""

    class TruncatesActions(CoinEnv):  # type: ignore[misc, valid-type]
        def step(self, action: Any) -> Any:
            return super().step(int(action))  # 1.5 -> 1, with no error

    class ReadsTheEnv(CoinAdapter):  # type: ignore[misc, valid-type]
        def begin(self, env: Any, observation: Any, info: Any) -> None:
            e = env.unwrapped
            price = e.prices[e.t]
            self.last = dict(info, coins=e.coins, cash=e.cash, price=price, portfolio_value=e.cash + e.coins * price)

        def record(self, env: Any, step: Any) -> Any:
            was = self.last
            record = super().record(env, step)  # what executed, from the coins it holds before and after:
            moved = step.info["coins"] - was["coins"]
            return record._replace(executed=1 if moved > 0 else 2 if moved < 0 else 0)

    report = check_trading_env(TruncatesActions, adapter=ReadsTheEnv(), examples=5, max_steps=3, seed=0,
                               only=["action-range-enforced"])
    messages = [v.message for v in report.result("action-range-enforced").violations]
    assert any(m.startswith("step(1.5) ") and m.endswith("; it executed as BUY") for m in messages), messages


def test_a_buy_that_opens_or_adds_is_the_buy_kind_checked_without_false_positives() -> None:
    """BUY 10 shares, flat or not (the common kind): declared 'buy' it passes the rule invariants; declared
    'open' it would fail no-buy-while-in-position on a healthy second buy; a 'buy' that sells is caught."""

    class AddingCoin(CoinEnv):  # type: ignore[misc, valid-type]
        """BUY spends half the cash, flat or holding coins."""

        def step(self, action: Any) -> Any:
            if int(action) == 1:
                price = self.prices[self.t]
                before = self.cash + self.coins * price
                bought = self.cash / 2 / (price * (1 + self.fee_rate))
                fee = self.fee(bought, price)
                self.coins, self.cash = self.coins + bought, self.cash - bought * price - fee
                self.trades += 1
                self.t += 1
                obs, info = self._out(fee, None)
                return obs, info["portfolio_value"] - before, False, self.t == len(self.prices) - 1, info
            return super().step(action)

    class BuyKind(CoinAdapter):  # type: ignore[misc, valid-type]
        kind = "buy"

        def meta(self, env: Any, *, seed: Any) -> Any:
            meta = super().meta(env, seed=seed)
            return dataclasses.replace(meta, action_kinds=("hold", self.kind, "close"))

    rules = ["no-buy-while-in-position", "allowed-actions-execute", "rejection-reason-holds", "no-sell-without-position"]
    as_buy = check_trading_env(AddingCoin, adapter=BuyKind(), examples=60, max_steps=3, seed=0, only=rules)
    assert as_buy.passed, as_buy.format()
    assert as_buy.result("allowed-actions-execute").status == "pass" and not as_buy.result("allowed-actions-execute").idle
    assert as_buy.result("no-buy-while-in-position").idle  # no action is an 'open'
    as_open = check_trading_env(AddingCoin, adapter=type("OpenKind", (BuyKind,), {"kind": "open"})(), examples=60,
                                max_steps=3, seed=0, only=["no-buy-while-in-position"])
    assert as_open.statuses == {"no-buy-while-in-position": "fail"}

    class BuyThatSells(AddingCoin):  # BUY while holding sells everything instead
        def step(self, action: Any) -> Any:
            return super().step(2 if int(action) == 1 and self.coins else action)

    broken = check_trading_env(BuyThatSells, adapter=BuyKind(), examples=60, max_steps=3, seed=0,
                               only=["allowed-actions-execute"])
    (v, *_) = broken.result("allowed-actions-execute").violations
    assert "BUY" in v.message and "bought into the position" in v.message, v.message
