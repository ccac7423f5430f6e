"""What an invariant is, and what a violation of one says."""

from __future__ import annotations

import os
import sysconfig
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tradeguard.trace import ActionKind, Number, StepRecord, Trace, TraceMeta

__all__ = ["Context", "EpisodeCheck", "Family", "Invariant", "Scope", "Severity", "Status", "StepCheck", "Violation",
           "raised_at"]

Scope = Literal["step", "episode", "env"]
"""``step``: checkable online from one record and the one before; ``episode``: needs the
whole trace; ``env``: drives the env itself (replays, probes)."""

Family = Literal["seed", "rules", "accounting", "rewards", "contract"]
Status = Literal["pass", "fail", "warn", "not-applicable"]
"""``warn``: a warning-level invariant (``Invariant.severity == "warning"``) does not hold;
reported with its counterexample, but it does not fail the gate."""
Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Context:
    """What the checks need from a trace's header, computed once per trace."""

    meta: TraceMeta
    hold: int
    kinds: tuple[ActionKind, ...]
    penalty_index: int | None
    reported: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, meta: TraceMeta, reported: Mapping[str, Any] | None = None) -> Context:
        kinds = meta.action_kinds
        hold = kinds.index("hold") if "hold" in kinds else 0
        names = meta.component_names
        pi = names.index(meta.penalty_component) if meta.penalty_component in names else None
        return cls(meta, hold, kinds, pi, reported)

    def name(self, action: int) -> str:
        return self.meta.action_name(action)

    def money(self, amount: Number) -> str:
        return self.meta.money(amount)

    def units(self, quantity: Number) -> str:
        return self.meta.units(quantity)

    def kind(self, action: int) -> ActionKind | None:
        return self.kinds[action] if 0 <= action < len(self.kinds) else None


StepCheck = Callable[[StepRecord | None, StepRecord, Context], "str | None"]
"""``(previous record or None, record, context) -> message if violated, else None``."""

EpisodeCheck = Callable[[Trace, Context], Iterable[tuple[int | None, str]]]
"""``(trace, context) -> (step or None, message)`` for each violation."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Invariant:
    """A property every trace (or env) must satisfy.

    Attributes:
        id: Stable kebab-case id, e.g. ``no-sell-without-position``.
        statement: One line, what must hold.
        family: ``seed`` (the post-mortem's three), ``rules``, ``accounting``, ``rewards``,
            ``contract`` (the gymnasium env contract).
        scope: ``step``, ``episode`` or ``env`` (see :data:`Scope`).
        needs: Trace fields (``StepRecord`` field names, or ``reported_metrics``) the check
            reads; where a producer does not supply one, the invariant is not applicable.
        step_check: For ``step`` scope: checks one record against the previous one.
        episode_check: For ``episode`` scope (and the whole-trace part of a step invariant).
        declared: What the trace's header must declare for the invariant to apply:
            ``header -> None`` when it applies, or the reason it does not (``"the trace
            declares no fee schedule (TraceMeta.fee_schedule)"``). ``None``: always applies.
        severity: ``error`` (a violation fails the gate) or ``warning`` (it is reported with
            status ``warn``: suspicious, and legal when the env means it).
        idle: Why the invariant, though it applies, can find nothing on a trace with this
            header (``"no failed-action penalty is declared ..."``), or ``None`` when it
            checks something. A pass on such a trace is reported with the reason: it says
            nothing about the env. ``None`` (the attribute): it always checks something.
    """

    id: str
    statement: str
    family: Family
    scope: Scope
    needs: frozenset[str] = frozenset()
    step_check: StepCheck | None = None
    episode_check: EpisodeCheck | None = None
    declared: Callable[[TraceMeta], str | None] | None = None
    severity: Severity = "error"
    idle: Callable[[TraceMeta], str | None] | None = None

    def idle_reason(self, meta: TraceMeta) -> str | None:
        """Why this invariant has nothing to check on a trace with header ``meta``, or ``None``."""
        return self.idle(meta) if self.idle is not None else None

    def applicable(self, meta: TraceMeta, *, reported: bool = False) -> bool:
        """True when a trace with header ``meta`` supplies every needed field and declares
        what the invariant needs declared."""
        return self.why_not_applicable(meta, reported=reported) is None

    def why_not_applicable(self, meta: TraceMeta, *, reported: bool = False) -> str | None:
        """Why the invariant does not apply to a trace with header ``meta``, or ``None``."""
        if "reported_metrics" in self.needs and not reported:
            return "needs reported metrics"
        missing = sorted(set(self.needs) - {"reported_metrics"} - meta.supplies)
        if missing:
            return f"does not supply {', '.join(missing)}"
        return self.declared(meta) if self.declared is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """One place where an invariant does not hold, with what is needed to replay it.

    Attributes:
        invariant: The invariant's id.
        step: The step (``t``) where it fails, or ``None`` for a whole-episode property.
        message: What is wrong, as a ledger error: values, what was expected.
        seed: The episode's seed, when known.
        context: The steps around the failure, one ledger line each.
        replay: A one-line command that replays the episode up to the failure, when possible.
    """

    invariant: str
    step: int | None
    message: str
    seed: int | None = None
    context: str = ""
    replay: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def headline(self) -> str:
        where = f"step {self.step}" if self.step is not None else "episode"
        seed = f", seed {self.seed}" if self.seed is not None else ""
        return f"[{self.invariant}] {where}{seed}: {self.message}"

    def __str__(self) -> str:
        parts = [self.headline()]
        if self.context:
            parts.append(self.context)
        if self.replay:
            parts.append(f"  replay: {self.replay}")
        return "\n".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "invariant": self.invariant,
            "step": self.step,
            "message": self.message,
            "seed": self.seed,
            "context": self.context,
            "replay": self.replay,
            **({"counterexample": dict(self.extra)} if self.extra else {}),
        }


_INSTALLED = ("site-packages", "dist-packages")
_STDLIB = os.path.normcase(sysconfig.get_paths()["stdlib"])


def _checker_frame(module: str) -> bool:
    """A frame of tradeguard's checker (not of its envs, which are env code like any other)."""
    return (module == "tradeguard" or module.startswith("tradeguard.")) and not module.startswith("tradeguard.env")


def _shown_path(path: str) -> str:
    for marker in _INSTALLED:
        cut = path.rfind(f"{os.sep}{marker}{os.sep}")
        if cut >= 0:
            return path[cut + len(marker) + 2:]
    try:
        relative = os.path.relpath(path)
    except (ValueError, OSError):  # another drive (Windows); a working directory that is gone
        return path
    return path if relative.startswith("..") else relative


def _installed(path: str) -> bool:
    return any(f"{os.sep}{m}{os.sep}" in path for m in _INSTALLED)


def _package(module: str) -> str:
    return "tradeguard.env" if module.startswith("tradeguard.env") else module.partition(".")[0]


def raised_at(exc: BaseException) -> str:
    """Where ``exc`` was raised, for a message: ``"in step() at basket_env.py:87"``, or ``""``.

    The innermost frame of the env's own code, outside tradeguard's checker: the line of the
    user's env that raised, or that called the library that did. An env installed as a
    package (no frame outside site-packages and the standard library) is the package of the
    outermost frame the checker called, past gymnasium's wrappers: its innermost frame
    (``tradingenv/broker/broker.py:290``), not numpy's or pandas' inside it.
    """
    frames = [(frame, line) for frame, line in traceback.walk_tb(exc.__traceback__)
              if not _checker_frame(str(frame.f_globals.get("__name__", "")))]
    if not frames:
        return ""

    def local(path: str) -> bool:
        return not _installed(path) and not os.path.normcase(path).startswith(_STDLIB)

    own = [f for f in frames if local(f[0].f_code.co_filename)]
    if not own:
        modules = [str(f.f_globals.get("__name__", "")) for f, _ in frames]
        outer = next((m for m in modules if _package(m) != "gymnasium"), modules[0])
        own = [f for f, m in zip(frames, modules, strict=True) if _package(m) == _package(outer)] or frames
    frame, line = own[-1]
    return f"in {frame.f_code.co_name}() at {_shown_path(frame.f_code.co_filename)}:{line}"
