"""Env steps per second, side by side: tradeguard (Trading-v0, Portfolio-v0) vs gym-anytrading vs gym-trading-env.

One process, one synthetic price path, the same number of steps per episode for all
three envs, pre-generated random actions (sampling is not timed), and a reset at the
end of every episode (resets are inside the timed loop and are counted). Each repeat
runs every env once, in rotating order, so that drift on a noisy machine is shared.
Prints, per env, the median steps/s with min and max over the repeats, and the ratios
tradeguard / gym-anytrading and tradeguard / gym-trading-env (issue 2's targets: at
least 0.5x and 2x; the goal is 1x gym-anytrading), and Portfolio-v0 / gym-trading-env
(issue 13's target: at least 1x).

Run from the repository root (needs the ``peers`` extra: gym-anytrading, gym-trading-env):

    python benchmarks/bench_env_steps.py                  # 3 repeats x 50,000 steps
    python benchmarks/bench_env_steps.py --steps 200000 --repeats 5
    python benchmarks/bench_env_steps.py --profile        # + cProfile of tradeguard's step

What each env does per step (read in their installed sources, gym-anytrading 2.0 and
gym-trading-env 0.3):

* tradeguard ``TradingEnv.step`` (env/_trading_env.py): validates the action, looks up
  every action's verdict and the mask in the compiled rule table, applies the
  transition on an integer ``PortfolioState``, computes 7 named reward components,
  builds an 18-field ``StepRecord`` that it appends to the episode's trace, and returns
  a fresh float32 observation (window of log returns + 4 position features) and
  ``info={"record": record}``. Its reset rebuilds the trace header (``TraceMeta``).
* tradeguard ``PortfolioEnv.step`` (env/_portfolio.py): validates the target weights
  against its Box, scales them to the gross-exposure limit, turns them into whole-unit
  orders on integer cash, executes sells then buys within the cash, builds one ``Leg``
  per instrument (three here) and a ``StepRecord`` it appends to the trace, and returns a
  fresh float32 observation. Its actions are float64 arrays of three weights.
* gym-anytrading ``StocksEnv.step`` (envs/trading_env.py, envs/stocks_env.py): advances
  a tick, a reward and a profit update from two comparisons, appends the position to
  a list, returns a **view** (a slice, not a copy) of its internal ``signal_features``
  array as the observation and a 3-key info dict that it also appends to
  ``self.history``. It never sets ``terminated``; ``truncated`` is True at the last tick.
  Its reset re-seeds ``action_space`` (``action_space.seed(...)``) every time.
* gym-trading-env ``TradingEnv.step`` (environments.py, utils/history.py): trades the
  float portfolio to the target position, flattens ~16 values (with a dict built per
  step) into a row of an object-dtype ``History`` array, computes the reward with
  ``np.log`` via ``list.index`` column look-ups, returns as info a dict zipped from that
  row, and as the observation a **view** (one row) of its internal feature array into
  which it has just written the dynamic features. At episode end it formats its
  metrics strings (``verbose=0`` here, so nothing is printed). Its reset allocates a
  ``len(df)`` x width object array.

Global state: ``import gym_trading_env`` runs ``warnings.filterwarnings("error")`` (every
warning in the process becomes an exception); ``import gym_anytrading`` imports
``matplotlib.pyplot``, reads two bundled CSV files, and both packages register ids in
gymnasium's global registry. This script imports them only inside functions, under
``warnings.catch_warnings()`` (which restores the filters), and checks that the
warning filters are unchanged afterwards. The registry entries and the imported
modules stay, which does not affect timing. gym-trading-env's reset uses the *global*
``np.random`` when ``initial_position="random"``; this script passes
``initial_position=0`` so no global RNG is touched.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import importlib.metadata
import os
import platform
import pstats
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

WINDOW = 10
"""Observation window of gym-anytrading (``window_size``) and of tradeguard (``EnvConfig.window``)."""

SEED = 0


@dataclass(frozen=True, slots=True)
class Bench:
    """One env ready to time: its step and reset, and the actions to feed it."""

    name: str
    version: str
    env: Any
    actions: list[Any]
    note: str


@dataclass(frozen=True, slots=True)
class Run:
    """One timed run of one env."""

    steps: int
    resets: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        """Steps per second of wall-clock time."""
        return self.steps / self.seconds

    @property
    def cpu_rate(self) -> float:
        """Steps per second of this process's CPU time (less sensitive to other load)."""
        return self.steps / self.cpu_seconds


# --------------------------------------------------------------------------- setup
IMPORT_EFFECTS: dict[str, str] = {}
"""What each peer's first import did to the warning filters (seen inside the guard, then undone)."""


@contextlib.contextmanager
def _guard(module: str) -> Iterator[None]:
    """Import a peer package with the warning filters saved and restored around it."""
    first = module not in sys.modules
    with warnings.catch_warnings():
        before = list(warnings.filters)
        yield
        added = [f for f in warnings.filters if f not in before]
    if first:
        IMPORT_EFFECTS[module] = (
            "added warning filters "
            + ", ".join(f"{f[0]!r} for {getattr(f[2], '__name__', f[2])}" for f in added)
            + " (undone by warnings.catch_warnings)"
            if added
            else "no warning filter change"
        )


def make_prices(n: int) -> tuple[npt.NDArray[np.float64], float]:
    """The one price path every env trades, in currency units, and its minor unit."""
    from tradeguard.env import MarketSpec

    market = MarketSpec(kind="random_walk").generate(n, np.random.default_rng(SEED))
    return market.in_currency(), market.minor_unit


def draw_actions(n_actions: int, steps: int, seed: int, as_numpy: bool) -> list[Any]:
    """``steps`` uniform random actions, drawn before timing; numpy int64 scalars or Python ints."""
    drawn = np.random.default_rng(seed).integers(0, n_actions, size=steps)
    return list(drawn) if as_numpy else drawn.tolist()


def make_tradeguard(prices: npt.NDArray[np.float64], minor_unit: float, length: int) -> Any:
    """tradeguard's TradingEnv on ``prices[WINDOW:]`` (``length + 1`` prices: ``length`` steps)."""
    from tradeguard.env import EnvConfig, Market, TradingEnv

    market = Market.from_prices(prices[WINDOW:], minor_unit=minor_unit, name="bench")
    config = EnvConfig(episode_length=length, window=WINDOW, minor_unit=minor_unit)
    return TradingEnv(config=config, market=market)


def make_portfolio(prices: npt.NDArray[np.float64], minor_unit: float, length: int) -> Any:
    """tradeguard's PortfolioEnv (Portfolio-v0): three instruments on rotations of ``prices[WINDOW:]``."""
    from tradeguard.env import Market, PortfolioConfig, PortfolioEnv

    market = Market.from_prices(prices[WINDOW:], minor_unit=minor_unit, name="bench")
    config = PortfolioConfig(episode_length=length, window=WINDOW, minor_unit=minor_unit)
    return PortfolioEnv(config, market=market)


def draw_weights(n: int, steps: int, seed: int) -> list[Any]:
    """``steps`` random target weights in [0, 1]^n (float64 arrays), drawn before timing."""
    drawn = np.random.default_rng(seed).random((steps, n))
    return list(drawn)


def make_anytrading(prices: npt.NDArray[np.float64], length: int) -> tuple[Any, str]:
    """gym-anytrading's StocksEnv; its first ``WINDOW`` prices are the observation's warm-up."""
    import pandas as pd

    with _guard("gym_anytrading"):
        from gym_anytrading.envs import StocksEnv

    df = pd.DataFrame({"Close": prices})
    # start_tick = window_size, end_tick = len(prices used) - 1, and step() advances
    # the tick before acting: frame_bound (W, W + L + 1) gives L steps per episode.
    env = StocksEnv(df=df, window_size=WINDOW, frame_bound=(WINDOW, WINDOW + length + 1))
    return env, importlib.metadata.version("gym-anytrading")


def make_trading_env(prices: npt.NDArray[np.float64], fee: float) -> tuple[Any, str]:
    """gym-trading-env's TradingEnv on ``prices[WINDOW:]``: truncated after ``len(df) - 1`` steps."""
    import pandas as pd

    with _guard("gym_trading_env"):
        from gym_trading_env.environments import TradingEnv

    close = prices[WINDOW:]
    df = pd.DataFrame(
        {"close": close, "feature_close": np.diff(close, prepend=close[0]) / close},
        index=pd.date_range("2024-01-01", periods=len(close), freq="min"),
    )
    env = TradingEnv(
        df=df,
        positions=[0, 1],  # long only, like tradeguard (its default)
        trading_fees=fee,
        initial_position=0,  # "random" would draw from the global np.random
        verbose=0,  # 1 prints a line every episode
        render_mode=None,
    )
    return env, importlib.metadata.version("gym-trading-env")


# --------------------------------------------------------------------------- timing
def episode_length(env: Any, actions: Sequence[Any]) -> int:
    """Steps until the episode ends (untimed; also the warm-up)."""
    env.reset(seed=SEED)
    for i, a in enumerate(actions, start=1):
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            return i
    raise RuntimeError(f"{type(env).__name__}: no episode end within {len(actions)} steps")


def time_env(env: Any, actions: list[Any]) -> Run:
    """Step through ``actions``, resetting at every episode end; resets are timed."""
    env.reset(seed=SEED)
    step = env.step
    reset = env.reset
    resets = 0
    gc.collect()
    cpu_start = time.process_time()
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = step(a)
        if terminated or truncated:
            reset()
            resets += 1
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    return Run(len(actions), resets, seconds, cpu_seconds)


def profile_tradeguard(env: Any, actions: list[Any], top: int) -> str:
    """cProfile of :func:`time_env` on tradeguard, top functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    time_env(env, actions)
    profiler.disable()
    out = _Text()
    stats = pstats.Stats(profiler, stream=out)  # type: ignore[arg-type]
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    return out.text


class _Text:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)


# --------------------------------------------------------------------------- report
def nproc() -> str:
    exe = shutil.which("nproc")
    if exe:
        try:
            return subprocess.run([exe], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    return str(len(os.sched_getaffinity(0)))


def header(args: argparse.Namespace, argv: Sequence[str]) -> list[str]:
    import gymnasium
    import pandas as pd

    import tradeguard

    version = getattr(tradeguard, "__version__", None) or importlib.metadata.version("tradeguard")
    cmd = " ".join(shlex.quote(a) for a in ["python", "benchmarks/bench_env_steps.py", *argv])
    return [
        "env steps per second: tradeguard vs gym-anytrading vs gym-trading-env",
        f"python {platform.python_version()} ({platform.python_implementation()}), numpy "
        f"{np.__version__}, pandas {pd.__version__}, gymnasium {gymnasium.__version__}, "
        f"tradeguard {version}",
        f"machine: {platform.machine()} {platform.system()} {platform.release()}, nproc {nproc()}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (shared: see the cpu column)",
        f"reproduce (repo root, venv active): {cmd}",
        f"workload: {args.repeats} repeats x {args.steps} steps per env, episodes of "
        f"{args.episode_length} steps (reset at each end, timed), actions drawn before timing "
        f"as {'numpy int64' if args.numpy_actions else 'Python int'}, gc enabled",
        f"prices: MarketSpec(kind='random_walk').generate({args.episode_length + 1 + WINDOW}, "
        f"default_rng({SEED})), in currency; anytrading uses the first {WINDOW} as its window",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=50_000, help="timed steps per env per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per env")
    parser.add_argument("--episode-length", type=int, default=500, help="steps per episode")
    parser.add_argument(
        "--numpy-actions",
        action="store_true",
        help="pass numpy int64 scalars (what action_space.sample() and SB3 give) instead of ints",
    )
    parser.add_argument("--profile", action="store_true", help="also cProfile tradeguard's loop")
    parser.add_argument("--profile-top", type=int, default=25, help="rows of the profile")
    args = parser.parse_args(argv)
    for name in ("steps", "repeats", "episode_length"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)}; expected >= 1")

    import pandas  # noqa: F401 (imported before the snapshot: its own import is not the peers')

    import tradeguard.env  # noqa: F401 (imports gymnasium, which adds its own filters)

    filters_before = list(warnings.filters)
    prices, minor_unit = make_prices(args.episode_length + 1 + WINDOW)
    fee = 0.001  # tradeguard's default 10 bps

    tg_env = make_tradeguard(prices, minor_unit, args.episode_length)
    pf_env = make_portfolio(prices, minor_unit, args.episode_length)
    at_env, at_version = make_anytrading(prices, args.episode_length)
    te_env, te_version = make_trading_env(prices, fee)
    benches = [
        Bench(
            "tradeguard",
            importlib.metadata.version("tradeguard"),
            tg_env,
            draw_actions(7, args.steps, 1, args.numpy_actions),
            "7 actions, default scenario rules and reward, full trace",
        ),
        Bench(
            "tg Portfolio-v0",
            importlib.metadata.version("tradeguard"),
            pf_env,
            draw_weights(3, args.steps, 1),
            "3 instruments, Box target weights, full trace with legs",
        ),
        Bench(
            "gym-anytrading",
            at_version,
            at_env,
            draw_actions(2, args.steps, 1, args.numpy_actions),
            f"StocksEnv, window_size={WINDOW}",
        ),
        Bench(
            "gym-trading-env",
            te_version,
            te_env,
            draw_actions(2, args.steps, 1, args.numpy_actions),
            "positions=[0, 1], trading_fees=0.001, windows=None",
        ),
    ]
    filters_changed = warnings.filters != filters_before

    lines = header(args, argv)
    for module, effect in IMPORT_EFFECTS.items():
        lines.append(f"import {module}: {effect}")
    lines.append(
        "warning filters after setup: "
        + (
            "CHANGED by a peer import (results may be affected)"
            if filters_changed
            else "as before the peer imports"
        )
    )
    for b in benches:
        n = episode_length(b.env, b.actions)
        if n != args.episode_length:
            raise RuntimeError(
                f"{b.name}: an episode has {n} steps; expected {args.episode_length}. The "
                "benchmark setup no longer matches this version of the env."
            )
    lines.append(f"checked: every env ends its episode after exactly {args.episode_length} steps")
    for line in lines:
        print(line, flush=True)

    runs: dict[str, list[Run]] = {b.name: [] for b in benches}
    for r in range(args.repeats):
        order = benches[r % len(benches) :] + benches[: r % len(benches)]
        for b in order:
            runs[b.name].append(time_env(b.env, b.actions))

    print()
    print("steps/s by wall clock (median, min, max over repeats); cpu: median by process CPU time")
    print(
        f"{'env':<16} {'version':<8} {'median':>9} {'min':>9} {'max':>9} {'cpu':>9} "
        f"{'resets':>7}  setup"
    )
    for b in benches:
        rates = [run.rate for run in runs[b.name]]
        cpu = [run.cpu_rate for run in runs[b.name]]
        print(
            f"{b.name:<16} {b.version:<8} {statistics.median(rates):>9,.0f} {min(rates):>9,.0f} "
            f"{max(rates):>9,.0f} {statistics.median(cpu):>9,.0f} {runs[b.name][0].resets:>7}  "
            f"{b.note}"
        )
    print()
    tg = [run.rate for run in runs["tradeguard"]]
    tg_cpu = [run.cpu_rate for run in runs["tradeguard"]]
    pf = [run.rate for run in runs["tg Portfolio-v0"]]
    pf_cpu = [run.cpu_rate for run in runs["tg Portfolio-v0"]]
    te = [run.rate for run in runs["gym-trading-env"]]
    te_cpu = [run.cpu_rate for run in runs["gym-trading-env"]]
    pf_ratio = statistics.median(pf) / statistics.median(te)
    pf_paired = [a / b for a, b in zip(pf, te, strict=True)]
    print(
        f"Portfolio-v0 / gym-trading-env {pf_ratio:5.2f}x  (per repeat {min(pf_paired):.2f}..{max(pf_paired):.2f}, "
        f"cpu {statistics.median(pf_cpu) / statistics.median(te_cpu):.2f}x; target >= 1x: "
        f"{'meets' if pf_ratio >= 1.0 else 'MISSES'})"
    )
    for other, target in (("gym-anytrading", 0.5), ("gym-trading-env", 2.0)):
        rates = [run.rate for run in runs[other]]
        cpu = [run.cpu_rate for run in runs[other]]
        ratio = statistics.median(tg) / statistics.median(rates)
        cpu_ratio = statistics.median(tg_cpu) / statistics.median(cpu)
        paired = [a / b for a, b in zip(tg, rates, strict=True)]
        verdict = "meets" if ratio >= target else "MISSES"
        print(
            f"tradeguard / {other:<16} {ratio:5.2f}x  (per repeat {min(paired):.2f}..{max(paired):.2f}, "
            f"cpu {cpu_ratio:.2f}x; target >= {target:g}x: {verdict})"
        )

    if args.profile:
        print()
        print("cProfile of tradeguard's timed loop (one run; profiling slows it several-fold):")
        print(profile_tradeguard(benches[0].env, benches[0].actions, args.profile_top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
