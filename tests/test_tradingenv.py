"""tradingenv 0.1.3 (PyPI), a real continuous multi-instrument peer, checked through its adapter.

The package speaks the old gym API: tradeguard checks it through OldGymAPI and reports the
old API as a finding. Each finding is pinned twice, as in tests/test_peer_findings.py: by a
reproduction with the package alone, and by the check that finds it. Both expect the
defect: when a release fixes one, its test fails here.

The wheel installs a top-level ``tests`` package into site-packages; the last tests prove
it cannot shadow this project's tests.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradeguard.invariants import OldGymAPI, check_trading_env, speaks_old_api
from tradeguard.invariants.peers import TradingEnvAdapter, TradingEnvMarketEnv, make_tradingenv
from tradeguard.trace import FeeSchedule, TraceMeta

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

ROOT = Path(__file__).resolve().parent.parent
MONEY = ["equity-identity", "self-financing", "fees-only-on-trades", "fees-match-schedule", "financing-as-declared",
         "reported-equity-matches-ledger", "executed-within-requested", "executed-never-exceeds-predicted"]


def xy(prices: dict[str, list[float]], **kwargs: Any) -> Any:
    """The package alone: TradingEnvXY on daily prices, its features the log returns."""
    from tradingenv.env import TradingEnvXY

    index = pd.date_range("2021-03-01", periods=len(next(iter(prices.values()))), freq="D")
    y = pd.DataFrame(prices, index=index)
    x = np.log(y).diff().fillna(0.0)
    return TradingEnvXY(x, y, calendar="24/7", transformer="z-score", spread=0.0, steps_delay=0, **kwargs)


# --------------------------------------------------------------------------- the old API
def test_tradingenv_speaks_the_old_gym_api() -> None:
    env = xy({"A": [100.0, 101.0, 102.0, 103.0], "B": [50.0, 49.0, 51.0, 50.0]})
    assert speaks_old_api(env)
    obs = env.reset()  # no seed, no info
    assert isinstance(obs, np.ndarray)
    assert len(env.step(np.array([0.5, 0.5]))) == 4  # (obs, reward, done, info)


def test_the_check_reports_the_old_api_and_checks_the_env_through_the_wrapper() -> None:
    report = check_trading_env(lambda: make_tradingenv(steps=6), adapter=TradingEnvAdapter(),
                               only=["valid-steps-do-not-raise", "observation-in-space", "step-after-end-refused"],
                               examples=5, max_steps=6, seed=0, database=None)
    assert report.passed, report.format()
    assert report.findings[0].startswith(
        "TradingEnvMarketEnv speaks the old gym API: reset() returns only the observation and takes no seed, "
        "step() returns (observation, reward, done, info)."
    )


def test_the_wrapper_converts_the_old_api() -> None:
    env = OldGymAPI(make_tradingenv(steps=4))
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and info == {}
    *_, terminated, truncated, _ = env.step(np.zeros(2))
    assert (terminated, truncated) == (False, False)


# --------------------------------------------------------------------------- the ledger: no false positive
def test_the_env_is_built_once_per_market_and_each_copy_has_its_own_action_stream() -> None:
    # A TradingEnvXY takes ~20 ms to build; the gate makes an env per probe and resets it on a
    # market of its own, so the env is built only on the first market reset() is given.
    from tradeguard.env import MarketSpec

    built: list[int] = []
    env, twin = make_tradingenv(steps=5), make_tradingenv(steps=5)
    original = env._build
    env._build = lambda market: built.append(1) or original(market)  # type: ignore[method-assign]
    market = MarketSpec(kind="random_walk", start_price=50.0, volatility=0.02).generate(7, np.random.default_rng(3))
    env.reset(market=market)
    env.reset(market=market)
    assert built == [1]
    assert env.env.action_space is env.action_space
    assert env.action_space is not twin.action_space
    assert env.observation_space == twin.observation_space
    env.action_space.seed(1)
    twin.action_space.seed(2)
    assert not np.array_equal(env.action_space.sample(), twin.action_space.sample())
    env.action_space.seed(1)
    twin.action_space.seed(1)
    assert np.array_equal(env.action_space.sample(), twin.action_space.sample())
    # Settings with no exact repr (a numpy array rounds in print) share no template: each env
    # gets the spaces its own settings build.
    close = make_tradingenv(steps=5, max_long=np.array([1.0, 0.5]))
    closer = make_tradingenv(steps=5, max_long=np.array([1.0, 0.5000000001]))
    assert closer.action_space.high[1] == 0.5000000001 and close.action_space.high[1] == 0.5
    fresh = make_tradingenv(steps=5)  # never reset: the default market, as before
    assert fresh.env.action_space is fresh.action_space
    assert [c.symbol for c in fresh.contracts] == ["A", "B"]


def test_the_money_invariants_hold_on_tradingenvs_float_ledger() -> None:
    report = check_trading_env(lambda: make_tradingenv(steps=8), adapter=TradingEnvAdapter(), only=MONEY,
                               examples=15, max_steps=8, seed=0, database=None)
    assert report.passed, report.format()
    assert {r.invariant.id: r.status for r in report.results} == dict.fromkeys(MONEY, "pass")


class UnderstatesTheFee(TradingEnvAdapter):
    """The adapter declares half the env's fee: the schedule check must see it."""

    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        from dataclasses import replace

        meta = super().meta(env, seed=seed)
        return replace(meta, fee_schedule=FeeSchedule(rate=float(env.unwrapped.env_kwargs["fee"]) / 2))


def test_the_fee_check_is_live_on_tradingenv() -> None:
    report = check_trading_env(lambda: make_tradingenv(steps=4), adapter=UnderstatesTheFee(),
                               only=["fees-match-schedule"], examples=15, max_steps=4, seed=0, database=None)
    (result,) = report.results
    assert result.status == "fail", report.format()
    assert "the declared schedule (1 bps) charges" in result.violations[0].message


class DepositsTooMuch(TradingEnvMarketEnv):
    """Broken on purpose: its broker starts with 1% more cash than the settings say."""

    def _build(self, market: Any) -> Any:
        said = self.env_kwargs["cash"]
        self.env_kwargs["cash"] = said * 1.01
        try:
            return super()._build(market)
        finally:
            self.env_kwargs["cash"] = said


@pytest.mark.parametrize(("factory", "status"), [(TradingEnvMarketEnv, "pass"), (DepositsTooMuch, "fail")])
def test_the_starting_ledger_is_checked_on_tradingenv(factory: Any, status: str) -> None:
    report = check_trading_env(lambda: factory(steps=3), adapter=TradingEnvAdapter(),
                               only=["initial-state-consistent"], examples=5, max_steps=3, seed=0, database=None)
    (result,) = report.results
    assert result.status == status, report.format()
    if status == "fail":
        assert "cash 10,100.00 where the settings give 10,000.00" in result.violations[0].message


# --------------------------------------------------------------------------- finding: NaN rewards on flat prices
def test_tradingenv_rewards_are_nan_when_the_prices_never_move() -> None:
    # env.py: TradingEnvXY scales its LogReturn reward by the standard deviation of the
    # training prices' log returns; on prices that never move it is 0, and rewards.py
    # divides by self.scale without a check: a step that trades nothing earns 0 / 0 = NaN
    # (one that pays a fee earns -inf, clipped to -reward_clipping).
    env = xy({"A": [100.0] * 6, "B": [50.0] * 6})
    env.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, reward, _, _ = env.step(np.array([0.0, 0.0]))
        _, clipped, _, _ = env.step(np.array([0.5, 0.5]))
    assert math.isnan(reward)
    assert clipped == -2.0


def test_the_check_finds_tradingenvs_nan_rewards() -> None:
    report = check_trading_env(lambda: make_tradingenv(steps=4), adapter=TradingEnvAdapter(), only=["finite-rewards"],
                               examples=20, max_steps=4, seed=0, database=None)
    (result,) = report.results
    assert result.status == "fail", report.format()
    assert result.violations[0].message == "reward is nan"
    market = result.counterexample.market if result.counterexample else None
    assert market is not None and len(set(market)) == 1  # the prices never move


# --------------------------------------------------------------------------- finding: a ruin inside a step raises
def test_tradingenv_raises_out_of_step_when_a_step_ruins_the_account() -> None:
    # env.py, TradingEnv.step: a ruin while rebalancing ends the episode (the broker's
    # EndOfEpisodeError is caught around broker.rebalance and sets done), but the reward is
    # computed after it, outside that try: rewards.py LogReturn.calculate calls
    # broker.net_liquidation_value(), whose raise_if_broke defaults to True. A short at 100%
    # of the account whose price triples leaves a net liquidation value of about -cash, and
    # step() raises instead of returning done=True.
    from tradingenv.broker.broker import EndOfEpisodeError

    env = xy({"A": [1.0, 1.0, 1.0, 3.0, 3.0, 3.0], "B": [1.0] * 6})
    env.reset()
    _, _, done, _ = env.step(np.array([-1.0, 0.0]))
    assert not done
    with pytest.raises(EndOfEpisodeError, match=r"Net liquidation state of the account is \$-"):
        env.step(np.array([-1.0, 0.0]))


@pytest.mark.slow
def test_the_check_finds_that_a_ruin_inside_a_step_raises_and_its_counterexample_replays() -> None:
    from tradingenv.broker.broker import EndOfEpisodeError

    from tradeguard.env import Market

    report = check_trading_env(lambda: make_tradingenv(steps=4), adapter=TradingEnvAdapter(),
                               only=["valid-steps-do-not-raise"], examples=20, max_steps=4, seed=0, database=None,
                               timeout=60.0)
    (result,) = report.results
    assert result.status == "fail", report.format()
    assert "EndOfEpisodeError: Net liquidation state of the account is $-" in result.violations[0].message
    cx = result.counterexample
    assert cx is not None and cx.market is not None
    # The counterexample shows every price (the adapter prices asset B from the market rotated),
    # so it replays on a fresh env.
    env = make_tradingenv(steps=4)
    env.reset(market=Market(np.array(cx.market, dtype=np.int64)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for action in cx.actions[:-1]:
            env.step(np.asarray(action, dtype=np.float32))
        with pytest.raises(EndOfEpisodeError):
            env.step(np.asarray(cx.actions[-1], dtype=np.float32))


# --------------------------------------------------------------------------- finding: dust holdings are zeroed
def test_tradingenv_zeroes_a_holding_under_1e7_units_and_its_value_leaves_the_books() -> None:
    # broker/broker.py, Broker.transact: after each trade, a holding whose size is under the
    # broker's epsilon (1e-7 units) is set to 0 ("a design choice not to deal with such
    # errors"), with no trade, no cash and no fee for it. A target weight of 1e-9 sells down
    # to ~1e-9 units, and those units, and their value, vanish from the account.
    env = xy({"A": [100.0] * 6, "B": [50.0] * 6}, fee=0.0002, margin=0.0)
    env.reset()
    broker = env.broker
    env.step(np.array([1.0, 0.0]))
    held = {str(c): float(q) for c, q in broker.holdings_quantity.items()}
    assert held["Asset(A)"] == 1.0
    _, _, _, info = env.step(np.array([1e-9, 0.0]))
    (trade,) = info["_rebalancing"].trades
    left = held["Asset(A)"] + float(trade.quantity)  # what the trade leaves: ~1e-9 units
    assert 0 < left < 1e-7
    after = {str(c): float(q) for c, q in broker.holdings_quantity.items()}
    assert after["Asset(A)"] == 0.0
    assert broker.net_liquidation_value() == after["Cash(USD)"]  # the ~1e-7 of value left is gone


def test_the_check_finds_the_zeroed_holding_as_a_self_financing_break() -> None:
    from tradeguard.invariants import check_trace, record_episode

    episode = record_episode(OldGymAPI(make_tradingenv(steps=4)), [np.array([1.0, 0.0]), np.array([1e-9, 0.0])], seed=0,
                             adapter=TradingEnvAdapter())
    found = [v for v in check_trace(episode.trace) if v.invariant == "self-financing"]
    assert len(found) == 1 and found[0].step == 1, found
    assert re.fullmatch(r"position of A went [\d.]+ -> 0 units but the trade was -[\d.]+ units", found[0].message), \
        found[0].message


# --------------------------------------------------------------------------- its `tests` package cannot shadow ours
def test_tradingenv_installs_a_top_level_tests_package() -> None:
    import importlib.util

    spec = importlib.util.find_spec("tests")
    assert spec is not None and spec.submodule_search_locations is not None
    assert any("site-packages" in p for p in spec.submodule_search_locations)  # the hazard is really here


def test_this_suite_never_imports_a_package_called_tests() -> None:
    # pytest imports each test module by its own name from this folder ("prepend" mode, pinned
    # in pyproject.toml; no tests/__init__.py), and the shared helpers by their own names
    # (broken_envs, float_envs, broken_portfolios): nothing resolves through `tests`.
    assert not (ROOT / "tests" / "__init__.py").exists()
    for path in (ROOT / "tests").glob("*.py"):
        assert not re.search(r"^\s*(import|from) tests\b", path.read_text(), re.MULTILINE), path.name
    import broken_envs
    import conftest

    assert Path(broken_envs.__file__).parent == ROOT / "tests"
    assert Path(conftest.__file__).parent == ROOT / "tests"
    assert "tests" not in sys.modules or all(
        "site-packages" not in getattr(m, "__file__", "") or not n.startswith("tests.")
        for n, m in sys.modules.items() if n == "tests" or n.startswith("tests.")
    )


@pytest.mark.slow
def test_collection_from_the_repository_root_takes_only_this_projects_tests() -> None:
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "tests/test_portfolio.py", "tests/test_tradingenv.py"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    collected = [line for line in out.stdout.splitlines() if "::" in line]
    assert collected and all(line.startswith("tests/test_") for line in collected)
    assert not any("site-packages" in line for line in out.stdout.splitlines())
