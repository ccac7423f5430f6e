"""Replays: an action sequence on a short market, through the machine and the reward shaper.

A :class:`Rollout` is exactly what :class:`~tradeguard.env.TradingEnv` computes for the
same prices and actions, without the env around it. The oracle's answers, the reference
policies' runs and the reward audit's counterexamples are all rollouts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tradeguard.env import (
    COMPONENT_NAMES,
    Action,
    EnvConfig,
    Machine,
    Market,
    PortfolioState,
    RejectReason,
    RewardConfig,
    RewardShaper,
    ShaperState,
    initial_state,
    total_reward,
)
from tradeguard.errors import InvalidConfig

__all__ = ["Rollout", "as_prices", "rollout"]

_ACTIONS: tuple[Action, ...] = tuple(Action)


def as_prices(market: Market | Sequence[int] | Any, *, what: str = "market") -> tuple[int, ...]:
    """The prices of ``market`` as a tuple of ints (minor units), validated.

    Args:
        market: A :class:`~tradeguard.env.Market` or a sequence of integer prices in
            minor units (at least 2, each >= 1).
        what: Name used in error messages.

    Returns:
        The prices as plain Python ints.

    Raises:
        InvalidMarket: fewer than 2 prices, a price below 1, or non-integer prices.
    """
    if isinstance(market, Market):
        return tuple(int(p) for p in market.prices.tolist())
    arr = np.asarray(market)
    if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.rint(arr)):
        arr = arr.astype(np.int64)
    return tuple(int(p) for p in Market(arr, name=what).prices.tolist())


@dataclass(frozen=True, slots=True)
class Rollout:
    """One action sequence replayed on one market through the machine and the reward shaper.

    Exactly what :class:`~tradeguard.env.TradingEnv` computes for the same prices and
    actions: step ``t`` executes at ``prices[t]`` and marks to ``prices[t + 1]``.

    Attributes:
        prices: The market, in minor units (``horizon + 1`` prices).
        predicted: The action predicted at each step.
        executed: The action that executed (HOLD when rejected).
        reasons: Why each step's action was rejected, or ``None``.
        rewards: Each step's shaped reward (the sum of its components).
        components: Each step's reward components, in ``COMPONENT_NAMES`` order.
        states: The portfolio before each step, then the final one (``horizon + 1``).
        hists: The shaper's history before each step, then the final one.
        initial_cash: Starting cash of the account, in minor units.
        component_names: The names of ``components``' entries (custom components last).
    """

    prices: tuple[int, ...]
    predicted: tuple[Action, ...]
    executed: tuple[Action, ...]
    reasons: tuple[RejectReason | None, ...]
    rewards: tuple[float, ...]
    components: tuple[tuple[float, ...], ...]
    states: tuple[PortfolioState, ...]
    hists: tuple[ShaperState, ...]
    initial_cash: int
    component_names: tuple[str, ...] = COMPONENT_NAMES

    @property
    def horizon(self) -> int:
        """Number of steps."""
        return len(self.predicted)

    @property
    def shaped_return(self) -> float:
        """Sum of the shaped rewards (what the agent maximizes)."""
        return float(sum(self.rewards))

    @property
    def final_equity(self) -> int:
        """Cash plus position at the last price, in minor units."""
        s = self.states[-1]
        return s.cash + s.position * self.prices[-1]

    @property
    def pnl(self) -> int:
        """Final equity minus starting equity, in minor units (an open position counts at the last price)."""
        s0 = self.states[0]
        return self.final_equity - (s0.cash + s0.position * self.prices[0])

    @property
    def pnl_percent(self) -> float:
        """PnL in percent of starting cash (the unit of the reward's PnL components)."""
        return 100.0 * self.pnl / self.initial_cash

    @property
    def rejections(self) -> int:
        """Steps whose predicted action was rejected."""
        return sum(r is not None for r in self.reasons)

    @property
    def trades(self) -> int:
        """Steps that executed something other than HOLD."""
        return sum(a is not Action.HOLD for a in self.executed)

    @property
    def ends_in_position(self) -> bool:
        """True when a position is still open after the last step."""
        return self.states[-1].position > 0

    @property
    def opened(self) -> bool:
        """True when the sequence executed a buy from flat."""
        return any(a in _OPENS for a in self.executed)

    @property
    def closed(self) -> bool:
        """True when some sell brought the position to zero."""
        return any(
            a is not Action.HOLD and self.states[i].position > 0 and self.states[i + 1].position == 0
            for i, a in enumerate(self.executed)
        )

    def component_totals(self) -> dict[str, float]:
        """Each component summed over the steps."""
        return {
            name: float(sum(step[i] for step in self.components))
            for i, name in enumerate(self.component_names)
        }

    def labels(self) -> list[str]:
        """Each step as text: the action name, with ``(rejected: REASON)`` when it was rejected."""
        return [
            a.name if r is None else f"{a.name} (rejected: {r.value})"
            for a, r in zip(self.predicted, self.reasons, strict=True)
        ]

    def summary(self) -> dict[str, Any]:
        """Plain JSON values: actions by name, rejected flags, shaped return, PnL."""
        return {
            "actions": [a.name for a in self.predicted],
            "executed": [a.name for a in self.executed],
            "rejected": [r.value if r is not None else None for r in self.reasons],
            "rewards": [round(r, 10) for r in self.rewards],
            "shaped_return": round(self.shaped_return, 10),
            "pnl": self.pnl,
            "pnl_percent": round(self.pnl_percent, 10),
            "final_equity": self.final_equity,
        }


_OPENS = frozenset({Action.BUY_SMALL, Action.BUY_MEDIUM, Action.BUY_LARGE})


def rollout(
    prices: Market | Sequence[int],
    actions: Sequence[Action | int],
    *,
    env: EnvConfig | None = None,
    reward: RewardConfig | None = None,
) -> Rollout:
    """Replay ``actions`` on ``prices`` through the machine and the reward shaper.

    Args:
        prices: The market (``len(actions) + 1`` prices in minor units, or a longer
            market: only the first ``len(actions) + 1`` prices are used).
        actions: One predicted action per step (members of :class:`Action` or ids).
        env: The machine's configuration (default :class:`EnvConfig`).
        reward: The reward shaper's weights (default :class:`RewardConfig`).

    Returns:
        The :class:`Rollout`: rewards, components, states and rejections of every step.

    Raises:
        InvalidConfig: fewer prices than ``len(actions) + 1``, or an action that is not one.

    Example:
        >>> r = rollout([10_000, 10_100, 10_200], [Action.BUY_LARGE, Action.SELL_ALL])
        >>> r.executed[1].name, r.pnl
        ('SELL_ALL', 3915)
    """
    env = env or EnvConfig()
    reward = reward or RewardConfig()
    p = as_prices(prices)
    acts = tuple(_as_action(a) for a in actions)
    if len(p) < len(acts) + 1:
        raise InvalidConfig(
            f"{len(acts)} actions need {len(acts) + 1} prices (step t executes at prices[t] and "
            f"marks to prices[t+1]); got {len(p)}."
        )
    return _replay(Machine(env), RewardShaper(reward, env.cash), p, acts)


def _as_action(a: Action | int) -> Action:
    if isinstance(a, Action):
        return a
    if isinstance(a, (int, np.integer)) and not isinstance(a, bool) and 0 <= int(a) < len(_ACTIONS):
        return _ACTIONS[int(a)]
    raise InvalidConfig(f"action={a!r} is not an action; expected an Action or an id 0..{len(_ACTIONS) - 1}.")


def _replay(
    machine: Machine, shaper: RewardShaper, prices: tuple[int, ...], actions: tuple[Action, ...]
) -> Rollout:
    """``actions`` played from the start of ``prices``."""
    return _play(machine, shaper, prices, len(actions), lambda t, mask: actions[t])


def _play(
    machine: Machine,
    shaper: RewardShaper,
    prices: tuple[int, ...],
    steps: int,
    choose: Callable[[int, tuple[bool, ...]], Action],
) -> Rollout:
    """The state machine's episode loop: ``choose(t, mask)`` picks each step's action.

    What :func:`tradeguard._episode.play_episode` is for an env, on the bare machine and
    reward shaper, without observations: the oracle's replays and the reference policies
    (:func:`~tradeguard.invariants.audit.play_reference`) play here.
    """
    state = initial_state(machine.config)
    hist = shaper.initial()
    states, hists = [state], [hist]
    predicted: list[Action] = []
    executed: list[Action] = []
    reasons: list[RejectReason | None] = []
    rewards: list[float] = []
    comps: list[tuple[float, ...]] = []
    for t in range(steps):
        price, next_price = prices[t], prices[t + 1]
        verdicts, mask = machine.verdicts(state, price)
        a = choose(t, mask)
        after, outcome = machine.apply(state, a, price, verdicts[a])
        c, hist = shaper.shape(hist, a, outcome, state, after, price, next_price)
        predicted.append(a)
        executed.append(outcome.executed)
        reasons.append(outcome.reason)
        rewards.append(total_reward(c))
        comps.append(c)
        state = after
        states.append(state)
        hists.append(hist)
    return Rollout(
        prices=prices[: steps + 1],
        predicted=tuple(predicted),
        executed=tuple(executed),
        reasons=tuple(reasons),
        rewards=tuple(rewards),
        components=tuple(comps),
        states=tuple(states),
        hists=tuple(hists),
        initial_cash=machine.config.cash,
        component_names=shaper.component_names,
    )
