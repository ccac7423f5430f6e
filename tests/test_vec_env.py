"""TradingVecEnv against DummyVecEnv of scalar TradingEnvs: same rollouts, same trained model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from tradeguard.env import EnvConfig, Market, RewardConfig, TradingEnv
from tradeguard.env._vec_env import TradingVecEnv
from tradeguard.errors import InvalidAction, InvalidConfig

pytestmark = [pytest.mark.requires_rl, pytest.mark.slow]  # trains

N = 3


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny networks: one thread is fastest (and idle threads spin on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

CONFIG = EnvConfig(episode_length=40, window=5)
REWARD = RewardConfig(failed_action_penalty=-0.05)


def dummy() -> DummyVecEnv:
    return DummyVecEnv([lambda: TradingEnv(CONFIG, REWARD) for _ in range(N)])


def batch(**kwargs: Any) -> TradingVecEnv:
    return TradingVecEnv(N, CONFIG, REWARD, **kwargs)


def train(algo: Any, venv: VecEnv) -> Any:
    model = algo(
        "MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=11, device="cpu",
        policy_kwargs={"net_arch": [16]},
    )
    model.learn(2 * 64 * N)  # two rollouts of 64 steps, three 40-step episodes per env
    return model


@pytest.mark.parametrize("algo", [PPO, MaskablePPO], ids=["PPO", "MaskablePPO"])
def test_training_gives_the_same_model_as_dummy_vec_env(algo: Any) -> None:
    reference, candidate = train(algo, dummy()), train(algo, batch())
    a, b = reference.policy.state_dict(), candidate.policy.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    ra, rb = reference.rollout_buffer, candidate.rollout_buffer
    for field in ("observations", "actions", "rewards", "episode_starts", "values", "log_probs"):
        assert np.array_equal(getattr(ra, field), getattr(rb, field)), field
    if algo is MaskablePPO:
        assert np.array_equal(ra.action_masks, rb.action_masks)
        assert not ra.action_masks.all()  # masking really happened


def test_step_by_step_equals_dummy_vec_env_including_auto_reset() -> None:
    ref, venv = dummy(), batch(info_records=True)
    ref.seed(5)
    venv.seed(5)
    assert ref.reset().tobytes() == venv.reset().tobytes()
    rng = np.random.default_rng(2)
    ends = 0
    for _ in range(2 * CONFIG.episode_length + 5):
        masks = get_action_masks(venv)
        assert np.array_equal(masks, get_action_masks(ref))
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        o1, r1, d1, i1 = ref.step(actions)
        o2, r2, d2, i2 = venv.step(actions)
        assert o1.tobytes() == o2.tobytes()
        assert r1.dtype == r2.dtype == np.float32 and r1.tobytes() == r2.tobytes()
        assert np.array_equal(d1, d2)
        for a, b in zip(i1, i2, strict=True):
            assert a.keys() == b.keys()
            assert repr(a["record"]) == repr(b["record"])
            assert a["TimeLimit.truncated"] is b["TimeLimit.truncated"] is False
            if "terminal_observation" in a:
                ends += 1
                assert a["terminal_observation"].tobytes() == b["terminal_observation"].tobytes()
    assert ends == 2 * N
    for i in range(N):
        assert repr(venv.trace(i).records) == repr(ref.envs[i].unwrapped.trace.records)
    assert [repr(t.records) for t in venv.get_attr("trace")] == [
        repr(t.records) for t in ref.get_attr("trace")
    ]
    assert venv.get_attr("state") == ref.get_attr("state")
    assert all(t is not None and len(t) == CONFIG.episode_length for t in venv.get_attr("last_trace"))


def test_masking_is_supported_and_per_env() -> None:
    venv = batch()
    venv.seed(0)
    venv.reset()
    assert is_masking_supported(venv)
    masks = get_action_masks(venv)
    assert masks.shape == (N, 7) and masks.dtype == np.bool_
    assert np.array_equal(masks, venv.action_masks())
    assert [m.tolist() for m in venv.env_method("action_masks", indices=[2, 0])] == [
        masks[2].tolist(), masks[0].tolist(),
    ]


def test_options_seed_and_bad_input() -> None:
    venv = batch()
    market = Market(np.arange(100, 200))
    venv.set_options({"market": market})
    venv.seed(1)
    venv.reset()
    prices = venv.get_attr("prices")
    assert all(p[0] >= 100 and len(p) == CONFIG.episode_length + 1 for p in prices)
    with pytest.raises(InvalidAction, match=r"actions\[1\]=9"):
        venv.step(np.array([0, 9, 0]))
    with pytest.raises(InvalidConfig, match="set_attr"):
        venv.set_attr("render_mode", "human")
    with pytest.raises(InvalidConfig, match="out of range"):
        venv.get_attr("trace", indices=[N])
    with pytest.raises(AttributeError):
        venv.get_attr("no_such_attribute")
    venv.set_options({"markets": market})
    with pytest.raises(InvalidConfig, match=r"unknown reset options \['markets'\]"):
        venv.reset()
    assert venv.env_is_wrapped(object) == [False] * N  # type: ignore[arg-type]
    venv.close()
