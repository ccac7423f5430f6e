"""The main job on the built-in defaults: the rules, the seed's scenarios, the gate, the audits.

Runs, in order: `tradeguard rules`; an episode of every shipped scenario with the
seed's collapsed policy (constant:SELL_PARTIAL) and a mask-respecting random one;
`tradeguard check` on the default scenario; `tradeguard audit-reward` on every
scenario; `tradeguard audit-policy` of the seed's collapsed agent. Audits that find
the seed's bugs are the point of the demo: it exits 0 when every step ran, whatever
they found, and 1 only if the default scenario itself fails the gate or its audit.
"""

from __future__ import annotations

import argparse

COMMAND = "demo"
ORDER = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="smaller budgets (a few seconds)")


def _section(title: str) -> None:
    print(f"\n{'=' * 78}\n{title}\n{'=' * 78}", flush=True)


def run(args: argparse.Namespace) -> int:
    from tradeguard._cli import _command_modules, main
    from tradeguard.env import scenario_names

    commands = {m.COMMAND for m in _command_modules()}
    status = 0
    _section("tradeguard rules: the transition table (execution, mask and this text come from it)")
    main(["rules"])
    for name in scenario_names():
        for policy in ("constant:SELL_PARTIAL", "masked-random"):
            _section(f"tradeguard run --scenario {name} --policy {policy} --seed 0")
            main(["run", "--scenario", name, "--policy", policy, "--seed", "0"])
    examples = "10" if args.quick else "100"
    _section(f"tradeguard check --scenario default --examples {examples}")
    if main(["check", "--scenario", "default", "--examples", examples]) != 0:
        status = 1
    if "audit-reward" in commands:
        budget = "2" if args.quick else "10"
        for name in scenario_names():
            _section(f"tradeguard audit-reward --scenario {name} --budget {budget}")
            code = main(["audit-reward", "--scenario", name, "--budget", budget])
            if name == "default" and code != 0:
                status = 1
    if "audit-policy" in commands:
        _section("tradeguard audit-policy --policy constant:SELL_PARTIAL --scenario v10 (the seed's agent)")
        main(["audit-policy", "--policy", "constant:SELL_PARTIAL", "--scenario", "v10", "--episodes", "4"])
        _section("tradeguard audit-policy --policy masked-random --scenario default")
        main(["audit-policy", "--policy", "masked-random", "--scenario", "default", "--episodes", "4"])
    return status
