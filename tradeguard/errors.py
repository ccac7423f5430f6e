"""Exceptions raised by tradeguard, one base class, each named after its condition.

Every error says what was given, what was expected, and how to fix it.
Invariant violations subclass :class:`AssertionError`, as the checkers of
Gymnasium and stable-baselines3 do, so that pytest reports them as failures.
"""

from __future__ import annotations

__all__ = [
    "EpisodeEnded",
    "InvalidAction",
    "InvalidConfig",
    "InvalidMarket",
    "InvariantViolation",
    "TradeguardError",
]


class TradeguardError(Exception):
    """Base class of every error tradeguard raises on purpose."""


class InvalidConfig(TradeguardError, ValueError):
    """A configuration field, scenario or command-line value is out of its allowed range."""


class InvalidAction(TradeguardError, ValueError):
    """An action is not one of the env's actions (out of range, a float, a bool, ``None``)."""


class InvalidMarket(TradeguardError, ValueError):
    """A price series cannot be traded: non-finite, non-positive, off the tick grid, too short."""


class EpisodeEnded(TradeguardError, RuntimeError):
    """``step()`` was called after the episode ended and before ``reset()``."""


class InvariantViolation(TradeguardError, AssertionError):
    """One or more invariants do not hold on a trace."""
