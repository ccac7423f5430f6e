"""The compatibility path for envs that speak the old gym API (gym <= 0.21).

Many trading envs still do: ``reset()`` returns only the observation (and takes no
``seed``), ``step()`` returns ``(observation, reward, done, info)``. gymnasium 1.x dropped
its own compatibility flag. tradeguard checks such an env through :class:`OldGymAPI`, a
small wrapper of its own (no extra dependency), and reports the old API as a contract
finding: every gymnasium tool (SB3 2.x included) refuses the env as it is.

The conversion, all of it:

- ``reset(seed=s, options=o)`` calls the env's ``seed(s)`` when it has one (else the seed
  reaches nothing: say so to the env's author), then ``reset(**o)``; it returns
  ``(observation, {})``.
- ``step(a)`` returns ``(observation, reward, terminated, truncated, info)`` with
  ``truncated = info.get("TimeLimit.truncated", False)`` and ``terminated = done and not
  truncated`` (gym's own TimeLimit convention).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import gymnasium as gym

__all__ = ["OldAPIFactory", "OldGymAPI", "old_api_finding", "speaks_old_api"]


def speaks_old_api(env: Any) -> bool:
    """True when ``env.reset`` takes neither ``seed`` nor ``**kwargs``: the gym <= 0.21 API.

    Example:
        >>> class Old:
        ...     def reset(self): return 0
        >>> speaks_old_api(Old()), speaks_old_api(gym.make("CartPole-v1"))
        (True, False)
    """
    reset = getattr(env, "reset", None)
    if not callable(reset):
        return False
    try:
        params = inspect.signature(reset).parameters.values()
    except (TypeError, ValueError):
        return False
    return not any(p.name == "seed" or p.kind is p.VAR_KEYWORD for p in params)


class OldGymAPI(gym.Env[Any, Any]):
    """An old-API env behind the gymnasium API (see the module docstring for the conversion).

    ``unwrapped`` is the old env's own base, so adapters read it as they would read it bare.

    Example:
        >>> import numpy as np
        >>> class Old:
        ...     action_space = gym.spaces.Discrete(2)
        ...     observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float64)
        ...     def reset(self): return np.zeros(1)
        ...     def step(self, action): return np.zeros(1), 1.0, True, {}
        >>> env = OldGymAPI(Old())
        >>> env.reset(seed=0)[1], env.step(0)[1:4]
        ({}, (1.0, True, False))
    """

    def __init__(self, env: Any) -> None:
        self.env = env
        self.action_space = env.action_space
        self.observation_space = env.observation_space

    @property
    def unwrapped(self) -> Any:  # type: ignore[override]
        return getattr(self.env, "unwrapped", self.env)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        seeder = getattr(self.env, "seed", None)
        if seed is not None and callable(seeder):
            seeder(seed)
        return self.env.reset(**(options or {})), {}

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        observation, reward, done, info = self.env.step(action)
        info = info if isinstance(info, dict) else {}
        truncated = bool(info.get("TimeLimit.truncated", False))
        return observation, reward, bool(done) and not truncated, truncated, info

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.env, name)


class OldAPIFactory:
    """A zero-argument env factory that wraps each env speaking the old API in :class:`OldGymAPI`.

    ``wrapped`` names the first env it wrapped (``None`` while it wrapped none): the gate
    reports it as a finding.
    """

    def __init__(self, make_env: Callable[[], Any]) -> None:
        self.make_env = make_env
        self.wrapped: str | None = None

    def __call__(self) -> Any:
        env = self.make_env()
        if speaks_old_api(env):
            self.wrapped = self.wrapped or type(getattr(env, "unwrapped", env)).__name__
            return OldGymAPI(env)
        return env


def old_api_finding(name: str) -> str:
    """The contract finding for an env that speaks the old gym API."""
    return (
        f"{name} speaks the old gym API: reset() returns only the observation and takes no seed, step() "
        "returns (observation, reward, done, info). gymnasium 1.x and stable-baselines3 2.x refuse it as it "
        "is; tradeguard checked it through its OldGymAPI wrapper (terminated = done, truncated from "
        "info['TimeLimit.truncated'], reset options passed as keyword arguments). Port reset() and step() "
        "to the gymnasium API (reset(*, seed=None, options=None) -> (obs, info); step() -> 5 values)."
    )
