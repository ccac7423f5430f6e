"""``InvariantCallback``: logging to the SB3 logger, stopping a collapsing run, catching a broken env."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import PPO
from stable_baselines3.common.logger import KVWriter, Logger

from tradeguard.env import ACTION_NAMES, Action, TradingEnv
from tradeguard.errors import InvalidConfig
from tradeguard.invariants.audit._policy_audit import PolicyContract
from tradeguard.rl import EpsilonGreedy, InvariantCallback, WindowStats, train

pytestmark = [pytest.mark.requires_rl, pytest.mark.slow]  # trains

PPO_TINY: dict[str, Any] = {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "seed": 0, "device": "cpu"}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def short_env(length: int = 40, scenario: str = "v10") -> TradingEnv:
    import dataclasses

    from tradeguard.env import load_scenario

    sc = load_scenario(scenario)
    return TradingEnv(scenario=dataclasses.replace(sc, env=dataclasses.replace(sc.env, episode_length=length)))


class Capture(KVWriter):
    """An SB3 logger output that keeps every dump in memory."""

    def __init__(self) -> None:
        self.dumps: list[dict[str, Any]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.dumps.append(dict(key_values))


def collapse_to(model: Any, action: Action) -> None:
    """Break a policy on purpose: its action logits all but certainly pick ``action``."""
    with torch.no_grad():
        model.policy.action_net.bias.zero_()
        model.policy.action_net.weight.zero_()
        model.policy.action_net.bias[int(action)] = 30.0


def test_a_collapsing_run_is_stopped_early() -> None:
    model = PPO("MlpPolicy", short_env(), learning_rate=1e-6, **PPO_TINY)
    collapse_to(model, Action.SELL_PARTIAL)
    cb = InvariantCallback(verbose=0)
    model.learn(total_timesteps=640, callback=cb)
    # two windows of one rollout each (patience 2), then stop: not 640 steps
    assert model.num_timesteps == 128
    assert cb.stopped
    assert cb.stop_reason is not None
    assert cb.stop_reason.startswith("tradeguard stopped training at step 128 of 640: the policy collapsed in 2 consecutive check(s) of 64 steps.")
    assert "[single-action-collapse] 100.0% of 64 predictions are SELL_PARTIAL" in cb.stop_reason
    assert "[phantom-activity]" in cb.stop_reason
    assert "--algo maskable-ppo" in cb.stop_reason
    kinds = [[k for k, _ in w.findings] for w in cb.history]
    assert kinds == [["single-action-collapse", "rejection-collapse", "phantom-activity"]] * 2
    w = cb.history[-1]
    assert w.action_distribution_predicted["SELL_PARTIAL"] == 1.0 and w.action_distribution_executed["HOLD"] == 1.0
    assert w.rejection_rate == 1.0 and w.trades == 0


def test_patience_and_log_only_mode() -> None:
    model = PPO("MlpPolicy", short_env(), learning_rate=1e-6, **PPO_TINY)
    collapse_to(model, Action.SELL_PARTIAL)
    cb = InvariantCallback(stop_on=(), verbose=0)
    model.learn(total_timesteps=192, callback=cb)
    assert model.num_timesteps == 192 and not cb.stopped and cb.stop_reason is None
    assert len(cb.history) == 3 and all(w.findings for w in cb.history)

    model = PPO("MlpPolicy", short_env(), learning_rate=1e-6, **PPO_TINY)
    collapse_to(model, Action.SELL_PARTIAL)
    cb = InvariantCallback(patience=1, verbose=0)
    model.learn(total_timesteps=640, callback=cb)
    assert model.num_timesteps == 64 and cb.stopped


def test_a_healthy_masked_run_is_not_stopped_and_logs_its_distributions() -> None:
    model = MaskablePPO("MlpPolicy", short_env(), **PPO_TINY)
    capture = Capture()
    model.set_logger(Logger(folder=None, output_formats=[capture]))
    cb = InvariantCallback(verbose=0)
    model.learn(total_timesteps=256, callback=cb)
    assert model.num_timesteps == 256 and not cb.stopped
    assert len(cb.history) == 4
    for w in cb.history:
        assert isinstance(w, WindowStats)
        assert w.findings == () and w.rejection_rate == 0.0 and w.invalid_masked == 0
        assert w.trades > 0 and w.replaced_share == 0.0 and w.violations == 0
    logged = [d for d in capture.dumps if "tradeguard/rejection_rate" in d]
    assert len(logged) == 4
    last, stats = logged[-1], cb.history[-1]
    for name in ACTION_NAMES:
        assert last[f"tradeguard/predicted/{name}"] == stats.action_distribution_predicted[name]
        assert last[f"tradeguard/executed/{name}"] == stats.action_distribution_executed[name]
    assert sum(last[f"tradeguard/executed/{n}"] for n in ACTION_NAMES) == pytest.approx(1.0)
    assert last["tradeguard/trades"] == stats.trades
    assert last["tradeguard/entropy_executed"] > 0
    assert last["tradeguard/violations"] == 0


def test_epsilon_greedy_noise_does_not_hide_a_collapse() -> None:
    env = EpsilonGreedy(short_env(), start=0.5, end=0.5, decay_steps=1, seed=0)
    model = PPO("MlpPolicy", env, learning_rate=1e-6, **PPO_TINY)
    collapse_to(model, Action.SELL_PARTIAL)
    cb = InvariantCallback(verbose=0)
    model.learn(total_timesteps=640, callback=cb)
    assert cb.stopped and model.num_timesteps == 128
    w = cb.history[-1]
    assert w.action_distribution_predicted["SELL_PARTIAL"] == 1.0  # the policy's own choice
    assert 0.3 < w.replaced_share < 0.7  # half of them replaced by random actions
    assert w.action_distribution_env_predicted["SELL_PARTIAL"] < 0.8  # what the env saw: diluted by the noise
    # the random BUYs open positions that the policy's SELL_PARTIALs then sell: the noise
    # makes the collapsed policy look active (trades, fewer rejections) ...
    assert w.trades > 0 and w.action_distribution_executed["SELL_PARTIAL"] > 0
    assert 0.0 < w.rejection_rate < 1.0
    # ... and the collapse is caught from the policy's own predictions
    assert [k for k, _ in w.findings] == ["single-action-collapse"]


def test_a_broken_env_stops_training_at_the_first_violation() -> None:
    class SellsWithoutPosition(gym.Wrapper[Any, Any, Any, Any]):
        def step(self, action: Any) -> Any:
            obs, reward, terminated, truncated, info = self.env.step(action)
            r = info["record"]
            if r.rejected and r.predicted == Action.SELL_ALL:
                info = {**info, "record": r._replace(executed=int(Action.SELL_ALL), rejected=False, reason=None)}
            return obs, reward, terminated, truncated, info

    model = PPO("MlpPolicy", SellsWithoutPosition(short_env(length=20)), **PPO_TINY)
    cb = InvariantCallback(verbose=0)
    model.learn(total_timesteps=640, callback=cb)
    assert cb.stopped and model.num_timesteps == 64
    assert cb.stop_reason is not None and "an invariant was violated" in cb.stop_reason
    assert "no-sell-without-position" in {v.invariant for v in cb.violations}
    assert "[invariant-violation]" in cb.stop_reason
    assert cb.history[-1].violations > 0


def test_a_non_tradeguard_env_is_refused_clearly() -> None:
    model = PPO("MlpPolicy", gym.make("CartPole-v1"), **PPO_TINY)
    with pytest.raises(InvalidConfig, match=r"info from env 0 has no 'record'.*needs a tradeguard TradingEnv"):
        model.learn(total_timesteps=64, callback=InvariantCallback(verbose=0))


def test_callback_argument_errors() -> None:
    with pytest.raises(InvalidConfig, match=r"stop_on contains 'collapse'"):
        InvariantCallback(stop_on=("collapse",))
    with pytest.raises(InvalidConfig, match=r"patience=0 is out of range"):
        InvariantCallback(patience=0)
    with pytest.raises(InvalidConfig, match=r"check_every=0 is out of range"):
        InvariantCallback(check_every=0)
    with pytest.raises(InvalidConfig, match=r"must be a PolicyContract"):
        InvariantCallback(contract={"max_action_share": 0.9})  # type: ignore[arg-type]


def test_train_attaches_the_callback_and_reports_the_stop() -> None:
    cb = InvariantCallback(contract=PolicyContract(max_action_share=0.01), patience=1, verbose=0)
    r = train(
        algo="ppo",
        scenario="v10",
        exploration="none",
        steps=640,
        invariant_callback=cb,
        progress_bar=False,
        n_steps=64,
        batch_size=64,
        n_epochs=1,
        episode_length=40,
        torch_threads=1,
    )
    # a contract no policy can meet (no action above 1%): stops after the first window
    assert r.stopped_early and r.steps_done == 64 and r.callback is cb
    assert r.stop_reason == cb.stop_reason and "single-action-collapse" in r.stop_reason
    assert np.isclose(sum(cb.history[0].action_distribution_predicted.values()), 1.0)
