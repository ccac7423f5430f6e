"""matches-reference: an env checked against a reference implementation it must match exactly.

The batch engine's lane (``tradeguard/TradingBatch-v0``) against the scalar ``TradingEnv``, lanes
broken on purpose (each caught, with a short counterexample), a user's port checked against the
env it replaces with drawn settings, and the errors of a reference that cannot be used.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import strategies as st

from tradeguard._cli import main
from tradeguard.env import (
    BatchEngine,
    BatchLaneEnv,
    EnvConfig,
    Market,
    TradingEnv,
    make_batch_lane_env,
)
from tradeguard.errors import InvalidConfig
from tradeguard.invariants import NativeAdapter, check_trading_env

pytest_plugins = ["pytester"]


def _status(report: Any, invariant: str) -> str:
    return {r.invariant.id: r.status for r in report.results}[invariant]


def _plays_as_its_reference(env: BatchLaneEnv, rng: np.random.Generator, seed: int, options: Any = None) -> None:
    """One episode of random actions on the lane and on its scalar reference: identical step for step."""
    scalar = env.reference()
    assert isinstance(scalar, TradingEnv)
    a, b = env.reset(seed=seed, options=options), scalar.reset(seed=seed, options=options)
    assert np.array_equal(a[0], b[0])
    ended = False
    while not ended:
        action = int(rng.integers(7))
        x, y = env.step(action), scalar.step(action)
        assert np.array_equal(x[0], y[0]) and x[1:4] == y[1:4] and x[4]["record"] == y[4]["record"]
        ended = x[2] or x[3]
    assert env.trace.records == scalar.trace.records


def test_the_lane_plays_every_episode_as_the_scalar_env() -> None:
    rng = np.random.default_rng(0)
    for scenario in ("default", "v10", "v10.1"):
        for seed in range(8):
            lane = make_batch_lane_env(steps=20, scenario=scenario)
            _plays_as_its_reference(lane, rng, seed)
            assert lane.trace_meta.env_id == "tradeguard/TradingBatch-v0"


@pytest.mark.parametrize(("lanes", "lane", "mixed"), [(2, 0, False), (2, 1, False), (3, 1, False), (3, 2, False),
                                                     (2, 1, True), (3, 0, True)])
def test_a_lane_among_neighbours_plays_every_episode_as_the_scalar_env(lanes: int, lane: int, mixed: bool) -> None:
    rng = np.random.default_rng(lanes * 10 + lane)
    prices = np.cumsum(rng.integers(-60, 70, size=16)).astype(np.int64) + 10_000
    for options in ({"market": Market(prices)}, None):  # a market 4 prices longer than needed; the seed's own
        for seed in range(6):
            env = make_batch_lane_env(steps=11, scenario="v10", lanes=lanes, lane=lane, mixed=mixed)
            _plays_as_its_reference(env, rng, seed, options)
    neighbour = env.engine.env((lane + 1) % lanes).config
    if mixed:  # another fee, other disabled actions, one step shorter
        assert (neighbour.fee_bps, neighbour.episode_length) == (0.0, 10) and neighbour.disabled_actions != ()
    else:
        assert neighbour == env.config


class UnrecordedEngineChargesNoFee(BatchLaneEnv):
    """Its engine without records is built with no fee: the path a training run without records
    takes differs from the one the gate reads (a stand-in for a bug of that path)."""

    def __init__(self, config: EnvConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.unrecorded = BatchEngine(self.lanes, dataclasses.replace(self.config, fee_bps=0.0), record=False)


def test_the_lane_raises_where_its_engine_without_records_disagrees() -> None:
    env = UnrecordedEngineChargesNoFee(EnvConfig(episode_length=5))
    env.reset(seed=0)
    env.step(0)  # a HOLD costs no fee: both agree
    with pytest.raises(RuntimeError, match=r"BatchEngine with records and without disagree after step\(\): their "
                       r"observations differ at index \(0, 11\): np.float32\(0.0900\d+\) against np.float32\(0.0900\d+\) "
                       r"\(record=False must change nothing but the records\)"):
        env.step(1)
    unseeded = UnrecordedEngineChargesNoFee(EnvConfig(episode_length=5))
    unseeded.reset()  # each engine draws its own market: not compared
    unseeded.step(1)


def test_a_lanes_neighbours_trade_something_else() -> None:
    env = make_batch_lane_env(steps=5, lanes=3, lane=1)
    env.reset(seed=4)
    env.step(1)
    records = env.engine.step_records()
    assert [r.predicted for r in records] == [3, 1, 2]  # env 2 is neighbour 1 (action 1 + 1), env 0 neighbour 2
    assert [t.meta.seed for t in (env.engine.trace(i) for i in range(3))] == [6, 4, 5]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lanes": 0}, r"lanes=0; expected a whole number of envs in the engine from 1 to 8"),
        ({"lanes": 9}, r"lanes=9; expected"),
        ({"lanes": True}, r"lanes=True; expected"),
        ({"lanes": 2, "lane": 2}, r"lane=2; expected which of the engine's 2 envs this is: 0 to 1"),
        ({"lane": -1}, r"lane=-1; expected"),
        ({"lanes": 2, "mixed": 1}, r"mixed=1; expected True \(neighbours with another config\) or False"),
    ],
)
def test_a_lane_outside_its_engine_is_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        make_batch_lane_env(steps=3, **kwargs)


def test_the_lane_refuses_what_the_scalar_env_refuses() -> None:
    lane = make_batch_lane_env(steps=2)
    lane.reset(seed=0)
    for bad in (True, 1.0, None, 7, -1, np.array([1])):
        with pytest.raises(ValueError):
            lane.step(bad)
    lane.step(0)
    lane.step(0)
    with pytest.raises(RuntimeError, match="after the episode ended"):
        lane.step(0)


def test_the_lane_passes_the_gate_against_its_reference() -> None:
    report = check_trading_env(functools.partial(make_batch_lane_env, steps=12), examples=25, max_steps=12, seed=0,
                               settings="adapter", reference="adapter")
    assert report.passed, report.format()
    assert _status(report, "matches-reference") == "pass"


class StaleObservationLane(BatchLaneEnv):
    """Returns the observation from before the step: records, rewards and masks are all right."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        obs, info = super().reset(seed=seed, options=options)
        self._shown = obs
        return obs, info

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = super().step(action)
        shown, self._shown = self._shown, obs
        return shown, reward, terminated, truncated, info


class ActionsFromTheFirstEnv(BatchLaneEnv):
    """Hands the engine its actions as if it were env 0: a lane other than 0 takes a neighbour's
    (rotated) action (an index bug that only an engine of several envs can show)."""

    def _actions(self, a: Any) -> Any:
        lane, self.lane = self.lane, 0
        try:
            return super()._actions(a)
        finally:
            self.lane = lane


def test_the_gate_places_the_lane_among_neighbours_and_catches_an_index_bug() -> None:
    report = check_trading_env(ActionsFromTheFirstEnv, examples=40, max_steps=8, seed=0, settings="adapter",
                               reference="adapter", only=["matches-reference"])
    (result,) = report.results
    assert result.status == "fail", report.format()
    cx = result.counterexample
    assert cx is not None and cx.settings["lanes"] > 1 and cx.settings["lane"] > 0
    assert len(cx.actions) <= 10


class OwnMarketLane(BatchLaneEnv):
    """Draws its own market from another seed than the one given (an injected market is fine)."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        if not options and seed is not None:
            seed += 1
        return super().reset(seed=seed, options=options)


@pytest.mark.parametrize(
    ("lane", "message"),
    [
        (StaleObservationLane, "on the example's market (seed "),
        (OwnMarketLane, "on the market the seed draws (seed "),
    ],
)
def test_a_lane_broken_on_purpose_fails_matches_reference(lane: type[BatchLaneEnv], message: str) -> None:
    report = check_trading_env(lambda: lane(config=EnvConfig(episode_length=12)), examples=25, max_steps=12, seed=0,
                               reference="adapter", only=["matches-reference"])
    assert _status(report, "matches-reference") == "fail"
    (result,) = report.results
    assert message in result.violations[0].message and "the env and its reference differ" in result.violations[0].message
    assert result.counterexample is not None and len(result.counterexample.actions) <= 10


def _env(fee_bps: float = 10.0) -> TradingEnv:
    return TradingEnv(config=EnvConfig(episode_length=10, fee_bps=fee_bps))


def _port_that_rounds_the_fee(fee_bps: float = 10.0) -> TradingEnv:
    """A port of ``_env`` that keeps the fee as a whole number of basis points."""
    return TradingEnv(config=EnvConfig(episode_length=10, fee_bps=float(round(fee_bps))))


FEES = st.fixed_dictionaries({"fee_bps": st.sampled_from([10.0, 0.0, 2.5])})


def test_a_users_port_is_checked_against_the_env_it_replaces_with_the_drawn_settings() -> None:
    healthy = check_trading_env(_env, examples=40, max_steps=10, seed=0, settings=FEES, reference=_env,
                                only=["matches-reference"])
    assert _status(healthy, "matches-reference") == "pass"
    broken = check_trading_env(_port_that_rounds_the_fee, examples=40, max_steps=10, seed=0, settings=FEES,
                               reference=_env, only=["matches-reference"])
    (result,) = broken.results
    assert result.status == "fail"
    assert result.counterexample is not None and result.counterexample.settings == {"fee_bps": 2.5}
    assert "fee" in result.violations[0].message or "cash" in result.violations[0].message


def test_without_a_reference_the_check_is_left_out_unless_asked_for() -> None:
    report = check_trading_env(_env, examples=3, max_steps=5, seed=0)
    assert "matches-reference" not in [r.invariant.id for r in report.results]
    asked = check_trading_env(_env, examples=3, max_steps=5, seed=0, only=["matches-reference"])
    (result,) = asked.results
    assert result.status == "not-applicable" and "no reference env to compare with" in result.note


class _ReturnsANumber(NativeAdapter):
    def reference(self, env: Any) -> Any:
        return 42


class _UnknownKinds(NativeAdapter):
    def market_kinds(self, env: Any) -> Any:
        return ("lunar",)


def test_a_reference_that_cannot_be_used_is_refused_with_what_to_give() -> None:
    with pytest.raises(InvalidConfig, match=r"reference=42 \(a int\); expected a factory of the reference env"):
        check_trading_env(_env, examples=3, reference=42)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfig, match=r"reference\(env\) returned a int; expected a zero-argument factory"):
        check_trading_env(_env, examples=3, seed=0, adapter=_ReturnsANumber(), reference="adapter")
    with pytest.raises(InvalidConfig, match=r"market_kinds\(env\) returned \('lunar',\); expected a non-empty tuple"):
        check_trading_env(_env, examples=3, seed=0, adapter=_UnknownKinds())


def test_the_cli_checks_the_lane_against_its_reference_and_takes_another(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", "--env", "tradeguard/TradingBatch-v0", "--examples", "15", "--max-steps", "10",
            "--only", "matches-reference,self-financing", "--json", "--database", "none", "--no-settings"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert {i["id"]: i["status"] for i in out["invariants"]} == {"self-financing": "pass", "matches-reference": "pass"}
    # Another reference: the lane against Portfolio-v0 differs at once (another action space, other records).
    assert main([*argv, "--reference", "tradeguard/Portfolio-v0"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert {i["id"]: i["status"] for i in out["invariants"]}["matches-reference"] == "fail"


def test_the_documented_example_fails_only_matches_reference() -> None:
    doc = Path(__file__).resolve().parents[1] / "docs" / "adapters.md"
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", doc.read_text(), re.S) if "make_port" in b]
    ns: dict[str, Any] = {"__name__": "adapters_md_reference"}
    exec(compile(block, str(doc), "exec"), ns)
    report = ns["report"]
    assert [r.invariant.id for r in report.results if r.status == "fail"] == ["matches-reference"]
    (failed,) = [r for r in report.results if r.status == "fail"]
    assert failed.counterexample.settings == {"fee_bps": 2.5}
    assert "against" in failed.violations[0].message


def test_the_lane_raises_where_the_engine_disagrees_with_itself() -> None:
    from tradeguard.trace import Trace

    lane = make_batch_lane_env(steps=3)
    lane.reset(seed=0)
    lane.step(1)  # the two read paths agree
    real = lane.engine.trace

    def trace_with_a_cent_more_fee(i: int) -> Trace:  # what a bug in the trace's columns would give
        t = real(i)
        return Trace((*t.records[:-1], t.records[-1]._replace(fee=t.records[-1].fee + 1)), t.meta)

    lane.engine.trace = trace_with_a_cent_more_fee  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="BatchEngine disagrees with itself at step 1: step_records"):
        lane.step(0)


PLUGIN_TEST = '''
import functools

from tradeguard.env import EnvConfig, TradingEnv, make_batch_lane_env
from tradeguard.invariants import invariant_suite


def port(fee_bps=10.0):  # a port that rounds the fee to whole basis points
    return TradingEnv(config=EnvConfig(episode_length=8, fee_bps=float(round(fee_bps))))


def scalar(fee_bps=10.0):
    return TradingEnv(config=EnvConfig(episode_length=8, fee_bps=fee_bps))


test_port = invariant_suite(functools.partial(port, fee_bps=2.5), reference=functools.partial(scalar, fee_bps=2.5),
                            only=["matches-reference", "self-financing"])
test_lane = invariant_suite(functools.partial(make_batch_lane_env, steps=8), reference="adapter",
                            only=["matches-reference"])
test_without = invariant_suite(scalar)
'''


def test_the_pytest_plugin_takes_a_reference_and_leaves_the_check_out_without_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=PLUGIN_TEST)
    result = pytester.runpytest("--tradeguard-profile", "fast", "--tradeguard-seed", "1", "--tradeguard-database", "none",
                                "-p", "no:cacheprovider", "-k", "matches or self-financing", "--co", "-q")
    ids = [line for line in result.stdout.lines if "::" in line]
    assert "test_user.py::test_port[matches-reference]" in ids and "test_user.py::test_lane[matches-reference]" in ids
    assert not any(i.startswith("test_user.py::test_without[matches-reference") for i in ids)
    result = pytester.runpytest("--tradeguard-profile", "fast", "--tradeguard-seed", "1", "--tradeguard-database", "none",
                                "-p", "no:cacheprovider", "-k", "test_port or test_lane")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*FAIL matches-reference*", "*cash_after is * against *"])
