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

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tradeguard._validation import check_int, check_number
from tradeguard.env import (
    COMPONENT_NAMES,
    Action,
    EnvConfig,
    Machine,
    Market,
    Outcome,
    PortfolioState,
    RejectReason,
    RewardConfig,
    RewardShaper,
    ShaperState,
    check_components,
    initial_state,
    rest_bound,
    total_reward,
)
from tradeguard.errors import InvalidConfig
from tradeguard.limits import MAX_ORACLE_HORIZON

__all__ = [
    "DEFAULT_MAX_NODES",
    "MAX_HORIZON",
    "Objective",
    "OptimalPlan",
    "Oracle",
    "Rollout",
    "as_prices",
    "rollout",
]

MAX_HORIZON = MAX_ORACLE_HORIZON
"""Longest market (in steps) the oracle accepts (:data:`tradeguard.limits.MAX_ORACLE_HORIZON`)."""

DEFAULT_MAX_NODES = 2_000_000
"""States the oracle may expand before it gives up with :class:`InvalidConfig`."""

Objective = Literal["shaped", "pnl"]
_OBJECTIVES: tuple[Objective, ...] = ("shaped", "pnl")

_ACTIONS: tuple[Action, ...] = tuple(Action)
_NO_HIST = ShaperState(0, 0, 0)
_ZERO = PortfolioState(0, 0, 0)
_ALL_SEEN = (1 << len(_ACTIONS)) - 1


def as_prices(market: Market | Sequence[int] | Any, *, what: str = "market") -> tuple[int, ...]:
    """The prices of ``market`` as a tuple of ints (minor units), validated.

    Args:
        market: A :class:`~tradeguard.env.Market` or a sequence of integer prices in
            minor units (at least 2, each >= 1).
        what: Name used in error messages.

    Returns:
        The prices as plain Python ints.

    Raises:
        InvalidMarket: fewer than 2 prices, a price below 1, or non-integer prices.
    """
    if isinstance(market, Market):
        return tuple(int(p) for p in market.prices.tolist())
    arr = np.asarray(market)
    if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.rint(arr)):
        arr = arr.astype(np.int64)
    return tuple(int(p) for p in Market(arr, name=what).prices.tolist())


@dataclass(frozen=True, slots=True)
class Rollout:
    """One action sequence replayed on one market through the machine and the reward shaper.

    Exactly what :class:`~tradeguard.env.TradingEnv` computes for the same prices and
    actions: step ``t`` executes at ``prices[t]`` and marks to ``prices[t + 1]``.

    Attributes:
        prices: The market, in minor units (``horizon + 1`` prices).
        predicted: The action predicted at each step.
        executed: The action that executed (HOLD when rejected).
        reasons: Why each step's action was rejected, or ``None``.
        rewards: Each step's shaped reward (the sum of its components).
        components: Each step's reward components, in ``COMPONENT_NAMES`` order.
        states: The portfolio before each step, then the final one (``horizon + 1``).
        hists: The shaper's history before each step, then the final one.
        initial_cash: Starting cash of the account, in minor units.
        component_names: The names of ``components``' entries (custom components last).
    """

    prices: tuple[int, ...]
    predicted: tuple[Action, ...]
    executed: tuple[Action, ...]
    reasons: tuple[RejectReason | None, ...]
    rewards: tuple[float, ...]
    components: tuple[tuple[float, ...], ...]
    states: tuple[PortfolioState, ...]
    hists: tuple[ShaperState, ...]
    initial_cash: int
    component_names: tuple[str, ...] = COMPONENT_NAMES

    @property
    def horizon(self) -> int:
        """Number of steps."""
        return len(self.predicted)

    @property
    def shaped_return(self) -> float:
        """Sum of the shaped rewards (what the agent maximizes)."""
        return float(sum(self.rewards))

    @property
    def final_equity(self) -> int:
        """Cash plus position at the last price, in minor units."""
        s = self.states[-1]
        return s.cash + s.position * self.prices[-1]

    @property
    def pnl(self) -> int:
        """Final equity minus starting equity, in minor units (an open position counts at the last price)."""
        s0 = self.states[0]
        return self.final_equity - (s0.cash + s0.position * self.prices[0])

    @property
    def pnl_percent(self) -> float:
        """PnL in percent of starting cash (the unit of the reward's PnL components)."""
        return 100.0 * self.pnl / self.initial_cash

    @property
    def rejections(self) -> int:
        """Steps whose predicted action was rejected."""
        return sum(r is not None for r in self.reasons)

    @property
    def trades(self) -> int:
        """Steps that executed something other than HOLD."""
        return sum(a is not Action.HOLD for a in self.executed)

    @property
    def ends_in_position(self) -> bool:
        """True when a position is still open after the last step."""
        return self.states[-1].position > 0

    @property
    def opened(self) -> bool:
        """True when the sequence executed a buy from flat."""
        return any(a in _OPENS for a in self.executed)

    @property
    def closed(self) -> bool:
        """True when some sell brought the position to zero."""
        return any(
            a is not Action.HOLD and self.states[i].position > 0 and self.states[i + 1].position == 0
            for i, a in enumerate(self.executed)
        )

    def component_totals(self) -> dict[str, float]:
        """Each component summed over the steps."""
        return {
            name: float(sum(step[i] for step in self.components))
            for i, name in enumerate(self.component_names)
        }

    def labels(self) -> list[str]:
        """Each step as text: the action name, with ``(rejected: REASON)`` when it was rejected."""
        return [
            a.name if r is None else f"{a.name} (rejected: {r.value})"
            for a, r in zip(self.predicted, self.reasons, strict=True)
        ]

    def summary(self) -> dict[str, Any]:
        """Plain JSON values: actions by name, rejected flags, shaped return, PnL."""
        return {
            "actions": [a.name for a in self.predicted],
            "executed": [a.name for a in self.executed],
            "rejected": [r.value if r is not None else None for r in self.reasons],
            "rewards": [round(r, 10) for r in self.rewards],
            "shaped_return": round(self.shaped_return, 10),
            "pnl": self.pnl,
            "pnl_percent": round(self.pnl_percent, 10),
            "final_equity": self.final_equity,
        }


_OPENS = frozenset({Action.BUY_SMALL, Action.BUY_MEDIUM, Action.BUY_LARGE})


def rollout(
    prices: Market | Sequence[int],
    actions: Sequence[Action | int],
    *,
    env: EnvConfig | None = None,
    reward: RewardConfig | None = None,
) -> Rollout:
    """Replay ``actions`` on ``prices`` through the machine and the reward shaper.

    Args:
        prices: The market (``len(actions) + 1`` prices in minor units, or a longer
            market: only the first ``len(actions) + 1`` prices are used).
        actions: One predicted action per step (members of :class:`Action` or ids).
        env: The machine's configuration (default :class:`EnvConfig`).
        reward: The reward shaper's weights (default :class:`RewardConfig`).

    Returns:
        The :class:`Rollout`: rewards, components, states and rejections of every step.

    Raises:
        InvalidConfig: fewer prices than ``len(actions) + 1``, or an action that is not one.

    Example:
        >>> r = rollout([10_000, 10_100, 10_200], [Action.BUY_LARGE, Action.SELL_ALL])
        >>> r.executed[1].name, r.pnl
        ('SELL_ALL', 3915)
    """
    env = env or EnvConfig()
    reward = reward or RewardConfig()
    p = as_prices(prices)
    acts = tuple(_as_action(a) for a in actions)
    if len(p) < len(acts) + 1:
        raise InvalidConfig(
            f"{len(acts)} actions need {len(acts) + 1} prices (step t executes at prices[t] and "
            f"marks to prices[t+1]); got {len(p)}."
        )
    return _replay(Machine(env), RewardShaper(reward, env.cash), p, acts)


def _as_action(a: Action | int) -> Action:
    if isinstance(a, Action):
        return a
    if isinstance(a, (int, np.integer)) and not isinstance(a, bool) and 0 <= int(a) < len(_ACTIONS):
        return _ACTIONS[int(a)]
    raise InvalidConfig(f"action={a!r} is not an action; expected an Action or an id 0..{len(_ACTIONS) - 1}.")


def _replay(
    machine: Machine, shaper: RewardShaper, prices: tuple[int, ...], actions: tuple[Action, ...]
) -> Rollout:
    state = initial_state(machine.config)
    hist = shaper.initial()
    states, hists = [state], [hist]
    executed: list[Action] = []
    reasons: list[RejectReason | None] = []
    rewards: list[float] = []
    comps: list[tuple[float, ...]] = []
    for t, a in enumerate(actions):
        price, next_price = prices[t], prices[t + 1]
        verdicts, _ = machine.verdicts(state, price)
        after, outcome = machine.apply(state, a, price, verdicts[a])
        c, hist = shaper.shape(hist, a, outcome, state, after, price, next_price)
        executed.append(outcome.executed)
        reasons.append(outcome.reason)
        rewards.append(total_reward(c))
        comps.append(c)
        state = after
        states.append(state)
        hists.append(hist)
    return Rollout(
        prices=prices[: len(actions) + 1],
        predicted=actions,
        executed=tuple(executed),
        reasons=tuple(reasons),
        rewards=tuple(rewards),
        components=tuple(comps),
        states=tuple(states),
        hists=tuple(hists),
        initial_cash=machine.config.cash,
        component_names=shaper.component_names,
    )


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
        self._custom_rest = rest_bound(self.reward.custom_components) if self.reward.custom_components else None
        r = self.reward
        self._curriculum = r.curriculum_min_share > 0.0 and bool(r.curriculum_actions)
        self._diversity = r.diversity_bonus != 0.0
        self._extras: dict[tuple[int, int, int], float] = {}
        disabled = set(self.env.disabled_actions)
        opens = [a for a in (Action.BUY_SMALL, Action.BUY_MEDIUM, Action.BUY_LARGE) if a not in disabled]
        self._buy_frac = max((self.env.size_ppm(a) / 1e6 for a in opens), default=0.0)
        self._can_open = bool(opens)
        self._can_add = Action.ADD_POSITION not in disabled
        self._add_frac = self.env.size_ppm(Action.ADD_POSITION) / 1e6
        self._fee_rate = self.env.fee_ppm / 1e6
        self._disabled = frozenset(disabled)

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
        bound = self._bound_fn(p, objective)
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

    # ------------------------------------------------------------------ bounds

    def _bound_fn(
        self, p: tuple[int, ...], objective: Objective
    ) -> Callable[[int, PortfolioState, ShaperState], float]:
        """A sound upper bound on what the rest of the episode can still earn from a state.

        Units, not steps. With ``a, b, c, d`` the scaled weights of realized PnL,
        unrealized change, unrealized level and cost, the PnL part of the return is a
        sum over the units traded: sells take the same fraction of every lot (average
        cost), so a unit bought at step ``i`` (at ``p[i]``) and sold at step ``m`` earns
        exactly ``g(i, m) = a*(p[m] - p[i]) + c*sum(p[i+1..m] - p[i])`` (its realized
        PnL, and its unrealized PnL on each step it was held; the change terms cancel),
        and ``b*(p[H] - p[i]) + c*sum(p[i+1..H] - p[i])`` if never sold; a unit held now
        at the average cost ``q`` likewise. Fees cost at least ``fee rate x notional`` on
        each side. A *slot* of position can hold a sequence of such round trips, and
        ``best[j]``, the most one slot free from step ``j`` on can earn, is a small dynamic
        program over the market, computed once. Position is capped by the largest
        invested fraction any continuation can reach (equity grows at most by the
        invested fraction of each rise, the fraction at most by a buy or an add per
        step), and the cap never shrinks, so every continuation fits in the slots:
        the units held now (each sold at its best step, then its slot reused) plus, for
        each step ``k``, the slots the cap gains at ``k`` times ``best[k]``. Rounding of
        the removed cost basis on partial sells (under one minor unit per sell) is
        added as a margin, a fee-paying cost weight as its largest fee per step, and
        the history terms (penalty, curriculum, diversity) separately.
        """
        H = len(p) - 1
        if objective == "pnl":
            a_w, b_w, c_w, d_w = 1.0, 1.0, 0.0, 1.0
            extras: Callable[[int, ShaperState], float] | None = None
        else:
            scale = self._shaper.pnl_scale
            r = self.reward
            a_w = r.realized_pnl * scale
            b_w = r.unrealized_pnl_change * scale
            c_w = r.unrealized_pnl_level * scale
            d_w = r.transaction_cost * scale
            extras = self._extras_fn(H)
        amb = a_w - b_w
        neg_d = -d_w
        fee_rate = self._fee_rate
        # Per unit of notional, what a trade surely costs (fees round up, never down).
        cost = d_w * fee_rate if d_w > 0.0 else 0.0
        lot = self.env.lot_size
        can_open, can_add = self._can_open, self._can_add
        buy_frac, add_frac = self._buy_frac, self._add_frac
        prices = [float(x) for x in p]
        cum = [0.0] * (H + 1)  # cum[k] = p[0] + ... + p[k]
        acc = 0.0
        for k in range(H + 1):
            acc += prices[k]
            cum[k] = acc
        last = prices[H]
        # best[j]: the most one free slot can earn from step j on (round trips bought at i >= j,
        # a re-buy at the earliest one step after a sell); best[H] = 0, never negative.
        best = [0.0] * (H + 2)
        for j in range(H - 1, -1, -1):
            pj = prices[j]
            buy = cost * pj
            v = best[j + 1]
            g = b_w * (last - pj) + c_w * (cum[H] - cum[j] - (H - j) * pj) - buy
            if g > v:
                v = g
            for m in range(j + 1, H):
                pm = prices[m]
                g = a_w * (pm - pj) + c_w * (cum[m] - cum[j] - (m - j) * pj) - buy - cost * pm + best[m + 1]
                if g > v:
                    v = g
            best[j] = v
        # exits[t]: for the units held at step t, one line per exit step m (t..H-1, or H for
        # never): the units earn position * alpha - beta * cost_basis, then reuse the slot.
        exits: list[list[tuple[float, float]]] = []
        for t in range(H + 1):
            pt = prices[t]
            lines = [(b_w * (last - pt) + c_w * (cum[H] - cum[t]), c_w * (H - t))]
            for m in range(t, H):
                pm = prices[m]
                lines.append(
                    (
                        a_w * pm - b_w * pt + c_w * (cum[m] - cum[t]) - cost * pm + best[m + 1],
                        amb + c_w * (m - t),
                    )
                )
            exits.append(lines)
        # Rounding margin from step t on: each partial sell removes up to one minor unit less
        # cost basis than the exact share (realized PnL up to 1 more; the excess stays in the
        # basis, at most one unit per sell so far, and lowers what is held).
        pos_amb = amb if amb > 0.0 else 0.0
        neg_amb = -amb if amb < 0.0 else 0.0
        neg_c = -c_w if c_w < 0.0 else 0.0
        margin = [0.0] * (H + 1)
        for t in range(H):
            margin[t] = sum(pos_amb + neg_amb * (k - t) + neg_c * (k - t + 1) for k in range(t, H))
        lot_costs = [2.0 * lot * prices[k] + 2.0 for k in range(H)]
        rates = [(prices[k + 1] - prices[k]) / prices[k] for k in range(H)]
        cache: dict[tuple[int, PortfolioState], float] = {}

        def port(t: int, s: PortfolioState) -> float:
            hit = cache.get((t, s))
            if hit is not None:
                return hit
            position = s.position
            equity = s.cash + position * p[t]
            if equity <= 0:
                cache[(t, s)] = 0.0
                return 0.0
            total = margin[t]
            if position > 0:
                basis = float(s.cost_basis)
                units_now = float(position)
                held = -math.inf
                for alpha, beta in exits[t]:
                    v = units_now * alpha - beta * basis
                    if v > held:
                        held = v
                total += held
            e_max = e_lo = float(equity)
            units = float(position)
            f = position * prices[t] / e_max
            for k in range(t, H):
                price = prices[k]
                if neg_d > 0.0:
                    total += neg_d * (fee_rate * e_max + 1.0)
                # The largest invested fraction after this step's trade.
                if e_lo <= 1.0:
                    fa = 1.0
                else:
                    lot_frac = lot_costs[k] / e_lo
                    fa = f
                    if can_open:
                        if buy_frac > fa:
                            fa = buy_frac
                        if lot_frac > fa:
                            fa = lot_frac
                    if can_add:
                        grow = add_frac * (1.0 - f)
                        added = f + (grow if grow > lot_frac else lot_frac)
                        if added > fa:
                            fa = added
                    fa = fa * (1.0 + 1e-9) + 2.0 / e_lo
                    if fa > 1.0:
                        fa = 1.0
                after = fa * e_max / price
                if after > units:
                    total += (after - units) * best[k]
                else:
                    after = units
                rate = rates[k]
                if rate > 0.0:
                    e_max += after * (prices[k + 1] - price)
                    e_lo = e_lo * (1.0 - fee_rate) - 1.0
                else:
                    e_lo = (e_lo * (1.0 - fee_rate) - 1.0) * (1.0 + rate)
                f = fa * (1.0 + rate) / (1.0 + fa * rate)
                units = after
            cache[(t, s)] = total
            return total

        if extras is None:

            def bound_pnl(t: int, s: PortfolioState, h: ShaperState) -> float:
                u = port(t, s)
                return u + 1e-9 * abs(u) + 1e-9

            return bound_pnl

        extras_fn = extras
        custom_rest = self._custom_rest
        if custom_rest is not None:  # what the custom components can still pay (their declared bounds)

            def bound_custom(t: int, s: PortfolioState, h: ShaperState) -> float:
                u = port(t, s) + extras_fn(t, h) + custom_rest(h.custom, H - t)
                return u + 1e-9 * abs(u) + 1e-9

            return bound_custom

        def bound_shaped(t: int, s: PortfolioState, h: ShaperState) -> float:
            u = port(t, s) + extras_fn(t, h)
            return u + 1e-9 * abs(u) + 1e-9

        return bound_shaped

    def _extras_fn(self, H: int) -> Callable[[int, ShaperState], float]:
        """Upper bound on the penalty, curriculum and diversity components still to come.

        Penalty and curriculum: a small dynamic program over (step, curriculum count)
        in which every non-HOLD action may either execute or be rejected, whichever
        pays more (disabled actions are always rejected). Diversity: the bonus for each
        action not yet predicted, at most one per remaining step.
        """
        shaper = self._shaper
        if self.reward.custom_components:  # the built-in history terms only (custom ones: bound_custom)
            shaper = RewardShaper(dataclasses.replace(self.reward, custom_components=()), self.env.cash)
        memo = self._extras
        curriculum = self._curriculum
        cap = math.ceil(self.reward.curriculum_min_share * H) if curriculum else 0
        bonus = max(self.reward.diversity_bonus, 0.0)
        disabled = self._disabled
        ok = Outcome(Action.HOLD, None, 0, 0, 0)
        bad = Outcome(Action.HOLD, RejectReason.DISABLED, 0, 0, 0)
        n_actions = len(_ACTIONS)

        def pen_curr(k: int, count: int) -> float:
            if k >= H:
                return 0.0
            key = (H, k, count)
            hit = memo.get(key)
            if hit is not None:
                return hit
            best = -math.inf
            hist = ShaperState(k, count, _ALL_SEEN)
            for a in _ACTIONS:
                options = []
                if a is Action.HOLD or a not in disabled:
                    options.append(ok)
                if a is not Action.HOLD:
                    options.append(bad)
                for out in options:
                    comps, h2 = shaper.shape(hist, a, out, _ZERO, _ZERO, 1, 1)
                    nxt = min(h2.curriculum_count, cap) if curriculum else 0
                    v = comps[4] + comps[5] + pen_curr(k + 1, nxt)
                    if v > best:
                        best = v
            memo[key] = best
            return best

        def extras(t: int, h: ShaperState) -> float:
            count = min(h.curriculum_count, cap) if curriculum else 0
            v = pen_curr(t, count)
            if bonus > 0.0:
                unseen = n_actions - bin(h.seen).count("1")
                v += bonus * min(H - t, unseen)
            return v

        return extras
