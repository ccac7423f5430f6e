"""The reward audit of any replay-deterministic env, through its adapter (the black-box search).

The toy env of docs/adapters.md (CoinEnv, three actions, its adapter a page long) with its
reward broken on purpose, one bug per kind; its healthy twin (reward = the change of
equity) must pass. On tradeguard's own env, the black-box search must agree with the exact
oracle market by market: the same optimum and the same findings (the full horizon-8
comparison is benchmarks/blackbox_vs_oracle.py). The peers' findings are pinned here, each
confirmed in the package's source.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradeguard._cli import main
from tradeguard.env import Market, TradingEnv, load_scenario
from tradeguard.errors import InvalidConfig, InvariantViolation
from tradeguard.invariants import NativeAdapter
from tradeguard.invariants.audit import (
    EnvRewardAuditReport,
    RewardAuditReport,
    assert_reward_sound,
    audit_reward,
)
from tradeguard.invariants.audit import _blackbox as bb
from tradeguard.invariants.audit._reward_audit import _Auditor, _policies

DOC = Path(__file__).resolve().parents[1] / "docs" / "adapters.md"
_NS: dict[str, Any] = {"__name__": "adapters_md"}
exec(compile(re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0], str(DOC), "exec"), _NS)
CoinEnv: Any = _NS["CoinEnv"]
CoinAdapter: Any = _NS["CoinAdapter"]

FLAT = (100.0,) * 5
# Small searches. The kinds fire while exploring; the budget only cuts shrinking short
# (then the smallest market found so far is reported), so what is asserted does not depend on it.
FAST: dict[str, Any] = {"budget": 15.0, "max_examples": 12, "horizon": 4, "seed": 0, "max_move_bps": 100}


def _coin(cls: Any = None) -> Any:
    cls = cls or Penalized
    return lambda: cls(prices=FLAT, fee_rate=0.01)  # 1% a side


class Penalized(CoinEnv):  # type: ignore[misc, valid-type]
    """The healthy reward: the change of equity, and -1 for a rejected action."""

    def penalty(self, info: Any) -> float:
        return -1.0 if info["reason"] else 0.0

    def step(self, action: Any) -> Any:
        obs, reward, term, trunc, info = super().step(action)
        return obs, reward + self.penalty(info), term, trunc, info


class PaysForTrying(Penalized):
    """A rejected SELL earns +0.5 instead of the penalty (a curriculum that pays for trying)."""

    def penalty(self, info: Any) -> float:
        return 0.5 if info["reason"] == "NO_POSITION" else super().penalty(info)


class FeeBlind(Penalized):
    """The reward leaves the fee out: round trips that lose money to fees look free or profitable."""

    def step(self, action: Any) -> Any:
        obs, reward, term, trunc, info = super().step(action)
        return obs, reward + info["fee"], term, trunc, info


class PaysTheLevel(Penalized):
    """The V1-V9 bug: the level of the open gain (not its change) is paid on every step."""

    entry = 0.0

    def step(self, action: Any) -> Any:
        obs, reward, term, trunc, info = super().step(action)
        if info["coins"] and not self.entry:
            self.entry = self.prices[self.t - 1]  # the price the coins were bought at
        elif not info["coins"]:
            self.entry = 0.0
        level = (info["price"] - self.entry) * info["coins"]  # info["price"]: the price now
        return obs, reward + 2.0 * level, term, trunc, info

    def reset(self, *, seed: Any = None, options: Any = None) -> Any:
        self.entry = 0.0
        return super().reset(seed=seed, options=options)


class PunishesTrading(Penalized):
    """Every trade costs -1000 reward: sitting out is optimal whatever the market does."""

    def step(self, action: Any) -> Any:
        obs, reward, term, trunc, info = super().step(action)
        return obs, reward - (1000.0 if info["fee"] else 0.0), term, trunc, info


@pytest.fixture(scope="module")
def healthy() -> EnvRewardAuditReport:
    report = audit_reward(_coin(), adapter=CoinAdapter(), **FAST)
    assert isinstance(report, EnvRewardAuditReport)
    return report


def test_the_healthy_env_passes_with_an_exact_search(healthy: EnvRewardAuditReport) -> None:
    assert healthy.passed and healthy.findings == ()
    assert healthy.search == "exhaustive" and healthy.exact
    assert (healthy.actions, healthy.horizon, healthy.markets) == (3, 4, "injected")
    assert healthy.not_applicable == {}
    assert healthy.explored > 0 and healthy.steps > 0
    assert "exhaustive: every one of 3^4 = 81 action sequences per market (exact)" in healthy.format()


@pytest.mark.parametrize(
    ("env", "kinds", "moves", "examples"),
    [
        (PaysForTrying, {"rejection-in-optimum", "invalid-not-worse-than-hold"}, 100, 12),
        (FeeBlind, {"pnl-regret"}, 100, 12),  # rises smaller than the fees
        (PaysTheLevel, {"never-close-optimum"}, 300, 40),  # rises worth holding, falls worth selling
        (PunishesTrading, {"idle-optimum"}, 300, 12),
    ],
    ids=lambda x: x.__name__ if isinstance(x, type) else "",
)
def test_each_broken_reward_is_caught_with_a_replayable_counterexample(
    env: Any, kinds: set[str], moves: int, examples: int
) -> None:
    report = audit_reward(_coin(env), adapter=CoinAdapter(), **{**FAST, "max_move_bps": moves, "max_examples": examples})
    assert isinstance(report, EnvRewardAuditReport)
    assert kinds <= set(report.kinds), report.format()
    for f in report.findings:
        cex = f.counterexample
        assert cex.market is not None and len(cex.market) == len(FLAT) and cex.exact
        # The counterexample replays: the same actions on the same market give the same rewards.
        e = env(prices=FLAT, fee_rate=0.01)
        e.reset(seed=cex.seed, options=CoinAdapter().reset_options(Market(np.array(cex.market), minor_unit=cex.minor_unit)))
        rewards = [e.step(a)[1] for a in cex.shaped_optimal.actions]
        assert rewards == list(cex.shaped_optimal.rewards)
        assert f"then env.step(a) for a in {list(cex.shaped_optimal.actions)}" in cex.format()


def test_the_fee_blind_reward_is_reported_as_reward_hacking() -> None:
    report = audit_reward(_coin(FeeBlind), adapter=CoinAdapter(), **FAST)
    f = report.finding("pnl-regret")
    assert f is not None
    assert "reward hacking" in f.message and f.counterexample.detail["versus_doing_nothing_percent"] < 0
    assert f.counterexample.shaped_optimal.trades > 0 and f.counterexample.pnl_optimal.pnl == 0


def test_findings_the_adapter_cannot_support_are_listed_not_passed() -> None:
    class Blind(CoinAdapter):  # type: ignore[misc, valid-type]
        """Records rejections, not equity: the PnL findings cannot be judged."""

        def meta(self, env: Any, *, seed: Any) -> Any:
            return dataclasses.replace(super().meta(env, seed=seed),
                                       supplies=frozenset({"t", "predicted", "executed", "rejected", "reason", "reward"}))

    report = audit_reward(_coin(FeeBlind), adapter=Blind(), **FAST)
    assert set(report.not_applicable) == {"idle-optimum", "never-close-optimum", "pnl-regret"}
    assert not {f.kind for f in report.findings} & set(report.not_applicable)
    assert "supplies no equity" in report.not_applicable["pnl-regret"]
    text = report.format()
    assert "not applicable: pnl-regret" in text and "3 of 5 kinds not applicable" in text
    # With nothing at all to judge, the audit is refused (tests/test_market_spare.py), never passed.


def test_a_non_deterministic_env_is_refused() -> None:
    class Noisy(CoinEnv):  # type: ignore[misc, valid-type]
        calls = 0

        def step(self, action: Any) -> Any:
            Noisy.calls += 1
            obs, reward, term, trunc, info = super().step(action)
            return obs, reward + (0.001 * (Noisy.calls % 3)), term, trunc, info

    with pytest.raises(InvalidConfig, match="not replay-deterministic"):
        audit_reward(_coin(Noisy), adapter=CoinAdapter(), **FAST)


def test_a_state_key_that_is_not_the_whole_state_is_refused() -> None:
    sc = _scenario("v10.1", 4)

    class ForgetsTheCurriculum(NativeAdapter):
        def state_key(self, env: Any) -> Any:
            return (env.unwrapped.shaper_state.steps, env.unwrapped.state)

    with pytest.raises(InvalidConfig, match=r"state_key\(\) is not the env's whole state"):
        audit_reward(lambda: TradingEnv(scenario=sc), adapter=ForgetsTheCurriculum(), search="memo", **FAST)


def test_a_baseline_factory_lists_the_markets_where_the_optimum_changed() -> None:
    report = audit_reward(_coin(FeeBlind), adapter=CoinAdapter(), baseline=_coin(), **FAST)
    b = report.baseline
    assert b is not None
    # The fee-blind reward pays round trips that lose to fees (pnl-regret) and a buy-and-hold that
    # loses its entry fee (never-close-optimum: reward +0.99 for a -0.98% PnL); the baseline has neither.
    assert b.new_findings == ("never-close-optimum", "pnl-regret") and b.resolved_findings == ()
    assert b.baseline_kinds == () and set(b.new_findings) == set(report.kinds)
    assert b.markets_changed == len(b.changed) > 0
    c = b.changed[0]
    assert c["actions"] != c["baseline_actions"] and c["pnl"] < c["baseline_pnl"]
    # Named by its factory; its markets in currency, as the findings show them (the JSON keeps minor units).
    assert b.baseline == "test_blackbox_reward_audit:_coin.<locals>.<lambda>"
    text = report.format()
    assert f"compared with baseline {b.baseline}:" in text
    shown = " ".join(f"{p * 0.01:,.2f}" for p in c["market"])
    assert f"  market {shown}\n" in text and all(isinstance(p, int) for p in c["market"])
    same = audit_reward(_coin(), adapter=CoinAdapter(), baseline=_coin(), **FAST)
    assert same.baseline is not None and same.baseline.markets_changed == 0 and same.baseline.new_findings == ()
    with pytest.raises(InvariantViolation, match="reward audit failed: never-close-optimum, pnl-regret"):
        assert_reward_sound(_coin(FeeBlind), adapter=CoinAdapter(), baseline=_coin(), **FAST)


def test_beyond_the_exhaustive_limit_the_beam_runs_and_says_it_is_not_proven() -> None:
    report = audit_reward(_coin(FeeBlind), adapter=CoinAdapter(), max_sequences=10, **FAST)
    assert report.search == "beam" and not report.exact
    assert "NOT proven optimal" in report.format()
    f = report.finding("pnl-regret")
    assert f is not None and "not proven optimal" in f.message


# --------------------------------------------------------------------------- against the exact oracle


def _scenario(name: str, steps: int) -> Any:
    sc = load_scenario(name)
    return dataclasses.replace(sc, env=dataclasses.replace(sc.env, episode_length=steps))


@pytest.mark.parametrize("name", ["default", "v9", "v10", "v10.1"])
@pytest.mark.parametrize(("search", "horizon"), [("exhaustive", 3), ("memo", 4)])
def test_the_black_box_agrees_with_the_exact_oracle_market_by_market(name: str, search: str, horizon: int) -> None:
    sc = _scenario(name, horizon)
    setup = bb._setup(
        name, lambda: TradingEnv(scenario=sc), NativeAdapter(), horizon=horizon, search=search,
        max_sequences=10**6, deadline=math.inf, max_move_bps=500, pnl_tolerance=0.01, beam_width=64,
        max_states=10**6, seed=0,
    )
    oracle = _Auditor(sc.env, pnl_tolerance=0.01, deadline=math.inf, policies=_policies(sc.env))
    rng = np.random.default_rng(7)
    kinds: set[str] = set()
    for i in range(8):
        moves = rng.integers(-500, 501, size=horizon) if i % 2 else rng.integers(-60, 61, size=horizon)
        prices = bb._prices(10_000, [int(m) for m in moves])
        a = setup.analyse((0, prices))
        o = oracle.analyse(sc.reward, prices)
        assert a.exact and a.search == search
        assert a.shaped.actions == tuple(int(x) for x in o.shaped.predicted), (prices, a.shaped.labels(), o.shaped.labels())
        assert a.shaped_value == pytest.approx(o.shaped.shaped_return, rel=1e-9, abs=1e-9)
        assert a.pnl.pnl == o.pnl.pnl
        assert set(a.fired) == set(o.fired), prices
        kinds |= set(a.fired)
    if name == "v10.1":
        assert "rejection-in-optimum" in kinds  # the comparison covers the findings, not only quiet markets


def test_a_factory_of_tradeguards_env_goes_to_the_exact_oracle_unless_an_adapter_is_given() -> None:
    sc = _scenario("v10.1", 6)
    exact = audit_reward(lambda: TradingEnv(scenario=sc), budget=10, max_examples=8, horizon=(2, 3), seed=0)
    assert isinstance(exact, RewardAuditReport) and "rejection-in-optimum" in exact.kinds
    sc3 = _scenario("v10.1", 3)
    black = audit_reward(lambda: TradingEnv(scenario=sc3), adapter="tradeguard", budget=10, max_examples=4, horizon=3, seed=0)
    assert isinstance(black, EnvRewardAuditReport) and "rejection-in-optimum" in black.kinds
    assert black.search == "exhaustive"


def test_bad_arguments_are_refused_by_name() -> None:
    with pytest.raises(InvalidConfig, match="adapter= is for an env factory"):
        audit_reward("v10", adapter="tradeguard")
    with pytest.raises(InvalidConfig, match="search='best'; expected one of auto, exhaustive, memo, beam"):
        audit_reward(_coin(), adapter=CoinAdapter(), search="best")
    with pytest.raises(InvalidConfig, match="search='memo' needs the adapter to declare the env's state"):
        audit_reward(_coin(), adapter=CoinAdapter(), search="memo")
    with pytest.raises(InvalidConfig, match="options of the black-box search"):
        audit_reward("v10", search="beam")
    with pytest.raises(InvalidConfig, match="returned a int, not a gymnasium env"):
        audit_reward(lambda: 3, adapter=CoinAdapter())
    with pytest.raises(InvalidConfig, match=r"a black-box env.s baseline is a second env factory"):
        audit_reward(_coin(), adapter=CoinAdapter(), baseline="v10")


# --------------------------------------------------------------------------- the peers, confirmed in their source


def test_gym_anytrading_stocks_reward_ignores_the_fees_it_charges() -> None:
    # gym_anytrading/envs/stocks_env.py: _calculate_reward pays price_diff = current_price -
    # last_trade_price when a long closes; _update_profit multiplies total_profit by
    # (1 - trade_fee_ask_percent) * (1 - trade_fee_bid_percent) = 0.995 * 0.99. A rise of less
    # than ~1.5% between buy and sell is a positive reward and a loss of money.
    from tradeguard.invariants.peers import AnyTradingAdapter, make_stocks_env

    adapter = AnyTradingAdapter("stocks")
    setup = bb._setup(
        "stocks", functools.partial(make_stocks_env, steps=4), adapter, horizon=4, search="auto",
        max_sequences=10**6, deadline=math.inf, max_move_bps=500, pnl_tolerance=0.01, beam_width=64,
        max_states=10**6, seed=0,
    )
    rising = (10_000,) * 4 + (10_000, 10_050, 10_100, 10_150, 10_200)  # 4 window ticks, then +0.5% a step
    a = setup.analyse((0, rising))
    assert a.exact and "pnl-regret" in a.fired
    assert a.shaped.names == ("Buy", "Buy", "Buy", "Sell") and a.shaped.shaped_return == pytest.approx(1.5)
    # (the env keeps its prices as float32)
    assert a.shaped.pnl_percent == pytest.approx(100 * (0.995 * 0.99 * 102.0 / 100.5 - 1), rel=1e-3)
    assert a.shaped.pnl < 0 and a.pnl.pnl == 0
    assert "reward hacking" in bb._message("pnl-regret", a)


def test_gym_anytrading_forex_reward_ignores_the_fee_it_charges() -> None:
    # gym_anytrading/envs/forex_env.py: _calculate_reward pays (+/-)price_diff * 10000 pips on every
    # flip; _update_profit subtracts trade_fee = 0.0003 from the price of each closed Short
    # (unit_side='left', the default). On moves of 2 pips every flip is a positive reward and costs
    # money: the reward optimum flips on every move and makes less than the PnL optimum.
    from tradeguard.invariants.peers import AnyTradingAdapter, make_forex_env

    setup = bb._setup(
        "forex", functools.partial(make_forex_env, steps=6), AnyTradingAdapter("forex"), horizon=6, search="auto",
        max_sequences=10**6, deadline=math.inf, max_move_bps=500, pnl_tolerance=0.01, beam_width=64,
        max_states=10**6, seed=0,
    )
    wiggle = (100_000,) * 4 + (100_000, 99_980, 100_000, 99_980, 100_000, 99_980, 100_000)  # 1.00000 -/+ 2 pips
    a = setup.analyse((0, wiggle))
    assert a.exact and "pnl-regret" in a.fired
    flips = sum(r.executed in (0, 1) for r in a.shaped.records)
    assert flips >= 4 and a.shaped.shaped_return == pytest.approx(2.0 * flips, rel=1e-3)
    assert a.fired["pnl-regret"]["regret_percent"] > 0.02


def test_gym_trading_env_log_return_reward_is_sound_on_what_was_searched() -> None:
    # gym_trading_env/environments.py: basic_reward_function is log(valuation_t / valuation_t-1),
    # whose sum is log(final / initial): the reward optimum is the PnL optimum. Its reset draws the
    # initial position from numpy's global RNG unless initial_position is given: the audit refuses
    # the default as not replay-deterministic, and passes with initial_position=0.
    from tradeguard.invariants.peers import GymTradingEnvAdapter, make_trading_env

    with pytest.raises(InvalidConfig, match="not replay-deterministic"):
        audit_reward(functools.partial(make_trading_env, steps=4), adapter=GymTradingEnvAdapter(), **FAST)
    report = audit_reward(
        functools.partial(make_trading_env, steps=4, initial_position=0), adapter=GymTradingEnvAdapter(), **FAST
    )
    assert report.passed and report.exact and report.explored > 0


def test_the_cli_audits_another_env(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["audit-reward", "--env", "anytrading-stocks", "--horizon", "4", "--budget", "60", "--max-examples", "8", "--json"]
    assert main(args) in (0, 1)
    out = json.loads(capsys.readouterr().out)
    assert out["search"] == "exhaustive" and out["exact"] is True and out["horizon"] == 4
    assert set(out["not_applicable"]) == {"rejection-in-optimum", "invalid-not-worse-than-hold"}
    assert main(["audit-reward", "--env", "gym-trading-env", "--env-kwargs", "[1]"]) == 2
    assert "--env-kwargs must be a JSON object" in capsys.readouterr().err
    assert main(["audit-reward", "--env", "CartPole-v9"]) == 2
    assert "neither a built-in peer" in capsys.readouterr().err
    assert main(["audit-reward", "--env", "anytrading-stocks", "--scenario", "v10"]) == 2
    assert main(["audit-reward", "--scenario", "v10", "--search", "beam"]) == 2
    assert "--search beam is for --env" in capsys.readouterr().err
    assert main(["audit-reward", "--scenario", "v10", "--start-price", "1.0"]) == 2
    assert "--start-price is for --env" in capsys.readouterr().err
    assert main(["audit-reward", "--env", "anytrading-forex", "--start-price", "0"]) == 2
    assert "--start-price 0.0 must be greater than 0" in capsys.readouterr().err
    assert main(["audit-reward", "--max-move-bps", "0"]) == 2
    assert "--max-move-bps 0 is out of range" in capsys.readouterr().err


# ----------------------------------------------------------------------------- snapshots


_LEDGER: dict[str, float] = {}


class GlobalLedger(Penalized):
    """Keeps its cash in a module global: a snapshot (a pickle) cannot copy it, so copies diverge."""

    def reset(self, *, seed: Any = None, options: Any = None) -> Any:
        out = super().reset(seed=seed, options=options)
        _LEDGER["cash"] = self.cash
        return out

    def step(self, action: Any) -> Any:
        self.cash = _LEDGER["cash"]
        out = super().step(action)
        _LEDGER["cash"] = self.cash
        return out


class KeepsAGenerator(Penalized):
    """Holds a generator (of step counts): it cannot be pickled, so it cannot be snapshot."""

    def reset(self, *, seed: Any = None, options: Any = None) -> Any:
        self.ticks = (i for i in range(10**6))
        return super().reset(seed=seed, options=options)

    def step(self, action: Any) -> Any:
        next(self.ticks)
        return super().step(action)


def _same_audit(a: EnvRewardAuditReport, b: EnvRewardAuditReport) -> None:
    assert a.kinds == b.kinds
    for fa, fb in zip(a.findings, b.findings, strict=True):
        assert fa.counterexample == fb.counterexample
        assert fa.details == fb.details
    assert (a.search, a.exact, a.explored) == (b.search, b.exact, b.explored)


@pytest.mark.parametrize("cls", [Penalized, PaysForTrying, FeeBlind])
def test_snapshots_and_replay_give_the_same_audit(cls: Any) -> None:
    opts = {**FAST, "budget": 600.0, "max_examples": 6}
    snap = audit_reward(_coin(cls), adapter=CoinAdapter(), stepping="snapshots", **opts)
    replay = audit_reward(_coin(cls), adapter=CoinAdapter(), stepping="replay", **opts)
    assert snap.stepping == "snapshots" and replay.stepping == "replay"
    assert snap.steps < replay.steps
    _same_audit(snap, replay)
    assert "stepping: snapshots" in snap.format()


def test_snapshots_agree_with_replay_on_tradeguards_env_memoized() -> None:
    # Horizon 2, three markets: already v10.1's three findings, in 6 s (horizon 4 took 80 s).
    sc = _scenario("v10.1", 2)
    make = lambda: TradingEnv(scenario=sc)  # noqa: E731
    opts = {"budget": 600.0, "max_examples": 3, "horizon": 2, "seed": 0, "search": "memo"}
    snap = audit_reward(make, adapter=NativeAdapter(), stepping="snapshots", **opts)
    replay = audit_reward(make, adapter=NativeAdapter(), stepping="replay", **opts)
    assert snap.search == "memo" and snap.stepping == "snapshots"
    assert {f.kind for f in snap.findings} >= {"rejection-in-optimum", "invalid-not-worse-than-hold"}
    _same_audit(snap, replay)


@pytest.mark.parametrize(
    ("cls", "why"),
    [(GlobalLedger, "did not replay like the env itself"), (KeepsAGenerator, "could not be stepped from a snapshot")],
)
def test_an_env_whose_snapshots_lie_is_replayed_and_says_why(cls: Any, why: str) -> None:
    opts = {**FAST, "budget": 600.0, "max_examples": 6}
    auto = audit_reward(_coin(cls), adapter=CoinAdapter(), **opts)
    assert auto.stepping == "replay" and why in auto.stepping_note
    assert why in auto.format()
    replay = audit_reward(_coin(cls), adapter=CoinAdapter(), stepping="replay", **opts)
    _same_audit(auto, replay)
    with pytest.raises(InvalidConfig, match="stepping='snapshots'"):
        audit_reward(_coin(cls), adapter=CoinAdapter(), stepping="snapshots", **opts)
