"""The gymnasium contract of ``TradingEnv``, and properties of every step over random episodes."""

from __future__ import annotations

import math
import random
import subprocess
import sys
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import tradeguard.env  # noqa: F401  (registers tradeguard/Trading-v0)
from tradeguard.env import (
    COMPONENT_NAMES,
    MARKET_KINDS,
    Action,
    EnvConfig,
    Market,
    MarketSpec,
    RewardConfig,
    TradingEnv,
    scenario_names,
)
from tradeguard.errors import EpisodeEnded, InvalidAction, InvalidConfig, InvalidMarket
from tradeguard.trace import StepRecord

ENV_ID = "tradeguard/Trading-v0"
PENALTY = COMPONENT_NAMES.index("failed_action_penalty")
PNL = [
    COMPONENT_NAMES.index(n) for n in ("realized_pnl", "unrealized_pnl_change", "transaction_cost")
]


def short_env(length: int = 20, **kwargs: Any) -> TradingEnv:
    return TradingEnv(config=EnvConfig(episode_length=length), **kwargs)


# --------------------------------------------------------------------------- checkers


@pytest.mark.parametrize("scenario", scenario_names())
def test_gymnasium_check_env_passes_without_warnings(scenario: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(ENV_ID, scenario=scenario).unwrapped
        gym_check_env(env)


@pytest.mark.requires_rl
@pytest.mark.parametrize("scenario", scenario_names())
def test_sb3_check_env_passes_without_warnings(scenario: str) -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(ENV_ID, scenario=scenario).unwrapped
        sb3_check_env(env, warn=True)


def test_registered_id_builds_the_env_with_the_scenario() -> None:
    env = gym.make(ENV_ID, scenario="v10")
    assert isinstance(env.unwrapped, TradingEnv)
    assert env.unwrapped.reward_config.failed_action_penalty == -0.05
    assert env.spec is not None and env.spec.id == ENV_ID


# --------------------------------------------------------------------------- actions


@pytest.mark.parametrize(
    "action",
    [
        Action.SELL_ALL,
        5,
        np.int64(5),
        np.int32(5),
        np.array(5),
        np.array(5, dtype=np.int32),
        np.uint8(5),
    ],
    ids=repr,
)
def test_integer_like_actions_are_accepted(action: Any) -> None:
    env = short_env()
    env.reset(seed=0)
    _, _, _, _, info = env.step(action)
    assert info["record"].predicted == 5 and type(info["record"].predicted) is int
    assert info["record"].reason == "NO_POSITION"


@pytest.mark.parametrize(
    "action",
    [7, -1, 100, 1.5, 1.0, None, True, False, np.float64(1.0), np.bool_(True), "BUY", "1",
     np.array([1, 2]), np.array([1]), np.array(1.0), [1]],
    ids=repr,
)  # fmt: skip
def test_other_actions_raise_naming_the_value_and_the_range(action: Any) -> None:
    env = short_env()
    env.reset(seed=0)
    before = env.state
    with pytest.raises(InvalidAction, match=r"0\.\.6") as info:
        env.step(action)
    assert repr(action) in str(info.value)
    # Nothing happened: the episode continues where it was.
    assert env.state == before and len(env.trace) == 0
    env.step(Action.HOLD)
    assert len(env.trace) == 1


def test_step_before_reset_and_after_the_end_raise() -> None:
    env = short_env(length=3)
    with pytest.raises(EpisodeEnded, match=r"before reset\(\)"):
        env.step(0)
    env.reset(seed=0)
    for i in range(3):
        _, _, terminated, truncated, _ = env.step(Action.HOLD)
        assert terminated is (i == 2) and truncated is False
    with pytest.raises(EpisodeEnded, match=r"after the episode ended.*call reset\(\)"):
        env.step(Action.HOLD)
    assert len(env.trace) == 3
    env.reset(seed=1)
    env.step(Action.HOLD)
    assert len(env.trace) == 1


# --------------------------------------------------------------------------- observations, masks


def test_observations_are_in_the_space_and_never_share_memory() -> None:
    env = short_env(length=30)
    rng = np.random.default_rng(5)
    seen = []
    obs, _ = env.reset(seed=3)
    seen.append(obs)
    for _ in range(2):
        done = False
        while not done:
            assert env.observation_space.contains(obs), obs
            obs, reward, done, _, _ = env.step(int(rng.integers(7)))
            assert type(reward) is float
            seen.append(obs)
        obs, _ = env.reset(seed=3)
        seen.append(obs)
    for i, a in enumerate(seen):
        assert a.dtype == np.float32
        for b in seen[i + 1 :]:
            assert not np.shares_memory(a, b)
    # Same seed, same first observation; mutating a returned one changes nothing.
    first = seen[0].copy()
    seen[-1][:] = 99.0
    assert np.array_equal(env.reset(seed=3)[0], first)


def test_observation_carries_the_agents_own_position() -> None:
    cfg = EnvConfig(episode_length=4, window=3)
    env = TradingEnv(config=cfg)
    env.reset(seed=0, options={"market": Market(np.array([1_000, 1_100, 1_200, 1_200, 1_200]))})
    obs, *_ = env.step(Action.BUY_SMALL)
    assert obs[3] == 1.0 and 0.0 < obs[4] < 1.0 and obs[5] > 0.0  # in position, exposure, profit
    obs, *_ = env.step(Action.SELL_ALL)
    assert obs[3] == 0.0 and obs[4] == 0.0 and obs[5] == 0.0
    assert obs[6] == pytest.approx(2 / 4)  # share of the episode remaining


def test_action_masks_are_fresh_and_are_what_the_step_records() -> None:
    env = short_env(length=10)
    env.reset(seed=0)
    m1, m2 = env.action_masks(), env.action_masks()
    assert m1.dtype == np.bool_ and m1.shape == (7,)
    assert m1 is not m2 and not np.shares_memory(m1, m2)
    m1[:] = False
    assert env.action_masks()[0]
    for action in (Action.BUY_SMALL, Action.HOLD, Action.BUY_SMALL, Action.SELL_ALL):
        shown = tuple(env.action_masks().tolist())
        _, _, _, _, info = env.step(action)
        assert info["record"].mask == shown
        assert shown[action] == (not info["record"].rejected)


# --------------------------------------------------------------------------- determinism, seeding


def _play(env: TradingEnv, seed: int, actions: list[int]) -> list[np.ndarray]:
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs)
    return out


def test_same_seed_and_actions_give_an_identical_trace_over_a_full_episode() -> None:
    actions = np.random.default_rng(11).integers(0, 7, size=500).tolist()
    a, b = TradingEnv(scenario="v10.1"), TradingEnv(scenario="v10.1")
    obs_a, obs_b = _play(a, 42, actions), _play(b, 42, actions)
    assert len(a.trace) == 500
    assert a.trace.records == b.trace.records
    assert a.trace.meta == b.trace.meta
    assert all(np.array_equal(x, y) for x, y in zip(obs_a, obs_b, strict=True))
    # The same env, reset again with the same seed, replays it too.
    _play(a, 42, actions)
    assert a.trace.records == b.trace.records
    # ... and a different seed gives a different market and trace.
    _play(b, 43, actions)
    assert a.trace.records != b.trace.records


def test_different_seeds_give_different_markets_and_no_seed_is_fresh_randomness() -> None:
    env = short_env()
    env.reset(seed=1)
    p1 = env.prices
    env.reset(seed=2)
    assert env.prices != p1 and len(p1) == 21
    env.reset(seed=1)
    assert env.prices == p1


def test_reset_market_option_is_used_for_that_episode_only() -> None:
    env = short_env(length=4)
    m = Market(np.array([500, 510, 520, 530, 540]))
    env.reset(seed=0, options={"market": m})
    assert env.prices == (500, 510, 520, 530, 540)
    _, _, _, _, info = env.step(Action.HOLD)
    assert (info["record"].price, info["record"].next_price) == (500, 510)
    env.reset(seed=0)
    assert env.prices != (500, 510, 520, 530, 540)
    # A longer market: the episode is a contiguous window of it, chosen by the seed.
    long = Market(np.arange(100, 200))
    env.reset(seed=9, options={"market": long})
    start = env.prices[0] - 100
    assert env.prices == tuple(range(100 + start, 105 + start))


@pytest.mark.parametrize(
    ("options", "error", "pattern"),
    [
        (
            {"market": [1, 2, 3, 4, 5]},
            InvalidMarket,
            r"options\['market'\]=\[1, 2, 3, 4, 5\] must be a Market",
        ),
        ({"market": Market(np.array([1, 2]))}, InvalidMarket, r"has 2 prices.*needs 5"),
        ({"markt": None}, InvalidConfig, r"unknown reset options \['markt'\]"),
        (
            {"market": Market(np.arange(1, 9)), "seed": 3},
            InvalidConfig,
            r"unknown reset options \['seed'\]",
        ),
    ],
)
def test_bad_reset_options_raise(options: dict[str, Any], error: type, pattern: str) -> None:
    env = short_env(length=4)
    with pytest.raises(error, match=pattern):
        env.reset(seed=0, options=options)


def _rng_states() -> tuple[Any, ...]:
    state: Any = np.random.get_state()
    name, keys, pos, has_gauss, cached = state
    return name, keys.tobytes(), pos, has_gauss, cached, random.getstate()


def test_no_global_rng_is_used() -> None:
    np.random.seed(1234)
    random.seed(1234)
    before = _rng_states()
    env = TradingEnv(scenario="v10")
    env.reset(seed=0)
    for a in range(7):
        env.step(a)
    env.reset()  # no seed: still the env's own generator
    env.step(Action.BUY_LARGE)
    env.action_masks()
    env = TradingEnv(market=MarketSpec(kind="crash"))
    env.reset(seed=5)
    env.step(0)
    assert _rng_states() == before


@pytest.mark.slow
def test_importing_the_env_changes_no_global_state() -> None:
    # gymnasium itself adds one filter when imported (gymnasium/logger.py:
    # filterwarnings("once", "", DeprecationWarning, module=r"^gymnasium\.")); tradeguard
    # needs gymnasium, so that one filter, and only it, may appear.
    code = (
        "import logging, random, re, warnings\n"
        "import numpy as np\n"
        "filters = list(warnings.filters)\n"
        "np_state = np.random.get_state()[1].tobytes()\n"
        "py_state = random.getstate()\n"
        "handlers = list(logging.getLogger().handlers)\n"
        "level = logging.getLogger().level\n"
        "import tradeguard.env, tradeguard.trace, tradeguard._cli\n"
        "tradeguard._cli.build_parser()\n"
        "added = [f for f in warnings.filters if f not in filters]\n"
        "gym_own = ('once', None, DeprecationWarning, re.compile(r'^gymnasium\\.'), 0)\n"
        "assert added in ([], [gym_own]), f'warnings.filters changed: {added}'\n"
        "assert [f for f in warnings.filters if f != gym_own] == filters, 'filters reordered'\n"
        "assert np.random.get_state()[1].tobytes() == np_state, 'numpy global RNG changed'\n"
        "assert random.getstate() == py_state, 'random state changed'\n"
        "assert logging.getLogger().handlers == handlers, 'root logger handlers changed'\n"
        "assert logging.getLogger().level == level, 'root logger level changed'\n"
        "print('unchanged')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "unchanged"


@pytest.mark.slow
def test_importing_the_env_after_gymnasium_adds_no_warning_filter() -> None:
    code = (
        "import warnings\n"
        "import gymnasium, numpy\n"
        "filters = list(warnings.filters)\n"
        "import tradeguard.env, tradeguard.trace, tradeguard._cli\n"
        "tradeguard._cli.build_parser()\n"
        "assert warnings.filters == filters, [f for f in warnings.filters if f not in filters]\n"
        "print('unchanged')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "unchanged"


# --------------------------------------------------------------------------- properties of every step


@st.composite
def episodes(draw: st.DrawFn) -> tuple[EnvConfig, RewardConfig, list[int], list[int]]:
    length = draw(st.integers(1, 30))
    fraction = st.sampled_from([0.05, 0.1, 0.25, 0.5, 0.9, 1.0])
    cfg = EnvConfig(
        cash=draw(st.integers(1, 10**6)),
        lot_size=draw(st.sampled_from([1, 1, 7, 100])),
        fee_bps=draw(st.sampled_from([0.0, 10.0, 99.99, 1000.0])),
        buy_small=draw(fraction),
        buy_medium=draw(fraction),
        buy_large=draw(fraction),
        sell_partial=draw(fraction),
        add_size=draw(fraction),
        disabled_actions=tuple(draw(st.sets(st.sampled_from(list(Action)[1:]), max_size=2))),
        episode_length=length,
        window=draw(st.integers(1, 4)),
    )
    reward = RewardConfig(
        failed_action_penalty=draw(st.sampled_from([-1.0, -0.05, 0.0])),
        curriculum_min_share=draw(st.sampled_from([0.0, 0.0, 0.05, 0.5])),
        diversity_bonus=draw(st.sampled_from([0.0, 0.25])),
        unrealized_pnl_level=draw(st.sampled_from([0.0, 0.0, 0.5])),
    )
    price = st.integers(1, 10**5) | st.sampled_from([1, 2, 3, 999_999])
    prices = draw(st.lists(price, min_size=length + 1, max_size=length + 1))
    actions = draw(st.lists(st.integers(0, 6), min_size=length, max_size=length))
    return cfg, reward, prices, actions


def _check_step(rec: StepRecord, prev: StepRecord | None, reward: float, penalty: float) -> None:
    assert rec.cash_before >= 0 and rec.cash_after >= 0
    assert rec.position_before >= 0 and rec.position_after >= 0
    assert rec.equity_before == rec.cash_before + rec.position_before * rec.price
    assert rec.equity_after == rec.cash_after + rec.position_after * rec.next_price
    delta = rec.equity_after - rec.equity_before
    assert delta == rec.position_after * (rec.next_price - rec.price) - rec.fee
    assert rec.cash_after - rec.cash_before == -rec.quantity * rec.price - rec.fee
    assert rec.position_after - rec.position_before == rec.quantity
    assert rec.predicted == rec.executed or (rec.rejected and rec.executed == Action.HOLD)
    assert rec.rejected == (rec.reason is not None)
    if rec.executed == Action.HOLD:
        assert rec.quantity == 0 and rec.fee == 0
        assert (rec.cash_after, rec.position_after) == (rec.cash_before, rec.position_before)
    assert rec.mask is not None and rec.mask[0]
    assert rec.mask[rec.predicted] == (not rec.rejected)
    assert rec.reward == reward
    assert math.isclose(reward, math.fsum(rec.components), rel_tol=1e-12, abs_tol=1e-12)
    assert rec.components[PENALTY] == (penalty if rec.rejected else 0.0)
    if prev is not None:
        assert (rec.t, rec.price) == (prev.t + 1, prev.next_price)
        assert (rec.cash_before, rec.position_before) == (prev.cash_after, prev.position_after)
        assert rec.equity_before == prev.cash_after + prev.position_after * rec.price


@settings(max_examples=120)
@given(episodes())
def test_every_step_keeps_the_accounting_identities(
    episode: tuple[EnvConfig, RewardConfig, list[int], list[int]],
) -> None:
    cfg, reward_cfg, prices, actions = episode
    env = TradingEnv(config=cfg, reward=reward_cfg)
    obs, _ = env.reset(seed=0, options={"market": Market(np.array(prices), 0.01, "hyp")})
    prev = None
    for i, a in enumerate(actions):
        assert env.observation_space.contains(obs)
        obs, reward, terminated, _, info = env.step(a)
        rec = info["record"]
        assert rec.predicted == a and rec.t == i and rec.price == prices[i]
        _check_step(rec, prev, float(reward), reward_cfg.failed_action_penalty)
        prev = rec
        assert terminated == (i == len(actions) - 1)
    assert env.trace.records[-1] == prev


@settings(max_examples=40)
@given(
    kind=st.sampled_from(MARKET_KINDS),
    seed=st.integers(0, 2**31),
    actions=st.lists(st.integers(0, 6), min_size=40, max_size=40),
)
def test_with_default_reward_the_pnl_components_are_the_equity_change(
    kind: Any, seed: int, actions: list[int]
) -> None:
    env = TradingEnv(
        config=EnvConfig(episode_length=40), market=MarketSpec(kind=kind, volatility=0.05)
    )
    env.reset(seed=seed)
    scale = 100.0 / env.config.cash
    prev = None
    for a in actions:
        _, reward, _, _, info = env.step(a)
        rec = info["record"]
        _check_step(rec, prev, float(reward), -1.0)
        pnl = math.fsum(rec.components[i] for i in PNL)
        expected = scale * (rec.equity_after - rec.equity_before)
        assert math.isclose(pnl, expected, rel_tol=1e-9, abs_tol=1e-12), (pnl, expected, rec)
        prev = rec
