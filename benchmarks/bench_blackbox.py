"""The black-box reward audit at its default budget: time, markets searched, search, exactness.

Issue 15's target: the black-box audit of a 3-to-7-action env at horizon 8 finishes in
under 30 s on 2 cores at the default budget (20 s). Each row is one ``audit_reward(make_env,
adapter=..., horizon=8)`` at the defaults (budget 20 s, seed 0), timed from the call (env
construction and imports included: the first row pays gym-anytrading's matplotlib import):

- CoinEnv (docs/adapters.md, 3 actions: HOLD, BUY, SELL): exhaustive, 3^8 = 6,561 sequences;
- gym-trading-env with positions [0, 0.5, 1] (3 actions): exhaustive;
- tradeguard's TradingEnv through its own adapter (7 actions, scenario v10.1): 7^8 is
  5.8 million sequences, so the search memoizes over the states the adapter declares;
- gym-anytrading StocksEnv (2 actions), for reference.

Run from the repository root:

    python benchmarks/bench_blackbox.py
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from tradeguard import __version__
from tradeguard.env import TradingEnv, load_scenario
from tradeguard.invariants import NativeAdapter
from tradeguard.invariants.audit import DEFAULT_AUDIT_BUDGET, audit_reward

DOC = Path(__file__).resolve().parents[1] / "docs" / "adapters.md"


def _coin() -> tuple[Any, Any]:
    ns: dict[str, Any] = {"__name__": "adapters_md"}
    exec(compile(re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0], str(DOC), "exec"), ns)
    env, adapter = ns["CoinEnv"], ns["CoinAdapter"]
    return (lambda: env(prices=(100.0,) * 9)), adapter()


def _rows() -> list[tuple[str, Any, Any]]:
    from tradeguard.invariants.peers import (
        AnyTradingAdapter,
        GymTradingEnvAdapter,
        make_stocks_env,
        make_trading_env,
    )

    coin, coin_adapter = _coin()
    sc = load_scenario("v10.1")
    sc = dataclasses.replace(sc, env=dataclasses.replace(sc.env, episode_length=8))
    return [
        ("CoinEnv (3 actions)", coin, coin_adapter),
        (
            "gym-trading-env, positions 0/0.5/1 (3)",
            functools.partial(make_trading_env, steps=8, positions=[0, 0.5, 1], initial_position=0),
            GymTradingEnvAdapter(),
        ),
        ("tradeguard v10.1 (7 actions)", lambda: TradingEnv(scenario=sc), NativeAdapter()),
        ("gym-anytrading stocks (2)", functools.partial(make_stocks_env, steps=8), AnyTradingAdapter("stocks")),
    ]


def main() -> None:
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    print(f"black-box reward audit, horizon 8, default budget ({DEFAULT_AUDIT_BUDGET:g} s), seed 0")
    print(f"python {platform.python_version()}, numpy {np.__version__}, tradeguard {__version__}")
    print(
        f"machine: {platform.machine()} {platform.system()}, nproc {os.cpu_count()}, load average "
        + " ".join(f"{x:.2f}" if isinstance(x, float) else str(x) for x in load)
        + " (shared: read the cpu column)"
    )
    print("reproduce: python benchmarks/bench_blackbox.py")
    print()
    print(f"{'env':<40}{'wall s':>8}{'cpu s':>8}{'markets':>9}{'env steps':>11}  search      exact  budget out  findings")
    for name, make_env, adapter in _rows():
        w0, c0 = time.perf_counter(), time.process_time()
        report = audit_reward(make_env, adapter=adapter, horizon=8)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        print(
            f"{name:<40}{wall:>8.1f}{cpu:>8.1f}{report.explored:>9}{report.steps:>11,}  {report.search:<11}"
            f"{'yes' if report.exact else 'no':<7}{'yes' if report.budget_exhausted else 'no':<12}"
            f"{', '.join(report.kinds) or 'none'}",
            flush=True,
        )


if __name__ == "__main__":
    main()
