"""Hypothesis strategies that drive trading envs: actions, plans, markets, configs, episodes.

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

__all__ = [
    "ACTION_STYLES",
    "INVALID_WHEN_FLAT",
    "PATHOLOGICAL_REWARDS",
    "PATH_KINDS",
    "PLAN_STYLES",
    "ROUND_PRICE",
    "ActionStyle",
    "Episode",
    "PathKind",
    "PlanStyle",
    "action_plans",
    "action_sequences",
    "actions",
    "config_changes",
    "drive",
    "env_configs",
    "episodes",
    "markets",
    "reward_configs",
]
