"""The black-box reward audit against the exact oracle on tradeguard's own env, market by market.

For each scenario (default, v9, v10, v10.1) and each horizon H = 1..8, ``--markets``
markets of H steps (half drawn from the scenario's MarketSpec, half small moves of at
most 0.6% a step, where ties and rejections matter most) are analysed twice:

- by the oracle audit (``_Auditor.analyse``: the exact oracle, the reference policies,
  the five optimum findings), reading the state machine;
- by the black-box audit (``analyse_market``), which only resets tradeguard's
  ``TradingEnv`` through its adapter and replays action sequences: the memoized search
  over the states the native adapter declares (``state_key``), exact at every horizon.

A market agrees when both give the same shaped-optimal action sequence, the same optimum
(within 1e-9), the same PnL optimum and the same set of findings. The script prints, per
scenario and horizon, the markets compared, the disagreements (each one in full), the
findings seen, the states and env steps the black box needed, and its time.

Run from the repository root (takes minutes: the black box replays every state it visits):

    python benchmarks/blackbox_vs_oracle.py                 # the recorded run
    python benchmarks/blackbox_vs_oracle.py --horizons 8 --markets 4
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import time

import numpy as np

from tradeguard import __version__
from tradeguard.env import TradingEnv, load_scenario
from tradeguard.invariants import NativeAdapter
from tradeguard.invariants.audit import _blackbox as bb
from tradeguard.invariants.audit._reward_audit import _Auditor, _policies

SCENARIOS = ("default", "v9", "v10", "v10.1")


def _markets(sc: object, h: int, n: int, seed: int) -> list[tuple[int, ...]]:
    spec = sc.market  # type: ignore[attr-defined]
    out = []
    rng = np.random.default_rng([seed, h])
    for i in range(n):
        if i % 2 == 0:
            out.append(tuple(spec.generate(h + 1, np.random.default_rng([seed, h, i])).prices.tolist()))
        else:
            out.append(bb._prices(10_000, [int(m) for m in rng.integers(-60, 61, size=h)]))
    return out


def compare(name: str, h: int, n: int, seed: int) -> tuple[int, int, set[str], int, float]:
    sc = load_scenario(name)
    sc = dataclasses.replace(sc, env=dataclasses.replace(sc.env, episode_length=h))
    setup = bb._setup(
        name, lambda: TradingEnv(scenario=sc), NativeAdapter(), horizon=h, search="memo",
        max_sequences=1, deadline=math.inf, max_move_bps=500, pnl_tolerance=0.01, beam_width=64,
        max_states=10**7, seed=0,
    )
    oracle = _Auditor(sc.env, pnl_tolerance=0.01, deadline=math.inf, policies=_policies(sc.env))
    bad = 0
    kinds: set[str] = set()
    t0 = time.perf_counter()
    steps0 = setup.driver.steps
    for prices in _markets(sc, h, n, seed):
        a = setup.analyse((0, prices))
        o = oracle.analyse(sc.reward, prices)
        same = (
            a.exact
            and a.shaped.actions == tuple(int(x) for x in o.shaped.predicted)
            and abs(a.shaped_value - o.shaped.shaped_return) <= 1e-9 * max(1.0, abs(o.shaped.shaped_return))
            and a.pnl.pnl == o.pnl.pnl
            and set(a.fired) == set(o.fired)
        )
        kinds |= set(a.fired)
        if not same:
            bad += 1
            print(
                f"  DISAGREE {name} H={h} prices={list(prices)}\n"
                f"    black box: {a.shaped.labels()} {a.shaped_value!r} pnl {a.pnl.pnl} {sorted(a.fired)} exact={a.exact}\n"
                f"    oracle:    {o.shaped.labels()} {o.shaped.shaped_return!r} pnl {o.pnl.pnl} {sorted(o.fired)}",
                flush=True,
            )
    return n, bad, kinds, setup.driver.steps - steps0, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--horizons", nargs="+", type=int, default=list(range(1, 9)))
    parser.add_argument("--markets", type=int, default=6, help="markets per scenario and horizon (default 6)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    print("black-box reward audit vs the exact oracle, tradeguard's env, market by market")
    print(f"python {platform.python_version()}, numpy {np.__version__}, tradeguard {__version__}")
    print(
        f"machine: {platform.machine()} {platform.system()}, nproc {os.cpu_count()}, load average "
        + " ".join(f"{x:.2f}" if isinstance(x, float) else str(x) for x in load)
    )
    print(
        "reproduce: python benchmarks/blackbox_vs_oracle.py"
        + (f" --scenarios {' '.join(args.scenarios)}" if args.scenarios != list(SCENARIOS) else "")
        + (f" --horizons {' '.join(map(str, args.horizons))}" if args.horizons != list(range(1, 9)) else "")
        + (f" --markets {args.markets}" if args.markets != 6 else "")
        + (f" --seed {args.seed}" if args.seed else "")
    )
    print()
    print(f"{'scenario':<9}{'H':>3}{'markets':>9}{'disagree':>10}{'env steps':>11}{'seconds':>9}  findings seen")
    total = bad_total = 0
    for name in args.scenarios:
        for h in args.horizons:
            n, bad, kinds, steps, seconds = compare(name, h, args.markets, args.seed)
            total += n
            bad_total += bad
            print(
                f"{name:<9}{h:>3}{n:>9}{bad:>10}{steps:>11,}{seconds:>9.1f}  {', '.join(sorted(kinds)) or '-'}",
                flush=True,
            )
    print()
    print(f"{total} markets compared, {bad_total} disagreements")


if __name__ == "__main__":
    main()
