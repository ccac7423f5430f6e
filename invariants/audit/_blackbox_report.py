"""The black-box reward audit's report: findings with replayable counterexamples, and their messages."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradeguard.invariants.audit._blackbox_analysis import MarketAnalysis
from tradeguard.invariants.audit._blackbox_tree import DEFAULT_BEAM_WIDTH, EnvRollout
from tradeguard.invariants.audit._reward_report import REWARD_FINDING_KINDS, Severity

__all__ = [
    "BLACKBOX_FINDING_KINDS",
    "EnvBaselineComparison",
    "EnvCounterexample",
    "EnvRewardAuditReport",
    "EnvRewardFinding",
]

BLACKBOX_FINDING_KINDS: tuple[str, ...] = REWARD_FINDING_KINDS[:5]
"""The oracle audit's optimum findings, which the black-box audit reports too (not
``weak-penalty``: it needs the reward's penalty component)."""

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
            head = (f"market ({len(self.market) - 1} prices after the first, in currency): "
                    f"{_in_currency(self.market, self.minor_unit)}")
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
        minor_unit: Currency value of one minor unit of the markets (their prices are shown in
            currency; ``changed`` keeps them in minor units, as the JSON does).
    """

    baseline: str
    markets_compared: int
    markets_changed: int
    changed: tuple[Mapping[str, Any], ...]
    new_findings: tuple[str, ...]
    resolved_findings: tuple[str, ...]
    baseline_kinds: tuple[str, ...]
    minor_unit: float = 0.01

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
            where = f"market {_in_currency(c['market'], self.minor_unit)}" if c["market"] is not None else f"seed {c['seed']}"
            lines.append(f"  {where}")
            lines.append(f"    now      {' '.join(c['actions'])}  PnL {_num(c['pnl'])}")
            lines.append(f"    baseline {' '.join(c['baseline_actions'])}  PnL {_num(c['baseline_pnl'])}")
        if len(self.changed) > 10:
            lines.append(f"  ... and {len(self.changed) - 10} more (--json lists them all)")
        return lines


def _in_currency(prices: Sequence[int], minor_unit: float) -> str:
    """Prices in minor units, shown in currency: ``10000 10150`` at 0.01 -> ``100.00 101.50``."""
    decimals = max(0, round(-math.log10(minor_unit))) if minor_unit < 1 else 0
    return " ".join(f"{p * minor_unit:,.{decimals}f}" for p in prices)


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
        stepping: How the search stepped the env: ``"snapshots"`` (deep copies of the env at each
            node of the action tree, proven on the first market to replay bit-identically) or
            ``"replay"`` (every sequence from the reset).
        stepping_note: Why it replayed, when snapshots were not used.
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
    stepping: str = "replay"
    stepping_note: str = ""

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
            "stepping": self.stepping,
            "stepping_note": self.stepping_note,
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
            "  stepping: "
            + (
                "snapshots (deep copies of the env at each node, proven on the first market to replay bit-identically)"
                if self.stepping == "snapshots"
                else "replay (every sequence from the reset)" + (f": {self.stepping_note}" if self.stepping_note else "")
            ),
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
        if unchecked:  # (never all of them: an audit that can judge nothing is refused before it runs)
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
