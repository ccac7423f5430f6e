"""Run one episode of a policy and print its metrics, predicted next to executed.

Example: the seed's V10 collapse, in one line:

  tradeguard run --scenario v10 --policy constant:SELL_PARTIAL --steps 500 --seed 0

predicts SELL_PARTIAL on every step, executes HOLD on every step (no position to
sell), and pays 500 x (-0.05) = -25.0 of failed-action penalty.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from tradeguard._cli._common import (
    add_scenario_arguments,
    check_episode_length,
    check_seed,
    load_scenario_from_args,
    print_json,
    with_episode_length,
)
from tradeguard.errors import InvalidConfig

COMMAND = "run"
ORDER = 20

NEGATIVE_VALUE_OPTIONS = ("--prices", "--actions")
"""Options whose value may start with ``-`` (``--prices -5,10``): the entry point passes it on as
``--prices=-5,10`` so that the value's own check explains it, not argparse's "expected one argument"."""

DEFAULT_MINOR_UNIT = 0.01
"""The minor unit of ``--prices`` when ``--minor-unit`` is not given: cents."""


def _int_list(text: str) -> list[int]:
    """Comma-separated integers; ``AxN`` repeats A N times (``4x500,1`` is 500 fours, then 1)."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            value, _, count = part.partition("x")
            out.extend([int(value)] * (int(count) if count else 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers (AxN repeats A N times), got {text!r}"
        ) from None
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_scenario_arguments(parser)
    parser.add_argument(
        "--policy",
        default="masked-random",
        metavar="SPEC",
        help="random | hold | masked-random | constant:ACTION | buy-and-never-sell:BUY_SIZE[+ADD] | epsilon-hold:EPSILON (default: masked-random)",
    )
    parser.add_argument(
        "--steps", type=int, metavar="N", help="episode length, 1..1000000 (default: the scenario's)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of the market and the policy, 0 or more: any seed env.reset() takes, so that "
        "replay commands run (default: 0)",
    )
    parser.add_argument(
        "--actions",
        type=_int_list,
        metavar="A,A,...",
        help="replay these action ids instead of a policy, then stop (replay commands use this)",
    )
    parser.add_argument(
        "--prices",
        type=_int_list,
        metavar="P,P,...",
        help="trade these prices (in minor units, each > 0) instead of a generated market",
    )
    parser.add_argument(
        "--minor-unit",
        type=float,
        metavar="X",
        help=f"currency value of one minor unit of --prices, a finite number > 0 (default: {DEFAULT_MINOR_UNIT})",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of text")


def _check_options(args: argparse.Namespace) -> None:
    """The numeric options, named as typed, before anything is built."""
    from tradeguard._validation import check_number

    check_episode_length("--steps", args.steps)
    check_seed("--seed", args.seed, max_value=None)
    if args.minor_unit is not None:
        check_number("--minor-unit", args.minor_unit, min_value=0.0, min_exclusive=True)
        if args.prices is None:
            raise InvalidConfig(
                f"--minor-unit {args.minor_unit!r} is the currency value of a minor unit of --prices, "
                "and no --prices was given. Give --prices P,P,... too, or set the scenario's unit "
                f"with --config-json '{{\"env\": {{\"minor_unit\": {args.minor_unit!r}}}}}'."
            )


def run(args: argparse.Namespace) -> int:
    _check_options(args)
    import numpy as np

    from tradeguard.env import Market, TradingEnv, parse_policy, run_episode

    scenario = load_scenario_from_args(args)
    steps = args.steps
    market = None
    if args.prices is not None:
        minor_unit = DEFAULT_MINOR_UNIT if args.minor_unit is None else args.minor_unit
        market = Market(np.asarray(args.prices, dtype=np.int64), minor_unit, "--prices")
        if steps is None and len(market) - 1 < scenario.env.episode_length:
            steps = len(market) - 1
    scenario = with_episode_length(scenario, steps)
    env = TradingEnv(scenario=scenario, market=market)
    if args.actions is not None:
        if not args.actions:
            raise InvalidConfig("--actions is empty; give at least one action id.")
        policy: Any = _Replay(args.actions)
        trace = run_episode(env, policy, seed=args.seed, max_steps=len(args.actions))
        policy_name = "replay"
    else:
        policy = parse_policy(args.policy)
        policy_name = policy.name
        trace = run_episode(env, policy, seed=args.seed)
    metrics = trace.metrics()
    if args.json:
        out: dict[str, Any] = {
            "scenario": scenario.name,
            "policy": policy_name,
            "seed": args.seed,
            **metrics.as_dict(),
            "final_equity": trace[-1].equity_after,
            "replay": trace.meta.replay,
        }
        print_json(out)
        return 0
    meta = trace.meta
    print(f"scenario {scenario.name}, policy {policy_name}, seed {args.seed}, {metrics.steps} steps")
    print(
        f"episode reward {metrics.episode_reward:+.4f}   total return {metrics.total_return:+.4%}   "
        f"sharpe {metrics.sharpe:+.3f}"
    )
    print(
        f"trades {metrics.trades}   round trips {metrics.round_trips}   win rate {metrics.win_rate:.0%}   "
        f"rejections {metrics.rejections} ({metrics.rejection_rate:.1%})"
    )
    print(f"final equity {meta.money(trace[-1].equity_after)} (started {meta.money(meta.initial_cash)})")
    reasons = Counter(r.reason for r in trace if r.rejected)
    if reasons:
        shown = ", ".join(f"{reason} x{n}" for reason, n in reasons.most_common())
        print(f"rejected because: {shown}")
    print()
    print(f"{'action':<14}{'predicted':>10}{'executed':>10}")
    for name in meta.action_names:
        p = metrics.action_distribution_predicted[name]
        e = metrics.action_distribution_executed[name]
        print(f"{name:<14}{p:>10.1%}{e:>10.1%}")
    print(
        f"{'entropy (nats)':<14}{metrics.action_entropy_predicted:>10.3f}"
        f"{metrics.action_entropy_executed:>10.3f}"
    )
    print()
    print("reward components (episode totals):")
    for name, total in metrics.reward_components.items():
        print(f"  {name:<24}{total:+.4f}")
    return 0


class _Replay:
    name = "replay"

    def __init__(self, actions: list[int]) -> None:
        self._actions = actions
        self._i = 0

    def act(self, observation: Any, mask: Any, rng: Any) -> int:
        a = self._actions[self._i]
        self._i += 1
        return a
