"""The trace: the one language between an env and the invariants.

An env (ours, or another one through an adapter) writes one :class:`StepRecord`
per step; a :class:`Trace` is an episode of them plus a :class:`TraceMeta` header
that says what the actions mean. Invariants and metrics read traces only, never
env internals, which is what makes them pluggable into any trading env.

Money is integer: prices and cash in *minor units* (cents by default), positions
in *units* (shares). ``equity = cash + position * price`` holds exactly.

Timing of step ``t``: the action executes at ``price`` (the market's price at
``t``); the portfolio is then marked to ``next_price`` (the price at ``t + 1``).
So ``equity_before = cash_before + position_before * price`` and
``equity_after = cash_after + position_after * next_price``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, overload

__all__ = [
    "ACTION_KINDS",
    "ActionKind",
    "EpisodeMetrics",
    "StepRecord",
    "Trace",
    "TraceMeta",
    "action_entropy",
    "compute_metrics",
    "total_reward",
]

ActionKind = Literal["hold", "open", "reduce", "close", "add"]
"""What an action does to a long position: nothing, open from flat, sell part, sell all, add."""

ACTION_KINDS: tuple[ActionKind, ...] = ("hold", "open", "reduce", "close", "add")


class StepRecord(NamedTuple):
    """What happened at one step, as a ledger line.

    Money fields are integers in minor units, positions in units. ``reason`` is
    the rejection reason (for example ``"NO_POSITION"``) or ``None`` when the
    predicted action executed. ``components`` are the reward components in the
    order of :attr:`TraceMeta.component_names`; ``reward`` is what the env
    returned (tradeguard's envs return :func:`total_reward` of the components).
    ``mask`` is the action mask the agent saw before acting, or ``None`` when the
    env has none. ``cost_basis_before`` is what the open position
    cost (fees excluded) before the step: ``position * price - cost_basis`` is the
    unrealized PnL, and ADD_POSITION's "profitable" means it is positive.
    """

    t: int
    price: int
    next_price: int
    predicted: int
    executed: int
    rejected: bool
    reason: str | None
    position_before: int
    position_after: int
    cash_before: int
    cash_after: int
    equity_before: int
    equity_after: int
    quantity: int
    fee: int
    reward: float
    components: tuple[float, ...]
    mask: tuple[bool, ...] | None
    cost_basis_before: int


def total_reward(components: Iterable[float]) -> float:
    """The reward of a step: its components added left to right, starting from 0.0.

    The definition tradeguard's envs pay (the scalar env, and the batch engine column
    by column) and that the invariant ``reward-is-sum-of-components`` accepts bit for
    bit (an env that adds its components another way passes within the catalog's
    tolerance of their exact sum). Spelled out as float additions because builtin
    ``sum()`` of floats compensates (Neumaier) from CPython 3.12 on: the same
    components would give other reward bits on 3.11 than on 3.12. ``math.fsum`` is
    the same everywhere, but exact summation has no elementwise numpy form for the
    batch engine to reproduce bit for bit; a left-to-right sum is one ``+`` per
    component, in every interpreter and in numpy alike.

    Args:
        components: The reward components, in the order of
            :attr:`TraceMeta.component_names`.

    Returns:
        ``((0.0 + c0) + c1) + ...`` as a float (``0.0`` for no components).

    Example:
        >>> total_reward((0.1, 0.2, 0.3))  # each + rounds; math.fsum would give 0.6
        0.6000000000000001
        >>> total_reward((1e20, 1.0, -1e20))  # sum() gives 1.0 from CPython 3.12 on
        0.0
    """
    total = 0.0
    for c in components:
        total += c
    return total


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceMeta:
    """What a trace's numbers mean: the header every invariant reads.

    Attributes:
        env_id: Name of the env that wrote the trace, for messages.
        action_names: Name of each action, indexed by action id.
        action_kinds: What each action does (see :data:`ActionKind`), indexed by action id.
        component_names: Names of the reward components, in record order.
        penalty_component: Name of the failed-action penalty component, or ``None``.
        failed_action_penalty: Reward added on each rejected step (negative = penalty).
        disabled_actions: Action ids the configuration disables.
        initial_cash: Cash at reset, in minor units.
        minor_unit: Value of one minor unit in currency (0.01 = cents), for display.
        pnl_scale: Reward units per minor unit of PnL.
        reward_is_pnl: True when the reward claims to equal ``pnl_scale`` times the equity change.
        seed: Seed passed to ``reset``, or ``None``.
        replay: Command-line arguments that rebuild this episode's env and market
            (``tradeguard run`` syntax), or ``None`` when it cannot be replayed.
        supplies: Record fields the producer really fills; the rest are placeholders
            and invariants that need them report "not applicable".
    """

    env_id: str
    action_names: tuple[str, ...]
    action_kinds: tuple[ActionKind, ...]
    component_names: tuple[str, ...] = ()
    penalty_component: str | None = None
    failed_action_penalty: float = 0.0
    disabled_actions: frozenset[int] = frozenset()
    initial_cash: int = 0
    minor_unit: float = 0.01
    pnl_scale: float = 1.0
    reward_is_pnl: bool = False
    seed: int | None = None
    replay: str | None = None
    supplies: frozenset[str] = field(default_factory=lambda: frozenset(StepRecord._fields))

    def __post_init__(self) -> None:
        # Cheap (a subset test and one pass over the kinds): TradingEnv builds one per reset.
        if not _RECORD_FIELDS.issuperset(self.supplies):
            _bad_supplies(self.supplies)
        kinds = self.action_kinds
        if not _KINDS.issuperset(kinds) or len(kinds) != len(self.action_names):
            _bad_kinds(self.env_id, self.action_names, kinds)

    def action_name(self, action: int) -> str:
        """Name of ``action``, or ``"<action 9>"`` for an id outside the table."""
        if 0 <= action < len(self.action_names):
            return self.action_names[action]
        return f"<action {action}>"

    def money(self, minor_units: int) -> str:
        """Format an amount of minor units as currency, ``12345 -> '123.45'``."""
        decimals = max(0, -math.floor(math.log10(self.minor_unit) + 1e-9))
        return f"{minor_units * self.minor_unit:,.{decimals}f}"


_RECORD_FIELDS: frozenset[str] = frozenset(StepRecord._fields)
_KINDS: frozenset[str] = frozenset(ACTION_KINDS)


def _bad_supplies(supplies: Iterable[object]) -> None:
    from tradeguard._validation import suggest
    from tradeguard.errors import InvalidConfig

    if isinstance(supplies, str):
        raise InvalidConfig(
            f"TraceMeta(supplies={supplies!r}) is a string; expected a frozenset of StepRecord field "
            f"names, e.g. frozenset({{'t', 'predicted', 'reward'}})."
        )
    unknown = sorted((s for s in supplies if s not in _RECORD_FIELDS), key=repr)
    hints = "".join(suggest(s, StepRecord._fields) if isinstance(s, str) else "" for s in unknown)
    raise InvalidConfig(
        f"TraceMeta(supplies=...) names {', '.join(repr(s) for s in unknown)}, which "
        f"{'is not a StepRecord field' if len(unknown) == 1 else 'are not StepRecord fields'}."
        f"{hints} The fields are {', '.join(StepRecord._fields)}. List in supplies the fields "
        "the adapter's records really fill."
    )


def _bad_kinds(env_id: str, names: Sequence[str], kinds: Sequence[object]) -> None:
    from tradeguard._validation import suggest
    from tradeguard.errors import InvalidConfig

    unknown = [k for k in kinds if k not in _KINDS]
    if unknown:
        k = unknown[0]
        raise InvalidConfig(
            f"TraceMeta(env_id={env_id!r}, action_kinds={tuple(kinds)!r}): {k!r} is not an action kind; "
            f"expected one of {', '.join(repr(a) for a in ACTION_KINDS)} for each action (what it does "
            f"to a long position: nothing, open from flat, sell part, sell all, add), e.g. a buy from "
            f"flat is 'open' and a sell of the whole position 'close'."
            f"{suggest(k, ACTION_KINDS) if isinstance(k, str) else ''}"
        )
    raise InvalidConfig(
        f"TraceMeta(env_id={env_id!r}) has {len(names)} action_names {tuple(names)!r} but "
        f"{len(kinds)} action_kinds {tuple(kinds)!r}; expected one kind per action name, both "
        "indexed by action id."
    )


@dataclass(frozen=True, slots=True)
class Trace(Sequence[StepRecord]):
    """An episode: its records, in step order, and the header that explains them."""

    records: tuple[StepRecord, ...]
    meta: TraceMeta

    def __len__(self) -> int:
        return len(self.records)

    @overload
    def __getitem__(self, index: int) -> StepRecord: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[StepRecord]: ...
    def __getitem__(self, index: int | slice) -> StepRecord | Sequence[StepRecord]:
        return self.records[index]

    def __iter__(self) -> Iterator[StepRecord]:
        return iter(self.records)

    def component_totals(self) -> dict[str, float]:
        """Episode total of each reward component, keyed by name (summed with ``math.fsum``)."""
        names = self.meta.component_names
        return {
            name: math.fsum(r.components[i] for r in self.records) for i, name in enumerate(names)
        }

    def metrics(self) -> EpisodeMetrics:
        """The episode's metrics, computed from the records alone."""
        return compute_metrics(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeMetrics:
    """Episode metrics, every one recomputable from the trace.

    Attributes:
        steps: Number of steps.
        episode_reward: Sum of the rewards.
        total_return: Final equity over initial equity, minus one.
        sharpe: Mean over standard deviation of per-step equity returns (not annualized;
            0.0 when the standard deviation is 0).
        trades: Steps on which a trade executed (quantity != 0).
        round_trips: Positions opened from flat and closed back to flat.
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
    trades = sum(1 for r in records if r.quantity != 0)

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
    opened_at: int | None = None
    for r in records:
        if r.position_before == 0 and r.position_after > 0:
            opened_at = r.equity_before
        elif r.position_before > 0 and r.position_after == 0 and opened_at is not None:
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
