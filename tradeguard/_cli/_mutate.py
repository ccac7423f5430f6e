"""Measure the gate: break the env's code one token at a time and count what it catches.

Each mutant changes one token of a --source file: a comparison (< to <=, >= to >,
== to !=, in to not in, ...), arithmetic (+ to -, * to /, // to /, -x to x, += to -=),
a boolean operator (and to or, not x to x) or a constant (0 to 1, 1 to 0, n to n+1,
True to False). The gate, `tradeguard check` with the same --env, --adapter and
--profile and no example database, runs on every mutant in its own process with a
timeout. With several --env, the gate is the check of each: a mutant faces, in order,
every env whose unmutated check imports its file, and is killed by the first that fails
(e.g. a package of two envs and a vectorized engine checked against its scalar twin).
A mutant is killed when an invariant fails (the report names which), when its run
crashes before the gate can judge (e.g. at import), or when it runs past --timeout;
the three are counted apart. Every survivor is printed as a diff with
file:line:column: a change to the env's code that the gate did not notice.

Your files are never modified, so there is nothing to restore after Ctrl-C, a crash
or a kill: each run imports the mutated module from memory through an import hook
(also for files of an installed package, e.g. an editable install with package-dir
mappings). The unmutated code runs first: it must pass the gate, and the run shows
which module each --source file is imported as (a file named that the env does not
import is refused; in a directory given, such files are skipped and listed).

Not mutated: strings (docstrings, messages, f-strings), type annotations, __all__ and
__slots__, decorators, Literal[...], raise statements, assert messages, print/warn/
logger arguments, and the `if __name__ == "__main__"` test.

Mutants you have shown to be equivalent (no input can tell them from the original)
go in an --equivalent file, one per line: the mutant's id, then the reason. They are
listed with their reasons and left out of the kill rate. One that is killed after all
counts as killed, and its entry is reported as wrong. Ids are stable: a hash of file,
line, column and change (run from the same directory each time).

Needs libcst: pip install 'tradeguard[mutate]'.

examples:
  tradeguard mutate --env tradeguard/Trading-v0 --source env/_rules.py --sample 30 --seed 0
  tradeguard mutate --env mypackage.envs:make_env --adapter mypackage.envs:MyAdapter --source mypackage/envs.py
  tradeguard mutate --env myenv:make_env --source myenv.py --list       the mutants, without running them
  tradeguard mutate --env tradeguard/Trading-v0 --env tradeguard/Portfolio-v0 --env tradeguard/TradingBatch-v0 --source env/
  tradeguard mutate --env myenv:make_env --source myenv.py --equivalent equivalents.txt --fail-under 90 --json

exit status: 0 the mutants ran (whatever the kill rate, unless --fail-under), 1 the kill
rate is under --fail-under, 2 bad usage or input (including a gate that fails on the
unmutated code), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType
from typing import Any

from tradeguard._cli._common import SEED_HELP, ProgressLine, check_seed, print_json

COMMAND = "mutate"
ORDER = 35

MAX_SAMPLE = 1_000_000
MAX_JOBS = 256
MAX_TIMEOUT = 86_400.0
EXIT_INTERRUPTED = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tradeguard._cli._check import MAX_EXAMPLES, MAX_STEPS, PEERS

    parser.add_argument(
        "--env",
        required=True,
        action="append",
        metavar="MODULE:FACTORY|ID",
        help="the env the gate checks: tradeguard/Trading-v0 (tradeguard's own), "
        f"{', '.join(PEERS)}, or MODULE:FACTORY, a zero-argument callable returning a gymnasium env; "
        "repeat it for a gate of several envs (a mutant is killed when the check of any of them fails, "
        "and faces only the envs whose unmutated check imports its file)",
    )
    parser.add_argument(
        "--adapter",
        metavar="NAME|MODULE:CLASS",
        help="the trace adapter, as for tradeguard check (default: chosen from the env's class)",
    )
    parser.add_argument(
        "--source",
        required=True,
        nargs="+",
        action="extend",
        metavar="PATH",
        help="Python files to mutate, or directories of them; the env must import them",
    )
    parser.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help=f"run N mutants chosen by --seed, 1..{MAX_SAMPLE} (default: all); the same code and seed "
        "give the same sample on every machine",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help=f"seed of --sample, {SEED_HELP} (default: 0)")
    parser.add_argument(
        "--mutant",
        nargs="+",
        action="extend",
        metavar="ID",
        help="run only these mutants (ids as printed; a survivor's rerun line has its own)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        metavar="J",
        help=f"mutants run at once, 1..{MAX_JOBS} (default: the cores available, here {_cores()})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help=f"a mutant's run is killed after this long and counts as killed by a timeout, > 0 and at most "
        f"{MAX_TIMEOUT:g} (default: 5 x the unmutated run, at least 30)",
    )
    parser.add_argument(
        "--profile",
        choices=("fast", "ci", "thorough"),
        help="the gate's budget, as for tradeguard check (default: $TRADEGUARD_PROFILE, else ci); "
        "its search seed is fixed (0), so that every verdict can be reproduced",
    )
    parser.add_argument("--examples", type=int, metavar="N", help=f"episodes per invariant, 1..{MAX_EXAMPLES} (default: the profile's)")
    parser.add_argument("--max-steps", type=int, metavar="N", help=f"longest generated episode, 1..{MAX_STEPS} (default: the profile's)")
    parser.add_argument(
        "--example-timeout",
        type=float,
        metavar="SECONDS",
        help=f"the gate's --timeout: seconds one example may take before the env counts as hanging, > 0 and "
        f"at most {MAX_TIMEOUT:g} (default: tradeguard check's, 10)",
    )
    parser.add_argument(
        "--equivalent",
        metavar="FILE",
        help="mutants shown equivalent: one per line, its id then the reason; listed and left out of the kill rate",
    )
    parser.add_argument(
        "--fail-under",
        type=float,
        metavar="PERCENT",
        help="exit 1 when the kill rate is under PERCENT, 0..100 (default: never)",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list the mutants (id, file:line:column, change) without running anything",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress on stderr (it is off anyway when stderr is not a terminal)"
    )


def _cores() -> int:
    # not from tradeguard.mutate: every command builds this parser
    from tradeguard._cores import default_jobs

    return default_jobs()


def run(args: argparse.Namespace) -> int:
    from tradeguard._cli._check import MAX_EXAMPLES, MAX_STEPS
    from tradeguard._validation import check_int, check_number
    from tradeguard.errors import InvalidConfig
    from tradeguard.invariants import get_profile
    from tradeguard.mutate import (
        GateSpec,
        list_mutants,
        load_equivalents,
        read_sources,
        require_libcst,
        run_mutation,
    )

    gate_envs = [_env(e) for e in args.env]
    if len(set(gate_envs)) != len(gate_envs):
        raise InvalidConfig(f"--env {' --env '.join(args.env)} names an env twice; give each once.")
    if args.sample is not None:
        check_int("--sample", args.sample, min_value=1, max_value=MAX_SAMPLE, hint="Leave --sample out to run every mutant.")
    check_seed("--seed", args.seed)
    if args.mutant is not None and args.sample is not None:
        raise InvalidConfig(
            f"--mutant {' '.join(args.mutant)} and --sample {args.sample}: give one or the other "
            "(--mutant runs the mutants named, --sample a random choice of all)."
        )
    if args.jobs is not None:
        check_int("--jobs", args.jobs, min_value=1, max_value=MAX_JOBS, hint=f"This machine has {_cores()} core(s).")
    if args.timeout is not None:
        check_number("--timeout", args.timeout, min_value=0.0, min_exclusive=True, max_value=MAX_TIMEOUT)
    if args.examples is not None:
        check_int("--examples", args.examples, min_value=1, max_value=MAX_EXAMPLES)
    if args.max_steps is not None:
        check_int("--max-steps", args.max_steps, min_value=1, max_value=MAX_STEPS)
    if args.example_timeout is not None:
        check_number("--example-timeout", args.example_timeout, min_value=0.0, min_exclusive=True, max_value=MAX_TIMEOUT)
    if args.fail_under is not None:
        check_number("--fail-under", args.fail_under, min_value=0.0, max_value=100.0)
    if args.adapter is not None and not args.adapter.strip():
        raise InvalidConfig("--adapter '' is empty; give NAME or MODULE:CLASS, or leave --adapter out.")
    profile = get_profile(args.profile or os.environ.get("TRADEGUARD_PROFILE") or "ci")
    equivalents = load_equivalents(args.equivalent) if args.equivalent else {}
    require_libcst()

    if args.list:
        sources = read_sources(args.source)
        mutants = list_mutants(sources)
        if args.json:
            print_json([{**m.as_dict(), "equivalent": _reason(equivalents, m.id)} for m in mutants])
        else:
            for m in mutants:
                reason = _reason(equivalents, m.id)
                print(f"{m.id}  {m.location}  {m.kind:<10}  {m.change}" + (f"   (equivalent: {reason})" if reason else ""))
            print(f"{len(mutants)} mutants in {len(sources)} file(s); --list runs nothing, so files the env does not import are included")
        return 0

    gates = [
        GateSpec(
            env=gate_env,
            adapter=args.adapter,
            profile=profile.name,
            seed=profile.seed if profile.seed is not None else 0,
            examples=args.examples,
            max_steps=args.max_steps,
            example_timeout=args.example_timeout,
        )
        for gate_env in gate_envs
    ]
    previous = _terminate_as_interrupt()
    try:
        with ProgressLine(args) as line:
            report = run_mutation(
                gates,
                args.source,
                sample=args.sample,
                seed=args.seed,
                ids=args.mutant,
                jobs=args.jobs,
                timeout=args.timeout,
                equivalents=equivalents,
                progress=line.callback,
            )
    except KeyboardInterrupt:
        print(
            "\ntradeguard mutate: interrupted; every run was stopped. Your files were never modified, "
            "so there is nothing to restore.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        _restore_terminate(previous)
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.format())
    rate = report.kill_rate
    if args.fail_under is not None and rate is not None and rate * 100 < args.fail_under:
        print(
            f"tradeguard mutate: kill rate {rate:.1%} is under --fail-under {args.fail_under:g}%.",
            file=sys.stderr,
        )
        return 1
    return 0


def _env(spec: str) -> str:
    """``--env`` as the gate takes it: an id, a ``tradeguard check --env`` name or MODULE:FACTORY."""
    from tradeguard._cli._check import PEERS
    from tradeguard._validation import suggest
    from tradeguard.errors import InvalidConfig
    from tradeguard.mutate import OWN_ENV_ID

    spec = spec.strip()
    if spec == OWN_ENV_ID or spec in PEERS:
        return spec
    module, colon, attr = spec.partition(":")
    if colon and module and attr:
        return spec
    names = [OWN_ENV_ID, *PEERS]
    raise InvalidConfig(
        f"--env {spec!r}; expected {OWN_ENV_ID} (tradeguard's own env), one of {', '.join(PEERS)}, or "
        f"MODULE:FACTORY (e.g. mypackage.envs:make_env).{suggest(spec, names)}"
    )


def _reason(equivalents: dict[str, Any], mutant_id: str) -> str | None:
    e = equivalents.get(mutant_id)
    return None if e is None else str(e.reason)


def _terminate_as_interrupt() -> Any:
    """SIGTERM stops the runs as Ctrl-C does (the default would leave them to their watchdogs)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave SIGTERM alone
        return None


def _restore_terminate(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
