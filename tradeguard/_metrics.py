"""Episode metrics, every one recomputed from the trace alone (re-exported by :mod:`tradeguard.trace`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradeguard.trace import Number, StepRecord, Trace

__all__ = ["METRIC_ALIASES", "EpisodeMetrics", "action_entropy", "compute_metrics", "metric_names"]

METRIC_ALIASES = {
    "action_distribution": "action_distribution_executed",
    "action_entropy": "action_entropy_executed",
}
"""Names an env's evaluator may report for an :class:`EpisodeMetrics` field: one unqualified
distribution or entropy (the seed's evaluator reported "action_distribution") claims what the
agent *did*: the executed one."""


def metric_names() -> tuple[str, ...]:
    """Every metric name an env may report: the :class:`EpisodeMetrics` fields and :data:`METRIC_ALIASES`."""
    return (*(f.name for f in fields(EpisodeMetrics)), *METRIC_ALIASES)


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeMetrics:
    """Episode metrics, every one recomputable from the trace.

    Attributes:
        steps: Number of steps.
        episode_reward: Sum of the rewards.
        total_return: Final equity over initial equity, minus one.
        sharpe: Mean over standard deviation of per-step equity returns (not annualized;
            0.0 when the standard deviation is 0).
        trades: Steps on which a trade executed (a quantity != 0, in any instrument).
        round_trips: Positions opened from flat and closed back to flat (long or short;
            with several instruments, from all flat back to all flat).
        win_rate: Share of round trips that ended with more equity than they started with
            (0.0 when there were none).
        rejections: Steps whose predicted action was rejected.
        rejection_rate: ``rejections / steps``.
        action_distribution_predicted: Share of steps on which each action was predicted.
        action_distribution_executed: Share of steps on which each action executed.
        action_entropy_predicted: Entropy in nats of the predicted distribution.
        action_entropy_executed: Entropy in nats of the executed distribution.
        reward_components: Episode total of each reward component.
    """

    steps: int
    episode_reward: float
    total_return: float
    sharpe: float
    trades: int
    round_trips: int
    win_rate: float
    rejections: int
    rejection_rate: float
    action_distribution_predicted: Mapping[str, float]
    action_distribution_executed: Mapping[str, float]
    action_entropy_predicted: float
    action_entropy_executed: float
    reward_components: Mapping[str, float]

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict of every metric."""
        return {name: _plain(getattr(self, name)) for name in self.__slots__}


def _plain(value: object) -> object:
    return dict(value) if isinstance(value, Mapping) else value


def _distribution(actions: Sequence[int], names: Sequence[str]) -> dict[str, float]:
    counts = [0] * len(names)
    for a in actions:
        counts[a] += 1
    n = len(actions)
    return {name: (counts[i] / n if n else 0.0) for i, name in enumerate(names)}


def action_entropy(distribution: Mapping[str, float]) -> float:
    """Entropy in nats of an action distribution (each action's share of the steps).

    The one formula behind every ``action_entropy_*`` field: :class:`EpisodeMetrics`, the
    policy audit's per-family reports and the training callback's windows.

    Example:
        >>> round(action_entropy({"HOLD": 0.5, "BUY": 0.5, "SELL": 0.0}), 6)
        0.693147
    """
    return -math.fsum(p * math.log(p) for p in distribution.values() if p > 0.0) + 0.0


def _traded(r: StepRecord) -> bool:
    if r.legs is None:
        return r.quantity != 0
    return any(leg.quantity != 0 for leg in r.legs)


def _flat(r: StepRecord) -> tuple[bool, bool]:
    """Whether the account held nothing before and after the step (every instrument flat)."""
    if r.legs is None:
        return r.position_before == 0, r.position_after == 0
    return (all(leg.position_before == 0 for leg in r.legs), all(leg.position_after == 0 for leg in r.legs))


def compute_metrics(trace: Trace) -> EpisodeMetrics:
    """Compute every :class:`EpisodeMetrics` field from ``trace`` alone.

    The action distributions are computed twice, from what the agent *predicted*
    and from what the env *executed*: reporting only the first is how the seed's
    evaluator showed "100% SELL_PARTIAL" for an agent that never traded.

    Example:
        >>> from tradeguard.env import TradingEnv, Action
        >>> env = TradingEnv()
        >>> _ = env.reset(seed=0)
        >>> _ = env.step(Action.SELL_PARTIAL)
        >>> m = compute_metrics(env.trace)
        >>> m.action_distribution_predicted["SELL_PARTIAL"], m.action_distribution_executed["HOLD"]
        (1.0, 1.0)
    """
    records = trace.records
    meta = trace.meta
    n = len(records)
    names = meta.action_names
    predicted = _distribution([r.predicted for r in records], names)
    executed = _distribution([r.executed for r in records], names)
    rejections = sum(1 for r in records if r.rejected)
    trades = sum(1 for r in records if _traded(r))

    initial = records[0].equity_before if records else meta.initial_cash
    final = records[-1].equity_after if records else meta.initial_cash
    total_return = final / initial - 1.0 if initial > 0 else 0.0

    step_returns = [
        r.equity_after / r.equity_before - 1.0 for r in records if r.equity_before > 0
    ]
    sharpe = 0.0
    if len(step_returns) >= 2:
        mean = math.fsum(step_returns) / len(step_returns)
        var = math.fsum((x - mean) ** 2 for x in step_returns) / (len(step_returns) - 1)
        std = math.sqrt(var)
        sharpe = mean / std if std > 0.0 else 0.0

    round_trips = wins = 0
    opened_at: Number | None = None
    for r in records:
        flat_before, flat_after = _flat(r)
        if flat_before and not flat_after:
            opened_at = r.equity_before
        elif not flat_before and flat_after and opened_at is not None:
            round_trips += 1
            wins += r.equity_after > opened_at
            opened_at = None

    return EpisodeMetrics(
        steps=n,
        episode_reward=math.fsum(r.reward for r in records),
        total_return=total_return,
        sharpe=sharpe,
        trades=trades,
        round_trips=round_trips,
        win_rate=wins / round_trips if round_trips else 0.0,
        rejections=rejections,
        rejection_rate=rejections / n if n else 0.0,
        action_distribution_predicted=predicted,
        action_distribution_executed=executed,
        action_entropy_predicted=action_entropy(predicted),
        action_entropy_executed=action_entropy(executed),
        reward_components=trace.component_totals(),
    )
