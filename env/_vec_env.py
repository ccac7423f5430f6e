"""``TradingVecEnv``: a stable-baselines3 ``VecEnv`` over the batch engine.

Importing this module imports stable-baselines3 (and torch); the core package does
not, so ``tradeguard.env`` exports :class:`TradingVecEnv` lazily.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from tradeguard.env._batch import BatchEngine
from tradeguard.env._config import EnvConfig, RewardConfig
from tradeguard.env._market import Market, MarketSpec
from tradeguard.env._scenarios import Scenario
from tradeguard.errors import InvalidConfig
from tradeguard.trace import Trace

__all__ = ["TradingVecEnv"]


class TradingVecEnv(VecEnv):
    """N :class:`TradingEnv` accounts as one SB3 ``VecEnv``, stepped by a :class:`BatchEngine`.

    A drop-in for ``DummyVecEnv([lambda: TradingEnv(...)] * n)``: the same seeds give
    the same observations, rewards (float32, as ``DummyVecEnv`` stores them), dones and
    auto-resets, so training gives the same model. At an episode end,
    ``infos[i]["terminal_observation"]`` holds the last observation and the returned
    observation is the next episode's first. :meth:`action_masks` makes MaskablePPO
    mask invalid actions (``sb3_contrib.common.maskable.utils.is_masking_supported``
    finds it through :meth:`env_method`). ``get_attr("trace")`` and :meth:`trace` give
    each env's episode so far, ``get_attr("last_trace")`` its last completed one.

    Args:
        num_envs: Number of envs.
        config: As :class:`BatchEngine` (one for all envs, or one per env).
        reward: As :class:`BatchEngine`.
        market: As :class:`BatchEngine`.
        scenario: As :class:`BatchEngine`.
        record: Keep step records so traces can be materialized (see :class:`BatchEngine`).
        info_records: Put each step's :class:`~tradeguard.trace.StepRecord` in
            ``infos[i]["record"]``, as the scalar env does (slower: a Python object per
            env per step).

    Example:
        >>> import numpy as np
        >>> venv = TradingVecEnv(2, scenario="v10")
        >>> _ = venv.seed(0)
        >>> obs = venv.reset()
        >>> obs, rewards, dones, infos = venv.step(np.array([4, 0]))
        >>> rewards.tolist(), venv.action_masks().shape
        ([-0.05000000074505806, 0.0], (2, 7))
    """

    def __init__(
        self,
        num_envs: int,
        config: EnvConfig | Sequence[EnvConfig] | None = None,
        reward: RewardConfig | Sequence[RewardConfig] | None = None,
        market: Market | MarketSpec | Sequence[Market | MarketSpec] | None = None,
        *,
        scenario: str | Scenario | Sequence[str | Scenario | None] | None = None,
        record: bool = True,
        info_records: bool = False,
    ) -> None:
        self.engine = BatchEngine(
            num_envs, config, reward, market, scenario=scenario, record=record
        )
        self.info_records = bool(info_records)
        self._actions: npt.NDArray[Any] | None = None
        super().__init__(
            num_envs, self.engine.single_observation_space, self.engine.single_action_space
        )

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> VecEnvObs:
        """Reset every env with the seeds from :meth:`seed` and options from :meth:`set_options`."""
        markets: list[Market | None] = []
        for i, options in enumerate(self._options):
            unknown = set(options) - {"market"}
            if unknown:
                raise InvalidConfig(
                    f"unknown reset options {sorted(unknown)} for env {i}; expected 'market'."
                )
            markets.append(options.get("market"))
        obs, _ = self.engine.reset(
            seed=list(self._seeds),
            options={"market": markets} if any(m is not None for m in markets) else None,
        )
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Remember the actions for :meth:`step_wait`."""
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """Step every env: ``(observations, rewards, dones, infos)`` with SB3's auto-reset."""
        obs, rewards, terminated, truncated, info = self.engine.step(self._actions)
        dones = terminated | truncated
        cut = (truncated & ~terminated).tolist()
        infos: list[dict[str, Any]] = [{"TimeLimit.truncated": c} for c in cut]
        if self.info_records:
            for entry, record in zip(infos, self.engine.step_records(), strict=True):
                entry["record"] = record
        if "final_obs" in info:
            final = info["final_obs"]
            for i in np.flatnonzero(dones).tolist():
                infos[i]["terminal_observation"] = final[i]
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        """Release the engine."""
        self.engine.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """An attribute of each env's view (``trace``, ``last_trace``, ``state``, ``config``...)."""
        return [getattr(self.engine.env(i), attr_name) for i in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Refused: the envs are views of one engine; build a new TradingVecEnv instead."""
        raise InvalidConfig(
            f"set_attr({attr_name!r}) is not supported: TradingVecEnv's envs are read-only views "
            "of one BatchEngine. Build a new TradingVecEnv with the configuration you want."
        )

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method of each env's view; ``action_masks`` is answered for all envs at once."""
        chosen = self._indices(indices)
        if method_name == "action_masks" and not method_args and not method_kwargs:
            masks = self.engine.action_masks()
            return [masks[i] for i in chosen]
        return [
            getattr(self.engine.env(i), method_name)(*method_args, **method_kwargs) for i in chosen
        ]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper[Any, Any, Any, Any]], indices: VecEnvIndices = None
    ) -> list[bool]:
        """Always False: the envs are not gymnasium envs, so no wrapper can wrap them."""
        return [False for _ in self._indices(indices)]

    # ------------------------------------------------------------------ extras
    def action_masks(self) -> npt.NDArray[np.bool_]:
        """Every env's valid actions now, shape ``(num_envs, 7)``."""
        return self.engine.action_masks()

    def trace(self, i: int) -> Trace:
        """Env ``i``'s current episode so far."""
        return self.engine.trace(i)

    def last_trace(self, i: int) -> Trace | None:
        """Env ``i``'s last completed episode, or ``None``."""
        return self.engine.last_trace(i)

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        chosen: Iterable[int] = self._get_indices(indices)
        out = [int(i) for i in chosen]
        for i in out:
            if not 0 <= i < self.num_envs:
                raise InvalidConfig(f"env index {i} is out of range: expected 0..{self.num_envs - 1}.")
        return out

    def __repr__(self) -> str:
        return f"TradingVecEnv({self.engine!r})"
