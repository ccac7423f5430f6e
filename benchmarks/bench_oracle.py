"""Oracle time per horizon, and reward-audit examples per second, on the shipped scenarios.

Part 1, the exact oracle: for each scenario and horizon H, ``--markets`` seeded
markets of H steps are drawn from the scenario's own ``MarketSpec`` (seeds 0..n-1),
and the oracle solves each one twice: the shaped-optimal and the PnL-optimal
sequence. Prints, per scenario and horizon, the median and max wall time of one
solve, the median and max process CPU time, and the median and max number of states
the search expanded, then the slowest solve of each horizon. Issue 5's target: a
horizon of at least 12 solved exactly in under 1 s, worst case included.

Part 1b, custom components side by side: the same reward written with a built-in
component and with a custom one (``tradeguard.env.reward_component``, declared history
and bounds): V10.1's curriculum, a diversity bonus, the failed-action penalty. Both
oracles solve the same markets; the row gives both medians and their ratio (issue 15's
target: the custom one within 2x).

Part 2, the audit: ``audit_reward(scenario)`` with the default budget and seed, as
``tradeguard audit-reward --scenario NAME`` runs it. Prints wall and CPU time, the
markets analysed and markets per second, and the findings. Issue 5's target: one
audit at the default budget under 30 s on 2 cores.

Run from the repository root:

    python benchmarks/bench_oracle.py                       # the recorded run
    python benchmarks/bench_oracle.py --horizons 4 8 12 14 --markets 9
    python benchmarks/bench_oracle.py --no-audit --scenarios default v9
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
from typing import Any

import numpy as np

from tradeguard import __version__
from tradeguard.env import Action, RewardConfig, Scenario, Step, load_scenario, reward_component
from tradeguard.invariants.audit import DEFAULT_AUDIT_BUDGET, Oracle, audit_reward

SCENARIOS = ("default", "v10", "v10.1", "v10.2", "v9")


def bench_oracle(names: list[str], horizons: list[int], markets: int) -> None:
    print("part 1: exact oracle, one solve = one objective on one market")
    print(
        f"{'scenario':<9}{'H':>3}{'objective':>10}{'median s':>10}{'max s':>8}{'cpu s':>8}"
        f"{'max cpu':>9}{'states':>8}{'max':>8}"
    )
    worst: dict[int, tuple[float, str]] = {}
    for name in names:
        sc = load_scenario(name)
        oracle = Oracle(sc.env, sc.reward)
        for h in horizons:
            prices = [
                sc.market.generate(h + 1, np.random.default_rng(seed)).prices.tolist()
                for seed in range(markets)
            ]
            for objective in ("shaped", "pnl"):
                walls, cpus, nodes = [], [], []
                for p in prices:
                    w0, c0 = time.perf_counter(), time.process_time()
                    plan = oracle.solve(p, objective)  # type: ignore[arg-type]
                    walls.append(time.perf_counter() - w0)
                    cpus.append(time.process_time() - c0)
                    nodes.append(plan.nodes)
                print(
                    f"{name:<9}{h:>3}{objective:>10}{statistics.median(walls):>10.3f}{max(walls):>8.3f}"
                    f"{statistics.median(cpus):>8.3f}{max(cpus):>9.3f}"
                    f"{int(statistics.median(nodes)):>8}{max(nodes):>8}",
                    flush=True,
                )
                if max(walls) > worst.get(h, (-1.0, ""))[0]:
                    worst[h] = (max(walls), f"{name} {objective}")
    print("slowest solve per horizon (target: under 1 s at H = 12): " + "; ".join(
        f"H={h} {w:.3f} s ({where})" for h, (w, where) in sorted(worst.items())
    ))


_SELLS = (Action.SELL_PARTIAL, Action.SELL_ALL)


@reward_component(history=(0, 0), bounds=(-2.5, 0.0))
def sell_curriculum(step: Step, hist: tuple[int, int]) -> tuple[float, tuple[int, int]]:
    """V10.1's curriculum: SELL in at least 5% of predictions, or -0.5 x 5.0."""
    steps, count = hist
    steps += 1
    count += step.predicted in _SELLS
    return (-2.5 if count * 20 < steps else 0.0), (steps, count)


def _unseen_left(seen: int, steps_left: int) -> tuple[float, float]:
    return 0.0, 0.1 * min(steps_left, len(Action) - bin(seen).count("1"))


@reward_component(history=0, bounds=(0.0, 0.1), remaining=_unseen_left)
def first_time_bonus(step: Step, seen: int) -> tuple[float, int]:
    """The diversity bonus: 0.1 the first time each action is predicted."""
    bit = 1 << step.predicted
    return (0.0 if seen & bit else 0.1), seen | bit


@reward_component(bounds=(-1.0, 0.0))
def failed_action(step: Step) -> float:
    """The failed-action penalty: -1.0 on a rejected prediction."""
    return -1.0 if step.rejected else 0.0


def _pairs() -> list[tuple[str, Scenario, RewardConfig]]:
    """(label, scenario with the built-in component, the same reward with a custom one)."""
    v101 = load_scenario("v10.1")
    default = load_scenario("default")
    div = dataclasses.replace(default.reward, diversity_bonus=0.1)
    return [
        (
            "v10.1 curriculum",
            v101,
            dataclasses.replace(v101.reward, curriculum_min_share=0.0, custom_components=(sell_curriculum,)),
        ),
        (
            "diversity 0.1",
            dataclasses.replace(default, reward=div),
            dataclasses.replace(div, diversity_bonus=0.0, custom_components=(first_time_bonus,)),
        ),
        (
            "penalty -1.0",
            default,
            dataclasses.replace(default.reward, failed_action_penalty=0.0, custom_components=(failed_action,)),
        ),
    ]


def bench_custom(horizons: list[int], markets: int) -> None:
    print()
    print("part 1b: the same reward with a built-in and with a custom component, shaped objective")
    print(
        f"{'reward':<18}{'H':>3}{'built-in s':>11}{'custom s':>10}{'ratio':>7}{'cpu ratio':>10}"
        f"{'states':>8}{'custom':>8}  same optima"
    )
    for label, sc, custom in _pairs():
        built_in_oracle = Oracle(sc.env, sc.reward)
        custom_oracle = Oracle(sc.env, custom)
        for h in horizons:
            prices = [
                sc.market.generate(h + 1, np.random.default_rng(seed)).prices.tolist() for seed in range(markets)
            ]
            rows: dict[str, tuple[list[float], list[float], list[int], list[Any]]] = {}
            for name, oracle in (("built-in", built_in_oracle), ("custom", custom_oracle)):
                walls, cpus, nodes, plans = [], [], [], []
                for p in prices:
                    w0, c0 = time.perf_counter(), time.process_time()
                    plan = oracle.solve(p)
                    walls.append(time.perf_counter() - w0)
                    cpus.append(time.process_time() - c0)
                    nodes.append(plan.nodes)
                    plans.append((plan.actions, plan.value))
                rows[name] = (walls, cpus, nodes, plans)
            b, c = rows["built-in"], rows["custom"]
            bw, cw = statistics.median(b[0]), statistics.median(c[0])
            bc, cc = statistics.median(b[1]), statistics.median(c[1])
            same = sum(x == y for x, y in zip(b[3], c[3], strict=True))
            print(
                f"{label:<18}{h:>3}{bw:>11.4f}{cw:>10.4f}{cw / bw:>7.2f}{cc / bc if bc else float('nan'):>10.2f}"
                f"{int(statistics.median(b[2])):>8}{int(statistics.median(c[2])):>8}  {same}/{len(prices)}",
                flush=True,
            )


def bench_audit(names: list[str]) -> None:
    print()
    print(f"part 2: audit_reward(scenario) at the default budget ({DEFAULT_AUDIT_BUDGET:g} s) and seed 0")
    print(f"{'scenario':<9}{'wall s':>8}{'cpu s':>8}{'markets':>9}{'markets/s':>11}  findings")
    for name in names:
        w0, c0 = time.perf_counter(), time.process_time()
        report = audit_reward(name)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        kinds = ", ".join(report.kinds) or "none"
        cut = " (budget ran out)" if report.budget_exhausted else ""
        print(
            f"{name:<9}{wall:>8.2f}{cpu:>8.2f}{report.examples:>9}{report.examples / wall:>11.1f}  {kinds}{cut}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--horizons", nargs="+", type=int, default=[4, 8, 12])
    parser.add_argument("--markets", type=int, default=7, help="markets per scenario and horizon (default 7)")
    parser.add_argument("--no-audit", action="store_true", help="skip part 2")
    parser.add_argument("--no-custom", action="store_true", help="skip part 1b")
    args = parser.parse_args()
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    print("exact oracle and reward audit: time per horizon, markets per second")
    print(f"python {platform.python_version()}, numpy {np.__version__}, tradeguard {__version__}")
    print(
        f"machine: {platform.machine()} {platform.system()}, nproc {os.cpu_count()}, load average "
        + " ".join(f"{x:.2f}" if isinstance(x, float) else str(x) for x in load)
        + " (shared: read medians and the cpu column)"
    )
    print(
        "reproduce (repo root, venv active): python benchmarks/bench_oracle.py "
        + " ".join(
            [f"--scenarios {' '.join(args.scenarios)}"] * (args.scenarios != list(SCENARIOS))
            + [f"--horizons {' '.join(map(str, args.horizons))}"] * (args.horizons != [4, 8, 12])
            + [f"--markets {args.markets}"] * (args.markets != 7)
            + ["--no-audit"] * args.no_audit
            + ["--no-custom"] * args.no_custom
        )
    )
    print("markets: each scenario's MarketSpec, generate(H + 1, default_rng(seed)) for seed 0..markets-1")
    print()
    bench_oracle(args.scenarios, args.horizons, args.markets)
    if not args.no_custom:
        bench_custom(args.horizons, args.markets)
    if not args.no_audit:
        bench_audit(args.scenarios)


if __name__ == "__main__":
    main()
