"""The black-box reward audit on one market: the optima, the reference behaviours, the findings that fire.

See :mod:`._blackbox` for the finding kinds and what each needs from the adapter.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tradeguard.invariants.audit._blackbox_tree import (
    _HOLD_KIND,
    _TIE,
    EnvRollout,
    _TooManyStates,
    _Tree,
)
from tradeguard.trace import TraceMeta

__all__ = ["MarketAnalysis", "analyse_market"]


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
        for buy in (a for a in range(n) if kinds[a] in ("open", "buy") and a not in disabled):
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
    position: float = 0
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
