"""The policy audit's report: the contract, the findings, per-family and overall metrics.

What :func:`~tradeguard.invariants.audit.audit_policy` returns and how it reads, the
:class:`PolicyContract` that decides pass or fail, and :func:`collapse_findings`, which the
audit and the training callback share so that both say the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from tradeguard._validation import check_int, check_number, suggest
from tradeguard.errors import InvalidConfig
from tradeguard.invariants._model import Violation
from tradeguard.trace import Trace, action_entropy, compute_metrics

__all__ = [
    "FINDING_KINDS",
    "FamilyReport",
    "Finding",
    "FindingKind",
    "PolicyAuditReport",
    "PolicyContract",
    "collapse_findings",
]

FindingKind = Literal[
    "single-action-collapse",
    "rejection-collapse",
    "phantom-activity",
    "masked-policy-predicts-invalid",
    "evaluated-without-masks",
    "invariant-violation",
]
FINDING_KINDS: tuple[FindingKind, ...] = get_args(FindingKind)
"""Every kind of finding the audit (and the training callback) can report; stable ids."""


# --------------------------------------------------------------------------- the contract
@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyContract:
    """What a policy must satisfy to pass the audit; ``None`` switches a check off.

    Attributes:
        max_action_share: ``single-action-collapse`` when one action's share of the
            predictions exceeds this, in (0, 1]. Default 0.95. HOLD dominating counts only
            when no trade executed: buy, hold 400 steps and sell is HOLD 99.6% and fine.
        max_rejection_rate: ``rejection-collapse`` when the share of predictions that
            were rejected exceeds this, in [0, 1]. Default 0.5 ("most").
        phantom_max_share: ``phantom-activity`` when no trade executed although the
            share of non-HOLD predictions exceeds this, in [0, 1). Default 0.0: any
            non-HOLD prediction with zero trades.
        max_invalid_masked: ``masked-policy-predicts-invalid`` when a mask-aware policy,
            given the mask, predicted more than this many forbidden actions. Default 0.
        require_masks: ``evaluated-without-masks`` when the env has masks and the policy
            can take them but none were passed. Default True.
        require_invariants: ``invariant-violation`` for every violation of the catalog.
            Default True.
        ignore: Finding kinds reported but not counted as failures.

    Example:
        >>> PolicyContract(max_action_share=0.99, ignore=("single-action-collapse",)).max_action_share
        0.99
    """

    max_action_share: float | None = 0.95
    max_rejection_rate: float | None = 0.5
    phantom_max_share: float | None = 0.0
    max_invalid_masked: int | None = 0
    require_masks: bool = True
    require_invariants: bool = True
    ignore: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_action_share is not None:
            check_number("max_action_share", self.max_action_share, min_value=0.0, max_value=1.0, min_exclusive=True)
        if self.max_rejection_rate is not None:
            check_number("max_rejection_rate", self.max_rejection_rate, min_value=0.0, max_value=1.0)
        if self.phantom_max_share is not None:
            check_number("phantom_max_share", self.phantom_max_share, min_value=0.0, max_value=1.0)
            if self.phantom_max_share >= 1.0:
                raise InvalidConfig(
                    f"phantom_max_share={self.phantom_max_share!r} can never be exceeded; expected "
                    "a value in [0, 1), or None to switch phantom-activity off."
                )
        if self.max_invalid_masked is not None:
            check_int("max_invalid_masked", self.max_invalid_masked, min_value=0)
        if isinstance(self.ignore, str):
            raise InvalidConfig(
                f"ignore={self.ignore!r} must be a tuple of finding kinds, e.g. "
                "('single-action-collapse',)."
            )
        for kind in self.ignore:
            if kind not in FINDING_KINDS:
                raise InvalidConfig(
                    f"ignore contains {kind!r}, which is not a finding kind; expected one of "
                    f"{', '.join(FINDING_KINDS)}.{suggest(str(kind), FINDING_KINDS)}"
                )
        object.__setattr__(self, "ignore", tuple(self.ignore))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["ignore"] = list(self.ignore)
        return out


# --------------------------------------------------------------------------- results
@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One way the policy breaks its contract.

    Attributes:
        kind: One of :data:`FINDING_KINDS`.
        message: What is wrong, with the numbers.
        family: The market family it concerns, or ``None`` for the whole audit.
        counts: Whether the contract counts it as a failure (``False`` when ignored).
    """

    kind: FindingKind
    message: str
    family: str | None = None
    counts: bool = True

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "message": self.message, "family": self.family, "counts": self.counts}

    def __str__(self) -> str:
        ignored = " (ignored by the contract)" if not self.counts else ""
        return f"[{self.kind}] {self.message}{ignored}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FamilyReport:
    """What the policy did on one market family (or on all of them: ``family="all"``).

    Shares and rates are over steps, pooled across the family's episodes; returns and
    rewards are means over episodes.

    Attributes:
        family: Market family name, or ``"all"``.
        episodes: Episodes played.
        steps: Steps played.
        action_distribution_predicted: Share of steps on which each action was predicted.
        action_distribution_executed: Share of steps on which each action executed.
        rejection_rate: Share of steps whose prediction was rejected.
        action_entropy_executed: Entropy (nats) of the executed distribution.
        trades: Steps on which a trade executed.
        mean_return: Mean total return per episode (0.01 = +1%).
        mean_episode_reward: Mean sum of rewards per episode.
        invalid_predictions: Predictions the mask the policy saw forbade (0 when the env
            has no mask).
        violations: Invariant violations found in the family's traces.
    """

    family: str
    episodes: int
    steps: int
    action_distribution_predicted: Mapping[str, float]
    action_distribution_executed: Mapping[str, float]
    rejection_rate: float
    action_entropy_executed: float
    trades: int
    mean_return: float
    mean_episode_reward: float
    invalid_predictions: int
    violations: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = {name: getattr(self, name) for name in self.__slots__}
        out["action_distribution_predicted"] = dict(self.action_distribution_predicted)
        out["action_distribution_executed"] = dict(self.action_distribution_executed)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyAuditReport:
    """The audit's verdict: per-family reports, the overall one, findings and violations.

    Attributes:
        policy: The policy's name.
        scenario: The scenario (or env) audited on.
        seed: The audit's seed.
        deterministic: Whether model predictions were deterministic.
        env_supports_masks: The env exposes an action mask.
        masks_passed: The mask was given to the policy at every step.
        policy_takes_masks: The policy's ``act``/``predict`` accepts a mask.
        policy_respects_masks: The policy claims to pick only actions its mask allows.
        families: One report per market family.
        overall: All families pooled.
        findings: Everything the contract flags, in :data:`FINDING_KINDS` order.
        violations: Every invariant violation, with its ledger context.
        contract: The contract applied.
        traces: The episodes' traces (not serialized).
    """

    policy: str
    scenario: str
    seed: int
    deterministic: bool
    env_supports_masks: bool
    masks_passed: bool
    policy_takes_masks: bool
    policy_respects_masks: bool
    families: tuple[FamilyReport, ...]
    overall: FamilyReport
    findings: tuple[Finding, ...]
    violations: tuple[Violation, ...]
    contract: PolicyContract
    traces: tuple[Trace, ...] = field(default=(), repr=False)

    @property
    def passed(self) -> bool:
        """True when no finding counts against the contract."""
        return not any(f.counts for f in self.findings)

    def kinds(self) -> set[str]:
        """The kinds of the findings that count."""
        return {f.kind for f in self.findings if f.counts}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``passed``, ``findings``, the overall metrics, then the details."""
        o = self.overall
        return {
            "passed": self.passed,
            "findings": [f.as_dict() for f in self.findings],
            "action_distribution_predicted": dict(o.action_distribution_predicted),
            "action_distribution_executed": dict(o.action_distribution_executed),
            "rejection_rate": o.rejection_rate,
            "trades": o.trades,
            "action_entropy_executed": o.action_entropy_executed,
            "mean_return": o.mean_return,
            "mean_episode_reward": o.mean_episode_reward,
            "invalid_predictions": o.invalid_predictions,
            "episodes": o.episodes,
            "steps": o.steps,
            "policy": self.policy,
            "scenario": self.scenario,
            "seed": self.seed,
            "deterministic": self.deterministic,
            "env_supports_masks": self.env_supports_masks,
            "masks_passed": self.masks_passed,
            "policy_takes_masks": self.policy_takes_masks,
            "policy_respects_masks": self.policy_respects_masks,
            "families": {f.family: f.as_dict() for f in self.families},
            "violations": [v.as_dict() for v in self.violations],
            "contract": self.contract.as_dict(),
        }

    def format(self, *, max_violations: int = 10) -> str:
        """The report as text: a table per family, distributions side by side, the verdict."""
        fams = (*self.families, self.overall)
        o = self.overall
        per = self.families[0].episodes if self.families else 0
        if not self.env_supports_masks:
            masks = "env has no masks"
        elif self.masks_passed:
            masks = "masks passed"
        elif self.policy_takes_masks:
            masks = "masks NOT passed"
        else:
            masks = "the policy takes no masks"
        if self.masks_passed and not self.policy_respects_masks:
            masks += " (the policy does not use them)"
        lines = [
            f"policy {self.policy} on scenario {self.scenario}: {per} episode(s) x "
            f"{len(self.families)} market families, {o.steps} steps, seed {self.seed}, "
            f"{'deterministic' if self.deterministic else 'stochastic'}, {masks}",
            "",
            f"{'family':<13}{'episodes':>9}{'return':>10}{'reward':>11}{'trades':>8}"
            f"{'rejected':>10}{'entropy':>9}{'invalid':>9}{'violations':>11}",
        ]
        for f in fams:
            lines.append(
                f"{f.family:<13}{f.episodes:>9}{f.mean_return:>+10.2%}{f.mean_episode_reward:>+11.3f}"
                f"{f.trades:>8}{f.rejection_rate:>10.1%}{f.action_entropy_executed:>9.3f}"
                f"{f.invalid_predictions:>9}{f.violations:>11}"
            )
        lines += ["", "action distribution, predicted / executed:"]
        head = f"{'action':<14}" + "".join(f"{f.family[:15]:>16}" for f in fams)
        lines.append(head)
        for name in o.action_distribution_predicted:
            cells = "".join(
                f"{f.action_distribution_predicted[name]:>8.1%}{f.action_distribution_executed[name]:>8.1%}"
                for f in fams
            )
            lines.append(f"{name:<14}{cells}")
        lines.append("")
        if self.passed:
            lines.append("PASS: the policy meets its contract.")
        else:
            n = sum(f.counts for f in self.findings)
            lines.append(f"FAIL: {n} finding(s) break the contract.")
        lines.extend(f"  {finding}" for finding in self.findings)
        if self.violations:
            lines += ["", f"invariant violations ({len(self.violations)}):"]
            for v in self.violations[:max_violations]:
                lines.append(str(v))
            if len(self.violations) > max_violations:
                lines.append(f"... and {len(self.violations) - max_violations} more (see --json)")
        return "\n".join(lines)


# --------------------------------------------------------------------------- tallies
@dataclass
class _Tally:
    family: str
    names: tuple[str, ...]
    predicted: list[int]
    executed: list[int]
    episodes: int = 0
    steps: int = 0
    rejections: int = 0
    trades: int = 0
    invalid: int = 0
    violations: int = 0
    returns: list[float] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    @classmethod
    def empty(cls, family: str, names: tuple[str, ...]) -> _Tally:
        return cls(family, names, [0] * len(names), [0] * len(names))

    def add(self, trace: Trace, invalid: int, violations: int) -> None:
        n = len(self.names)
        for r in trace.records:
            if 0 <= r.predicted < n:
                self.predicted[r.predicted] += 1
            if 0 <= r.executed < n:
                self.executed[r.executed] += 1
            self.rejections += r.rejected
            self.trades += r.quantity != 0
        self.steps += len(trace)
        self.episodes += 1
        self.invalid += invalid
        self.violations += violations
        m = compute_metrics(trace)
        self.returns.append(m.total_return)
        self.rewards.append(m.episode_reward)

    def merge(self, other: _Tally) -> None:
        self.predicted = [a + b for a, b in zip(self.predicted, other.predicted, strict=True)]
        self.executed = [a + b for a, b in zip(self.executed, other.executed, strict=True)]
        for name in ("episodes", "steps", "rejections", "trades", "invalid", "violations"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.returns += other.returns
        self.rewards += other.rewards

    def report(self) -> FamilyReport:
        steps = self.steps
        pred = {a: (c / steps if steps else 0.0) for a, c in zip(self.names, self.predicted, strict=True)}
        exe = {a: (c / steps if steps else 0.0) for a, c in zip(self.names, self.executed, strict=True)}
        return FamilyReport(
            family=self.family,
            episodes=self.episodes,
            steps=steps,
            action_distribution_predicted=pred,
            action_distribution_executed=exe,
            rejection_rate=self.rejections / steps if steps else 0.0,
            action_entropy_executed=action_entropy(exe),
            trades=self.trades,
            mean_return=math.fsum(self.returns) / len(self.returns) if self.returns else 0.0,
            mean_episode_reward=math.fsum(self.rewards) / len(self.rewards) if self.rewards else 0.0,
            invalid_predictions=self.invalid,
            violations=self.violations,
        )


# --------------------------------------------------------------------------- collapse
def _pct(x: float) -> str:
    return f"{x:.1%}"


def collapse_findings(
    predicted: Mapping[str, float],
    executed: Mapping[str, float],
    *,
    rejection_rate: float,
    trades: int,
    steps: int,
    hold_name: str,
    contract: PolicyContract,
    per_family: Mapping[str, int] | None = None,
) -> list[tuple[FindingKind, str]]:
    """The collapse findings (``single-action-collapse``, ``rejection-collapse``,
    ``phantom-activity``) for one set of predicted and executed distributions.

    Shared by the audit and the training callback so both say the same thing. A
    policy that predicts HOLD almost always but does trade (buy, hold 400 steps, sell)
    is not a single-action collapse; one that only ever holds is.
    """
    out: list[tuple[FindingKind, str]] = []
    if steps == 0:
        return out
    top, share = max(predicted.items(), key=lambda kv: kv[1])
    executed_top = executed.get(top, 0.0)
    hold_while_trading = top == hold_name and trades > 0
    if contract.max_action_share is not None and share > contract.max_action_share and not hold_while_trading:
        out.append(
            (
                "single-action-collapse",
                f"{_pct(share)} of {steps} predictions are {top} (limit {_pct(contract.max_action_share)}); "
                f"executed {top} {_pct(executed_top)}, executed {hold_name} {_pct(executed.get(hold_name, 0.0))}",
            )
        )
    if contract.max_rejection_rate is not None and rejection_rate > contract.max_rejection_rate:
        out.append(
            (
                "rejection-collapse",
                f"{_pct(rejection_rate)} of {steps} predictions were rejected and executed as "
                f"{hold_name} (limit {_pct(contract.max_rejection_rate)}); most predicted: {top} "
                f"{_pct(share)}",
            )
        )
    non_hold = 1.0 - predicted.get(hold_name, 0.0)
    if contract.phantom_max_share is not None and trades == 0 and non_hold > contract.phantom_max_share:
        shown = ", ".join(f"{a} {_pct(p)}" for a, p in predicted.items() if p > 0 and a != hold_name)
        fams = ""
        if per_family:
            fams = f" across {', '.join(per_family)}"
        out.append(
            (
                "phantom-activity",
                f"the policy predicted non-{hold_name} actions on {_pct(non_hold)} of {steps} steps "
                f"({shown}) and not one trade executed{fams}: executed {hold_name} "
                f"{_pct(executed.get(hold_name, 0.0))}. All metrics are zero because nothing happened",
            )
        )
    return out
