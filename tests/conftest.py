"""Hypothesis profiles, and the ``rl`` extra's tests, for the project's own test suite.

Hypothesis profiles, chosen by HYPOTHESIS_PROFILE:

- ``dev`` (default): fast, random, example database on disk.
- ``ci``: derandomized (same examples every run, deterministic under pytest-xdist),
  no deadline. Hypothesis would load its own ``ci`` profile when it detects CI; we
  register ours under the same name so the choice is deliberate and visible here.
- ``thorough``: nightly, 20x the examples.

Tests that need the ``rl`` extra (torch, stable-baselines3, sb3-contrib) are marked
``requires_rl``: a test with the decorator, a whole module with a line
``pytestmark = pytest.mark.requires_rl`` (or a list naming it; such a module is then not even imported
without the extra, since it imports torch at the top). On an interpreter without the
extra (torch has no CPU wheel here for 3.12+), ``pytest --without-rl`` deselects them
and lists every one at the end of the run; without the option, each of them fails
(or, for a whole module, errors at collection) saying what is missing: never a
silent skip.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from pathlib import Path
from typing import Any

import pytest
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

RL_PACKAGES = ("torch", "stable_baselines3", "sb3_contrib")
"""What the ``rl`` extra brings, by import name."""

_WHOLE_MODULE = re.compile(r"^pytestmark = .*\bpytest\.mark\.requires_rl\b", re.MULTILINE)
_LEFT_OUT = pytest.StashKey[list[str]]()
_OUTPUT_KEY = "tradeguard_without_rl"


@functools.cache
def rl_missing() -> tuple[str, ...]:
    """The ``rl`` extra's packages that this interpreter cannot import."""
    return tuple(name for name in RL_PACKAGES if importlib.util.find_spec(name) is None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--without-rl",
        action="store_true",
        help="deselect the tests marked requires_rl (they need the rl extra: torch, "
        "stable-baselines3, sb3-contrib) and list them at the end; for an interpreter "
        "without the extra",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_LEFT_OUT] = []
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_FromWorkers(config), "tradeguard-without-rl-workers")


def pytest_report_header(config: pytest.Config) -> str:
    missing = rl_missing()
    have = f"not installed ({', '.join(missing)} missing)" if missing else "installed"
    what = "deselected (--without-rl), listed at the end" if config.getoption("without_rl") else "run"
    return f"rl extra: {have}; tests marked requires_rl: {what}"


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A module marked requires_rl as a whole is not imported when it cannot or must not run."""
    config = parent.config
    if not (config.getoption("without_rl") or rl_missing()):
        return None
    if _WHOLE_MODULE.search(module_path.read_text(encoding="utf-8")) is None:
        return None
    left_out: pytest.Collector = _NotImported.from_parent(parent, path=module_path)
    return left_out


class _NotImported(pytest.File):
    """A test module that needs the rl extra, collected as nothing (and listed as left out)."""

    def collect(self) -> list[pytest.Item]:
        if not self.config.getoption("without_rl"):
            raise self.CollectError(f"{self.nodeid} {_missing_message()}")
        self.config.stash[_LEFT_OUT].append(f"{self.nodeid} (the whole module)")
        return []


@pytest.hookimpl(trylast=True)  # after -m and -k: only what they selected counts
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("without_rl"):
        return
    needs_rl = [item for item in items if item.get_closest_marker("requires_rl") is not None]
    left_out = config.stash[_LEFT_OUT]
    if needs_rl:
        items[:] = [item for item in items if item.get_closest_marker("requires_rl") is None]
        config.hook.pytest_deselected(items=needs_rl)
        left_out.extend(item.nodeid for item in needs_rl)
    if hasattr(config, "workeroutput"):  # an xdist worker: tell the controller
        config.workeroutput[_OUTPUT_KEY] = list(left_out)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("requires_rl") is not None and rl_missing():
        pytest.fail(_missing_message(), pytrace=False)


def _missing_message() -> str:
    return (
        f"needs the rl extra, and {', '.join(rl_missing())} cannot be imported here: install it "
        "(torch==2.13.0 first, then pip install -e '.[rl]'), or run pytest --without-rl to "
        "deselect the tests marked requires_rl (they are listed at the end of the run)."
    )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not config.getoption("without_rl") or hasattr(config, "workeroutput"):
        return
    left_out = sorted(set(config.stash[_LEFT_OUT]))
    terminalreporter.write_sep(
        "=", f"--without-rl deselected {len(left_out)} tests and modules marked requires_rl"
    )
    terminalreporter.write_line(
        "They need the rl extra (torch, stable-baselines3, sb3-contrib); run them where it is installed:"
    )
    for line in left_out:
        terminalreporter.write_line(f"  {line}")


class _FromWorkers:
    """Under pytest-xdist the workers collect: gather what each one left out."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        self.config.stash[_LEFT_OUT].extend(output.get(_OUTPUT_KEY, []))
