"""The gate's verdicts: per invariant, and on the whole env, with the shrunk counterexamples.

:func:`~tradeguard.invariants.check_trading_env` returns a :class:`CatalogReport`, one
:class:`InvariantReport` per invariant, each failure with its :class:`Counterexample`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tradeguard.errors import InvalidConfig, InvariantViolation
from tradeguard.invariants._model import Invariant, Status, Violation
from tradeguard.invariants._settings import settings_call
from tradeguard.trace import unit_decimals

__all__ = ["CatalogReport", "Counterexample", "InvariantReport"]


def _in_currency(market: tuple[int, ...], minor_unit: float | None) -> str:
    """``[100.00, 101.50]`` for minor units of 0.01; the integers themselves when the unit is unknown."""
    if minor_unit is None:
        return str(list(market))
    decimals = unit_decimals(minor_unit)
    return "[" + ", ".join(f"{p * minor_unit:.{decimals}f}" for p in market) + "]"


@dataclass(frozen=True, slots=True, kw_only=True)
class Counterexample:
    """A minimal episode that violates an invariant: replay it with ``replay``.

    Attributes:
        actions: The actions predicted: ids for a ``Discrete`` space (after mapping a masked
            plan), tuples of numbers for a ``Box`` or ``MultiDiscrete`` one.
        action_names: The same, by name (``[0.5, 0, 1]`` for a ``Box`` action).
        masked: Whether the actions were drawn among the mask's valid ones.
        market: The prices the actions traded (minor units; the market stays flat after
            them); every price of the market when the env trades several instruments (an
            adapter may price each from any part of it); ``None`` if the env made its own.
            Replay it as ``Market(np.array(market), minor_unit)``.
        seed: The seed passed to ``reset``.
        settings: The env factory's keyword arguments the episode's env was built with
            (``make_env(**settings)``), when the gate drew settings; else ``None``.
        minor_unit: The currency value of one unit of ``market`` (the text shows the prices
            in currency, as the ledger lines do); ``None`` when unknown.
    """

    actions: tuple[Any, ...]
    action_names: tuple[str, ...]
    masked: bool
    market: tuple[int, ...] | None
    seed: int
    settings: dict[str, Any] | None = None
    minor_unit: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "actions": list(self.actions),
            "action_names": list(self.action_names),
            "masked": self.masked,
            "market": None if self.market is None else list(self.market),
            **({"minor_unit": self.minor_unit} if self.minor_unit is not None and self.market is not None else {}),
            "seed": self.seed,
            **({"settings": dict(self.settings)} if self.settings is not None else {}),
        }

    def __str__(self) -> str:
        prices = "" if self.market is None else f" on prices {_in_currency(self.market, self.minor_unit)}"
        built = "" if self.settings is None else f", env built as {settings_call(self.settings)}"
        return f"seed {self.seed}, actions {list(self.action_names)}{prices}{built}"


@dataclass(frozen=True, slots=True, kw_only=True)
class InvariantReport:
    """One invariant's verdict from the gate."""

    invariant: Invariant
    status: Status
    examples: int
    violations: tuple[Violation, ...] = ()
    counterexample: Counterexample | None = None
    note: str = ""
    missing: tuple[str, ...] = ()
    """The record fields the adapter does not supply, when that made the invariant not applicable."""
    idle: bool = False
    """A pass with nothing to check on this env (no penalty declared, no action disabled...): ``note`` says why."""

    def as_dict(self) -> dict[str, Any]:
        cx = None if self.counterexample is None else self.counterexample.as_dict()
        return {
            "id": self.invariant.id,
            "statement": self.invariant.statement,
            "family": self.invariant.family,
            "scope": self.invariant.scope,
            "status": self.status,
            "examples": self.examples,
            "violations": [{**v.as_dict(), "counterexample": cx} for v in self.violations],
            **({"note": self.note} if self.note else {}),
            **({"idle": True} if self.idle else {}),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogReport:
    """The gate's verdict on one env: every invariant's status, examples, counterexamples."""

    env: str
    results: tuple[InvariantReport, ...]
    seed: int | None
    """The search seed: the one given, or the one the gate drew when none was (so every run replays)."""
    examples: int
    seconds: float
    findings: tuple[str, ...] = field(default_factory=tuple)
    adapter: str = ""
    settings: str | None = None
    """Where the env's settings were drawn from (settings fuzzing), or ``None`` when none were."""

    @property
    def passed(self) -> bool:
        """True when no invariant failed (not-applicable ones do not count as passed or failed)."""
        return all(r.status != "fail" for r in self.results)

    @property
    def failures(self) -> tuple[InvariantReport, ...]:
        return tuple(r for r in self.results if r.status == "fail")

    @property
    def statuses(self) -> dict[str, Status]:
        """Each checked invariant's status by id: ``{"fees-match-schedule": "fail", ...}``."""
        return {r.invariant.id: r.status for r in self.results}

    def result(self, invariant_id: str) -> InvariantReport:
        """One invariant's verdict: its status, examples, violations and counterexample.

        Raises:
            InvalidConfig: the report has no result for ``invariant_id`` (not in the
                catalog, or left out by ``only=``), naming the ids it has.
        """
        for r in self.results:
            if r.invariant.id == invariant_id:
                return r
        from tradeguard._validation import suggest

        ids = [r.invariant.id for r in self.results]
        raise InvalidConfig(
            f"the report of {self.env} has no result for {invariant_id!r}; it has {', '.join(ids) or 'none'}."
            f"{suggest(invariant_id, ids)}"
        )

    @property
    def warnings(self) -> tuple[InvariantReport, ...]:
        """The warning-level invariants that do not hold (status ``warn``): reported, not failed."""
        return tuple(r for r in self.results if r.status == "warn")

    @property
    def idle(self) -> tuple[InvariantReport, ...]:
        """The passes that had nothing to check on this env (each one's ``note`` says why)."""
        return tuple(r for r in self.results if r.idle)

    @property
    def not_supplied(self) -> tuple[InvariantReport, ...]:
        """The invariants not checked because the adapter does not supply the fields they read."""
        return tuple(r for r in self.results if r.status == "not-applicable" and r.missing)

    def as_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "adapter": self.adapter,
            "passed": self.passed,
            "seed": self.seed,
            "examples_per_invariant": self.examples,
            "seconds": round(self.seconds, 3),
            **({"settings": self.settings} if self.settings is not None else {}),
            "findings": list(self.findings),
            "not_checked_by_adapter": [r.invariant.id for r in self.not_supplied],
            "invariants": [r.as_dict() for r in self.results],
        }

    def format(self) -> str:
        """The report as a table, then each failure with its shrunk counterexample."""
        via = f" via the {self.adapter} adapter" if self.adapter else ""
        seed = f", seed {self.seed}" if self.seed is not None else ""
        lines = [f"tradeguard check: {self.env}{via}  ({self.seconds:.1f} s, up to {self.examples} examples per invariant"
                 f"{seed})", ""]
        if self.settings is not None:
            built = " (each example builds make_env(**settings))" if self.settings.startswith("drawn") else ""
            lines[1:1] = [f"  env settings: {self.settings}{built}"]
        for r in self.results:
            mark = {"pass": "pass", "fail": "FAIL", "warn": "WARN", "not-applicable": "n/a "}[r.status]
            lines.append(f"  {mark}  {r.invariant.id:<36} {r.examples:>5} examples  {r.note}")
        for r in (*self.failures, *self.warnings):
            lines += ["", f"{'FAIL' if r.status == 'fail' else 'WARNING'} {r.invariant.id}: {r.invariant.statement}"]
            if r.counterexample is not None:
                lines.append(f"  minimal counterexample: {r.counterexample}")
            lines += [str(v) for v in r.violations[:5]]
        for finding in self.findings:
            lines += ["", f"finding: {finding}"]
        passed = sum(r.status == "pass" for r in self.results)
        na = sum(r.status == "not-applicable" for r in self.results)
        warned = f", {len(self.warnings)} warning{'s' * (len(self.warnings) != 1)}" if self.warnings else ""
        lines += ["", f"{passed} passed, {len(self.failures)} failed{warned}, {na} not applicable"]
        unchecked = self.not_supplied
        if unchecked:
            fields = {f for r in unchecked for f in r.missing}
            were = "invariant was" if len(unchecked) == 1 else "invariants were"
            fix = (
                "Write an adapter for this env (about 40 lines, see docs/adapters.md) to check them."
                if self.adapter == "gym"
                else "An adapter that supplies them checks them too (docs/adapters.md)."
            )
            lines.append(
                f"{len(unchecked)} {were} not checked: the {self.adapter or 'given'} adapter does not supply "
                f"{_in_words(fields)}. {fix}"
            )
        idle = self.idle
        if idle:
            had, say = ("pass had", "its note says") if len(idle) == 1 else ("passes had", "their notes say")
            lines.append(f"{len(idle)} {had} nothing to check on this env ({', '.join(r.invariant.id for r in idle)}): "
                         f"{say} why.")
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        """Raise :class:`InvariantViolation` with :meth:`format` if any invariant failed."""
        __tracebackhide__ = True  # pytest: the caller's line, then the report
        if not self.passed:
            raise InvariantViolation(self.format())


_FIELD_WORDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("positions", frozenset({"position_before", "position_after", "quantity"})),
    ("cost bases", frozenset({"cost_basis_before"})),
    ("cash", frozenset({"cash_before", "cash_after"})),
    ("equity", frozenset({"equity_before", "equity_after"})),
    ("prices", frozenset({"price", "next_price"})),
    ("fees", frozenset({"fee"})),
    ("financing", frozenset({"financing"})),
    ("instrument legs", frozenset({"legs"})),
    ("the env's reported equity", frozenset({"reported_equity"})),
    ("executions", frozenset({"executed", "rejected", "reason"})),
    ("action masks", frozenset({"mask"})),
    ("reward components", frozenset({"components"})),
    ("steps", frozenset({"t"})),
    ("predicted actions", frozenset({"predicted"})),
    ("rewards", frozenset({"reward"})),
)
"""Record fields in a trader's words, in the order a report names them."""


def _in_words(fields: Iterable[str]) -> str:
    """``{"cash_after", "executed", "quantity"}`` -> ``"positions, cash or executions"``."""
    fields = set(fields)
    words = [word for word, group in _FIELD_WORDS if group & fields]
    named = set().union(*(group for _, group in _FIELD_WORDS))
    words += sorted(fields - named)  # a field this table does not know, by its own name
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
