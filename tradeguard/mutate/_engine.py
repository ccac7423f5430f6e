"""Mutation testing of the invariant gate: generate mutants, run the gate on each, report.

:func:`run_mutation` reads the source files, makes every single-operator mutant
(:mod:`tradeguard.mutate._operators`), runs the gate once on the unmutated code (it must
pass, and it shows which module each file is imported as), then runs the gate on each
mutant in its own process (:mod:`tradeguard.mutate._runner`) and returns a
:class:`MutationReport`: the kill rate, how each mutant was killed, and every survivor
as a diff.
"""

from __future__ import annotations

import difflib
import os
import shlex
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tradeguard._cores import default_jobs
from tradeguard.errors import InvalidConfig
from tradeguard.mutate._equivalents import Equivalent
from tradeguard.mutate._operators import Mutant, mutants_of_source, sample_mutants
from tradeguard.mutate._runner import GateSpec, RunOutcome, WorkerPool

__all__ = [
    "MutantResult",
    "MutationReport",
    "SourceFile",
    "Status",
    "default_jobs",
    "list_mutants",
    "read_sources",
    "run_mutation",
]

Status = Literal["invariant", "crash", "timeout", "survived", "unverified"]
KILLED: tuple[Status, ...] = ("invariant", "crash", "timeout")

MIN_TIMEOUT = 30.0
"""The default timeout per mutant is ``TIMEOUT_FACTOR`` times the unmutated run, at least this."""
TIMEOUT_FACTOR = 5.0
BASELINE_TIMEOUT = 600.0
"""How long the unmutated run may take when no ``--timeout`` is given."""

_SKIP_DIRS = frozenset({"__pycache__", "build", "dist", "node_modules"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceFile:
    """A file to mutate.

    Attributes:
        path: As shown in reports: relative to the current directory when inside it.
        real: Its resolved path (symlinks followed), which is what the import hook matches.
        text: Its contents.
        explicit: Named on the command line, rather than found in a directory given.
    """

    path: str
    real: str
    text: str
    explicit: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class MutantResult:
    """The gate's verdict on one mutant.

    Attributes:
        mutant: The mutant.
        status: ``invariant`` (the gate failed: killed by the invariants named), ``crash``
            (the run ended in an error before the gate could judge, e.g. at import),
            ``timeout`` (killed for running past the timeout), ``survived`` (the gate
            passed), or ``unverified`` (the mutated module was not what the run imported:
            counted as not killed, and reported).
        invariants: The ids of the invariants that failed.
        detail: The crash's last line, the timeout, the first violation, or why unverified.
        seconds: Wall-clock time of the run.
        diff: The mutant as a unified diff of its file.
        equivalent: The reason, when the equivalents file lists this mutant.
        env: With several gates, the ``--env`` of the one that killed it (for a survivor, of the
            first whose check ran it and passed); ``None`` with one gate.
    """

    mutant: Mutant
    status: Status
    invariants: tuple[str, ...] = ()
    detail: str = ""
    seconds: float = 0.0
    diff: str = ""
    equivalent: str | None = None
    env: str | None = None

    @property
    def killed(self) -> bool:
        return self.status in KILLED

    @property
    def excluded(self) -> bool:
        """Listed as equivalent and not killed: left out of the kill rate."""
        return self.equivalent is not None and not self.killed

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.mutant.as_dict(),
            "status": self.status,
            "killed": self.killed,
            "invariants": list(self.invariants),
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
            "equivalent": self.equivalent,
            "killed_on_env": self.env,
            "diff": self.diff,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MutationReport:
    """What the gate caught: every mutant's verdict and the kill rate.

    Attributes:
        gates: Every gate, one per ``--env`` (``gate``: the first): a mutant is killed when any of
            them fails on it.
        sources: The files mutated (as shown).
        modules: ``path -> module names`` it was imported as, in the unmutated run.
        skipped: Files found in a directory given that the env does not import.
        generated: Mutants generated in the files mutated.
        sample: ``--sample`` (``None``: no sample was drawn).
        seed: The sample's seed.
        selected: The ids given (``--mutant``), or ``None``.
        jobs: Runs at a time.
        timeout: Seconds a run may take before it is killed (a ``timeout`` kill).
        baseline_seconds: The unmutated run's wall-clock time.
        results: One per mutant run, in source order.
        stale_equivalents: Entries of the equivalents file that match no mutant of these files.
        seconds: Wall-clock time of the whole run.
    """

    gates: tuple[GateSpec, ...]
    sources: tuple[str, ...]
    modules: dict[str, tuple[str, ...]]
    skipped: tuple[str, ...]
    generated: int
    sample: int | None
    seed: int
    selected: tuple[str, ...] | None
    jobs: int
    timeout: float
    baseline_seconds: float
    results: tuple[MutantResult, ...]
    stale_equivalents: tuple[Equivalent, ...] = ()
    seconds: float = 0.0

    @property
    def gate(self) -> GateSpec:
        """The first gate (the first ``--env``); its budget and adapter are every gate's."""
        return self.gates[0]

    @property
    def killed(self) -> tuple[MutantResult, ...]:
        return tuple(r for r in self.results if r.killed)

    @property
    def survivors(self) -> tuple[MutantResult, ...]:
        """Mutants the gate did not catch, equivalents excluded (``unverified`` included)."""
        return tuple(r for r in self.results if not r.killed and not r.excluded)

    @property
    def equivalents(self) -> tuple[MutantResult, ...]:
        return tuple(r for r in self.results if r.excluded)

    @property
    def contradicted(self) -> tuple[MutantResult, ...]:
        """Listed as equivalent, yet killed: the entry is wrong (they count as killed)."""
        return tuple(r for r in self.results if r.equivalent is not None and r.killed)

    @property
    def counted(self) -> int:
        """The kill rate's denominator: mutants run, less those shown equivalent."""
        return len(self.results) - len(self.equivalents)

    @property
    def kill_rate(self) -> float | None:
        """Killed / counted, or ``None`` when no mutant counts."""
        return len(self.killed) / self.counted if self.counted else None

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)

    def kills_by_invariant(self) -> list[tuple[str, int]]:
        """How many mutants each invariant caught (a mutant may be caught by several)."""
        counter = Counter(i for r in self.results if r.status == "invariant" for i in r.invariants)
        return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))

    def rerun_command(self, result: MutantResult) -> str:
        """``tradeguard mutate`` on this one mutant, with the same gate (e.g. after adding an invariant)."""
        argv = ["tradeguard", "mutate"]
        for g in self.gates:
            argv += ["--env", g.env]
        if self.gate.adapter:
            argv += ["--adapter", self.gate.adapter]
        argv += ["--source", result.mutant.path, "--mutant", result.mutant.id, "--profile", self.gate.profile]
        if self.gate.examples is not None:
            argv += ["--examples", str(self.gate.examples)]
        if self.gate.max_steps is not None:
            argv += ["--max-steps", str(self.gate.max_steps)]
        if self.gate.example_timeout is not None:
            argv += ["--example-timeout", f"{self.gate.example_timeout:g}"]
        return shlex.join(argv)

    def as_dict(self) -> dict[str, Any]:
        rate = self.kill_rate
        return {
            "env": self.gate.env,
            "gate": self.gate.command(),
            "envs": [g.env for g in self.gates],
            "gates": [g.command() for g in self.gates],
            "sources": list(self.sources),
            "modules": {k: list(v) for k, v in self.modules.items()},
            "skipped_not_imported": list(self.skipped),
            "generated": self.generated,
            "sample": self.sample,
            "seed": self.seed,
            "selected": None if self.selected is None else list(self.selected),
            "run": len(self.results),
            "jobs": self.jobs,
            "timeout_seconds": round(self.timeout, 1),
            "baseline_seconds": round(self.baseline_seconds, 3),
            "seconds": round(self.seconds, 3),
            "kill_rate": None if rate is None else round(rate, 4),
            "counted": self.counted,
            "killed": len(self.killed),
            "killed_by_invariant": self.count("invariant"),
            "killed_by_crash": self.count("crash"),
            "killed_by_timeout": self.count("timeout"),
            "survived": len(self.survivors),
            "unverified": self.count("unverified"),
            "equivalent": len(self.equivalents),
            "kills_by_invariant": dict(self.kills_by_invariant()),
            "equivalent_but_killed": [r.mutant.id for r in self.contradicted],
            "stale_equivalents": [{"id": e.id, "reason": e.reason, "line": e.line} for e in self.stale_equivalents],
            "mutants": [{**r.as_dict(), "rerun": self.rerun_command(r)} for r in self.results],
        }

    def format(self) -> str:
        """The report as text: summary, survivors as diffs, equivalents, then every kill."""
        rate = self.kill_rate
        out: list[str] = []
        n = len(self.results)
        if self.selected is not None:
            sample = f"{n} of {self.generated} mutants (chosen by --mutant)"
        elif self.sample is not None and n < self.generated:
            sample = f"{n} of {self.generated} mutants (sample seed {self.seed})"
        else:
            sample = f"all {n} mutants"
        files = f"{len(self.sources)} file{'s' if len(self.sources) != 1 else ''}"
        envs = [g.env for g in self.gates]
        out.append(f"tradeguard mutate: {sample} of {files}, env{'s' if len(envs) > 1 else ''} {', '.join(envs)}")
        if len(envs) > 1:
            out.append(f"gates ({len(envs)}; a mutant is killed when any fails, tried in this order):")
            out.extend(f"  {g.command()}" for g in self.gates)
        else:
            out.append(f"gate: {self.gate.command()}")
        out.append(
            f"unmutated code: passes the gate in {self.baseline_seconds:.1f} s; mutants are imported as "
            + ", ".join(f"{', '.join(mods)} ({path})" for path, mods in self.modules.items())
        )
        if self.skipped:
            out.append(f"not imported by the env, so not mutated: {', '.join(self.skipped)}")
        out.append(
            f"{self.jobs} job{'s' if self.jobs != 1 else ''}, timeout {self.timeout:.0f} s per mutant, "
            f"{self.seconds:.1f} s in all"
        )
        out.append("")
        if rate is None:
            out.append("kill rate: none (no mutant counts: every one is listed as equivalent)")
        else:
            excl = len(self.equivalents)
            out.append(
                f"kill rate {rate:.1%}: {len(self.killed)} of {self.counted} killed"
                + (f" ({excl} shown equivalent, not counted)" if excl else "")
            )
        kills = self.kills_by_invariant()
        by_inv = ", ".join(f"{i} {n}" for i, n in kills)
        if sum(n for _, n in kills) > self.count("invariant"):
            by_inv += " (a mutant can fail several)"
        out.append(f"  killed by an invariant  {self.count('invariant'):4d}" + (f"   {by_inv}" if by_inv else ""))
        out.append(f"  killed by a crash       {self.count('crash'):4d}   the run failed before the gate could judge")
        out.append(f"  killed by a timeout     {self.count('timeout'):4d}   ran past {self.timeout:.0f} s")
        out.append(f"  survived                {len(self.survivors):4d}")
        if self.count("unverified"):
            out.append(
                f"  of which unverified     {self.count('unverified'):4d}   the run did not import the mutant: "
                "counted as survived"
            )
        if self.equivalents:
            out.append(f"  equivalent              {len(self.equivalents):4d}   not counted")
        if self.contradicted:
            out.append("")
            out.append(f"listed as equivalent but killed ({len(self.contradicted)}): the entries are wrong; counted as killed")
            out.extend(f"  {_line(r)}  {_verdict(r)}" for r in self.contradicted)
        if self.stale_equivalents:
            out.append("")
            out.append(
                f"equivalents file entries that match no mutant of these files ({len(self.stale_equivalents)}): "
                "the code moved or changed; review them"
            )
            out.extend(f"  line {e.line}: {e.id}  {e.reason}" for e in self.stale_equivalents)
        if self.survivors:
            out.append("")
            out.append(f"survivors ({len(self.survivors)}): changes the gate did not notice")
            for r in self.survivors:
                out.append("")
                out.append(f"{_line(r)}" + (f"  UNVERIFIED: {r.detail}" if r.status == "unverified" else ""))
                out.extend(f"    {d}" for d in r.diff.rstrip("\n").splitlines())
                out.append(f"  rerun: {self.rerun_command(r)}")
        if self.equivalents:
            out.append("")
            out.append(f"shown equivalent ({len(self.equivalents)}): not counted")
            out.extend(f"  {_line(r)}\n      {r.equivalent}" for r in self.equivalents)
        if self.killed:
            out.append("")
            out.append(f"killed ({len(self.killed)})")
            out.extend(f"  {_line(r)}  {_verdict(r)}" for r in self.killed)
        return "\n".join(out)


def _line(r: MutantResult) -> str:
    return f"{r.mutant.location}  {r.mutant.id}  {r.mutant.change}"


def _verdict(r: MutantResult) -> str:
    on = f" (on {r.env})" if r.env else ""
    if r.status == "invariant":
        return "invariant: " + ", ".join(r.invariants) + on
    if r.status == "timeout":
        return f"timeout{on}: {r.detail}"
    detail = r.detail if len(r.detail) <= 140 else r.detail[:139] + "..."
    return f"crash{on}: {detail}"


def read_sources(paths: Sequence[str], *, cwd: str | None = None) -> list[SourceFile]:
    """The Python files named by ``paths`` (files, or directories searched for ``*.py``).

    Raises:
        InvalidConfig: a path does not exist, is not a ``.py`` file, is a directory with
            no Python file, or cannot be read as UTF-8 text.
    """
    base = Path(cwd or os.getcwd())
    if not paths:
        raise InvalidConfig("--source names no file; give the Python files (or directories) to mutate.")
    found: dict[str, SourceFile] = {}
    for given in paths:
        p = Path(given) if Path(given).is_absolute() else base / given
        if not p.exists():
            raise InvalidConfig(f"--source {given!r} does not exist (looked in {base}).{_near(p)}")
        if p.is_dir():
            files = sorted(
                f
                for f in p.rglob("*.py")
                if not any(part.startswith(".") or part in _SKIP_DIRS for part in f.relative_to(p).parts[:-1])
            )
            if not files:
                raise InvalidConfig(f"--source {given!r} is a directory with no Python file (*.py) in it.")
            for f in files:
                _add(found, f, base, explicit=False)
        elif p.suffix != ".py":
            raise InvalidConfig(
                f"--source {given!r} is not a Python source file; expected a .py file or a directory of them."
            )
        else:
            _add(found, p, base, explicit=True)
    return list(found.values())


def _add(found: dict[str, SourceFile], p: Path, base: Path, *, explicit: bool) -> None:
    real = os.path.realpath(p)
    if real in found:
        if explicit and not found[real].explicit:
            found[real] = SourceFile(path=found[real].path, real=real, text=found[real].text, explicit=True)
        return
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidConfig(f"--source {str(p)!r} cannot be read as UTF-8 text: {exc}.") from None
    absolute = p.absolute()
    try:
        shown = absolute.relative_to(base.absolute()).as_posix()
    except ValueError:
        shown = absolute.as_posix()
    found[real] = SourceFile(path=shown, real=real, text=text, explicit=explicit)


def _near(p: Path) -> str:
    """`` Did you mean 'x'?`` for a sibling with a close name."""
    from tradeguard._validation import suggest

    parent = p.parent
    if not parent.is_dir():
        return f" Its directory {str(parent)!r} does not exist either."
    return suggest(p.name, [c.name for c in parent.iterdir()])


def list_mutants(sources: Sequence[SourceFile]) -> list[Mutant]:
    """Every mutant of ``sources``, file by file in source order."""
    return [m for s in sources for m in mutants_of_source(s.text, s.path)]


def run_mutation(
    gate: GateSpec | Sequence[GateSpec],
    paths: Sequence[str],
    *,
    sample: int | None = None,
    seed: int = 0,
    ids: Sequence[str] | None = None,
    jobs: int | None = None,
    timeout: float | None = None,
    equivalents: Mapping[str, Equivalent] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    cwd: str | None = None,
) -> MutationReport:
    """Run the gate on mutants of ``paths``; nothing on disk is modified.

    Args:
        gate: The gate each mutant faces (env, adapter, profile, budget), or several: then a
            mutant faces each gate whose unmutated run imports its file, in order, and is
            killed by the first that fails on it (and survives only if every one passes).
        paths: Python files, or directories of them, that the env imports.
        sample: Run this many mutants, chosen by ``seed`` (``None``: all).
        seed: The sample's seed.
        ids: Run only the mutants with these ids (``None``: all, or the sample).
        jobs: Runs at a time (``None``: the cores available).
        timeout: Seconds a run may take before it is killed and counted as a timeout
            kill (``None``: 5 times the unmutated run, at least 30 s).
        equivalents: Mutants shown equivalent, by id (from :func:`load_equivalents`).
        progress: Called ``(done, total, label)`` as runs finish.
        cwd: The directory the gate runs in and paths are relative to (default: the current one).

    Returns:
        The :class:`MutationReport`.

    Raises:
        InvalidConfig: a source cannot be read or parsed, a file named is not imported
            by the env, or the gate does not pass on the unmutated code.
    """
    start = time.perf_counter()
    gates = (gate,) if isinstance(gate, GateSpec) else tuple(gate)
    if not gates:
        raise InvalidConfig("no gate to run: give at least one --env.")
    cwd = cwd or os.getcwd()
    equivalents = dict(equivalents or {})
    sources = read_sources(paths, cwd=cwd)
    jobs = jobs or default_jobs()
    # The pool is entered last so that it exits first: Ctrl-C kills its runs (the unmutated ones in the
    # side thread too) before the side thread is joined, rather than waiting for them to finish.
    with ThreadPoolExecutor(max_workers=1) as side, WorkerPool(jobs=jobs, cwd=cwd) as pool:
        if progress is not None:
            progress(0, 1, "the gate on the unmutated code")
        # The unmutated runs go first, in the background: reading the files takes libcst
        # seconds on large sources, time the runs would otherwise wait for.
        texts_all = {s.real: s.text for s in sources}
        running = [
            side.submit(pool.run, g.check_argv(), texts_all, None, timeout or BASELINE_TIMEOUT) for g in gates
        ]
        by_file = {s.real: mutants_of_source(s.text, s.path) for s in sources}
        baselines = [r.result() for r in running]
        per_gate = [_check_baseline(g, b, timeout) for g, b in zip(gates, baselines, strict=True)]
        modules: dict[str, tuple[str, ...]] = {}
        for found in per_gate:
            for path, names in found.items():
                modules[path] = tuple(sorted({*modules.get(path, ()), *names}))
        imported = [s for s in sources if s.real in modules]
        missing = [s for s in sources if s.real not in modules]
        named = [s for s in missing if s.explicit]
        if named:
            raise InvalidConfig(_not_imported(gates, named, imported))
        if not imported:
            raise InvalidConfig(_not_imported(gates, missing, imported))
        slowest = max(b.seconds for b in baselines)
        if timeout is None:
            timeouts = [max(MIN_TIMEOUT, TIMEOUT_FACTOR * b.seconds) for b in baselines]
        elif timeout <= slowest:
            raise InvalidConfig(
                f"--timeout {timeout:g} is shorter than the gate's run on the unmutated code "
                f"({slowest:.1f} s): every mutant would time out. Give at least "
                f"{2 * slowest:.0f}, or leave --timeout out (default: 5 x the unmutated run, at least 30 s)."
            )
        else:
            timeouts = [timeout] * len(gates)
        all_mutants = [m for s in imported for m in by_file[s.real]]
        if ids is not None:
            chosen = _select(all_mutants, ids, {m.id: m for ms in by_file.values() for m in ms})
        elif sample is not None:
            chosen = sample_mutants(all_mutants, sample, seed)
        else:
            chosen = all_mutants
        texts = {s.path: s for s in imported}
        faced = [
            [(g, t) for g, t, found in zip(gates, timeouts, per_gate, strict=True) if texts[m.path].real in found]
            for m in chosen
        ]
        tasks = [
            _task(pool, gates_of, texts[m.path], m, equivalents.get(m.id), several=len(gates) > 1)
            for m, gates_of in zip(chosen, faced, strict=True)
        ]
        done = 0

        def on_done(index: int, result: Any) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                r: MutantResult = result
                progress(done, len(tasks), f"{r.mutant.location} {r.mutant.change}: {r.status}")

        results = pool.map(tasks, on_done)
    every_id = {m.id for ms in by_file.values() for m in ms}
    return MutationReport(
        gates=gates,
        sources=tuple(s.path for s in imported),
        modules={s.path: modules[s.real] for s in imported},
        skipped=tuple(s.path for s in missing),
        generated=len(all_mutants),
        sample=sample,
        seed=seed,
        selected=None if ids is None else tuple(ids),
        jobs=jobs,
        timeout=max(timeouts),
        baseline_seconds=sum(b.seconds for b in baselines),
        results=tuple(results),
        stale_equivalents=tuple(e for i, e in sorted(equivalents.items()) if i not in every_id),
        seconds=time.perf_counter() - start,
    )


def _select(mutants: Sequence[Mutant], ids: Sequence[str], every: Mapping[str, Mutant]) -> list[Mutant]:
    """The mutants named by ``ids`` (``--mutant``), in source order; an unknown id is refused."""
    wanted = set(ids)
    unknown = sorted(i for i in wanted if i not in every)
    if unknown:
        raise InvalidConfig(
            f"--mutant {', '.join(unknown)}: no mutant of the --source files has "
            f"{'this id' if len(unknown) == 1 else 'these ids'}. An id hashes the file as given, the line, "
            "the column and the change: it changes when the code moves. List the current ids with --list."
        )
    skipped = sorted(i for i in wanted if every[i] not in mutants)
    if skipped:
        raise InvalidConfig(
            f"--mutant {', '.join(skipped)} is in a file the env does not import ("
            f"{', '.join(sorted({every[i].path for i in skipped}))}), so it cannot be run."
        )
    return [m for m in mutants if m.id in wanted]


def _task(
    pool: WorkerPool,
    gates: Sequence[tuple[GateSpec, float]],
    source: SourceFile,
    mutant: Mutant,
    equivalent: Equivalent | None,
    *,
    several: bool = False,
) -> Callable[[], MutantResult]:
    def task() -> MutantResult:
        text = mutant.apply(source.text)
        seconds = 0.0
        verdicts: list[tuple[Status, tuple[str, ...], str, str]] = []
        for gate, timeout in gates:
            outcome = pool.run(gate.check_argv(), {source.real: text}, source.real, timeout)
            seconds += outcome.seconds
            status, invariants, detail = classify(outcome, timeout)
            verdicts.append((status, invariants, detail, gate.env))
            if status in KILLED:
                break
        status, invariants, detail, env = _combined(verdicts)
        return MutantResult(
            mutant=mutant,
            status=status,
            invariants=invariants,
            detail=detail,
            seconds=seconds,
            diff=_diff(source, mutant, text),
            equivalent=None if equivalent is None else equivalent.reason,
            env=env if several else None,
        )

    return task


def _combined(
    verdicts: Sequence[tuple[Status, tuple[str, ...], str, str]],
) -> tuple[Status, tuple[str, ...], str, str]:
    """One verdict from the gates' (in order): the kill, else survived when any gate ran the mutant
    and passed, else unverified (no gate's run imported the mutant)."""
    for v in verdicts:
        if v[0] in KILLED:
            return v
    for v in verdicts:
        if v[0] == "survived":
            return v
    return verdicts[-1]


def classify(outcome: RunOutcome, timeout: float) -> tuple[Status, tuple[str, ...], str]:
    """``(status, failed invariant ids, detail)`` of one mutant's run."""
    if not outcome.started:
        return "unverified", (), f"the worker did not start: {outcome.last_error_line() or outcome.returncode}"
    if not outcome.mutated_served:
        what = "timed out" if outcome.timed_out else "ended"
        return "unverified", (), f"the run {what} without importing the mutated module"
    if outcome.bypassed:
        return "unverified", (), f"imported without the mutant: {', '.join(outcome.bypassed)}"
    if outcome.timed_out:
        return "timeout", (), f"killed after {timeout:.0f} s"
    report = outcome.report()
    if report is None:
        line = outcome.last_error_line() or f"exit status {outcome.returncode}, no output"
        return "crash", (), line
    failed = tuple(str(r["id"]) for r in report.get("invariants", []) if r.get("status") == "fail")
    if failed:
        first = next(r for r in report["invariants"] if r.get("status") == "fail")
        violations = first.get("violations") or [{}]
        message = str(violations[0].get("message", "")).splitlines()
        return "invariant", failed, (message[0][:300] if message else "")
    if outcome.returncode == 0 and report.get("passed"):
        return "survived", (), ""
    return "crash", (), outcome.last_error_line() or f"exit status {outcome.returncode}"


def _diff(source: SourceFile, mutant: Mutant, text: str) -> str:
    return "".join(
        difflib.unified_diff(
            source.text.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=source.path,
            tofile=f"{source.path} (mutant {mutant.id})",
            n=2,
        )
    )


def _check_baseline(gate: GateSpec, outcome: RunOutcome, timeout: float | None) -> dict[str, tuple[str, ...]]:
    """``real path -> module names`` from the unmutated run, which must pass the gate."""
    command = gate.command()
    if not outcome.started:
        raise InvalidConfig(f"cannot start the gate's process: {outcome.last_error_line() or outcome.returncode}")
    if outcome.bypassed:
        raise InvalidConfig(
            "these files were imported before tradeguard mutate could put its import hook in place "
            f"(by a .pth file or sitecustomize?): {', '.join(outcome.bypassed)}. Their mutants cannot be "
            "run; leave them out of --source."
        )
    if outcome.timed_out:
        limit = timeout or BASELINE_TIMEOUT
        raise InvalidConfig(
            f"the gate did not finish on the unmutated code within {limit:g} s (`{command}`). "
            "Give a longer --timeout, or a smaller budget (--profile fast, --examples N)."
        )
    report = outcome.report()
    if report is None:
        raise InvalidConfig(
            f"the gate cannot run on the unmutated code: {outcome.last_error_line() or outcome.returncode}. "
            f"Run `{command}` to see the whole error."
        )
    failed = [str(r["id"]) for r in report.get("invariants", []) if r.get("status") == "fail"]
    if failed or outcome.returncode != 0:
        raise InvalidConfig(
            f"the gate fails on the unmutated code ({', '.join(failed) or f'exit {outcome.returncode}'}): "
            "mutation testing measures what a passing gate catches, so the code must pass it first. "
            f"Run `{command}` to see the counterexamples."
        )
    modules: dict[str, list[str]] = {}
    for module, path in outcome.served.items():
        modules.setdefault(path, []).append(module)
    return {path: tuple(sorted(names)) for path, names in modules.items()}


def _not_imported(gates: Sequence[GateSpec], missing: Sequence[SourceFile], imported: Sequence[SourceFile]) -> str:
    names = ", ".join(repr(s.path) for s in missing)
    which = "is" if len(missing) == 1 else "are"
    found = (
        f" Of the files given, the env imports: {', '.join(s.path for s in imported)}."
        if imported
        else " It imports none of the files given."
    )
    return (
        f"--source {names} {which} not imported when the gate runs on --env {', '.join(g.env for g in gates)} "
        f"({'; '.join(f'`{g.command()}`' for g in gates)}), so no mutant of {'it' if len(missing) == 1 else 'them'} could be killed.{found} "
        "Give the files whose code the env runs."
    )
