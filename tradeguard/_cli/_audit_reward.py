"""Audit a reward config before training: search short markets where its optimum is degenerate.

On generated markets, an exact oracle finds the action sequence that maximizes the
shaped reward and the one that maximizes PnL; the audit reports rewards that pay
for rejected actions, for sitting out, for holding forever, or that lose PnL, with
the smallest market that shows it and the two sequences side by side.

Examples:

  tradeguard audit-reward --scenario v10.1
  tradeguard audit-reward --config my_reward.toml --baseline default --json
  tradeguard audit-reward --config my_reward.toml --baseline my_rewards:old_sharpe
  tradeguard audit-reward --scenario default --fuzz failed_action_penalty=-1:0

Another env: --env anytrading-stocks, anytrading-forex or gym-trading-env (the
packages of the `peers` extra), a gymnasium ID, or MODULE:FACTORY (called with
--env-kwargs, a JSON object); its adapter from --adapter, else chosen from its class.
The audit searches action sequences by replaying them from a seed (exhaustive where
actions^horizon allows, memoized when the adapter declares the env's state, a beam
beyond) and says which search ran and whether its answer is exact. --horizon is then
the steps searched per market (default 8); --baseline a second factory.

  tradeguard audit-reward --env anytrading-stocks
  tradeguard audit-reward --env mypackage.envs:make_env --adapter mypackage.envs:MyAdapter --env-kwargs '{"fee": 0.001}'

Exit status: 0 no error-severity finding, 1 at least one, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

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
MAX_BLACKBOX_HORIZON = 64
MAX_START_PRICE = 1e9
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
        "--env",
        metavar="ID|MODULE:FACTORY",
        help="audit another env's reward as a black box: anytrading-stocks, anytrading-forex, gym-trading-env, "
        "a gymnasium ID, or MODULE:FACTORY (default: tradeguard's own, from --scenario/--config)",
    )
    parser.add_argument(
        "--adapter",
        metavar="NAME|MODULE:CLASS",
        help="how the env's steps become trace records (default: chosen from the env's class)",
    )
    parser.add_argument(
        "--env-kwargs",
        metavar="JSON",
        help='keyword arguments for the env factory or gymnasium.make, a JSON object, e.g. \'{"initial_position": 0}\'',
    )
    parser.add_argument(
        "--search",
        choices=("auto", "exhaustive", "memo", "beam"),
        default="auto",
        help="black-box search (default: auto: exhaustive when actions^horizon allow, memoized when the adapter "
        "declares the env's state, else beam)",
    )
    parser.add_argument(
        "--baseline",
        metavar="NAME|FILE|MODULE:NAME",
        help="the reward this one replaces: a scenario name or file, or MODULE:NAME of a reward component "
        "(the same env with that component instead of this one's), a Scenario or RewardConfig, or a "
        "zero-argument env factory; report markets where the optimum changes and new findings",
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
        default=None,
        metavar="LO:HI",
        help=f"market lengths in steps, 1 <= LO <= HI <= {MAX_HORIZON} (default: 2:6); with --env, the steps "
        "searched per market (HI; default: 8)",
    )
    parser.add_argument(
        "--max-move-bps",
        type=int,
        default=500,
        metavar="BPS",
        help="largest price move per step of a generated market, in basis points, 1..5000 (default: 500); "
        "smaller moves for instruments quoted in pips",
    )
    parser.add_argument(
        "--start-price",
        type=float,
        default=None,
        metavar="PRICE",
        help=f"with --env: the first price of a generated market, in currency, > 0 and at most {MAX_START_PRICE:g} "
        "(default: 100.0; e.g. 1.0 for EUR/USD)",
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
    lo, hi = args.horizon if args.horizon is not None else (2, 6)
    if args.env:
        if args.horizon is not None and not 1 <= hi <= MAX_BLACKBOX_HORIZON:
            raise InvalidConfig(
                f"--horizon {hi} is out of range for --env: expected the steps searched per market, "
                f"1..{MAX_BLACKBOX_HORIZON}, e.g. --horizon 8."
            )
    elif args.search != "auto":
        raise InvalidConfig(
            f"--search {args.search} is for --env (the black-box search); tradeguard's own env is searched by "
            "the exact oracle. Leave --search out."
        )
    elif not 1 <= lo <= hi <= MAX_HORIZON:
        raise InvalidConfig(
            f"--horizon {lo}:{hi} is out of range: expected LO:HI with 1 <= LO <= HI <= {MAX_HORIZON}, "
            "e.g. 2:6."
        )
    check_number("--pnl-tolerance", args.pnl_tolerance, min_value=0.0, max_value=MAX_PNL_TOLERANCE)
    check_int("--max-move-bps", args.max_move_bps, min_value=1, max_value=5_000)
    if args.start_price is not None:
        check_number("--start-price", args.start_price, min_value=0.0, min_exclusive=True, max_value=MAX_START_PRICE)
    return budget, max_examples


def _is_spec(text: str) -> bool:
    """``MODULE:NAME``: not a shipped scenario, not a file."""
    from pathlib import Path

    from tradeguard.env import scenario_names

    return ":" in text and text not in scenario_names() and not Path(text).is_file()


def run(args: argparse.Namespace) -> int:
    from tradeguard.invariants.audit import audit_reward, load_spec

    budget, max_examples = _check_options(args)
    check_report_dir(args.report)
    if args.env:
        if args.report:
            raise InvalidConfig(
                "--report draws tradeguard's own env's counterexamples; with --env, use --json (every finding "
                "has its market, seed and action sequences) or the text report."
            )
        return _run_env(args, budget, max_examples)
    for option, value in (
        ("--adapter", args.adapter),
        ("--env-kwargs", args.env_kwargs),
        ("--start-price", args.start_price),
    ):
        if value is not None:
            raise InvalidConfig(
                f"{option} is for --env (another env); tradeguard's own env takes its markets from the scenario."
            )
    scenario = load_scenario_from_args(args)
    baseline: Any = args.baseline
    if args.baseline is not None:
        if _is_spec(args.baseline):
            baseline = load_spec(args.baseline, option="--baseline")  # named as typed
        else:
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
            baseline=baseline,
            budget=budget,
            seed=args.seed,
            max_examples=max_examples,
            horizon=args.horizon or (2, 6),
            max_move_bps=args.max_move_bps,
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


def _run_env(args: argparse.Namespace, budget: float, max_examples: int) -> int:
    """``--env``: the black-box audit of another env's reward."""
    import functools
    import json

    from tradeguard._cli._check import PEERS, _adapter, _load
    from tradeguard.invariants.audit import audit_reward, load_spec

    if args.scenario or args.config or args.config_json:
        raise InvalidConfig(
            f"--env {args.env!r} audits another env; --scenario, --config and --config-json configure "
            "tradeguard's own. Give one or the other."
        )
    if args.fuzz:
        raise InvalidConfig("--fuzz draws tradeguard's reward fields; another env has none. Leave it out.")
    kwargs: dict[str, Any] = {}
    if args.env_kwargs is not None:
        try:
            kwargs = json.loads(args.env_kwargs)
        except json.JSONDecodeError as exc:
            raise InvalidConfig(f"--env-kwargs is not valid JSON: {exc}; expected an object, e.g. '{{\"fee\": 0.001}}'.") from None
        if not isinstance(kwargs, dict):
            raise InvalidConfig(f"--env-kwargs must be a JSON object of keyword arguments; got {type(kwargs).__name__}.")
    horizon = args.horizon[1] if args.horizon is not None else 8
    timeout = 60.0
    adapter_spec = args.adapter
    if args.env in PEERS:
        target, default_adapter, name = PEERS[args.env]
        factory, _ = _load(target, "--env", timeout)
        make_env: Any = functools.partial(factory, steps=horizon, **kwargs)
        adapter_spec = adapter_spec or default_adapter
    elif ":" in args.env:
        factory, _ = _load(args.env, "--env", timeout)
        if not callable(factory):
            raise InvalidConfig(f"--env {args.env!r} is a {type(factory).__name__}, not a callable returning an env.")
        make_env = functools.partial(factory, **kwargs) if kwargs else factory
        name = args.env
    else:
        import gymnasium as gym

        if args.env not in gym.registry:
            from tradeguard._validation import suggest

            raise InvalidConfig(
                f"--env {args.env!r} is neither a built-in peer ({', '.join(PEERS)}), a registered gymnasium ID, nor "
                f"MODULE:FACTORY.{suggest(args.env, [*PEERS, *gym.registry])}"
            )
        make_env = functools.partial(gym.make, args.env, **kwargs)
        name = args.env
    adapter = _adapter(adapter_spec, timeout) if adapter_spec else None
    baseline: Any = None
    if args.baseline is not None:
        if args.baseline in PEERS:
            target, _, _ = PEERS[args.baseline]
            base_factory, _ = _load(target, "--baseline", timeout)
            baseline = functools.partial(base_factory, steps=horizon, **kwargs)
        else:
            baseline = load_spec(args.baseline, option="--baseline")
            if not callable(baseline):
                raise InvalidConfig(
                    f"--baseline {args.baseline!r} is a {type(baseline).__name__}; with --env the baseline is a second "
                    "env factory (MODULE:FACTORY), called with --env-kwargs too."
                )
            if kwargs:
                baseline = functools.partial(baseline, **kwargs)
    start_price = 100.0 if args.start_price is None else args.start_price
    report = audit_reward(
        make_env,
        adapter=adapter,
        start_price=start_price,
        baseline=baseline,
        budget=budget,
        seed=args.seed,
        max_examples=max_examples,
        horizon=horizon,
        max_move_bps=args.max_move_bps,
        pnl_tolerance=args.pnl_tolerance,
        search=args.search,
        name=name,
    )
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.format())
    report_ready(args, report)
    return 0 if report.passed else 1
