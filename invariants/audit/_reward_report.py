"""The reward audit's report: findings, counterexamples, the component table, as text and JSON.

What :func:`~tradeguard.invariants.audit.audit_reward` returns, and how it reads. The
analysis that fills it is in ``_reward_analysis``, the search in ``_reward_search``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tradeguard.env import (
    COMPONENT_NAMES,
    POTENTIAL_BASED,
    EnvConfig,
    RewardConfig,
)
from tradeguard.invariants.audit._baseline import ChangedOptimum, format_changed
from tradeguard.invariants.audit._custom import custom_effect
from tradeguard.invariants.audit._rollout import Rollout

__all__ = [
    "REWARD_FINDING_KINDS",
    "REWARD_SEVERITY",
    "BaselineComparison",
    "RewardAuditReport",
    "RewardComponent",
    "RewardCounterexample",
    "RewardFinding",
    "Severity",
    "component_table",
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


# ----------------------------------------------------------------------------- text and JSON


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
