"""The library refuses what its command-line options refuse, under the parameter's name.

The CLI checks its options first (tests/test_cli_errors.py); a program calling the library
directly must get the same clear error, not a numpy, platform-clock or stable-baselines3
traceback, nor a run that never ends.
"""

from __future__ import annotations

import numpy as np
import pytest

from tradeguard.env import Market, TradingEnv
from tradeguard.errors import InvalidConfig
from tradeguard.invariants import check_trading_env
from tradeguard.invariants.audit import audit_policy
from tradeguard.invariants.audit._reward_audit import MAX_EXAMPLES, default_max_examples


@pytest.mark.parametrize("unit", [0.0, -0.01, float("nan"), float("inf")])
def test_a_market_refuses_a_minor_unit_that_is_not_a_positive_number(unit: float) -> None:
    with pytest.raises(InvalidConfig, match=rf"minor_unit={unit!r} must be"):
        Market(np.array([100, 101], dtype=np.int64), minor_unit=unit)
    assert Market(np.array([100, 101], dtype=np.int64), minor_unit=0.0001).minor_unit == 0.0001


def test_the_gate_refuses_a_timeout_past_a_day() -> None:
    # 1e12 s is past what the platform's clock represents: every call "timed out" and the env was blamed
    with pytest.raises(InvalidConfig, match=r"timeout=1000000000000\.0 is out of range: expected in \(0\.0, 86400\.0\]"):
        check_trading_env(TradingEnv, timeout=1e12)


def test_the_reward_audits_default_budget_of_examples_stays_within_its_bound() -> None:
    # 30 markets a second: past 33,333 s of budget the default used to exceed the bound it is checked against
    assert default_max_examples(2) == 60
    assert default_max_examples(0.1) == 10
    assert default_max_examples(40_000) == MAX_EXAMPLES


def test_the_policy_audit_refuses_episodes_it_could_never_play() -> None:
    with pytest.raises(InvalidConfig, match=r"episodes=1000000000000 is out of range: expected in \[1, 10000\]"):
        audit_policy("constant:HOLD", scenario="v10", episodes=10**12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_steps": 0}, r"n_steps=0 is out of range: expected in \[2, 1000000\]"),
        ({"n_steps": 10**12}, r"n_steps=1000000000000 is out of range"),
        ({"batch_size": 1}, r"batch_size=1 is out of range: expected in \[2, 2048\].*one rollout of n_steps \(2048\)"),
        ({"n_steps": 128, "batch_size": 256}, r"batch_size=256 is out of range: expected in \[2, 128\]"),
        ({"learning_rate": 0.0}, r"learning_rate=0\.0 must be greater than 0\.0"),
        ({"learning_rate": float("nan")}, r"learning_rate=nan must be finite"),
    ],
)
def test_train_refuses_rollout_settings_stable_baselines3_would_crash_on(kwargs: dict[str, float], message: str) -> None:
    from tradeguard.rl import train

    with pytest.raises(InvalidConfig, match=message):
        train(algo="ppo", scenario="v10", steps=64, **kwargs)
