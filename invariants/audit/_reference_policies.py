"""The reward audit's reference set: tradeguard's reference policies, played on one market.

The policies are :mod:`tradeguard.env`'s (:class:`~tradeguard.env.Policy`, read by
:func:`~tradeguard.env.parse_policy`): simple, named behaviours a degenerate learner
collapses to (the seed's 100% BUY_SMALL, 100% ADD_POSITION, 100% SELL_PARTIAL) or explores
with (uniform random, epsilon-random around HOLD). Here they play a short market on the
bare state machine and reward shaper, deciding from the action mask, and each run is a
:class:`~tradeguard.invariants.audit.Rollout` the audit compares with the exact optimum.

The names this module used to define are the same classes under their old names:
``AlwaysHold`` is :class:`~tradeguard.env.HoldPolicy`, ``Spam`` is
:class:`~tradeguard.env.ConstantPolicy`, ``UniformRandom`` is
:class:`~tradeguard.env.RandomPolicy`, ``EpsilonHold`` is
:class:`~tradeguard.env.EpsilonHoldPolicy`, ``BuyAndNeverSell`` is
:class:`~tradeguard.env.BuyAndNeverSellPolicy`, ``ReferencePolicy`` is
:class:`~tradeguard.env.Policy` and ``parse_reference`` is :func:`~tradeguard.env.parse_policy`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tradeguard.env import (
    Action,
    BuyAndNeverSellPolicy,
    ConstantPolicy,
    EnvConfig,
    EpsilonHoldPolicy,
    HoldPolicy,
    Machine,
    Market,
    Policy,
    RandomPolicy,
    RewardConfig,
    RewardShaper,
    parse_policy,
)
from tradeguard.errors import InvalidConfig
from tradeguard.invariants.audit._rollout import Rollout, _as_action, _play, as_prices

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

ReferencePolicy = Policy
AlwaysHold = HoldPolicy
Spam = ConstantPolicy
UniformRandom = RandomPolicy
EpsilonHold = EpsilonHoldPolicy
BuyAndNeverSell = BuyAndNeverSellPolicy
parse_reference = parse_policy


def reference_policies(env: EnvConfig | None = None) -> tuple[Policy, ...]:
    """The standard set: HOLD, every other action constantly, buy-and-never-sell per size, random.

    Args:
        env: The machine's configuration; disabled buy sizes are left out of the
            buy-and-never-sell variants (they would only spam a rejected action).

    Returns:
        The policies, in a fixed order.

    Example:
        >>> [p.name for p in reference_policies()][:3]
        ['hold', 'constant:BUY_SMALL', 'constant:BUY_MEDIUM']
    """
    env = env or EnvConfig()
    disabled = set(env.disabled_actions)
    out: list[Policy] = [HoldPolicy()]
    out += [ConstantPolicy(a) for a in Action if a is not Action.HOLD]
    for buy in (Action.BUY_SMALL, Action.BUY_MEDIUM, Action.BUY_LARGE):
        if buy not in disabled:
            out.append(BuyAndNeverSellPolicy(buy))
            if Action.ADD_POSITION not in disabled:
                out.append(BuyAndNeverSellPolicy(buy, add=True))
    out += [RandomPolicy(), EpsilonHoldPolicy(0.5), EpsilonHoldPolicy(0.1)]
    return tuple(out)


def play_reference(
    policy: Policy,
    prices: Market | Sequence[int],
    *,
    env: EnvConfig | None = None,
    reward: RewardConfig | None = None,
    seed: int = 0,
) -> Rollout:
    """Play ``policy`` over the whole market (``len(prices) - 1`` steps).

    Args:
        policy: A reference policy (:class:`~tradeguard.env.Policy`); it sees no
            observation (``None``), only the action mask.
        prices: The market, in minor units.
        env: The machine's configuration (default :class:`EnvConfig`).
        reward: The reward shaper's weights (default :class:`RewardConfig`).
        seed: Seed of the policy's random numbers (random policies only).

    Returns:
        The :class:`Rollout` of the actions the policy predicted.

    Example:
        >>> r = play_reference(ConstantPolicy(Action.SELL_PARTIAL), [10_000, 9_900, 9_800],
        ...          reward=RewardConfig(failed_action_penalty=-0.05))
        >>> r.rejections, round(r.shaped_return, 2)
        (2, -0.1)
    """
    env = env or EnvConfig()
    reward = reward or RewardConfig()
    return _play_policy(policy, as_prices(prices), Machine(env), RewardShaper(reward, env.cash), seed)


def _play_policy(
    policy: Policy,
    prices: tuple[int, ...],
    machine: Machine,
    shaper: RewardShaper,
    seed: int,
) -> Rollout:
    rng = np.random.default_rng([seed, 0x5EED])

    def choose(t: int, mask: tuple[bool, ...]) -> Action:
        return _as_action(policy.act(None, np.array(mask, dtype=bool), rng))

    return _play(machine, shaper, prices, len(prices) - 1, choose)


def play_references(
    prices: Market | Sequence[int],
    *,
    env: EnvConfig | None = None,
    reward: RewardConfig | None = None,
    policies: Sequence[Policy] | None = None,
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
        out[pol.name] = _play_policy(pol, p, machine, shaper, seed)
    return out
