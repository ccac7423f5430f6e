"""The reward audit: what a reward shaper makes optimal, found before anyone trains on it.

Hypothesis generates short markets (and, in fuzz mode, reward configs within the
ranges you give); on each, the exact oracle finds the action sequence that
maximizes the shaped return and the one that maximizes PnL, and the reference
policies play the same market. Findings are properties of the reward, each with
a stable ``kind``:

``rejection-in-optimum`` (error)
    The shaped optimum predicts an action the machine rejects, and every sequence
    without rejections earns strictly less: the reward pays for trying the
    impossible (the seed's V10.1 double bind).
``invalid-not-worse-than-hold`` (error)
    In some state a rejected action earns at least what HOLD earns on that step.
``idle-optimum`` (error)
    The shaped optimum never trades although trading makes money on that market.
``never-close-optimum`` (error)
    The shaped optimum opens a position and never closes it while the PnL optimum
    closes and earns more, or buy-and-never-sell beats the PnL optimum on shaped
    return while losing on PnL (the seed's V1-V9 collapse into buying).
``pnl-regret`` (error)
    The PnL of the shaped optimum falls short of the best PnL by more than the
    tolerance: the shaping changes what is optimal.
``weak-penalty`` (warning)
    The failed-action penalty is small against the spread of the per-step rewards
    an exploring (uniform random) policy sees, so a gradient learner barely feels
    it (the seed's V10: -0.05).

Each oracle finding is searched for with ``hypothesis.target`` (pushing towards the
worst case), then shrunk by Hypothesis to a minimal market: fewest steps, smallest
price moves. See ``docs/reward-audit.md``.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tradeguard._validation import check_int, check_number, suggest
from tradeguard.env import (
    COMPONENT_NAMES,
    POTENTIAL_BASED,
    Action,
    BatchEngine,
    EnvConfig,
    Machine,
    Market,
    MarketSpec,
    PortfolioState,
    RewardConfig,
    RewardShaper,
    Scenario,
    ShaperState,
    load_scenario,
    total_reward,
)
from tradeguard.errors import InvalidConfig, InvariantViolation
from tradeguard.invariants.audit._baseline import (
    BaselineSpec,
    ChangedOptimum,
    changed_optima,
    format_changed,
    resolve_baseline,
)
from tradeguard.invariants.audit._custom import custom_effect
from tradeguard.invariants.audit._oracle import Oracle, Rollout
from tradeguard.invariants.audit._reference_policies import (
    ReferencePolicy,
    _play,
    reference_policies,
)
from tradeguard.limits import AUDIT_EXAMPLES_PER_SECOND, MAX_AUDIT_EXAMPLES, MAX_AUDIT_HORIZON

__all__ = [
    "DEFAULT_AUDIT_BUDGET",
    "MAX_AUDIT_HORIZON",
    "REWARD_FINDING_KINDS",
    "REWARD_SEVERITY",
    "WEAK_PENALTY_RATIO",
    "BaselineComparison",
    "RewardAuditReport",
    "RewardComponent",
    "RewardCounterexample",
    "RewardFinding",
    "Severity",
    "assert_reward_sound",
    "audit_reward",
    "component_table",
    "penalty_strength",
]

Severity = Literal["error", "warning"]

REWARD_FINDING_KINDS: tuple[str, ...] = (
    "rejection-in-optimum",
    "invalid-not-worse-than-hold",
    "idle-optimum",
    "never-close-optimum",
    "pnl-regret",
    "weak-penalty",
)
"""Every finding kind the audit reports; the strings are stable."""

REWARD_SEVERITY: dict[str, Severity] = {
    "rejection-in-optimum": "error",
    "invalid-not-worse-than-hold": "error",
    "idle-optimum": "error",
    "never-close-optimum": "error",
    "pnl-regret": "error",
    "weak-penalty": "warning",
}
"""Severity of each kind: errors fail the audit (exit status 1), warnings do not."""

_ORACLE_KINDS: tuple[str, ...] = REWARD_FINDING_KINDS[:5]
_CHANGED = "optimum-changed"

DEFAULT_AUDIT_BUDGET = 20.0
"""Seconds one audit may take by default (measured under 30 s on 2 cores)."""

WEAK_PENALTY_RATIO = 1.0
"""``weak-penalty`` fires when |penalty| is below this many standard deviations of the
per-step reward (penalty excluded) a uniformly random policy sees."""

EXAMPLES_PER_SECOND = AUDIT_EXAMPLES_PER_SECOND
"""Markets explored per second of budget when ``max_examples`` is not given."""

MAX_EXAMPLES = MAX_AUDIT_EXAMPLES
"""The most markets one audit generates (the default, ``EXAMPLES_PER_SECOND * budget``, is capped there)."""

_TIE = 1e-9

_SCORE_UNITS = {
    "rejection-in-optimum": "advantage of the optimum over the best sequence without rejections",
    "invalid-not-worse-than-hold": "reward of a rejected action minus HOLD's",
    "idle-optimum": "PnL left on the table, % of cash",
    "never-close-optimum": "PnL lost by holding, % of cash",
    "pnl-regret": "regret, % of cash",
}


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True, kw_only=True)
class RewardCounterexample:
    """A market on which a finding shows, with the two optimal sequences side by side.

    Attributes:
        prices: The market in minor units (``horizon + 1`` prices).
        minor_unit: Currency value of one minor unit, for display.
        reward: The reward config the finding was found with (differs from the
            audited one in fuzz mode).
        shaped_optimal: The sequence maximizing the shaped return, replayed.
        pnl_optimal: The sequence maximizing PnL, replayed under the same reward.
        others: Further sequences worth seeing, by label (the best sequence without
            rejections, buy-and-never-sell, the baseline's optimum).
        detail: Kind-specific numbers (the state and action of an
            ``invalid-not-worse-than-hold``, a regret, ...), as plain JSON values.
    """

    prices: tuple[int, ...]
    minor_unit: float
    reward: RewardConfig
    shaped_optimal: Rollout
    pnl_optimal: Rollout
    others: Mapping[str, Rollout] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def horizon(self) -> int:
        """Steps in the market."""
        return len(self.prices) - 1

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values: prices, both sequences by name, their shaped returns and PnL."""
        return {
            "prices": list(self.prices),
            "minor_unit": self.minor_unit,
            "reward": _reward_changes(self.reward),
            "shaped_optimal": self.shaped_optimal.summary(),
            "pnl_optimal": self.pnl_optimal.summary(),
            "others": {k: v.summary() for k, v in self.others.items()},
            "detail": dict(self.detail),
        }

    def format(self) -> str:
        """The market and the sequences side by side, one row per step, with numbers."""
        columns = [("shaped-optimal", self.shaped_optimal), ("PnL-optimal", self.pnl_optimal)]
        columns += list(self.others.items())
        return _side_by_side(self.prices, self.minor_unit, columns)


@dataclass(frozen=True, slots=True, kw_only=True)
class RewardFinding:
    """One thing the audit found wrong with a reward.

    Attributes:
        kind: One of :data:`REWARD_FINDING_KINDS`.
        severity: ``"error"`` (fails the audit) or ``"warning"``.
        message: What is wrong and why it matters, in plain words, with the numbers.
        counterexample: The minimal market that shows it (``None`` for ``weak-penalty``).
        details: Numbers behind the finding: how often it fired, the worst case seen.
        worst: The market with the worst score seen during the search (what ``target()``
            pushed towards), unshrunk; ``None`` when it is the counterexample itself.
    """

    kind: str
    severity: Severity
    message: str
    counterexample: RewardCounterexample | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    worst: RewardCounterexample | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values: ``kind``, ``severity``, ``message``, ``counterexample``, ``details``,
        ``worst`` (the worst case seen, unshrunk)."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "counterexample": None if self.counterexample is None else self.counterexample.as_dict(),
            "details": _plain(self.details),
            "worst": None if self.worst is None else self.worst.as_dict(),
        }

    def format(self) -> str:
        """The finding as text: headline, message, how often and how badly, counterexample table."""
        lines = [f"[{self.severity}] {self.kind}", *_indent(self.message, 2)]
        d = self.details
        if "markets_fired" in d and "worst_score" in d:
            worst = " ".join(f"{p:,}" for p in d.get("worst_prices", []))
            lines.append(
                f"  fired on {d['markets_fired']} of {d['markets_explored']} markets explored; worst "
                f"{_SCORE_UNITS.get(self.kind, 'score')}: {d['worst_score']:.4f} (prices in minor "
                f"units: {worst})"
            )
        if self.counterexample is not None:
            lines += ["", "  smallest market (shrunk):"]
            lines += _indent(self.counterexample.format(), 4)
        if self.worst is not None:
            lines += ["", "  worst market seen:"]
            lines += _indent(self.worst.format(), 4)
        return "\n".join(lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class RewardComponent:
    """One reward component: its weight, whether it is potential-based, whether it can move the optimum.

    Attributes:
        name: Component name (one of ``COMPONENT_NAMES``).
        weight: Its effective weight in the audited config.
        pnl_weight: Its weight in the plain PnL reward (realized, unrealized change
            and cost at 1, everything else 0).
        potential_based: Declared by the env (:data:`~tradeguard.env.POTENTIAL_BASED`).
        can_change_optimum: Whether this component, at this weight, can make a
            sequence optimal that is not PnL-optimal.
        why: One line saying why.
    """

    name: str
    weight: float
    pnl_weight: float
    potential_based: bool
    can_change_optimum: bool
    why: str

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class BaselineComparison:
    """A reward config audited against the one it replaces.

    Attributes:
        baseline: Name of the baseline scenario or file.
        baseline_reward: The baseline's reward config.
        markets_compared: Markets on which both optima were computed.
        markets_changed: Of those, markets on which the shaped-optimal sequence differs.
        changed: The minimal market on which it differs, with the new optimum
            (``shaped_optimal``) and the old (``others["baseline shaped-optimal"]``).
        new_findings: Kinds the new config has and the baseline does not.
        resolved_findings: Kinds the baseline has and the new config does not.
        baseline_kinds: Every kind found on the baseline.
        changed_markets: Every market explored on which the optimum differs, with both
            optimal sequences and their PnL, those where the change costs the most first.
    """

    baseline: str
    baseline_reward: RewardConfig
    markets_compared: int
    markets_changed: int
    changed: RewardCounterexample | None
    new_findings: tuple[str, ...]
    resolved_findings: tuple[str, ...]
    baseline_kinds: tuple[str, ...]
    changed_markets: tuple[ChangedOptimum, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "baseline": self.baseline,
            "baseline_reward": _reward_changes(self.baseline_reward),
            "markets_compared": self.markets_compared,
            "markets_changed": self.markets_changed,
            "changed": None if self.changed is None else self.changed.as_dict(),
            "new_findings": list(self.new_findings),
            "resolved_findings": list(self.resolved_findings),
            "baseline_kinds": list(self.baseline_kinds),
            "changed_markets": [c.as_dict() for c in self.changed_markets],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RewardAuditReport:
    """Everything one reward audit found.

    Attributes:
        scenario: Name of the audited scenario (or ``"custom"``).
        env: The machine's configuration.
        reward: The audited reward config.
        findings: Findings, errors first, in :data:`REWARD_FINDING_KINDS` order.
        components: Each reward component, potential-based or not, and whether it can
            change the optimum.
        examples: Markets analysed (generated and shrinking candidates).
        explored: Of those, markets generated by the search (before shrinking).
        seconds: Wall time of the audit.
        budget: The time budget, in seconds.
        budget_exhausted: True when the budget cut the search short (the results then
            depend on the machine's speed, not only on the seed).
        seed: The seed (``None``: random).
        horizon: Shortest and longest market generated, in steps.
        fuzz: The reward fields fuzzed and their ranges, or ``None``.
        baseline: The comparison with a baseline config, when one was given.
        penalty_ratio: |failed-action penalty| / spread of per-step rewards (``weak-penalty``).
    """

    scenario: str
    env: EnvConfig
    reward: RewardConfig
    findings: tuple[RewardFinding, ...]
    components: tuple[RewardComponent, ...]
    examples: int
    seconds: float
    budget: float
    budget_exhausted: bool
    seed: int | None
    horizon: tuple[int, int]
    explored: int = 0
    fuzz: Mapping[str, tuple[float, float]] | None = None
    baseline: BaselineComparison | None = None
    penalty_ratio: float | None = None

    @property
    def errors(self) -> tuple[RewardFinding, ...]:
        """Error-severity findings."""
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[RewardFinding, ...]:
        """Warning-severity findings."""
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def passed(self) -> bool:
        """True when there is no error-severity finding (the CLI then exits 0)."""
        return not self.errors

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds found."""
        return tuple(f.kind for f in self.findings)

    def finding(self, kind: str) -> RewardFinding | None:
        """The finding of ``kind``, or ``None``."""
        return next((f for f in self.findings if f.kind == kind), None)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values; ``findings`` is a list of :meth:`RewardFinding.as_dict`."""
        return {
            "scenario": self.scenario,
            "passed": self.passed,
            "findings": [f.as_dict() for f in self.findings],
            "components": [c.as_dict() for c in self.components],
            "reward": _reward_changes(self.reward),
            "penalty_ratio": self.penalty_ratio,
            "examples": self.examples,
            "explored": self.explored,
            "seconds": round(self.seconds, 3),
            "budget": self.budget,
            "budget_exhausted": self.budget_exhausted,
            "seed": self.seed,
            "horizon": list(self.horizon),
            "fuzz": None if self.fuzz is None else {k: list(v) for k, v in self.fuzz.items()},
            "baseline": None if self.baseline is None else self.baseline.as_dict(),
        }

    def format(self) -> str:
        """The report as text: components, verdict, each finding with its market."""
        changes = _reward_changes(self.reward)
        shown = ", ".join(f"{k}={v!r}" for k, v in changes.items()) or "the defaults (plain PnL)"
        lines = [
            f"reward audit of scenario {self.scenario}",
            f"  reward: {shown}",
            f"  searched {self.explored} markets of {self.horizon[0]}-{self.horizon[1]} steps "
            f"(+{self.examples - self.explored} while shrinking) in {self.seconds:.1f} s "
            f"(budget {self.budget:g} s, seed {self.seed})"
            + ("; the budget ran out before the search finished" if self.budget_exhausted else ""),
        ]
        if self.fuzz:
            ranges = ", ".join(f"{k} in [{lo:g}, {hi:g}]" for k, (lo, hi) in self.fuzz.items())
            lines.append(f"  fuzzed: {ranges}")
        lines += ["", "components (potential-based shaping cannot change the optimum; Ng, Harada & Russell 1999):"]
        lines.append(f"  {'component':<24}{'weight':>9}{'PnL':>6}  {'potential':<10}can change the optimum")
        for c in self.components:
            lines.append(
                f"  {c.name:<24}{c.weight:>9.4g}{c.pnl_weight:>6g}  {'yes' if c.potential_based else 'no':<10}"
                f"{'YES' if c.can_change_optimum else 'no'}: {c.why}"
            )
        lines.append("")
        n_err, n_warn = len(self.errors), len(self.warnings)
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"{verdict}: {n_err} error(s), {n_warn} warning(s)")
        for f in self.findings:
            lines += ["", f.format()]
        if self.baseline is not None:
            lines += ["", *_format_baseline(self.baseline, self.minor_unit)]
        return "\n".join(lines)

    @property
    def minor_unit(self) -> float:
        """Currency value of one minor unit (for display)."""
        return self.env.minor_unit

    def __str__(self) -> str:
        return self.format()


# ----------------------------------------------------------------------------- components


def component_table(reward: RewardConfig) -> tuple[RewardComponent, ...]:
    """Each reward component with its weight, its declared potential-basedness, and its effect.

    Args:
        reward: The reward config.

    Returns:
        One :class:`RewardComponent` per component, in ``COMPONENT_NAMES`` order.

    Example:
        >>> [c.name for c in component_table(RewardConfig()) if c.can_change_optimum]
        []
    """
    r = reward
    curriculum_on = r.curriculum_min_share > 0 and bool(r.curriculum_actions)
    weights = {
        "realized_pnl": (r.realized_pnl, 1.0),
        "unrealized_pnl_change": (r.unrealized_pnl_change, 1.0),
        "unrealized_pnl_level": (r.unrealized_pnl_level, 0.0),
        "transaction_cost": (r.transaction_cost, 1.0),
        "failed_action_penalty": (r.failed_action_penalty, 0.0),
        "exploration_curriculum": (
            r.curriculum_weight * r.curriculum_scale if curriculum_on else 0.0,
            0.0,
        ),
        "diversity_bonus": (r.diversity_bonus, 0.0),
    }
    out = []
    for name in COMPONENT_NAMES:
        weight, pnl_weight = weights.get(name, (0.0, 0.0))
        potential = bool(POTENTIAL_BASED.get(name, False))
        change, why = _effect(name, weight, pnl_weight, potential)
        out.append(
            RewardComponent(
                name=name,
                weight=float(weight),
                pnl_weight=pnl_weight,
                potential_based=potential,
                can_change_optimum=change,
                why=why,
            )
        )
    for custom in reward.custom_components:  # the user's own components, after the built-in ones
        change, why = custom_effect(custom)
        out.append(
            RewardComponent(
                name=custom.name,
                weight=custom.weight,
                pnl_weight=0.0,
                potential_based=custom.potential_based,
                can_change_optimum=change,
                why=why,
            )
        )
    return tuple(out)


def _effect(name: str, weight: float, pnl_weight: float, potential: bool) -> tuple[bool, str]:
    if name == "failed_action_penalty":
        if weight < 0:
            return False, "a penalty only lowers sequences with rejections; it cannot make them optimal"
        if weight == 0:
            return False, "off: rejected actions tie with HOLD (see invalid-not-worse-than-hold)"
        return True, "positive: pays for rejected actions"
    if weight == pnl_weight:
        if weight == 0:
            return False, "off"
        return False, "part of the PnL reward at its PnL weight"
    if potential:
        return True, (
            "potential-based, but episodes end with the position open, so a weight other than "
            "the PnL weight values the final position differently"
        )
    if name == "exploration_curriculum":
        return True, "not potential-based: pays for predicting actions, valid or not"
    if name == "diversity_bonus":
        return True, "not potential-based: pays for predicting new actions, valid or not"
    return True, f"not potential-based, and weighted {weight:g} instead of its PnL weight {pnl_weight:g}"


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
        prices = m.prices.tolist()
        state = PortfolioState(env.cash, 0, 0)
        hist = shaper.initial()
        for t in range(actions.shape[0]):
            a = Action(int(actions[t, e]))
            after, outcome = machine.step(state, a, prices[t])
            comps, hist = shaper.shape(hist, a, outcome, state, after, prices[t], prices[t + 1])
            signal.append(total_reward(comps) - comps[pen_index])
            state = after
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
        refs = {p.name: _play(p, prices, self.machine, shaper, 0) for p in self.policies}
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
) -> Any:
    """Generate and analyse markets, steering towards every kind's worst case.

    With ``hunt``, the run is the same (same seed, same targets, cached analyses) up to
    the first market where ``hunt`` fires; that market is then shrunk by Hypothesis and
    its analysis returned (``None`` if it never fires).
    """
    from hypothesis import target

    last: list[Any] = []

    def body(prices: tuple[int, ...], reward: RewardConfig) -> None:
        a = auditor.analyse(reward, prices)
        if a is None:
            raise _OutOfBudget
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


# ----------------------------------------------------------------------------- entry points


def default_max_examples(budget: float) -> int:
    """Markets an audit of ``budget`` seconds generates when not told: ``EXAMPLES_PER_SECOND``
    a second, at least 10 and at most ``MAX_EXAMPLES``."""
    return min(MAX_EXAMPLES, max(10, int(EXAMPLES_PER_SECOND * budget)))


def audit_reward(
    scenario_or_configs: Scenario | str | RewardConfig | tuple[EnvConfig, RewardConfig],
    *,
    baseline: BaselineSpec | None = None,
    budget: float = DEFAULT_AUDIT_BUDGET,
    seed: int | None = 0,
    max_examples: int | None = None,
    horizon: tuple[int, int] = (2, 6),
    max_move_bps: int = 500,
    fuzz: Mapping[str, tuple[float, float]] | None = None,
    pnl_tolerance: float = 0.01,
    weak_penalty_ratio: float = WEAK_PENALTY_RATIO,
) -> RewardAuditReport:
    """Audit a reward config: search markets where its optimum is degenerate.

    Args:
        scenario_or_configs: A :class:`~tradeguard.env.Scenario`, a shipped scenario
            name (``"v10.1"``) or scenario file path, a :class:`RewardConfig` (with the
            default machine), or an ``(EnvConfig, RewardConfig)`` pair.
        baseline: The reward this one replaces (same forms, or a reward component or several
            on the same env, a factory of tradeguard's env, ``"module:name"`` of either); the
            report then lists the markets on which the optimal behaviour changes and the
            findings that are new.
        budget: Seconds the audit may take (the search stops generating at the budget).
        seed: Seed of the search; the same seed gives the same markets and findings
            when the budget is not exhausted. ``None``: random.
        max_examples: Markets to generate (default: ``EXAMPLES_PER_SECOND * budget``).
        horizon: Shortest and longest market, in steps (``1 <= lo <= hi <= 12``).
        max_move_bps: Largest price move per step, in basis points (1..5000).
        fuzz: Reward fields to draw per example, ``{"failed_action_penalty": (-2.0, 0.0)}``.
        pnl_tolerance: PnL shortfall, in percent of starting cash, that counts as regret.
        weak_penalty_ratio: ``weak-penalty`` fires below this ratio.

    Returns:
        The :class:`RewardAuditReport`.

    Raises:
        InvalidConfig: a bad argument, with what was expected.

    Example:
        >>> report = audit_reward("v10.1", budget=5, max_examples=30)
        >>> "rejection-in-optimum" in report.kinds, report.passed
        (True, False)
    """
    t0 = time.perf_counter()
    name, env, reward, market = _resolve(scenario_or_configs, "scenario_or_configs")
    check_number("budget", budget, min_value=0.0, min_exclusive=True, max_value=86_400)
    if seed is not None:
        check_int("seed", seed, min_value=0, max_value=2**63 - 1)
    if max_examples is None:
        max_examples = default_max_examples(budget)
    check_int("max_examples", max_examples, min_value=1, max_value=MAX_EXAMPLES)
    h_min, h_max = _check_horizon(horizon)
    check_int("max_move_bps", max_move_bps, min_value=1, max_value=5_000)
    check_number("pnl_tolerance", pnl_tolerance, min_value=0.0, max_value=100.0)
    check_number("weak_penalty_ratio", weak_penalty_ratio, min_value=0.0, max_value=1e6)
    fuzz_ranges = _check_fuzz(fuzz)
    base_resolved = None
    if baseline is not None:
        if fuzz_ranges:
            raise InvalidConfig(
                "baseline= and fuzz= cannot be combined: a baseline comparison audits two fixed "
                "configs. Run the fuzz audit and the baseline comparison separately."
            )
        baseline = resolve_baseline(baseline, Scenario(name=name, env=env, reward=reward, market=market))
        base_resolved = _resolve(baseline, "baseline")
        if base_resolved[1] != env:
            raise InvalidConfig(
                f"the baseline {base_resolved[0]!r} has a different [env] table than {name!r}; a "
                "baseline comparison changes the reward only. Give both the same machine settings."
            )
    start = max(1, round(market.start_price / market.minor_unit))
    setup = _Setup(env, reward, start, h_min, h_max, max_move_bps, fuzz_ranges, seed)
    deadline = t0 + budget
    explore_deadline = t0 + budget * 0.5
    auditor = _Auditor(
        env, pnl_tolerance=pnl_tolerance, deadline=explore_deadline, policies=_policies(env)
    )
    unit = env.minor_unit

    # weak-penalty: a measurement, not a search.
    findings: list[RewardFinding] = []
    ratio, spread = penalty_strength(env, reward, market, seed=seed or 0)
    weak_configs = [reward]
    if fuzz_ranges and "failed_action_penalty" in fuzz_ranges:
        # The weakest penalty of the range is its highest value.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            weak_configs.append(
                dataclasses.replace(reward, failed_action_penalty=fuzz_ranges["failed_action_penalty"][1])
            )
    for cfg in weak_configs:
        r_ratio, r_spread = (
            (ratio, spread) if cfg is reward else penalty_strength(env, cfg, market, seed=seed or 0)
        )
        if r_ratio < weak_penalty_ratio:
            findings.append(_weak_finding(cfg, r_ratio, r_spread, weak_penalty_ratio, market))
            break

    baseline_reward = base_resolved[2] if base_resolved is not None else None
    generated: list[tuple[RewardConfig, tuple[int, ...]]] = []
    _explore(setup, auditor, max_examples, baseline_reward, visited=generated)
    visited = list(dict.fromkeys(generated))  # Hypothesis may replay an example
    explored_budget_hit = auditor.budget_hit

    fired_counts: dict[str, int] = {}
    worst: dict[str, tuple[float, _Analysis]] = {}
    for key in visited:
        a = auditor.cache[key]
        for kind in a.fired:
            fired_counts[kind] = fired_counts.get(kind, 0) + 1
            score = a.scores[kind]
            if kind not in worst or score > worst[kind][0]:
                worst[kind] = (score, a)

    hunt_kinds = [k for k in _ORACLE_KINDS if k in fired_counts]
    changed_count = 0
    if baseline_reward is not None:
        for rw, prices in visited:
            b = auditor.cache.get((baseline_reward, prices))
            if b is not None and b.shaped.predicted != auditor.cache[(rw, prices)].shaped.predicted:
                changed_count += 1
        if changed_count:
            hunt_kinds.append(_CHANGED)

    # Shrink each kind that fired, sharing the rest of the budget.
    shrunk: dict[str, Any] = {}
    for i, kind in enumerate(hunt_kinds):
        remaining = deadline - time.perf_counter()
        auditor.deadline = time.perf_counter() + max(0.0, remaining) / (len(hunt_kinds) - i)
        result = _explore(setup, auditor, max_examples, baseline_reward, hunt=kind)
        if result is None:
            # Not reproduced within the budget: report the first market it fired on, unshrunk.
            for key in visited:
                a = auditor.cache[key]
                if kind == _CHANGED:
                    assert baseline_reward is not None
                    b = auditor.cache.get((baseline_reward, key[1]))
                    if b is not None and b.shaped.predicted != a.shaped.predicted:
                        result = (a, b)
                        break
                elif kind in a.fired:
                    result = a
                    break
        shrunk[kind] = result

    for kind in _ORACLE_KINDS:
        found: _Analysis | None = shrunk.get(kind)
        if found is None:
            continue
        a = found
        findings.append(
            RewardFinding(
                kind=kind,
                severity=REWARD_SEVERITY[kind],
                message=_message(kind, a, unit),
                counterexample=_counterexample(kind, a, unit),
                details={
                    "markets_fired": fired_counts.get(kind, 0),
                    "markets_explored": len(visited),
                    "worst_score": worst[kind][0],
                    "worst_prices": list(worst[kind][1].prices),
                },
                worst=(
                    None
                    if worst[kind][1] is a
                    else _counterexample(kind, worst[kind][1], unit)
                ),
            )
        )
    findings.sort(key=lambda f: (f.severity != "error", REWARD_FINDING_KINDS.index(f.kind)))

    comparison = None
    if base_resolved is not None and baseline_reward is not None:
        comparison = _compare(
            base_resolved[0], baseline_reward, auditor, visited, shrunk.get(_CHANGED), changed_count,
            findings, env, market, seed, weak_penalty_ratio, unit,
        )

    return RewardAuditReport(
        scenario=name,
        env=env,
        reward=reward,
        findings=tuple(findings),
        components=component_table(reward),
        examples=sum(1 for rw, _ in auditor.cache if rw == reward or rw != baseline_reward),
        seconds=time.perf_counter() - t0,
        budget=float(budget),
        budget_exhausted=explored_budget_hit or auditor.budget_hit,
        seed=seed,
        horizon=(h_min, h_max),
        explored=len(visited),
        fuzz=fuzz_ranges,
        baseline=comparison,
        penalty_ratio=ratio,
    )


def _compare(
    base_name: str,
    base_reward: RewardConfig,
    auditor: _Auditor,
    visited: list[tuple[RewardConfig, tuple[int, ...]]],
    changed: Any,
    changed_count: int,
    findings: list[RewardFinding],
    env: EnvConfig,
    market: MarketSpec,
    seed: int | None,
    weak_ratio: float,
    unit: float,
) -> BaselineComparison:
    base_kinds: set[str] = set()
    compared = 0
    for _, prices in visited:
        b = auditor.cache.get((base_reward, prices))
        if b is None:
            continue
        compared += 1
        base_kinds.update(b.fired)
    if penalty_strength(env, base_reward, market, seed=seed or 0)[0] < weak_ratio:
        base_kinds.add("weak-penalty")
    new_kinds = [f.kind for f in findings]
    cex = None
    if changed is not None:
        a, b = changed
        cex = RewardCounterexample(
            prices=a.prices,
            minor_unit=unit,
            reward=a.reward,
            shaped_optimal=a.shaped,
            pnl_optimal=a.pnl,
            others={"baseline shaped-optimal": b.shaped},
            detail={
                "pnl_change": a.shaped.pnl - b.shaped.pnl,
                "pnl_change_percent": a.shaped.pnl_percent - b.shaped.pnl_percent,
            },
        )
    return BaselineComparison(
        baseline=base_name,
        baseline_reward=base_reward,
        markets_compared=compared,
        markets_changed=changed_count,
        changed=cex,
        new_findings=tuple(k for k in REWARD_FINDING_KINDS if k in new_kinds and k not in base_kinds),
        resolved_findings=tuple(k for k in REWARD_FINDING_KINDS if k in base_kinds and k not in new_kinds),
        baseline_kinds=tuple(k for k in REWARD_FINDING_KINDS if k in base_kinds),
        changed_markets=changed_optima(
            (auditor.cache[(rw, prices)].shaped, auditor.cache[(base_reward, prices)].shaped)
            for rw, prices in visited
            if (base_reward, prices) in auditor.cache
        ),
    )


def _weak_finding(
    reward: RewardConfig, ratio: float, spread: float, threshold: float, market: MarketSpec
) -> RewardFinding:
    penalty = reward.failed_action_penalty
    if penalty > 0:
        what = f"The failed-action penalty is positive ({penalty:+g}): rejected actions are paid."
    elif penalty == 0:
        what = "There is no failed-action penalty (0): rejected actions cost nothing."
    else:
        frac = f"1/{1 / ratio:.0f}" if 0 < ratio < 1 else f"{ratio:.2f}x"
        what = (
            f"The failed-action penalty ({penalty:+g}) is {frac} of the spread of per-step rewards "
            f"({spread:.4f}, one standard deviation) a random exploring policy sees."
        )
    return RewardFinding(
        kind="weak-penalty",
        severity="warning",
        message=(
            f"{what} A gradient learner can barely tell a rejected action from an unlucky step "
            f"(the seed's V10: -0.05, 1/20th of a typical PnL reward, and the agent learned to spam "
            f"SELL_PARTIAL). Make |penalty| at least {threshold:g}x the spread "
            f"(here {threshold * spread:.4f}), or mask invalid actions."
        ),
        details={
            "ratio": ratio,
            "spread": spread,
            "penalty": penalty,
            "threshold": threshold,
            "market": {"kind": market.kind, "volatility": market.volatility, "drift": market.drift},
        },
    )


def assert_reward_sound(
    scenario_or_configs: Scenario | str | RewardConfig | tuple[EnvConfig, RewardConfig],
    *,
    allow: Iterable[str] = (),
    **kwargs: Any,
) -> RewardAuditReport:
    """Audit a reward and raise when it has an error-severity finding (for pytest).

    Args:
        scenario_or_configs: As for :func:`audit_reward`.
        allow: RewardFinding kinds to accept (reported, but not raised).
        **kwargs: Passed to :func:`audit_reward` (``budget``, ``seed``, ``baseline``...).

    Returns:
        The report, when it passes.

    Raises:
        InvariantViolation: an error-severity finding not in ``allow``; the message is
            the report, with each counterexample. It is an ``AssertionError``.

    Example:
        >>> assert_reward_sound("default", budget=5, max_examples=20).passed
        True
    """
    allowed = set(allow)
    for k in allowed:
        if k not in REWARD_FINDING_KINDS:
            raise InvalidConfig(
                f"allow contains {k!r}, which is not a finding kind; expected some of "
                f"{', '.join(REWARD_FINDING_KINDS)}.{suggest(k, REWARD_FINDING_KINDS)}"
            )
    report = audit_reward(scenario_or_configs, **kwargs)
    bad = [f for f in report.errors if f.kind not in allowed]
    if bad:
        raise InvariantViolation(
            f"reward audit failed: {', '.join(f.kind for f in bad)}\n\n{report.format()}"
        )
    return report


# ----------------------------------------------------------------------------- helpers


def _policies(env: EnvConfig) -> tuple[ReferencePolicy, ...]:
    return tuple(p for p in reference_policies(env))


def _resolve(
    value: Any, what: str
) -> tuple[str, EnvConfig, RewardConfig, MarketSpec]:
    if isinstance(value, Scenario):
        return value.name, value.env, value.reward, value.market
    if isinstance(value, str):
        sc = load_scenario(value)
        return sc.name, sc.env, sc.reward, sc.market
    if isinstance(value, RewardConfig):
        return "custom", EnvConfig(), value, MarketSpec()
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], EnvConfig)
        and isinstance(value[1], RewardConfig)
    ):
        return "custom", value[0], value[1], MarketSpec()
    raise InvalidConfig(
        f"{what}={value!r} is not a reward to audit; expected a Scenario, a scenario name or file, "
        "a RewardConfig, or an (EnvConfig, RewardConfig) pair."
    )


def _check_horizon(horizon: Any) -> tuple[int, int]:
    if not (isinstance(horizon, (tuple, list)) and len(horizon) == 2):
        raise InvalidConfig(f"horizon={horizon!r} must be a pair (shortest, longest) of step counts, e.g. (2, 6).")
    lo = check_int("horizon[0]", horizon[0], min_value=1, max_value=MAX_AUDIT_HORIZON)
    hi = check_int("horizon[1]", horizon[1], min_value=1, max_value=MAX_AUDIT_HORIZON)
    if lo > hi:
        raise InvalidConfig(f"horizon={horizon!r}: the shortest market is longer than the longest.")
    return lo, hi


_FUZZABLE = (
    "realized_pnl",
    "unrealized_pnl_change",
    "unrealized_pnl_level",
    "transaction_cost",
    "failed_action_penalty",
    "curriculum_min_share",
    "curriculum_weight",
    "curriculum_scale",
    "diversity_bonus",
)


def _check_fuzz(fuzz: Mapping[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]] | None:
    if not fuzz:
        return None
    out: dict[str, tuple[float, float]] = {}
    for name, rng in fuzz.items():
        if name not in _FUZZABLE:
            raise InvalidConfig(
                f"fuzz field {name!r} is not a numeric RewardConfig field; expected one of "
                f"{', '.join(_FUZZABLE)}.{suggest(name, _FUZZABLE)}"
            )
        if not (isinstance(rng, (tuple, list)) and len(rng) == 2):
            raise InvalidConfig(f"fuzz[{name!r}]={rng!r} must be a (low, high) pair.")
        lo = check_number(f"fuzz[{name!r}][0]", rng[0], min_value=-1e6, max_value=1e6)
        hi = check_number(f"fuzz[{name!r}][1]", rng[1], min_value=-1e6, max_value=1e6)
        if lo > hi:
            raise InvalidConfig(f"fuzz[{name!r}]=({lo}, {hi}): low is above high.")
        if name == "curriculum_min_share" and not (lo >= 0.0 and hi <= 1.0):
            raise InvalidConfig(f"fuzz['curriculum_min_share']=({lo}, {hi}) must lie in [0, 1].")
        out[name] = (lo, hi)
    return out


def _reward_changes(reward: RewardConfig) -> dict[str, Any]:
    base = RewardConfig().to_dict()
    return {k: v for k, v in reward.to_dict().items() if base[k] != v}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def _indent(text: str, n: int) -> list[str]:
    return [(" " * n + line) if line else line for line in text.splitlines()]


def _side_by_side(
    prices: tuple[int, ...], unit: float, columns: Sequence[tuple[str, Rollout]]
) -> str:
    decimals = max(0, round(-math.log10(unit))) if unit < 1 else 0
    pw = max(len(f"{p * unit:,.{decimals}f}") for p in prices) + 1
    labels = [r.labels() for _, r in columns]
    widths = [max(len(title) - 11, *(len(x) for x in lab)) + 2 for (title, _), lab in zip(columns, labels, strict=True)]
    lead = 5 + pw + 2
    head = f"{'step':<5}{'price':>{pw}}  " + "".join(
        f"{title:<{w + 11}}" for (title, _), w in zip(columns, widths, strict=True)
    )
    lines = [
        f"market ({len(prices) - 1} steps, prices in currency): "
        + " ".join(f"{p * unit:,.{decimals}f}" for p in prices),
        "",
        head,
    ]
    for t in range(len(prices) - 1):
        row = f"{t:<5}{prices[t] * unit:>{pw},.{decimals}f}  "
        for (_, r), lab, w in zip(columns, labels, widths, strict=True):
            row += f"{lab[t]:<{w}}{r.rewards[t]:>+9.4f}  "
        lines.append(row)
    lines.append(f"{'end':<5}{prices[-1] * unit:>{pw},.{decimals}f}")
    lines.append(
        f"{'shaped return':<{lead}}"
        + "".join(f"{'':<{w}}{r.shaped_return:>+9.4f}  " for (_, r), w in zip(columns, widths, strict=True))
    )
    lines.append(
        f"{'PnL':<{lead}}"
        + "".join(
            f"{f'{r.pnl * unit:+,.2f} ({r.pnl_percent:+.4f}%)':>{w + 9}}  "
            for (_, r), w in zip(columns, widths, strict=True)
        )
    )
    return "\n".join(line.rstrip() for line in lines)


def _format_baseline(b: BaselineComparison, unit: float) -> list[str]:
    lines = [
        f"compared with baseline {b.baseline}:",
        f"  optimal behaviour changed on {b.markets_changed} of {b.markets_compared} markets",
        f"  findings new in this config: {', '.join(b.new_findings) or 'none'}",
        f"  findings the baseline had and this config does not: {', '.join(b.resolved_findings) or 'none'}",
    ]
    if b.changed is not None:
        lines += ["", "  smallest market on which the optimum changed:"]
        lines += _indent(b.changed.format(), 4)
    if b.changed_markets:
        lines += ["", *format_changed(b.changed_markets, unit)]
    return lines
