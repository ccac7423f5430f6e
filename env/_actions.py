"""The seven actions, in the seed's order, and the reasons an action is rejected."""

from __future__ import annotations

import enum

from tradeguard.trace import ActionKind

__all__ = ["ACTION_NAMES", "N_ACTIONS", "Action", "RejectReason"]


class Action(enum.IntEnum):
    """The agent's actions, numbered as in the seed's post-mortem."""

    HOLD = 0
    BUY_SMALL = 1
    BUY_MEDIUM = 2
    BUY_LARGE = 3
    SELL_PARTIAL = 4
    SELL_ALL = 5
    ADD_POSITION = 6

    @property
    def kind(self) -> ActionKind:
        """What the action does to a long position."""
        return _KINDS[self]


_KINDS: dict[Action, ActionKind] = {
    Action.HOLD: "hold",
    Action.BUY_SMALL: "open",
    Action.BUY_MEDIUM: "open",
    Action.BUY_LARGE: "open",
    Action.SELL_PARTIAL: "reduce",
    Action.SELL_ALL: "close",
    Action.ADD_POSITION: "add",
}

ACTION_NAMES: tuple[str, ...] = tuple(a.name for a in Action)
N_ACTIONS = len(Action)


class RejectReason(enum.StrEnum):
    """Why a predicted action was rejected (and HOLD executed instead)."""

    DISABLED = "DISABLED"
    """The configuration disables the action."""
    NO_POSITION = "NO_POSITION"
    """A sell or add needs an open position; there is none."""
    ALREADY_IN_POSITION = "ALREADY_IN_POSITION"
    """A buy opens a position from flat; one is already open (use ADD_POSITION)."""
    NOT_PROFITABLE = "NOT_PROFITABLE"
    """ADD_POSITION needs the price above the average entry price."""
    INSUFFICIENT_CASH = "INSUFFICIENT_CASH"
    """Cash does not cover one lot plus the fee."""
