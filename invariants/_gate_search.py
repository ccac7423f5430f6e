"""The gate's search: the episodes Hypothesis draws, and a seeded search that keeps its database.

:func:`_find` is the gate's ``hypothesis.find``: reproducible for a seed, failures saved
in the example database under the gate's own key and replayed first on the next run.
"""

from __future__ import annotations

import unittest
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import hypothesis
from hypothesis import given
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.database import ExampleDatabase
from hypothesis.errors import Flaky

from tradeguard.invariants._gate_markets import hold_flat
from tradeguard.invariants._spaces import ActionDriver

__all__ = ["KeyedDatabase"]


@dataclass(frozen=True, slots=True)
class _Example:
    kind: str  # "plain" | "masked"
    actions: tuple[Any, ...]
    market: Any
    seed: int
    settings: Any = None  # the env factory's keyword arguments drawn for it (None: no settings drawn)
    spare: int = 0  # prices the injected market has beyond what the episode needs (a random start's room)


def _examples_strategy(n_actions: int, max_steps: int, masked: bool, market_length: int | None,
                       driver: ActionDriver | None = None,
                       kinds: tuple[str, ...] | None = None, spare: int = 0) -> st.SearchStrategy[_Example]:
    from tradeguard.strategies import action_plans, action_sequences, markets

    plain: st.SearchStrategy[tuple[str, tuple[Any, ...]]]
    if driver is not None and driver.kind != "discrete":  # Box, MultiDiscrete: members of the space
        plain = driver.sequences(max_steps).map(lambda a: ("plain", a))
    else:
        plain = st.one_of(
            action_sequences(max_size=max_steps, n_actions=n_actions),
            action_sequences(max_size=max_steps, n_actions=n_actions, style="sticky"),
            *(
                [action_sequences(max_size=max_steps, n_actions=n_actions, style="invalid-biased")]
                if n_actions == 7
                else []
            ),
        ).map(lambda a: ("plain", tuple(a)))
    sources = [plain]
    if masked:
        sources.append(action_plans(max_size=max_steps, n_actions=n_actions).map(lambda p: ("masked", tuple(p))))
    # Markets are drawn short and held flat after their last price, so that a shrunk
    # counterexample's prices move where its actions are, not at the end of the episode.
    market_s: st.SearchStrategy[Any] = (
        st.none()
        if market_length is None
        else markets(min_length=2, max_length=market_length, **({"kinds": kinds} if kinds else {}))  # type: ignore[arg-type]
        .map(lambda m: hold_flat(m, market_length))
    )
    # An env that starts its episodes at a point of a longer market it chooses (the adapter's
    # market_spare) gets markets up to that many prices longer: none (what it shrinks to), one (two
    # possible starts), the most, or any in between.
    spare_s = st.just(0) if spare == 0 or market_length is None else st.one_of(
        st.just(0), st.sampled_from(sorted({1, spare})), st.integers(0, spare))
    return st.builds(
        lambda src, m, s, extra: _Example(src[0], src[1], m, s, spare=extra),
        st.one_of(sources),
        market_s,
        st.integers(0, 2**16),
        spare_s,
    )


class _Found(Exception):
    pass


def _find(
    strategy: st.SearchStrategy[_Example],
    condition: Callable[[_Example], bool],
    *,
    settings: Settings,
    seed: int | None,
    database_key: bytes,
) -> _Example | None:
    """``hypothesis.find`` that is seeded *and* keeps its example database, under ``database_key``.

    ``find(random=...)`` applies ``@seed``, and ``@seed`` switches the database off; a gate
    needs both: the same search for the same seed, and failures saved to be replayed first
    on the next run. So the search is a ``@given`` test, reproducible by ``@seed``, and the
    ``@settings`` applied after it put the gate's database back, seen through a
    :class:`KeyedDatabase` that files the examples under the gate's own key. Public API only
    (tests/test_gate.py checks that a saved failure is still replayed first).
    """
    last: list[_Example] = []

    def test(example: _Example) -> None:
        if condition(example):
            last[:] = [example]
            raise _Found

    runner = given(strategy)(test)
    if seed is not None:
        runner = hypothesis.seed(seed)(runner)
    db = settings.database
    keyed = None if db is None else KeyedDatabase(db, database_key)
    runner = Settings(settings, report_multiple_bugs=False, database=keyed)(runner)
    try:
        runner()
    except _Found:
        return last[0]
    except unittest.SkipTest:  # replay-only with nothing saved: nothing to run
        return None
    except Flaky:
        # The condition held for an example once and not when Hypothesis ran it again (an env
        # that draws from a generator its seed does not reset): the example that failed stands.
        return last[0] if last else None
    return None


class KeyedDatabase(ExampleDatabase):
    """One search's view of an example database: its examples filed under a key of the gate's.

    Hypothesis files a ``@given`` test's examples under a key it derives from the test
    function, ``K``, and the sub-keys ``K.secondary`` and ``K.pareto``. Every search of the
    gate runs the same function, so each sees the database through this view, which files
    ``K`` as ``key`` and ``K.<sub>`` as ``key.<sub>``. The gate's keys,
    ``tradeguard:<env>:<invariant>:<max_steps>``, are the same on every machine and every
    version of tradeguard, so a database a team shares replays across them.

    Args:
        db: The database the examples are kept in.
        key: Where this search's examples go.

    Raises:
        RuntimeError: (from any method) Hypothesis used two keys the view cannot tell apart
            as one key and its sub-keys: a release that files examples differently.

    Example:
        >>> from hypothesis.database import InMemoryExampleDatabase
        >>> db = InMemoryExampleDatabase()
        >>> view = KeyedDatabase(db, b"tradeguard:env:inv:30")
        >>> view.save(b"K", b"x"); view.save(b"K.secondary", b"y")
        >>> sorted(db.data)
        [b'tradeguard:env:inv:30', b'tradeguard:env:inv:30.secondary']
    """

    SUB_KEYS = (b".secondary", b".pareto")
    """Hypothesis' sub-keys of a test's key (``ConjectureRunner.sub_key``)."""

    def __init__(self, db: ExampleDatabase, key: bytes) -> None:
        super().__init__()
        self.db = db
        self.key = key
        self._theirs: bytes | None = None

    def _mapped(self, key: bytes) -> bytes:
        base, sub = key, b""
        for suffix in self.SUB_KEYS:
            if key.endswith(suffix):
                base, sub = key[: -len(suffix)], suffix
                break
        if self._theirs is None:
            self._theirs = base
        elif base != self._theirs:
            raise RuntimeError(
                f"Hypothesis used the database keys {self._theirs!r} and {key!r} in one search; the gate "
                f"files examples under one key and its sub-keys {self.SUB_KEYS!r}. This Hypothesis release "
                "files examples differently: please report it to tradeguard."
            )
        return self.key + sub

    def save(self, key: bytes, value: bytes) -> None:
        self.db.save(self._mapped(key), value)

    def fetch(self, key: bytes) -> Iterable[bytes]:
        return self.db.fetch(self._mapped(key))

    def delete(self, key: bytes, value: bytes) -> None:
        self.db.delete(self._mapped(key), value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self.db.move(self._mapped(src), self._mapped(dest), value)
