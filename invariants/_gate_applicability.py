"""Which trace invariants the gate runs on an env, and what their passes and not-applicables say.

Decided on the header of the env built without settings (the probe's). With drawn settings,
each env built with them declares for itself: an invariant whose only missing piece is a
declaration that env lacks (a position limit that exists only when shorts are on) runs on
every trace that makes it, and one with nothing to check on the probe (no failed-action
penalty declared) may get something from a drawn env. Each is then reported by what the
traces showed, not by the probe alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tradeguard.invariants._check import InvariantResult
from tradeguard.invariants._gate_report import InvariantReport
from tradeguard.invariants._model import Invariant
from tradeguard.trace import TraceMeta

__all__ = ["TraceApplicability"]

SAME_IN_DRAWN = "; the same in every env built with the drawn settings"


class TraceApplicability:
    """The trace invariants of one gate run, and what each trace showed of them.

    Args:
        invariants: The invariants the run checks (env-scope ones are left out here).
        meta: The header of the env built without settings.
        reports: Whether the adapter hands over the env's own metrics.
        drawn: Whether each example builds its env with drawn settings.
    """

    def __init__(self, invariants: Sequence[Invariant], meta: TraceMeta, *, reports: bool, drawn: bool) -> None:
        self.meta, self.reports, self.drawn = meta, reports, drawn
        trace = [i for i in invariants if i.scope != "env"]
        self.applicable = [i for i in trace if i.applicable(meta, reported=reports)]
        self.undeclared: dict[str, str] = {}  # id -> the declaration the probe lacks
        if drawn:
            for inv in trace:
                if inv not in self.applicable and inv.declared is not None:
                    why = inv.declared(meta)
                    if why is not None and inv.why_not_applicable(meta, reported=reports) == why:
                        self.undeclared[inv.id] = why
                        self.applicable.append(inv)
        self.idle = {i.id: why for i in self.applicable if (why := i.idle_reason(meta)) is not None}
        self.applied: set[str] = set()  # undeclared ones some drawn env's trace declared
        self.active: set[str] = set()  # idle ones some drawn env's trace gave something to check

    def observe(self, results: Iterable[InvariantResult], meta: TraceMeta) -> None:
        """Note what one example's trace (with header ``meta``) made of the invariants it was checked against."""
        if not self.drawn or not (self.undeclared or self.idle):
            return
        for res in results:
            i = res.invariant
            if i.id in self.undeclared and res.status != "not-applicable":
                self.applied.add(i.id)
            if i.id in self.idle and i.idle_reason(meta) is None:
                self.active.add(i.id)

    def not_applicable(self, inv: Invariant, adapter: str) -> InvariantReport | None:
        """The report of an invariant that does not apply to this env, or ``None`` when it does."""
        if inv in self.applicable:
            return None
        if "reported_metrics" in inv.needs and not self.reports:
            return InvariantReport(invariant=inv, status="not-applicable", examples=0,
                                   note="needs reported metrics (the adapter's reported_metrics hook)")
        missing = tuple(sorted(set(inv.needs) - {"reported_metrics"} - self.meta.supplies))
        why = inv.why_not_applicable(self.meta, reported=self.reports) or ""
        note = f"the {adapter} adapter does not supply {', '.join(missing)}" if missing else why
        return InvariantReport(invariant=inv, status="not-applicable", examples=0, note=note, missing=missing)

    def passed(self, inv: Invariant, examples: int) -> InvariantReport:
        """A pass, saying so when the invariant had nothing to check on any env it ran on; not applicable
        after all when it needs a declaration no env built with the drawn settings made."""
        if inv.id in self.undeclared and inv.id not in self.applied:
            return InvariantReport(invariant=inv, status="not-applicable", examples=0,
                                   note=f"{self.undeclared[inv.id]}{SAME_IN_DRAWN}")
        why = self.idle.get(inv.id)
        if why is None or inv.id in self.active:
            return InvariantReport(invariant=inv, status="pass", examples=examples)
        same = SAME_IN_DRAWN if self.drawn else ""
        return InvariantReport(invariant=inv, status="pass", examples=examples, note=f"nothing to check: {why}{same}",
                               idle=True)
