"""The policy audit: findings on reference policies, duck-typed models, broken envs, and Bug #1.

No training here (see test_training.py): models are small duck-typed stand-ins with
the exact ``predict`` signatures of stable-baselines3 ``PPO`` and sb3-contrib
``MaskablePPO``.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from tradeguard.env import ACTION_NAMES, Action, TradingEnv, parse_policy
from tradeguard.errors import InvalidConfig
from tradeguard.invariants import check_reported_metrics
from tradeguard.invariants.audit._policy_audit import (
    AUDIT_FAMILIES,
    FINDING_KINDS,
    PolicyContract,
    audit_markets,
    audit_policy,
    describe_policy,
)
from tradeguard.trace import compute_metrics

SHORT = {"episodes": 1, "episode_length": 60}


# --------------------------------------------------------------------------- stand-in models
class ConstantModel:
    """A collapsed PPO: ``predict`` has no ``action_masks`` (stable-baselines3 PPO's signature)."""

    def __init__(self, action: int) -> None:
        self.action = action

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]:
        return np.array(self.action), state


class MaskIgnoringModel:
    """Claims masks (MaskablePPO's signature) but ignores them: a broken mask-aware policy."""

    def __init__(self, action: int) -> None:
        self.action = action
        self.masks_seen: list[Any] = []

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
        action_masks: Any = None,
    ) -> tuple[np.ndarray, Any]:
        self.masks_seen.append(action_masks)
        return np.array(self.action), state


class MaskHonouringModel(MaskIgnoringModel):
    """MaskablePPO's contract done right: the first allowed action from the top of a preference list."""

    PREFERENCE = (Action.SELL_ALL, Action.BUY_SMALL, Action.HOLD)

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
        action_masks: Any = None,
    ) -> tuple[np.ndarray, Any]:
        self.masks_seen.append(action_masks)
        if action_masks is None:
            return np.array(int(Action.SELL_ALL)), state
        for a in self.PREFERENCE:
            if action_masks[a]:
                return np.array(int(a)), state
        raise AssertionError("HOLD is always allowed")


class SellsWithoutPosition(gym.Wrapper[Any, Any, Any, Any]):
    """A broken env: a rejected SELL_ALL is recorded as executed (sold with nothing held)."""

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        r = info["record"]
        if r.rejected and r.predicted == Action.SELL_ALL:
            info = {**info, "record": r._replace(executed=int(Action.SELL_ALL), rejected=False, reason=None)}
        return obs, reward, terminated, truncated, info


# --------------------------------------------------------------------------- the seed's collapsed agent
def test_constant_sell_partial_is_the_seeds_v10_collapse() -> None:
    report = audit_policy(parse_policy("constant:SELL_PARTIAL"), scenario="v10", **SHORT)
    assert not report.passed
    assert [f.kind for f in report.findings] == ["single-action-collapse", "rejection-collapse", "phantom-activity"]
    o = report.overall
    assert o.action_distribution_predicted["SELL_PARTIAL"] == 1.0
    assert o.action_distribution_executed["HOLD"] == 1.0
    assert o.rejection_rate == 1.0
    assert o.trades == 0
    assert o.mean_episode_reward == pytest.approx(60 * -0.05)
    assert o.mean_return == 0.0
    assert report.violations == ()  # the env is right; the policy is what is wrong
    messages = " ".join(f.message for f in report.findings)
    assert "100.0% of 240 predictions are SELL_PARTIAL" in messages
    assert "not one trade executed" in messages
    assert "executed HOLD 100.0%" in messages
    # per family, side by side
    assert [f.family for f in report.families] == list(AUDIT_FAMILIES)
    for fam in report.families:
        assert fam.action_distribution_predicted["SELL_PARTIAL"] == 1.0
        assert fam.action_distribution_executed["HOLD"] == 1.0
    text = report.format()
    assert "FAIL: 3 finding(s)" in text
    assert "SELL_PARTIAL    100.0%    0.0%" in text


def test_constant_buy_small_collapse_of_v1_to_v5() -> None:
    # BUY_SMALL executes once, then every later BUY_SMALL is rejected (already in position).
    report = audit_policy(parse_policy("constant:BUY_SMALL"), scenario="v10", **SHORT)
    assert report.kinds() == {"single-action-collapse", "rejection-collapse"}
    assert report.overall.trades == 4  # one buy per episode, 4 families
    assert report.overall.action_distribution_executed["BUY_SMALL"] == pytest.approx(4 / 240)


def test_reference_policies() -> None:
    masked = audit_policy(parse_policy("masked-random"), scenario="v10", **SHORT)
    assert masked.passed, masked.format()
    assert masked.overall.rejection_rate == 0.0
    assert masked.overall.invalid_predictions == 0
    assert masked.policy_respects_masks and masked.masks_passed

    hold = audit_policy(parse_policy("hold"), scenario="v10", **SHORT)
    assert hold.kinds() == {"single-action-collapse"}  # does nothing at all: never trades

    rand = audit_policy(parse_policy("random"), scenario="v10", **SHORT)
    assert 0.3 < rand.overall.rejection_rate < 0.7  # about half of uniform actions are invalid
    assert not rand.policy_respects_masks
    assert "masked-policy-predicts-invalid" not in rand.kinds()  # it never claimed to use masks


def test_hold_dominating_is_fine_when_the_policy_trades() -> None:
    class BuyAndHold:
        name = "buy-and-hold"

        def act(self, observation: Any, mask: Any, rng: Any) -> int:
            return int(Action.BUY_SMALL) if mask[Action.BUY_SMALL] else int(Action.HOLD)

    report = audit_policy(BuyAndHold(), scenario="v10", **SHORT)
    assert report.overall.action_distribution_predicted["HOLD"] > 0.95
    assert report.passed, report.format()


# --------------------------------------------------------------------------- masks
def test_evaluated_without_masks() -> None:
    report = audit_policy(parse_policy("masked-random"), scenario="v10", use_masks=False, **SHORT)
    assert "evaluated-without-masks" in report.kinds()
    assert not report.masks_passed and report.env_supports_masks
    assert report.overall.rejection_rate > 0
    finding = next(f for f in report.findings if f.kind == "evaluated-without-masks")
    assert "did not pass them" in finding.message


def test_masked_policy_predicting_invalid_is_caught() -> None:
    model = MaskIgnoringModel(int(Action.SELL_ALL))
    report = audit_policy(model, scenario="v10", **SHORT)
    assert report.policy_takes_masks and report.policy_respects_masks and report.masks_passed
    assert all(m is not None and m.dtype == bool and m.shape == (7,) for m in model.masks_seen)
    assert "masked-policy-predicts-invalid" in report.kinds()
    assert report.overall.invalid_predictions == 240
    finding = next(f for f in report.findings if f.kind == "masked-policy-predicts-invalid")
    assert "240 of 240 predictions" in finding.message


def test_mask_honouring_model_passes_and_is_never_rejected() -> None:
    model = MaskHonouringModel(0)
    report = audit_policy(model, scenario="v10", **SHORT)
    assert report.overall.invalid_predictions == 0
    assert report.overall.rejection_rate == 0.0
    assert "masked-policy-predicts-invalid" not in report.kinds()
    # the same model evaluated without masks: rejected SELL_ALLs, and the finding that says why
    unmasked = audit_policy(MaskHonouringModel(0), scenario="v10", use_masks=False, **SHORT)
    assert unmasked.kinds() >= {"evaluated-without-masks", "rejection-collapse"}
    assert unmasked.overall.action_distribution_predicted["SELL_ALL"] == 1.0


def test_ppo_like_model_takes_no_masks() -> None:
    model = ConstantModel(int(Action.HOLD))
    name, takes, respects = describe_policy(model)
    assert (name, takes, respects) == ("ConstantModel", False, False)
    report = audit_policy(model, scenario="v10", use_masks=False, **SHORT)
    assert "evaluated-without-masks" not in report.kinds()  # it cannot take them
    assert not report.masks_passed


def test_not_a_policy() -> None:
    with pytest.raises(InvalidConfig, match=r"policy=42 is not a policy: expected an object with act"):
        audit_policy(42, scenario="v10", **SHORT)

    class Vectorized:
        def predict(self, observation: Any, deterministic: bool = False) -> tuple[np.ndarray, None]:
            return np.array([1, 2]), None

    with pytest.raises(InvalidConfig, match=r"expected one\s+integer action per step"):
        audit_policy(Vectorized(), scenario="v10", **SHORT)


# --------------------------------------------------------------------------- invariants
def test_invariant_violations_in_a_broken_env_are_findings() -> None:
    env = SellsWithoutPosition(TradingEnv(scenario="v10"))
    report = audit_policy(ConstantModel(int(Action.SELL_ALL)), env=env, episodes=1, families=["flat"])
    assert not report.passed
    assert "invariant-violation" in report.kinds()
    ids = {v.invariant for v in report.violations}
    # a rejected SELL_ALL recorded as executed: sold nothing held, the mask forbade it, and
    # the penalty it paid does not match the (now zero) rejections
    assert ids == {"no-sell-without-position", "mask-matches-execution", "penalty-matches-rejections"}
    assert report.families[0].violations == len(report.violations)
    first = next(f for f in report.findings if f.kind == "invariant-violation")
    assert first.message.startswith("flat: [")
    assert "SELL_ALL executed with position 0 units" in report.format()

    # the same model on the real env: no violation, only the collapse
    clean = audit_policy(ConstantModel(int(Action.SELL_ALL)), scenario="v10", episodes=1, families=["flat"])
    assert clean.violations == ()
    assert "invariant-violation" not in clean.kinds()


# --------------------------------------------------------------------------- the contract
def test_contract_thresholds_and_ignore() -> None:
    policy = parse_policy("constant:SELL_PARTIAL")
    lenient = PolicyContract(
        max_action_share=None,
        max_rejection_rate=None,
        ignore=("phantom-activity",),
    )
    report = audit_policy(policy, scenario="v10", contract=lenient, **SHORT)
    assert report.passed
    assert [(f.kind, f.counts) for f in report.findings] == [("phantom-activity", False)]
    assert "(ignored by the contract)" in str(report.findings[0])

    strict = PolicyContract(max_rejection_rate=0.0)
    rand = audit_policy(parse_policy("masked-random"), scenario="v10", use_masks=False, contract=strict, **SHORT)
    assert "rejection-collapse" in rand.kinds()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_action_share": 0.0}, r"max_action_share=0.0 must be greater than 0.0"),
        ({"max_rejection_rate": 1.5}, r"max_rejection_rate=1.5 is out of range"),
        ({"phantom_max_share": 1.0}, r"phantom_max_share=1.0 can never be exceeded"),
        ({"max_invalid_masked": -1}, r"max_invalid_masked=-1 is out of range"),
        ({"ignore": ("rejection-colapse",)}, r"Did you mean 'rejection-collapse'\?"),
        ({"ignore": "phantom-activity"}, r"must be a tuple of finding kinds"),
    ],
)
def test_contract_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        PolicyContract(**kwargs)


def test_bad_arguments() -> None:
    with pytest.raises(InvalidConfig, match=r"family 'crahs'.*Did you mean 'crash'\?"):
        audit_policy(parse_policy("hold"), scenario="v10", families=["crahs"], **SHORT)
    with pytest.raises(InvalidConfig, match=r"episodes=0 is out of range"):
        audit_policy(parse_policy("hold"), scenario="v10", episodes=0)
    with pytest.raises(InvalidConfig, match=r"contract=.* must be a PolicyContract"):
        audit_policy(parse_policy("hold"), scenario="v10", contract={"max_action_share": 1}, **SHORT)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- markets and determinism
def test_audit_markets_are_deterministic_and_of_their_family() -> None:
    a = audit_markets(episodes=2, length=101, seed=3)
    b = audit_markets(episodes=2, length=101, seed=3)
    c = audit_markets(episodes=2, length=101, seed=4)
    assert list(a) == list(AUDIT_FAMILIES)
    for fam in a:
        assert [m.prices.tolist() for m in a[fam]] == [m.prices.tolist() for m in b[fam]]
        assert all(len(m) == 101 for m in a[fam])
    assert [m.prices.tolist() for m in a["random_walk"]] != [m.prices.tolist() for m in c["random_walk"]]
    assert all(len(set(m.prices.tolist())) == 1 for m in a["flat"])
    for m in a["crash"]:
        steps = np.diff(np.log(m.prices.astype(float)))
        assert steps.min() < np.log(0.8) + 0.05  # one drop of at least 20%, give or take a step
    for m in a["trend"]:
        assert abs(np.log(m.prices[-1] / m.prices[0])) > 0.05  # 100 steps of 0.1% to 0.4% drift


def test_same_seed_same_report_and_json_shape() -> None:
    one = audit_policy(parse_policy("masked-random"), scenario="v10", seed=5, **SHORT).as_dict()
    two = audit_policy(parse_policy("masked-random"), scenario="v10", seed=5, **SHORT).as_dict()
    assert one == two
    assert json.loads(json.dumps(one)) == one
    for key in ("passed", "findings", "action_distribution_predicted", "action_distribution_executed", "rejection_rate", "trades"):
        assert key in one
    assert set(one["families"]) == set(AUDIT_FAMILIES)
    assert set(one["action_distribution_executed"]) == set(ACTION_NAMES)
    assert sum(one["action_distribution_executed"].values()) == pytest.approx(1.0)
    other = audit_policy(parse_policy("masked-random"), scenario="v10", seed=6, **SHORT).as_dict()
    assert other["action_distribution_executed"] != one["action_distribution_executed"]


def test_finding_kinds_are_stable() -> None:
    assert FINDING_KINDS == (
        "single-action-collapse",
        "rejection-collapse",
        "phantom-activity",
        "masked-policy-predicts-invalid",
        "evaluated-without-masks",
        "invariant-violation",
    )


# --------------------------------------------------------------------------- the seed's Bug #1
def seed_evaluator(model: Any, env: TradingEnv, *, seed: int) -> dict[str, Any]:
    """The seed's evaluator (train_phase3_agents.py, line 1343): counts what the model *predicts*."""
    action_counter: Counter[int] = Counter()
    obs, _ = env.reset(seed=seed)
    done = False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        action_counter[int(action)] += 1  # TRACKS WHAT MODEL PREDICTS (before the env processes it)
        obs, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    total = sum(action_counter.values())
    return {"action_distribution": {name: action_counter[i] / total for i, name in enumerate(ACTION_NAMES)}}


def test_bug_1_an_evaluator_counting_predictions_is_flagged() -> None:
    env = TradingEnv(scenario="v10")
    reported = seed_evaluator(ConstantModel(int(Action.SELL_PARTIAL)), env, seed=0)
    trace = env.trace
    truth = compute_metrics(trace)

    # what the seed's evaluator said, and what happened
    assert reported["action_distribution"]["SELL_PARTIAL"] == 1.0
    assert truth.action_distribution_executed["HOLD"] == 1.0
    assert truth.action_distribution_executed["SELL_PARTIAL"] == 0.0
    assert truth.trades == 0 and truth.rejections == 500

    # presented as what the agent did, metrics-match-trace refuses it
    found = check_reported_metrics(trace, {"action_distribution_executed": reported["action_distribution"]})
    assert [v.invariant for v in found] == ["metrics-match-trace"]
    assert "HOLD reported 0.0, trace says 1.0" in found[0].message
    assert "SELL_PARTIAL reported 1.0, trace says 0.0" in found[0].message

    # the trace's own metrics pass, and they match the prediction counts as predictions
    assert check_reported_metrics(trace, truth.as_dict()) == []
    assert check_reported_metrics(trace, {"action_distribution_predicted": reported["action_distribution"]}) == []


def test_bug_1_the_audit_reports_both_distributions() -> None:
    report = audit_policy(ConstantModel(int(Action.SELL_PARTIAL)), scenario="v10", **SHORT)
    data = report.as_dict()
    assert data["action_distribution_predicted"]["SELL_PARTIAL"] == 1.0
    assert data["action_distribution_executed"]["HOLD"] == 1.0
    for trace in report.traces:
        assert check_reported_metrics(trace, {"action_distribution_executed": data["action_distribution_executed"]}) == []


# --------------------------------------------------------------------------- batched sweeps
@pytest.mark.slow
@pytest.mark.requires_rl
@pytest.mark.parametrize(("algo", "use_masks"), [("MaskablePPO", True), ("MaskablePPO", False), ("PPO", True)])
def test_sb3_model_sweeps_every_family_at_once_with_the_same_report(
    algo: str, use_masks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import PPO

    from tradeguard.invariants.audit import _policy_audit

    cls = MaskablePPO if algo == "MaskablePPO" else PPO
    model = cls("MlpPolicy", TradingEnv(scenario="v10"), seed=3, device="cpu")
    kwargs: dict[str, Any] = {"scenario": "v10", "episodes": 3, "episode_length": 30, "seed": 5, "use_masks": use_masks}
    threads = torch.get_num_threads()
    played: list[int] = []
    real_play = _policy_audit._play
    monkeypatch.setattr(_policy_audit, "_play", lambda *a, **k: played.append(1) or real_play(*a, **k))
    batched = audit_policy(model, **kwargs)
    assert played == []  # no episode played one by one
    assert torch.get_num_threads() == threads  # restored
    monkeypatch.setattr(_policy_audit, "_predicts_batches", lambda policy: False)
    one_by_one = audit_policy(model, **kwargs)
    assert len(played) == 3 * len(one_by_one.families)
    assert batched.traces == one_by_one.traces
    assert batched.as_dict() == one_by_one.as_dict()
    assert batched.format() == one_by_one.format()


@pytest.mark.slow
@pytest.mark.requires_rl
def test_stand_in_models_and_stochastic_predictions_are_played_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from stable_baselines3 import PPO

    from tradeguard.invariants.audit import _policy_audit

    played: list[int] = []
    real_play = _policy_audit._play
    monkeypatch.setattr(_policy_audit, "_play", lambda *a, **k: played.append(1) or real_play(*a, **k))
    audit_policy(ConstantModel(int(Action.HOLD)), scenario="v10", **SHORT)  # predicts one observation
    assert len(played) == 4
    model = PPO("MlpPolicy", TradingEnv(scenario="v10"), seed=3, device="cpu")
    audit_policy(model, scenario="v10", deterministic=False, **SHORT)  # torch's draws, in episode order
    assert len(played) == 8


@pytest.mark.parametrize("name", ["_policy_audit", "_policy_report"])
def test_docstring_examples_run(name: str) -> None:
    import doctest
    import importlib

    module = importlib.import_module(f"tradeguard.invariants.audit.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
