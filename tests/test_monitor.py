"""InvariantMonitor: online checks, its fused fast path, and raise/record modes."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from broken_envs import IgnoringMachine
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.env import Action, Condition, EnvConfig, TradingEnv
from tradeguard.errors import InvalidConfig, InvariantViolation
from tradeguard.invariants import CATALOG, Context, GymAdapter, InvariantMonitor, NativeAdapter
from tradeguard.invariants._monitor import fast_step_ok
from tradeguard.trace import StepRecord, Trace, total_reward

SHORT = EnvConfig(episode_length=25)


def _records(seed: int, scenario: str = "default") -> Trace:
    env = TradingEnv(config=SHORT, scenario=scenario)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(25):
        env.step(int(rng.integers(7)))
    return env.trace


def _step_checks() -> list:
    return [i for i in CATALOG if i.step_check is not None]


def _rejecting(prev: StepRecord | None, r: StepRecord, ctx: Context) -> list[str]:
    """Ids of the catalog's step checks that report ``r``; a check that raises counts too."""
    found = []
    for inv in _step_checks():
        try:
            if inv.step_check(prev, r, ctx) is not None:
                found.append(inv.id)
        except Exception as e:  # a catalog crash is a report, not a pass
            found.append(f"{inv.id} raised {type(e).__name__}")
    return found


FIELDS = ["cash_after", "cash_before", "position_after", "equity_after", "equity_before", "fee", "quantity", "executed", "reward", "next_price", "cost_basis_before", "price", "predicted", "rejected", "mask", "components"]
# What prev's carried-over fields are mutated with (the step-to-step part of self-financing).
PREV_FIELDS = ["cash_after", "position_after", "next_price"]
NAN, INF = float("nan"), float("inf")


def _mutate(rec: StepRecord, field: str, delta: int, how: str) -> StepRecord:
    """``rec`` broken in ``field``: shifted by ``delta``, or (``how``) made a float or odd type."""
    value = getattr(rec, field)
    if field == "mask":
        mask = list(rec.mask)
        i = abs(delta) % len(mask)
        new: object = (
            (*mask[:i], not mask[i], *mask[i + 1:]) if how == "shift"
            else tuple(np.bool_(v) for v in mask) if how == "float"
            else tuple(2 if v else 0 for v in mask) if how == "odd"
            else tuple(mask[:-1])
        )
    elif field == "components":
        comps = list(rec.components)
        i = abs(delta) % len(comps)
        new = (
            (*comps[:i], comps[i] + delta * 0.25, *comps[i + 1:]) if how == "shift"
            else (*comps[:i], NAN if delta < 0 else INF, *comps[i + 1:]) if how == "float"
            # cancellation: a naive left-to-right sum still equals the reward, fsum does not
            else (1e20, 1.0, -1e20, *comps[3:]) if how == "odd"
            else (*comps[:i], -INF, INF, *comps[i + 1:])
        )
    elif field == "rejected":
        new = (not value) if how == "shift" else (None if how == "odd" else float(value))
    elif field == "reward":
        new = value + delta * 0.25 if how == "shift" else NAN if how == "odd" else INF * delta
    elif field == "executed":
        new = (value + delta) % 7
    elif how == "float":
        new = value + delta / 10  # a money field that is no longer an exact integer
    elif how == "odd":
        new = float(value) * (1 + 1e-16 * delta)
    else:
        new = value + delta
    return rec._replace(**{field: new})


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 50),
    scenario=st.sampled_from(["default", "v10", "v10.1", "v10.2"]),
    index=st.integers(0, 24),
    field=st.sampled_from(FIELDS),
    delta=st.sampled_from([-1, 1, 7, -1000]),
    how=st.sampled_from(["shift", "float", "odd", "other"]),
    prev_field=st.sampled_from([None, *PREV_FIELDS]),
)
def test_fast_path_never_passes_a_step_an_individual_check_rejects(
    seed: int, scenario: str, index: int, field: str, delta: int, how: str, prev_field: str | None
) -> None:
    trace = _records(seed, scenario)
    ctx = Context.of(trace.meta)
    rec = trace.records[index]
    bad = _mutate(rec, field, delta, how)
    prev = trace.records[index - 1] if index else None
    if prev is not None and prev_field is not None:
        prev = _mutate(prev, prev_field, delta, "shift")
    individual = _rejecting(prev, bad, ctx)
    if individual:
        assert not fast_step_ok(prev, bad, ctx), individual
    # And on the healthy record, both agree that all is well.
    healthy = trace.records[index - 1] if index else None
    assert fast_step_ok(healthy, rec, ctx)
    assert all(i.step_check(healthy, rec, ctx) is None for i in _step_checks())


@pytest.mark.parametrize(
    ("reward", "reported"),
    [
        (0.0, []),  # total_reward: left to right from 0.0, what tradeguard's envs pay
        (1.0, []),  # the exact sum (math.fsum), what an env that adds another way may pay
        (1.0 + 1e-12, []),  # within REL_TOL of the exact sum
        (2.0, ["reward-is-sum-of-components"]),
        (-1.0, ["reward-is-sum-of-components"]),
        (1e-12, ["reward-is-sum-of-components"]),  # near total_reward is not total_reward
        (float("nan"), ["reward-is-sum-of-components", "finite-rewards"]),
    ],
)
def test_fast_path_sums_components_as_the_catalog_does(reward: float, reported: list[str]) -> None:
    # (1e20, 1.0, -1e20) adds up to 0.0 left to right and to 1.0 exactly; builtin sum()
    # says 0.0 on CPython 3.11 and 1.0 from 3.12 on. The verdict must not depend on it.
    trace = _records(0, "v10.1")  # a shaped reward: reward-consistent-with-pnl does not apply
    assert not trace.meta.reward_is_pnl
    ctx = Context.of(trace.meta)
    rec = next(r for r in trace.records if not any(r.components[3:]))  # no fee, penalty, bonus
    comps = (1e20, 1.0, -1e20, *rec.components[3:])
    assert math.fsum(comps) == 1.0 and total_reward(comps) == 0.0
    record = rec._replace(components=comps, reward=reward)
    assert _rejecting(None, record, ctx) == reported
    assert fast_step_ok(None, record, ctx) is (reported == [])


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 50),
    scenario=st.sampled_from(["default", "v10", "v10.1", "v10.2"]),
    index=st.integers(0, 24),
    field=st.sampled_from(["executed", "predicted", "rejected", "components"]),
    delta=st.sampled_from([-1, 1, 7]),
)
def test_episode_totals_hold_whenever_every_step_passes_the_fast_path(
    seed: int, scenario: str, index: int, field: str, delta: int
) -> None:
    # The monitor skips the episode parts after a clean episode: that must be implied.
    trace = _records(seed, scenario)
    ctx = Context.of(trace.meta)
    records = list(trace.records)
    records[index] = _mutate(records[index], field, delta, "shift")
    broken = Trace(tuple(records), trace.meta)
    clean = all(fast_step_ok(records[i - 1] if i else None, r, ctx) for i, r in enumerate(records))
    found = [msg for i in CATALOG if i.episode_check is not None and i.scope == "step" for _, msg in i.episode_check(broken, ctx)]
    if clean:
        assert found == []
    # The healthy episode is clean, and its totals hold.
    assert all(fast_step_ok(trace.records[i - 1] if i else None, r, ctx) for i, r in enumerate(trace.records))
    assert [m for i in CATALOG if i.episode_check is not None and i.scope == "step" for _, m in i.episode_check(trace, ctx)] == []


def test_monitor_still_checks_totals_when_a_step_failed() -> None:
    # One rejected step with the penalty doubled: the step and the episode total are reported.
    from broken_envs import DoublePenaltyShaper

    config = dataclasses.replace(SHORT, episode_length=2)
    env = TradingEnv(config=config)
    env.shaper = DoublePenaltyShaper(env.reward_config, config.cash)
    monitored = InvariantMonitor(env, mode="record")
    monitored.reset(seed=0)
    monitored.step(Action.HOLD)
    monitored.step(Action.SELL_ALL)
    assert [(v.invariant, v.step) for v in monitored.violations] == [
        ("penalty-matches-rejections", 1),
        ("penalty-matches-rejections", None),
    ]


def test_monitor_raises_at_the_violating_step_with_the_ledger() -> None:
    env = TradingEnv(config=SHORT)
    env.machine = IgnoringMachine(SHORT, Action.SELL_ALL, Condition.IN_POSITION)
    monitored = InvariantMonitor(env)
    monitored.reset(seed=2)
    monitored.step(Action.HOLD)
    with pytest.raises(InvariantViolation) as info:
        monitored.step(Action.SELL_ALL)
    text = str(info.value)
    assert "[no-sell-without-position] step 1, seed 2: SELL_ALL executed with position 0 units (no position to sell); predicted SELL_ALL" in text
    assert re.search(r"replay: tradeguard run .* --seed 2 --actions 0,5", text)


def test_monitor_records_every_violation_and_keeps_going() -> None:
    env = TradingEnv(config=SHORT)
    env.machine = IgnoringMachine(SHORT, Action.SELL_ALL, Condition.IN_POSITION)
    monitored = InvariantMonitor(env, mode="record")
    monitored.reset(seed=0)
    for _ in range(25):
        monitored.step(Action.SELL_ALL)
    steps = [v.step for v in monitored.violations if v.invariant == "no-sell-without-position"]
    assert steps == list(range(25))
    assert len(monitored.trace) == 25


def test_monitor_passes_a_healthy_env_through_unchanged() -> None:
    plain, monitored = TradingEnv(config=SHORT), InvariantMonitor(TradingEnv(config=SHORT))
    o1, _ = plain.reset(seed=5)
    o2, _ = monitored.reset(seed=5)
    assert np.array_equal(o1, o2)
    for a in [1, 4, 6, 5, 2, 0, 3, 4]:
        r1 = plain.step(a)
        r2 = monitored.step(a)
        assert r1[1] == r2[1] and r1[4]["record"] == r2[4]["record"]
    assert monitored.violations == []


def test_monitor_checks_episode_totals_at_the_end() -> None:
    from broken_envs import DoublePenaltyShaper

    config = dataclasses.replace(SHORT, episode_length=3)
    env = TradingEnv(config=config)
    env.shaper = DoublePenaltyShaper(env.reward_config, config.cash)
    monitored = InvariantMonitor(env, mode="record")
    monitored.reset(seed=0)
    for _ in range(3):
        monitored.step(Action.SELL_PARTIAL)
    kinds = [(v.invariant, v.step) for v in monitored.violations]
    assert kinds.count(("penalty-matches-rejections", None)) == 1
    assert [s for i, s in kinds if i == "penalty-matches-rejections" and s is not None] == [0, 1, 2]
    total = next(v for v in monitored.violations if v.step is None)
    assert total.message == (
        "failed-action penalty total -6.0 over 3 steps; expected 3 rejections x -1.0 = -3.0"
    )


def test_bad_mode_is_refused() -> None:
    with pytest.raises(InvalidConfig, match=r"mode='loud'; expected 'raise' or 'record'"):
        InvariantMonitor(TradingEnv(), mode="loud")  # type: ignore[arg-type]


def test_record_fields_cover_what_the_fast_path_reads() -> None:
    assert set(FIELDS) <= set(StepRecord._fields)


def test_only_reports_the_selected_invariants() -> None:
    def run(only: list[str]) -> list[tuple[str, int | None]]:
        env = TradingEnv(config=SHORT)
        env.machine = IgnoringMachine(SHORT, Action.SELL_ALL, Condition.IN_POSITION)
        monitored = InvariantMonitor(env, mode="record", only=only)
        monitored.reset(seed=0)
        for _ in range(3):
            monitored.step(Action.SELL_ALL)
        return [(v.invariant, v.step) for v in monitored.violations]

    # SELL_ALL executes with nothing to sell: that is no-sell-without-position's business only.
    assert run(["no-sell-without-position"]) == [("no-sell-without-position", t) for t in range(3)]
    assert run(["penalty-matches-rejections", "equity-identity"]) == []


def test_healthy_steps_cost_one_fused_check_whatever_only_selects() -> None:
    # Narrowing the monitor must never make it slower than the whole catalog: the fused
    # check screens every step, and the individual checks run only when it fails.
    calls: list[str] = []

    def counted(inv_id: str, check: Any) -> Any:
        def run(prev: StepRecord | None, r: StepRecord, c: Context) -> str | None:
            calls.append(inv_id)
            return check(prev, r, c)
        return run

    for only in (None, ["no-sell-without-position", "penalty-matches-rejections"]):
        monitored = InvariantMonitor(TradingEnv(config=SHORT, scenario="v10"), mode="record", only=only)
        monitored._step_checks = tuple((inv, counted(inv.id, check)) for inv, check in monitored._step_checks)
        monitored.reset(seed=3)
        for a in np.random.default_rng(3).integers(0, 7, size=25):
            monitored.step(int(a))
        assert monitored.violations == [] and calls == []
        assert len(monitored.trace) == 25
    # The spy does see the selected checks run when a step fails the fused check.
    env = TradingEnv(config=SHORT)
    env.machine = IgnoringMachine(SHORT, Action.SELL_ALL, Condition.IN_POSITION)
    monitored = InvariantMonitor(env, mode="record", only=["penalty-matches-rejections", "no-sell-without-position"])
    monitored._step_checks = tuple((inv, counted(inv.id, check)) for inv, check in monitored._step_checks)
    monitored.reset(seed=0)
    monitored.step(Action.SELL_ALL)
    assert sorted(calls) == ["no-sell-without-position", "penalty-matches-rejections"]


class _CountingEnv(gym.Env[np.ndarray, int]):
    """Any gymnasium env (not tradeguard's): reward 1.0 a step, NaN at step ``nan_at``."""

    action_space = gym.spaces.Discrete(3)
    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, nan_at: int | None = None) -> None:
        self.nan_at = nan_at
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward = float("nan") if self.t == self.nan_at else 1.0
        self.t += 1
        return np.zeros(1, np.float32), reward, self.t >= 5, False, {}


def test_monitor_checks_any_env_through_an_adapter() -> None:
    healthy = InvariantMonitor(_CountingEnv(), mode="record", adapter=GymAdapter())
    healthy.reset(seed=0)
    for a in [0, 1, 2, 1, 0]:
        healthy.step(a)
    assert healthy.violations == []
    assert [(r.t, r.predicted, r.reward) for r in healthy.trace] == [(0, 0, 1.0), (1, 1, 1.0), (2, 2, 1.0), (3, 1, 1.0), (4, 0, 1.0)]

    broken = InvariantMonitor(_CountingEnv(nan_at=3), adapter=GymAdapter())
    broken.reset(seed=0)
    for a in [0, 1, 2]:
        broken.step(a)
    with pytest.raises(InvariantViolation, match=r"\[finite-rewards\] step 3, seed 0: reward is nan"):
        broken.step(1)


def test_without_an_adapter_the_monitor_chooses_the_one_the_gate_would() -> None:
    # A plain gymnasium env gets the gym adapter, as in check_trading_env (the monitor used to
    # default to NativeAdapter: AttributeError, no trace_meta, on the first reset).
    monitored = InvariantMonitor(_CountingEnv(nan_at=2), mode="record")
    assert isinstance(monitored.adapter, GymAdapter)
    monitored.reset(seed=0)
    for a in [0, 1, 2, 1]:
        monitored.step(a)
    assert [(v.invariant, v.step, v.message) for v in monitored.violations] == [("finite-rewards", 2, "reward is nan")]
    # tradeguard's own env, bare or wrapped, keeps its own records and the fused fast path.
    for env in (TradingEnv(config=SHORT), gym.wrappers.TimeLimit(TradingEnv(config=SHORT), max_episode_steps=10)):
        native = InvariantMonitor(env, mode="record")
        assert isinstance(native.adapter, NativeAdapter)
        native.reset(seed=0)
        assert native._native_fast is not None
        for a in [1, 0, 5]:
            native.step(a)
        assert native.violations == [] and len(native.trace) == 3


def test_the_native_adapter_given_for_another_env_is_a_clear_error() -> None:
    with pytest.raises(InvalidConfig) as info:
        InvariantMonitor(_CountingEnv(), adapter=NativeAdapter())
    assert str(info.value) == (
        "adapter 'tradeguard' (NativeAdapter) was given for a _CountingEnv, which is not tradeguard's "
        "TradingEnv: that adapter reads the records TradingEnv keeps itself (trace_meta and "
        "info['record']), and this env keeps none. Leave the adapter out to have adapter_for(env) "
        "choose one (GymAdapter for a plain gymnasium env, which knows nothing of its trading), or "
        "write an adapter for this env to check its trading (docs/adapters.md)."
    )


def test_the_gym_adapter_refuses_an_action_space_it_cannot_record() -> None:
    class Nested(_CountingEnv):
        action_space = gym.spaces.Tuple((gym.spaces.Discrete(2),))  # type: ignore[assignment]

    monitored = InvariantMonitor(Nested())
    with pytest.raises(InvalidConfig) as info:
        monitored.reset(seed=0)
    assert str(info.value) == (
        "the env's action_space is Tuple(Discrete(2)); the gym adapter records Discrete, MultiDiscrete and "
        "Box actions. For another action space, write an adapter (docs/adapters.md)."
    )


def test_the_gym_adapter_records_a_box_env_without_action_ids() -> None:
    class Continuous(_CountingEnv):
        action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)  # type: ignore[assignment]

    healthy = InvariantMonitor(Continuous(), mode="record")
    healthy.reset(seed=0)
    healthy.step(np.array([0.5], dtype=np.float32))
    assert healthy.violations == []
    assert healthy.trace.meta.supplies == frozenset({"t", "reward"})  # no action ids to claim
    broken = InvariantMonitor(Continuous(nan_at=1), mode="record")
    broken.reset(seed=0)
    for _ in range(3):
        broken.step(np.array([0.5], dtype=np.float32))
    assert [(v.invariant, v.step, v.message) for v in broken.violations] == [("finite-rewards", 1, "reward is nan")]


def _consistent(rec: StepRecord, q: int) -> StepRecord:
    """``rec`` trading ``q`` units instead, every identity kept (cash, equity, the PnL reward's components)."""
    pos1 = rec.position_before + q
    cash1 = rec.cash_before - q * rec.price - rec.fee
    eq1 = cash1 + pos1 * rec.next_price
    return rec._replace(quantity=q, position_after=pos1, cash_after=cash1, equity_after=eq1)


@pytest.mark.parametrize(("kind", "q_of"), [
    ("reduce", lambda held: 1),          # a "reduce" that bought
    ("close", lambda held: -(held // 2) or -1),  # a "close" that left units held
    ("add", lambda held: -1),            # an "add" that sold
    ("buy", lambda held: -1),            # a "buy" that sold
])
def test_fast_path_rejects_an_action_that_moved_the_position_against_its_kind(kind: str, q_of: Any) -> None:
    """A step consistent in every identity, whose action moved the position the wrong way for its kind:
    allowed-actions-execute rejects it, and so must the fused check (it never passes what a check rejects)."""
    trace = _records(3)
    ctx0 = Context.of(trace.meta)
    held = next(r for r in trace.records if r.position_before > 2 and not r.rejected and r.executed != ctx0.hold
                and r.legs is None)
    action = held.executed
    kinds = tuple(kind if a == action else k for a, k in enumerate(trace.meta.action_kinds))
    # (a reward that claims nothing: the reward checks have nothing to say about the changed trade)
    meta = dataclasses.replace(trace.meta, action_kinds=kinds, reward_is_pnl=False)
    ctx = Context.of(meta)
    bad = _consistent(held, q_of(held.position_before))
    assert "allowed-actions-execute" in _rejecting(None, bad, ctx)
    assert set(_rejecting(None, bad, ctx)) <= {"allowed-actions-execute", "no-add-without-profitable-position"}
    assert not fast_step_ok(None, bad, ctx)
    assert fast_step_ok(None, held, Context.of(dataclasses.replace(trace.meta, reward_is_pnl=False)))
