"""The monitor's fused check alone, and the env step, in ns: for A/B runs between two checkouts.

``bench_monitor.py`` measures the whole monitor against the bare env; on a noisy machine its
overhead moves by tens of percent between runs. This isolates the part the monitor adds on
every healthy step of tradeguard's env, the fused check (``fast_step_check``), over the
records of one episode, best of 7; and the env's own step. Run it from each checkout (each
with its own editable install), alternately:

    python benchmarks/ab_fused_check.py
"""

from __future__ import annotations

import random
import timeit

from tradeguard.env import TradingEnv
from tradeguard.invariants import Context
from tradeguard.invariants._monitor import fast_step_check


def main() -> None:
    rng = random.Random(0)
    env = TradingEnv()
    env.reset(seed=0)
    for _ in range(200):
        _, _, terminated, truncated, _ = env.step(rng.randrange(7))
        if terminated or truncated:
            break
    records = env.trace.records
    check = fast_step_check(Context.of(env.trace_meta))
    pairs = list(zip([None, *records[:-1]], records, strict=True))
    assert all(check(p, r) for p, r in pairs), "a healthy episode must pass the fused check"

    def run() -> None:
        for p, r in pairs:
            check(p, r)

    best = min(timeit.repeat(run, number=200, repeat=7))
    print(f"fused check: {best / (200 * len(pairs)) * 1e9:,.0f} ns per step ({len(pairs)} records)")
    actions = [rng.randrange(7) for _ in range(20_000)]

    def steps() -> None:
        env.reset(seed=0)
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()

    best = min(timeit.repeat(steps, number=1, repeat=5))
    print(f"env step:    {best / len(actions) * 1e9:,.0f} ns")


if __name__ == "__main__":
    main()
