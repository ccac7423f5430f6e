"""InvariantMonitor's cost: env steps/s with and without the per-step catalog, in one run.

The issue's bar: the monitor with the whole per-step catalog adds at most 25% to the
env's step time. Both loops step the same env class on the same actions; repeats
alternate the order, and the script prints medians of wall and CPU time and the ratio.

    python benchmarks/bench_monitor.py [--steps 50000] [--repeats 5] [--scenario default]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from tradeguard.env import TradingEnv
from tradeguard.invariants import InvariantMonitor


def _loop(env: object, actions: list[int]) -> tuple[float, float]:
    env.reset(seed=0)  # type: ignore[attr-defined]
    step = env.step  # type: ignore[attr-defined]
    reset = env.reset  # type: ignore[attr-defined]
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
    raw_w, raw_c, mon_w, mon_c = [], [], [], []
    for i in range(args.repeats):
        order = [False, True] if i % 2 == 0 else [True, False]
        for monitored in order:
            env = TradingEnv(scenario=args.scenario)
            wall, cpu = _loop(InvariantMonitor(env) if monitored else env, actions)
            (mon_w if monitored else raw_w).append(wall)
            (mon_c if monitored else raw_c).append(cpu)
    rw, rc, mw, mc = (statistics.median(x) for x in (raw_w, raw_c, mon_w, mon_c))
    print(f"{'env':<24}{'steps/s (wall)':>16}{'steps/s (cpu)':>16}")
    print(f"{'TradingEnv':<24}{args.steps / rw:>16,.0f}{args.steps / rc:>16,.0f}")
    print(f"{'InvariantMonitor(...)':<24}{args.steps / mw:>16,.0f}{args.steps / mc:>16,.0f}")
    print(f"monitor overhead: +{mw / rw - 1:.1%} wall, +{mc / rc - 1:.1%} cpu (bar: <= +25%)")
    print(f"command: python benchmarks/bench_monitor.py --steps {args.steps} --repeats {args.repeats} --scenario {args.scenario}")


if __name__ == "__main__":
    main()
