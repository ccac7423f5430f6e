"""Metrics come from the trace alone: hand-built traces give hand-computed numbers."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from tradeguard.env import (
    ACTION_NAMES,
    COMPONENT_NAMES,
    Action,
    ConstantPolicy,
    MaskedRandomPolicy,
    TradingEnv,
    run_episode,
)
from tradeguard.trace import StepRecord, Trace, TraceMeta, compute_metrics

META = TraceMeta(
    env_id="hand-built",
    action_names=ACTION_NAMES,
    action_kinds=("hold", "open", "open", "open", "reduce", "close", "add"),
    component_names=("pnl", "penalty"),
    penalty_component="penalty",
    failed_action_penalty=-1.0,
    initial_cash=1_000,
)


def record(t: int, **fields: Any) -> StepRecord:
    """A StepRecord with neutral defaults for every field not given (flat, HOLD, equity 1_000)."""
    defaults: dict[str, Any] = {
        "t": t,
        "price": 100,
        "next_price": 100,
        "predicted": 0,
        "executed": 0,
        "rejected": False,
        "reason": None,
        "position_before": 0,
        "position_after": 0,
        "cash_before": 1_000,
        "cash_after": 1_000,
        "equity_before": 1_000,
        "equity_after": 1_000,
        "quantity": 0,
        "fee": 0,
        "reward": 0.0,
        "components": (0.0, 0.0),
        "mask": None,
        "cost_basis_before": 0,
    }
    defaults.update(fields)
    return StepRecord(**{name: defaults[name] for name in StepRecord._fields if name in defaults})


def trace(*records: StepRecord) -> Trace:
    return Trace(tuple(records), META)


def rejected(t: int, predicted: int) -> StepRecord:
    return record(
        t,
        predicted=predicted,
        rejected=True,
        reason="NO_POSITION",
        reward=-1.0,
        components=(0.0, -1.0),
    )


def test_predicted_and_executed_distributions_are_counted_separately() -> None:
    m = compute_metrics(trace(rejected(0, 4), rejected(1, 4), rejected(2, 4), record(3)))
    assert m.action_distribution_predicted == {
        "HOLD": 0.25, "BUY_SMALL": 0.0, "BUY_MEDIUM": 0.0, "BUY_LARGE": 0.0,
        "SELL_PARTIAL": 0.75, "SELL_ALL": 0.0, "ADD_POSITION": 0.0,
    }  # fmt: skip
    assert m.action_distribution_executed["HOLD"] == 1.0
    assert math.fsum(m.action_distribution_executed.values()) == 1.0
    assert (m.rejections, m.rejection_rate, m.trades) == (3, 0.75, 0)
    assert m.episode_reward == -3.0
    assert m.reward_components == {"pnl": 0.0, "penalty": -3.0}


def test_entropy_in_nats() -> None:
    two = compute_metrics(trace(record(0, predicted=1, executed=1, quantity=1), rejected(1, 5)))
    assert two.action_entropy_predicted == pytest.approx(math.log(2), rel=1e-12)
    assert two.action_entropy_executed == pytest.approx(math.log(2), rel=1e-12)
    uniform = compute_metrics(trace(*(rejected(i, i) for i in range(7))))
    assert uniform.action_entropy_predicted == pytest.approx(math.log(7), rel=1e-12)
    assert uniform.action_entropy_executed == 0.0
    one = compute_metrics(trace(rejected(0, 4), rejected(1, 4)))
    # The seed's report showed "-0.0"; a single action has entropy exactly +0.0.
    assert one.action_entropy_predicted == 0.0
    assert math.copysign(1.0, one.action_entropy_predicted) == 1.0


def _round_trips() -> Trace:
    # equity:   1_000 -> open ... close at 1_100 (win) -> open at 1_100 ... close at 1_050 (loss)
    #           -> partial sell (not a close) -> open and still open at the end.
    return trace(
        record(0, predicted=1, executed=1, position_after=10, quantity=10, equity_after=1_020),
        record(1, position_before=10, position_after=10, equity_before=1_020, equity_after=1_100),
        record(2, predicted=5, executed=5, position_before=10, quantity=-10, equity_before=1_100, equity_after=1_100),
        record(3, predicted=2, executed=2, position_after=4, quantity=4, equity_before=1_100, equity_after=1_080),
        record(4, predicted=4, executed=4, position_before=4, position_after=2, quantity=-2, equity_before=1_080, equity_after=1_060),
        record(5, predicted=5, executed=5, position_before=2, quantity=-2, equity_before=1_060, equity_after=1_050),
        rejected(6, 5)._replace(equity_before=1_050, equity_after=1_050),
        record(7, predicted=3, executed=3, position_after=1, quantity=1, equity_before=1_050, equity_after=1_050),
    )  # fmt: skip


def test_round_trips_win_rate_and_trades_by_hand() -> None:
    m = compute_metrics(_round_trips())
    assert m.round_trips == 2  # the last position is still open
    assert m.win_rate == 0.5  # 1_000 -> 1_100 won, 1_100 -> 1_050 lost
    assert m.trades == 6  # steps 0, 2, 3, 4, 5, 7 traded
    assert m.rejections == 1
    assert m.total_return == pytest.approx(0.05, rel=1e-12)
    assert m.steps == 8


def test_sharpe_is_mean_over_sample_std_of_step_returns() -> None:
    # equity 1_000 -> 1_100 -> 990 -> 1_089: returns +10%, -10%, +10%.
    # mean 1/30, sample variance ((2/30)^2 * 2 + (4/30)^2) / 2 = 12/900 -> sharpe 1/sqrt(12).
    m = compute_metrics(
        trace(
            record(0, equity_before=1_000, equity_after=1_100),
            record(1, equity_before=1_100, equity_after=990),
            record(2, equity_before=990, equity_after=1_089),
        )
    )
    assert m.sharpe == pytest.approx(1 / math.sqrt(12), rel=1e-9)
    assert m.total_return == pytest.approx(0.089, rel=1e-12)
    flat = compute_metrics(trace(record(0), record(1), record(2)))
    assert flat.sharpe == 0.0 and flat.total_return == 0.0
    assert compute_metrics(trace(record(0, equity_after=2_000))).sharpe == 0.0  # one return: no std


def test_empty_trace_has_zero_metrics() -> None:
    m = compute_metrics(trace())
    assert (m.steps, m.trades, m.rejection_rate, m.win_rate, m.sharpe, m.total_return) == (
        0,
        0,
        0.0,
        0.0,
        0.0,
        0.0,
    )
    assert set(m.action_distribution_predicted.values()) == {0.0}


def test_metrics_are_json_ready_and_the_trace_method_agrees() -> None:
    t = _round_trips()
    d = compute_metrics(t).as_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["action_distribution_executed"] == dict(t.metrics().action_distribution_executed)
    assert set(d) >= {
        "episode_reward", "trades", "rejection_rate", "action_distribution_predicted",
        "action_distribution_executed", "reward_components", "sharpe", "win_rate",
        "total_return", "action_entropy_predicted", "action_entropy_executed",
    }  # fmt: skip


def test_seed_example_constant_sell_partial_on_v10() -> None:
    t = run_episode(TradingEnv(scenario="v10"), ConstantPolicy(int(Action.SELL_PARTIAL)), seed=0)
    m = t.metrics()
    assert m.steps == 500
    assert m.action_distribution_predicted["SELL_PARTIAL"] == 1.0
    assert m.action_distribution_executed["HOLD"] == 1.0
    assert (m.trades, m.round_trips, m.rejections, m.rejection_rate) == (0, 0, 500, 1.0)
    assert m.action_entropy_predicted == 0.0 and m.action_entropy_executed == 0.0
    assert m.reward_components["failed_action_penalty"] == pytest.approx(-25.0, abs=1e-9)
    assert m.episode_reward == pytest.approx(-25.0, abs=1e-9)
    assert m.total_return == 0.0
    assert t.meta.component_names == COMPONENT_NAMES and t.meta.failed_action_penalty == -0.05


def test_distributions_of_a_real_episode_sum_to_one_and_match_the_records() -> None:
    t = run_episode(TradingEnv(scenario="default"), MaskedRandomPolicy(), seed=4, max_steps=200)
    m = t.metrics()
    for dist, field in (
        (m.action_distribution_predicted, "predicted"),
        (m.action_distribution_executed, "executed"),
    ):
        assert list(dist) == list(ACTION_NAMES)
        assert math.isclose(math.fsum(dist.values()), 1.0, rel_tol=1e-12)
        for a, name in enumerate(ACTION_NAMES):
            assert dist[name] == sum(getattr(r, field) == a for r in t) / len(t)
    assert m.rejections == 0  # a masked policy is never rejected
    assert m.trades == sum(r.quantity != 0 for r in t) > 0
    assert m.episode_reward == pytest.approx(math.fsum(r.reward for r in t), abs=1e-12)
    totals = t.component_totals()
    assert list(totals) == list(COMPONENT_NAMES)
    assert math.isclose(math.fsum(totals.values()), m.episode_reward, rel_tol=1e-9, abs_tol=1e-9)


def _family_report() -> type:
    from tradeguard.invariants.audit import FamilyReport

    return FamilyReport


def _window_stats() -> type:
    from tradeguard.rl import WindowStats

    return WindowStats


@pytest.mark.parametrize(
    "record_of",
    [
        pytest.param(_family_report, id="FamilyReport"),
        pytest.param(_window_stats, id="WindowStats", marks=pytest.mark.requires_rl),
    ],
)
def test_every_metrics_record_speaks_the_trace_metrics_names(record_of: Callable[[], type]) -> None:
    """EpisodeMetrics is the canonical record: the policy audit's per-family report and the
    training callback's window (which needs the rl extra) use its field names."""
    import dataclasses
    import re

    from tradeguard.trace import EpisodeMetrics

    record = record_of()
    canonical = {f.name for f in dataclasses.fields(EpisodeMetrics)}
    metric_like = {
        f.name for f in dataclasses.fields(record)
        if re.search(r"entropy|distribution|predicted|executed|rejection|trades", f.name)
    }
    assert metric_like - canonical <= {"action_distribution_env_predicted"}, record
    assert {"action_distribution_predicted", "action_distribution_executed", "action_entropy_executed"} <= metric_like


def test_the_entropy_formula_is_written_once() -> None:
    import re
    from pathlib import Path

    from tradeguard.trace import action_entropy

    root = Path(__file__).resolve().parent.parent
    written = [
        str(path.relative_to(root))
        for folder in ("env", "invariants", "strategies", "tradeguard")
        for path in (root / folder).rglob("*.py")
        if re.search(r"\bp \* math\.log\(p\)", path.read_text())
    ]
    assert written == ["tradeguard/_metrics.py"]  # re-exported by tradeguard.trace
    assert action_entropy({"A": 0.25, "B": 0.25, "C": 0.5}) == pytest.approx(1.0397207708399179, rel=1e-15)
    assert action_entropy({"A": 1.0, "B": 0.0}) == 0.0 and str(action_entropy({"A": 1.0})) == "0.0"
