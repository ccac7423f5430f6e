"""What the strategies share: argument validation in one place, and anchored integers.

Every strategy checks its arguments when it is *called* (not when it is first
drawn from), so a bad argument fails on the line that wrote it. Errors are
:class:`hypothesis.errors.InvalidArgument`, as Hypothesis' own strategies raise,
and echo ``name=value!r`` with the allowed range and, for names, the near miss.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import hypothesis.strategies as st
from hypothesis.errors import InvalidArgument

from tradeguard._validation import suggest

__all__ = [
    "anchored",
    "as_strategy",
    "check_bool",
    "check_fixed_names",
    "check_int_arg",
    "check_option",
    "check_options",
    "check_sizes",
]


def check_bool(name: str, value: Any) -> bool:
    """Check that ``value`` is a bool (not a truthy int or string)."""
    if not isinstance(value, bool):
        raise InvalidArgument(
            f"{name}={value!r} must be True or False; got {type(value).__name__}."
        )
    return value


def check_int_arg(name: str, value: Any, *, min_value: int, max_value: int | None = None) -> int:
    """Check that ``value`` is an int (not a bool) in ``[min_value, max_value]``."""
    allowed = f"[{min_value}, {max_value}]" if max_value is not None else f">= {min_value}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(
            f"{name}={value!r} must be an integer {allowed}; got {type(value).__name__}."
        )
    if value < min_value or (max_value is not None and value > max_value):
        raise InvalidArgument(f"{name}={value!r} is out of range: expected an integer {allowed}.")
    return value


def check_sizes(
    min_name: str,
    min_size: Any,
    max_name: str,
    max_size: Any,
    *,
    lowest: int,
    highest: int,
) -> tuple[int, int]:
    """Check a ``(min, max)`` pair of sizes: both ints in ``[lowest, highest]``, min <= max."""
    lo = check_int_arg(min_name, min_size, min_value=lowest, max_value=highest)
    hi = check_int_arg(max_name, max_size, min_value=lowest, max_value=highest)
    if hi < lo:
        raise InvalidArgument(
            f"{max_name}={hi!r} is below {min_name}={lo!r}; expected {min_name} <= {max_name}."
        )
    return lo, hi


def check_option(name: str, value: Any, options: Sequence[str]) -> str:
    """Check that ``value`` is one of ``options`` (strings), suggesting the closest."""
    if not isinstance(value, str) or value not in options:
        hint = suggest(value, options) if isinstance(value, str) else ""
        raise InvalidArgument(
            f"{name}={value!r} is not one of {', '.join(repr(o) for o in options)}.{hint}"
        )
    return value


def check_options(name: str, values: Any, options: Sequence[str]) -> tuple[str, ...]:
    """Check a non-empty collection of ``options``; return them unique, in ``options`` order."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidArgument(
            f"{name}={values!r} must be a tuple of names, e.g. {name}=({options[0]!r},)."
        )
    given = list(values)
    if not given:
        raise InvalidArgument(
            f"{name}=() is empty; expected at least one of {', '.join(repr(o) for o in options)}."
        )
    for v in given:
        check_option(f"an entry of {name}", v, options)
    return tuple(o for o in options if o in given)


def as_strategy(value: Any) -> st.SearchStrategy[Any]:
    """A strategy as is, any other value as ``st.just(value)`` (a fixed field)."""
    if isinstance(value, st.SearchStrategy):
        return value
    return st.just(value)


def check_fixed_names(what: str, fixed: Iterable[str], names: Sequence[str]) -> None:
    """Refuse keyword arguments that are not fields of ``what``, suggesting the closest."""
    for key in fixed:
        if key not in names:
            raise InvalidArgument(
                f"{key}=... is not a {what} field; expected some of {', '.join(names)}."
                f"{suggest(key, names)}"
            )


def anchored(lo: int, hi: int, anchor: int) -> st.SearchStrategy[int]:
    """Integers in ``[lo, hi]`` that shrink towards ``anchor`` (clamped into the range).

    Hypothesis shrinks integers towards 0; drawing the offset from the anchor moves
    the shrink target to a round, readable value such as a default.
    """
    a = min(max(anchor, lo), hi)
    return st.integers(lo - a, hi - a).map(lambda d: a + d)
