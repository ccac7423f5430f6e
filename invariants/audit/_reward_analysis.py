"""The reward audit's analysis: everything the audit computes on one market, and the weak-penalty measurement.

:class:`_Auditor` runs the exact oracle (shaped and PnL optima) and the reference
policies on a market, scores every finding kind on it, and caches the result;
:func:`penalty_strength` measures the failed-action penalty against an exploring
policy's reward noise. The search that picks the markets is in ``_reward_search``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeguard._validation import check_int
from tradeguard.env import (
    COMPONENT_NAMES,
    Action,
    BatchEngine,
    EnvConfig,
    Machine,
    Market,
    MarketSpec,
    PortfolioState,
    RewardConfig,
    RewardShaper,
    ShaperState,
)
from tradeguard.errors import InvalidConfig
from tradeguard.invariants.audit._oracle import Oracle
from tradeguard.invariants.audit._reference_policies import ReferencePolicy, _play_policy
from tradeguard.invariants.audit._reward_report import RewardCounterexample, _plain, component_table
from tradeguard.invariants.audit._rollout import Rollout, _play

__all__ = ["penalty_strength"]

_TIE = 1e-9


# ----------------------------------------------------------------------------- weak penalty


def penalty_strength(
    env: EnvConfig,
    reward: RewardConfig,
    market: MarketSpec | None = None,
    *,
    episodes: int = 16,
    steps: int = 200,
    seed: int = 0,
) -> tuple[float, float]:
    """How strong the failed-action penalty is against the reward noise of an exploring policy.

    A uniformly random policy (what epsilon-greedy explores with) plays ``episodes``
    markets drawn from ``market``; the spread is the standard deviation of its
    per-step rewards with the penalty component taken out. From 32 markets on, they are
    stepped at once by a :class:`~tradeguard.env.BatchEngine` (bit-identical to the
    scalar machine, which steps fewer markets and those on which int64 might not be exact).

    Args:
        env: The machine's configuration.
        reward: The reward config.
        market: How markets are drawn (default :class:`MarketSpec`).
        episodes: Markets played.
        steps: Steps per market (at most the config's episode length).
        seed: Seed of the markets and the policy.

    Returns:
        ``(ratio, spread)``: ratio is ``-penalty / spread`` (positive for a penalty,
        negative for a reward paid on rejections), spread is in reward units.

    Example:
        >>> ratio, spread = penalty_strength(EnvConfig(), RewardConfig(failed_action_penalty=-0.05))
        >>> ratio < 1.0
        True
    """
    check_int("episodes", episodes, min_value=1, max_value=10_000)
    check_int("steps", steps, min_value=1)
    market = market or MarketSpec()
    steps = min(steps, env.episode_length)
    # The draws, market by market: its prices, then the policy's actions on it.
    rng = np.random.default_rng([seed, 0xBE7A])
    markets: list[Market] = []
    actions = np.empty((steps, episodes), dtype=np.int64)
    for e in range(episodes):
        markets.append(market.generate(steps + 1, rng))
        # One call draws what ``steps`` calls of rng.integers(7) draw (the bit generator
        # buffers the unused half of a 64-bit output either way; the test against the
        # step-by-step loop checks it).
        actions[:, e] = rng.integers(len(Action), size=steps)
    signal: npt.NDArray[np.float64] | None = None
    if episodes >= _BATCH_MIN_EPISODES:
        try:
            signal = _exploring_signal_batch(env, reward, markets, actions)
        except InvalidConfig:  # int64 might not be exact on these markets: Python integers
            signal = None
    if signal is None:
        signal = _exploring_signal_scalar(env, reward, markets, actions)
    spread = float(np.std(signal))
    penalty = reward.failed_action_penalty
    if spread == 0.0:
        return (math.inf if penalty < 0 else (0.0 if penalty == 0 else -math.inf)), 0.0
    return -penalty / spread, spread


_BATCH_MIN_EPISODES = 32
"""From this many markets on, :func:`penalty_strength` steps them with the BatchEngine (the
same numbers; below it the engine's per-step overhead outweighs the scalar loop)."""


def _exploring_signal_batch(
    env: EnvConfig, reward: RewardConfig, markets: Sequence[Market], actions: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Per-step rewards without the failed-action penalty, every market at once (BatchEngine).

    One env per market, episodes of ``actions.shape[0]`` steps; the result is market by
    market, step by step, as :func:`_exploring_signal_scalar` lists it (bit-identical).

    Raises:
        InvalidConfig: int64 might not be exact on a market (see ``exactness_problem``).
    """
    steps, n = actions.shape
    engine = BatchEngine(n, dataclasses.replace(env, episode_length=steps), reward, markets[0])
    engine.reset(seed=0, options={"market": list(markets)})
    for t in range(steps):
        engine.step(actions[t])
    pen_index = COMPONENT_NAMES.index("failed_action_penalty")
    parts = []
    for i in range(n):
        cols = engine.columns(i, last=True)  # the episode just ended (and auto-reset)
        parts.append(cols["reward"] - cols["components"][:, pen_index])
    return np.concatenate(parts)


def _exploring_signal_scalar(
    env: EnvConfig, reward: RewardConfig, markets: Sequence[Market], actions: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """:func:`_exploring_signal_batch` with the scalar Machine and RewardShaper (Python integers)."""
    machine = Machine(env)
    shaper = RewardShaper(reward, env.cash)
    pen_index = COMPONENT_NAMES.index("failed_action_penalty")
    signal: list[float] = []
    for e, m in enumerate(markets):
        column = [Action(int(a)) for a in actions[:, e]]
        played = _play(machine, shaper, tuple(m.prices.tolist()), len(column), lambda t, mask: column[t])  # noqa: B023 (used in this iteration)
        signal.extend(r - c[pen_index] for r, c in zip(played.rewards, played.components, strict=True))
    return np.array(signal, dtype=np.float64)


# ----------------------------------------------------------------------------- analysis


@dataclass(slots=True)
class _Analysis:
    """Everything computed for one (reward config, market)."""

    reward: RewardConfig
    prices: tuple[int, ...]
    shaped: Rollout
    pnl: Rollout
    free: Rollout | None
    refs: dict[str, Rollout]
    scores: dict[str, float]
    fired: dict[str, dict[str, Any]]


class _Auditor:
    """Oracles, analyses and their cache, shared by every Hypothesis run of one audit."""

    def __init__(
        self,
        env: EnvConfig,
        *,
        pnl_tolerance: float,
        deadline: float,
        policies: Sequence[ReferencePolicy],
    ) -> None:
        self.env = env
        self.machine = Machine(env)
        self.pnl_tolerance = pnl_tolerance
        self.deadline = deadline
        self.policies = tuple(policies)
        self.oracles: dict[RewardConfig, Oracle] = {}
        self.shapers: dict[RewardConfig, RewardShaper] = {}
        self.pnl_plans: dict[tuple[int, ...], tuple[Action, ...]] = {}
        self.cache: dict[tuple[RewardConfig, tuple[int, ...]], _Analysis] = {}
        self.budget_hit = False

    def oracle(self, reward: RewardConfig) -> Oracle:
        o = self.oracles.get(reward)
        if o is None:
            o = self.oracles[reward] = Oracle(self.env, reward)
            self.shapers[reward] = RewardShaper(reward, self.env.cash)
        return o

    def analyse(self, reward: RewardConfig, prices: tuple[int, ...]) -> _Analysis | None:
        """The cached analysis, or a new one; ``None`` once the budget is spent."""
        key = (reward, prices)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        if time.perf_counter() > self.deadline:
            self.budget_hit = True
            return None
        a = self._analyse(reward, prices)
        self.cache[key] = a
        return a

    def _analyse(self, reward: RewardConfig, prices: tuple[int, ...]) -> _Analysis:
        oracle = self.oracle(reward)
        shaper = self.shapers[reward]
        shaped_plan = oracle.solve(prices, "shaped")
        shaped = shaped_plan.rollout
        pnl_actions = self.pnl_plans.get(prices)
        if pnl_actions is None:
            pnl_actions = self.pnl_plans[prices] = oracle.solve(prices, "pnl").actions
        pnl = oracle.rollout(prices, pnl_actions)
        free = None
        if shaped.rejections:
            free = oracle.solve(prices, "shaped", allow_rejections=False).rollout
        refs = {p.name: _play_policy(p, prices, self.machine, shaper, 0) for p in self.policies}
        scores: dict[str, float] = {}
        fired: dict[str, dict[str, Any]] = {}
        tol = _TIE * max(1.0, abs(shaped.shaped_return))
        pnl_tol = self.pnl_tolerance

        # rejection-in-optimum: the oracle returns a rejection only when every sequence
        # without one earns strictly less.
        if free is not None and shaped.shaped_return > free.shaped_return + tol:
            gap = shaped.shaped_return - free.shaped_return
            scores["rejection-in-optimum"] = gap
            fired["rejection-in-optimum"] = {
                "rejected_steps": [t for t, r in enumerate(shaped.reasons) if r is not None],
                "advantage_over_best_without_rejections": gap,
            }
        else:
            scores["rejection-in-optimum"] = 0.0

        # invalid-not-worse-than-hold: one step's reward, in every state the sequences visit.
        worst = self._worst_rejection(reward, prices, [("shaped-optimal", shaped), ("PnL-optimal", pnl), *refs.items()])
        if worst is not None:
            scores["invalid-not-worse-than-hold"] = worst["margin"]
            if worst["margin"] >= -_TIE:
                fired["invalid-not-worse-than-hold"] = worst
        else:
            scores["invalid-not-worse-than-hold"] = -1e9

        # idle-optimum
        if shaped.trades == 0 and pnl.pnl_percent > pnl_tol:
            scores["idle-optimum"] = pnl.pnl_percent
            fired["idle-optimum"] = {"pnl_optimal_percent": pnl.pnl_percent}
        else:
            scores["idle-optimum"] = 0.0

        # never-close-optimum
        never: dict[str, Any] | None = None
        gap_a = 0.0
        if (
            shaped.opened
            and not shaped.closed
            and shaped.ends_in_position
            and pnl.closed
            and not pnl.ends_in_position
            and pnl.pnl_percent - shaped.pnl_percent > pnl_tol
        ):
            gap_a = pnl.pnl_percent - shaped.pnl_percent
            never = {"pattern": "holds to the end", "pnl_gap_percent": gap_a}
        gap_b = 0.0
        hold_return = refs["hold"].shaped_return if "hold" in refs else 0.0
        for name, r in refs.items():
            if not name.startswith("buy-and-never-sell"):
                continue
            # The V1-V9 pattern: buying and holding pays (more than doing nothing) and more
            # than trading well, while it makes less money.
            shaped_gain = r.shaped_return - max(pnl.shaped_return, hold_return)
            pnl_loss = pnl.pnl_percent - r.pnl_percent
            if shaped_gain > _TIE * max(1.0, abs(pnl.shaped_return)) and pnl_loss > pnl_tol and pnl_loss > gap_b:
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

        # pnl-regret
        regret = pnl.pnl_percent - shaped.pnl_percent
        scores["pnl-regret"] = regret
        if regret > pnl_tol:
            fired["pnl-regret"] = {"regret_percent": regret, "regret": pnl.pnl - shaped.pnl}
        return _Analysis(reward, prices, shaped, pnl, free, refs, scores, fired)

    def _worst_rejection(
        self, reward: RewardConfig, prices: tuple[int, ...], paths: Iterable[tuple[str, Rollout]]
    ) -> dict[str, Any] | None:
        """The rejected action whose one-step reward comes closest to (or beats) HOLD's."""
        machine = self.machine
        shaper = self.shapers[reward]
        seen: set[tuple[int, PortfolioState, ShaperState]] = set()
        best: dict[str, Any] | None = None
        best_margin = -math.inf
        for label, r in paths:
            for t in range(r.horizon):
                s, h = r.states[t], r.hists[t]
                key = (t, s, h)
                if key in seen:
                    continue
                seen.add(key)
                price, nxt = prices[t], prices[t + 1]
                verdicts = machine.verdicts(s, price)[0]
                hold_after, hold_out = machine.apply(s, Action.HOLD, price, None)
                hold_r = sum(shaper.shape(h, Action.HOLD, hold_out, s, hold_after, price, nxt)[0])
                for a in Action:
                    reason = verdicts[a]
                    if reason is None:
                        continue
                    after, out = machine.apply(s, a, price, reason)
                    rej_r = sum(shaper.shape(h, a, out, s, after, price, nxt)[0])
                    margin = rej_r - hold_r
                    if margin > best_margin + _TIE:
                        best_margin = margin
                        best = {
                            "margin": margin,
                            "step": t,
                            "action": a.name,
                            "reason": reason.value,
                            "reward_rejected": rej_r,
                            "reward_hold": hold_r,
                            "position": s.position,
                            "cash": s.cash,
                            "reached_by": label,
                            "prefix": [x.name for x in r.predicted[:t]],
                        }
        return best


# ----------------------------------------------------------------------------- messages


def _money(minor: int, unit: float) -> str:
    return f"{minor * unit:+,.2f}"


def _message(kind: str, a: _Analysis, unit: float) -> str:
    s, p = a.shaped, a.pnl
    d = a.fired[kind]
    if kind == "rejection-in-optimum":
        free = a.free
        assert free is not None
        steps = ", ".join(
            f"step {t} {s.predicted[t].name} (rejected: {s.reasons[t].value})"  # type: ignore[union-attr]
            for t in d["rejected_steps"]
        )
        return (
            f"The reward pays for trying the impossible: the shaped-optimal sequence predicts {steps}. "
            f"It earns {s.shaped_return:+.4f}; the best sequence without rejected actions earns "
            f"{free.shaped_return:+.4f} (PnL {_money(free.pnl, unit)}). A policy that maximizes this "
            "reward learns to predict actions the machine refuses"
            + (
                " (the seed's V10.1 double bind: a rejected SELL costs less than the curriculum "
                "charges for not trying)."
                if a.reward.curriculum_min_share > 0
                else "."
            )
            + _culprits(a.reward)
        )
    if kind == "invalid-not-worse-than-hold":
        return (
            f"At step {d['step']} (position {d['position']} units, cash {_money(d['cash'], unit)[1:]}), "
            f"predicting {d['action']} is rejected ({d['reason']}) and earns {d['reward_rejected']:+.4f}, "
            f"while HOLD earns {d['reward_hold']:+.4f}. A rejected action must cost something "
            "relative to doing nothing, or a learner has no reason to avoid it "
            f"(state reached by {d['reached_by']})."
        )
    if kind == "idle-optimum":
        return (
            f"The shaped-optimal sequence never trades (shaped {s.shaped_return:+.4f}, PnL "
            f"{_money(s.pnl, unit)}), although trading earns {_money(p.pnl, unit)} "
            f"({p.pnl_percent:+.4f}%) on this market. A learner maximizing this reward learns to sit out."
            + _culprits(a.reward)
        )
    if kind == "never-close-optimum":
        if d["pattern"] == "holds to the end":
            return (
                f"The shaped-optimal sequence opens a position and never closes it (PnL "
                f"{_money(s.pnl, unit)}), while the PnL-optimal sequence closes and earns "
                f"{_money(p.pnl, unit)}. Holding pays more reward than selling: the seed's V1-V9 "
                "collapse into buying." + _culprits(a.reward)
            )
        r = a.refs[d["policy"]]
        return (
            f"{d['policy']} earns more shaped reward ({r.shaped_return:+.4f}) than the PnL-optimal "
            f"sequence ({p.shaped_return:+.4f}) and than always HOLD while losing money against the PnL optimum (PnL "
            f"{_money(r.pnl, unit)} vs {_money(p.pnl, unit)}): the reward prefers buying and "
            "holding to trading well (the seed's V1-V9 collapse)." + _culprits(a.reward)
        )
    return (
        f"The shaped-optimal sequence makes {_money(s.pnl, unit)} ({s.pnl_percent:+.4f}%); the best "
        f"possible is {_money(p.pnl, unit)} ({p.pnl_percent:+.4f}%), a regret of "
        f"{d['regret_percent']:.4f}% of starting cash. The shaping changes what is optimal: only "
        "potential-based shaping is guaranteed not to (Ng, Harada & Russell 1999)."
        + _culprits(a.reward)
    )


def _culprits(reward: RewardConfig) -> str:
    names = [f"{c.name} ({c.weight:+g})" for c in component_table(reward) if c.can_change_optimum]
    if not names:
        return ""
    return f" Components that can change the optimum in this reward: {', '.join(names)}."


def _counterexample(kind: str, a: _Analysis, unit: float) -> RewardCounterexample:
    others: dict[str, Rollout] = {}
    detail = dict(a.fired.get(kind, {}))
    if kind == "rejection-in-optimum" and a.free is not None:
        others["best without rejections"] = a.free
    if kind == "never-close-optimum" and "policy" in detail:
        others[detail["policy"]] = a.refs[detail["policy"]]
    if kind == "invalid-not-worse-than-hold":
        label = detail.get("reached_by", "")
        if label in a.refs:
            others[label] = a.refs[label]
    return RewardCounterexample(
        prices=a.prices,
        minor_unit=unit,
        reward=a.reward,
        shaped_optimal=a.shaped,
        pnl_optimal=a.pnl,
        others=others,
        detail=_plain(detail),
    )
