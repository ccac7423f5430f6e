"""The oracle's pruning: a sound upper bound on what the rest of an episode can still earn.

:class:`UpperBound` belongs to one machine and reward shaper; :meth:`UpperBound.for_market`
gives, for one market and one objective, a function of ``(step, portfolio, shaper
history)`` that no continuation of the episode can beat. The oracle's search
(:mod:`tradeguard.invariants.audit._oracle`) skips every branch whose bound cannot beat the
best sequence found so far; a bound that is too low would make the oracle wrong, one that
is too high only makes it slower (``tests/test_oracle.py`` checks it against brute force).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Literal

from tradeguard.env import (
    Action,
    EnvConfig,
    Outcome,
    PortfolioState,
    RejectReason,
    RewardConfig,
    RewardShaper,
    ShaperState,
    rest_bound,
)

__all__ = ["Objective", "UpperBound"]

Objective = Literal["shaped", "pnl"]
"""What the oracle maximizes: ``"shaped"`` (the sum of the shaped rewards) or ``"pnl"``."""

_ACTIONS: tuple[Action, ...] = tuple(Action)
_ZERO = PortfolioState(0, 0, 0)
_ALL_SEEN = (1 << len(_ACTIONS)) - 1


class UpperBound:
    """Upper bounds on the rest of an episode's return, for one machine and reward shaper.

    Args:
        env: The machine's configuration (sizes, fees, disabled actions).
        reward: The reward shaper's weights.
        shaper: The reward shaper built from ``reward`` (its PnL scale and ``shape``).
        curriculum: Whether the exploration curriculum is on (its count is then part of
            the state the bound is memoized over).
    """

    __slots__ = (
        "_add_frac",
        "_buy_frac",
        "_can_add",
        "_can_open",
        "_curriculum",
        "_custom_rest",
        "_disabled",
        "_extras",
        "_fee_rate",
        "_shaper",
        "env",
        "reward",
    )

    def __init__(self, env: EnvConfig, reward: RewardConfig, shaper: RewardShaper, *, curriculum: bool) -> None:
        self.env = env
        self.reward = reward
        self._shaper = shaper
        self._curriculum = curriculum
        # What custom components can still pay (their declared bounds per step).
        self._custom_rest = rest_bound(reward.custom_components) if reward.custom_components else None
        self._extras: dict[tuple[int, int, int], float] = {}
        disabled = set(env.disabled_actions)
        opens = [a for a in (Action.BUY_SMALL, Action.BUY_MEDIUM, Action.BUY_LARGE) if a not in disabled]
        self._buy_frac = max((env.size_ppm(a) / 1e6 for a in opens), default=0.0)
        self._can_open = bool(opens)
        self._can_add = Action.ADD_POSITION not in disabled
        self._add_frac = env.size_ppm(Action.ADD_POSITION) / 1e6
        self._fee_rate = env.fee_ppm / 1e6
        self._disabled = frozenset(disabled)

    def for_market(
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
        the history terms (penalty, curriculum, diversity) separately, and custom
        components by their declared bounds.
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
