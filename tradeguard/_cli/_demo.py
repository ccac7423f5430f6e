"""The main job on the built-in defaults: the rules, the seed's scenarios, the gate, the audits.

Runs, in order: `tradeguard rules`; an episode of every shipped scenario with the
seed's collapsed policy (constant:SELL_PARTIAL) and a mask-respecting random one;
`tradeguard check` on the default scenario; `tradeguard audit-reward` on every
scenario; `tradeguard audit-policy` of the seed's collapsed agent. It opens with what it
will show and ends with a table: each of the seed's bugs, the check that caught it, and
the seconds it took. The FAILs of the audits that find the seed's bugs are the point of
the demo and are labelled as expected: it exits 0 when each seed bug was caught and the
default scenario passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

COMMAND = "demo"
ORDER = 5


@dataclass(frozen=True)
class Step:
    """One command of the demo.

    Attributes:
        argv: The command, as ``tradeguard`` takes it.
        note: Said after the command in the section title.
        bug: The seed's bug the command must catch, ``"SHORT NAME: what it is"``: a finding
            (and its FAIL) is expected.
        must_pass: The command must pass (the fixed configuration): a FAIL fails the demo.
    """

    argv: tuple[str, ...]
    note: str = ""
    bug: str | None = None
    must_pass: bool = False

    @property
    def title(self) -> str:
        return " ".join(("tradeguard", *self.argv)) + (f" ({self.note})" if self.note else "")


def plan(quick: bool) -> list[Step]:
    """The demo's commands, in order (``quick``: smaller budgets)."""
    from tradeguard.env import scenario_names

    names = scenario_names()
    steps = [Step(("rules",), "the transition table: execution, mask and this text come from it")]
    for name in names:
        for policy in ("constant:SELL_PARTIAL", "masked-random"):
            steps.append(Step(("run", "--scenario", name, "--policy", policy, "--seed", "0")))
    examples = "10" if quick else "100"
    steps.append(Step(("check", "--scenario", "default", "--examples", examples), "the invariant gate",
                      must_pass=True))
    # A number of markets, not seconds: what the demo finds must not depend on how busy the
    # machine is (a 2 s budget searched 10 markets at load 8, too few to catch V1-V9's reward).
    # The budget is only a ceiling.
    markets = "20" if quick else "300"
    bugs = {
        "v9": "V1-V9 reward: pays the level of open gains",
        "v10": "V10 penalty: -0.05, too weak to feel",
        "v10.1": "V10.1 curriculum: a double bind",
    }
    for name in names:
        steps.append(Step(("audit-reward", "--scenario", name, "--max-examples", markets, "--budget", "300"),
                          bug=bugs.get(name),
                          must_pass=name == "default"))
    steps.append(Step(("audit-policy", "--policy", "constant:SELL_PARTIAL", "--scenario", "v10", "--episodes", "4"),
                      "the seed's agent",
                      bug="Bug #1 evaluator: counted predicted actions"))
    steps.append(Step(("audit-policy", "--policy", "masked-random", "--scenario", "default", "--episodes", "4")))
    return steps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="smaller budgets (a few seconds)")


def _section(title: str) -> None:
    print(f"\n{'=' * 78}\n{title}\n{'=' * 78}", flush=True)


def _found(report: Any) -> list[str]:
    """The finding kinds a reward or policy audit reported (warnings included)."""
    kinds = report.kinds
    return sorted(kinds() if callable(kinds) else kinds)


@dataclass(frozen=True)
class Caught:
    """What the demo saw of one seed bug."""

    bug: str
    command: str
    kinds: tuple[str, ...]
    status: int
    seconds: float


def run(args: argparse.Namespace) -> int:
    from tradeguard._cli import main

    steps = plan(args.quick)
    bugs = [s for s in steps if s.bug]
    print("tradeguard demo: the seed's trading-agent bugs, each caught in seconds, before any training run.")
    print("It shows the rules, an episode of every scenario, the invariant gate, the reward audit of every "
          "scenario and the policy audit of the seed's collapsed agent.")
    print(f"{len(bugs)} audits are meant to find the seed's {len(bugs)} bugs (expect a FAIL or a warning from "
          "each, labelled 'expected'); a table of what caught what ends the run.")
    status = 0
    caught: list[Caught] = []
    for step in steps:
        _section(step.title)
        reports: list[Any] = []
        started = time.perf_counter()
        code = main(list(step.argv), on_report=reports.append)
        seconds = time.perf_counter() - started
        if step.must_pass and code != 0:
            print(f"\nUNEXPECTED: {step.title} should pass (it is the fixed configuration); it exited {code}.")
            status = 1
        if step.bug is None:
            continue
        kinds = tuple(_found(reports[-1])) if reports else ()
        caught.append(Caught(step.bug, _short(step.argv), kinds, code, seconds))
        name = step.bug.split(":")[0]
        if kinds:
            verdict = "FAIL" if code == 1 else "warning"
            print(f"\n^ expected {verdict}: the seed's {name}, caught ({', '.join(kinds)}).")
        else:
            print(f"\nUNEXPECTED: the seed's {name} was NOT caught (exit {code}).")
            status = 1
    _summary(caught)
    return status


def _short(argv: tuple[str, ...]) -> str:
    """``audit-reward v9``: the command and the scenario it ran on."""
    scenario = argv[argv.index("--scenario") + 1] if "--scenario" in argv else ""
    return f"{argv[0]} {scenario}".strip()


def _summary(caught: list[Caught]) -> None:
    _section("summary: the seed's bugs, and what caught them")
    rows = [(c.bug, f"{c.command}: {', '.join(c.kinds)}" if c.kinds else f"{c.command}: NOT caught",
             f"{c.seconds:.1f}") for c in caught]
    head = ("seed bug", "caught by", "seconds")
    width = [max(len(r[i]) for r in [head, *rows]) for i in range(2)]
    print(f"{head[0]:<{width[0]}}  {head[1]:<{width[1]}}  {head[2]:>7}")
    for bug, by, seconds in rows:
        print(f"{bug:<{width[0]}}  {by:<{width[1]}}  {seconds:>7}")
    missed = sum(not c.kinds for c in caught)
    print(f"\n{len(caught) - missed} of {len(caught)} seed bugs caught, in "
          f"{sum(c.seconds for c in caught):.1f} s of audits." + (f" {missed} MISSED." if missed else ""))
