"""One lane of the batch engine as a gymnasium env: ``tradeguard/TradingBatch-v0``.

:class:`BatchLaneEnv` takes :class:`TradingEnv`'s constructor and speaks its API (reset,
step, ``action_masks``, ``info["record"]``, ``trace``, ``trace_meta``), but every step runs
through a lane of a :class:`BatchEngine`: the vectorized code path that training uses. It
exists so that the batch engine faces the same invariant gate as the scalar env, and can be
checked against it as a reference (``tradeguard check --env tradeguard/TradingBatch-v0``
compares every episode with ``TradingEnv`` built the same way; see ``matches-reference``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from tradeguard.env._actions import ACTION_NAMES, N_ACTIONS
from tradeguard.env._batch import BatchEngine
from tradeguard.env._config import EnvConfig, RewardConfig
from tradeguard.env._market import Market, MarketSpec
from tradeguard.env._scenarios import Scenario, load_scenario
from tradeguard.env._trading_env import TradingEnv
from tradeguard.errors import EpisodeEnded, InvalidAction, InvalidConfig
from tradeguard.trace import StepRecord, Trace, TraceMeta

__all__ = ["LANE_ID", "MAX_LANES", "BatchLaneEnv", "make_batch_lane_env"]

LANE_ID = "tradeguard/TradingBatch-v0"

MAX_LANES = 8
"""The most envs a :class:`BatchLaneEnv`'s engine may have (the lane and its neighbours)."""

F32 = npt.NDArray[np.float32]


class BatchLaneEnv(gym.Env[F32, np.int64]):
    """A :class:`TradingEnv` whose steps run through lane ``lane`` of a :class:`BatchEngine` of
    ``lanes`` envs.

    Args:
        config, reward, market, scenario: As for :class:`TradingEnv`.
        lanes: Envs in the engine (1 to 8). The others are neighbours that trade beside the
            lane: neighbour ``k`` (the engine's env ``(lane + k) % lanes``) is reset with seed
            ``seed + k`` (``None`` when ``seed`` is) and the same ``options``, and takes the
            lane's action rotated by ``k`` (``(action + k) % 7``; an action that is not an
            integer in 0..6, the same one); a neighbour whose episode ends is auto-reset by the
            engine, as in training.
        lane: Which of the engine's envs this env is (0 to ``lanes - 1``).

    Its records, observations and rewards are the batch engine's; the scalar env built with
    the same arguments must give identical ones (:meth:`reference` builds it), whatever the
    lane and whatever its neighbours do. Each step's record is read both ways the engine
    offers (``step_records()`` and the lane's trace), and a step at which they disagree raises
    ``RuntimeError``.

    Example:
        >>> env = BatchLaneEnv(scenario="v10")
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(4)
        >>> info["record"].reason, reward
        ('NO_POSITION', -0.05)
    """

    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        config: EnvConfig | None = None,
        reward: RewardConfig | None = None,
        market: Market | MarketSpec | None = None,
        *,
        scenario: str | Scenario | None = None,
        lanes: int = 1,
        lane: int = 0,
    ) -> None:
        if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)) or not 1 <= lanes <= MAX_LANES:
            raise InvalidConfig(f"lanes={lanes!r}; expected a whole number of envs in the engine from 1 to {MAX_LANES}.")
        if isinstance(lane, bool) or not isinstance(lane, (int, np.integer)) or not 0 <= lane < lanes:
            raise InvalidConfig(f"lane={lane!r}; expected which of the engine's {lanes} envs this is: 0 to {lanes - 1}.")
        self.lanes, self.lane = int(lanes), int(lane)
        self.engine = BatchEngine(self.lanes, config, reward, market, scenario=scenario)
        view = self.engine.env(self.lane)
        self.config: EnvConfig = view.config
        self.reward_config: RewardConfig = view.reward_config
        self.market: Market | MarketSpec = view.market
        self.scenario: Scenario = view.scenario
        self.action_space = self.engine.single_action_space
        self.observation_space = self.engine.single_observation_space
        self._done = True
        # Before the first reset, the header the scalar env has then (no seed, no replay).
        self._meta = dataclasses.replace(view._proto.trace_meta, env_id=LANE_ID, replay=None)
        self._started = False

    def reference(self) -> TradingEnv:
        """The scalar env this lane must match step for step: ``TradingEnv`` with the same settings."""
        return TradingEnv(config=self.config, reward=self.reward_config, market=self.market, scenario=self.scenario)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[F32, dict[str, Any]]:
        """Start an episode; ``options={"market": Market}`` as for :meth:`TradingEnv.reset`."""
        if options and set(options) - {"market"}:
            raise InvalidConfig(f"unknown reset options {sorted(set(options) - {'market'})}; expected 'market'.")
        lane = self.lane
        seeds = [seed if seed is None else seed + (k - lane) % self.lanes for k in range(self.lanes)]
        obs, _ = self.engine.reset(seed=seeds, options=options or None)
        self._done = False
        self._started = True
        meta = self.engine.trace(lane).meta
        self._meta = dataclasses.replace(meta, env_id=LANE_ID, replay=None)
        return obs[lane], {}

    def step(self, action: Any) -> tuple[F32, SupportsFloat, bool, bool, dict[str, Any]]:
        """One step of the lane: the batch engine validates the action and applies the rules."""
        a = np.asarray(action)
        if a.shape != ():
            raise InvalidAction(
                f"action={action!r} has shape {a.shape}: expected one integer in 0..{N_ACTIONS - 1} "
                f"({', '.join(f'{i}={n}' for i, n in enumerate(ACTION_NAMES))})."
            )
        if self._done:
            raise EpisodeEnded(
                "step() called after the episode ended (or before the first reset()); call reset() to start "
                "a new episode."
            )
        lane = self.lane
        obs, rewards, terminated, truncated, info = self.engine.step(self._actions(a))
        ended = bool(terminated[lane] or truncated[lane])
        record = self._record(ended)
        if ended:
            self._done = True
            return (info["final_obs"][lane], float(rewards[lane]), bool(terminated[lane]), bool(truncated[lane]),
                    {"record": record})
        return obs[lane], float(rewards[lane]), False, False, {"record": record}

    def _actions(self, a: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Every env's action: the lane's as given (the engine validates it), its neighbours' rotated."""
        actions = np.repeat(a.reshape(1), self.lanes)
        if self.lanes > 1 and a.dtype.kind in "iu" and 0 <= int(a) < N_ACTIONS:
            shift = (np.arange(self.lanes) - self.lane) % self.lanes
            actions = ((int(a) + shift) % N_ACTIONS).astype(a.dtype)
        return actions

    def _record(self, ended: bool) -> StepRecord:
        """The step's record, read both ways the engine offers: ``step_records()`` (what
        ``TradingVecEnv(info_records=True)`` hands out) and the lane's trace (``trace(0)``, or
        ``last_trace(0)`` once the episode ended and the lane was auto-reset: what
        ``get_attr("trace")`` returns). The gate checks the one; the other must be equal to it."""
        lane = self.lane
        record = self.engine.step_records()[lane]
        episode = self.engine.last_trace(lane) if ended else self.engine.trace(lane)
        if episode is None or not episode.records or episode.records[-1] != record:
            traced = episode.records[-1] if episode is not None and episode.records else None
            raise RuntimeError(
                f"BatchEngine disagrees with itself at step {record.t}: step_records() gives {record} and "
                f"{'last_trace' if ended else 'trace'}({lane}) ends with {traced}."
            )
        return record

    def action_masks(self) -> npt.NDArray[np.bool_]:
        """Valid actions now (the batch engine's mask of the lane). Once the episode ended, the mask its
        last step was taken under: the engine has already auto-reset the lane, so the state the last
        step left is no longer there to mask (``TradingEnv`` masks that state)."""
        if self._done and self._started:
            last = self.engine.last_trace(self.lane)
            if last is not None and last.records:
                return np.array(last.records[-1].mask, dtype=bool)
        masks: npt.NDArray[np.bool_] = self.engine.action_masks()[self.lane]
        return masks

    @property
    def trace_meta(self) -> TraceMeta:
        """The header of this episode's trace."""
        return self._meta

    @property
    def trace(self) -> Trace:
        """The episode so far (the completed one once it ended)."""
        if not self._started:
            return Trace((), self._meta)
        done = self.engine.last_trace(self.lane) if self._done else None
        records = done.records if done is not None else self.engine.trace(self.lane).records
        return Trace(records, self.trace_meta)


def make_batch_lane_env(
    *,
    steps: int | None = None,
    scenario: str | Scenario | None = None,
    config: EnvConfig | None = None,
    reward: RewardConfig | None = None,
    market: Market | MarketSpec | None = None,
    lanes: int = 1,
    lane: int = 0,
) -> BatchLaneEnv:
    """``tradeguard/TradingBatch-v0`` as ``tradeguard check --env`` builds it: ``config`` as given, else
    the scenario's with episodes of ``steps`` steps (its own length when ``steps`` is ``None``).

    Example:
        >>> make_batch_lane_env(steps=10, scenario="v10").config.episode_length
        10
    """
    if config is None:
        base = scenario if isinstance(scenario, Scenario) else load_scenario(scenario or "default")
        config = base.env if steps is None else dataclasses.replace(base.env, episode_length=steps)
    return BatchLaneEnv(config=config, reward=reward, market=market, scenario=scenario, lanes=lanes, lane=lane)
