"""Audit what a policy does: predicted vs executed actions over generated markets, collapse, invariants.

Runs a trained model (MODEL_PATH, saved by `tradeguard train`) or a reference policy
(--policy) over markets of four families (trend, crash, flat, random walk), passing
the action mask at every step, and reports per family the predicted and executed
action distributions side by side, the rejection rate, the executed actions'
entropy, trades, return, and every invariant violation. The policy contract decides
pass (exit 0) or fail (exit 1). Finding kinds: single-action-collapse,
rejection-collapse, phantom-activity, masked-policy-predicts-invalid,
evaluated-without-masks, invariant-violation.

Examples:

  tradeguard audit-policy --policy constant:SELL_PARTIAL --scenario v10      # the seed's V10 agent
  tradeguard audit-policy runs/masked.zip --json
  tradeguard audit-policy runs/masked.zip --no-masks    # what an evaluator that forgets masks sees
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tradeguard import limits
from tradeguard._cli._common import (
    SEED_HELP,
    ProgressLine,
    add_output_arguments,
    add_scenario_arguments,
    check_episode_length,
    check_report_dir,
    check_seed,
    load_scenario_from_args,
    print_json,
    report_ready,
    write_report,
)

COMMAND = "audit-policy"
ORDER = 45

MAX_EPISODES = limits.MAX_AUDIT_EPISODES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", metavar="MODEL_PATH", help="a model saved by tradeguard train (PATH or PATH.zip)")
    parser.add_argument(
        "--policy",
        metavar="SPEC",
        help="a reference policy instead of a model: random | hold | masked-random | constant:ACTION | buy-and-never-sell:BUY_SIZE[+ADD] | epsilon-hold:EPSILON",
    )
    add_scenario_arguments(parser)
    parser.add_argument(
        "--episodes", type=int, default=3, metavar="N", help=f"episodes per market family, 1..{MAX_EPISODES} (default: 3)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help=f"seed of the markets and the policy, {SEED_HELP} (default: 0)"
    )
    parser.add_argument(
        "--families",
        default="trend,crash,flat,random_walk",
        metavar="LIST",
        help="market families, comma-separated, from trend, crash, flat, random_walk, gap "
        "(default: trend,crash,flat,random_walk)",
    )
    parser.add_argument(
        "--episode-length", type=int, metavar="N", help="steps per episode, 1..1000000 (default: the scenario's)"
    )
    det = parser.add_mutually_exclusive_group()
    det.add_argument(
        "--deterministic",
        dest="deterministic",
        action="store_true",
        default=True,
        help="models predict their most likely action (default)",
    )
    det.add_argument("--stochastic", dest="deterministic", action="store_false", help="models sample their action")
    parser.add_argument(
        "--no-masks",
        action="store_true",
        help="do not pass the action mask to the policy (reproduces an evaluator that forgets them)",
    )
    parser.add_argument(
        "--max-action-share",
        type=float,
        metavar="X",
        help="single-action-collapse above this share, > 0 and at most 1 (default: 0.95)",
    )
    parser.add_argument(
        "--max-rejection-rate",
        type=float,
        metavar="X",
        help="rejection-collapse above this rate, 0..1 (0: any rejection fails; default: 0.5)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="KIND",
        help="report this finding kind but do not fail on it (repeatable)",
    )
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from tradeguard._validation import check_int, check_number
    from tradeguard.env import parse_policy
    from tradeguard.errors import InvalidConfig
    from tradeguard.invariants.audit import PolicyContract, audit_policy

    # the numeric options, named as typed, before a model is loaded (torch: seconds)
    check_int("--episodes", args.episodes, min_value=1, max_value=MAX_EPISODES)
    check_seed("--seed", args.seed)
    check_episode_length("--episode-length", args.episode_length)
    if args.max_action_share is not None:
        check_number("--max-action-share", args.max_action_share, min_value=0.0, min_exclusive=True, max_value=1.0)
    if args.max_rejection_rate is not None:
        check_number("--max-rejection-rate", args.max_rejection_rate, min_value=0.0, max_value=1.0)
    check_report_dir(args.report)
    if (args.model is None) == (args.policy is None):
        raise InvalidConfig(
            "give either MODEL_PATH (a model saved by tradeguard train) or --policy SPEC, "
            f"not {'both' if args.model else 'neither'}."
        )
    scenario_given = any(getattr(args, k, None) for k in ("scenario", "config", "config_json"))
    policy: Any
    scenario: Any
    if args.model is not None:
        policy, scenario = _load_model(args, scenario_given)
    else:
        policy = parse_policy(args.policy)
        scenario = load_scenario_from_args(args)
    defaults = PolicyContract()
    contract = dataclasses.replace(
        defaults,
        max_action_share=defaults.max_action_share if args.max_action_share is None else args.max_action_share,
        max_rejection_rate=defaults.max_rejection_rate if args.max_rejection_rate is None else args.max_rejection_rate,
        ignore=tuple(args.ignore),
    )
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    with ProgressLine(args) as progress:
        report = audit_policy(
            policy,
            scenario=scenario,
            episodes=args.episodes,
            families=families,
            seed=args.seed,
            deterministic=args.deterministic,
            use_masks=not args.no_masks,
            episode_length=args.episode_length,
            contract=contract,
            progress=progress.callback,
        )
    if args.json:
        out = report.as_dict()
        if args.model is not None:
            out["model"] = args.model
        print_json(out)
    else:
        print(report.format())
    write_report("policy", report, args.report)
    report_ready(args, report)
    return 0 if report.passed else 1


def _load_model(args: argparse.Namespace, scenario_given: bool) -> tuple[Any, Any]:
    from tradeguard.env import Scenario
    from tradeguard.rl import load, load_metadata

    model = load(args.model)
    import torch

    torch.set_num_threads(1)
    if not args.deterministic:
        torch.manual_seed(args.seed)
    if scenario_given:
        return model, load_scenario_from_args(args)
    meta = load_metadata(args.model)
    data = meta.get("scenario") if meta else None
    if isinstance(data, dict):
        scenario = Scenario.from_dict(dict(data), where=f"{args.model} metadata")
        if not args.json:
            print(f"auditing on the scenario the model was trained on: {scenario.name}", file=sys.stderr)
        return model, scenario
    return model, load_scenario_from_args(args)
