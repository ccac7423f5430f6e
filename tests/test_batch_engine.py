"""The batch engine against the scalar env: bit-identical traces, observations and rewards.

The differential test drives the same configs, markets, seeds and actions through N
scalar :class:`TradingEnv` objects and one :class:`BatchEngine`, and compares every
field of every step with ``repr`` (which tells -0.0 from 0.0, ints from floats and
prints floats exactly), observations byte for byte, rewards by their hex form. Then
the int64 bounds, bad input, and the pieces the engine relies on (the buy quantity's
closed form, the reward's sum, ``math.log`` rounding) are checked on their own.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tradeguard.env import (
    N_ACTIONS,
    Action,
    EnvConfig,
    Machine,
    Market,
    MarketSpec,
    PortfolioState,
    RewardConfig,
    TradingEnv,
    load_scenario,
    scenario_names,
    total_reward,
)
from tradeguard.env._batch import (
    MAX_EQUITY,
    MAX_POSITION,
    BatchEngine,
    _log_like_math,
    _total_rewards,
    exactness_problem,
)
from tradeguard.env._config import PPM
from tradeguard.errors import EpisodeEnded, InvalidAction, InvalidConfig, InvalidMarket
from tradeguard.strategies import env_configs, markets, reward_configs

# --------------------------------------------------------------------------- the harness


class Pair:
    """N scalar envs and one batch engine built from the same arguments, stepped in lockstep."""

    def __init__(self, n: int, args: list[dict[str, Any]], seed: int | None) -> None:
        self.n = n
        self.scalar = [TradingEnv(**a) for a in args]
        self.batch = BatchEngine(
            n,
            config=[a.get("config") for a in args],
            reward=[a.get("reward") for a in args],
            market=[a.get("market") for a in args],
            scenario=[a.get("scenario") for a in args],
        )
        self.completed: list[Any] = [None] * n
        self.ends = [0] * n
        self.cut_after_completion = [False] * n
        obs, info = self.batch.reset(seed=seed)
        assert info == {}
        expected = [e.reset(seed=None if seed is None else seed + i)[0] for i, e in enumerate(self.scalar)]
        assert obs.dtype == np.float32
        assert obs.tobytes() == np.stack(expected).tobytes()

    def masks(self) -> np.ndarray:
        masks = self.batch.action_masks()
        assert masks.dtype == np.bool_
        assert np.array_equal(masks, np.stack([e.action_masks() for e in self.scalar]))
        return masks

    def step(self, intents: list[int]) -> None:
        """Intent < 7 is the action; 7 + k picks the k-th valid action (mod the count)."""
        masks = self.masks()
        actions = []
        for i, intent in enumerate(intents):
            if intent < N_ACTIONS:
                actions.append(intent)
            else:
                valid = np.flatnonzero(masks[i])
                actions.append(int(valid[(intent - N_ACTIONS) % len(valid)]))
        obs, rewards, terminated, truncated, info = self.batch.step(np.array(actions))
        records = self.batch.step_records()
        assert obs.dtype == np.float32 and rewards.dtype == np.float64
        for i, env in enumerate(self.scalar):
            o, r, te, tr, inf = env.step(actions[i])
            assert repr(records[i]) == repr(inf["record"]), f"env {i}"
            assert float(rewards[i]).hex() == float(r).hex(), f"env {i}"
            assert (bool(terminated[i]), bool(truncated[i])) == (te, tr)
            if te:
                assert info["_final_obs"][i]
                assert info["final_obs"][i].tobytes() == o.tobytes()
                completed = env.trace
                got = self.batch.last_trace(i)
                assert got is not None
                assert repr(got.records) == repr(completed.records)
                assert got.meta == completed.meta
                self.completed[i] = completed
                self.ends[i] += 1
                self.cut_after_completion[i] = False
                o, _ = env.reset()
            else:
                assert "_final_obs" not in info or not info["_final_obs"][i]
            assert obs[i].tobytes() == o.tobytes(), f"env {i}"
            assert self.batch.state(i) == env.state
            assert self.batch.shaper_state(i) == env.shaper_state

    def reset_some(self, chosen: list[int], seed: int | None, market: Market | None) -> None:
        mask = np.zeros(self.n, dtype=bool)
        mask[chosen] = True
        seeds = [None if seed is None else seed + i for i in range(self.n)]
        options: dict[str, Any] = {"reset_mask": mask}
        if market is not None:
            options["market"] = [market if mask[i] else None for i in range(self.n)]
        usable = [
            market is None or len(market) > self.scalar[i].config.episode_length for i in chosen
        ]
        if not all(usable):
            with pytest.raises(InvalidMarket, match="needs"):
                self.batch.reset(seed=seeds, options=options)
            return
        obs, _ = self.batch.reset(seed=seeds, options=options)
        for i in chosen:
            o, _ = self.scalar[i].reset(
                seed=seeds[i], options={"market": market} if market is not None else None
            )
            assert obs[i].tobytes() == o.tobytes()
            if self.completed[i] is not None and self.batch.trace(i).records == ():
                self.cut_after_completion[i] = True

    def check_traces(self) -> None:
        for i, env in enumerate(self.scalar):
            got = self.batch.trace(i)
            assert repr(got.records) == repr(env.trace.records)
            assert got.meta == env.trace.meta
            assert self.batch.prices(i) == env.prices
            if self.completed[i] is None:
                assert self.batch.last_trace(i) is None
                continue
            try:
                last = self.batch.last_trace(i)
            except InvalidConfig as exc:
                # Only an explicit reset after the completion can push it out of the record.
                assert self.cut_after_completion[i], exc
                continue
            assert last is not None
            assert repr(last.records) == repr(self.completed[i].records)


# --------------------------------------------------------------------------- strategies

WINDOWS = st.sampled_from([1, 2, 3, 33])  # 33: past the pre-windowed storage (32)
CALM = ("flat", "random_walk", "trend", "crash", "gap")  # not "extreme": see the bound tests


@st.composite
def env_args(draw: st.DrawFn, window: int) -> dict[str, Any]:
    """Arguments of one env: a shipped scenario (shortened) or a drawn config, and a market."""
    length = draw(st.integers(1, 6))
    if draw(st.booleans()):
        name = draw(st.sampled_from(scenario_names()))
        base = load_scenario(name)
        config = dataclasses.replace(base.env, episode_length=length, window=window)
        args: dict[str, Any] = {"scenario": name, "config": config}
    else:
        config = draw(
            env_configs(
                # 10**6 keeps a 6-step episode exact even on a path that quadruples each step
                cash=st.one_of(st.integers(1, 3_000), st.integers(1, 10**6)),
                episode_length=length,
                window=window,
            )
        )
        args = {"config": config, "reward": draw(reward_configs(pathological=True))}
    kind = draw(st.sampled_from(["spec", "market", "market"]))
    if kind == "spec":
        args["market"] = MarketSpec(
            kind=draw(st.sampled_from(["random_walk", "trend", "crash", "flat", "gap"])),
            volatility=draw(st.sampled_from([0.0, 0.01, 0.05])),
        )
    else:
        args["market"] = draw(
            markets(
                min_length=length + 1,
                max_length=length + 4,
                max_price_ticks=10**7,
                kinds=CALM,
            )
        )
    return args


@st.composite
def scripts(draw: st.DrawFn) -> tuple[int, list[dict[str, Any]], int, list[Any]]:
    n = draw(st.integers(1, 4))
    window = draw(WINDOWS)
    args = [draw(env_args(window)) for _ in range(n)]
    seed = draw(st.integers(0, 2**16))
    longest = max(a["config"].episode_length for a in args)
    steps = draw(st.integers(1, 3 * longest + 3))
    script: list[Any] = []
    for _ in range(steps):
        if draw(st.integers(0, 9)) == 0:
            chosen = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
            market = draw(st.none() | markets(min_length=2, max_length=8, kinds=CALM))
            script.append(("reset", chosen, draw(st.none() | st.integers(0, 99)), market))
        else:
            script.append(draw(st.lists(st.integers(0, 2 * N_ACTIONS - 1), min_size=n, max_size=n)))
    return n, args, seed, script


# --------------------------------------------------------------------------- differential


@settings(deadline=None)
@given(scripts())
def test_batch_matches_scalar_envs_step_for_step(case: tuple[int, list[dict[str, Any]], int, list[Any]]) -> None:
    n, args, seed, script = case
    pair = Pair(n, args, seed)
    for entry in script:
        if entry[0] == "reset":
            _, chosen, reset_seed, market = entry
            event("partial reset")
            pair.reset_some(chosen, reset_seed, market)
        else:
            pair.step(entry)
    if len({a["config"].episode_length for a in args}) > 1:
        event("episodes of different lengths")
    pair.check_traces()


@pytest.mark.parametrize("name", scenario_names())
def test_every_shipped_scenario_matches_over_a_full_episode_and_an_auto_reset(name: str) -> None:
    pair = Pair(2, [{"scenario": name}, {"scenario": name}], seed=7)
    length = pair.scalar[0].config.episode_length
    rng = np.random.default_rng(0)
    for _ in range(length + 3):
        # A masked-random agent half of the time so that positions open, grow and close.
        pair.step([int(x) for x in rng.integers(0, 2 * N_ACTIONS, size=2)])
    assert all(c is not None for c in pair.completed)
    pair.check_traces()


def test_different_episode_lengths_end_and_reset_at_their_own_steps() -> None:
    configs = [EnvConfig(episode_length=k, window=2) for k in (1, 2, 5)]
    pair = Pair(3, [{"config": c} for c in configs], seed=3)
    counts = []
    for step in range(10):
        pair.step([N_ACTIONS + step % 3] * 3)
        counts.append(list(pair.ends))
    # env 0 ends every step, env 1 every second step, env 2 every fifth
    assert [c[0] for c in counts] == list(range(1, 11))
    assert [c[1] for c in counts] == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    assert [c[2] for c in counts] == [0, 0, 0, 0, 1, 1, 1, 1, 1, 2]
    pair.check_traces()


@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_signed_zero_weights_keep_their_sign_in_every_component(zero: float) -> None:
    """-0.0 weights give -0.0 components where the scalar env does (a falsy -0.0 bonus pays 0.0)."""
    reward = RewardConfig(
        realized_pnl=zero, unrealized_pnl_change=zero, unrealized_pnl_level=zero,
        transaction_cost=zero, failed_action_penalty=zero, curriculum_min_share=0.5,
        curriculum_weight=zero, diversity_bonus=zero,
    )
    market = Market(np.array([100, 90, 120, 80, 130, 70, 140, 60, 150]))
    config = EnvConfig(episode_length=8)
    other = RewardConfig(diversity_bonus=0.5)  # a batch where another env pays a bonus
    pair = Pair(2, [{"reward": r, "market": market, "config": config} for r in (reward, other)], 0)
    for step in range(10):
        pair.step([N_ACTIONS + step, step % N_ACTIONS])
    pair.check_traces()
    completed = pair.completed[0]
    assert completed is not None
    signs = {math.copysign(1.0, c) for r in completed for c in r.components}
    assert signs == {1.0, -1.0}  # the test exercises both signs of zero


def test_int_weights_give_bit_identical_rewards_and_float_components() -> None:
    """Weights given as ints (e.g. TOML ``-1``) are held as floats by RewardConfig, so
    both engines report float components and bit-identical rewards."""
    reward = RewardConfig(
        failed_action_penalty=-1, curriculum_min_share=0.5, curriculum_weight=-1,
        curriculum_scale=3, diversity_bonus=1,
    )
    config = EnvConfig(episode_length=30)
    env, engine = TradingEnv(config, reward), BatchEngine(1, config, reward)
    env.reset(seed=5)
    engine.reset(seed=5)
    rng = np.random.default_rng(1)
    for _ in range(30):
        a = int(rng.integers(0, N_ACTIONS))
        _, r, _, _, info = env.step(a)
        _, rewards, _, _, _ = engine.step(np.array([a]))
        assert float(rewards[0]).hex() == float(r).hex()
        assert engine.step_records()[0].components == info["record"].components
    assert reward.failed_action_penalty == -1.0 and type(reward.failed_action_penalty) is float
    assert all(type(c) is float for r in env.trace for c in r.components)


# --------------------------------------------------------------------------- int64 bounds


def _decreasing(n: int, top: int, bottom: int) -> Market:
    return Market(np.linspace(top, bottom, n).astype(np.int64))


def test_exactness_bounds_are_checked_exactly_at_the_limit() -> None:
    flat = [5_000] * 10
    kw = {"episode_length": 9, "lot_size": 1, "fee_ppm": 1000}
    assert exactness_problem(flat, cash=MAX_EQUITY, **kw) is None
    assert "equity can grow" in str(exactness_problem(flat, cash=MAX_EQUITY + 1, **kw))
    # Doubling once: equity up to 2 x cash.
    up = [5_000, 10_000]
    kw1 = {"episode_length": 1, "lot_size": 1, "fee_ppm": 0}
    assert exactness_problem(up, cash=MAX_EQUITY // 2 - 10**6, **kw1) is None
    assert exactness_problem(up, cash=MAX_EQUITY // 2 + 10**6, **kw1) is not None
    # A cheap price allows a huge position: cash / price units.
    assert exactness_problem([3_100] * 3, cash=MAX_EQUITY, episode_length=2, lot_size=1, fee_ppm=0) is None
    assert "units" in str(exactness_problem([3_000] * 3, cash=MAX_EQUITY, episode_length=2, lot_size=1, fee_ppm=0))
    # One lot's cost times (10**6 + fee) must stay below 2**63.
    lot_ok = (2**63 - 1) // (10**12 * (PPM + 1000))
    assert exactness_problem([10**12] * 2, cash=10**6, episode_length=1, lot_size=lot_ok, fee_ppm=1000) is None
    assert "lot" in str(exactness_problem([10**12] * 2, cash=10**6, episode_length=1, lot_size=lot_ok + 1, fee_ppm=1000))
    # Only windows of an episode count: a long rise spread over a long market is fine.
    rise = np.geomspace(100, 10**9, 2_000).astype(np.int64)
    assert exactness_problem(rise, cash=10**9, episode_length=10, lot_size=1, fee_ppm=0) is None
    assert exactness_problem(rise, cash=10**9, episode_length=1_999, lot_size=1, fee_ppm=0) is not None


def test_batch_at_the_equity_bound_matches_python_integers() -> None:
    """Cash at MAX_EQUITY, positions near MAX_POSITION: products far beyond 2**63 avoided."""
    config = EnvConfig(cash=MAX_EQUITY, fee_bps=25.5, episode_length=40, window=3)
    market = _decreasing(41, 3_200, 3_104)  # never rises: equity stays <= cash
    assert MAX_EQUITY // 3_104 <= MAX_POSITION
    env, engine = TradingEnv(config, market=market), BatchEngine(1, config, market=market)
    env.reset(seed=0)
    engine.reset(seed=0)
    plan = [3, 4, 4, 0, 6, 4, 5, 1, 4, 4, 4, 5, 2, 6, 4] * 3
    for a in plan[:40]:
        _, r, _, _, info = env.step(a)
        _, rewards, _, _, _ = engine.step(np.array([a]))
        assert repr(engine.step_records()[0]) == repr(info["record"])
        assert float(rewards[0]).hex() == float(r).hex()
    sells = [rec for rec in env.trace if rec.quantity < 0]
    assert sells and max(rec.position_before for rec in sells) > 10**9
    # the direct product the scalar machine forms on a partial sell would overflow int64
    assert any(rec.cost_basis_before * -rec.quantity > 2**63 for rec in sells)
    assert repr(engine.last_trace(0).records) == repr(env.trace.records)


@pytest.mark.parametrize(
    ("config", "market", "needle"),
    [
        (EnvConfig(cash=MAX_EQUITY + 1, episode_length=5), _decreasing(6, 9_000, 8_000), "equity can grow"),
        (EnvConfig(cash=10**12, episode_length=5), Market(np.full(6, 10)), "units"),
        (EnvConfig(lot_size=10**7, episode_length=1), Market(np.full(2, 10**6)), "lot"),
        (EnvConfig(cash=10**12, episode_length=3), Market(np.array([100, 1_000, 100, 1_000])), "equity can grow"),
    ],
)
def test_configs_that_could_overflow_are_refused_when_the_batch_is_built(
    config: EnvConfig, market: Market, needle: str
) -> None:
    TradingEnv(config, market=market).reset(seed=0)  # fine with Python integers
    with pytest.raises(InvalidConfig, match=rf"env 1 .*{needle}.*scalar TradingEnv"):
        BatchEngine(2, [EnvConfig(episode_length=config.episode_length), config], market=[market, market])


def test_generated_markets_are_checked_when_drawn() -> None:
    config = EnvConfig(cash=10**12, episode_length=200)
    wild = MarketSpec(kind="random_walk", volatility=0.5)
    engine = BatchEngine(2, config, market=wild)  # nothing drawn yet
    with pytest.raises(InvalidConfig, match=r"env \d \(market 'generated market'.*equity can grow"):
        engine.reset(seed=0)


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def engine() -> BatchEngine:
    e = BatchEngine(4, EnvConfig(episode_length=5))
    e.reset(seed=0)
    return e


def test_out_of_range_actions_name_every_env_and_value(engine: BatchEngine) -> None:
    with pytest.raises(InvalidAction) as info:
        engine.step(np.array([0, 7, 3, -1]))
    msg = str(info.value)
    assert "2 action(s) out of range: actions[1]=7, actions[3]=-1" in msg
    assert "0..6" in msg and "4=SELL_PARTIAL" in msg


@pytest.mark.parametrize(
    ("actions", "needle"),
    [
        (np.array([0.0, 1.0, 2.0, 3.0]), "Floats are refused"),
        (np.array([True, False, True, False]), "Booleans are refused"),
        (np.array([0, 1, 2]), r"shape \(3,\): expected one action per env, shape \(4,\)"),
        (np.zeros((4, 2), dtype=np.int64), r"shape \(4, 2\)"),
        (["HOLD"] * 4, "dtype <U4"),
    ],
)
def test_malformed_action_batches_are_refused(engine: BatchEngine, actions: Any, needle: str) -> None:
    with pytest.raises(InvalidAction, match=needle):
        engine.step(actions)


def test_accepted_action_forms(engine: BatchEngine) -> None:
    engine.step([0, 1, 2, 3])
    engine.step(np.array([[0], [4], [5], [6]], dtype=np.int32))
    engine.step(np.array([Action.HOLD] * 4, dtype=np.uint8))


def test_stepping_before_reset_and_bad_arguments() -> None:
    fresh = BatchEngine(2)
    with pytest.raises(EpisodeEnded, match=r"before reset\(\)"):
        fresh.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(EpisodeEnded):
        fresh.action_masks()
    with pytest.raises(InvalidConfig, match="num_envs=0"):
        BatchEngine(0)
    with pytest.raises(InvalidConfig, match="config has 3 entries for num_envs=2"):
        BatchEngine(2, [EnvConfig()] * 3)
    with pytest.raises(InvalidConfig, match=r"window sizes \[3, 10\]"):
        BatchEngine(2, [EnvConfig(window=3), EnvConfig()])
    with pytest.raises(InvalidMarket, match="needs 501"):
        BatchEngine(1, market=Market(np.arange(1, 50)))
    with pytest.raises(InvalidConfig, match=r"unknown reset options \['markets'\]"):
        fresh.reset(options={"markets": None})
    with pytest.raises(InvalidConfig, match="reset_mask"):
        fresh.reset(options={"reset_mask": np.array([1, 0])})
    with pytest.raises(InvalidConfig, match="first reset"):
        fresh.reset(options={"reset_mask": np.array([True, False])})
    with pytest.raises(InvalidMarket, match="expected a Market"):
        fresh.reset(options={"market": [1, None]})


def test_traces_need_a_record(engine: BatchEngine) -> None:
    with pytest.raises(InvalidConfig, match="out of range"):
        engine.trace(4)
    assert engine.last_trace(0) is None
    bare = BatchEngine(2, EnvConfig(episode_length=5), record=False)
    bare.reset(seed=0)
    bare.step(np.zeros(2, dtype=np.int64))
    assert len(bare.step_records()) == 2
    with pytest.raises(InvalidConfig, match="record=False"):
        bare.trace(0)
    assert bare.nbytes() < engine.nbytes()


def test_last_trace_survives_until_the_next_completion_unless_a_reset_cuts_it() -> None:
    e = BatchEngine(1, EnvConfig(episode_length=3))
    e.reset(seed=1)
    for _ in range(3):
        e.step(np.array([1]))
    first = e.last_trace(0)
    assert first is not None and len(first) == 3
    e.step(np.array([0]))
    assert e.last_trace(0) == first
    # Explicit resets keep the completed episode until the ring has moved past it.
    for _ in range(3):
        e.reset()
        e.step(np.array([0]))
        e.step(np.array([0]))
    with pytest.raises(InvalidConfig, match="overwritten"):
        e.last_trace(0)


# --------------------------------------------------------------------------- building blocks


@settings(max_examples=300)
@given(
    cash=st.integers(0, 10**15),
    price=st.integers(1, 10**12),
    lot=st.integers(1, 10**9),
    size=st.integers(1, PPM),
    fee_bps=st.integers(0, 100_000).map(lambda x: x / 100),
)
def test_buy_quantity_closed_form_equals_the_machines_loop(
    cash: int, price: int, lot: int, size: int, fee_bps: float
) -> None:
    """The engine omits Machine.buy_quantity's decrement loop: it never runs."""
    config = EnvConfig(lot_size=lot, fee_bps=fee_bps, buy_small=size / PPM)
    machine = Machine(config)
    budget = cash * size // PPM
    lots = budget * PPM // (lot * price * (PPM + config.fee_ppm))
    expected = max(lots, 1) * lot
    assert machine.buy_quantity(PortfolioState(cash, 0, 0), Action.BUY_SMALL, price) == expected


# --------------------------------------------------------------------------- the reward's sum
# One episode whose reward components do not add up the same in every order: four of its
# eight rewards change if the components are summed exactly (math.fsum) or compensated
# (builtin sum() from CPython 3.12 on) instead of left to right. The rewards below are
# total_reward's bits; they must come out of the scalar env and the batch engine alike on
# every interpreter the suite runs on (CI runs it on 3.11 and on the newest 3.12+).
GOLDEN_PRICES = [10007, 10313, 9871, 10559, 10211, 10733, 10401, 10997, 10603]
GOLDEN_ACTIONS = [
    Action.BUY_MEDIUM, Action.HOLD, Action.ADD_POSITION, Action.SELL_PARTIAL,
    Action.HOLD, Action.SELL_PARTIAL, Action.SELL_ALL, Action.SELL_ALL,
]
GOLDEN_REWARD = RewardConfig(
    realized_pnl=0.7, unrealized_pnl_change=1.3, unrealized_pnl_level=0.1, transaction_cost=3.0,
    failed_action_penalty=-0.05, curriculum_min_share=0.5, diversity_bonus=0.01,
)
GOLDEN_REWARDS = [
    "-0x1.88bd66277c45cp+0", "-0x1.f36a400fba884p+1", "-0x1.0b39192641b24p-2", "-0x1.b8d306a2b1706p+1",
    "-0x1.993b3a68b19a4p+0", "-0x1.82122fad6cb54p+1", "-0x1.534b72c5197a3p+1", "-0x1.999999999999ap-5",
]


def _golden_kwargs() -> dict[str, Any]:
    market = Market(np.array(GOLDEN_PRICES, dtype=np.int64))
    return {"config": EnvConfig(episode_length=8), "reward": GOLDEN_REWARD, "market": market}


def test_rewards_are_the_same_bits_on_every_interpreter() -> None:
    env = TradingEnv(**_golden_kwargs())
    env.reset(seed=0)
    rewards = [env.step(int(a))[1] for a in GOLDEN_ACTIONS]
    assert [float(r).hex() for r in rewards] == GOLDEN_REWARDS
    records = env.trace.records
    assert [total_reward(r.components) for r in records] == rewards
    # The episode tells the sums apart: an exact (or compensated) sum pays other bits.
    assert sum(math.fsum(r.components) != r.reward for r in records) == 4


def test_the_batch_engine_pays_the_same_bits() -> None:
    kwargs = _golden_kwargs()
    engine = BatchEngine(3, config=kwargs["config"], reward=kwargs["reward"], market=kwargs["market"])
    engine.reset(seed=0)
    paid = []
    for a in GOLDEN_ACTIONS:
        _, rewards, *_ = engine.step(np.full(3, int(a)))
        paid.append(rewards)
    for i in range(3):
        assert [float(r[i]).hex() for r in paid] == GOLDEN_REWARDS


def test_total_reward_adds_left_to_right_from_zero() -> None:
    # Pinned: every + rounds, in order. fsum (exact) and 3.12's sum() (compensated) give
    # 0.6 and 1.0 here; 0.0 + -0.0 is 0.0.
    assert total_reward((0.1, 0.2, 0.3)).hex() == (0.1 + 0.2 + 0.3).hex() == "0x1.3333333333334p-1"
    assert total_reward((1e20, 1.0, -1e20)) == 0.0
    assert math.fsum((1e20, 1.0, -1e20)) == 1.0
    assert total_reward((-0.0, -0.0)).hex() == "0x0.0p+0" and math.copysign(1.0, total_reward((-0.0,))) == 1.0
    assert total_reward(()) == 0.0


@settings(max_examples=200)
@given(
    st.lists(
        st.lists(
            st.one_of(
                st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e16, -1e16, 0.1, 3e-17]),
                st.floats(-1e12, 1e12, allow_nan=False),
            ),
            min_size=7,
            max_size=7,
        ),
        min_size=1,
        max_size=8,
    ),
    st.sets(st.integers(0, 6)),
)
def test_the_vectorized_sum_is_total_reward_bit_for_bit(rows: list[list[float]], zero: set[int]) -> None:
    # Components that are zero for every env (either sign) may be left out of the sum.
    for i, row in enumerate(rows):
        for j in zero:
            row[j] = -0.0 if (i + j) % 2 else 0.0
    comp = np.array(rows, dtype=np.float64).T.copy()
    want = [total_reward(row).hex() for row in rows]
    assert [x.hex() for x in _total_rewards(comp, range(7))] == want
    summed = [j for j in range(7) if j not in zero]
    out = np.full(len(rows), np.nan)
    assert _total_rewards(comp, summed, out) is out
    assert [x.hex() for x in out] == want


def test_log_matches_math_log_after_rounding_to_float32() -> None:
    rng = np.random.default_rng(0)
    ratios = list(np.exp(rng.uniform(-5, 5, 20_000)))
    # Near float32 rounding ties, where a one-ulp difference would change the float32.
    v = np.float32(rng.uniform(-5, 5, 20_000))
    ties = (v.astype(np.float64) + np.nextafter(v, np.float32(np.inf)).astype(np.float64)) / 2
    ratios += [math.exp(t) for t in ties.tolist()]
    x = np.array(ratios)
    got = _log_like_math(x).astype(np.float32)
    expected = np.array([math.log(r) for r in ratios]).astype(np.float32)
    assert got.tobytes() == expected.tobytes()


def test_gymnasium_vector_api() -> None:
    e = BatchEngine(3, EnvConfig(episode_length=2))
    assert e.metadata["autoreset_mode"].value == "SameStep"
    assert e.observation_space.shape == (3, 14) and e.action_space.shape == (3,)
    obs, _ = e.reset(seed=0)
    assert obs in e.observation_space
    e.step(e.action_space.sample())
    obs, _, terminated, _, info = e.step(np.zeros(3, dtype=np.int64))
    assert terminated.all() and info["_final_obs"].all()
    assert all(f in e.single_observation_space for f in info["final_obs"])
    assert re.match(r"BatchEngine\(num_envs=3", repr(e))
    view = e.env(1)
    assert view.trace == e.trace(1) and view.config == e.env(0).config
    assert np.array_equal(view.action_masks(), e.action_masks()[1])
