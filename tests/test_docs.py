"""Every example in the public docstrings runs and prints what it says (doctest)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import RL_PACKAGES
from hypothesis import Phase, settings

import tradeguard
import tradeguard._cli
import tradeguard.env
import tradeguard.invariants
import tradeguard.mutate
import tradeguard.strategies

# No explain phase: examples call hypothesis.find(), whose result is the example itself; the
# explanation of a failure (which arguments could vary) is never shown, and it cost 20 s of
# CPU in strategies._episodes' find() alone (45 s -> 3 s wall there).
settings.register_profile(
    "doctest",
    parent=settings.get_profile("ci"),
    database=None,
    phases=tuple(phase for phase in Phase if phase is not Phase.explain),
)


def _all_modules() -> Iterator[str]:
    yield "tradeguard.trace"
    yield "tradeguard._episode"
    for pkg in (tradeguard.env, tradeguard.invariants, tradeguard.strategies, tradeguard.mutate, tradeguard._cli):
        yield pkg.__name__
        for info in pkgutil.iter_modules(pkg.__path__):
            yield f"{pkg.__name__}.{info.name}"


def _modules() -> list[Any]:
    """The modules that have docstring examples (a module without any is not a test).

    A module that imports the ``rl`` extra cannot be looked into without it: it is a
    test marked ``requires_rl`` (``--without-rl`` deselects and lists it).
    """
    finder = doctest.DocTestFinder()
    found: list[Any] = []
    for name in sorted(set(_all_modules())):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").partition(".")[0] not in RL_PACKAGES:
                raise
            found.append(pytest.param(name, marks=pytest.mark.requires_rl, id=name))
            continue
        if any(t.examples for t in finder.find(module)):
            found.append(name)
    return found


@pytest.fixture
def no_example_database() -> Iterator[None]:
    # Docstring examples call hypothesis.find(); a database left by an earlier run
    # must not change what they print.
    previous = settings.get_current_profile_name()
    settings.load_profile("doctest")
    try:
        yield
    finally:
        settings.load_profile(previous)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name: str, no_example_database: None) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True
    )
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
