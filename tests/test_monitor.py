"""InvariantMonitor: online checks, its fused fast path, and raise/record modes."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from broken_envs import IgnoringMachine
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.env import Action, Condition, EnvConfig, TradingEnv
from tradeguard.errors import InvalidConfig, InvariantViolation
from tradeguard.invariants import CATALOG, Context, InvariantMonitor
from tradeguard.invariants._monitor import fast_step_ok
from tradeguard.trace import StepRecord, Trace

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


FIELDS = ["cash_after", "cash_before", "position_after", "equity_after", "equity_before", "fee", "quantity", "executed", "reward", "next_price", "cost_basis_before"]


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 50),
    scenario=st.sampled_from(["default", "v10", "v10.1", "v10.2"]),
    index=st.integers(0, 24),
    field=st.sampled_from(FIELDS),
    delta=st.sampled_from([-1, 1, 7, -1000]),
)
def test_fast_path_never_passes_a_step_an_individual_check_rejects(seed: int, scenario: str, index: int, field: str, delta: int) -> None:
    trace = _records(seed, scenario)
    ctx = Context.of(trace.meta)
    rec = trace.records[index]
    value = getattr(rec, field)
    if field == "executed":
        new = (value + delta) % 7
    elif field == "reward":
        new = value + delta * 0.25
    else:
        new = value + delta
    bad = rec._replace(**{field: new})
    prev = trace.records[index - 1] if index else None
    individual = [i.id for i in _step_checks() if i.step_check(prev, bad, ctx) is not None]
    if individual:
        assert not fast_step_ok(prev, bad, ctx), individual
    # And on the healthy record, both agree that all is well.
    assert fast_step_ok(prev, rec, ctx)
    assert all(i.step_check(prev, rec, ctx) is None for i in _step_checks())


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
