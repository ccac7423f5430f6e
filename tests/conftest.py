"""Hypothesis profiles for the project's own tests, chosen by HYPOTHESIS_PROFILE.

- ``dev`` (default): fast, random, example database on disk.
- ``ci``: derandomized (same examples every run, deterministic under pytest-xdist),
  no deadline. Hypothesis would load its own ``ci`` profile when it detects CI; we
  register ours under the same name so the choice is deliberate and visible here.
- ``thorough``: nightly, 20x the examples.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
