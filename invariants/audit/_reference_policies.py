"""Reference policies the reward audit compares the optimum with, played on the same market.

Each is a simple, named behaviour a degenerate learner collapses to (the seed's
collapses: 100% BUY_SMALL, 100% ADD_POSITION, 100% SELL_PARTIAL) or explores
with (uniform random, epsilon-random around HOLD). They see the portfolio and
the action mask, play one market through the machine and the reward shaper, and
return a :class:`~tradeguard.invariants.audit._oracle.Rollout`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from tradeguard._validation import check_number, suggest
from tradeguard.env import (
    Action,
    EnvConfig,
    Machine,
    Market,
    PortfolioState,
    RewardConfig,
    RewardShaper,
)
from tradeguard.errors import InvalidConfig
from tradeguard.invariants.audit._rollout import Rollout, _replay, as_prices

__all__ = [
    "AlwaysHold",
    "BuyAndNeverSell",
    "EpsilonHold",
    "ReferencePolicy",
    "Spam",
    "UniformRandom",
    "parse_reference",
    "play_reference",
    "play_references",
    "reference_policies",
]


@runtime_checkable
class ReferencePolicy(Protocol):
    """Picks an action from the step, the portfolio and the action mask."""

    @property
    def name(self) -> str:
        """Short name for reports (``"spam:SELL_PARTIAL"``)."""
        ...

    def act(
        self, t: int, state: PortfolioState, mask: tuple[bool, ...], rng: np.random.Generator
    ) -> Action:
        """The action to predict at step ``t``."""
        ...


@dataclass(frozen=True, slots=True)
class AlwaysHold:
    """HOLD on every step: the baseline every reward must make beatable."""

    name: str = "hold"

    def act(self, t: int, state: PortfolioState, mask: tuple[bool, ...], rng: np.random.Generator) -> Action:
        return Action.HOLD


@dataclass(frozen=True, slots=True)
class Spam:
    """The same action on every step, valid or not (the seed's 100% SELL_PARTIAL)."""

    action: Action

    @property
    def name(self) -> str:
        return f"spam:{self.action.name}"

    def act(self, t: int, state: PortfolioState, mask: tuple[bool, ...], rng: np.random.Generator) -> Action:
        return self.action


@dataclass(frozen=True, slots=True)
class BuyAndNeverSell:
    """Open with ``buy`` as soon as it is valid, then HOLD to the end: never sells.

    With ``add=True`` it also adds whenever ADD_POSITION is valid (the seed's V6-V9
    ADD_POSITION collapse).
    """

    buy: Action = Action.BUY_LARGE
    add: bool = False

    @property
    def name(self) -> str:
        return f"buy-and-never-sell:{self.buy.name}" + ("+ADD" if self.add else "")

    def act(self, t: int, state: PortfolioState, mask: tuple[bool, ...], rng: np.random.Generator) -> Action:
        if state.position == 0:
            return self.buy if mask[self.buy] else Action.HOLD
        if self.add and mask[Action.ADD_POSITION]:
            return Action.ADD_POSITION
        return Action.HOLD


@dataclass(frozen=True, slots=True)
class UniformRandom:
    """Uniform over all seven actions, ignoring the mask: what epsilon-greedy explores with."""

    name: str = "random"

    def act(self, t: int, state: PortfolioState, mask: tuple[bool, ...], rng: np.random.Generator) -> Action:
        return Action(int(rng.integers(len(Action))))


@dataclass(frozen=True, slots=True)
class EpsilonHold:
    """HOLD, except with probability ``epsilon`` a uniformly random action (mask ignored)."""

    epsilon: float = 0.5

    def __post_init__(self) -> None:
        check_number("epsilon", self.epsilon, min_value=0.0, max_value=1.0)

    @property
    def name(self) -> str:
        return f"epsilon-hold:{self.epsilon:g}"

    def act(self, t: int, state: PortfolioState, mask: tuple[bool, ...], rng: np.random.Generator) -> Action:
        if rng.random() < self.epsilon:
            return Action(int(rng.integers(len(Action))))
        return Action.HOLD


def reference_policies(env: EnvConfig | None = None) -> tuple[ReferencePolicy, ...]:
    """The standard set: HOLD, spam of every other action, buy-and-never-sell per size, random.

    Args:
        env: The machine's configuration; disabled buy sizes are left out of the
            buy-and-never-sell variants (they would only spam a rejected action).

    Returns:
        The policies, in a fixed order.

    Example:
        >>> [p.name for p in reference_policies()][:3]
        ['hold', 'spam:BUY_SMALL', 'spam:BUY_MEDIUM']
    """
    env = env or EnvConfig()
    disabled = set(env.disabled_actions)
    out: list[ReferencePolicy] = [AlwaysHold()]
    out += [Spam(a) for a in Action if a is not Action.HOLD]
    for buy in (Action.BUY_SMALL, Action.BUY_MEDIUM, Action.BUY_LARGE):
        if buy not in disabled:
            out.append(BuyAndNeverSell(buy))
            if Action.ADD_POSITION not in disabled:
                out.append(BuyAndNeverSell(buy, add=True))
    out += [UniformRandom(), EpsilonHold(0.5), EpsilonHold(0.1)]
    return tuple(out)


def play_reference(
    policy: ReferencePolicy,
    prices: Market | Sequence[int],
    *,
    env: EnvConfig | None = None,
    reward: RewardConfig | None = None,
    seed: int = 0,
) -> Rollout:
    """Play ``policy`` over the whole market (``len(prices) - 1`` steps).

    Args:
        policy: A :class:`ReferencePolicy`.
        prices: The market, in minor units.
        env: The machine's configuration (default :class:`EnvConfig`).
        reward: The reward shaper's weights (default :class:`RewardConfig`).
        seed: Seed of the policy's random numbers (random policies only).

    Returns:
        The :class:`Rollout` of the actions the policy predicted.

    Example:
        >>> r = play_reference(Spam(Action.SELL_PARTIAL), [10_000, 9_900, 9_800],
        ...          reward=RewardConfig(failed_action_penalty=-0.05))
        >>> r.rejections, round(r.shaped_return, 2)
        (2, -0.1)
    """
    env = env or EnvConfig()
    reward = reward or RewardConfig()
    return _play(policy, as_prices(prices), Machine(env), RewardShaper(reward, env.cash), seed)


def _play(
    policy: ReferencePolicy,
    prices: tuple[int, ...],
    machine: Machine,
    shaper: RewardShaper,
    seed: int,
) -> Rollout:
    rng = np.random.default_rng([seed, 0x5EED])
    state = PortfolioState(machine.config.cash, 0, 0)
    actions: list[Action] = []
    for t in range(len(prices) - 1):
        mask = machine.verdicts(state, prices[t])[1]
        a = policy.act(t, state, mask, rng)
        actions.append(a)
        state = machine.step(state, a, prices[t])[0]
    return _replay(machine, shaper, prices, tuple(actions))


def play_references(
    prices: Market | Sequence[int],
    *,
    env: EnvConfig | None = None,
    reward: RewardConfig | None = None,
    policies: Sequence[ReferencePolicy] | None = None,
    seed: int = 0,
) -> dict[str, Rollout]:
    """Play every reference policy on the same market.

    Args:
        prices: The market, in minor units.
        env: The machine's configuration.
        reward: The reward shaper's weights.
        policies: The policies (default :func:`reference_policies`).
        seed: Seed of the random policies.

    Returns:
        ``{policy name: Rollout}``, in the policies' order.

    Raises:
        InvalidConfig: two policies share a name.
    """
    env = env or EnvConfig()
    reward = reward or RewardConfig()
    pols = tuple(policies) if policies is not None else reference_policies(env)
    machine, shaper = Machine(env), RewardShaper(reward, env.cash)
    p = as_prices(prices)
    out: dict[str, Rollout] = {}
    for pol in pols:
        if pol.name in out:
            raise InvalidConfig(f"two reference policies are named {pol.name!r}; names must be unique.")
        out[pol.name] = _play(pol, p, machine, shaper, seed)
    return out


def parse_reference(name: str) -> ReferencePolicy:
    """A reference policy from its name, as :attr:`ReferencePolicy.name` prints it.

    Raises:
        InvalidConfig: an unknown name (with the closest known one).
    """
    known = {p.name: p for p in reference_policies()}
    if name in known:
        return known[name]
    raise InvalidConfig(
        f"reference policy {name!r} is unknown; expected one of {', '.join(known)}.{suggest(name, known)}"
    )
