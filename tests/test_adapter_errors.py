"""A new user's own adapter: every mistake in it is a clear error blaming the adapter, not the env.

The defects come from writing an adapter for an env outside tradeguard: a forgotten
``return`` in ``record()``, a typo in ``TraceMeta.supplies``, action kinds of another
vocabulary, action names that do not match the action space, a factory that needs
arguments, a mask given in the reset info only, and a pytest-plugin failure with no
way to replay its search.
"""

from __future__ import annotations

import functools
import re
import socket
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from tradeguard._cli import main
from tradeguard.errors import InvalidConfig
from tradeguard.invariants import InvariantMonitor
from tradeguard.invariants._adapter import GymAdapter, partial_record
from tradeguard.invariants._catalog import CATALOG
from tradeguard.invariants._database import resolve_database
from tradeguard.invariants._gate import check_trading_env
from tradeguard.invariants._model import Context
from tradeguard.trace import StepRecord, TraceMeta

pytest_plugins = ["pytester"]


class ThreeActions(gym.Env[np.ndarray, int]):
    """0 HOLD, 1 BUY, 2 SELL; nothing happens. Reports its mask in ``info["action_mask"]`` only
    (no ``action_masks()``), at reset and after every step."""

    action_space = gym.spaces.Discrete(3)
    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self) -> None:
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {"action_mask": [True, True, False]}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return np.zeros(1, np.float32), 0.0, False, self.t >= 5, {"action_mask": [True, True, False]}


class MyAdapter:
    """A user's adapter; subclasses below each make one mistake."""

    name = "myenv"
    names: tuple[str, ...] = ("HOLD", "BUY", "SELL")
    kinds: tuple[Any, ...] = ("hold", "open", "close")

    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        return TraceMeta(env_id="myenv", action_names=self.names, action_kinds=self.kinds, seed=seed,
                         supplies=frozenset({"t", "predicted", "reward"}))

    def begin(self, env: Any, observation: Any, info: dict[str, Any]) -> None:
        return None

    def record(self, env: Any, step: Any) -> StepRecord:
        return partial_record(t=step.t, predicted=int(step.action), executed=int(step.action), reward=float(step.reward))

    def reset_options(self, market: Any) -> dict[str, Any] | None:
        return None

    def market_length(self, env: Any) -> int | None:
        return None


class ForgotReturn(MyAdapter):
    def record(self, env: Any, step: Any) -> StepRecord:
        partial_record(t=step.t, predicted=int(step.action), executed=int(step.action), reward=0.0)
        return None  # type: ignore[return-value]  # what a forgotten `return` gives


class TwoNames(MyAdapter):
    names = ("HOLD", "BUY")
    kinds = ("hold", "open")


# --------------------------------------------------------------------------- 1. record() returns None
def test_a_record_that_returns_none_is_blamed_on_the_adapter_by_the_gate() -> None:
    with pytest.raises(InvalidConfig) as err:
        check_trading_env(ThreeActions, adapter=ForgotReturn(), examples=5, seed=0)
    message = str(err.value)
    assert "the myenv adapter's record() returned None for step 0; expected a tradeguard.trace.StepRecord" in message
    assert "(a missing return?)" in message
    assert "AttributeError" not in message


def test_a_record_that_returns_none_is_blamed_on_the_adapter_by_the_monitor() -> None:
    monitored = InvariantMonitor(ThreeActions(), adapter=ForgotReturn())
    monitored.reset(seed=0)
    with pytest.raises(InvalidConfig, match=r"the myenv adapter's record\(\) returned None for step 0; expected a "
                       r"tradeguard\.trace\.StepRecord \(a missing return\?\)"):
        monitored.step(0)


def test_a_record_that_returns_none_is_blamed_on_the_adapter_by_the_policy_audit() -> None:
    from tradeguard.env import parse_policy
    from tradeguard.invariants.audit import audit_policy

    with pytest.raises(InvalidConfig) as err:
        audit_policy(parse_policy("hold"), env=ThreeActions(), adapter=ForgotReturn(), episodes=1,
                     families=["flat"])
    message = str(err.value)
    assert "the myenv adapter's record() returned None for step 0; expected a tradeguard.trace.StepRecord" in message
    assert "(a missing return?)" in message
    # ... and its healthy twin plays the same episodes without an error.
    report = audit_policy(parse_policy("hold"), env=ThreeActions(), adapter=MyAdapter(), episodes=1, families=["flat"])
    assert report.overall.steps == 5 and report.overall.action_distribution_executed["HOLD"] == 1.0


# --------------------------------------------------------------------------- 2. TraceMeta is validated
def test_a_typo_in_supplies_is_refused_with_a_suggestion() -> None:
    with pytest.raises(InvalidConfig) as err:
        TraceMeta(env_id="x", action_names=("A",), action_kinds=("hold",), supplies=frozenset({"t", "positon_before"}))
    message = str(err.value)
    assert "'positon_before', which is not a StepRecord field" in message
    assert "Did you mean 'position_before'?" in message
    assert "cost_basis_before" in message  # the fields, listed


def test_action_kinds_outside_the_vocabulary_are_refused_with_the_allowed_ones() -> None:
    with pytest.raises(InvalidConfig) as err:
        TraceMeta(env_id="x", action_names=("HOLD", "BUY", "SELL"), action_kinds=("hold", "buy", "sell"))  # type: ignore[arg-type]
    message = str(err.value)
    assert "'sell' is not an action kind" in message  # ('buy' is one: a buy that opens or adds)
    assert "expected one of 'hold', 'open', 'reduce', 'close', 'add', 'buy', 'rebalance'" in message
    assert "a buy that opens or adds is 'buy'" in message


def test_as_many_action_kinds_as_action_names_are_required() -> None:
    with pytest.raises(InvalidConfig, match=r"has 2 action_names \('HOLD', 'BUY'\) but 3 action_kinds"):
        TraceMeta(env_id="x", action_names=("HOLD", "BUY"), action_kinds=("hold", "open", "close"))


def test_action_names_that_do_not_match_the_action_space_are_blamed_on_the_adapter() -> None:
    with pytest.raises(InvalidConfig) as err:
        check_trading_env(ThreeActions, adapter=TwoNames(), examples=5, seed=0)
    message = str(err.value)
    assert "the myenv adapter's meta() names 2 actions ('HOLD', 'BUY'), but the env's action_space has 3" in message
    assert "mask has" not in message


# --------------------------------------------------------------------------- 3. a factory needing arguments
def make_env(steps: int) -> ThreeActions:
    return ThreeActions()


def test_a_factory_that_needs_arguments_is_blamed_not_the_env() -> None:
    with pytest.raises(InvalidConfig) as err:
        check_trading_env(make_env, adapter=MyAdapter(), examples=5, seed=0, name="argf:make_env")
    message = str(err.value)
    assert "the env factory argf:make_env needs arguments (steps)" in message
    assert "functools.partial(make_env, steps=...)" in message
    # the fix it suggests is accepted (the toy env's own contract findings aside)
    report = check_trading_env(functools.partial(make_env, steps=5), adapter=MyAdapter(), examples=5, seed=0)
    assert report.adapter == "myenv" and report.results


def test_the_cli_blames_a_factory_that_needs_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "argf.py").write_text("import gymnasium as gym\n\ndef make_env(steps):\n    return gym.make('CartPole-v1')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "argf", raising=False)
    code = main(["check", "--env", "argf:make_env", "--examples", "5", "--database", "none"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "the env factory argf:make_env needs arguments (steps)" in err
    assert "valid-steps-do-not-raise" not in err and "Traceback" not in err


# --------------------------------------------------------------------------- 4. a mask in the reset info
def test_the_gym_adapter_supplies_a_mask_given_only_in_the_reset_info() -> None:
    env = ThreeActions()
    adapter = GymAdapter()
    obs, info = env.reset(seed=0)
    adapter.begin(env, obs, info)
    assert "mask" in adapter.meta(env, seed=0).supplies

    monitored = InvariantMonitor(ThreeActions(), adapter=GymAdapter())
    monitored.reset(seed=0)
    monitored.step(0)
    assert "mask" in monitored.trace.meta.supplies
    assert monitored.trace[0].mask == (True, True, False)

    report = check_trading_env(ThreeActions, examples=5, seed=0, only=["mask-matches-execution"])
    assert report.adapter == "gym"
    assert "mask" not in report.results[0].missing


# --------------------------------------------------------------------------- 5. the plugin's replay hint
BROKEN_PLUGIN_TEST = '''
from tradeguard.env import EnvConfig, TradingEnv
from tradeguard.invariants import invariant_suite

class Broken(TradingEnv):
    def step(self, action):
        return super().step(0 if not isinstance(action, int) or not 0 <= action < 7 else action)

test_broken = invariant_suite(lambda: Broken(config=EnvConfig(episode_length=6)), only=["action-range-enforced"])
'''


def test_a_plugin_failure_says_the_search_seed_and_how_to_replay_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=BROKEN_PLUGIN_TEST)
    result = pytester.runpytest("--tradeguard-profile", "fast", "--tradeguard-database", "none", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    found = re.search(r"search seed (\d+) \(profile fast\); reproduce with: pytest (\S+) --tradeguard-profile fast "
                      r"--tradeguard-seed (\d+)", out)
    assert found is not None, out
    assert found.group(1) == found.group(3)
    assert "test_broken[action-range-enforced]" in found.group(2)

    again = pytester.runpytest("--tradeguard-profile", "fast", "--tradeguard-seed", found.group(1),
                               "--tradeguard-database", "none", "-p", "no:cacheprovider")
    again.assert_outcomes(failed=1)
    assert f"search seed {found.group(1)} (profile fast)" in again.stdout.str()


# --------------------------------------------------------------------------- 6. messages
def _no_buy_message(names: tuple[str, ...], kinds: tuple[Any, ...]) -> str | None:
    inv = next(i for i in CATALOG if i.id == "no-buy-while-in-position")
    assert inv.step_check is not None
    ctx = Context.of(TraceMeta(env_id="x", action_names=names, action_kinds=kinds))
    record = partial_record(t=0, predicted=1, executed=1, position_before=2, position_after=3)
    return inv.step_check(None, record, ctx)


def test_no_buy_while_in_position_names_the_envs_own_add_action_or_none() -> None:
    without = _no_buy_message(("HOLD", "BUY", "SELL"), ("hold", "open", "close"))
    assert without == "BUY executed while already holding 2 units; opening is only valid when flat"
    with_add = _no_buy_message(("HOLD", "BUY", "SELL", "TOP_UP"), ("hold", "open", "close", "add"))
    assert with_add == "BUY executed while already holding 2 units; opening is only valid when flat (adding is TOP_UP)"


def test_an_unreachable_redis_mentions_the_database_option_too() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pytest.importorskip("redis")
    with pytest.raises(InvalidConfig) as err:
        resolve_database(f"redis://127.0.0.1:{port}/0")
    message = str(err.value)
    assert "--database" in message and "TRADEGUARD_DATABASE" in message
