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
import math

from tradeguard import limits
from tradeguard._cli._common import (
    SEED_HELP,
    ProgressLine,
    add_output_arguments,
    add_scenario_arguments,
    check_report_dir,
    check_seed,
    load_scenario_from_args,
    load_scenario_option,
    print_json,
    report_ready,
    write_report,
)
from tradeguard.errors import InvalidConfig

COMMAND = "audit-reward"
ORDER = 40

MAX_BUDGET = limits.MAX_AUDIT_BUDGET
MAX_EXAMPLES = limits.MAX_AUDIT_EXAMPLES
MAX_PNL_TOLERANCE = limits.MAX_PNL_TOLERANCE
MAX_HORIZON = limits.MAX_AUDIT_HORIZON
EXAMPLES_PER_SECOND = limits.AUDIT_EXAMPLES_PER_SECOND


def _fuzz_range(text: str) -> tuple[str, float, float, str]:
    """``FIELD=LOW:HIGH`` as (field, low, high, the text as typed, for messages)."""
    name, sep, rng = text.partition("=")
    lo, sep2, hi = rng.partition(":")
    try:
        if not (sep and sep2 and name.strip()):
            raise ValueError
        return name.strip(), float(lo), float(hi), text
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
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"time budget of the search, > 0 and at most {MAX_BUDGET:g} (default: 20)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help=f"seed of the search, {SEED_HELP} (default: 0)")
    parser.add_argument(
        "--max-examples",
        type=int,
        default=None,
        metavar="N",
        help=f"markets to generate, 1..{MAX_EXAMPLES} (default: {EXAMPLES_PER_SECOND} per second of budget, "
        f"at most {MAX_EXAMPLES})",
    )
    parser.add_argument(
        "--horizon",
        type=_horizon,
        default=(2, 6),
        metavar="LO:HI",
        help=f"market lengths in steps, 1 <= LO <= HI <= {MAX_HORIZON} (default: 2:6)",
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
        help=f"PnL shortfall, in percent of starting cash, that counts as regret, 0..{MAX_PNL_TOLERANCE:g} "
        "(default: 0.01)",
    )
    add_output_arguments(parser)


def _check_options(args: argparse.Namespace) -> tuple[float, int]:
    """The numeric options, named as typed; returns the budget and max examples to search with."""
    from tradeguard._validation import check_int, check_number
    from tradeguard.invariants.audit import DEFAULT_AUDIT_BUDGET, default_max_examples

    budget = DEFAULT_AUDIT_BUDGET if args.budget is None else args.budget
    check_number("--budget", budget, min_value=0.0, min_exclusive=True, max_value=MAX_BUDGET)
    check_seed("--seed", args.seed)
    if args.max_examples is None:
        max_examples = default_max_examples(budget)
    else:
        max_examples = check_int("--max-examples", args.max_examples, min_value=1, max_value=MAX_EXAMPLES)
    lo, hi = args.horizon
    if not 1 <= lo <= hi <= MAX_HORIZON:
        raise InvalidConfig(
            f"--horizon {lo}:{hi} is out of range: expected LO:HI with 1 <= LO <= HI <= {MAX_HORIZON}, "
            "e.g. 2:6."
        )
    check_number("--pnl-tolerance", args.pnl_tolerance, min_value=0.0, max_value=MAX_PNL_TOLERANCE)
    return budget, max_examples


def run(args: argparse.Namespace) -> int:
    from tradeguard.invariants.audit import audit_reward

    budget, max_examples = _check_options(args)
    check_report_dir(args.report)
    scenario = load_scenario_from_args(args)
    if args.baseline is not None:
        load_scenario_option("--baseline", args.baseline)  # named as typed, not as baseline='...'
    fuzz = None
    if args.fuzz:
        fuzz = {}
        for name, lo, hi, text in args.fuzz:
            if name in fuzz:
                raise InvalidConfig(f"--fuzz names {name!r} twice; give each field once.")
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise InvalidConfig(
                    f"--fuzz {text} is not a range of finite numbers; expected FIELD=LOW:HIGH with finite "
                    "LOW <= HIGH, e.g. failed_action_penalty=-1:0."
                )
            if lo > hi:
                raise InvalidConfig(
                    f"--fuzz {text} has LOW ({lo:g}) above HIGH ({hi:g}); expected FIELD=LOW:HIGH with "
                    f"LOW <= HIGH. Swap them: --fuzz {name}={hi:g}:{lo:g}."
                )
            fuzz[name] = (lo, hi)
    with ProgressLine(args) as progress:
        report = audit_reward(
            scenario,
            baseline=args.baseline,
            budget=budget,
            seed=args.seed,
            max_examples=max_examples,
            horizon=args.horizon,
            fuzz=fuzz,
            pnl_tolerance=args.pnl_tolerance,
            progress=progress.callback,
        )
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.format())
    write_report("reward", report, args.report)
    report_ready(args, report)
    return 0 if report.passed else 1
