"""Training with PPO / MaskablePPO, saving and loading, epsilon-greedy, and the layering rule.

Every training run here is tiny (a few hundred steps, fixed seeds, one torch thread).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradeguard.env import Action, TradingEnv
from tradeguard.errors import InvalidConfig
from tradeguard.invariants.audit._policy_audit import audit_policy
from tradeguard.rl import (
    EpsilonGreedy,
    Exploration,
    load,
    load_metadata,
    make_env,
    metadata_path,
    parse_ent_coef,
    parse_exploration,
    train,
)

TINY: dict[str, Any] = {"n_steps": 64, "batch_size": 32, "n_epochs": 2, "episode_length": 40, "torch_threads": 1}


@pytest.fixture(scope="module")
def masked_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("masked") / "model"
    return train(
        algo="maskable-ppo",
        scenario="v10",
        exploration="none",
        steps=256,
        seed=0,
        out=out,
        checkpoint_every=128,
        progress_bar=False,
        **TINY,
    )


# --------------------------------------------------------------------------- MaskablePPO and masks
@pytest.mark.slow
@pytest.mark.requires_rl
def test_maskable_ppo_never_predicts_what_its_mask_forbids(masked_run: Any) -> None:
    import torch

    model = masked_run.model
    for deterministic in (True, False):
        torch.manual_seed(0)
        report = audit_policy(model, scenario="v10", episodes=2, episode_length=40, deterministic=deterministic)
        assert report.masks_passed and report.policy_takes_masks and report.policy_respects_masks
        assert report.overall.invalid_predictions == 0, report.format()
        assert report.overall.rejection_rate == 0.0
        assert "masked-policy-predicts-invalid" not in report.kinds()
        assert "evaluated-without-masks" not in report.kinds()
        assert report.violations == ()


@pytest.mark.slow
@pytest.mark.requires_rl
def test_the_same_model_without_masks_is_reported(masked_run: Any) -> None:
    import torch

    torch.manual_seed(0)
    report = audit_policy(
        masked_run.model, scenario="v10", episodes=2, episode_length=40, deterministic=False, use_masks=False
    )
    assert "evaluated-without-masks" in report.kinds()
    assert not report.masks_passed
    # unmasked, the policy's logits for forbidden actions are live again: it predicts them
    assert report.overall.invalid_predictions > 0
    assert report.overall.rejection_rate > 0


@pytest.mark.slow
@pytest.mark.requires_rl
def test_training_run_metadata_and_checkpoints(masked_run: Any) -> None:
    r = masked_run
    assert r.steps_done == 256 and not r.stopped_early and r.stop_reason is None
    assert r.path is not None and r.path.is_file() and r.path.suffix == ".zip"
    meta = load_metadata(r.path)
    assert meta is not None and meta == json.loads(metadata_path(r.path).read_text())
    assert meta["algo"] == "maskable-ppo" and meta["sb3_class"] == "MaskablePPO"
    assert meta["scenario"]["name"] == "v10"
    assert meta["scenario"]["env"]["episode_length"] == 40
    assert meta["scenario"]["reward"]["failed_action_penalty"] == -0.05
    assert meta["exploration"] == "none" and meta["seed"] == 0 and meta["steps_done"] == 256
    assert meta["algo_kwargs"] == {"n_steps": 64, "batch_size": 32, "n_epochs": 2}
    assert [Path(c).name for c in r.checkpoints] == ["model_128_steps.zip", "model_256_steps.zip"]
    for c in r.checkpoints:
        cm = load_metadata(c)
        assert cm is not None and cm["checkpoint"] is True and cm["algo"] == "maskable-ppo"
        assert type(load(c)).__name__ == "MaskablePPO"


@pytest.mark.slow
@pytest.mark.requires_rl
def test_load_round_trip_gives_the_same_predictions(masked_run: Any) -> None:
    loaded = load(masked_run.path)
    assert type(loaded).__name__ == "MaskablePPO"
    env = TradingEnv(scenario="v10")
    obs, _ = env.reset(seed=3)
    for _ in range(20):
        mask = env.action_masks()
        a1, _ = masked_run.model.predict(obs, deterministic=True, action_masks=mask)
        a2, _ = loaded.predict(obs, deterministic=True, action_masks=mask)
        assert int(a1) == int(a2)
        obs, *_ = env.step(int(a1))
    # without the metadata file, the algorithm is read from the zip itself
    copy = masked_run.path.parent / "copy.zip"
    copy.write_bytes(masked_run.path.read_bytes())
    assert load_metadata(copy) is None
    assert type(load(copy)).__name__ == "MaskablePPO"


@pytest.mark.slow
@pytest.mark.requires_rl
def test_ppo_train_and_load(tmp_path: Path) -> None:
    r = train(algo="ppo", scenario="default", steps=64, seed=1, out=tmp_path / "ppo.zip", progress_bar=False, **TINY)
    assert r.path == tmp_path / "ppo.zip" and r.path.is_file()
    assert (tmp_path / "ppo.tradeguard.json").is_file()
    model = load(tmp_path / "ppo")
    assert type(model).__name__ == "PPO"
    metadata_path(r.path).unlink()
    assert type(load(r.path)).__name__ == "PPO"


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match=r"no model at '.*missing.zip'"):
        load(tmp_path / "missing")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(InvalidConfig, match=r"junk.zip is not a stable-baselines3 model archive: it is not a zip file; "
                       r"expected a stable-baselines3 model archive"):
        load(tmp_path / "junk.zip")
    (tmp_path / "bad.zip").write_bytes(b"x")
    (tmp_path / "bad.tradeguard.json").write_text("{not json")
    with pytest.raises(InvalidConfig, match=r"bad.tradeguard.json: not valid JSON"):
        load(tmp_path / "bad")


def test_train_argument_errors() -> None:
    with pytest.raises(InvalidConfig, match=r"algo='maskable_ppo' is not supported.*Did you mean 'maskable-ppo'\?"):
        train(algo="maskable_ppo", steps=10)
    with pytest.raises(InvalidConfig, match=r"steps=0 is out of range"):
        train(steps=0)
    with pytest.raises(InvalidConfig, match=r"checkpoint_every needs out=PATH"):
        train(steps=10, checkpoint_every=5)


@pytest.mark.requires_rl
def test_train_refuses_an_invariant_callback_that_is_not_one() -> None:
    # Told apart from an SB3 callback, so checked once stable-baselines3 is imported.
    with pytest.raises(InvalidConfig, match=r"invariant_callback='yes'"):
        train(steps=8, invariant_callback="yes", **TINY)


@pytest.mark.slow
@pytest.mark.requires_rl
def test_entropy_schedule_decays(tmp_path: Path) -> None:
    r = train(algo="ppo", scenario="v10", exploration="none", steps=256, ent_coef="0.5:0.01", progress_bar=False, **TINY)
    # set at the start of the last of 4 rollouts: progress 3/4
    assert r.model.ent_coef == pytest.approx(0.5 + (0.01 - 0.5) * 0.75)
    assert r.metadata["ent_coef"] == [0.5, 0.01]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("0.01", (0.01, 0.01)), ("0.5:0.01", (0.5, 0.01)), (0.2, (0.2, 0.2)), ((0.3, 0.1), (0.3, 0.1))],
)
def test_parse_ent_coef(spec: Any, expected: tuple[float, float]) -> None:
    assert parse_ent_coef(spec) == expected


@pytest.mark.parametrize("spec", ["", "a:b", "0.1:0.2:0.3", "-0.1"])
def test_parse_ent_coef_refuses(spec: str) -> None:
    with pytest.raises(InvalidConfig, match=r"ent_coef"):
        parse_ent_coef(spec)


# --------------------------------------------------------------------------- epsilon-greedy
def test_parse_exploration() -> None:
    assert parse_exploration("none") == Exploration()
    assert parse_exploration("epsilon-greedy:0.5:0.01") == Exploration(kind="epsilon-greedy", start=0.5, end=0.01)
    for bad in ("epsilon:0.5", "epsilon-greedy:0.5", "epsilon-greedy:1.5:0.1", "greedy"):
        with pytest.raises(InvalidConfig, match=r"exploration=|epsilon START"):
            parse_exploration(bad)


def test_epsilon_decays_linearly_and_replaces_at_that_rate() -> None:
    env = EpsilonGreedy(TradingEnv(scenario="v10"), start=0.5, end=0.1, decay_steps=400, seed=0)
    env.reset(seed=0)
    seen: list[tuple[float, bool, int]] = []
    for _ in range(1000):
        _, _, terminated, _, info = env.step(int(Action.HOLD))
        x = info["exploration"]
        seen.append((x["epsilon"], x["replaced"], info["record"].predicted))
        assert x["policy_action"] == 0
        if terminated:
            env.reset()
    eps = [e for e, _, _ in seen]
    assert eps[0] == 0.5 and eps[200] == pytest.approx(0.3) and eps[400:] == [0.1] * 600
    assert all(a >= b for a, b in itertools.pairwise(eps))
    late = [r for _, r, _ in seen[400:]]
    assert 0.05 < sum(late) / len(late) < 0.15
    # a replaced step sent a uniformly random action; an untouched one the policy's HOLD
    assert all(pred == 0 for _, r, pred in seen if not r)
    assert {pred for _, r, pred in seen if r} == set(range(7))


def test_epsilon_greedy_is_deterministic_and_leaves_the_env_rng_alone() -> None:
    def run(wrap: bool) -> tuple[list[int], list[int]]:
        base = TradingEnv(scenario="v10")
        env: Any = EpsilonGreedy(base, start=1.0, end=1.0, decay_steps=1, seed=9) if wrap else base
        env.reset(seed=4)
        actions = []
        for _ in range(30):
            _, _, _, _, info = env.step(0)
            actions.append(info["record"].predicted)
        return actions, list(base.prices)

    a1, p1 = run(True)
    a2, p2 = run(True)
    _, p_plain = run(False)
    assert a1 == a2 and p1 == p2
    assert p1 == p_plain  # the market is the same with or without the wrapper
    assert len(set(a1)) > 3


def test_epsilon_greedy_refuses_bad_settings() -> None:
    with pytest.raises(InvalidConfig, match=r"start=1.5 is out of range"):
        EpsilonGreedy(TradingEnv(), start=1.5)
    with pytest.raises(InvalidConfig, match=r"decay_steps=0 is out of range"):
        EpsilonGreedy(TradingEnv(), decay_steps=0)
    import gymnasium as gym

    with pytest.raises(InvalidConfig, match=r"needs a Discrete action space"):
        EpsilonGreedy(gym.make("Pendulum-v1"))


def test_make_env_uses_the_scenarios_exploration() -> None:
    env = make_env("v10", decay_steps=10, seed=0)
    assert isinstance(env, EpsilonGreedy) and (env.start, env.end) == (0.5, 0.01)
    assert isinstance(make_env("v10", exploration="none"), TradingEnv)
    assert isinstance(make_env("default"), TradingEnv)
    masks = env.get_wrapper_attr("action_masks")()  # what MaskablePPO calls through wrappers
    env.reset(seed=0)
    assert np.asarray(masks).dtype == bool


# --------------------------------------------------------------------------- layering
@pytest.mark.slow
def test_core_packages_do_not_import_sb3_or_torch() -> None:
    code = (
        "import sys\n"
        "import tradeguard.env, tradeguard.invariants, tradeguard.rl, tradeguard._cli\n"
        "import tradeguard.invariants.audit._policy_audit\n"
        "from tradeguard._cli import build_parser\n"
        "build_parser()\n"
        "bad = [m for m in ('torch', 'stable_baselines3', 'sb3_contrib') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
