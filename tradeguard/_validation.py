"""Argument validation in one place: every message echoes what was given and the allowed range.

What was given reads ``name=value!r`` for a parameter and ``--option value!r`` for a
command-line option (a ``name`` starting with ``-``), so that the CLI's errors name the
option the user typed, not the parameter it becomes.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

from tradeguard.errors import InvalidConfig


def suggest(given: str, options: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest option, or ``""``."""
    close = difflib.get_close_matches(given, list(options), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_int(
    name: str, value: Any, *, min_value: int | None = None, max_value: int | None = None
) -> int:
    """Check that ``value`` is an int (not a bool) within ``[min_value, max_value]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidConfig(
            f"{_given(name, value)} must be an integer{_range(min_value, max_value)}; "
            f"got {type(value).__name__}."
        )
    _check_bounds(name, value, min_value, max_value)
    return value


def check_number(
    name: str,
    value: Any,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    min_exclusive: bool = False,
) -> float:
    """Check that ``value`` is a finite real number (not a bool) within bounds; return it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidConfig(
            f"{_given(name, value)} must be a number{_range(min_value, max_value)}; "
            f"got {type(value).__name__}."
        )
    if not math.isfinite(value):
        raise InvalidConfig(f"{_given(name, value)} must be finite{_range(min_value, max_value)}.")
    if min_exclusive and min_value is not None and value <= min_value:
        raise InvalidConfig(
            f"{_given(name, value)} must be greater than {min_value}"
            + (f" and at most {max_value}" if max_value is not None else "")
            + "."
        )
    _check_bounds(name, value, min_value, max_value)
    return float(value)


def _check_bounds(name: str, value: float, lo: float | None, hi: float | None) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InvalidConfig(f"{_given(name, value)} is out of range: expected{_range(lo, hi)}.")


def _given(name: str, value: Any) -> str:
    """``name=value`` for a parameter, ``--option value`` for a command-line option."""
    return f"{name} {value!r}" if name.startswith("-") else f"{name}={value!r}"


def _range(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" in [{lo}, {hi}]"
    if lo is not None:
        return f" >= {lo}"
    if hi is not None:
        return f" <= {hi}"
    return ""
