"""The black-box reward audit's search: an env replayed from its reset, and the tree of action sequences.

:class:`_Driver` resets the env and replays a prefix of actions through the adapter;
:class:`_Tree` holds one market's sequences and finds the optima (exhaustive, memoized over
the adapter's ``state_key``, or a beam). The audit itself is :mod:`._blackbox`.
"""

from __future__ import annotations

import io
import itertools
import math
import pickle
import time
import types
import warnings
import weakref
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from tradeguard.errors import InvalidConfig
from tradeguard.invariants._adapter import (
    NativeAdapter,
    StepData,
    TraceAdapter,
    checked_record,
    env_mask,
)
from tradeguard.trace import StepRecord, TraceMeta

__all__ = ["DEFAULT_BEAM_WIDTH", "DEFAULT_HORIZON", "DEFAULT_MAX_SEQUENCES", "EnvRollout"]

DEFAULT_MAX_SEQUENCES = 20_000
"""Exhaustive search up to this many sequences per market (``actions ** horizon``)."""

DEFAULT_BEAM_WIDTH = 64
"""Prefixes the guided search keeps per step and objective."""

DEFAULT_HORIZON = 8
"""Steps searched per market, by default."""

_TIE = 1e-9
_HOLD_KIND = "hold"
_MAX_KEY_CHECKS = 64


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class _Child:
    """One step from a node: the action, what the adapter recorded, and where it leads."""

    action: int
    record: StepRecord
    reward: float
    rejected: bool
    ended: bool
    equity: float | None
    key: Hashable | None


@dataclass(frozen=True, slots=True)
class EnvRollout:
    """One action sequence replayed in the env: what it predicted, executed, earned and made.

    Attributes:
        actions: The predicted action ids.
        names: Their names (from the adapter's ``TraceMeta``).
        records: The adapter's record of each step.
        initial_equity: The account's value before the first step (``None``: not supplied).
        final_equity: Its value after the last step (``None``: not supplied).
        hold: The id of the env's HOLD action (``None``: it has none).
    """

    actions: tuple[int, ...]
    names: tuple[str, ...]
    records: tuple[StepRecord, ...]
    initial_equity: float | None
    final_equity: float | None
    hold: int | None = None
    kinds: tuple[str, ...] = ()

    @property
    def horizon(self) -> int:
        """Steps played."""
        return len(self.actions)

    @property
    def rewards(self) -> tuple[float, ...]:
        """The env's reward at each step."""
        return tuple(r.reward for r in self.records)

    @property
    def shaped_return(self) -> float:
        """The sum of the rewards (what an agent maximizes)."""
        return float(sum(self.rewards))

    @property
    def pnl(self) -> float:
        """Final minus initial equity (``nan`` when the adapter supplies no equity)."""
        if self.initial_equity is None or self.final_equity is None:
            return math.nan
        return self.final_equity - self.initial_equity

    @property
    def pnl_percent(self) -> float:
        """PnL in percent of the initial equity."""
        if self.initial_equity is None or not self.initial_equity:
            return math.nan
        return 100.0 * self.pnl / self.initial_equity

    @property
    def rejections(self) -> int:
        """Steps whose predicted action was rejected."""
        return sum(r.rejected for r in self.records)

    @property
    def trades(self) -> int:
        """Steps whose executed action trades (its kind is not ``hold``)."""
        return sum(self._kind(r.executed) != _HOLD_KIND for r in self.records)

    @property
    def opened(self) -> bool:
        """Whether some step opened a position from flat."""
        return any(self._kind(r.executed) in ("open", "buy") and r.position_before == 0 and r.position_after != 0 for r in self.records)

    @property
    def closed(self) -> bool:
        """Whether some trade brought the position to zero."""
        return any(
            self._kind(r.executed) != _HOLD_KIND and r.position_before != 0 and r.position_after == 0
            for r in self.records
        )

    @property
    def ends_in_position(self) -> bool:
        """Whether a position is open after the last step."""
        return bool(self.records) and self.records[-1].position_after != 0

    def _kind(self, action: int) -> str:
        return self.kinds[action] if 0 <= action < len(self.kinds) else _HOLD_KIND

    def labels(self) -> list[str]:
        """Each step as text: the action's name, with ``(rejected: REASON)`` when it was."""
        return [
            n if not r.rejected else f"{n} (rejected{': ' + r.reason if r.reason else ''})"
            for n, r in zip(self.names, self.records, strict=True)
        ]

    def summary(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "actions": list(self.actions),
            "names": list(self.names),
            "rejected": [r.reason if r.rejected else None for r in self.records],
            "rewards": [round(r.reward, 10) for r in self.records],
            "shaped_return": round(self.shaped_return, 10),
            "pnl": None if math.isnan(self.pnl) else self.pnl,
            "pnl_percent": None if math.isnan(self.pnl_percent) else round(self.pnl_percent, 10),
        }


# ----------------------------------------------------------------------------- the driver


class _Driver:
    """One env, reset and replayed: every prefix of actions from the same reset."""

    def __init__(
        self,
        make_env: Callable[[], Any],
        adapter: TraceAdapter,
        *,
        deadline: float,
    ) -> None:
        self.make_env = make_env
        self.adapter = adapter
        self.deadline = deadline
        with warnings.catch_warnings():  # an env that changes the warning filters at import
            self.env = make_env()
        self.steps = 0
        self.key_fn = getattr(adapter, "state_key", None)
        self.equity_fn = getattr(adapter, "equity", None)
        self._reset_args: tuple[int | None, dict[str, Any] | None] = (None, None)
        self.meta: TraceMeta | None = None
        self.n_actions = int(getattr(self.env.action_space, "n", 0))
        # The native adapter reads tradeguard's own records, which carry the mask: skip the
        # extra action_masks() call per step (a fifth of a replay's time).
        self.masks = not isinstance(adapter, NativeAdapter)
        # How the search steps: "snapshots" (deep copies of the env at each node of the action
        # tree) once proven on this env by prove_snapshots, else "replay" (every prefix from reset).
        self.stepping: str | None = None
        self.stepping_note = ""
        # Seconds measured by prove_snapshots: a snapshot (freeze and thaw), a step, a replayed sequence.
        self.snapshot_cost = self.step_cost = self.replay_cost = 0.0

    def reset(self, seed: int | None, options: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.adapter.begin(self.env, obs, info)
        self.meta = self.adapter.meta(self.env, seed=seed)
        return obs, info

    def replay(
        self, seed: int | None, options: dict[str, Any] | None, prefix: Sequence[int]
    ) -> tuple[list[StepRecord], list[float | None], bool, dict[str, Any]]:
        """Reset and play ``prefix``: its records, the equity after each step, whether it ended."""
        if time.perf_counter() > self.deadline:
            raise _OutOfBudget
        state = self.root_state_uncopied(seed, options)
        info: dict[str, Any] = {}
        records: list[StepRecord] = []
        equities: list[float | None] = []
        ended = False
        for t, a in enumerate(prefix):
            out = self.step(state, t, a)
            state, info = out.state, out.info
            records.append(out.record)
            equities.append(out.equity)
            if out.ended:
                ended = True
                break
        return records, equities, ended, info

    def step(self, state: _State, t: int, action: int, *, keys: bool = False) -> _Step:
        """Play ``action`` at step ``t`` on ``state`` (an env, its adapter and its action mask; the
        driver's own after a reset, or a snapshot's copy), which it changes: what the adapter recorded."""
        env, adapter, mask = state
        obs, reward, terminated, truncated, info = env.step(action)
        self.steps += 1
        rec = checked_record(adapter, adapter.record(env, StepData(t, action, obs, reward, terminated, truncated, info, mask)), t)
        if self.equity_from_records():
            equity = rec.equity_after
        elif self.equity_fn is not None:
            equity = float(self.equity_fn(env, info))
        else:
            equity = None
        key = self.key_fn(env) if keys and self.key_fn is not None else None
        # The mask the next step is played under, read now: nothing changes the env in between.
        nxt = env_mask(env, info) if self.masks else None
        return _Step(rec, equity, bool(terminated or truncated), key, obs, reward, info, (env, adapter, nxt))

    def root_state_uncopied(self, seed: int | None, options: dict[str, Any] | None) -> _State:
        """The driver's own env (and adapter) right after the reset, as a replay steps it."""
        _, info = self.reset(seed, options)
        return (self.env, self.adapter, env_mask(self.env, info) if self.masks else None)

    def root_state(self, seed: int | None, options: dict[str, Any] | None) -> _State:
        """A copy of the env (and its adapter, which keeps per-episode state) right after the reset."""
        return self.thaw(self.freeze(self.root_state_uncopied(seed, options)))

    def freeze(self, state: _State) -> bytes:
        """A snapshot of ``state``: its pickle, classes and functions by identity (so an env class
        defined in a test or a notebook needs no import path). Equal bytes, equal states."""
        buf = io.BytesIO()
        _Freezer(buf).dump(state)
        return buf.getvalue()

    def thaw(self, blob: bytes) -> _State:
        """A fresh copy of the state ``blob`` was frozen from."""
        state: _State = pickle.loads(blob)
        return state

    def equity_from_records(self) -> bool:
        """Whether equity is read from the records' ``equity_before``/``equity_after`` rather than
        from the adapter's ``equity(env, info)``. An adapter that has ``equity`` says with it what
        the env counts as money (e.g. the account as the env would settle it, exit fees paid);
        without it, the records' ledger. One source per audit, so that a PnL never subtracts one
        account's numbers from another's."""
        meta = self.meta
        return self.equity_fn is None and meta is not None and {"equity_before", "equity_after"} <= meta.supplies

    def initial_equity(self, seed: int | None, options: dict[str, Any] | None) -> float | None:
        """The equity before the first step from the adapter's ``equity(env, info)``; ``None`` when it
        has none (the caller then reads the first record's ``equity_before``, when supplied)."""
        _, info = self.reset(seed, options)
        if self.equity_fn is not None:
            return float(self.equity_fn(self.env, info))
        return None

    def key(self) -> Hashable | None:
        if self.key_fn is None:
            return None
        return self.key_fn(self.env)  # type: ignore[no-any-return]


_State = tuple[Any, TraceAdapter, tuple[bool, ...] | None]
"""An env, its adapter and the action mask its next step is played under: what that step needs."""

_BY_ID: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()


def _by_id(i: int) -> Any:
    return _BY_ID[i]


class _Freezer(pickle.Pickler):
    """Pickles classes and functions by identity (a live object of this process), the rest as usual."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (type, types.FunctionType)) and obj is not _by_id:
            _BY_ID[id(obj)] = obj
            return _by_id, (id(obj),)
        return NotImplemented


@dataclass(frozen=True, slots=True)
class _Step:
    """One step played by :meth:`_Driver.step`."""

    record: StepRecord
    equity: float | None
    ended: bool
    key: Hashable | None
    obs: Any
    reward: Any
    info: dict[str, Any]
    state: _State


class _OutOfBudget(BaseException):
    """The time budget is spent: stop the search at once (not an error)."""


# ----------------------------------------------------------------------------- one market


@dataclass(frozen=True, slots=True)
class _Node:
    prefix: tuple[int, ...]
    ended: bool
    key: Hashable | None
    equity: float | None

    @property
    def depth(self) -> int:
        return len(self.prefix)


class _SnapshotsSlower(Exception):
    """Searching the first market by snapshots took longer than replaying it would have."""


class _TooManyStates(Exception):
    """The memoized search met more states than it may expand on one market."""


class _Tree:
    """The action sequences of one market: children by replay; values by exhaustive or memoized
    search (the same recursion, nodes identified by prefix or by the adapter's state key)."""

    def __init__(
        self,
        driver: _Driver,
        seed: int | None,
        options: dict[str, Any] | None,
        horizon: int,
        *,
        hold: int | None,
        use_keys: bool,
        max_states: int,
    ) -> None:
        self.driver = driver
        self.seed = seed
        self.options = options
        self.H = horizon
        self.hold = hold
        self.use_keys = use_keys
        self.max_states = max_states
        self.n = driver.n_actions
        self.kinds = tuple(driver.meta.action_kinds) if driver.meta is not None else ()
        self.children_cache: dict[Hashable, list[_Child]] = {}
        self.values: dict[Hashable, tuple[float, float, float]] = {}
        self.key_checks = 0
        self.reps: dict[Hashable, tuple[int, ...]] = {}  # the prefix each memoized state was first reached by
        self.enumerate = not use_keys and driver.n_actions**horizon <= max_states
        self.enumerated = False
        # With snapshots, an exact search walks the whole tree (every prefix, or every declared
        # state) once, depth first, stepping copies of each node's env instead of replaying.
        self.snapshots = driver.stepping == "snapshots" and (self.enumerate or use_keys)
        self.filled = False
        # Exhaustive with snapshots: nodes are identified by their snapshot (see _fill), not prefix.
        self.transpose = self.snapshots and not use_keys
        self.keyed = use_keys or self.transpose
        self.sids: dict[tuple[int, bytes], int] = {}
        self.fill_deadline = math.inf  # see _Setup.analyse: snapshots that cost more than replay stop
        equity = driver.initial_equity(seed, options)
        if equity is None and driver.equity_from_records():
            records, _, _, _ = driver.replay(seed, options, (0,))
            equity = records[0].equity_before if records else None
            driver.reset(seed, options)
        self.integer_pnl = False
        key = driver.key() if use_keys else (0 if self.transpose else None)
        self.root = _Node((), False, key, equity)

    def node_id(self, node: _Node) -> Hashable:
        return (node.depth, node.key) if self.keyed else node.prefix

    def children(self, node: _Node) -> list[_Child]:
        """The children of ``node`` in preference order: HOLD, executed actions by id, rejected by id."""
        nid = self.node_id(node)
        hit = self.children_cache.get(nid)
        if hit is not None:
            if self.use_keys and self.key_checks < _MAX_KEY_CHECKS and self.reps.get(nid) != node.prefix:
                self._check_key(node, hit)
            return hit
        if self.snapshots and not self.filled:
            self.filled = True
            self._fill((), self.node_id(self.root), self.driver.root_state(self.seed, self.options))
            return self.children(node)
        if self.enumerate and not self.enumerated:
            self._enumerate()
            hit = self.children_cache.get(nid)
            if hit is not None:
                return hit
        if len(self.children_cache) >= self.max_states:
            raise _TooManyStates
        out = self._expand(node.prefix)
        self.children_cache[nid] = out
        self.reps[nid] = node.prefix
        return out

    def _enumerate(self) -> None:
        """Play every sequence once from the reset (``n ** H`` resets, the fewest without copying the
        env), filling every node's children; a step recorded twice must be recorded alike."""
        self.enumerated = True
        n, H, driver = self.n, self.H, self.driver
        found: dict[tuple[int, ...], dict[int, _Child]] = {}
        ended_at: set[tuple[int, ...]] = set()
        for seq in itertools.product(range(n), repeat=H):
            if ended_at and any(seq[:d] in ended_at for d in range(1, H)):
                continue
            records, equities, ended, _ = driver.replay(self.seed, self.options, seq)
            last = len(records) - 1
            for d, rec in enumerate(records):
                kids = found.setdefault(seq[:d], {})
                child = _Child(seq[d], rec, float(rec.reward), bool(rec.rejected), ended and d == last, equities[d], None)
                seen = kids.get(seq[d])
                if seen is None:
                    kids[seq[d]] = child
                    if isinstance(child.equity, int) and not isinstance(child.equity, bool):
                        self.integer_pnl = True
                elif seen != child:
                    raise InvalidConfig(
                        f"the env is not replay-deterministic: replayed from the same reset (seed {self.seed}), "
                        f"the actions {list(seq[: d + 1])} gave two different step {d} records: {seen.record} and "
                        f"{rec}. The black-box audit replays sequences, so it needs the same seed and actions to give "
                        "the same episode (tradeguard check --only replay-determinism shows where it does not)."
                    )
            if ended and last < H - 1:
                ended_at.add(seq[: last + 1])
        for prefix, kids in found.items():
            self.children_cache[prefix] = self._ordered(list(kids.values()))

    def _fill(self, prefix: tuple[int, ...], nid: Hashable, state: _State, blob: bytes | None = None) -> None:
        """Expand the node ``prefix`` leads to, whose env is ``state`` (consumed; ``blob`` its snapshot,
        when taken), and below it, depth first: each child steps a fresh copy of the snapshot (the last
        child ``state`` itself), so the tree costs one step per edge, not a replay from the reset each.

        Without a declared state (``state_key``), a node is identified by its snapshot: two prefixes
        whose env, adapter and mask pickle to the same bytes continue alike (a copy thawed from those
        bytes replays like the env, as proven on the first market), so they share one node."""
        driver = self.driver
        now = time.perf_counter()
        if now > driver.deadline:
            raise _OutOfBudget
        if now > self.fill_deadline:
            raise _SnapshotsSlower
        depth = len(prefix)
        hit = self.children_cache.get(nid)
        if hit is not None:  # a declared state met again (memo): spot-check the declaration
            if self.use_keys and self.key_checks < _MAX_KEY_CHECKS and self.reps.get(nid) != prefix:
                self.key_checks += 1
                self.reps[nid] = prefix
                key = nid[1] if isinstance(nid, tuple) else None
                self._compare_key(prefix, key, hit, self._step_all(state, blob, depth)[0])
            return
        if len(self.children_cache) >= self.max_states:
            raise _TooManyStates
        kids, states = self._step_all(state, blob, depth)
        self.children_cache[nid] = self._ordered(kids)
        self.reps[nid] = prefix
        if depth + 1 >= self.H:
            return
        for c, (st, b) in zip(kids, states, strict=True):
            if not c.ended:
                child = (*prefix, c.action)
                self._fill(child, (depth + 1, c.key) if self.keyed else child, st, b)

    def _step_all(
        self, state: _State, blob: bytes | None, depth: int
    ) -> tuple[list[_Child], list[tuple[_State, bytes | None]]]:
        """Every action from ``state`` (consumed): the children, in action order, and their envs."""
        driver = self.driver
        if blob is None and self.n > 1:
            blob = driver.freeze(state)
        kids: list[_Child] = []
        states: list[tuple[_State, bytes | None]] = []
        last = self.n - 1
        inner = depth + 1 < self.H
        for a in range(self.n):
            out = driver.step(state if a == last or blob is None else driver.thaw(blob), depth, a, keys=self.use_keys)
            eq = out.equity
            if isinstance(eq, int) and not isinstance(eq, bool):
                self.integer_pnl = True
            key, child_blob = out.key, None
            if self.transpose and inner and not out.ended:
                child_blob = driver.freeze(out.state)
                key = self.sids.setdefault((depth + 1, child_blob), len(self.sids))
            kids.append(_Child(a, out.record, float(out.record.reward), bool(out.record.rejected), out.ended, eq, key))
            states.append((out.state, child_blob))
        return kids, states

    def _expand(self, prefix: tuple[int, ...]) -> list[_Child]:
        driver = self.driver
        out: list[_Child] = []
        for a in range(self.n):
            records, equities, ended, _ = driver.replay(self.seed, self.options, (*prefix, a))
            if len(records) < len(prefix) + 1:
                raise InvalidConfig(
                    f"replaying the actions {list(prefix)} ended the episode after {len(records)} steps, but "
                    "they were played before without ending it: the env is not replay-deterministic "
                    "(tradeguard check --only replay-determinism shows where)."
                )
            rec = records[-1]
            key = driver.key() if self.use_keys else None
            eq = equities[-1]
            if isinstance(eq, int) and not isinstance(eq, bool):
                self.integer_pnl = True
            out.append(_Child(a, rec, float(rec.reward), bool(rec.rejected), ended, eq, key))
        return self._ordered(out)

    def _ordered(self, children: list[_Child]) -> list[_Child]:
        """Preference order, the tie-break among optimal sequences. With a HOLD action, the
        oracle's: HOLD, executed actions by id, rejected actions by id. Without one, steps that
        trade nothing first (how such an env holds), then trades by id: a tie never makes the
        reward optimum trade for nothing."""
        hold = self.hold
        if hold is None:
            kinds = self.kinds
            return sorted(
                children,
                key=lambda c: (
                    (kinds[c.record.executed] if 0 <= c.record.executed < len(kinds) else _HOLD_KIND) != _HOLD_KIND,
                    c.action,
                ),
            )
        executed = sorted((c for c in children if not c.rejected), key=lambda c: (c.action != hold, c.action))
        return executed + sorted((c for c in children if c.rejected), key=lambda c: c.action)

    def _check_key(self, node: _Node, stored: list[_Child]) -> None:
        """Two prefixes with the same declared state must offer the same next steps (checked for the
        first ``_MAX_KEY_CHECKS`` merges of each market)."""
        self.key_checks += 1
        self.reps[self.node_id(node)] = node.prefix  # check the next merge against this one
        self._compare_key(node.prefix, node.key, stored, self._expand(node.prefix))

    def _compare_key(self, prefix: tuple[int, ...], key: Hashable, stored: list[_Child], fresh: list[_Child]) -> None:
        fresh = self._ordered(fresh)
        a = [(c.action, c.reward, c.rejected, c.key) for c in stored]
        b = [(c.action, c.reward, c.rejected, c.key) for c in fresh]
        if a != b:
            raise InvalidConfig(
                f"the adapter's state_key() is not the env's whole state: the actions {list(prefix)} reach "
                f"the key {key!r}, which another sequence reached too, but their next steps differ "
                f"({_first_diff(a, b)}). state_key must return everything the rest of the episode depends on, "
                "or the memoized search is wrong: return more of the state, or drop state_key."
            )

    def child_node(self, node: _Node, c: _Child) -> _Node:
        return _Node((*node.prefix, c.action), c.ended, c.key, c.equity)

    def value(self, node: _Node) -> tuple[float, float, float]:
        """(best shaped return, best without rejections, best PnL without rejections) from ``node`` on."""
        if node.depth >= self.H or node.ended:
            return 0.0, 0.0, 0.0
        nid = self.node_id(node)
        hit = self.values.get(nid)
        if hit is not None:
            if self.use_keys and self.key_checks < _MAX_KEY_CHECKS and self.reps.get(nid) != node.prefix:
                self._check_key(node, self.children_cache[nid])
            return hit
        best_s = best_f = best_p = -math.inf
        pnl_any = self.hold is None  # without HOLD, a rejected step is how the env holds
        for c in self.children(node):
            vs, vf, vp = self.value(self.child_node(node, c))
            s = c.reward + vs
            if s > best_s:
                best_s = s
            if not c.rejected:
                f = c.reward + vf
                if f > best_f:
                    best_f = f
            if pnl_any or not c.rejected:
                p = _delta(c.equity, node.equity) + vp
                if p > best_p:
                    best_p = p
        out = (best_s, best_f, best_p)
        self.values[nid] = out
        return out

    def best(self, objective: str) -> tuple[tuple[int, ...], float]:
        """The preferred optimal sequence for ``objective`` (``shaped``, ``free``, ``pnl``) and its
        value, ties broken as the oracle breaks them."""
        index = {"shaped": 0, "free": 1, "pnl": 2}[objective]
        value = self.value(self.root)[index]
        if objective == "pnl":
            need = value - (0.5 if self.integer_pnl else _TIE * max(1.0, abs(value)))
            slack = 0.0
        else:
            tol = _TIE * max(1.0, abs(value))
            need = value - tol
            slack = tol / (2 * max(1, self.H))
        node = self.root
        actions: list[int] = []
        skip_rejected = objective == "free" or (objective == "pnl" and self.hold is not None)
        while node.depth < self.H and not node.ended:
            for c in self.children(node):
                if skip_rejected and c.rejected:
                    continue
                r = c.reward if objective != "pnl" else _delta(c.equity, node.equity)
                child = self.child_node(node, c)
                last = child.depth >= self.H or child.ended
                if (r > need) if last else (self.value(child)[index] > need - r - slack):
                    actions.append(c.action)
                    need = need - r - slack
                    node = child
                    break
            else:  # pragma: no cover - the optimum is reachable by construction
                raise AssertionError(f"black-box search: no continuation reaches the optimum at step {node.depth}")
        return tuple(actions), value

    def beam(self, objective: str, width: int) -> tuple[int, ...]:
        """The best sequence a beam of ``width`` prefixes per step finds (not proven optimal)."""
        beam: list[tuple[float, _Node]] = [(0.0, self.root)]
        done: list[tuple[float, _Node]] = []
        for _ in range(self.H):
            grown: list[tuple[float, int, _Node]] = []
            order = 0
            for score, node in beam:
                if node.ended:
                    done.append((score, node))
                    continue
                for c in self.children(node):
                    if c.rejected and (objective == "free" or (objective == "pnl" and self.hold is not None)):
                        continue
                    gain = c.reward if objective != "pnl" else _delta(c.equity, node.equity)
                    grown.append((score + gain, order, self.child_node(node, c)))
                    order += 1
            if not grown:
                break
            grown.sort(key=lambda x: (-x[0], x[1]))
            beam = [(sc, nd) for sc, _, nd in grown[:width]]
        done += beam
        best = max(done, key=lambda x: x[0])
        return best[1].prefix

    def walk(self, actions: Sequence[int]) -> list[_Node]:
        """The nodes ``actions`` pass through, the root first."""
        node, out = self.root, [self.root]
        for a in actions:
            c = next(c for c in self.children(node) if c.action == a)
            node = self.child_node(node, c)
            out.append(node)
            if node.ended:
                break
        return out

    def rollout(self, actions: Sequence[int], meta: TraceMeta) -> EnvRollout:
        """``actions`` as the search saw them (every step replayed from the reset)."""
        nodes = self.walk(actions)
        records: list[StepRecord] = []
        for node, nxt in itertools.pairwise(nodes):
            c = next(c for c in self.children(node) if c.action == nxt.prefix[-1])
            records.append(c.record)
        n = len(records)
        return EnvRollout(
            actions=tuple(actions[:n]),
            names=tuple(meta.action_name(a) for a in actions[:n]),
            records=tuple(records),
            initial_equity=self.root.equity,
            final_equity=nodes[-1].equity,
            hold=self.hold,
            kinds=tuple(meta.action_kinds),
        )

    def verify(self, rollout: EnvRollout) -> None:
        """Replay ``rollout``'s actions once more from the reset: the same records, or the env is not
        replay-deterministic (and the search's answers would mean nothing)."""
        records, _, _, _ = self.driver.replay(self.seed, self.options, rollout.actions)
        for t, (a, b) in enumerate(zip(rollout.records, records, strict=False)):
            if a != b:
                raise InvalidConfig(
                    f"the env is not replay-deterministic: the actions {list(rollout.actions[: t + 1])} from the same "
                    f"reset (seed {self.seed}) gave two different step {t} records: {a} and {b}. The black-box "
                    "audit replays sequences, so it needs the same seed and actions to give the same episode "
                    "(tradeguard check --only replay-determinism shows where it does not)."
                )


def _delta(after: float | None, before: float | None) -> float:
    if after is None or before is None:
        return 0.0
    return after - before


def _first_diff(a: list[Any], b: list[Any]) -> str:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return f"action {x[0]}: reward {x[1]!r}, rejected {x[2]} vs reward {y[1]!r}, rejected {y[2]}"
    return f"{len(a)} vs {len(b)} actions"
