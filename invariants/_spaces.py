"""The action space decides how the gate drives an env: ``Discrete``, ``MultiDiscrete`` or ``Box``.

:func:`action_driver` looks at an env's action space once and returns an
:class:`ActionDriver`: the generated action sequences for it, the neutral action that
plays an episode to its end, how a played action is kept in a counterexample (plain
numbers, JSON-ready) and how it reads in a report. Everything else in the gate is the
same for every space: the catalog reads traces, and a trace is a trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tradeguard.errors import InvalidConfig
from tradeguard.invariants._adapter import action_id
from tradeguard.trace import StepRecord, TraceMeta

__all__ = ["ActionDriver", "SpaceKind", "action_driver", "describe_record", "idle_action"]

SpaceKind = Literal["discrete", "multi-discrete", "box"]


@dataclass(frozen=True, slots=True)
class ActionDriver:
    """How the gate drives an env with a given action space.

    Attributes:
        space: The env's action space.
        kind: ``"discrete"`` (ids from 0, masks apply), ``"multi-discrete"`` or ``"box"``.
    """

    space: Any
    kind: SpaceKind

    @property
    def n_actions(self) -> int | None:
        """The number of actions of a ``Discrete`` space, else ``None``."""
        return int(self.space.n) if self.kind == "discrete" else None

    @property
    def idle(self) -> Any:
        """A member to play when any member will do (the probe step, running out an episode):
        action 0 of a ``Discrete`` space, the neutral action of the others."""
        return idle_action(self.space)

    def sequences(self, max_steps: int) -> Any:
        """Hypothesis strategy of action sequences for a ``Box`` or ``MultiDiscrete`` space
        (uniform, sticky, hold-reverse-close), as tuples of members."""
        from hypothesis import strategies as st

        from tradeguard.strategies import space_action_sequences

        return st.one_of(
            *(space_action_sequences(self.space, max_size=max_steps, style=style)
              for style in ("uniform", "sticky", "hold-reverse-close"))
        ).map(tuple)

    def kept(self, action: Any) -> Any:
        """``action`` as a counterexample keeps it: an id for ``Discrete`` (``-1`` for no id),
        a tuple of plain numbers for the others (JSON-ready), ``repr`` for anything else."""
        if self.kind == "discrete":
            return action_id(action)
        try:
            arr = np.asarray(action)
        except Exception:
            return repr(action)
        if arr.dtype.kind in "iub":
            return tuple(int(x) for x in arr.reshape(-1).tolist())
        if arr.dtype.kind == "f":
            return tuple(float(x) for x in arr.reshape(-1).tolist())
        return repr(action)

    def played(self, kept: Any) -> Any:
        """The member a kept action stands for (what ``kept`` took apart), to replay it."""
        if self.kind == "discrete" or not isinstance(kept, tuple):
            return kept
        return np.asarray(kept, dtype=self.space.dtype).reshape(self.space.shape)

    def name(self, kept: Any, meta: TraceMeta) -> str:
        """How a kept action reads in a counterexample: the action's name for ``Discrete``,
        ``[0.5, 0, 1]`` for the others."""
        if self.kind == "discrete":
            return meta.action_name(kept)
        if isinstance(kept, tuple):
            return "[" + ", ".join(_number(x) for x in kept) + "]"
        return str(kept)


def _number(x: float) -> str:
    if isinstance(x, float):
        return str(int(x)) if x.is_integer() and abs(x) < 1e15 else f"{x:.6g}"
    return str(x)


def action_driver(space: Any) -> ActionDriver:
    """The :class:`ActionDriver` for an env's action space.

    Raises:
        InvalidConfig: the space is none of ``Discrete`` (numbered from 0),
            ``MultiDiscrete`` or ``Box``, with what to do instead.

    Example:
        >>> import numpy as np
        >>> from gymnasium.spaces import Box, Discrete
        >>> action_driver(Discrete(7)).kind, action_driver(Box(0.0, 1.0, (3,), np.float32)).kind
        ('discrete', 'box')
    """
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete) or (
        not isinstance(space, (spaces.Box, spaces.MultiDiscrete)) and hasattr(space, "n")
    ):
        n = getattr(space, "n", None)
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0 or int(getattr(space, "start", 0)) != 0:
            raise InvalidConfig(
                f"the env's action_space is {space!r}; check_trading_env drives Discrete spaces numbered "
                "from 0 (gymnasium.spaces.Discrete(n)), MultiDiscrete and Box spaces. For a Discrete space "
                "with start != 0, wrap the env so that its actions are numbered from 0."
            )
        return ActionDriver(space, "discrete")
    if isinstance(space, spaces.MultiDiscrete):
        return ActionDriver(space, "multi-discrete")
    if isinstance(space, spaces.Box):
        if not (np.issubdtype(space.dtype, np.floating) or np.issubdtype(space.dtype, np.integer)):
            raise InvalidConfig(f"the env's action_space is {space!r}; a Box of dtype {space.dtype} holds no "
                                "numbers to trade. Expected a float or integer Box.")
        return ActionDriver(space, "box")
    raise InvalidConfig(
        f"the env's action_space is {space!r} ({type(space).__name__}); check_trading_env drives "
        "gymnasium.spaces.Discrete, MultiDiscrete and Box spaces. Flatten the space with "
        "gymnasium.wrappers.FlattenObservation's action counterpart (e.g. a wrapper whose action_space "
        "is a Box and whose step() unpacks it), then check the wrapped env."
    )


def idle_action(space: Any) -> Any:
    """A member of ``space`` to play when any member will do: 0 for a ``Discrete`` space (and
    anything else with ``n``), else the neutral action (0 clipped into the bounds)."""
    if hasattr(space, "n") and not hasattr(space, "nvec"):
        return 0
    from tradeguard.strategies import neutral_action

    return neutral_action(space)


def describe_record(record: StepRecord, meta: TraceMeta) -> str:
    """What a step executed, in a trader's words: the action's name, or each leg's trade."""
    if record.legs is None:
        return meta.action_name(record.executed)
    trades = [f"{meta.instrument(i)} {meta.units(leg.quantity) if leg.quantity < 0 else '+' + meta.units(leg.quantity)}"
              for i, leg in enumerate(record.legs) if leg.quantity != 0 and not _nan(leg.quantity)]
    odd = [f"{meta.instrument(i)} {leg.quantity!r}" for i, leg in enumerate(record.legs) if _nan(leg.quantity)]
    return ", ".join(trades + odd) or "no trade"


def _nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)
