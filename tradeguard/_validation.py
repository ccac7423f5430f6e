"""Argument validation in one place: every message echoes what was given and the allowed range.

What was given reads ``name=value!r`` for a parameter and ``--option value!r`` for a
command-line option (a ``name`` starting with ``-``), so that the CLI's errors name the
option the user typed, not the parameter it becomes.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tradeguard.errors import InvalidConfig


def suggest(given: str, options: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest option, or ``""``."""
    close = difflib.get_close_matches(given, list(options), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def unwritable_ancestor(path: Path) -> tuple[Path, str | None]:
    """The nearest part of ``path`` that exists, and why new files cannot be made under it.

    Returns ``(existing, None)`` when ``existing`` is a writable directory (``path``, or the
    parents still missing, can be created there); else the reason, ``"is a file, not a
    directory"`` or ``"is not writable"``, for the caller's message. Creates nothing.
    """
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return existing, "is a file, not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return existing, "is not writable"
    return existing, None


def check_int(
    name: str,
    value: Any,
    *,
    min_value: int | None = None,
    max_value: int | None = None,
    hint: str = "",
) -> int:
    """Check that ``value`` is an int (not a bool) within ``[min_value, max_value]``.

    ``hint``, when given, follows the message: what the bounds mean or how to fix it.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidConfig(
            f"{_given(name, value)} must be an integer{_range(min_value, max_value)}; "
            f"got {type(value).__name__}.{_hint(hint)}"
        )
    _check_bounds(name, value, min_value, max_value, hint=hint)
    return value


def check_number(
    name: str,
    value: Any,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    min_exclusive: bool = False,
    hint: str = "",
) -> float:
    """Check that ``value`` is a finite real number (not a bool) within bounds; return it as float.

    With ``min_exclusive``, ``min_value`` itself is out of range. ``hint``, when given,
    follows the message: what the bounds mean or how to fix it.
    """
    expected = _range(min_value, max_value, min_exclusive=min_exclusive)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidConfig(
            f"{_given(name, value)} must be a number{expected}; got {type(value).__name__}.{_hint(hint)}"
        )
    if not math.isfinite(value):
        raise InvalidConfig(f"{_given(name, value)} must be finite{expected}.{_hint(hint)}")
    if min_exclusive and min_value is not None and value <= min_value:
        raise InvalidConfig(
            f"{_given(name, value)} must be greater than {min_value}"
            + (f" and at most {max_value}" if max_value is not None else "")
            + f".{_hint(hint)}"
        )
    _check_bounds(name, value, min_value, max_value, hint=hint, min_exclusive=min_exclusive)
    return float(value)


def _check_bounds(
    name: str, value: float, lo: float | None, hi: float | None, *, hint: str = "", min_exclusive: bool = False
) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        expected = _range(lo, hi, min_exclusive=min_exclusive)
        raise InvalidConfig(f"{_given(name, value)} is out of range: expected{expected}.{_hint(hint)}")


def _hint(hint: str) -> str:
    return f" {hint}" if hint else ""


def _given(name: str, value: Any) -> str:
    """``name=value`` for a parameter, ``--option value`` for a command-line option."""
    return f"{name} {value!r}" if name.startswith("-") else f"{name}={value!r}"


def _range(lo: float | None, hi: float | None, *, min_exclusive: bool = False) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if min_exclusive else '['}{lo}, {hi}]"
    if lo is not None:
        return f" {'>' if min_exclusive else '>='} {lo}"
    if hi is not None:
        return f" <= {hi}"
    return ""
