"""The reward audit's search: Hypothesis generates markets, steered towards each finding's worst case.

:func:`_explore` runs the search, one Hypothesis test over (market, reward) examples
analysed by the :class:`~tradeguard.invariants.audit._reward_analysis._Auditor`;
``hypothesis.target`` pushes every kind's score up, and with ``hunt`` the first market
where one kind fires is shrunk to a minimal one.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tradeguard.env import (
    EnvConfig,
    RewardConfig,
)
from tradeguard.invariants.audit._reward_analysis import _Auditor
from tradeguard.invariants.audit._reward_report import _CHANGED, _ORACLE_KINDS

__all__: list[str] = []


# ----------------------------------------------------------------------------- search


class _Found(Exception):
    """Raised inside the Hypothesis test when the hunted kind fires (a failure to shrink)."""

    def __init__(self, analysis: Any) -> None:
        super().__init__("finding")
        self.analysis = analysis


class _OutOfBudget(BaseException):
    """The time budget is spent: stop the Hypothesis run at once (not a test failure)."""


@dataclass(slots=True)
class _Setup:
    env: EnvConfig
    reward: RewardConfig
    start: int
    h_min: int
    h_max: int
    max_move_bps: int
    fuzz: dict[str, tuple[float, float]] | None
    seed: int | None


def _prices(start: int, moves: Sequence[int]) -> tuple[int, ...]:
    out = [start]
    for m in moves:
        out.append(max(1, round(out[-1] * (10_000 + m) / 10_000)))
    return tuple(out)


def _strategy(setup: _Setup) -> Any:
    from hypothesis import strategies as st

    moves = st.lists(
        st.integers(-setup.max_move_bps, setup.max_move_bps),
        min_size=setup.h_min,
        max_size=setup.h_max,
    )
    if not setup.fuzz:
        return st.tuples(moves, st.just(()))
    fields = st.tuples(
        *[
            st.tuples(st.just(name), st.floats(lo, hi, allow_nan=False, allow_infinity=False))
            for name, (lo, hi) in setup.fuzz.items()
        ]
    )
    return st.tuples(moves, fields)


def _run(
    setup: _Setup,
    max_examples: int,
    body: Callable[[tuple[int, ...], RewardConfig], None],
) -> None:
    """Run ``body`` over generated (prices, reward) examples as a Hypothesis test."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hyp_seed

    base = setup.reward

    @settings(
        parent=settings.get_profile("default"),
        database=None,
        max_examples=max_examples,
        deadline=None,
        derandomize=False,
        phases=(Phase.generate, Phase.target, Phase.shrink),
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )
    @given(_strategy(setup))
    def probe(example: tuple[list[int], tuple[tuple[str, float], ...]]) -> None:
        moves, overrides = example
        if overrides:
            with warnings.catch_warnings():
                # The user chose the range; a positive penalty is reported as a finding.
                warnings.simplefilter("ignore", UserWarning)
                changes: dict[str, Any] = dict(overrides)
                reward = dataclasses.replace(base, **changes)
        else:
            reward = base
        body(_prices(setup.start, moves), reward)

    test = hyp_seed(setup.seed)(probe) if setup.seed is not None else probe
    test()


def _explore(
    setup: _Setup,
    auditor: _Auditor,
    max_examples: int,
    baseline: RewardConfig | None,
    hunt: str | None = None,
    visited: list[tuple[RewardConfig, tuple[int, ...]]] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Any:
    """Generate and analyse markets, steering towards every kind's worst case.

    With ``hunt``, the run is the same (same seed, same targets, cached analyses) up to
    the first market where ``hunt`` fires; that market is then shrunk by Hypothesis and
    its analysis returned (``None`` if it never fires). ``progress(done, max_examples,
    "searching markets")`` is called after each market analysed.
    """
    from hypothesis import target

    last: list[Any] = []
    analysed = 0

    def body(prices: tuple[int, ...], reward: RewardConfig) -> None:
        nonlocal analysed
        a = auditor.analyse(reward, prices)
        if a is None:
            raise _OutOfBudget
        analysed += 1
        if progress is not None:
            progress(min(analysed, max_examples), max_examples, "searching markets")
        if visited is not None:
            visited.append((reward, prices))
        b = None
        if baseline is not None:
            b = auditor.analyse(baseline, prices)
            if b is None:
                raise _OutOfBudget
            target(float(a.shaped.predicted != b.shaped.predicted), label=_CHANGED)
        for kind in _ORACLE_KINDS:
            target(_finite(a.scores[kind]), label=kind)
        if hunt == _CHANGED:
            if a.shaped.predicted != b.shaped.predicted:  # type: ignore[union-attr]
                last[:] = [(a, b)]
                raise _Found((a, b))
        elif hunt is not None and hunt in a.fired:
            # The shrinker only tries smaller markets, so the latest failure is the smallest.
            last[:] = [a]
            raise _Found(a)

    try:
        _run(setup, max_examples, body)
    except _Found as exc:
        return exc.analysis
    except _OutOfBudget:
        return last[0] if last else None
    return None


def _finite(x: float) -> float:
    if math.isnan(x):
        return 0.0
    return max(-1e12, min(1e12, x))
