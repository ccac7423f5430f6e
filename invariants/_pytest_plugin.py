"""pytest plugin (entry point ``tradeguard``): the catalog as parametrized tests for your env.

In your own test module, five lines or fewer::

    from tradeguard.invariants import invariant_suite
    from my_project import MyTradingEnv, MyAdapter

    test_my_env = invariant_suite(lambda: MyTradingEnv(), adapter=MyAdapter())

pytest then collects one test per invariant (``test_my_env[no-sell-without-position]``
...). Options: ``--tradeguard-profile fast|ci|thorough`` (or ``TRADEGUARD_PROFILE``),
``--tradeguard-seed N`` (a failure says the seed it was found with, and the command that
replays it), ``--tradeguard-database DIR|none|redis://host:port/db`` (or
``TRADEGUARD_DATABASE``; a Redis shares failures across a team's machines, see docs/ci.md).
"""

from __future__ import annotations

import os
import random
import shlex
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from tradeguard.errors import InvariantViolation
from tradeguard.invariants._adapter import TraceAdapter
from tradeguard.invariants._catalog import invariant_ids
from tradeguard.invariants._profiles import PROFILES, get_profile

__all__ = ["invariant_suite", "pytest_addoption"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tradeguard", "tradeguard invariant gate")
    group.addoption(
        "--tradeguard-profile",
        choices=sorted(PROFILES),
        default=None,
        help="how hard invariant_suite() searches: fast (25 examples), ci (100, fixed seed), "
        "thorough (1000). Default: $TRADEGUARD_PROFILE, else ci under CI, else fast.",
    )
    group.addoption("--tradeguard-seed", type=int, default=None, help="search seed (default: the profile's; fast and thorough draw a fresh one, "
        "which a failure reports with the command that replays it)")
    group.addoption(
        "--tradeguard-database",
        default=None,
        help="where failing examples are saved and replayed first: a directory, none, or a shared "
        "redis://[:password@]host:port/db (add ?readonly=true to read it without writing; see docs/ci.md). "
        "Default: $TRADEGUARD_DATABASE, else .hypothesis/tradeguard",
    )


def invariant_suite(
    make_env: Callable[[], Any],
    *,
    adapter: TraceAdapter | None = None,
    only: Iterable[str] | None = None,
    name: str | None = None,
    settings: Any = None,
    reference: Any = None,
) -> Callable[..., None]:
    """A pytest test function, parametrized over the catalog, that checks ``make_env()``'s env.

    Assign it to a ``test_*`` name in a test module; each invariant becomes one test,
    which fails with the shrunk counterexample and the ledger lines around it.
    ``settings`` (a Hypothesis strategy of ``make_env``'s keyword arguments, or
    ``"adapter"``) turns settings fuzzing on, as in ``check_trading_env``; ``reference`` (a
    factory called like ``make_env``, or ``"adapter"``) is the env ``matches-reference`` compares
    with. Without a reference, ``matches-reference`` is left out (unless named in ``only``).
    """
    from tradeguard.invariants._reference import REFERENCE_INVARIANT, check_reference_spec
    from tradeguard.invariants._settings import check_settings_spec

    check_settings_spec(settings)
    check_reference_spec(reference)
    every = invariant_ids() if reference is not None else tuple(i for i in invariant_ids() if i != REFERENCE_INVARIANT)
    ids = tuple(only) if only is not None else every

    @pytest.mark.parametrize("invariant_id", ids)
    def test_invariant(invariant_id: str, request: pytest.FixtureRequest) -> None:
        # pytest shows the user's test id and the violation, not this function's code
        __tracebackhide__ = True
        from tradeguard.invariants._database import resolve_database
        from tradeguard.invariants._gate import check_trading_env

        config = request.config
        profile = get_profile(config.getoption("--tradeguard-profile"))
        seed = config.getoption("--tradeguard-seed")
        if seed is None:
            seed = profile.seed
        if seed is None:
            # A profile that explores anew (fast, thorough) still searches with a known seed,
            # drawn here (never from the global generators), so that a failure can be replayed.
            seed = random.SystemRandom().randrange(2**32)
        database = resolve_database(
            config.getoption("--tradeguard-database") or os.environ.get("TRADEGUARD_DATABASE")
        )
        report = check_trading_env(
            make_env,
            adapter=adapter,
            examples=profile.examples,
            max_steps=profile.max_steps,
            seed=seed,
            only=[invariant_id],
            database=database,
            name=name,
            **({"settings": settings} if settings is not None else {}),
            **({"reference": reference} if reference is not None else {}),
        )
        result = report.results[0]
        if result.status == "not-applicable":
            pytest.skip(f"{invariant_id} is not applicable: {result.note}")
        if result.status == "warn":  # a warning-level invariant: shown in pytest's warnings summary, not failed
            warnings.warn(f"{invariant_id}: {result.violations[0].message}", UserWarning, stacklevel=2)
        if not report.passed:
            raise InvariantViolation(
                f"{report.format()}\n\nsearch seed {seed} (profile {profile.name}); reproduce with: "
                f"pytest {shlex.quote(request.node.nodeid)} --tradeguard-profile {profile.name} "
                f"--tradeguard-seed {seed}"
            )

    return test_invariant
