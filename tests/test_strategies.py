"""The public Hypothesis strategies: valid output, arguments respected and checked,
shrinking as documented, the masked driver, the invalid-biased style, replay.

Measurements over "a fixed set of examples" use derandomized settings, so they are
the same on every run and under pytest-xdist.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import subprocess
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import gymnasium as gym
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis.errors import InvalidArgument

from tradeguard.env import Action, EnvConfig, Market, RewardConfig, TradingEnv
from tradeguard.errors import InvalidConfig
from tradeguard.strategies import (
    ACTION_STYLES,
    INVALID_WHEN_FLAT,
    PATH_KINDS,
    PATHOLOGICAL_REWARDS,
    Episode,
    action_plans,
    action_sequences,
    actions,
    config_changes,
    drive,
    env_configs,
    episodes,
    markets,
    reward_configs,
)

T = TypeVar("T")

# find() settings: fixed examples (derandomized), no database, enough budget to shrink
# fully, and no explain phase (it replays ~100 variations of the result, for a report).
FIND = settings(
    database=None,
    derandomize=True,
    max_examples=300,
    deadline=None,
    phases=[Phase.generate, Phase.shrink],
)
# Fixed sets of examples for measurements.
FIXED = settings(
    database=None,
    derandomize=True,
    deadline=None,
    phases=["generate"],
    suppress_health_check=list(HealthCheck),
)


def smallest(strategy: st.SearchStrategy[T], condition: Callable[[T], bool] = lambda _: True) -> T:
    return find(strategy, condition, settings=FIND)


def sample(strategy: st.SearchStrategy[T], n: int) -> list[T]:
    """``n`` examples from a fixed (derandomized) run: the same list on every run."""
    out: list[T] = []

    @settings(FIXED, max_examples=n)
    @given(strategy)
    def collect(x: T) -> None:
        out.append(x)

    collect()
    return out


def prices(m: Market) -> list[int]:
    return [int(p) for p in m.prices.tolist()]


def names(trace_or_actions: Any) -> list[str]:
    return [Action(a).name for a in trace_or_actions]


# ---------------------------------------------------------------- actions
@settings(max_examples=60)
@given(st.data())
def test_action_sequences_respect_their_arguments(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 12), label="n_actions")
    lo = data.draw(st.integers(0, 8), label="min_size")
    hi = data.draw(st.integers(lo, 12), label="max_size")
    style = data.draw(st.sampled_from(ACTION_STYLES), label="style")
    invalid = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3), label="invalid")
    seq = data.draw(
        action_sequences(
            min_size=lo, max_size=hi, style=style, n_actions=n, invalid_actions=invalid
        )
    )
    assert lo <= len(seq) <= hi
    assert all(isinstance(a, int) and 0 <= a < n for a in seq)
    assert 0 <= data.draw(actions(n)) < n


@settings(max_examples=40)
@given(st.data())
def test_action_plans_respect_their_arguments(data: st.DataObject) -> None:
    lo = data.draw(st.integers(0, 5))
    hi = data.draw(st.integers(lo, 10))
    n = data.draw(st.integers(1, 12))
    style = data.draw(st.sampled_from(["uniform", "sticky"]))
    plan = data.draw(action_plans(min_size=lo, max_size=hi, style=style, n_actions=n))
    assert lo <= len(plan) <= hi
    assert all(0 <= c < n for c in plan)


def test_invalid_biased_style_favours_the_invalid_actions() -> None:
    def share(style: Any) -> float:
        seqs = sample(action_sequences(style=style, max_size=20), 150)
        flat = [a for s in seqs for a in s]
        return sum(a in INVALID_WHEN_FLAT for a in flat) / len(flat)

    uniform, biased = share("uniform"), share("invalid-biased")
    # expected: 3/7 = 0.43 and 3/4 + 1/4 * 3/7 = 0.86
    assert biased > uniform + 0.25, (uniform, biased)


def test_sticky_style_draws_runs_of_one_action() -> None:
    def mean_run(style: Any) -> float:
        seqs = [s for s in sample(action_sequences(style=style, max_size=40), 150) if len(s) > 1]
        runs = [1 + sum(a != b for a, b in itertools.pairwise(s)) for s in seqs]
        return statistics.mean(len(s) / r for s, r in zip(seqs, runs, strict=True))

    uniform, sticky = mean_run("uniform"), mean_run("sticky")
    assert sticky > 2.5 * uniform, (uniform, sticky)


@pytest.mark.parametrize("style", ACTION_STYLES)
def test_action_sequences_shrink_towards_short_runs_of_hold(style: Any) -> None:
    assert smallest(action_sequences(style=style)) == [0]
    assert smallest(action_sequences(style=style, min_size=3)) == [0, 0, 0]
    assert smallest(action_sequences(style=style), lambda s: 4 in s) == [4]
    # a sticky list is made of runs: its smallest two-step list ending in SELL_ALL is one run
    two = [5, 5] if style == "sticky" else [0, 5]
    assert smallest(action_sequences(style=style), lambda s: len(s) >= 2 and s[-1] == 5) == two


def test_actions_and_plans_shrink_towards_hold() -> None:
    assert smallest(actions()) == 0
    assert smallest(actions(), lambda a: a >= 4) == int(Action.SELL_PARTIAL)
    assert smallest(action_plans()) == [0]
    assert smallest(action_plans(style="sticky", min_size=2)) == [0, 0]


# ---------------------------------------------------------------- markets
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_markets_respect_their_arguments(data: st.DataObject) -> None:
    lo_len = data.draw(st.integers(2, 10))
    hi_len = data.draw(st.integers(lo_len, 12))
    kinds = data.draw(st.lists(st.sampled_from(PATH_KINDS), min_size=1, unique=True))
    lo_p = data.draw(st.sampled_from([1, 50, 10_000, 10**7]))
    hi_p = data.draw(st.sampled_from([lo_p, lo_p + 1, 2 * lo_p + 100, 10**12]))
    m = data.draw(
        markets(
            min_length=lo_len,
            max_length=hi_len,
            kinds=kinds,
            min_price_ticks=lo_p,
            max_price_ticks=hi_p,
        )
    )
    assert isinstance(m, Market)
    assert lo_len <= len(m) <= hi_len
    assert m.name in kinds
    assert m.prices.dtype == np.int64
    assert all(lo_p <= p <= hi_p for p in prices(m)), (lo_p, hi_p, m)
    if m.name == "flat":
        assert len(set(prices(m))) == 1
    if m.name == "trend":
        diffs = np.diff(m.prices)
        assert (diffs >= 0).all() or (diffs <= 0).all()


def test_every_market_kind_shows_its_shape() -> None:
    ms = sample(markets(max_length=20), 200)
    by_kind = {k: [m for m in ms if m.name == k] for k in PATH_KINDS}
    assert all(by_kind[k] for k in PATH_KINDS), {k: len(v) for k, v in by_kind.items()}
    assert any(float(np.min(np.diff(np.log(m.prices)))) < np.log(0.9) for m in by_kind["crash"])
    assert any(
        abs(float(np.max(np.abs(np.diff(np.log(m.prices)))))) > np.log(1.05) for m in by_kind["gap"]
    )
    extreme = [p for m in by_kind["extreme"] for p in prices(m)]
    assert min(extreme) == 1 and max(extreme) == 10**9
    assert any(np.max(m.prices) / np.min(m.prices) >= 100 for m in by_kind["extreme"])


def test_markets_shrink_towards_short_flat_markets_at_a_round_price() -> None:
    assert prices(smallest(markets())) == [10_000, 10_000]
    assert smallest(markets()).name == "flat"
    assert prices(smallest(markets(min_length=3))) == [10_000] * 3

    def moves(m: Market) -> bool:
        return len(set(prices(m))) > 1

    moving = smallest(markets(), moves)
    assert len(moving) == 2 and prices(moving)[0] == 10_000, moving
    assert prices(smallest(markets(kinds=("random_walk",)), moves)) in (
        [10_000, 10_001],
        [10_000, 9_999],
    )
    assert prices(smallest(markets(kinds=("trend",)), moves)) == [10_000, 10_001]
    assert prices(smallest(markets(kinds=("crash",)))) == [10_000, 9_000]
    assert prices(smallest(markets(kinds=("gap",)))) == [10_000, 10_500]
    assert prices(smallest(markets(kinds=("extreme",)))) == [1, 1]
    # the anchor is clamped into the allowed prices
    assert prices(smallest(markets(min_price_ticks=20_000))) == [20_000, 20_000]
    assert prices(smallest(markets(max_price_ticks=50))) == [50, 50]
    crash = smallest(
        markets(max_length=10), lambda m: float(np.min(np.diff(np.log(m.prices)))) < np.log(0.5)
    )
    assert len(crash) == 2


# ---------------------------------------------------------------- configs
def test_configs_shrink_towards_the_defaults() -> None:
    assert smallest(env_configs()) == EnvConfig(episode_length=1)
    assert smallest(reward_configs()) == RewardConfig()
    assert smallest(reward_configs(pathological=True)) == RewardConfig()
    level = smallest(reward_configs(pathological=True), lambda r: r.unrealized_pnl_level > 0)
    assert config_changes(level) == {"unrealized_pnl_level": 0.01}
    tiny = smallest(reward_configs(pathological=True), lambda r: -0.1 < r.failed_action_penalty < 0)
    assert config_changes(tiny) == {"failed_action_penalty": -0.05}
    disabled = smallest(env_configs(), lambda c: Action.SELL_ALL in c.disabled_actions)
    assert config_changes(disabled) == {"disabled_actions": ("SELL_ALL",), "episode_length": 1}


def test_configs_vary_every_field() -> None:
    envs = sample(env_configs(), 200)
    for f in dataclasses.fields(EnvConfig):
        if f.name != "minor_unit":
            assert len({getattr(c, f.name) for c in envs}) > 1, f.name
    assert all(1 <= c.episode_length <= 20 for c in envs)
    assert any(c.cash < 10_000 for c in envs) and any(c.cash > 10**7 for c in envs)
    rewards = sample(reward_configs(), 100)
    assert all(-5.0 <= r.failed_action_penalty <= -0.5 for r in rewards)


def test_pathological_rewards_reach_every_listed_value() -> None:
    drawn = sample(reward_configs(pathological=True), 300)
    for field, values in PATHOLOGICAL_REWARDS.items():
        seen = {getattr(r, field) for r in drawn}
        missing = [v for v in values if v not in seen]
        assert not missing, (field, missing)
    sane = sample(reward_configs(), 100)
    for field, values in PATHOLOGICAL_REWARDS.items():
        assert not any(getattr(r, field) in values for r in sane), field


def test_positive_penalty_warning_is_suppressed_locally_only() -> None:
    before = list(warnings.filters)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning leaking out of the strategy fails here
        got = smallest(reward_configs(pathological=True), lambda r: r.failed_action_penalty > 0)
        assert got.failed_action_penalty == 0.05
        fixed = smallest(reward_configs(failed_action_penalty=1.0))
        assert fixed.failed_action_penalty == 1.0
    assert warnings.filters == before
    with pytest.warns(UserWarning, match=r"failed_action_penalty=0\.05 is positive"):
        RewardConfig(failed_action_penalty=0.05)  # built by the user, it still warns


@settings(max_examples=30)
@given(
    env_configs(fee_bps=0, episode_length=st.integers(5, 6), disabled_actions=("ADD_POSITION",)),
    reward_configs(pathological=True, failed_action_penalty=-0.05, diversity_bonus=st.just(2.0)),
)
def test_fixed_fields_are_used_as_is(env: EnvConfig, reward: RewardConfig) -> None:
    assert env.fee_bps == 0 and env.episode_length in (5, 6)
    assert env.disabled_actions == (Action.ADD_POSITION,)
    assert reward.failed_action_penalty == -0.05 and reward.diversity_bonus == 2.0


# ---------------------------------------------------------------- bad arguments
BAD_ARGUMENTS: list[tuple[Callable[..., Any], dict[str, Any], type[Exception], str]] = [
    (
        actions,
        {"n_actions": 0},
        InvalidArgument,
        r"n_actions=0 is out of range: expected an integer \[1, 65536\]",
    ),
    (
        actions,
        {"n_actions": 7.0},
        InvalidArgument,
        r"n_actions=7\.0 must be an integer .* got float",
    ),
    (
        action_sequences,
        {"min_size": 5, "max_size": 2},
        InvalidArgument,
        r"max_size=2 is below min_size=5",
    ),
    (action_sequences, {"min_size": -1}, InvalidArgument, r"min_size=-1 is out of range"),
    (
        action_sequences,
        {"style": "invalid_biased"},
        InvalidArgument,
        r"style='invalid_biased' is not one of .* Did you mean 'invalid-biased'\?",
    ),
    (
        action_sequences,
        {"style": "invalid-biased", "n_actions": 3},
        InvalidArgument,
        r"invalid_actions contains 4; expected action ids in 0\.\.2 \(n_actions=3\)",
    ),
    (action_sequences, {"max_size": True}, InvalidArgument, r"max_size=True must be an integer"),
    (
        action_plans,
        {"style": "invalid-biased"},
        InvalidArgument,
        r"style='invalid-biased' is not one of 'uniform', 'sticky'",
    ),
    (
        markets,
        {"min_length": 1},
        InvalidArgument,
        r"min_length=1 is out of range: expected an integer \[2, 100000\]",
    ),
    (
        markets,
        {"kinds": "crash"},
        InvalidArgument,
        r"kinds='crash' must be a tuple of names, e\.g\. kinds=\('flat',\)",
    ),
    (markets, {"kinds": ()}, InvalidArgument, r"kinds=\(\) is empty"),
    (
        markets,
        {"kinds": ("crsh",)},
        InvalidArgument,
        r"an entry of kinds='crsh' is not one of .* Did you mean 'crash'\?",
    ),
    (markets, {"min_price_ticks": 0}, InvalidArgument, r"min_price_ticks=0 is out of range"),
    (
        markets,
        {"min_price_ticks": 10, "max_price_ticks": 5},
        InvalidArgument,
        r"max_price_ticks=5 is below min_price_ticks=10",
    ),
    (
        markets,
        {"max_price_ticks": 10**13},
        InvalidArgument,
        r"max_price_ticks=10000000000000: a Market cannot hold these prices",
    ),
    (markets, {"minor_unit": 0}, InvalidArgument, r"minor_unit=0 must be a positive number"),
    (
        env_configs,
        {"fees_bps": 1},
        InvalidArgument,
        r"fees_bps=\.\.\. is not a EnvConfig field.* Did you mean 'fee_bps'\?",
    ),
    (env_configs, {"cash": 0}, InvalidConfig, r"cash=0 is out of range: expected in \[1, "),
    (reward_configs, {"pathological": 1}, InvalidArgument, r"pathological=1 must be True or False"),
    (
        reward_configs,
        {"curriculum_min_share": 2.0},
        InvalidConfig,
        r"curriculum_min_share=2\.0 is out of range",
    ),
    (episodes, {"max_steps": 0}, InvalidArgument, r"max_steps=0 is out of range"),
    (
        episodes,
        {"masked": True, "style": "invalid-biased"},
        InvalidArgument,
        r"a masked episode never predicts an invalid action",
    ),
    (
        episodes,
        {"scenario": "v1O"},
        InvalidConfig,
        r"scenario='v1O' is neither a shipped scenario .* Did you mean 'v10'\?",
    ),
    (
        episodes,
        {"scenario": "v10", "pathological": True},
        InvalidArgument,
        r"the scenario fixes the reward config",
    ),
    (episodes, {"scenario": 10}, InvalidArgument, r"scenario=10 must be a scenario name"),
]


@pytest.mark.parametrize(
    ("factory", "kwargs", "error", "message"),
    BAD_ARGUMENTS,
    ids=[f"{f.__name__}-{'-'.join(k)}" for f, k, _, _ in BAD_ARGUMENTS],
)
def test_bad_arguments_are_refused_when_the_strategy_is_built(
    factory: Callable[..., Any], kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        factory(**kwargs)


# ---------------------------------------------------------------- the driver
@settings(max_examples=40, deadline=None)
@given(episodes(masked=True, max_steps=25))
def test_masked_driver_never_predicts_a_rejected_action(ep: Episode) -> None:
    trace = ep.run()
    assert len(trace) == len(ep.actions)
    for record, choice in zip(trace, ep.actions, strict=True):
        assert not record.rejected, (record, ep)
        assert record.mask is not None
        valid = [a for a, ok in enumerate(record.mask) if ok]
        assert record.predicted == valid[choice % len(valid)]  # the documented mapping


@settings(max_examples=30, deadline=None)
@given(episodes(masked=True, style="sticky", max_steps=25))
def test_masked_sticky_episodes_are_never_rejected_either(ep: Episode) -> None:
    assert ep.run().metrics().rejections == 0


def test_masked_driver_reaches_deep_states() -> None:
    # A masked plan buys, adds and sells: the driver is not stuck on HOLD.
    eps = sample(episodes(masked=True, scenario="default"), 60)
    executed = {r.executed for ep in eps for r in ep.run()}
    assert executed == set(range(len(Action))), executed
    # the same plans played unmasked are rejected: the masked property is not vacuous
    unmasked = [drive(ep.make_env(), ep.actions, masked=False, seed=ep.seed) for ep in eps]
    assert sum(t.metrics().rejections for t in unmasked) > 0


def test_invalid_biased_episodes_are_rejected_more_than_uniform_ones() -> None:
    def rejection_rate(style: Any) -> float:
        eps = sample(episodes(style=style, scenario="default", max_steps=20), 80)
        return statistics.mean(ep.run().metrics().rejection_rate for ep in eps)

    uniform, biased = rejection_rate("uniform"), rejection_rate("invalid-biased")
    assert biased > uniform + 0.2, (uniform, biased)


class _CountingWrapper(gym.Wrapper[Any, Any, Any, Any]):
    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.steps = 0

    def step(self, action: Any) -> Any:
        self.steps += 1
        return self.env.step(action)


def test_drive_plays_through_wrappers_and_stops_at_the_episode_end() -> None:
    env = _CountingWrapper(TradingEnv(config=EnvConfig(episode_length=3)))
    trace = drive(env, [5, 1, 1, 1, 1], masked=True, seed=0)
    assert env.steps == 3 and len(trace) == 3
    assert names(r.predicted for r in trace) == ["BUY_SMALL", "SELL_PARTIAL", "SELL_PARTIAL"]
    unmasked = drive(
        TradingEnv(config=EnvConfig(episode_length=3)), [4, 8, 0], masked=False, seed=0
    )
    assert names(r.predicted for r in unmasked) == ["SELL_PARTIAL", "BUY_SMALL", "HOLD"]
    assert [r.reason for r in unmasked] == ["NO_POSITION", None, None]


def test_drive_refuses_what_it_cannot_play() -> None:
    class NoMask(gym.Env[Any, Any]):
        action_space = gym.spaces.Discrete(3)

        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
            return 0, {}

        def step(self, action: Any) -> Any:
            return 0, 0.0, False, False, {}

    with pytest.raises(InvalidArgument, match=r"masked=True but NoMask has no action_masks\(\)"):
        drive(NoMask(), [0], masked=True)
    with pytest.raises(InvalidArgument, match=r"NoMask has no \.trace"):
        drive(NoMask(), [0], masked=False)
    with pytest.raises(InvalidArgument, match=r"plan\[1\]=-1 must be a non-negative integer"):
        drive(TradingEnv(), [0, -1], masked=False)
    with pytest.raises(InvalidArgument, match=r"masked='yes' must be True or False"):
        drive(TradingEnv(), [0], masked="yes")  # type: ignore[arg-type]


def test_drive_keeps_going_on_an_all_false_mask() -> None:
    class NoValidAction(TradingEnv):
        def action_masks(self) -> Any:
            return np.zeros(7, dtype=bool)

    trace = drive(NoValidAction(config=EnvConfig(episode_length=2)), [9, 1], masked=True, seed=0)
    assert [r.predicted for r in trace] == [2, 1]  # choice % 7: the trace shows the bad mask


# ---------------------------------------------------------------- episodes
@settings(max_examples=40, deadline=None)
@given(episodes(max_steps=12, pathological=True))
def test_episodes_are_consistent_and_replay_identically(ep: Episode) -> None:
    assert 1 <= len(ep.actions) <= 12
    assert ep.config.episode_length == len(ep.actions) == len(ep.market) - 1
    first = ep.run()
    assert len(first) == len(ep.actions)
    assert [r.predicted for r in first] == list(ep.actions)
    assert ep.run() == first
    rebuilt = Episode(**{f.name: getattr(ep, f.name) for f in dataclasses.fields(Episode)})
    assert rebuilt.run() == first
    env = ep.make_env()
    assert ep.run(env) == first and ep.run(env) == first  # the same env, reset twice
    assert ep.run(ep.make_env(TradingEnv)) == first  # built the plain way: same trace and meta


def test_scenario_episodes_keep_the_scenario_configs() -> None:
    for ep in sample(episodes(scenario="v10.2", max_steps=5), 10):
        assert ep.reward.failed_action_penalty == -1.0
        assert ep.config.disabled_actions == (Action.ADD_POSITION,)
        assert ep.config.episode_length == len(ep.actions)
        assert repr(ep).startswith("Episode(scenario='v10.2', actions=[")


def test_a_rejected_step_shrinks_to_one_named_action_on_two_prices() -> None:
    def rejected(e: Episode) -> bool:
        return e.run().metrics().rejections > 0

    ep = smallest(episodes(), rejected)
    # one step on two round prices; the config keeps at most the one field the rejection
    # needs (e.g. a disabled BUY_SMALL), the reward config none
    # The price is 10000 unless the config made the round price itself part of the
    # rejection (a lot that costs more than the cash): then price and lot size are a
    # pair the shrinker cannot reduce one at a time, and the market stays flat.
    p0, p1 = prices(ep.market)
    assert len(ep.actions) == 1 and p0 == p1 and ep.seed == 0, ep
    assert p0 == 10_000 or ep.config.lot_size * p0 > ep.config.cash // 2, ep
    assert len(config_changes(ep.config)) <= 2 and config_changes(ep.reward) == {}, ep
    assert len(repr(ep)) <= 120, ep
    v10 = smallest(episodes(scenario="v10", style="invalid-biased", max_steps=10), rejected)
    assert len(v10.actions) == 1 and v10.actions[0] in INVALID_WHEN_FLAT, v10
    assert repr(v10) == (
        f"Episode(scenario='v10', actions=[{Action(v10.actions[0]).name}], "
        "prices=[10000, 10000], reward=RewardConfig(failed_action_penalty=-0.05), seed=0)"
    )


def test_a_losing_round_trip_shrinks_to_three_steps_at_most() -> None:
    def loses_on_a_round_trip(ep: Episode) -> bool:
        m = ep.run().metrics()
        return m.round_trips >= 1 and m.total_return < 0

    for strategy in (episodes(max_steps=10), episodes(masked=True, max_steps=10)):
        ep = smallest(strategy, loses_on_a_round_trip)
        assert len(ep.actions) <= 3 and len(ep.market) <= 3 and ep.seed == 0, ep
        assert len(repr(ep)) <= 120, ep
        executed = names(r.executed for r in ep.run())
        assert executed[0].startswith("BUY_") and executed[-1].startswith("SELL_"), (ep, executed)
        if ep.masked:  # a plan reads as indices into the valid actions
            assert repr(ep).startswith("Episode(plan=[1, "), ep


def test_episode_repr_is_short() -> None:
    ep = Episode(
        config=EnvConfig(episode_length=20, fee_bps=0),
        reward=RewardConfig(),
        market=Market(np.arange(100, 121, dtype=np.int64)),
        actions=(1,) * 20,
        seed=3,
    )
    text = repr(ep)
    assert "prices=[100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, ... 9 more]" in text
    assert "config=EnvConfig(fee_bps=0)" in text and "reward=" not in text
    assert text.count("BUY_SMALL") == 20
    with pytest.raises(InvalidArgument, match=r"market has 2 prices; episode_length=3 needs 4"):
        Episode(
            config=EnvConfig(episode_length=3),
            reward=RewardConfig(),
            market=Market(np.array([1, 2])),
            actions=(0,),
        )


@pytest.mark.slow
def test_import_has_no_global_side_effects() -> None:
    # dependencies first (gymnasium adds warning filters of its own), then our package
    code = (
        "import warnings, numpy as np, hypothesis, gymnasium, tradeguard.env\n"
        "filters, state = list(warnings.filters), np.random.get_state()[1].copy()\n"
        "import tradeguard.strategies\n"
        "assert warnings.filters == filters, 'warning filters changed'\n"
        "assert (np.random.get_state()[1] == state).all(), 'global numpy RNG touched'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
