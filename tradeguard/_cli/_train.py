"""Train PPO or MaskablePPO on a scenario, stopping early if the policy collapses.

Saves PATH.zip (the stable-baselines3 model) and PATH.tradeguard.json (algorithm,
scenario, settings, versions, whether the run was stopped and why), and checkpoints
in PATH_checkpoints/. Load the model with tradeguard.rl.load(PATH) and audit it with
`tradeguard audit-policy PATH`.

Examples:

  tradeguard train --algo maskable-ppo --scenario v10 --exploration none --steps 50000 --out runs/masked
  tradeguard train --algo ppo --scenario v10 --steps 100000 --out runs/v10     # the seed's V10 run
  tradeguard train --algo ppo --scenario v10.2 --ent-coef 0.5:0.01 --out runs/v10.2

A run the invariant callback stops (the policy collapsed, or an invariant broke)
is still saved, and the command exits 1. Needs the 'rl' extra.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from tradeguard import limits
from tradeguard._cli._common import (
    SEED_HELP,
    add_scenario_arguments,
    check_episode_length,
    check_seed,
    load_scenario_from_args,
    print_json,
)

COMMAND = "train"
ORDER = 40

MAX_STEPS = limits.MAX_TRAIN_STEPS
MAX_N_STEPS = limits.MAX_N_STEPS
MAX_LEARNING_RATE = limits.MAX_LEARNING_RATE
MAX_THREADS = limits.MAX_THREADS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--algo",
        choices=("ppo", "maskable-ppo"),
        default="maskable-ppo",
        help="ppo (stable-baselines3) or maskable-ppo (sb3-contrib, uses the action mask; default)",
    )
    add_scenario_arguments(parser)
    parser.add_argument(
        "--steps", type=int, default=100_000, metavar="N", help=f"total env steps, 1..{MAX_STEPS} (default: 100000)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help=f"seed of the algorithm, env and exploration, {SEED_HELP} (default: 0)",
    )
    parser.add_argument(
        "--exploration",
        metavar="SPEC",
        help="none | epsilon-greedy:START:END, decaying over the first half of training "
        "(default: the scenario's; v10 records epsilon-greedy:0.5:0.01)",
    )
    parser.add_argument(
        "--ent-coef",
        default="0.0",
        metavar="START[:END]",
        help="entropy coefficient, or a linear schedule START:END (default: 0.0)",
    )
    parser.add_argument("--out", required=True, metavar="PATH", help="save the model as PATH.zip (+ PATH.tradeguard.json)")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="save a checkpoint every N steps into PATH_checkpoints/, 0..--steps (default: a tenth of --steps; "
        "0: none)",
    )
    parser.add_argument(
        "--episode-length", type=int, metavar="N", help="steps per episode, 1..1000000 (default: the scenario's)"
    )
    parser.add_argument(
        "--n-steps", type=int, default=2048, metavar="N", help=f"rollout length per update, 2..{MAX_N_STEPS} (default: 2048)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        metavar="N",
        help="minibatch size, 2..--n-steps (a minibatch is drawn from one rollout; default: 64)",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=3e-4,
        metavar="LR",
        help=f"learning rate, > 0 and at most {MAX_LEARNING_RATE:g} (default: 3e-4)",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="log collapse and invariant findings but never stop the run early",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: only when stderr is a terminal)",
    )
    parser.add_argument("--tensorboard", metavar="DIR", help="write TensorBoard logs to DIR (needs tensorboard)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help=f"torch threads, 1..{MAX_THREADS} (default: 1, fastest for these small networks)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of text")


def _check_options(args: argparse.Namespace) -> int:
    """The numeric options, named as typed; returns the checkpoint interval (0: none).

    Run before torch and stable-baselines3 are imported (seconds), whose own errors on
    these values are tracebacks (``--n-steps 0``, ``--batch-size 0``) or worse (``--n-steps
    10**12`` allocates the rollout buffer).
    """
    from tradeguard._validation import check_int
    from tradeguard.rl import check_out_path, check_rollout

    steps = check_int("--steps", args.steps, min_value=1, max_value=MAX_STEPS)
    check_seed("--seed", args.seed)
    if args.checkpoint_every is None:
        every = max(1, steps // 10)
    else:
        every = check_int(
            "--checkpoint-every",
            args.checkpoint_every,
            min_value=0,
            max_value=steps,
            hint=f"Give at most --steps ({steps}) to save checkpoints, or 0 for none.",
        )
    check_episode_length("--episode-length", args.episode_length)
    check_rollout(args.n_steps, args.batch_size, args.learning_rate, names=("--n-steps", "--batch-size", "--learning-rate"))
    check_int("--threads", args.threads, min_value=1, max_value=MAX_THREADS)
    check_out_path(args.out, checkpoints=bool(every), option="--out")
    return every


def run(args: argparse.Namespace) -> int:
    from tradeguard.rl import parse_ent_coef, parse_exploration

    # check every argument before importing torch and stable-baselines3 (seconds)
    every = _check_options(args)
    scenario = load_scenario_from_args(args)
    ent = parse_ent_coef(args.ent_coef)
    parse_exploration(args.exploration if args.exploration is not None else scenario.exploration)
    return _start_training(args, scenario, ent, every)


def _start_training(args: argparse.Namespace, scenario: Any, ent: tuple[float, float], every: int) -> int:
    """Train with options already checked: everything that imports torch and SB3 starts here."""
    from tradeguard.rl import DEFAULT_STOP_ON, InvariantCallback, train

    callback = InvariantCallback(stop_on=() if args.keep_going else DEFAULT_STOP_ON, verbose=0)
    if not args.json:
        print(
            f"training {args.algo} on scenario {scenario.name} for {args.steps:,} steps, seed {args.seed}, "
            f"exploration {args.exploration or scenario.exploration}, ent_coef "
            f"{ent[0]:g}{'' if ent[0] == ent[1] else f' -> {ent[1]:g}'}",
            file=sys.stderr,
        )
    result = train(
        algo=args.algo,
        scenario=scenario,
        steps=args.steps,
        seed=args.seed,
        exploration=args.exploration,
        ent_coef=ent,
        out=args.out,
        checkpoint_every=every or None,
        progress_bar=args.progress,
        invariant_callback=callback,
        episode_length=args.episode_length,
        tensorboard_log=args.tensorboard,
        torch_threads=args.threads,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
    )
    last = callback.history[-1] if callback.history else None
    summary: dict[str, Any] = {
        "path": str(result.path),
        "metadata": os.fspath(result.path).removesuffix(".zip") + ".tradeguard.json" if result.path else None,
        "algo": args.algo,
        "scenario": scenario.name,
        "steps": args.steps,
        "steps_done": result.steps_done,
        "wall_time_s": round(result.wall_time, 3),
        "steps_per_second": round(result.steps_done / result.wall_time, 1) if result.wall_time > 0 else None,
        "stopped_early": result.stopped_early,
        "stop_reason": result.stop_reason,
        "checkpoints": list(result.checkpoints),
        "last_window": last.as_dict() if last else None,
    }
    if args.json:
        print_json(summary)
    else:
        if result.stop_reason:
            print(result.stop_reason, file=sys.stderr)
        print(
            f"trained {result.steps_done:,} steps in {result.wall_time:.1f} s "
            f"({summary['steps_per_second']} steps/s); saved {result.path}"
        )
        if last is not None:
            top = max(last.action_distribution_predicted.items(), key=lambda kv: kv[1])
            print(
                f"last {last.steps:,} steps: most predicted {top[0]} {top[1]:.1%}, rejection rate "
                f"{last.rejection_rate:.1%}, {last.trades} trades"
            )
        print(f"audit it: tradeguard audit-policy {result.path}")
    return 1 if result.stopped_early else 0

