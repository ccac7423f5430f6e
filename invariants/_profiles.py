"""Gate profiles: how hard ``tradeguard check`` and the pytest plugin search.

Chosen by ``--tradeguard-profile`` (pytest), ``--profile`` (CLI) or the
``TRADEGUARD_PROFILE`` environment variable; the default is ``ci`` when the ``CI``
environment variable is set, else ``fast``.

Hypothesis loads its own ``ci`` settings profile by itself when it detects CI
(derandomized, no example database). The gate does not rely on it: every search
passes its settings explicitly. In CI the gate is deterministic (a fixed seed: the
same examples on every run, so a red build is never a fluke of the draw) and still
keeps an example database, so a failure found once is replayed first next time
(point ``TRADEGUARD_DATABASE`` at a shared Redis to share them across runners).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tradeguard._validation import suggest
from tradeguard.errors import InvalidConfig

__all__ = ["PROFILES", "GateProfile", "default_profile_name", "get_profile"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GateProfile:
    """How much the gate searches.

    Attributes:
        name: Profile name.
        examples: Episodes tried per invariant.
        max_steps: Longest generated action sequence (and episode length of the built-in env).
        seed: Search seed; ``None`` explores anew every run.
    """

    name: str
    examples: int
    max_steps: int
    seed: int | None


PROFILES: dict[str, GateProfile] = {
    "fast": GateProfile(name="fast", examples=25, max_steps=20, seed=None),
    "ci": GateProfile(name="ci", examples=100, max_steps=30, seed=0),
    "thorough": GateProfile(name="thorough", examples=1000, max_steps=60, seed=None),
}


def default_profile_name() -> str:
    """``TRADEGUARD_PROFILE`` if set, else ``ci`` under CI, else ``fast``."""
    return os.environ.get("TRADEGUARD_PROFILE") or ("ci" if os.environ.get("CI") else "fast")


def get_profile(name: str | None = None) -> GateProfile:
    """The profile called ``name`` (default: :func:`default_profile_name`)."""
    name = name or default_profile_name()
    try:
        return PROFILES[name]
    except KeyError:
        raise InvalidConfig(
            f"profile={name!r}; expected one of {', '.join(PROFILES)}.{suggest(name, PROFILES)}"
        ) from None
