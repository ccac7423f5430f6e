"""PPO training throughput on tradeguard's TradingEnv vs gymnasium's CartPole-v1, same settings.

Question: is the env the bottleneck of training? Both envs are trained with the same
stable-baselines3 PPO (MlpPolicy, n_steps 2048, batch 64, 10 epochs, 1 env, CPU, 1
torch thread, seed 0) for the same number of steps, in one process, alternating
CartPole / TradingEnv per repeat so that a noisy machine's drift is shared. For each
run it measures

- training throughput: env steps / wall time of ``model.learn`` (rollouts + updates);
- env share: the wall time spent inside the env's own ``step``/``reset`` (a timing
  wrapper around the unwrapped env), as a share of ``learn``;
- the env alone: steps/s of ``step`` with pre-drawn random actions (no agent).

and prints the medians over repeats and the ratio TradingEnv / CartPole. TradingEnv
runs scenario ``default`` (500-step episodes, 14 observation features) and returns
``info["record"]`` every step; CartPole has 4 features.

Run from the repository root (needs the ``rl`` extra):

    python benchmarks/bench_training.py                    # 2 repeats x 20,480 steps per env
    python benchmarks/bench_training.py --steps 40960 --repeats 3
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Any

import gymnasium as gym
import numpy as np

N_STEPS = 2048
BATCH = 64
EPOCHS = 10
SEED = 0


class _Timed(gym.Wrapper[Any, Any, Any, Any]):
    """Accumulates the wall time spent in the wrapped env's step and reset."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.seconds = 0.0

    def step(self, action: Any) -> Any:
        t = time.perf_counter()
        out = self.env.step(action)
        self.seconds += time.perf_counter() - t
        return out

    def reset(self, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = self.env.reset(**kwargs)
        self.seconds += time.perf_counter() - t
        return out


def _make(name: str) -> gym.Env[Any, Any]:
    if name == "cartpole":
        return gym.make("CartPole-v1").unwrapped  # no TimeLimit: SB3's Monitor counts episodes
    from tradeguard.env import TradingEnv

    return TradingEnv(scenario="default")


def train_once(name: str, steps: int) -> dict[str, float]:
    from stable_baselines3 import PPO

    env = _Timed(_make(name))
    if name == "cartpole":
        env = gym.wrappers.TimeLimit(env, max_episode_steps=500)  # type: ignore[assignment]
    model = PPO("MlpPolicy", env, n_steps=N_STEPS, batch_size=BATCH, n_epochs=EPOCHS, seed=SEED, device="cpu", verbose=0)
    timed = env if isinstance(env, _Timed) else env.env  # type: ignore[attr-defined]
    timed.seconds = 0.0
    t = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - t
    return {"steps_per_s": model.num_timesteps / wall, "env_share": timed.seconds / wall, "wall": wall}


def env_alone(name: str, steps: int) -> float:
    env = _make(name)
    rng = np.random.default_rng(SEED)
    actions = rng.integers(int(env.action_space.n), size=steps)  # type: ignore[attr-defined]
    env.reset(seed=SEED)
    t = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10 * N_STEPS, help="training steps per run (default: 20480)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per env, alternating (default: 2)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    import sb3_contrib  # noqa: F401  (imported so both envs pay the same import state)
    import stable_baselines3

    names = ("cartpole", "tradeguard")
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    alone: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.repeats):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            runs[n].append(train_once(n, args.steps))
            alone[n].append(env_alone(n, 50_000))
            last = runs[n][-1]
            print(
                f"repeat {r + 1} {n:<11} PPO {last['steps_per_s']:7.0f} steps/s, env share "
                f"{last['env_share']:.1%}, env alone {alone[n][-1]:9.0f} steps/s",
                flush=True,
            )

    def med(n: str, key: str) -> float:
        return statistics.median(x[key] for x in runs[n])

    print()
    print(
        f"PPO (MlpPolicy, n_steps {N_STEPS}, batch {BATCH}, {EPOCHS} epochs, 1 env, 1 torch thread), "
        f"{args.steps:,} steps x {args.repeats} repeats; stable-baselines3 {stable_baselines3.__version__}, "
        f"torch {torch.__version__}, Python {platform.python_version()}, {platform.machine()}"
    )
    print(f"{'env':<12}{'PPO steps/s':>14}{'env share':>12}{'env alone steps/s':>20}")
    for n in names:
        print(f"{n:<12}{med(n, 'steps_per_s'):>14.0f}{med(n, 'env_share'):>12.1%}{statistics.median(alone[n]):>20.0f}")
    ratio = med("tradeguard", "steps_per_s") / med("cartpole", "steps_per_s")
    print(f"ratio tradeguard / CartPole-v1 (PPO training throughput): {ratio:.2f}x")


if __name__ == "__main__":
    main()
