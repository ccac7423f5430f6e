"""The batch engine's speed and memory, side by side with the scalar env and gym-anytrading.

One process, one price path, episodes of the same length everywhere, resets timed:

1. env-steps per second: tradeguard's ``BatchEngine`` with N envs (default 1024; with
   and without step records; on a shared fixed market and on markets generated every
   episode), tradeguard's scalar ``TradingEnv``, and gym-anytrading's ``StocksEnv``
   (one env), each repeat running every env once in rotating order. Issue 7's target:
   the batch at >= 30x the scalar env; goal: > 10 million env-steps/s.
2. PPO (and MaskablePPO) rollout collection, ``collect_rollouts`` only (no gradient
   step): ``TradingVecEnv`` against ``DummyVecEnv`` of the same number of scalar envs.
3. Memory: the engine's bytes per env (its arrays, ``BatchEngine.nbytes``), and what
   a scalar env holds after one episode (``tracemalloc``), for scale.

Rates are medians over repeats, by wall clock and by process CPU time (the machine is
shared: the CPU-time rate moves less when other jobs run; read ratios, not absolutes).
Actions are uniform random (drawn before timing). The defaults run in under a minute.

Run from the repository root (needs the ``rl`` and ``peers`` extras):

    python benchmarks/bench_batch.py                      # the recorded run
    python benchmarks/bench_batch.py --envs 4096 --repeats 7
    python benchmarks/bench_batch.py --rollout-envs 1024  # PPO with many envs
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import os
import platform
import shlex
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

WINDOW = 10
SEED = 0


@dataclass(frozen=True, slots=True)
class Rate:
    """One timed run: env-steps done, wall-clock and CPU seconds."""

    steps: int
    seconds: float
    cpu: float


def timed(run: Callable[[], int]) -> Rate:
    """Time ``run`` (which returns the env-steps it made) by wall clock and process CPU time."""
    gc.collect()
    cpu0, t0 = time.process_time(), time.perf_counter()
    steps = run()
    return Rate(steps, time.perf_counter() - t0, time.process_time() - cpu0)


def median_rates(runs: list[Rate]) -> tuple[float, float, float, float]:
    """Median, min and max wall-clock rate, and the median CPU-time rate."""
    rates = [r.steps / r.seconds for r in runs]
    cpu = [r.steps / r.cpu for r in runs if r.cpu > 0]
    return statistics.median(rates), min(rates), max(rates), statistics.median(cpu or [0.0])


# --------------------------------------------------------------------------- the envs
def make_market(length: int) -> Any:
    from tradeguard.env import MarketSpec

    return MarketSpec(kind="random_walk").generate(length + 1 + WINDOW, np.random.default_rng(SEED))


def scalar_run(length: int, steps: int, market: Any) -> Callable[[], int]:
    from tradeguard.env import EnvConfig, Market, TradingEnv

    env = TradingEnv(EnvConfig(episode_length=length, window=WINDOW), market=Market(market.prices[WINDOW:]))
    actions = np.random.default_rng(1).integers(0, 7, size=steps).tolist()
    env.reset(seed=SEED)  # seeded once; episodes then follow one another

    def run() -> int:
        step, reset = env.step, env.reset
        for a in actions:
            if step(a)[2]:
                reset()
        return steps

    return run


def batch_run(
    n: int, length: int, steps: int, market: Any, *, record: bool, generated: bool
) -> tuple[Callable[[], int], Any]:
    from tradeguard.env import EnvConfig, Market, MarketSpec
    from tradeguard.env._batch import BatchEngine

    source = MarketSpec(kind="random_walk") if generated else Market(market.prices[WINDOW:])
    engine = BatchEngine(n, EnvConfig(episode_length=length, window=WINDOW), market=source, record=record)
    actions = np.random.default_rng(1).integers(0, 7, size=(steps, n))
    engine.reset(seed=SEED)  # seeded once (1024 generators); episodes then auto-reset

    def run() -> int:
        step = engine.step
        for a in actions:
            step(a)
        return steps * n

    return run, engine


def anytrading_run(length: int, steps: int, market: Any) -> tuple[Callable[[], int], str]:
    import pandas as pd

    with warnings.catch_warnings():  # gym_anytrading imports matplotlib.pyplot
        from gym_anytrading.envs import StocksEnv
    df = pd.DataFrame({"Close": market.in_currency()})
    env = StocksEnv(df=df, window_size=WINDOW, frame_bound=(WINDOW, WINDOW + length + 1))
    actions = np.random.default_rng(1).integers(0, 2, size=steps).tolist()
    env.reset(seed=SEED)

    def run() -> int:
        step, reset = env.step, env.reset
        for a in actions:
            _, _, terminated, truncated, _ = step(a)
            if terminated or truncated:
                reset()
        return steps

    return run, importlib.metadata.version("gym-anytrading")


# --------------------------------------------------------------------------- rollouts
def rollout_run(algo_name: str, venv: Any, n_steps: int) -> Callable[[], int]:
    """``collect_rollouts`` of one PPO/MaskablePPO rollout of ``n_steps`` per env."""
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    algo = {"PPO": PPO, "MaskablePPO": MaskablePPO}[algo_name]
    model = algo("MlpPolicy", venv, n_steps=n_steps, batch_size=n_steps, seed=SEED, device="cpu")
    total, callback = model._setup_learn(n_steps * venv.num_envs, None)
    callback.on_training_start(locals(), globals())
    assert isinstance(callback, BaseCallback)

    def run() -> int:
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=n_steps)
        return n_steps * venv.num_envs

    return run


# --------------------------------------------------------------------------- report
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--envs", type=int, default=1024, help="batch size N")
    parser.add_argument("--episode-length", type=int, default=500, help="steps per episode")
    parser.add_argument("--batch-steps", type=int, default=500, help="batch steps per repeat (an episode)")
    parser.add_argument("--scalar-steps", type=int, default=20_000, help="scalar steps per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per env")
    parser.add_argument(
        "--scaling", type=int, nargs="*", default=[256, 1024, 4096, 16384], help="N for the scaling table"
    )
    parser.add_argument("--rollout-envs", type=int, default=256, help="envs in the PPO comparison")
    parser.add_argument("--rollout-steps", type=int, default=32, help="PPO n_steps per env")
    parser.add_argument("--rollout-repeats", type=int, default=3, help="timed rollouts per VecEnv")
    args = parser.parse_args(argv)
    for name, value in vars(args).items():
        if any(v < 1 for v in (value if isinstance(value, list) else [value])):
            parser.error(f"--{name.replace('_', '-')}={value}; expected >= 1")

    import gymnasium
    import torch

    torch.set_num_threads(1)  # small MLP: one thread is fastest, and the run is single-core
    from stable_baselines3.common.vec_env import DummyVecEnv

    from tradeguard.env import EnvConfig, TradingEnv
    from tradeguard.env._vec_env import TradingVecEnv

    n, length = args.envs, args.episode_length
    market = make_market(length)
    cmd = " ".join(shlex.quote(a) for a in ["python", "benchmarks/bench_batch.py", *argv])
    print("batch engine: env-steps per second and memory, against the scalar env and gym-anytrading")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, gymnasium "
        f"{gymnasium.__version__}, torch {torch.__version__}, stable-baselines3 "
        f"{importlib.metadata.version('stable-baselines3')}, tradeguard "
        f"{importlib.metadata.version('tradeguard')}"
    )
    print(
        f"machine: {platform.machine()} {platform.system()}, cpus {os.cpu_count()}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (shared: read ratios and the cpu column)"
    )
    print(f"reproduce (repo root, venv active): {cmd}")
    print(
        f"workload: episodes of {length} steps, window {WINDOW}, uniform random actions drawn "
        f"before timing, envs seeded once before timing, episode ends and resets (auto-resets "
        f"in the batch) timed; {args.repeats} repeats; batch {n} envs x "
        f"{args.batch_steps} steps, scalar and gym-anytrading {args.scalar_steps} steps"
    )
    print()

    at_run, at_version = anytrading_run(length, args.scalar_steps, market)
    benches: list[tuple[str, Callable[[], int], str]] = [
        ("batch, shared market", batch_run(n, length, args.batch_steps, market, record=True, generated=False)[0],
         f"BatchEngine N={n}, record=True, one fixed market (random start offsets)"),
        ("batch, no record", batch_run(n, length, args.batch_steps, market, record=False, generated=False)[0],
         f"BatchEngine N={n}, record=False"),
        ("batch, generated", batch_run(n, length, args.batch_steps, market, record=True, generated=True)[0],
         f"BatchEngine N={n}, record=True, a new MarketSpec path per env per episode"),
        ("scalar TradingEnv", scalar_run(length, args.scalar_steps, market), "tradeguard TradingEnv, full trace"),
        ("gym-anytrading", at_run, f"StocksEnv {at_version}, window_size={WINDOW}"),
    ]
    runs: dict[str, list[Rate]] = {name: [] for name, _, _ in benches}
    for _name, run, _ in benches:  # warm-up (first reset, caches), untimed
        run()
    for r in range(args.repeats):
        order = benches[r % len(benches) :] + benches[: r % len(benches)]
        for name, run, _ in order:
            runs[name].append(timed(run))
    print("env-steps/s by wall clock (median, min, max over repeats); cpu: median by process CPU time")
    print(f"{'env':<20} {'median':>12} {'min':>12} {'max':>12} {'cpu':>12}  setup")
    medians: dict[str, tuple[float, float, float, float]] = {}
    for name, _, note in benches:
        med = medians[name] = median_rates(runs[name])
        print(f"{name:<20} {med[0]:>12,.0f} {med[1]:>12,.0f} {med[2]:>12,.0f} {med[3]:>12,.0f}  {note}")
    print()
    batch, scalar, anytrading = (medians[k] for k in ("batch, shared market", "scalar TradingEnv", "gym-anytrading"))
    paired = [
        (b.steps / b.seconds) / (s.steps / s.seconds)
        for b, s in zip(runs["batch, shared market"], runs["scalar TradingEnv"], strict=True)
    ]
    ratio = batch[0] / scalar[0]
    print(
        f"batch / scalar         {ratio:8.1f}x  (per repeat {min(paired):.1f}..{max(paired):.1f}, "
        f"cpu {batch[3] / scalar[3]:.1f}x; target >= 30x: {'meets' if ratio >= 30 else 'MISSES'})"
    )
    print(f"batch / gym-anytrading {batch[0] / anytrading[0]:8.1f}x  (cpu {batch[3] / anytrading[3]:.1f}x)")
    print(
        f"batch env-steps/s      {batch[0] / 1e6:8.2f}M  (cpu {batch[3] / 1e6:.2f}M; goal > 10M: "
        f"{'meets' if batch[0] > 10e6 else 'misses'} by wall clock, "
        f"{'meets' if batch[3] > 10e6 else 'misses'} by CPU time)"
    )

    # ----------------------------------------------------------------- scaling
    print()
    print(
        "scaling: BatchEngine steady state (record=False, shared market, no episode end in the "
        "timed window), env-steps/s by process CPU time, median of the repeats"
    )
    for size in args.scaling:
        run, engine = batch_run(size, length, 50, market, record=False, generated=False)
        run()  # warm-up: first reset and 50 steps
        acts = np.random.default_rng(2).integers(0, 7, size=(100, size))

        def steady(engine: Any = engine, acts: Any = acts) -> int:
            for a in acts:
                engine.step(a)
            return acts.size

        rates = median_rates([timed(steady) for _ in range(args.repeats)])
        steps_per_call = 1e6 * size / rates[3] if rates[3] else float("nan")
        print(f"  N={size:<6} {rates[3]:>14,.0f} env-steps/s  ({steps_per_call:,.0f} us CPU per step() call)")

    # ----------------------------------------------------------------- PPO rollouts
    print()
    m, k = args.rollout_envs, args.rollout_steps
    config = EnvConfig(episode_length=length, window=WINDOW)
    print(
        f"PPO rollout collection (collect_rollouts only, n_steps={k}, {m} envs, MlpPolicy 64x64, "
        f"torch 1 thread, {args.rollout_repeats} repeats): env-steps/s, median"
    )
    for algo in ("PPO", "MaskablePPO"):
        rates = {}
        for label, venv in (
            ("DummyVecEnv", DummyVecEnv([lambda: TradingEnv(config) for _ in range(m)])),
            ("TradingVecEnv", TradingVecEnv(m, config)),
        ):
            run = rollout_run(algo, venv, k)
            run()  # warm-up
            rates[label] = median_rates([timed(run) for _ in range(args.rollout_repeats)])
        d, b = rates["DummyVecEnv"], rates["TradingVecEnv"]
        print(
            f"{algo:<12} DummyVecEnv {d[0]:>10,.0f}   TradingVecEnv {b[0]:>10,.0f}   ratio "
            f"{b[0] / d[0]:5.1f}x (cpu {b[3] / d[3]:.1f}x)"
        )

    # ----------------------------------------------------------------- memory
    print()
    print(f"memory per env (episodes of {length} steps, window {WINDOW})")
    from tradeguard.env import Market
    from tradeguard.env._batch import BatchEngine

    for label, kwargs in (
        ("BatchEngine, shared market, record=True", {"market": Market(market.prices[WINDOW:]), "record": True}),
        ("BatchEngine, shared market, record=False", {"market": Market(market.prices[WINDOW:]), "record": False}),
        ("BatchEngine, generated markets, record=True", {"record": True}),
        ("BatchEngine, generated markets, record=False", {"record": False}),
    ):
        engine = BatchEngine(n, config, **kwargs)
        engine.reset(seed=SEED)
        print(f"  {label:<46} {engine.nbytes() / n:>10,.0f} bytes/env ({engine.nbytes() / 2**20:,.1f} MiB for {n})")
    tracemalloc.start()
    env = TradingEnv(config)
    env.reset(seed=SEED)
    for a in np.random.default_rng(1).integers(0, 7, size=length).tolist():
        env.step(a)
    trace = env.trace
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del trace
    print(f"  {'scalar TradingEnv after one episode':<46} {size:>10,.0f} bytes/env (tracemalloc: env + its trace)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
