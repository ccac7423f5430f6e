"""The reward audit of any replay-deterministic env, through its adapter: what its reward makes optimal.

tradeguard's own env has an exact oracle that reads its state machine. Another env is
a black box: the audit only resets it (with a seed, and a market when its adapter can
inject one), steps it and reads the adapter's records. Replay-determinism (an
invariant the gate checks) is what makes that enough: the same seed and actions give
the same episode, so every action sequence can be replayed, and the best one found.

Search, per market (or seed), over the action sequences of ``horizon`` steps:

``exhaustive``
    Every sequence, when ``actions ** horizon`` is at most ``max_sequences``. Exact.
``memo``
    When the adapter declares the env's state (``state_key(env)``: everything the rest
    of the episode depends on, hashable), a search memoized over distinct states, as
    the oracle's: exact at any horizon the state count allows. The declaration is
    spot-checked: two prefixes with the same key must offer the same next steps.
``beam``
    Otherwise the ``beam_width`` best prefixes per step, per objective. Not proven
    optimal: the report says so, and the findings are then lower bounds.

On each market the audit finds the sequence that maximizes the env's reward, the best
one without rejected actions and the one that maximizes PnL (final equity minus
initial; from the records' equity, or the adapter's ``equity(env, info)``), plays
reference behaviours (hold, spam each action, buy-and-never-sell, random), and reports
the reward audit's findings where the adapter supplies what they need, each with the
market (or seed) and the action sequences that replay it:

- ``rejection-in-optimum``, ``invalid-not-worse-than-hold``: need rejections and a
  HOLD action (an env without one holds by repeating an action, which its adapter may
  record as rejected: then they do not apply);
- ``idle-optimum``, ``pnl-regret`` (reward hacking: the reward-maximizing behaviour
  makes less money than the PnL optimum, or loses money against doing nothing): need
  equity;
- ``never-close-optimum``: needs positions and equity.

What does not apply is listed, with the reason, never reported as passing.
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradeguard._validation import check_int, check_number, suggest
from tradeguard.env import Market
from tradeguard.errors import InvalidConfig
from tradeguard.invariants._adapter import (
    NativeAdapter,
    StepData,
    TraceAdapter,
    adapter_for,
    checked_record,
    env_mask,
)
from tradeguard.invariants.audit._reward_audit import (
    REWARD_FINDING_KINDS,
    REWARD_SEVERITY,
    Severity,
)
from tradeguard.limits import AUDIT_EXAMPLES_PER_SECOND, MAX_AUDIT_EXAMPLES
from tradeguard.trace import StepRecord, TraceMeta

__all__ = [
    "BLACKBOX_FINDING_KINDS",
    "DEFAULT_BEAM_WIDTH",
    "DEFAULT_MAX_SEQUENCES",
    "EnvBaselineComparison",
    "EnvCounterexample",
    "EnvRewardAuditReport",
    "EnvRewardFinding",
    "EnvRollout",
    "MarketAnalysis",
    "analyse_market",
    "audit_env_reward",
]

BLACKBOX_FINDING_KINDS: tuple[str, ...] = REWARD_FINDING_KINDS[:5]
"""The oracle audit's optimum findings, which the black-box audit reports too (not
``weak-penalty``: it needs the reward's penalty component)."""

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
        return any(self._kind(r.executed) == "open" and r.position_before == 0 and r.position_after != 0 for r in self.records)

    @property
    def closed(self) -> bool:
        """Whether some trade brought the position to zero."""
        return any(
            self._kind(r.executed) != _HOLD_KIND and r.position_before > 0 and r.position_after == 0
            for r in self.records
        )

    @property
    def ends_in_position(self) -> bool:
        """Whether a position is open after the last step."""
        return bool(self.records) and self.records[-1].position_after > 0

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
        obs, info = self.reset(seed, options)
        records: list[StepRecord] = []
        equities: list[float | None] = []
        ended = False
        masks = self.masks
        for t, a in enumerate(prefix):
            mask = env_mask(self.env, info) if masks else None
            obs, reward, terminated, truncated, info = self.env.step(a)
            self.steps += 1
            rec = checked_record(
                self.adapter,
                self.adapter.record(self.env, StepData(t, a, obs, reward, terminated, truncated, info, mask)),
                t,
            )
            records.append(rec)
            equities.append(self._equity(rec, info))
            if terminated or truncated:
                ended = True
                break
        return records, equities, ended, info

    def initial_equity(self, seed: int | None, options: dict[str, Any] | None) -> float | None:
        _, info = self.reset(seed, options)
        if self.equity_fn is not None:
            return float(self.equity_fn(self.env, info))
        return None

    def _equity(self, rec: StepRecord, info: dict[str, Any]) -> float | None:
        meta = self.meta
        if meta is not None and "equity_after" in meta.supplies:
            return rec.equity_after
        if self.equity_fn is not None:
            return float(self.equity_fn(self.env, info))
        return None

    def key(self) -> Hashable | None:
        if self.key_fn is None:
            return None
        return self.key_fn(self.env)  # type: ignore[no-any-return]


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
        equity = driver.initial_equity(seed, options)
        if equity is None and driver.meta is not None and "equity_before" in driver.meta.supplies:
            records, _, _, _ = driver.replay(seed, options, (0,))
            equity = records[0].equity_before if records else None
            driver.reset(seed, options)
        self.integer_pnl = False
        key = driver.key() if use_keys else None
        self.root = _Node((), False, key, equity)

    def node_id(self, node: _Node) -> Hashable:
        return (node.depth, node.key) if self.use_keys else node.prefix

    def children(self, node: _Node) -> list[_Child]:
        """The children of ``node`` in preference order: HOLD, executed actions by id, rejected by id."""
        nid = self.node_id(node)
        hit = self.children_cache.get(nid)
        if hit is not None:
            if self.use_keys and self.key_checks < _MAX_KEY_CHECKS and self.reps.get(nid) != node.prefix:
                self._check_key(node, hit)
            return hit
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
        fresh = self._expand(node.prefix)
        a = [(c.action, c.reward, c.rejected, c.key) for c in stored]
        b = [(c.action, c.reward, c.rejected, c.key) for c in fresh]
        if a != b:
            raise InvalidConfig(
                f"the adapter's state_key() is not the env's whole state: the actions {list(node.prefix)} reach "
                f"the key {node.key!r}, which another sequence reached too, but their next steps differ "
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


# ----------------------------------------------------------------------------- reference behaviours


def _reference_plans(
    tree: _Tree, meta: TraceMeta, *, seed: int, positions: bool
) -> dict[str, tuple[int, ...]]:
    """The reference behaviours' action sequences on this market, by name (the names of
    :func:`~tradeguard.invariants.audit.reference_policies`): hold, spam of each other action,
    buy-and-never-sell per opening action (with and without adding), uniform random, epsilon-hold."""
    n, hold, H = tree.n, tree.hold, tree.H
    names = meta.action_names
    kinds = meta.action_kinds
    disabled = meta.disabled_actions
    out: dict[str, tuple[int, ...]] = {}
    if hold is not None:
        out["hold"] = (hold,) * H
    else:
        idle = _no_trade(tree)
        if idle is not None:
            out["no-trade"] = idle
    for a in range(n):
        if a != hold:
            out[f"spam:{names[a]}"] = (a,) * H
    if hold is not None and positions:
        adds = [a for a in range(n) if kinds[a] == "add" and a not in disabled]
        for buy in (a for a in range(n) if kinds[a] == "open" and a not in disabled):
            out[f"buy-and-never-sell:{names[buy]}"] = _buy_and_hold(tree, buy, None, hold)
            for add in adds[:1]:
                out[f"buy-and-never-sell:{names[buy]}+ADD"] = _buy_and_hold(tree, buy, add, hold)
    rng = np.random.default_rng([seed, 0x5EED])
    out["random"] = tuple(int(rng.integers(n)) for _ in range(H))
    if hold is not None:
        for eps in (0.5, 0.1):
            rng = np.random.default_rng([seed, 0x5EED])
            plan = []
            for _ in range(H):
                plan.append(int(rng.integers(n)) if rng.random() < eps else hold)
            out[f"epsilon-hold:{eps:g}"] = tuple(plan)
    return out


def _no_trade(tree: _Tree) -> tuple[int, ...] | None:
    """For an env without HOLD: at every step the first action that trades nothing (how it
    holds), or ``None`` when some step offers none."""
    kinds = tree.kinds
    node = tree.root
    plan: list[int] = []
    for _ in range(tree.H):
        quiet = [
            c for c in tree.children(node)
            if (kinds[c.record.executed] if 0 <= c.record.executed < len(kinds) else _HOLD_KIND) == _HOLD_KIND
        ]
        if not quiet:
            return None
        c = min(quiet, key=lambda c: c.action)
        plan.append(c.action)
        node = tree.child_node(node, c)
        if node.ended:
            break
    return tuple(plan)


def _buy_and_hold(tree: _Tree, buy: int, add: int | None, hold: int) -> tuple[int, ...]:
    """Open with ``buy`` as soon as it executes, then HOLD (or ``add`` whenever it executes)."""
    node = tree.root
    plan: list[int] = []
    position = 0
    for _ in range(tree.H):
        kids = {c.action: c for c in tree.children(node)}
        if position == 0:
            a = buy if not kids[buy].rejected else hold
        elif add is not None and not kids[add].rejected:
            a = add
        else:
            a = hold
        plan.append(a)
        c = kids[a]
        position = c.record.position_after
        node = tree.child_node(node, c)
        if node.ended:
            break
    return tuple(plan)


# ----------------------------------------------------------------------------- analysis


@dataclass(frozen=True, slots=True)
class _Needs:
    """What the adapter supplies, hence which findings apply, and why not."""

    rejections: bool
    hold: int | None
    equity: bool
    positions: bool
    executed: bool

    def not_applicable(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if not self.rejections:
            why = "the adapter does not record rejections"
        elif self.hold is None:
            why = (
                "the env has no HOLD action: it holds by repeating an action, which its adapter records as "
                "rejected, so a rejection in the optimum is how it holds"
            )
        else:
            why = ""
        if why:
            out["rejection-in-optimum"] = out["invalid-not-worse-than-hold"] = why
        if not self.equity:
            why = (
                "the adapter supplies no equity (neither equity_after in its records nor an equity(env, info) "
                "method), so PnL is unknown"
            )
            for k in ("idle-optimum", "never-close-optimum", "pnl-regret"):
                out[k] = why
        else:
            if not self.executed:
                out["idle-optimum"] = "the adapter does not record executed actions"
            if not (self.positions and self.executed):
                out["never-close-optimum"] = "the adapter does not record positions (position_before/after)"
        return out


@dataclass(slots=True)
class MarketAnalysis:
    """Everything the black-box audit computed on one market (or seed).

    Attributes:
        market: The market's prices in minor units, or ``None`` when the env drew its own.
        seed: The seed ``reset`` was called with.
        shaped: The reward-maximizing sequence, replayed.
        pnl: The PnL-maximizing sequence (without rejections), replayed.
        free: The best sequence without rejections (when ``shaped`` has some).
        refs: The reference behaviours, replayed, by name.
        scores: How strongly each finding kind shows (larger: worse).
        fired: The kinds that fire, with their numbers.
        exact: Whether the search proved the optima.
        search: Which search ran (``exhaustive``, ``memo``, ``beam``).
        shaped_value: The optimum of the reward the search found.
        pnl_value: The optimum PnL it found.
    """

    market: tuple[int, ...] | None
    seed: int | None
    shaped: EnvRollout
    pnl: EnvRollout
    free: EnvRollout | None
    refs: dict[str, EnvRollout]
    scores: dict[str, float]
    fired: dict[str, dict[str, Any]]
    exact: bool
    search: str
    shaped_value: float
    pnl_value: float


def analyse_market(
    tree: _Tree,
    meta: TraceMeta,
    needs: _Needs,
    *,
    market: tuple[int, ...] | None,
    pnl_tolerance: float,
    search: str,
    beam_width: int,
    ref_seed: int = 0,
) -> MarketAnalysis:
    """Search one market and derive the findings, as the oracle audit does on tradeguard's env."""
    exact = search != "beam"
    if exact:
        try:
            shaped_actions, shaped_value = tree.best("shaped")
            shaped = tree.rollout(shaped_actions, meta)
            free = None
            if shaped.rejections and tree.hold is not None:  # without HOLD, rejections are how it holds
                free_actions, free_value = tree.best("free")
                free = tree.rollout(free_actions, meta)
                if free_value >= shaped_value - _TIE * max(1.0, abs(shaped_value)):
                    shaped = free
            pnl_actions, pnl_value = tree.best("pnl")
        except _TooManyStates:
            exact, search = False, "beam"
    if not exact:
        shaped = tree.rollout(tree.beam("shaped", beam_width), meta)
        free = None
        if shaped.rejections and tree.hold is not None:
            free = tree.rollout(tree.beam("free", beam_width), meta)
            if free.shaped_return >= shaped.shaped_return - _TIE * max(1.0, abs(shaped.shaped_return)):
                shaped = free
        pnl_actions = tree.beam("pnl", beam_width)
        shaped_value = shaped.shaped_return
    pnl = tree.rollout(pnl_actions, meta)
    pnl_value = pnl.pnl
    tree.verify(shaped)
    plans = _reference_plans(tree, meta, seed=ref_seed, positions=needs.positions)
    refs = {name: tree.rollout(plan, meta) for name, plan in plans.items()}
    scores: dict[str, float] = {}
    fired: dict[str, dict[str, Any]] = {}
    na = needs.not_applicable()
    tol = _TIE * max(1.0, abs(shaped.shaped_return))

    if "rejection-in-optimum" not in na:
        if free is not None and shaped.shaped_return > free.shaped_return + tol:
            gap = shaped.shaped_return - free.shaped_return
            scores["rejection-in-optimum"] = gap
            fired["rejection-in-optimum"] = {
                "rejected_steps": [t for t, r in enumerate(shaped.records) if r.rejected],
                "advantage_over_best_without_rejections": gap,
            }
        else:
            scores["rejection-in-optimum"] = 0.0

    if "invalid-not-worse-than-hold" not in na:
        worst = _worst_rejection(tree, meta, [("shaped-optimal", shaped), ("PnL-optimal", pnl), *refs.items()])
        if worst is not None:
            scores["invalid-not-worse-than-hold"] = worst["margin"]
            if worst["margin"] >= -_TIE:
                fired["invalid-not-worse-than-hold"] = worst
        else:
            scores["invalid-not-worse-than-hold"] = -1e9

    if "idle-optimum" not in na:
        if shaped.trades == 0 and pnl.pnl_percent > pnl_tolerance:
            scores["idle-optimum"] = pnl.pnl_percent
            fired["idle-optimum"] = {"pnl_optimal_percent": pnl.pnl_percent}
        else:
            scores["idle-optimum"] = 0.0

    if "never-close-optimum" not in na:
        never: dict[str, Any] | None = None
        gap_a = 0.0
        if (
            shaped.opened
            and not shaped.closed
            and shaped.ends_in_position
            and pnl.closed
            and not pnl.ends_in_position
            and pnl.pnl_percent - shaped.pnl_percent > pnl_tolerance
        ):
            gap_a = pnl.pnl_percent - shaped.pnl_percent
            never = {"pattern": "holds to the end", "pnl_gap_percent": gap_a}
        gap_b = 0.0
        hold_return = refs["hold"].shaped_return if "hold" in refs else 0.0
        for name, r in refs.items():
            if not name.startswith("buy-and-never-sell"):
                continue
            shaped_gain = r.shaped_return - max(pnl.shaped_return, hold_return)
            pnl_loss = pnl.pnl_percent - r.pnl_percent
            if shaped_gain > _TIE * max(1.0, abs(pnl.shaped_return)) and pnl_loss > pnl_tolerance and pnl_loss > gap_b:
                gap_b = pnl_loss
                if never is None or never.get("pattern") != "holds to the end":
                    never = {
                        "pattern": "buy-and-never-sell beats the PnL optimum",
                        "policy": name,
                        "shaped_advantage": shaped_gain,
                        "pnl_loss_percent": pnl_loss,
                    }
        scores["never-close-optimum"] = max(gap_a, gap_b)
        if never is not None:
            fired["never-close-optimum"] = never

    if "pnl-regret" not in na:
        regret = pnl.pnl_percent - shaped.pnl_percent
        scores["pnl-regret"] = regret
        if regret > pnl_tolerance:
            idle = refs.get("hold") or refs.get("no-trade")
            detail: dict[str, Any] = {"regret_percent": regret, "regret": pnl.pnl - shaped.pnl}
            if idle is not None:  # never trading: what an agent that learned nothing makes
                detail["versus_doing_nothing_percent"] = shaped.pnl_percent - idle.pnl_percent
            fired["pnl-regret"] = detail
    return MarketAnalysis(
        market=market,
        seed=tree.seed,
        shaped=shaped,
        pnl=pnl,
        free=free,
        refs=refs,
        scores=scores,
        fired=fired,
        exact=exact,
        search=search,
        shaped_value=shaped_value,
        pnl_value=pnl_value,
    )


def _worst_rejection(
    tree: _Tree, meta: TraceMeta, paths: Iterable[tuple[str, EnvRollout]]
) -> dict[str, Any] | None:
    """The rejected action whose one-step reward comes closest to (or beats) HOLD's, in every
    state the sequences visit."""
    hold = tree.hold
    seen: set[Hashable] = set()
    best: dict[str, Any] | None = None
    best_margin = -math.inf
    for label, r in paths:
        nodes = tree.walk(r.actions)
        for t in range(r.horizon):
            node = nodes[t]
            nid = tree.node_id(node)
            if nid in seen:
                continue
            seen.add(nid)
            kids = tree.children(node)
            hold_child = next(c for c in kids if c.action == hold)
            for c in sorted(kids, key=lambda c: c.action):
                if not c.rejected:
                    continue
                margin = c.reward - hold_child.reward
                if margin > best_margin + _TIE:
                    best_margin = margin
                    best = {
                        "margin": margin,
                        "step": t,
                        "action": meta.action_name(c.action),
                        "reason": c.record.reason,
                        "reward_rejected": c.reward,
                        "reward_hold": hold_child.reward,
                        "reached_by": label,
                        "prefix": [meta.action_name(a) for a in r.actions[:t]],
                    }
    return best


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvCounterexample:
    """A market (or seed) on which a finding shows, with the sequences that show it, replayable.

    Attributes:
        seed: The seed ``reset`` was called with.
        market: The market injected through the adapter (minor units), or ``None``: the
            env drew its own from the seed.
        minor_unit: Currency value of one minor unit of ``market``.
        shaped_optimal: The reward-maximizing sequence, replayed.
        pnl_optimal: The PnL-maximizing sequence, replayed.
        others: Further sequences by label (the best without rejections, a reference).
        detail: Kind-specific numbers, as plain JSON values.
        exact: Whether the search proved both optima.
    """

    seed: int | None
    market: tuple[int, ...] | None
    minor_unit: float
    shaped_optimal: EnvRollout
    pnl_optimal: EnvRollout
    others: Mapping[str, EnvRollout] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)
    exact: bool = True

    def replay(self) -> str:
        """How to replay the reward-maximizing sequence, as Python."""
        if self.market is not None:
            reset = (
                f"env.reset(seed={self.seed!r}, options=adapter.reset_options(Market(np.array({list(self.market)}), "
                f"minor_unit={self.minor_unit!r})))"
            )
        else:
            reset = f"env.reset(seed={self.seed!r})"
        return f"env = make_env(); {reset}; then env.step(a) for a in {list(self.shaped_optimal.actions)}"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "seed": self.seed,
            "market": None if self.market is None else list(self.market),
            "minor_unit": self.minor_unit,
            "shaped_optimal": self.shaped_optimal.summary(),
            "pnl_optimal": self.pnl_optimal.summary(),
            "others": {k: v.summary() for k, v in self.others.items()},
            "detail": _plain(self.detail),
            "exact": self.exact,
            "replay": self.replay(),
        }

    def format(self) -> str:
        """The market and the sequences side by side, one row per step."""
        columns = [("shaped-optimal", self.shaped_optimal), ("PnL-optimal", self.pnl_optimal), *self.others.items()]
        if self.market is not None:
            decimals = max(0, round(-math.log10(self.minor_unit))) if self.minor_unit < 1 else 0
            head = (
                f"market ({len(self.market) - 1} prices after the first, in currency): "
                + " ".join(f"{p * self.minor_unit:,.{decimals}f}" for p in self.market)
            )
        else:
            head = f"the env's own market for seed {self.seed}"
        labels = [r.labels() for _, r in columns]
        widths = [max(len(title), *(len(x) + 10 for x in lab)) + 2 for (title, _), lab in zip(columns, labels, strict=True)]
        lines = [head, "", "step  " + "".join(f"{title:<{w}}" for (title, _), w in zip(columns, widths, strict=True))]
        steps = max(r.horizon for _, r in columns)
        for t in range(steps):
            row = f"{t:<6}"
            for (_, r), lab, w in zip(columns, labels, widths, strict=True):
                cell = f"{lab[t]:<{w - 11}}{r.rewards[t]:>+9.4f}  " if t < r.horizon else " " * w
                row += cell
            lines.append(row.rstrip())
        lines.append(
            f"{'return':<6}" + "".join(f"{'':<{w - 11}}{r.shaped_return:>+9.4f}  " for (_, r), w in zip(columns, widths, strict=True))
        )
        lines.append(
            f"{'PnL %':<6}"
            + "".join(f"{'':<{w - 11}}{_pct(r.pnl_percent):>9}  " for (_, r), w in zip(columns, widths, strict=True))
        )
        lines.append("")
        lines.append(f"replay: {self.replay()}")
        return "\n".join(line.rstrip() for line in lines)


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.4f}"


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvRewardFinding:
    """One thing the black-box audit found wrong with an env's reward.

    Attributes:
        kind: One of :data:`BLACKBOX_FINDING_KINDS` (the oracle audit's kinds).
        severity: ``"error"``.
        message: What is wrong, with the numbers.
        counterexample: The smallest market (or seed) that shows it.
        details: How often it fired, the worst case seen.
        worst: The market with the worst score seen, when it is not the counterexample.
    """

    kind: str
    severity: Severity
    message: str
    counterexample: EnvCounterexample
    details: Mapping[str, Any] = field(default_factory=dict)
    worst: EnvCounterexample | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "counterexample": self.counterexample.as_dict(),
            "details": _plain(self.details),
            "worst": None if self.worst is None else self.worst.as_dict(),
        }

    def format(self) -> str:
        """The finding as text, with its counterexample."""
        lines = [f"[{self.severity}] {self.kind}", *_indent(self.message, 2)]
        d = self.details
        if "markets_fired" in d:
            lines.append(f"  fired on {d['markets_fired']} of {d['markets_explored']} markets explored")
        lines += ["", "  smallest market (shrunk):", *_indent(self.counterexample.format(), 4)]
        if self.worst is not None:
            lines += ["", "  worst market seen:", *_indent(self.worst.format(), 4)]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvBaselineComparison:
    """The env's reward compared with a baseline env (another factory), on the same markets.

    Attributes:
        baseline: The baseline's name.
        markets_compared: Markets analysed under both.
        markets_changed: Markets on which the reward-maximizing sequence differs.
        changed: Each such market: ``{"seed", "market", "actions", "baseline_actions", "pnl",
            "baseline_pnl"}``, those where the change costs the most money first.
        new_findings: Kinds the audited env has and the baseline does not (on these markets).
        resolved_findings: Kinds the baseline has and the audited env does not.
        baseline_kinds: Every kind found on the baseline.
    """

    baseline: str
    markets_compared: int
    markets_changed: int
    changed: tuple[Mapping[str, Any], ...]
    new_findings: tuple[str, ...]
    resolved_findings: tuple[str, ...]
    baseline_kinds: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "baseline": self.baseline,
            "markets_compared": self.markets_compared,
            "markets_changed": self.markets_changed,
            "changed_markets": [_plain(c) for c in self.changed],
            "new_findings": list(self.new_findings),
            "resolved_findings": list(self.resolved_findings),
            "baseline_kinds": list(self.baseline_kinds),
        }

    def format(self) -> list[str]:
        lines = [
            f"compared with baseline {self.baseline}:",
            f"  optimal behaviour changed on {self.markets_changed} of {self.markets_compared} markets",
            f"  findings new in this env: {', '.join(self.new_findings) or 'none'}",
            f"  findings the baseline had and this env does not: {', '.join(self.resolved_findings) or 'none'}",
        ]
        for c in self.changed[:10]:
            where = f"market {c['market']}" if c["market"] is not None else f"seed {c['seed']}"
            lines.append(f"  {where}")
            lines.append(f"    now      {' '.join(c['actions'])}  PnL {_num(c['pnl'])}")
            lines.append(f"    baseline {' '.join(c['baseline_actions'])}  PnL {_num(c['baseline_pnl'])}")
        if len(self.changed) > 10:
            lines.append(f"  ... and {len(self.changed) - 10} more (--json lists them all)")
        return lines


def _num(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+,.4f}"


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvRewardAuditReport:
    """Everything the black-box reward audit of one env found.

    Attributes:
        env: The env's name (from the adapter's ``TraceMeta``).
        adapter: The adapter's name.
        findings: Findings, in :data:`BLACKBOX_FINDING_KINDS` order.
        not_applicable: Kinds that do not apply to this env, with the reason.
        search: The search that ran: ``exhaustive``, ``memo`` or ``beam``.
        exact: Whether every market's optima were proven (``False`` after a guided search).
        actions: Actions per step.
        horizon: Steps searched per market.
        markets: How markets were chosen: ``"injected"`` (through the adapter) or ``"seeds"``.
        explored: Markets the search generated.
        examples: Markets analysed, shrinking included.
        steps: Env steps the audit took.
        seconds: Wall time.
        budget: The time budget, in seconds.
        budget_exhausted: Whether the budget cut the search short.
        seed: The search's seed.
        baseline: The comparison with a baseline env, when one was given.
    """

    env: str
    adapter: str
    findings: tuple[EnvRewardFinding, ...]
    not_applicable: Mapping[str, str]
    search: str
    exact: bool
    actions: int
    horizon: int
    markets: str
    explored: int
    examples: int
    steps: int
    seconds: float
    budget: float
    budget_exhausted: bool
    seed: int | None
    baseline: EnvBaselineComparison | None = None
    beam_width: int = DEFAULT_BEAM_WIDTH

    @property
    def errors(self) -> tuple[EnvRewardFinding, ...]:
        """Error-severity findings (all of them)."""
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def passed(self) -> bool:
        """True when nothing was found (the CLI then exits 0)."""
        return not self.errors

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds found."""
        return tuple(f.kind for f in self.findings)

    def finding(self, kind: str) -> EnvRewardFinding | None:
        """The finding of ``kind``, or ``None``."""
        return next((f for f in self.findings if f.kind == kind), None)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "env": self.env,
            "adapter": self.adapter,
            "passed": self.passed,
            "findings": [f.as_dict() for f in self.findings],
            "not_applicable": dict(self.not_applicable),
            "search": self.search,
            "exact": self.exact,
            "actions": self.actions,
            "horizon": self.horizon,
            "markets": self.markets,
            "explored": self.explored,
            "examples": self.examples,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "budget": self.budget,
            "budget_exhausted": self.budget_exhausted,
            "seed": self.seed,
            "baseline": None if self.baseline is None else self.baseline.as_dict(),
        }

    def format(self) -> str:
        """The report as text."""
        how = {
            "exhaustive": f"exhaustive: every one of {self.actions}^{self.horizon} = {self.actions ** self.horizon:,} "
            "action sequences per market (exact)",
            "memo": "memoized over the adapter's declared states (state_key) (exact)",
            "beam": f"guided (beam of {self.beam_width} per step): NOT proven optimal; findings are lower bounds",
        }[self.search]
        if self.search != "beam" and not self.exact:
            how += "; some markets had too many states and were searched by beam (not proven)"
        lines = [
            f"reward audit of env {self.env} (adapter {self.adapter}), black box",
            f"  search: {how}",
            f"  searched {self.explored} {'markets' if self.markets == 'injected' else 'seeds'} of {self.horizon} steps "
            f"(+{self.examples - self.explored} while shrinking), {self.steps:,} env steps, in {self.seconds:.1f} s "
            f"(budget {self.budget:g} s, seed {self.seed})"
            + ("; the budget ran out before the search finished" if self.budget_exhausted else ""),
        ]
        for kind, why in self.not_applicable.items():
            lines.append(f"  not applicable: {kind}: {why}")
        lines.append("")
        unchecked = len(self.not_applicable)
        note = ""
        if unchecked == len(BLACKBOX_FINDING_KINDS):
            note = f"; nothing was checked: none of the {unchecked} kinds applies to what the adapter supplies"
        elif unchecked:
            note = f"; {unchecked} of {len(BLACKBOX_FINDING_KINDS)} kinds not applicable"
        lines.append(f"{'PASS' if self.passed else 'FAIL'}: {len(self.errors)} error(s){note}")
        for f in self.findings:
            lines += ["", f.format()]
        if self.baseline is not None:
            lines += ["", *self.baseline.format()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def _indent(text: str, n: int) -> list[str]:
    return [(" " * n + line) if line else line for line in text.splitlines()]


# ----------------------------------------------------------------------------- messages


def _message(kind: str, a: MarketAnalysis, pnl_tolerance: float = 0.01) -> str:
    s, p = a.shaped, a.pnl
    d = a.fired[kind]
    proven = "" if a.exact else " (found by a guided search: a lower bound, not proven optimal)"
    if kind == "rejection-in-optimum":
        assert a.free is not None
        steps = ", ".join(f"step {t} {s.labels()[t]}" for t in d["rejected_steps"])
        return (
            f"The reward pays for trying the impossible: the reward-maximizing sequence predicts {steps}. It earns "
            f"{s.shaped_return:+.4f}; the best sequence without rejected actions earns {a.free.shaped_return:+.4f}"
            f"{proven}. A policy that maximizes this reward learns to predict actions the env refuses."
        )
    if kind == "invalid-not-worse-than-hold":
        return (
            f"At step {d['step']} (reached by {d['reached_by']}: {' '.join(d['prefix']) or 'the start'}), predicting "
            f"{d['action']} is rejected ({d['reason']}) and earns {d['reward_rejected']:+.4f}, while HOLD earns "
            f"{d['reward_hold']:+.4f}. A rejected action must cost something relative to doing nothing, or a "
            "learner has no reason to avoid it."
        )
    if kind == "idle-optimum":
        return (
            f"The reward-maximizing sequence never trades (reward {s.shaped_return:+.4f}, PnL {_pct(s.pnl_percent)}%), "
            f"although trading makes {_pct(p.pnl_percent)}% on this market{proven}. A learner maximizing this "
            "reward learns to sit out."
        )
    if kind == "never-close-optimum":
        if d["pattern"] == "holds to the end":
            return (
                f"The reward-maximizing sequence opens a position and never closes it (PnL {_pct(s.pnl_percent)}%), "
                f"while the PnL-optimal sequence closes and makes {_pct(p.pnl_percent)}%{proven}: holding pays "
                "more reward than selling."
            )
        r = a.refs[d["policy"]]
        return (
            f"{d['policy']} earns more reward ({r.shaped_return:+.4f}) than the PnL-optimal sequence "
            f"({p.shaped_return:+.4f}) and than always HOLD while making less money (PnL {_pct(r.pnl_percent)}% vs "
            f"{_pct(p.pnl_percent)}%): the reward prefers buying and holding to trading well."
        )
    loses = d.get("versus_doing_nothing_percent", 0.0)
    outright = (
        f" It even makes {-loses:.4f}% less than never trading: reward hacking, the reward pays for behaviour "
        "that loses money."
        if loses < -pnl_tolerance
        else " Reward hacking: the reward pays for behaviour that makes less money than the env allows."
    )
    return (
        f"The reward-maximizing sequence makes {_pct(s.pnl_percent)}% (reward {s.shaped_return:+.4f}); the best "
        f"possible is {_pct(p.pnl_percent)}%, a regret of {d['regret_percent']:.4f}% of the starting equity"
        f"{proven}.{outright} The reward and the money disagree on what is optimal."
    )


def _counterexample(kind: str, a: MarketAnalysis, unit: float) -> EnvCounterexample:
    others: dict[str, EnvRollout] = {}
    detail = dict(a.fired.get(kind, {}))
    if kind == "rejection-in-optimum" and a.free is not None:
        others["best without rejections"] = a.free
    if kind == "never-close-optimum" and "policy" in detail:
        others[detail["policy"]] = a.refs[detail["policy"]]
    if kind == "invalid-not-worse-than-hold" and detail.get("reached_by") in a.refs:
        others[detail["reached_by"]] = a.refs[detail["reached_by"]]
    for idle in ("hold", "no-trade"):
        if kind in ("pnl-regret", "idle-optimum") and idle in a.refs:
            others[idle] = a.refs[idle]
    return EnvCounterexample(
        seed=a.seed,
        market=a.market,
        minor_unit=unit,
        shaped_optimal=a.shaped,
        pnl_optimal=a.pnl,
        others=others,
        detail=_plain(detail),
        exact=a.exact,
    )


# ----------------------------------------------------------------------------- the audit


class _Found(Exception):
    def __init__(self, analysis: MarketAnalysis) -> None:
        super().__init__("found")
        self.analysis = analysis


@dataclass(slots=True)
class _Setup:
    """One env under audit: its driver, what it supplies, how its markets are made and searched."""

    name: str
    driver: _Driver
    meta: TraceMeta
    needs: _Needs
    hold: int | None
    horizon: int
    search: str
    market_length: int | None
    unit: float
    start: int
    max_move_bps: int
    pnl_tolerance: float
    beam_width: int
    max_states: int
    seed: int | None
    cache: dict[Hashable, MarketAnalysis] = field(default_factory=dict)

    def analyse(self, market_key: tuple[int | None, tuple[int, ...] | None]) -> MarketAnalysis:
        hit = self.cache.get(market_key)
        if hit is not None:
            return hit
        reset_seed, prices = market_key
        options = None
        if prices is not None:
            market = Market(np.array(prices, dtype=np.int64), minor_unit=self.unit)
            options = self.driver.adapter.reset_options(market)
        tree = _Tree(
            self.driver,
            reset_seed,
            options,
            self.horizon,
            hold=self.hold,
            use_keys=self.search == "memo",
            max_states=self.max_states,
        )
        a = analyse_market(
            tree,
            self.meta,
            self.needs,
            market=prices,
            pnl_tolerance=self.pnl_tolerance,
            search=self.search,
            beam_width=self.beam_width,
        )
        self.cache[market_key] = a
        return a


def _setup(
    name: str,
    make_env: Callable[[], Any],
    adapter: TraceAdapter | None,
    *,
    horizon: int,
    search: str,
    max_sequences: int,
    deadline: float,
    max_move_bps: int,
    pnl_tolerance: float,
    beam_width: int,
    max_states: int,
    seed: int | None,
    start_price: float = 100.0,
) -> _Setup:
    with warnings.catch_warnings():
        probe = make_env()
    _require_env(probe, name)
    if adapter is None:
        adapter = adapter_for(probe)
    close = getattr(probe, "close", None)
    if callable(close):
        close()
    driver = _Driver(make_env, adapter, deadline=deadline)
    if driver.n_actions <= 0:
        raise InvalidConfig(
            f"{name}: the env's action_space is {driver.env.action_space!r}; the black-box reward audit searches "
            "discrete actions (gymnasium.spaces.Discrete)."
        )
    market_length = adapter.market_length(driver.env)
    unit = 0.01
    start = 10_000
    if market_length is not None:
        from tradeguard.invariants._adapter import minor_unit_of

        unit = minor_unit_of(driver.env)
        start = max(1, round(start_price / unit))
        probe_market = Market(np.full(market_length, start, dtype=np.int64), minor_unit=unit)
        if adapter.reset_options(probe_market) is None:
            market_length = None
    driver.reset(seed if seed is not None else 0, None)
    meta = driver.meta
    assert meta is not None
    n = driver.n_actions
    hold = next((a for a in range(n) if a < len(meta.action_kinds) and meta.action_kinds[a] == _HOLD_KIND), None)
    supplies = meta.supplies
    has_equity = "equity_after" in supplies or driver.equity_fn is not None
    needs = _Needs(
        rejections="rejected" in supplies,
        hold=hold,
        equity=has_equity,
        positions={"position_before", "position_after"} <= supplies,
        executed="executed" in supplies,
    )
    if market_length is not None:
        horizon = min(horizon, market_length - 1)
    chosen = search
    if search == "auto":
        if n ** horizon <= max_sequences:
            chosen = "exhaustive"
        elif driver.key_fn is not None:
            chosen = "memo"
        else:
            chosen = "beam"
    elif search == "memo" and driver.key_fn is None:
        raise InvalidConfig(
            f"search='memo' needs the adapter to declare the env's state (a state_key(env) method); the "
            f"{getattr(adapter, 'name', type(adapter).__name__)} adapter has none. Use search='auto'."
        )
    return _Setup(
        name=name,
        driver=driver,
        meta=meta,
        needs=needs,
        hold=hold,
        horizon=horizon,
        search=chosen,
        market_length=market_length,
        unit=unit,
        start=start,
        max_move_bps=max_move_bps,
        pnl_tolerance=pnl_tolerance,
        beam_width=beam_width,
        max_states=max_states,
        seed=seed,
    )


def _require_env(env: Any, name: str) -> None:
    if not (hasattr(env, "reset") and hasattr(env, "step") and hasattr(env, "action_space")):
        raise InvalidConfig(
            f"{name} returned a {type(env).__name__}, not a gymnasium env (reset, step, action_space); the "
            "factory must take no arguments and return a fresh env."
        )


def _prices(start: int, moves: Sequence[int]) -> tuple[int, ...]:
    out = [start]
    for m in moves:
        out.append(max(1, round(out[-1] * (10_000 + m) / 10_000)))
    return tuple(out)


def _explore(
    setup: _Setup,
    max_examples: int,
    *,
    kinds: Sequence[str],
    hunt: str | None,
    visited: list[Hashable] | None,
    baseline: _Setup | None,
) -> MarketAnalysis | None:
    """Generate markets (or seeds) with Hypothesis, steering each kind's score up with target();
    with ``hunt``, stop at the first market where it fires and shrink it."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings, target
    from hypothesis import seed as hyp_seed
    from hypothesis import strategies as st

    if setup.market_length is not None:
        strategy: Any = st.lists(
            st.integers(-setup.max_move_bps, setup.max_move_bps),
            min_size=setup.market_length - 1,
            max_size=setup.market_length - 1,
        ).map(lambda moves: (setup.seed if setup.seed is not None else 0, _prices(setup.start, moves)))
    else:
        strategy = st.integers(0, 2**32 - 1).map(lambda s: (s, None))
    last: list[MarketAnalysis] = []

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
    @given(strategy)
    def probe(market_key: tuple[int | None, tuple[int, ...] | None]) -> None:
        a = setup.analyse(market_key)
        if visited is not None:
            visited.append(market_key)
        if baseline is not None:
            b = baseline.analyse(market_key)
            target(float(a.shaped.actions != b.shaped.actions), label="optimum-changed")
        for kind in kinds:
            target(_finite(a.scores.get(kind, 0.0)), label=kind)
        if hunt is not None and hunt in a.fired:
            last[:] = [a]
            raise _Found(a)

    test = hyp_seed(setup.seed)(probe) if setup.seed is not None else probe
    try:
        test()
    except _Found as exc:
        return exc.analysis
    except _OutOfBudget:
        return last[0] if last else None
    return None


def _finite(x: float) -> float:
    if math.isnan(x):
        return 0.0
    return max(-1e12, min(1e12, x))


def audit_env_reward(
    make_env: Callable[[], Any],
    *,
    adapter: TraceAdapter | str | None = None,
    baseline: Callable[[], Any] | None = None,
    budget: float = 20.0,
    seed: int | None = 0,
    max_examples: int | None = None,
    horizon: int | tuple[int, int] = DEFAULT_HORIZON,
    max_move_bps: int = 500,
    pnl_tolerance: float = 0.01,
    search: str = "auto",
    max_sequences: int = DEFAULT_MAX_SEQUENCES,
    beam_width: int = DEFAULT_BEAM_WIDTH,
    max_states: int = 200_000,
    name: str | None = None,
    start_price: float = 100.0,
) -> EnvRewardAuditReport:
    """Audit the reward of any replay-deterministic env: what its reward makes optimal.

    ``audit_reward(make_env, adapter=...)`` calls this for an env that is not tradeguard's
    own (tradeguard's gets the exact oracle). See the module docstring for the searches and
    the findings.

    Args:
        make_env: A zero-argument callable returning a fresh gymnasium env (Discrete actions).
        adapter: Its trace adapter (an object, or a built-in adapter's name); default: the one
            :func:`~tradeguard.invariants.adapter_for` chooses.
        baseline: A second factory (the env before the change); the report then lists the
            markets on which the reward-maximizing behaviour changed and the new findings.
        budget: Seconds the audit may take.
        seed: Seed of the search (and of ``reset`` on injected markets).
        max_examples: Markets (or seeds) to generate (default: 30 per second of budget).
        horizon: Steps searched per market (an ``(lo, hi)`` pair means ``hi``), at most the
            episode: an injected market's length caps it.
        max_move_bps: Largest price move per step of an injected market, in basis points.
        start_price: First price of an injected market, in currency (100.0: 100.00; an
            instrument quoted near 1, such as EUR/USD, wants 1.0: fees in price units then
            weigh as they do in its own data).
        pnl_tolerance: PnL shortfall, in percent of the starting equity, that counts.
        search: ``"auto"`` (exhaustive when ``actions ** horizon <= max_sequences``, else
            memoized if the adapter declares ``state_key``, else beam), or one of
            ``"exhaustive"``, ``"memo"``, ``"beam"``.
        max_sequences: The most sequences an exhaustive search may enumerate per market.
        beam_width: Prefixes the guided search keeps per step and objective.
        max_states: The most states the memoized search expands on one market before it
            falls back to the beam (reported as not exact).
        name: The env's name in the report (default: the adapter's ``env_id``).

    Returns:
        The :class:`EnvRewardAuditReport`.

    Raises:
        InvalidConfig: a bad argument, a factory that does not make an env, an env that is not
            replay-deterministic, or an adapter ``state_key`` that is not the whole state.
    """
    t0 = time.perf_counter()
    if isinstance(horizon, (tuple, list)) and len(horizon) == 2:
        horizon = horizon[1]
    check_int("horizon", horizon, min_value=1, max_value=64)
    check_number("budget", budget, min_value=0.0, min_exclusive=True, max_value=86_400)
    if seed is not None:
        check_int("seed", seed, min_value=0, max_value=2**63 - 1)
    if max_examples is None:
        max_examples = min(MAX_AUDIT_EXAMPLES, max(10, int(AUDIT_EXAMPLES_PER_SECOND * budget)))
    check_int("max_examples", max_examples, min_value=1, max_value=MAX_AUDIT_EXAMPLES)
    check_int("max_move_bps", max_move_bps, min_value=1, max_value=5_000)
    check_number("start_price", start_price, min_value=0.0, min_exclusive=True, max_value=1e9)
    check_number("pnl_tolerance", pnl_tolerance, min_value=0.0, max_value=100.0)
    searches = ("auto", "exhaustive", "memo", "beam")
    if search not in searches:
        raise InvalidConfig(f"search={search!r}; expected one of {', '.join(searches)}.{suggest(search, searches)}")
    check_int("max_sequences", max_sequences, min_value=1)
    check_int("beam_width", beam_width, min_value=1)
    check_int("max_states", max_states, min_value=1)
    if not callable(make_env):
        raise InvalidConfig(f"make_env={make_env!r} is not callable; expected a zero-argument env factory.")
    if isinstance(adapter, str):
        from tradeguard.invariants._adapter import get_adapter

        adapter = get_adapter(adapter)
    common = {
        "horizon": horizon,
        "search": search,
        "max_sequences": max_sequences,
        "deadline": math.inf,  # set below: the budget starts once the envs are built (imports take time)
        "max_move_bps": max_move_bps,
        "pnl_tolerance": pnl_tolerance,
        "beam_width": beam_width,
        "max_states": max_states,
        "seed": seed,
        "start_price": start_price,
    }
    setup = _setup(name or "env", make_env, adapter, **common)  # type: ignore[arg-type]
    env_name = name or setup.meta.env_id
    if search == "exhaustive" and setup.driver.n_actions ** setup.horizon > max_sequences:
        raise InvalidConfig(
            f"search='exhaustive' would enumerate {setup.driver.n_actions}^{setup.horizon} sequences per market, "
            f"more than max_sequences={max_sequences:,}. Raise max_sequences, shorten the horizon, or use "
            "search='auto'."
        )
    base_setup = None
    if baseline is not None:
        if not callable(baseline):
            raise InvalidConfig(f"baseline={baseline!r} must be a zero-argument env factory for the black-box audit.")
        base_setup = _setup("baseline", baseline, adapter, **common)  # type: ignore[arg-type]
        if base_setup.driver.n_actions != setup.driver.n_actions or base_setup.market_length != setup.market_length:
            raise InvalidConfig(
                "the baseline env has a different action space or market length than the audited env; a "
                "baseline comparison needs the same env with another reward. Build both alike."
            )
        base_setup.search = setup.search
        base_setup.horizon = setup.horizon
    started = time.perf_counter()
    deadline = started + budget
    for s in (setup, base_setup):
        if s is not None:
            s.driver.deadline = started + 0.6 * budget
    kinds = [k for k in BLACKBOX_FINDING_KINDS if k not in setup.needs.not_applicable()]
    visited: list[Hashable] = []
    _explore(setup, max_examples, kinds=kinds, hunt=None, visited=visited, baseline=base_setup)
    explore_hit = time.perf_counter() > setup.driver.deadline
    if explore_hit and not any(setup.cache[k].fired for k in visited):
        # Nothing to shrink: the rest of the budget explores on (the same seed replays the
        # markets already analysed from the cache, then goes on to new ones).
        for s in (setup, base_setup):
            if s is not None:
                s.driver.deadline = deadline
        visited = []
        _explore(setup, max_examples, kinds=kinds, hunt=None, visited=visited, baseline=base_setup)
        explore_hit = time.perf_counter() > deadline
    visited = list(dict.fromkeys(visited))
    fired_counts: dict[str, int] = {}
    worst: dict[str, tuple[float, MarketAnalysis]] = {}
    for key in visited:
        a = setup.cache[key]
        for kind in a.fired:
            fired_counts[kind] = fired_counts.get(kind, 0) + 1
            score = a.scores[kind]
            if kind not in worst or score > worst[kind][0]:
                worst[kind] = (score, a)
    hunt = [k for k in kinds if k in fired_counts]
    shrunk: dict[str, MarketAnalysis] = {}
    for i, kind in enumerate(hunt):
        remaining = deadline - time.perf_counter()
        setup.driver.deadline = time.perf_counter() + max(0.0, remaining) / (len(hunt) - i)
        found = _explore(setup, max_examples, kinds=kinds, hunt=kind, visited=None, baseline=None)
        if found is None:
            found = next(setup.cache[k] for k in visited if kind in setup.cache[k].fired)
        shrunk[kind] = found
    findings = []
    for kind in kinds:
        if kind not in shrunk:
            continue
        a = shrunk[kind]
        w = worst[kind][1]
        findings.append(
            EnvRewardFinding(
                kind=kind,
                severity=REWARD_SEVERITY[kind],
                message=_message(kind, a, setup.pnl_tolerance),
                counterexample=_counterexample(kind, a, setup.unit),
                details={
                    "markets_fired": fired_counts[kind],
                    "markets_explored": len(visited),
                    "worst_score": worst[kind][0],
                },
                worst=None if w is a else _counterexample(kind, w, setup.unit),
            )
        )
    comparison = None
    if base_setup is not None:
        comparison = _compare(setup, base_setup, visited, findings)
    steps = setup.driver.steps + (base_setup.driver.steps if base_setup is not None else 0)
    exact = all(a.exact for a in setup.cache.values())
    return EnvRewardAuditReport(
        env=env_name,
        adapter=getattr(setup.driver.adapter, "name", type(setup.driver.adapter).__name__),
        findings=tuple(findings),
        not_applicable=setup.needs.not_applicable(),
        search=setup.search,
        exact=exact,
        actions=setup.driver.n_actions,
        horizon=setup.horizon,
        markets="injected" if setup.market_length is not None else "seeds",
        explored=len(visited),
        examples=len(setup.cache),
        steps=steps,
        seconds=time.perf_counter() - t0,
        budget=float(budget),
        budget_exhausted=explore_hit or time.perf_counter() > deadline,
        seed=seed,
        baseline=comparison,
        beam_width=beam_width,
    )


def _compare(
    setup: _Setup, base: _Setup, visited: Sequence[Hashable], findings: Sequence[EnvRewardFinding]
) -> EnvBaselineComparison:
    base_kinds: set[str] = set()
    changed: list[dict[str, Any]] = []
    compared = 0
    for key in visited:
        b = base.cache.get(key)
        if b is None:
            continue
        a = setup.cache[key]
        compared += 1
        base_kinds.update(b.fired)
        if a.shaped.actions != b.shaped.actions:
            changed.append(
                {
                    "seed": a.seed,
                    "market": None if a.market is None else list(a.market),
                    "actions": a.shaped.labels(),
                    "baseline_actions": b.shaped.labels(),
                    "pnl": a.shaped.pnl,
                    "baseline_pnl": b.shaped.pnl,
                }
            )
    changed.sort(key=lambda c: _finite(c["pnl"] - c["baseline_pnl"]))
    new_kinds = {f.kind for f in findings}
    return EnvBaselineComparison(
        baseline=base.name,
        markets_compared=compared,
        markets_changed=len(changed),
        changed=tuple(changed),
        new_findings=tuple(k for k in BLACKBOX_FINDING_KINDS if k in new_kinds and k not in base_kinds),
        resolved_findings=tuple(k for k in BLACKBOX_FINDING_KINDS if k in base_kinds and k not in new_kinds),
        baseline_kinds=tuple(k for k in BLACKBOX_FINDING_KINDS if k in base_kinds),
    )

