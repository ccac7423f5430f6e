"""Continuous-action policies on Portfolio-v0: the allocation audit and the training callback.

The continuous analogue of single-action collapse is one allocation sent whatever the
policy observes; a continuous policy that rebalances every step has not collapsed.
"""

from __future__ import annotations

import numpy as np
import pytest

from tradeguard.env import make_portfolio_env
from tradeguard.invariants.audit import allocation_collapse, audit_allocations


def steps_env() -> object:
    return make_portfolio_env(steps=15)


def test_a_constant_allocation_is_collapse_and_a_responsive_one_is_not() -> None:
    constant = audit_allocations(lambda obs: np.array([0.2, 0.3, 0.4]), steps_env, episodes=1)
    assert len(constant.findings) == 1 and constant.findings[0].startswith("100.0% of 60 allocations are within 0.01")
    assert constant.violations == ()
    assert [s.name for s in constant.instruments] == ["A", "B", "C"]
    assert all(s.requested_units > 0 for s in constant.instruments)

    def momentum(obs: np.ndarray) -> np.ndarray:  # weight the instruments that rose most recently
        last = obs[3:12:4]  # each instrument's latest log return (window 4)
        return np.clip(0.3 + 10 * last, 0.0, 1.0)

    responsive = audit_allocations(momentum, steps_env, episodes=1)
    assert responsive.findings == () and responsive.violations == (), responsive.format()
    assert responsive.passed


def test_cut_legs_are_counted_per_instrument() -> None:
    report = audit_allocations(lambda obs: np.array([1.0, 1.0, 1.0]),
                               lambda: make_portfolio_env(steps=10, scenario="long-short"), episodes=1)
    # 300% long asked, 200% allowed gross, and no cash for it: buys are cut, with a reason
    assert report.reasons.get("INSUFFICIENT_CASH", 0) > 0
    assert any(s.legs_cut > 0 for s in report.instruments)
    assert report.violations == ()


def test_collapse_needs_a_share_over_the_limit() -> None:
    assert allocation_collapse([[0.5, 0.5]] * 95 + [[0.0, 1.0]] * 5) is None  # exactly 95%: at the limit
    assert allocation_collapse([[0.5, 0.5]] * 96 + [[0.0, 1.0]] * 4) is not None


@pytest.mark.slow
@pytest.mark.requires_rl
def test_the_callback_judges_a_box_policy_by_its_allocations() -> None:
    from stable_baselines3 import PPO

    from tradeguard.rl import InvariantCallback

    # An exploring PPO rebalances every step: neither "single-action" (REBALANCE) collapse nor
    # phantom activity (its record-level predictions execute).
    exploring = InvariantCallback(check_every=64, verbose=0)
    PPO("MlpPolicy", make_portfolio_env(steps=32), n_steps=64, batch_size=32, n_epochs=1, seed=0,
        verbose=0).learn(192, callback=exploring)
    assert not exploring.stopped, exploring.stop_reason
    assert exploring.history and all(h.findings == () for h in exploring.history)
    assert exploring.history[0].action_distribution_predicted["REBALANCE"] > 0.5

    # A PPO whose action head ignores the observation (zero weights, bias 0.5) and whose
    # exploration noise is off sends one allocation: collapse, and the run is stopped.
    frozen = InvariantCallback(check_every=64, patience=1, verbose=0)
    model = PPO("MlpPolicy", make_portfolio_env(steps=32), n_steps=64, batch_size=32, n_epochs=1, seed=0,
                verbose=0, policy_kwargs={"log_std_init": -20.0})
    model.policy.action_net.weight.data.zero_()
    model.policy.action_net.bias.data.fill_(0.5)
    model.learn(320, callback=frozen)
    assert frozen.stopped
    assert "100.0% of 64 allocations are within 0.01 of [0.5, 0.5, 0.5]" in (frozen.stop_reason or "")
