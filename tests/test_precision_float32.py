"""Precision.float32: the tolerance of an env whose arithmetic runs in float32.

gym-anytrading keeps its prices in a float32 array, and under NumPy 2 (NEP 50) a Python
float times an ``np.float32`` stays float32: its profit is computed in float32. A float64
tolerance flags that healthy arithmetic; the float32 one accepts it and still catches an
error of a few float32 ulps beyond it.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from tradeguard.errors import InvalidConfig
from tradeguard.invariants import check_trace
from tradeguard.trace import EXACT, Precision, Trace, TraceMeta


def test_float32_arithmetic_is_within_float32_precision_and_not_float64() -> None:
    price = np.float32(123.45)
    shares = (1.0 * (1 - 0.005)) / price  # gym-anytrading's StocksEnv, numpy 2
    assert isinstance(shares, np.float32)
    spent = float(shares) * float(price)  # the ledger's notional, in float64
    off = abs(spent - 0.995)
    assert off > Precision.float64().tolerance(spent, 0.995)  # float64 would call it an error
    assert off <= Precision.float32().tolerance(spent, 0.995)


def test_float32_tolerance_is_ulps_of_float32_and_still_catches_a_real_error() -> None:
    p = Precision.float32()
    assert p.tolerance(1.0) == 4 * 2.0**-23
    assert p.tolerance(1024.0, 1.0) == 4 * 2 * 2.0**-13
    # Never 0 for a float ledger, and never below the smallest normal float of the width:
    # under it there is no relative precision, and an amount made from a subnormal (the gate's
    # weight one step inside a bound, 5e-324) differs by the order of operations.
    assert p.tolerance(0.0) == 2.0**-126
    assert Precision.float64().tolerance(0.0) == Precision.float64().tolerance(5e-324) == sys.float_info.min
    assert Precision.float64().tolerance(1.0) == 4 * 2.0**-52  # a normal term keeps its ulps
    assert math.isnan(p.tolerance(math.inf))
    assert p.tolerance(1.0, 1.0, 1.0, rounded=0) < 1e-3  # a 0.1% fee on a unit account is far beyond it
    assert p.describe() == "float32" and Precision.float32(money_step=0.01).describe() == "float32, money rounded to 0.01"
    assert Precision.float64().describe() == "float64" and Precision.float64().bits == 64


@pytest.mark.parametrize("bits", [16, 128, True, "32"])
def test_only_float32_and_float64_are_widths(bits: object) -> None:
    with pytest.raises(InvalidConfig, match=r"Precision\(bits=.*\); expected 64 \(float64 arithmetic\) or 32 \(float32\)\."):
        Precision(exact=False, bits=bits)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- metrics-match-trace
def _float_trace(rewards: list[float], precision: Precision) -> Trace:
    from tradeguard.invariants._adapter import partial_record

    meta = TraceMeta(env_id="float32 env", action_names=("HOLD",), action_kinds=("hold",),
                     supplies=frozenset({"t", "predicted", "reward"}), precision=precision)
    return Trace(tuple(partial_record(t=t, predicted=0, executed=0, reward=r) for t, r in enumerate(rewards)), meta)


def test_a_float32_running_total_of_rewards_matches_the_trace_within_float32() -> None:
    rewards = [float(np.float32(x)) for x in (2048.5, -0.0123, 151.7, -4400.25, 0.0007, 3.3)]
    total = 0.0
    for r in rewards:
        total += np.float32(r)  # the env's running total: float32 after the first addition
    assert float(total) != math.fsum(rewards)  # it drifted
    reported = {"episode_reward": float(total)}
    assert check_trace(_float_trace(rewards, Precision.float32()), only=["metrics-match-trace"], reported=reported) == []
    # The same drift claimed by a float64 env, or an exact one, is a discrepancy.
    for precision in (Precision.float64(), EXACT):
        (v,) = check_trace(_float_trace(rewards, precision), only=["metrics-match-trace"], reported=reported)
        assert v.message.startswith("episode_reward reported ")


def test_a_float32_running_total_that_lost_a_reward_is_still_caught() -> None:
    rewards = [float(np.float32(x)) for x in (2048.5, -0.0123, 151.7, -4400.25, 0.5, 3.3)]
    lost = math.fsum(rewards) - 0.5  # the step paying 0.5 never reached the total
    (v,) = check_trace(_float_trace(rewards, Precision.float32()), only=["metrics-match-trace"],
                       reported={"episode_reward": lost})
    assert v.message == f"episode_reward reported {lost!r}; the trace gives {math.fsum(rewards)!r}"
