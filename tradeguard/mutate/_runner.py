"""Running the gate on each mutant: one subprocess per mutant, in parallel, bounded in time.

No file of the user's is ever written. Each mutant runs in a fresh Python process
(``python -c`` with :mod:`tradeguard.mutate._boot`) that imports the mutated module from
text it receives on stdin, through an import hook placed before any other import; the
files on disk stay as they are, so there is nothing to restore after Ctrl-C, a crash,
or ``kill -9`` of ``tradeguard mutate`` itself. The process writes no bytecode, keeps
Hypothesis' files in a private temporary directory, and ends itself if its parent dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GateSpec", "RunOutcome", "WorkerPool"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GateSpec:
    """The invariant gate each mutant faces: the arguments of ``tradeguard check``.

    Attributes:
        env: ``MODULE:FACTORY``, a ``tradeguard check --env`` name, or ``tradeguard/Trading-v0``
            (tradeguard's own env, what ``tradeguard check`` checks without ``--env``).
        adapter: ``--adapter`` of ``tradeguard check``, or ``None``.
        profile: The gate profile (``fast``, ``ci``, ``thorough``).
        seed: The gate's search seed, always fixed: a mutant's verdict must be reproducible.
        examples: ``--examples``, or ``None`` for the profile's.
        max_steps: ``--max-steps``, or ``None`` for the profile's.
        example_timeout: ``--timeout`` of ``tradeguard check`` (seconds one example may take
            before the env counts as hanging), or ``None`` for its default.
    """

    env: str
    adapter: str | None = None
    profile: str = "ci"
    seed: int = 0
    examples: int | None = None
    max_steps: int | None = None
    example_timeout: float | None = None

    def check_argv(self) -> list[str]:
        """The ``tradeguard check`` arguments, JSON output, no example database, no progress."""
        argv = ["check"]
        if self.env != OWN_ENV_ID:
            argv += ["--env", self.env]
        if self.adapter:
            argv += ["--adapter", self.adapter]
        argv += ["--profile", self.profile, "--seed", str(self.seed)]
        if self.examples is not None:
            argv += ["--examples", str(self.examples)]
        if self.max_steps is not None:
            argv += ["--max-steps", str(self.max_steps)]
        if self.example_timeout is not None:
            argv += ["--timeout", f"{self.example_timeout:g}"]
        return [*argv, "--database", "none", "--json", "--quiet"]

    def command(self) -> str:
        """The gate as a command a user can run on the unmutated code."""
        argv = [a for a in self.check_argv() if a not in ("--json", "--quiet")]
        return shlex.join(["tradeguard", *argv])


_BOOTSTRAP = (
    "import sys\n"
    "path = sys.argv[1]\n"
    "with open(path, encoding='utf-8') as f:\n"
    "    source = f.read()\n"
    "exec(compile(source, path, 'exec'))\n"
)
"""The worker's ``python -c``: runs the file :mod:`tradeguard.mutate._boot` as ``__main__`` without
importing the ``tradeguard`` package (whose modules may be among the mutated)."""

OWN_ENV_ID = "tradeguard/Trading-v0"
"""``--env`` naming tradeguard's own env: the gate is ``tradeguard check`` without ``--env``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    """What one gate run did.

    Attributes:
        returncode: The process's exit status (negative: killed by that signal).
        stdout: What ``tradeguard check --json`` printed.
        stderr: Its standard error.
        seconds: Wall-clock time of the run.
        timed_out: The run was killed for taking longer than its timeout.
        served: ``module -> path`` for every watched file the hook served.
        mutated_served: The mutated file was imported through the hook.
        bypassed: Watched files imported without the hook (the run proves nothing about them).
        started: The worker got as far as installing its hook.
    """

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool
    served: dict[str, str] = field(default_factory=dict)
    mutated_served: bool = False
    bypassed: tuple[str, ...] = ()
    started: bool = False

    def report(self) -> dict[str, Any] | None:
        """The gate's JSON report, or ``None`` when the run did not print one."""
        return parse_report(self.stdout)

    def last_error_line(self) -> str:
        """The last meaningful line of stderr: the exception, or the error message."""
        for line in reversed(self.stderr.strip().splitlines()):
            line = line.strip()
            if line and not line.startswith(("File ", "^", "~")):
                return line[:300]
        return ""


def parse_report(stdout: str) -> dict[str, Any] | None:
    """The JSON object ``tradeguard check --json`` printed last, or ``None``."""
    text = stdout.strip()
    candidates = [text] if text.startswith("{") else []
    cut = text.rfind("\n{\n")
    if cut >= 0:
        candidates.append(text[cut + 1 :])
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and "invariants" in data:
            return data
    return None


class Interrupted(Exception):
    """The pool was stopped (Ctrl-C, SIGTERM) while runs were in flight."""


class WorkerPool:
    """Runs gate processes, at most ``jobs`` at once, and can stop them all at any moment.

    Every process is started in its own session (so a terminal's Ctrl-C reaches
    ``tradeguard mutate`` only, which then stops them deliberately) and killed as a
    process group when it times out or the pool stops. Use as a context manager: on
    exit, live processes are killed and the temporary directory is removed.
    """

    def __init__(self, *, jobs: int, python: str | None = None, cwd: str | None = None) -> None:
        self.jobs = jobs
        self.python = python or sys.executable
        self.cwd = cwd or os.getcwd()
        self._live: dict[int, subprocess.Popen[str]] = {}
        self._lock = threading.Lock()
        self._stopped = False
        self._counter = 0
        self.workdir = tempfile.mkdtemp(prefix="tradeguard-mutate-")
        self._boot = str(Path(__file__).with_name("_boot.py"))

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def stop(self) -> None:
        """Kill every live run; later runs are refused."""
        with self._lock:
            self._stopped = True
            procs = list(self._live.values())
        for proc in procs:
            _kill_group(proc)

    def run(self, argv: Sequence[str], serve: dict[str, str], mutated: str | None, timeout: float) -> RunOutcome:
        """One gate run: ``tradeguard check argv`` with ``serve``'s files imported from their texts."""
        with self._lock:
            if self._stopped:
                raise Interrupted()
            self._counter += 1
            log = os.path.join(self.workdir, f"run-{self._counter}.jsonl")
        job = {"argv": list(argv), "serve": serve, "mutated": mutated, "log": log, "parent": os.getpid()}
        env = {
            **os.environ,
            "PYTHONDONTWRITEBYTECODE": "1",
            "HYPOTHESIS_STORAGE_DIRECTORY": os.path.join(self.workdir, "hypothesis"),
        }
        start = time.perf_counter()
        with self._lock:
            if self._stopped:
                raise Interrupted()
            proc = subprocess.Popen(
                [self.python, "-c", _BOOTSTRAP, self._boot, "tradeguard-mutate-worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
            )
            self._live[proc.pid] = proc
        timed_out = False
        try:
            try:
                stdout, stderr = proc.communicate(json.dumps(job), timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                stdout, stderr = proc.communicate()
        finally:
            with self._lock:
                self._live.pop(proc.pid, None)
                stopped = self._stopped
        seconds = time.perf_counter() - start
        if stopped and not timed_out and proc.returncode < 0:
            raise Interrupted()
        return _outcome(proc.returncode, stdout, stderr, seconds, timed_out, log, mutated)

    def map(
        self,
        tasks: Sequence[Callable[[], Any]],
        on_done: Callable[[int, Any], None] | None = None,
    ) -> list[Any]:
        """Run ``tasks`` (each a call of :meth:`run` with its arguments) ``jobs`` at a time, in order.

        ``on_done(index, result)`` is called as each finishes. A KeyboardInterrupt or
        SystemExit in the caller's thread stops every live process before it propagates.
        """
        results: list[Any] = [None] * len(tasks)
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="tradeguard-mutate") as pool:
            futures: dict[Future[Any], int] = {}
            try:
                futures = {pool.submit(task): i for i, task in enumerate(tasks)}
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in done:
                        index = futures[future]
                        results[index] = future.result()
                        if on_done is not None:
                            on_done(index, results[index])
            except BaseException:
                self.stop()
                for future in futures:
                    future.cancel()
                raise
        return results


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the run's whole process group (the gate and anything it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _outcome(
    returncode: int, stdout: str, stderr: str, seconds: float, timed_out: bool, log: str, mutated: str | None
) -> RunOutcome:
    served: dict[str, str] = {}
    bypassed: tuple[str, ...] = ()
    started = False
    for event in _read_log(log):
        if event.get("event") == "start":
            started = True
        elif event.get("event") == "served":
            served[str(event["module"])] = str(event["path"])
        elif event.get("event") == "end":
            bypassed = tuple(event.get("bypassed") or ())
    return RunOutcome(
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
        seconds=seconds,
        timed_out=timed_out,
        served=served,
        mutated_served=mutated is not None and mutated in served.values(),
        bypassed=bypassed,
        started=started,
    )


def _read_log(path: str) -> Iterator[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except FileNotFoundError:
        return
    for line in lines:
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                yield event


def worker_pids(workdir: str) -> set[int]:
    """The pids of every worker a pool in ``workdir`` started (from the run logs)."""
    pids: set[int] = set()
    for log in Path(workdir).glob("run-*.jsonl"):
        for event in _read_log(str(log)):
            if isinstance(event.get("pid"), int):
                pids.add(event["pid"])
    return pids
