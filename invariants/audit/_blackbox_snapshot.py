"""Whether the black-box search may step snapshots of an env instead of replaying it: proven per env.

The search walks a tree of action sequences. Replaying each from the reset costs about
``H * b ** H`` steps at horizon ``H`` with ``b`` actions; stepping a copy of the env at each
node costs about one step and one copy per edge, and nodes whose snapshots are equal are
searched once. A snapshot is the pickle of the env, its adapter and the action mask
(:meth:`._blackbox_tree._Driver.freeze`), and a copy is thawed from it. A copy is only as
good as the pickle: an env that keeps state outside itself (a module global, a shared
generator, a file, a clock) or that cannot be pickled at all would make the copies lie. So before the
audit trusts copies on an env, :func:`prove_snapshots` checks them on the first market: for
a sample of action sequences it snapshots the env part-way, plays a *different* branch on
the original (which advances any state the copy does not own), then plays the rest of the
sequence on the snapshot, and requires every step's observation, reward, end flags, record,
equity and declared state to be bit-identical to a fresh replay from the reset. Any
difference, or any error while copying or stepping a copy, and the audit replays instead,
saying why.
"""

from __future__ import annotations

import dataclasses
import math
import random
import struct
import time
from typing import Any

from tradeguard.invariants.audit._blackbox_tree import _Driver, _State

__all__ = ["SNAPSHOT_SAMPLES", "prove_snapshots"]

SNAPSHOT_SAMPLES = 12
"""Action sequences the proof plays both ways on the first market."""

_Trace = list[tuple[Any, ...]]


def prove_snapshots(
    driver: _Driver,
    seed: int | None,
    options: dict[str, Any] | None,
    horizon: int,
    *,
    samples: int = SNAPSHOT_SAMPLES,
) -> tuple[bool, str]:
    """Check that restored snapshots of the env replay bit-identically, on one market.

    Args:
        driver: The env (and adapter) under audit.
        seed: The market's reset seed.
        options: Its reset options (the injected market).
        horizon: Steps per sequence.
        samples: Sequences to check (the first plays every action in turn, the rest are random,
            from a generator seeded with 0, so the proof is the same on every run).

    Returns:
        ``(True, "")`` when every sample agreed, else ``(False, why)``.
    """
    n = driver.n_actions
    rng = random.Random(0)
    plans: list[tuple[list[int], int, list[int]]] = []
    for i in range(samples):
        seq = [(t + i) % n for t in range(horizon)] if i < 2 else [rng.randrange(n) for _ in range(horizon)]
        branch = i % horizon if i < 2 else rng.randrange(horizon)
        other = [(a + 1 + rng.randrange(max(1, n - 1))) % n for a in seq[branch:]]
        plans.append((seq, branch, other))
    replay_s = snap_s = 0.0
    replays = snaps = steps = 0
    for seq, branch, other in plans:
        t0 = time.perf_counter()
        fresh = _play(driver, driver.root_state_uncopied(seed, options), seq)
        replay_s += time.perf_counter() - t0
        replays += 1
        steps += len(fresh)
        try:
            state = driver.root_state(seed, options)
            got, state, ended = _play_n(driver, state, seq[:branch], 0)
            if not ended:
                t0 = time.perf_counter()
                snap = driver.thaw(driver.freeze(state))
                snap_s += time.perf_counter() - t0
                snaps += 1
                _play_n(driver, state, other, branch)  # the original goes another way first
                rest, _, _ = _play_n(driver, snap, seq[branch:], branch)
                got += rest
        except Exception as exc:  # any failure of a copy means: do not trust copies
            return False, (
                f"the env (or its adapter) could not be stepped from a snapshot ({type(exc).__name__}: {exc}); "
                "every sequence is replayed from the reset instead"
            )
        diff = _first_difference(fresh, got)
        if diff is not None:
            return False, (
                f"a snapshot of the env did not replay like the env itself: the actions {seq[: diff[0] + 1]}, "
                f"restored from a snapshot after {branch} steps, gave a different {diff[1]} at step {diff[0]} than "
                "a replay from the reset (the env keeps state its pickle does not hold: a global, a shared generator, "
                "a file); every sequence is replayed from the reset instead"
            )
    driver.snapshot_cost = snap_s / max(1, snaps)
    driver.step_cost = replay_s / max(1, steps)
    driver.replay_cost = replay_s / max(1, replays) * horizon / max(1.0, steps / max(1, replays))
    return True, ""


def _play(driver: _Driver, state: _State, seq: list[int]) -> _Trace:
    out, _, _ = _play_n(driver, state, seq, 0)
    return out


def _play_n(driver: _Driver, state: _State, seq: list[int], t0: int) -> tuple[_Trace, _State, bool]:
    out: _Trace = []
    for i, a in enumerate(seq):
        s = driver.step(state, t0 + i, a, keys=True)
        state = s.state
        out.append((s.obs, s.reward, s.ended, s.record, s.equity, s.key))
        if s.ended:
            return out, state, True
    return out, state, False


_FIELDS = ("observation", "reward", "end of episode", "record", "equity", "declared state")


def _first_difference(a: _Trace, b: _Trace) -> tuple[int, str] | None:
    for t, (x, y) in enumerate(zip(a, b, strict=False)):
        for name, u, v in zip(_FIELDS, x, y, strict=True):
            if not same(u, v):
                return t, name
    if len(a) != len(b):
        return min(len(a), len(b)), "episode length"
    return None


def same(a: Any, b: Any) -> bool:
    """Bit-identical: the same types, shapes, dtypes and bits (floats by their bytes, so ``-0.0``
    differs from ``0.0`` and a NaN equals the same NaN), recursively through containers and
    dataclasses.

    >>> same([1.0, float("nan")], [1.0, float("nan")]), same(0.0, -0.0)
    (True, False)
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if hasattr(a, "dtype") and hasattr(a, "tobytes") and hasattr(a, "shape"):
        return bool(a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes())
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    try:
        return bool(a == b)
    except Exception:  # an object whose == is not a truth value: compare its text
        return repr(a) == repr(b)
