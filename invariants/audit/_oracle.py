"""The exact optimal-policy oracle: the best action sequence on a short market, by search.

The trading machine is deterministic, so on a known price path the sequence of
actions that maximizes a return can be found exactly. :class:`Oracle` finds two:
the sequence that maximizes the *shaped* return (the sum of the reward shaper's
components, what an RL agent maximizes) and the one that maximizes *PnL* (final
equity minus starting cash, what the trader wants). The reward audit compares them.

How it works. The search is a depth-first branch and bound with memoization over
the exact state of the episode: the step ``t``, the
:class:`~tradeguard.env.PortfolioState` (cash, position, cost basis) and the
reward shaper's history (:class:`~tradeguard.env.ShaperState`: curriculum count
and the set of actions already predicted, kept only when the config makes them
matter). Exhaustive search over the 7 actions would see 7^H sequences; but a
rejected action leaves the portfolio unchanged, so the portfolio only changes
by trades, and at most four distinct portfolios follow any state (HOLD and three
buy sizes when flat; HOLD, SELL_PARTIAL, SELL_ALL, ADD_POSITION in a position).
Identical successors (same state, same reward) are searched once. That still
leaves millions of distinct portfolios at H = 12, so a sound upper bound on what
any continuation can still earn prunes branches that cannot beat the best found.
The bound counts units, not steps: the PnL components are exactly a sum over the
units traded of what each earns between its buy and its sell, so each slot of
position earns at most the best sequence of round trips on the market (computed
once per market), and the slots are capped by the largest position any
continuation can reach (equity grows at most by the invested fraction of each
rise). A few hundred states remain at H = 12 on the shipped scenarios.

Ties. Two returns within ``tie_tolerance`` x max(1, |optimum|) are equal. Among
optimal sequences the oracle returns, deterministically: a sequence *without*
rejected actions whenever one is optimal; then, step by step from the start, the
first action in the order HOLD, executable actions by id, rejected actions by id.
So "the optimum contains a rejected action" is never an artefact of ties: it
means every sequence without rejections earns strictly less.

Limits. The horizon (steps; a market of H steps has H + 1 prices) is at most
:data:`MAX_HORIZON`. The work grows with the number of distinct portfolios,
up to 4^H in the worst case; on the shipped scenarios a horizon of 12 takes well
under a second (``benchmarks/bench_oracle.py``). A search that expands more than
``max_nodes`` states stops with :class:`~tradeguard.errors.InvalidConfig`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tradeguard._validation import check_int, check_number
from tradeguard.env import (
    Action,
    EnvConfig,
    Machine,
    Market,
    PortfolioState,
    RewardConfig,
    RewardShaper,
    ShaperState,
    check_components,
    initial_state,
    total_reward,
)
from tradeguard.errors import InvalidConfig
from tradeguard.invariants.audit._bound import Objective, UpperBound
from tradeguard.invariants.audit._rollout import Rollout, _as_action, _replay, as_prices
from tradeguard.limits import MAX_ORACLE_HORIZON

__all__ = [
    "DEFAULT_MAX_NODES",
    "MAX_HORIZON",
    "Objective",
    "OptimalPlan",
    "Oracle",
]

MAX_HORIZON = MAX_ORACLE_HORIZON
"""Longest market (in steps) the oracle accepts (:data:`tradeguard.limits.MAX_ORACLE_HORIZON`)."""

DEFAULT_MAX_NODES = 2_000_000
"""States the oracle may expand before it gives up with :class:`InvalidConfig`."""

_OBJECTIVES: tuple[Objective, ...] = ("shaped", "pnl")

_ACTIONS: tuple[Action, ...] = tuple(Action)
_NO_HIST = ShaperState(0, 0, 0)



@dataclass(frozen=True, slots=True)
class OptimalPlan:
    """The oracle's answer: an optimal action sequence and its replay.

    Attributes:
        objective: ``"shaped"`` (sum of the shaped rewards) or ``"pnl"`` (final equity).
        rollout: The optimal sequence replayed: actions, rewards, shaped return, PnL.
        value: The optimum of the objective (shaped return, or PnL in minor units).
        allow_rejections: Whether rejected actions were allowed in the search.
        nodes: States the search expanded (a measure of its work).
    """

    objective: Objective
    rollout: Rollout
    value: float
    allow_rejections: bool = True
    nodes: int = field(default=0, compare=False)

    @property
    def actions(self) -> tuple[Action, ...]:
        """The optimal predicted actions."""
        return self.rollout.predicted


class _Search:
    """One market, one objective: the memo table and the search functions."""

    __slots__ = (
        "H",
        "bound",
        "children",
        "max_nodes",
        "memo",
        "nodes",
    )

    def __init__(
        self,
        H: int,
        children: Callable[[int, PortfolioState, ShaperState], list[tuple[Action, float, PortfolioState, ShaperState, tuple[Any, ...]]]],
        bound: Callable[[int, PortfolioState, ShaperState], float],
        max_nodes: int,
    ) -> None:
        self.H = H
        self.children = children
        self.bound = bound
        self.max_nodes = max_nodes
        self.memo: dict[tuple[Any, ...], tuple[float, bool]] = {}
        self.nodes = 0

    def search(
        self, t: int, s: PortfolioState, hist: ShaperState, key: tuple[Any, ...], alpha: float
    ) -> tuple[float, bool]:
        """Fail-low branch and bound: ``(v, True)`` with the exact value when it exceeds ``alpha``;
        otherwise possibly ``(u, False)`` with an upper bound ``u <= alpha``."""
        memo = self.memo
        hit = memo.get(key)
        if hit is not None and (hit[1] or hit[0] <= alpha):
            return hit
        if t == self.H:
            return 0.0, True
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise InvalidConfig(
                f"the oracle expanded {self.max_nodes:,} states on a market of {self.H} steps without "
                "finishing (max_nodes). Use a shorter market, or raise max_nodes."
            )
        bound = self.bound
        ranked = []
        for _a, r, s2, h2, k2 in self.children(t, s, hist):
            ranked.append((r + bound(t + 1, s2, h2), r, s2, h2, k2))
        ranked.sort(key=_first, reverse=True)
        best = -math.inf
        hi = -math.inf
        search = self.search
        t1 = t + 1
        for ub, r, s2, h2, k2 in ranked:
            thr = alpha if alpha > best else best
            if ub <= thr:
                if ub > hi:
                    hi = ub
                continue
            v, exact = search(t1, s2, h2, k2, thr - r)
            total = r + v
            if exact and total > best:
                best = total
            if total > hi:
                hi = total
        result = (best, True) if best > alpha else (hi, False)
        memo[key] = result
        return result

    def value_at_least(
        self, t: int, s: PortfolioState, hist: ShaperState, key: tuple[Any, ...], need: float
    ) -> bool:
        """Whether some continuation from the state earns more than ``need``."""
        if self.bound(t, s, hist) <= need:
            return False
        v, exact = self.search(t, s, hist, key, need)
        return exact and v > need


def _first(item: tuple[Any, ...]) -> float:
    return float(item[0])


class Oracle:
    """Exact optimal action sequences of one machine and reward shaper on short markets.

    Args:
        env: The machine's configuration (cash, sizes, fees, disabled actions).
        reward: The reward shaper's weights.
        max_nodes: States one search may expand before it stops with :class:`InvalidConfig`.
        tie_tolerance: Shaped returns within ``tie_tolerance * max(1, |optimum|)`` tie.

    Example:
        >>> oracle = Oracle(EnvConfig(), RewardConfig())
        >>> plan = oracle.solve([10_000, 10_300, 10_100], objective="pnl")
        >>> [a.name for a in plan.actions], plan.rollout.pnl
        (['BUY_LARGE', 'SELL_ALL'], 13705)
    """

    def __init__(
        self,
        env: EnvConfig | None = None,
        reward: RewardConfig | None = None,
        *,
        max_nodes: int = DEFAULT_MAX_NODES,
        tie_tolerance: float = 1e-9,
    ) -> None:
        self.env = env or EnvConfig()
        self.reward = reward or RewardConfig()
        check_int("max_nodes", max_nodes, min_value=1)
        check_number("tie_tolerance", tie_tolerance, min_value=0.0, max_value=1e-3)
        self.max_nodes = max_nodes
        self.tie_tolerance = float(tie_tolerance)
        self._machine = Machine(self.env)
        self._shaper = RewardShaper(self.reward, self.env.cash)
        # Custom components: checked to be functions of the step and their declared history
        # (the memo keys on it); their bound per step enters the search's upper bound.
        check_components(self.env, self.reward)
        r = self.reward
        self._curriculum = r.curriculum_min_share > 0.0 and bool(r.curriculum_actions)
        self._diversity = r.diversity_bonus != 0.0
        self._bound = UpperBound(self.env, self.reward, self._shaper, curriculum=self._curriculum)

    # ------------------------------------------------------------------ public

    def solve(
        self,
        prices: Market | Sequence[int],
        objective: Objective = "shaped",
        *,
        allow_rejections: bool = True,
    ) -> OptimalPlan:
        """The optimal action sequence on ``prices`` for ``objective``.

        Args:
            prices: The market: ``H + 1`` prices in minor units for a horizon of ``H`` steps,
                ``1 <= H <= MAX_HORIZON``.
            objective: ``"shaped"`` maximizes the sum of the shaped rewards; ``"pnl"``
                maximizes final equity (cash plus position at the last price).
            allow_rejections: When False, only actions that execute may be predicted
                (the best an agent behind a correct action mask can do).

        Returns:
            The :class:`OptimalPlan`, tie-broken as the module docstring says.

        Raises:
            InvalidConfig: unknown objective, horizon above :data:`MAX_HORIZON`, or more
                than ``max_nodes`` states expanded.
            InvalidMarket: the prices are not a market.
        """
        if objective not in _OBJECTIVES:
            raise InvalidConfig(f"objective={objective!r}; expected one of {', '.join(_OBJECTIVES)}.")
        p = as_prices(prices)
        H = len(p) - 1
        if H > MAX_HORIZON:
            raise InvalidConfig(
                f"the market has {H} steps ({len(p)} prices); the exact oracle handles at most "
                f"{MAX_HORIZON} (its work grows up to 4^H). Audit a shorter window, e.g. the first "
                f"{MAX_HORIZON + 1} prices."
            )
        if objective == "pnl":
            actions, value, nodes = self._optimize(p, "pnl", allow_rejections=False)
            return OptimalPlan("pnl", self._rollout(p, actions), value, allow_rejections, nodes)
        actions, value, nodes = self._optimize(p, "shaped", allow_rejections=allow_rejections)
        if allow_rejections and any(
            v is not None for v in self._rollout(p, actions).reasons
        ):
            free, free_value, free_nodes = self._optimize(p, "shaped", allow_rejections=False)
            nodes += free_nodes
            if free_value >= value - self._tol(value):
                actions = free
        return OptimalPlan("shaped", self._rollout(p, actions), value, allow_rejections, nodes)

    def solve_both(self, prices: Market | Sequence[int]) -> tuple[OptimalPlan, OptimalPlan]:
        """``(shaped-optimal, PnL-optimal)`` plans on the same market."""
        return self.solve(prices, "shaped"), self.solve(prices, "pnl")

    def rollout(self, prices: Market | Sequence[int], actions: Sequence[Action | int]) -> Rollout:
        """Replay ``actions`` with this oracle's machine and shaper (see :func:`rollout`)."""
        p = as_prices(prices)
        acts = tuple(_as_action(a) for a in actions)
        if len(p) < len(acts) + 1:
            raise InvalidConfig(f"{len(acts)} actions need {len(acts) + 1} prices; got {len(p)}.")
        return _replay(self._machine, self._shaper, p, acts)

    # ---------------------------------------------------------------- machinery

    def _rollout(self, p: tuple[int, ...], actions: tuple[Action, ...]) -> Rollout:
        return _replay(self._machine, self._shaper, p, actions)

    def _tol(self, value: float) -> float:
        return self.tie_tolerance * max(1.0, abs(value))

    def _optimize(
        self, p: tuple[int, ...], objective: Objective, *, allow_rejections: bool
    ) -> tuple[tuple[Action, ...], float, int]:
        H = len(p) - 1
        children = self._children_fn(p, objective, allow_rejections)
        bound = self._bound.for_market(p, objective)
        search = _Search(H, children, bound, self.max_nodes)
        s0 = initial_state(self.env)
        h0 = self._shaper.initial() if objective == "shaped" else _NO_HIST
        key0 = self._key(0, s0, h0, objective)
        value, exact = search.search(0, s0, h0, key0, -math.inf)
        assert exact
        # Reconstruct the preferred optimal sequence: at each step the first child in
        # preference order from which the remaining target is still reachable.
        if objective == "pnl":
            need = value - 0.5
            step_slack = 0.0
        else:
            tol = self._tol(value)
            need = value - tol
            step_slack = tol / (2 * H)
        actions: list[Action] = []
        t, s, h = 0, s0, h0
        while t < H:
            for a, r, s2, h2, k2 in children(t, s, h):
                if t + 1 == H:
                    ok = r > need
                else:
                    ok = search.value_at_least(t + 1, s2, h2, k2, need - r - step_slack)
                if ok:
                    actions.append(a)
                    need = need - r - step_slack
                    t, s, h = t + 1, s2, h2
                    break
            else:  # pragma: no cover - the optimum is reachable by construction
                raise AssertionError(f"oracle: no continuation reaches the optimum at step {t}")
        return tuple(actions), float(value), search.nodes

    def _key(self, t: int, s: PortfolioState, h: ShaperState, objective: Objective) -> tuple[Any, ...]:
        if objective == "pnl":
            return (t, s)
        return (t, s, h.curriculum_count if self._curriculum else 0, h.seen if self._diversity else 0, h.custom)

    def _children_fn(
        self, p: tuple[int, ...], objective: Objective, allow_rejections: bool
    ) -> Callable[[int, PortfolioState, ShaperState], list[tuple[Action, float, PortfolioState, ShaperState, tuple[Any, ...]]]]:
        """Successors of a state in preference order (HOLD, executable by id, rejected by id),
        without duplicates (same successor state and same reward)."""
        machine = self._machine
        verdicts_of = machine.verdicts
        apply = machine.apply
        shape = self._shaper.shape
        H = len(p) - 1
        curriculum = self._curriculum
        diversity = self._diversity
        cap = math.ceil(self.reward.curriculum_min_share * H) if curriculum else 0
        pnl = objective == "pnl"
        actions = _ACTIONS

        def children(
            t: int, s: PortfolioState, h: ShaperState
        ) -> list[tuple[Action, float, PortfolioState, ShaperState, tuple[Any, ...]]]:
            price = p[t]
            nxt = p[t + 1]
            verdicts = verdicts_of(s, price)[0]
            out: list[tuple[Action, float, PortfolioState, ShaperState, tuple[Any, ...]]] = []
            seen_keys: set[tuple[Any, ...]] = set()
            rejected: list[Action] = []
            t1 = t + 1
            k2: tuple[Any, ...]
            if pnl:
                e0 = s.cash + s.position * price
                for a in actions:
                    if verdicts[a] is not None:
                        continue
                    s2 = apply(s, a, price, None)[0]
                    k2 = (t1, s2)
                    if k2 in seen_keys:
                        continue
                    seen_keys.add(k2)
                    out.append((a, float(s2.cash + s2.position * nxt - e0), s2, _NO_HIST, k2))
                return out
            # Executable actions first, then (if allowed) rejected ones: the order is the
            # tie-break, so a rejection-free sequence wins any tie.
            executable = [a for a in actions if verdicts[a] is None]
            rejected.extend(a for a in actions if verdicts[a] is not None)
            for a in executable + (rejected if allow_rejections else []):
                s2, outcome = apply(s, a, price, verdicts[a])
                comps, h2 = shape(h, a, outcome, s, s2, price, nxt)
                r = total_reward(comps)
                k2 = (
                    t1,
                    s2,
                    min(h2.curriculum_count, cap) if curriculum else 0,
                    h2.seen if diversity else 0,
                    h2.custom,
                )
                if (k2, r) in seen_keys:
                    continue
                seen_keys.add((k2, r))
                out.append((a, r, s2, h2, k2))
            return out

        return children
