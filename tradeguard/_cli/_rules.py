"""Print the transition table: when each action is valid, what it does, why it is rejected.

The table printed is the one the env executes and derives its action mask from.
"""

from __future__ import annotations

import argparse

from tradeguard._cli._common import add_scenario_arguments, load_scenario_from_args

COMMAND = "rules"
ORDER = 10

def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_scenario_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from tradeguard.env import format_rules

    print(format_rules(load_scenario_from_args(args).env))
    return 0
