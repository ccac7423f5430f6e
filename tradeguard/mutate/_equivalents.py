"""The equivalents file: mutants shown equivalent to the original code, each with its reason.

Format: one mutant per line: its id (12 hex digits, as ``tradeguard mutate`` prints it),
white space, then the reason, which is required and runs to the end of the line. A line
starting with ``#`` is a comment (a good place for the mutant's location and change);
blank lines are ignored::

    # env/_rules.py:238:23  8 -> 9
    3f2a9c1b7d04  range(9) adds a 9th table row that signature() (at most 7) never looks up
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tradeguard.errors import InvalidConfig

__all__ = ["Equivalent", "load_equivalents", "parse_equivalents"]

_ID = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Equivalent:
    """A mutant the user has shown to be equivalent.

    Attributes:
        id: The mutant's id.
        reason: Why it cannot change behaviour (printed with the mutant in every report).
        line: Where it is listed in the file (1-based).
    """

    id: str
    reason: str
    line: int


def load_equivalents(path: str) -> dict[str, Equivalent]:
    """Read an equivalents file (see the module docstring for the format).

    Raises:
        InvalidConfig: the file is missing, unreadable, or a line is not ``ID REASON``.
    """
    p = Path(path)
    if p.is_dir():
        raise InvalidConfig(f"--equivalent {path!r} is a directory; expected a text file of 'ID  REASON' lines.")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidConfig(
            f"--equivalent {path!r} does not exist; expected a text file of 'ID  REASON' lines "
            "(see docs/mutate.md). Create it, or leave --equivalent out."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidConfig(f"--equivalent {path!r} cannot be read: {exc}.") from None
    return parse_equivalents(text, where=path)


def parse_equivalents(text: str, *, where: str = "<equivalents>") -> dict[str, Equivalent]:
    """Parse the text of an equivalents file: ``{id: Equivalent}``.

    Example:
        >>> parse_equivalents("# ok\\n3f2a9c1b7d04  the table has 8 rows\\n")["3f2a9c1b7d04"].reason
        'the table has 8 rows'
    """
    found: dict[str, Equivalent] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head, *rest = line.split(None, 1)
        reason = rest[0].strip() if rest else ""
        if not _ID.fullmatch(head):
            raise InvalidConfig(
                f"{where}:{number}: {head!r} is not a mutant id; expected 12 hex digits as tradeguard "
                f"mutate prints them (e.g. 3f2a9c1b7d04), then the reason. Line: {raw.strip()!r}"
            )
        if not reason:
            raise InvalidConfig(
                f"{where}:{number}: mutant {head} has no reason; every equivalent mutant needs one "
                "(why can it not change behaviour?), written after the id on the same line."
            )
        if head in found:
            raise InvalidConfig(
                f"{where}:{number}: mutant {head} is listed twice (first at line {found[head].line}); "
                "keep one line per mutant."
            )
        found[head] = Equivalent(id=head, reason=reason, line=number)
    return found
