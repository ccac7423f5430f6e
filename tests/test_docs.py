"""Every example in the public docstrings runs and prints what it says (doctest)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from collections.abc import Iterator

import pytest
from hypothesis import settings

import tradeguard
import tradeguard._cli
import tradeguard.env
import tradeguard.invariants
import tradeguard.strategies

settings.register_profile("doctest", parent=settings.get_profile("ci"), database=None)


def _all_modules() -> Iterator[str]:
    yield "tradeguard.trace"
    yield "tradeguard._episode"
    for pkg in (tradeguard.env, tradeguard.invariants, tradeguard.strategies, tradeguard._cli):
        yield pkg.__name__
        for info in pkgutil.iter_modules(pkg.__path__):
            yield f"{pkg.__name__}.{info.name}"


def _modules() -> list[str]:
    """The modules that have docstring examples (a module without any is not a test)."""
    finder = doctest.DocTestFinder()
    return sorted(
        name
        for name in set(_all_modules())
        if any(t.examples for t in finder.find(importlib.import_module(name)))
    )


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
