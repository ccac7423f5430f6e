"""Where InvariantMonitor's time goes: its fused check cut after each section, in situ.

The bar (issue 3) asks the monitor to add at most 25% to TradingEnv's step time; this
script shows what each part of the per-step catalog costs, so that the question "what
could go?" has numbers. It takes the source of ``fast_step_check`` (the real code, not a
copy), builds a variant that returns True right before each section marker, and times
the monitor with each variant against the bare env, interleaved, on the same actions:

    wrapper     the monitor with a check that accepts everything (its plumbing)
    unpack      + reading the record's 19 fields
    continuity  + cash, position and price carried over from the previous step
    rules       + what executed vs what was predicted, and the rule per action kind
    accounting  + the integer identities (equity, cash, position, fees, signs)
    mask        + mask-matches-execution
    reward      + reward = the components' sum (fsum, else total_reward), the penalty on
                  exactly the rejected steps
    whole       + reward-consistent-with-pnl: the monitor as shipped

A variant is only for timing: it passes records the catalog rejects.

    python benchmarks/ablate_monitor.py [--steps 30000] [--repeats 9]
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import statistics
import textwrap
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import tradeguard.invariants._monitor as monitor_module
from tradeguard.env import TradingEnv
from tradeguard.invariants import InvariantMonitor

# Each section of the fused check starts at a line containing its marker.
SECTIONS = [
    ("unpack", "# self-financing's step-to-step part"),
    ("continuity", "if executed != hold:"),
    ("rules", "# The catalog's own expressions"),
    ("accounting", "# `is not (not rejected)`"),
    ("mask", "if comps:"),
    ("reward", "if is_pnl:"),
]


def _variants() -> dict[str, Callable[[Any], Callable[[Any, Any], bool]]]:
    source = textwrap.dedent(inspect.getsource(monitor_module.fast_step_check))
    lines = source.splitlines()
    out: dict[str, Callable[[Any], Callable[[Any, Any], bool]]] = {
        "wrapper": lambda c: (lambda prev, r: True),
    }
    for name, marker in SECTIONS:
        (at,) = [i for i, line in enumerate(lines) if marker in line]
        # From the marker to the `except`, the body becomes `return True`.
        (end,) = [i for i, line in enumerate(lines) if line.strip().startswith("except Exception")]
        indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
        cut = "\n".join([*lines[:at], f"{indent}return True", *lines[end:]])
        namespace = dict(vars(monitor_module))
        exec(compile(cut, f"<fast_step_check cut before {name}>", "exec"), namespace)
        out[name] = namespace["fast_step_check"]
    out["whole"] = monitor_module.fast_step_check
    return out


def _loop(env: Any, actions: list[int]) -> float:
    env.reset(seed=0)
    step, reset = env.step, env.reset
    c0 = time.process_time()
    for a in actions:
        if step(a)[2]:
            reset()
    return time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    actions = np.random.default_rng(0).integers(0, 7, size=args.steps).tolist()
    variants = _variants()
    print(f"python {platform.python_version()}, nproc {os.cpu_count()}, load {os.getloadavg()[0]:.1f}; "
          f"scenario default, {args.steps} random actions x {args.repeats}, CPU time")
    times: dict[str, list[float]] = {"env": [], **{name: [] for name in variants}}
    shipped = monitor_module.fast_step_check
    try:
        for _ in range(args.repeats):
            times["env"].append(_loop(TradingEnv(), actions))
            for name, factory in variants.items():
                monitor_module.fast_step_check = factory  # the monitor builds its check at reset
                times[name].append(_loop(InvariantMonitor(TradingEnv()), actions))
    finally:
        monitor_module.fast_step_check = shipped
    ns = {name: statistics.median(t) / args.steps * 1e9 for name, t in times.items()}
    base = ns["env"]
    print(f"{'':<12}{'ns/step':>9}{'added':>9}{'this part':>11}")
    print(f"{'env':<12}{base:>9.0f}")
    previous = base
    for name in variants:
        print(f"{name:<12}{ns[name]:>9.0f}{ns[name] / base - 1:>+9.1%}{ns[name] - previous:>+9.0f} ns")
        previous = ns[name]
    print(f"command: python benchmarks/ablate_monitor.py --steps {args.steps} --repeats {args.repeats}")


if __name__ == "__main__":
    main()
