"""Run the invariant catalog on generated episodes; exit 1 on any violation.

Every invariant gets up to --examples Hypothesis-generated episodes (action
sequences uniform, sticky, biased towards invalid actions, or drawn among the
mask's valid actions; markets; seeds). A failure is shrunk to a minimal
counterexample, printed with the ledger lines around it and a replay command.

The search is deterministic for a given --seed (default 0); failing examples are
saved in the example database (--database) and replayed first on the next run.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from tradeguard._cli._common import add_scenario_arguments, load_scenario_from_args, print_json

COMMAND = "check"
ORDER = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_scenario_arguments(parser)
    parser.add_argument("--examples", type=int, metavar="N", help="episodes per invariant (default: the profile's; ci: 100)")
    parser.add_argument("--max-steps", type=int, metavar="N", help="longest generated episode (default: the profile's; ci: 30)")
    parser.add_argument("--seed", default=None, metavar="S", help="search seed, or 'random' to explore anew (default: the profile's; ci: 0)")
    parser.add_argument("--profile", choices=("fast", "ci", "thorough"), help="search budget: fast (25 examples, random seed), ci (100, seed 0), thorough (1000); default: $TRADEGUARD_PROFILE, else ci")
    parser.add_argument("--only", metavar="ID,ID", help="check only these invariant ids")
    parser.add_argument(
        "--database",
        metavar="DIR|URL|none",
        default=None,
        help="example database: a directory, redis://host:port/db, or none (default: $TRADEGUARD_DATABASE, else .hypothesis/tradeguard)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    import os

    from tradeguard.env import TradingEnv
    from tradeguard.errors import InvalidConfig
    from tradeguard.invariants._database import resolve_database
    from tradeguard.invariants._gate import check_trading_env
    from tradeguard.invariants._profiles import get_profile

    # The command is a gate: deterministic (profile ci) unless asked otherwise.
    profile = get_profile(args.profile or os.environ.get("TRADEGUARD_PROFILE") or "ci")
    examples = args.examples if args.examples is not None else profile.examples
    max_steps = args.max_steps if args.max_steps is not None else profile.max_steps
    if args.seed is None:
        seed: int | None = profile.seed
    elif args.seed == "random":
        seed = None
    else:
        try:
            seed = int(args.seed)
        except ValueError:
            raise InvalidConfig(f"--seed={args.seed!r}; expected an integer or 'random'.") from None
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    database = resolve_database(args.database or os.environ.get("TRADEGUARD_DATABASE"))

    scenario = load_scenario_from_args(args)
    scenario = dataclasses.replace(scenario, env=dataclasses.replace(scenario.env, episode_length=max_steps))

    def make_env() -> Any:
        return TradingEnv(scenario=scenario)

    report = check_trading_env(
        make_env,
        examples=examples,
        max_steps=max_steps,
        seed=seed,
        only=only,
        database=database,
        name=f"tradeguard/Trading-v0 ({scenario.name})",
    )
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.format())
    return 0 if report.passed else 1
