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

from tradeguard.env._actions import ACTION_NAMES, N_ACTIONS, Action
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
        mixed: Whether the neighbours have another config than the lane: another fee, other
            disabled actions and episodes one step shorter, so that the engine steps several
            configs' tables at once (``False``: the lane's own).

    The lane's engine keeps step records (what the gate reads); a second engine, built the same
    way without records (``record=False``: the path a training run may take), is reset and
    stepped beside it, and a step at which their observations, rewards, ends or masks differ
    raises ``RuntimeError``.

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
        mixed: bool = False,
    ) -> None:
        if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)) or not 1 <= lanes <= MAX_LANES:
            raise InvalidConfig(f"lanes={lanes!r}; expected a whole number of envs in the engine from 1 to {MAX_LANES}.")
        if isinstance(lane, bool) or not isinstance(lane, (int, np.integer)) or not 0 <= lane < lanes:
            raise InvalidConfig(f"lane={lane!r}; expected which of the engine's {lanes} envs this is: 0 to {lanes - 1}.")
        if not isinstance(mixed, bool):
            raise InvalidConfig(f"mixed={mixed!r}; expected True (neighbours with another config) or False.")
        self.lanes, self.lane, self.mixed = int(lanes), int(lane), mixed
        configs: EnvConfig | list[EnvConfig] | None = config
        if mixed and self.lanes > 1:
            own = TradingEnv(config, reward, market, scenario=scenario).config
            other = _neighbour_config(own)
            configs = [own if k == self.lane else other for k in range(self.lanes)]
        self.engine = BatchEngine(self.lanes, configs, reward, market, scenario=scenario)
        self.unrecorded = BatchEngine(self.lanes, configs, reward, market, scenario=scenario, record=False)
        view = self.engine.env(self.lane)
        self.config: EnvConfig = view.config
        self.reward_config: RewardConfig = view.reward_config
        self.market: Market | MarketSpec = view.market
        self.scenario: Scenario = view.scenario
        self.action_space = self.engine.single_action_space
        self.observation_space = self.engine.single_observation_space
        self._done = True
        self._twinned = False
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
        # Unseeded, each engine draws its own seeds: the two are compared on seeded episodes only.
        self._twinned = seed is not None
        if self._twinned:
            plain, _ = self.unrecorded.reset(seed=seeds, options=options or None)
            self._agree("reset", (obs,), (plain,))
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
        actions = self._actions(a)
        obs, rewards, terminated, truncated, info = self.engine.step(actions)
        if self._twinned:
            plain = self.unrecorded.step(actions)
            self._agree("step", (obs, rewards, terminated, truncated, _final(info), self.engine.action_masks()),
                        (*plain[:4], _final(plain[4]), self.unrecorded.action_masks()))
        ended = bool(terminated[lane] or truncated[lane])
        record = self._record(ended)
        if ended:
            self._done = True
            return (info["final_obs"][lane], float(rewards[lane]), bool(terminated[lane]), bool(truncated[lane]),
                    {"record": record})
        return obs[lane], float(rewards[lane]), False, False, {"record": record}

    def _agree(self, call: str, recorded: tuple[Any, ...], unrecorded: tuple[Any, ...]) -> None:
        """Raise where the engine with records and the one without returned different things."""
        names = ("observations", "rewards", "terminated", "truncated", "final observations", "action masks")
        for name, x, y in zip(names[: len(recorded)], recorded, unrecorded, strict=True):
            where = _first_difference(x, y)
            if where is not None:
                raise RuntimeError(
                    f"BatchEngine with records and without disagree after {call}(): their {name} differ {where} "
                    "(record=False must change nothing but the records)."
                )

    def _actions(self, a: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Every env's action: the lane's as given (the engine validates it), its neighbours' rotated."""
        actions = np.repeat(a.reshape(1), self.lanes)
        if self.lanes > 1 and a.dtype.kind in "iu" and 0 <= int(a) < N_ACTIONS:
            shift = (np.arange(self.lanes) - self.lane) % self.lanes
            actions = ((int(a) + shift) % N_ACTIONS).astype(a.dtype)
        return actions

    def _record(self, ended: bool) -> StepRecord:
        """The step's record, read both ways the engine offers: ``step_records()`` (what
        ``TradingVecEnv(info_records=True)`` hands out) and the lane's trace (``trace(lane)``, or
        ``last_trace(lane)`` once the episode ended and the lane was auto-reset: what
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


def _final(info: dict[str, Any]) -> Any:
    """The final observations of the envs whose episode ended this step (``None``: none did)."""
    if "final_obs" not in info:
        return None
    ended = np.flatnonzero(info["_final_obs"])
    return np.stack([info["final_obs"][i] for i in ended])


def _first_difference(x: Any, y: Any) -> str | None:
    """Where arrays ``x`` and ``y`` first differ (NaN equal to NaN), as words; ``None`` if nowhere."""
    if x is None or y is None:
        return None if x is y else f"in presence: {'none' if x is None else 'some'} against {'none' if y is None else 'some'}"
    a, b = np.asarray(x), np.asarray(y)
    if a.shape != b.shape:
        return f"in shape: {a.shape} against {b.shape}"
    same = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" and b.dtype.kind == "f" else a == b
    if bool(np.all(same)):
        return None
    at = tuple(int(i) for i in np.argwhere(~same)[0])
    return f"at index {at}: {a[at]!r} against {b[at]!r}"


def _neighbour_config(config: EnvConfig) -> EnvConfig:
    """Another config for a lane's neighbours: another fee, other disabled actions, and episodes
    one step shorter (an injected market long enough for the lane is then long enough for them)."""
    return dataclasses.replace(
        config,
        fee_bps=0.0 if config.fee_bps else 10.0,
        disabled_actions=() if config.disabled_actions else (Action.ADD_POSITION,),
        episode_length=max(1, config.episode_length - 1),
    )


def make_batch_lane_env(
    *,
    steps: int | None = None,
    scenario: str | Scenario | None = None,
    config: EnvConfig | None = None,
    reward: RewardConfig | None = None,
    market: Market | MarketSpec | None = None,
    lanes: int = 1,
    lane: int = 0,
    mixed: bool = False,
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
    return BatchLaneEnv(config=config, reward=reward, market=market, scenario=scenario, lanes=lanes, lane=lane,
                        mixed=mixed)
