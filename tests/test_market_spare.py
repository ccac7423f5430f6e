"""Random starts (docs/adapters.md, "Random starts"): an adapter's ``market_spare(env)`` makes the
gate inject markets longer than an episode, which reaches the code that picks where an episode
starts. The documented env passes; a bug that only a start past 0 shows is caught with the hook
and missed without it; a hook that returns something else is refused with what to return.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradeguard.env import EnvConfig, Market, TradingEnv
from tradeguard.errors import InvalidConfig
from tradeguard.invariants import NativeAdapter, check_trading_env

DOC = Path(__file__).resolve().parents[1] / "docs" / "adapters.md"
_BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
_NS: dict[str, Any] = {"__name__": "adapters_md"}
exec(compile(_BLOCKS[0], str(DOC), "exec"), _NS)  # CoinEnv, CoinAdapter
(_RANDOM_START,) = [b for b in _BLOCKS if "class RandomStartCoinEnv" in b]
_DOC_RUN = dict(_NS)
exec(compile(_RANDOM_START, str(DOC), "exec"), _DOC_RUN)
RandomStartCoinEnv: Any = _DOC_RUN["RandomStartCoinEnv"]
RandomStartCoinAdapter: Any = _DOC_RUN["RandomStartCoinAdapter"]
CoinAdapter: Any = _NS["CoinAdapter"]


def test_the_documented_random_start_env_passes_on_markets_longer_than_its_episodes() -> None:
    report = _DOC_RUN["report"]
    assert report.passed, report.format()
    assert {r.invariant.id: r.status for r in report.results}["self-financing"] == "pass"


class ResetPriceFromTheHistory(RandomStartCoinEnv):  # type: ignore[misc, valid-type]
    """Reports, at reset, the price at the start of the history instead of the episode's first
    price: the first trade's record is priced wrong whenever the episode starts past 0."""

    def reset(self, *, seed: Any = None, options: Any = None) -> Any:
        obs, info = super().reset(seed=seed, options=options)
        return obs, dict(info, price=self.history[0])


class _ExactMarkets(RandomStartCoinAdapter):  # type: ignore[misc, valid-type]
    def market_spare(self, env: Any) -> int:
        return 0


def test_a_start_bug_is_caught_only_on_markets_longer_than_an_episode() -> None:
    caught = check_trading_env(ResetPriceFromTheHistory, adapter=RandomStartCoinAdapter(), examples=50,
                               max_steps=3, seed=0)
    failed = {r.invariant.id for r in caught.results if r.status == "fail"}
    assert "self-financing" in failed, caught.format()
    cx = next(r for r in caught.results if r.invariant.id == "self-financing").counterexample
    assert cx is not None and cx.market is not None and len(cx.market) > 4  # longer than the 4 an episode needs
    missed = check_trading_env(ResetPriceFromTheHistory, adapter=_ExactMarkets(), examples=50, max_steps=3, seed=0)
    assert missed.passed, missed.format()  # every start is 0: the history's first price is the episode's


class _Spare:
    def __init__(self, spare: Any) -> None:
        self.spare = spare

    def __call__(self, env: Any) -> Any:
        return self.spare


@pytest.mark.parametrize("spare", [-1, 65, 1.5, True, "4"])
def test_a_spare_that_is_not_a_number_of_prices_is_refused(spare: Any) -> None:
    adapter = RandomStartCoinAdapter()
    adapter.market_spare = _Spare(spare)
    with pytest.raises(InvalidConfig, match=r"market_spare\(env\) returned .*; expected a whole number of extra "
                       r"prices from 0 to 64"):
        check_trading_env(RandomStartCoinEnv, adapter=adapter, examples=3, max_steps=3, seed=0)


def test_tradeguards_env_is_checked_from_random_starts_and_its_portfolio_env_is_not() -> None:
    from tradeguard.env import PortfolioEnv

    adapter = NativeAdapter()
    assert adapter.market_spare(TradingEnv()) == 4
    assert adapter.market_spare(PortfolioEnv()) == 0


class ValuesAtTheMarketsStart(TradingEnv):
    """Marks the account at the prices from the market's start rather than the episode's: right
    while every episode starts at 0, wrong from any later start."""

    def reset(self, *, seed: Any = None, options: Any = None) -> Any:
        out = super().reset(seed=seed, options=options)
        market = (options or {}).get("market")
        if market is not None and self._offset:
            self._prices = market.prices[: len(self._prices)].tolist()
        return out


def test_the_built_in_gate_reaches_tradeguards_own_random_start() -> None:
    env = TradingEnv(config=EnvConfig(episode_length=5))
    long = Market(np.arange(10_000, 10_009, dtype=np.int64))
    starts = set()
    for seed in range(20):
        env.reset(seed=seed, options={"market": long})
        starts.add(env._offset)
    assert starts == {0, 1, 2, 3}  # 9 prices, 6 needed: it starts anywhere in the 3 spare
    report = check_trading_env(lambda: ValuesAtTheMarketsStart(config=EnvConfig(episode_length=5)), examples=60,
                               max_steps=5, seed=0, only=["matches-reference"],
                               reference=lambda: TradingEnv(config=EnvConfig(episode_length=5)))
    assert report.results[0].status == "fail", report.format()


def test_the_documented_constructor_data_env_trades_the_markets_the_gate_gives() -> None:
    """docs/adapters.md, "An env that takes its data in its constructor": the subclass trades the
    market given to reset, the env itself its own prices; both pass, the subclass on the gate's markets."""
    (block,) = [b for b in _BLOCKS if "class FixedDataOnMarket" in b]
    ns = dict(_NS)
    exec(compile(block, str(DOC), "exec"), ns)
    assert ns["report"].passed, ns["report"].format()
    given = {"prices": [50.0, 51.5, 49.0, 52.0]}
    on_market, fixed = ns["FixedDataOnMarket"](), ns["FixedDataCoinEnv"]()
    assert on_market.reset(seed=0, options=given)[1]["price"] == 50.0
    assert fixed.reset(seed=0, options=given)[1]["price"] == 30_000.0  # its own data: what the subclass is for
    assert on_market.step(1)[4]["price"] == 51.5


def test_an_env_that_ignores_the_market_it_is_given_is_refused_by_the_gate_and_the_audit() -> None:
    """Without the subclass, the gate (and the black-box reward audit) would report every generated
    market as checked while the env traded its own prices: refused, with the fix."""
    from tradeguard.errors import InvalidConfig
    from tradeguard.invariants.audit import audit_reward

    (block,) = [b for b in _BLOCKS if "class FixedDataOnMarket" in b]
    ns = dict(_NS)
    exec(compile(block, str(DOC), "exec"), ns)
    message = (
        "the env traded the same prices (30,000.00 to 30,150.50 on its first step) on two markets the coin adapter's "
        "reset_options gave it, one rising where the other falls: its reset() ignores options ['prices'], and every "
        "generated market would be reported as checked while the env traded its own data. Make reset() trade the "
        "market it is given (docs/adapters.md, \"An env that takes its data in its constructor\"), or return None "
        "from the adapter's market_length and reset_options to check the env on its own data."
    )
    with pytest.raises(InvalidConfig) as gate:
        check_trading_env(ns["FixedDataCoinEnv"], adapter=CoinAdapter(), examples=5, max_steps=3, seed=0)
    assert str(gate.value) == message
    with pytest.raises(InvalidConfig) as audit:
        audit_reward(ns["FixedDataCoinEnv"], adapter=CoinAdapter(), budget=1, seed=0)
    assert str(audit.value) == message
    assert audit_reward(ns["FixedDataOnMarket"], adapter=CoinAdapter(), budget=1, seed=0) is not None


def test_an_env_that_rescales_the_market_it_is_given_is_not_refused() -> None:
    """Prices divided by the first one (a common normalisation) still follow the market: no refusal."""

    class Normalised(_NS["CoinEnv"]):  # type: ignore[misc, name-defined]
        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
            prices = [float(p) for p in (options or {}).get("prices", self.prices)]
            return super().reset(seed=seed, options={"prices": [100.0 * p / prices[0] for p in prices]})

    report = check_trading_env(Normalised, adapter=CoinAdapter(), examples=10, max_steps=3, seed=0)
    assert report.passed, report.format()


def test_a_black_box_audit_that_could_judge_nothing_is_refused_not_passed(capsys: pytest.CaptureFixture[str]) -> None:
    """With the gym adapter (no rejections, no equity) no finding kind applies: an error, exit 2, not a PASS."""
    from tradeguard._cli import main
    from tradeguard.errors import InvalidConfig
    from tradeguard.invariants.audit import audit_reward

    message = (
        "nothing to audit: none of the 5 finding kinds applies to what the gym adapter supplies (the adapter does not "
        "record rejections; the adapter supplies no equity (neither equity_after in its records nor an "
        "equity(env, info) method), so PnL is unknown). Give an adapter that records rejections and equity "
        "(docs/adapters.md; the black-box audit in docs/reward-audit.md)."
    )
    with pytest.raises(InvalidConfig) as info:
        audit_reward(_NS["CoinEnv"], budget=1, seed=0)
    assert str(info.value) == message
    assert main(["audit-reward", "--env", "tradeguard.env:BatchLaneEnv", "--adapter", "gym", "--budget", "1"]) == 2
    assert "nothing to audit" in capsys.readouterr().err


def test_passes_are_not_claimed_when_every_episode_raised_before_its_first_step() -> None:
    """An env whose reset raises on every generated market: valid-steps-do-not-raise fails, and no other
    invariant reports a pass (each examined no step): each is 'not checked', with why."""

    class RefusesMarkets(_NS["CoinEnv"]):  # type: ignore[misc, name-defined]
        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
            if options:
                raise ValueError("a market needs at least 100 prices")
            return super().reset(seed=seed)

    report = check_trading_env(RefusesMarkets, adapter=CoinAdapter(), examples=10, max_steps=3, seed=0)
    assert report.statuses["valid-steps-do-not-raise"] == "fail"
    crash = report.result("valid-steps-do-not-raise").violations[0].message
    assert crash.startswith("reset(seed=") and "with options {'prices': ...} raised ValueError: a market needs" in crash
    assert [i for i, s in report.statuses.items() if s == "pass"] == []
    notes = {r.note for r in report.results if r.status == "not-applicable" and r.note.startswith("not checked")}
    assert len(notes) == 1 and re.fullmatch(r"not checked: the env raised before a step could be recorded in every one "
                                            r"of the \d+ episodes tried \(see valid-steps-do-not-raise\)", notes.pop())


def test_an_old_api_env_whose_reset_takes_no_market_is_refused_with_the_fix() -> None:
    from tradeguard.errors import InvalidConfig

    class OldCoin(_NS["CoinEnv"]):  # type: ignore[misc, name-defined]
        """CoinEnv on the old gym API: reset() takes nothing and returns the observation; step() returns 4 values."""

        def reset(self) -> Any:  # type: ignore[override]
            obs, self.first_info = super().reset()
            return obs

        def step(self, action: Any) -> Any:
            obs, reward, terminated, truncated, info = super().step(action)
            return obs, reward, terminated or truncated, info

    class OldCoinAdapter(CoinAdapter):  # type: ignore[misc, valid-type]
        def begin(self, env: Any, observation: Any, info: Any) -> None:
            super().begin(env, observation, env.unwrapped.first_info)  # the old reset returns no info

    with pytest.raises(InvalidConfig, match=r"^the env's reset\(\) does not take the market the coin adapter's "
                                            r"reset_options gives it: TypeError: .*unexpected keyword argument "
                                            r"'prices'\. Make reset\(\) take \['prices'\]"):
        check_trading_env(OldCoin, adapter=OldCoinAdapter(), examples=5, max_steps=3, seed=0)
