"""Audit a reward config before training: search short markets where its optimum is degenerate.

On generated markets, an exact oracle finds the action sequence that maximizes the
shaped reward and the one that maximizes PnL; the audit reports rewards that pay
for rejected actions, for sitting out, for holding forever, or that lose PnL, with
the smallest market that shows it and the two sequences side by side.

Examples:

  tradeguard audit-reward --scenario v10.1
  tradeguard audit-reward --config my_reward.toml --baseline default --json
  tradeguard audit-reward --scenario default --fuzz failed_action_penalty=-1:0

Exit status: 0 no error-severity finding, 1 at least one, 2 bad usage or input.
"""

from __future__ import annotations

import argparse

from tradeguard._cli._common import (
    add_output_arguments,
    add_scenario_arguments,
    load_scenario_from_args,
    print_json,
    write_report,
)
from tradeguard.errors import InvalidConfig

COMMAND = "audit-reward"
ORDER = 40


def _fuzz_range(text: str) -> tuple[str, float, float]:
    name, sep, rng = text.partition("=")
    lo, sep2, hi = rng.partition(":")
    try:
        if not (sep and sep2 and name.strip()):
            raise ValueError
        return name.strip(), float(lo), float(hi)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected FIELD=LOW:HIGH, e.g. failed_action_penalty=-1:0; got {text!r}"
        ) from None


def _horizon(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition(":")
    try:
        return (int(lo), int(hi)) if sep else (int(lo), int(lo))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH steps, e.g. 2:6; got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_scenario_arguments(parser)
    parser.add_argument(
        "--baseline",
        metavar="NAME_OR_FILE",
        help="the reward config this one replaces: report markets where the optimum changes and new findings",
    )
    parser.add_argument(
        "--budget", type=float, default=None, metavar="SECONDS", help="time budget of the search (default: 20)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the search (default: 0)")
    parser.add_argument(
        "--max-examples", type=int, default=None, metavar="N", help="markets to generate (default: 30 per second of budget)"
    )
    parser.add_argument(
        "--horizon", type=_horizon, default=(2, 6), metavar="LO:HI", help="market lengths in steps (default: 2:6)"
    )
    parser.add_argument(
        "--fuzz",
        type=_fuzz_range,
        action="append",
        metavar="FIELD=LO:HI",
        help="draw this reward field from [LO, HI] on every example (repeatable)",
    )
    parser.add_argument(
        "--pnl-tolerance",
        type=float,
        default=0.01,
        metavar="PCT",
        help="PnL shortfall, in percent of starting cash, that counts as regret (default: 0.01)",
    )
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from tradeguard.invariants._reward_audit import DEFAULT_AUDIT_BUDGET, audit_reward

    scenario = load_scenario_from_args(args)
    fuzz = None
    if args.fuzz:
        fuzz = {}
        for name, lo, hi in args.fuzz:
            if name in fuzz:
                raise InvalidConfig(f"--fuzz names {name!r} twice; give each field once.")
            fuzz[name] = (lo, hi)
    report = audit_reward(
        scenario,
        baseline=args.baseline,
        budget=DEFAULT_AUDIT_BUDGET if args.budget is None else args.budget,
        seed=args.seed,
        max_examples=args.max_examples,
        horizon=args.horizon,
        fuzz=fuzz,
        pnl_tolerance=args.pnl_tolerance,
    )
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.format())
    write_report("reward", report, args.report)
    return 0 if report.passed else 1
