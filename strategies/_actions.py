"""Action strategies, action plans, and the driver that plays them on an env.

An *action sequence* is a list of action ids decided up front: what an agent that
ignores the state (the seed's epsilon-greedy exploration) would send.

A mask-respecting sequence cannot be decided up front, because which actions are
valid depends on the state the earlier actions produced. So a *plan* is a list of
*choices* (non-negative ints) that :func:`drive` maps at run time onto the actions
valid at that step::

    valid  = [a for a in range(n_actions) if mask[a]]    # ascending ids: HOLD (0) first
    action = valid[choice % len(valid)]

Choices are drawn in ``0..n_actions - 1``, so a choice below the number of valid
actions picks the valid action at that index directly (a plan reads as "first
valid, second valid, ..."). Choice 0 is always the lowest valid id, which in
tradeguard is HOLD (always valid), so a plan shrinking towards zeros shrinks
towards doing nothing. The fold (``%``) slightly favours low indices when fewer
actions are valid (with 7 choices and 3 valid: 3/7, 2/7, 2/7); a small range keeps
plans readable and shrinkable, which matters more here than exact uniformity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import hypothesis.strategies as st
import numpy as np
from hypothesis.errors import InvalidArgument

from tradeguard._episode import play_episode
from tradeguard.env import Action
from tradeguard.strategies._common import check_int_arg, check_option, check_sizes
from tradeguard.trace import Trace

__all__ = [
    "ACTION_STYLES",
    "INVALID_WHEN_FLAT",
    "PLAN_STYLES",
    "ActionStyle",
    "PlanStyle",
    "action_plans",
    "action_sequences",
    "actions",
    "drive",
]

ActionStyle = Literal["uniform", "invalid-biased", "sticky"]
"""How :func:`action_sequences` picks actions."""
ACTION_STYLES: tuple[ActionStyle, ...] = get_args(ActionStyle)

PlanStyle = Literal["uniform", "sticky"]
"""How :func:`action_plans` picks choices (a plan has no invalid actions to bias towards)."""
PLAN_STYLES: tuple[PlanStyle, ...] = get_args(PlanStyle)

INVALID_WHEN_FLAT: tuple[int, ...] = (
    int(Action.SELL_PARTIAL),
    int(Action.SELL_ALL),
    int(Action.ADD_POSITION),
)
"""The actions a flat account rejects (NO_POSITION): what the seed's exploration spammed."""

MAX_ACTIONS = 1 << 16
MAX_SEQUENCE = 100_000
_MAX_RUN = 16
_BIAS = 3
"""An invalid-biased step picks from ``invalid_actions`` with odds 3 to 1."""


def actions(n_actions: int = len(Action)) -> st.SearchStrategy[int]:
    """Single action ids in ``0..n_actions - 1``, uniformly.

    Shrinks towards 0 (HOLD in tradeguard's numbering).

    Args:
        n_actions: Size of the discrete action space, in [1, 65536].

    Raises:
        InvalidArgument: ``n_actions`` is not an integer in range.

    Example:
        >>> from hypothesis import find
        >>> find(actions(), lambda a: a >= 4)  # the first sell
        4
    """
    n = check_int_arg("n_actions", n_actions, min_value=1, max_value=MAX_ACTIONS)
    return st.integers(0, n - 1)


def action_sequences(
    *,
    min_size: int = 1,
    max_size: int = 50,
    style: ActionStyle = "uniform",
    n_actions: int = len(Action),
    invalid_actions: Sequence[int] = INVALID_WHEN_FLAT,
) -> st.SearchStrategy[list[int]]:
    """Lists of action ids decided up front, as an agent that ignores the state sends them.

    Styles:

    - ``"uniform"``: every step uniform over all actions (epsilon-greedy at epsilon 1).
    - ``"invalid-biased"``: each step picks from ``invalid_actions`` (by default
      SELL_PARTIAL, SELL_ALL, ADD_POSITION: invalid when flat) with odds 3 to 1, else
      uniformly: the seed's exploration spam. Most steps of a flat account are rejected.
    - ``"sticky"``: runs of one repeated action (1 to 16 steps each): bursty agents
      and collapsed policies that repeat one action.

    Every style shrinks towards a list of ``min_size`` HOLDs (0): fewer steps first,
    then each action towards 0, and sticky runs towards length 1.

    Args:
        min_size: Fewest actions, in [0, 100000].
        max_size: Most actions, in [min_size, 100000].
        style: ``"uniform"``, ``"invalid-biased"`` or ``"sticky"``.
        n_actions: Size of the action space, in [1, 65536].
        invalid_actions: The actions ``"invalid-biased"`` favours, each in
            ``0..n_actions - 1``; ignored by the other styles.

    Raises:
        InvalidArgument: a size or ``n_actions`` out of range, ``min_size > max_size``,
            an unknown style, or an ``invalid_actions`` entry out of range.

    Example:
        >>> from hypothesis import find
        >>> find(action_sequences(style="sticky"), lambda s: len(set(s)) > 1)
        [0, 1]
    """
    lo, hi = check_sizes("min_size", min_size, "max_size", max_size, lowest=0, highest=MAX_SEQUENCE)
    check_option("style", style, ACTION_STYLES)
    n = check_int_arg("n_actions", n_actions, min_value=1, max_value=MAX_ACTIONS)
    element = st.integers(0, n - 1)
    if style == "invalid-biased":
        favoured = _check_actions("invalid_actions", invalid_actions, n)
        element = _biased(element, st.sampled_from(favoured))
    return _sequence(element, lo, hi, sticky=style == "sticky")


def action_plans(
    *,
    min_size: int = 1,
    max_size: int = 50,
    style: PlanStyle = "uniform",
    n_actions: int = len(Action),
) -> st.SearchStrategy[list[int]]:
    """Plans: lists of choices in ``0..n_actions - 1`` that :func:`drive` maps onto valid actions.

    Played with ``drive(env, plan, masked=True)``, step ``t`` executes
    ``valid[plan[t] % len(valid)]`` where ``valid`` lists the actions the env's mask
    allows at that step in ascending id order. A masked plan therefore never predicts
    a rejected action, whatever the state: the way to draw mask-respecting sequences.
    ``"sticky"`` draws runs of one repeated choice (the same pick among the valid
    actions, 1 to 16 steps each).

    Shrinks towards a list of ``min_size`` zeros, i.e. HOLD on every step, then each
    choice towards the lowest index that picks the same action.

    Args:
        min_size: Fewest choices, in [0, 100000].
        max_size: Most choices, in [min_size, 100000].
        style: ``"uniform"`` or ``"sticky"``.
        n_actions: Size of the env's action space, in [1, 65536].

    Raises:
        InvalidArgument: a size or ``n_actions`` out of range, ``min_size > max_size``,
            an unknown style.

    Example:
        >>> from hypothesis import find
        >>> find(action_plans(), lambda plan: True)
        [0]
    """
    lo, hi = check_sizes("min_size", min_size, "max_size", max_size, lowest=0, highest=MAX_SEQUENCE)
    check_option("style", style, PLAN_STYLES)
    n = check_int_arg("n_actions", n_actions, min_value=1, max_value=MAX_ACTIONS)
    return _sequence(st.integers(0, n - 1), lo, hi, sticky=style == "sticky")


def drive(
    env: Any,
    plan: Sequence[int],
    *,
    masked: bool,
    seed: int | None = None,
    market: Any = None,
) -> Trace:
    """Reset ``env`` and play ``plan`` on it; return the env's trace.

    Works with any env with the tradeguard API: ``reset(seed=..., options=...)``,
    ``step``, a discrete ``action_space``, ``action_masks()`` (when ``masked``) and
    ``.trace`` (on the env or its ``unwrapped`` base), so gymnasium wrappers such as
    an invariant monitor stay in the loop.

    Each entry is mapped to an action before the step:

    - ``masked=True``: ``valid[choice % len(valid)]``, ``valid`` being the ids the
      mask allows now, ascending (choice 0 is HOLD in tradeguard). A broken env whose
      mask is all False gets ``choice % n_actions`` instead, so the trace records the
      bad mask for the invariants to report rather than the driver crashing.
    - ``masked=False``: ``choice % n_actions``: an action sequence from
      :func:`action_sequences` is played as is.

    The episode stops at the plan's end or when the env ends it (terminated or
    truncated), whichever comes first.

    Args:
        env: The env to drive.
        plan: Non-negative ints: choices (masked) or action ids (unmasked).
        masked: Whether to map each entry onto the currently valid actions.
        seed: Seed for ``reset``.
        market: Passed as ``options={"market": market}`` to ``reset`` unless ``None``.

    Returns:
        The env's trace after the last step.

    Raises:
        InvalidArgument: a negative entry, an env without a discrete action space,
            without ``action_masks()`` when ``masked``, or without ``.trace``.

    Example:
        >>> from tradeguard.env import EnvConfig, TradingEnv
        >>> env = TradingEnv(config=EnvConfig(episode_length=3))
        >>> trace = drive(env, [5, 1, 1], masked=True, seed=0)
        >>> [r.predicted for r in trace], trace.metrics().rejections
        ([1, 4, 4], 0)
    """
    if not isinstance(masked, bool):
        raise InvalidArgument(f"masked={masked!r} must be True or False.")
    base = getattr(env, "unwrapped", env)
    n = _n_actions(env)
    masks = getattr(env, "action_masks", None) or getattr(base, "action_masks", None)
    if masked and masks is None:
        raise InvalidArgument(
            f"masked=True but {type(base).__name__} has no action_masks() method; pass "
            "masked=False, or give the env an action_masks() returning one bool per action."
        )
    choices = [_check_choice(i, c) for i, c in enumerate(plan)]

    def choose(t: int, observation: Any, mask: tuple[bool, ...] | None) -> int:
        choice = choices[t]
        if masked and mask is not None:
            valid = np.flatnonzero(np.asarray(mask, dtype=bool))
            if valid.size:
                return int(valid[choice % valid.size])
        return choice % n

    play_episode(env, choose, recorder=None, seed=seed,
                 options=None if market is None else {"market": market}, max_steps=len(choices))
    trace = getattr(base, "trace", None)
    if not isinstance(trace, Trace):
        raise InvalidArgument(
            f"{type(base).__name__} has no .trace (a tradeguard Trace); wrap the env in an "
            "adapter that records StepRecords."
        )
    return trace


# ---------------------------------------------------------------------- helpers
def _check_actions(name: str, values: Any, n: int) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise InvalidArgument(
            f"{name}={values!r} must be a non-empty sequence of action ids in 0..{n - 1}."
        )
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n:
            raise InvalidArgument(
                f"{name} contains {v!r}; expected action ids in 0..{n - 1} (n_actions={n}). "
                "Pass invalid_actions=... for an env with fewer actions."
            )
    return tuple(sorted({int(v) for v in values}))


def _check_choice(i: int, choice: Any) -> int:
    if isinstance(choice, bool) or not isinstance(choice, (int, np.integer)) or choice < 0:
        raise InvalidArgument(
            f"plan[{i}]={choice!r} must be a non-negative integer (a choice or an action id)."
        )
    return int(choice)


def _n_actions(env: Any) -> int:
    n = getattr(getattr(env, "action_space", None), "n", None)
    if n is None:
        raise InvalidArgument(
            f"{type(env).__name__} has no discrete action_space (action_space.n); drive() "
            "plays discrete actions only."
        )
    return int(n)


@st.composite
def _biased_draw(
    draw: st.DrawFn, uniform: st.SearchStrategy[int], favoured: st.SearchStrategy[int]
) -> int:
    # The branch is drawn first: 0 (uniform, then towards HOLD) is the shrink target.
    if draw(st.integers(0, _BIAS)) == 0:
        return draw(uniform)
    return draw(favoured)


def _biased(
    uniform: st.SearchStrategy[int], favoured: st.SearchStrategy[int]
) -> st.SearchStrategy[int]:
    return _biased_draw(uniform, favoured)


@st.composite
def _sticky_draw(draw: st.DrawFn, element: st.SearchStrategy[int], lo: int, hi: int) -> list[int]:
    runs = draw(
        st.lists(
            st.tuples(element, st.integers(1, max(1, min(hi, _MAX_RUN)))),
            min_size=1 if lo else 0,
            max_size=hi,
        )
    )
    out: list[int] = []
    for value, length in runs:
        out.extend([value] * length)
        if len(out) >= hi:
            break
    del out[hi:]
    if len(out) < lo:  # extend the last run: still sticky, and short lists shrink to it
        out.extend([out[-1]] * (lo - len(out)))
    return out


def _sequence(
    element: st.SearchStrategy[int], lo: int, hi: int, *, sticky: bool
) -> st.SearchStrategy[list[int]]:
    if sticky:
        return _sticky_draw(element, lo, hi)
    return _sized_draw(element, lo, hi)


@st.composite
def _sized_draw(draw: st.DrawFn, element: st.SearchStrategy[int], lo: int, hi: int) -> list[int]:
    # The length is drawn first, from the whole range: st.lists alone averages about six
    # elements, too short for the sequences that reach deep states (buy, rise, add, sell).
    # Shrinking the length truncates the list; the elements then shrink towards 0.
    size = draw(st.integers(lo, hi))
    return draw(st.lists(element, min_size=size, max_size=size))
