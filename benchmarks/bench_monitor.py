"""InvariantMonitor's cost: env steps/s with and without the per-step catalog, in one run.

The issue's bar: the monitor with the whole per-step catalog adds at most 25% to the
env's step time. All loops step the same env class on the same actions; repeats rotate
the order, and the script prints medians of wall and CPU time and the ratios. Two more
rows split the cost: the monitor's plumbing alone (a wrapper that reads the record and
keeps the previous one, as the monitor does, but checks nothing), and the monitor
narrowed to the seed's three invariants (it must never cost more than the whole catalog).

    python benchmarks/bench_monitor.py [--steps 50000] [--repeats 5] [--scenario default]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from tradeguard.env import TradingEnv
from tradeguard.invariants import InvariantMonitor

SEEDS_THREE = ["no-sell-without-position", "executed-never-exceeds-predicted", "penalty-matches-rejections"]


class Plumbing(gym.Wrapper[Any, Any, Any, Any]):
    """The monitor's hot path with a check that accepts everything: what the wrapper costs."""

    def reset(self, **kwargs: Any) -> Any:
        self._prev = None
        self._check: Callable[[Any, Any], bool] = lambda prev, record: True
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        check = self._check
        result = self.env.step(action)
        record = result[4]["record"]
        prev = self._prev
        self._prev = record
        if check(prev, record) and not (result[2] or result[3]):
            return result
        return result


def _loop(env: Any, actions: list[int]) -> tuple[float, float]:
    env.reset(seed=0)
    step, reset = env.step, env.reset
    w0, c0 = time.perf_counter(), time.process_time()
    for a in actions:
        if step(a)[2]:
            reset()
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scenario", default="default")
    args = parser.parse_args()
    actions = np.random.default_rng(0).integers(0, 7, size=args.steps).tolist()
    print(f"python {platform.python_version()}, numpy {np.__version__}, nproc {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f}; scenario {args.scenario}, {args.steps} random actions x {args.repeats}")
    rows: dict[str, Callable[[TradingEnv], Any]] = {
        "TradingEnv": lambda env: env,
        "plumbing only": Plumbing,
        "InvariantMonitor(...)": InvariantMonitor,
        "... only the seed's 3": lambda env: InvariantMonitor(env, only=SEEDS_THREE),
    }
    wall: dict[str, list[float]] = {name: [] for name in rows}
    cpu: dict[str, list[float]] = {name: [] for name in rows}
    names = list(rows)
    for i in range(args.repeats):
        for name in names[i % len(names):] + names[:i % len(names)]:
            w, c = _loop(rows[name](TradingEnv(scenario=args.scenario)), actions)
            wall[name].append(w)
            cpu[name].append(c)
    mw = {name: statistics.median(v) for name, v in wall.items()}
    mc = {name: statistics.median(v) for name, v in cpu.items()}
    base_w, base_c = mw["TradingEnv"], mc["TradingEnv"]
    print(f"{'env':<24}{'steps/s (wall)':>16}{'steps/s (cpu)':>16}{'added (cpu)':>14}")
    for name in rows:
        added = "" if name == "TradingEnv" else f"+{mc[name] / base_c - 1:.1%}"
        print(f"{name:<24}{args.steps / mw[name]:>16,.0f}{args.steps / mc[name]:>16,.0f}{added:>14}")
    per_step = (mc["InvariantMonitor(...)"] - base_c) / args.steps * 1e9
    print(f"monitor overhead: +{mw['InvariantMonitor(...)'] / base_w - 1:.1%} wall, "
          f"+{mc['InvariantMonitor(...)'] / base_c - 1:.1%} cpu (bar: <= +25%); "
          f"{per_step:.0f} ns a step on a {base_c / args.steps * 1e9:.0f} ns env step")
    print(f"command: python benchmarks/bench_monitor.py --steps {args.steps} --repeats {args.repeats} --scenario {args.scenario}")


if __name__ == "__main__":
    main()
