"""The cores this process may use: what ``tradeguard mutate --jobs`` defaults to.

A module of its own so that building the CLI's parser (every command's) does not import
``tradeguard.mutate`` for one default.
"""

from __future__ import annotations

import os

__all__ = ["default_jobs"]


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
