"""Hypothesis strategies that drive trading envs: actions, plans, markets, configs, episodes.

Actions come from the env's own action space: ``Discrete`` ids and mask-respecting plans
(:func:`action_sequences`, :func:`action_plans`), or members of a ``Box`` or
``MultiDiscrete`` space (:func:`space_actions`, :func:`space_action_sequences`) with the
inputs an env must refuse or clip (:func:`adversarial_actions`).

Every strategy documents what it generates and what it shrinks towards; all of
them shrink to small, readable counterexamples (a step or two of named actions on
a market of two or three prices). Arguments are checked when a strategy is built
and a bad one raises :class:`hypothesis.errors.InvalidArgument`.

Example:
    >>> from hypothesis import given, settings
    >>> from tradeguard.strategies import episodes
    >>> @settings(max_examples=20)
    ... @given(episodes(masked=True))
    ... def test_masked_agent_is_never_rejected(ep):
    ...     assert ep.run().metrics().rejections == 0
    >>> test_masked_agent_is_never_rejected()
"""

from __future__ import annotations

from tradeguard.strategies._actions import (
    ACTION_STYLES,
    INVALID_WHEN_FLAT,
    PLAN_STYLES,
    ActionStyle,
    PlanStyle,
    action_plans,
    action_sequences,
    actions,
    drive,
)
from tradeguard.strategies._configs import (
    PATHOLOGICAL_REWARDS,
    config_changes,
    env_configs,
    reward_configs,
)
from tradeguard.strategies._episodes import Episode, episodes
from tradeguard.strategies._markets import PATH_KINDS, ROUND_PRICE, PathKind, markets
from tradeguard.strategies._spaces import (
    SPACE_STYLES,
    AdversarialAction,
    SpaceStyle,
    adversarial_actions,
    box_actions,
    describe_action,
    multi_discrete_actions,
    neutral_action,
    space_action_sequences,
    space_actions,
)

__all__ = [
    "ACTION_STYLES",
    "INVALID_WHEN_FLAT",
    "PATHOLOGICAL_REWARDS",
    "PATH_KINDS",
    "PLAN_STYLES",
    "ROUND_PRICE",
    "SPACE_STYLES",
    "ActionStyle",
    "AdversarialAction",
    "Episode",
    "PathKind",
    "PlanStyle",
    "SpaceStyle",
    "action_plans",
    "action_sequences",
    "actions",
    "adversarial_actions",
    "box_actions",
    "config_changes",
    "describe_action",
    "drive",
    "env_configs",
    "episodes",
    "markets",
    "multi_discrete_actions",
    "neutral_action",
    "reward_configs",
    "space_action_sequences",
    "space_actions",
]
