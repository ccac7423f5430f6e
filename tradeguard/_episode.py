"""The episode loop: reset, choose an action, step, record, stop at the end.

Every place that plays an episode on a gymnasium env plays it here:
:func:`tradeguard.env.run_episode`, the env contract's
:func:`tradeguard.invariants.record_episode` (and so the gate), the policy audit and the
reports' replays. They differ only in what they pass in:

- a *chooser*, ``choose(t, observation, mask) -> action``: a fixed action sequence, a
  :class:`~tradeguard.invariants.MaskedPlan`, a policy with its own RNG, a model;
- a *recorder* that turns each step into a :class:`~tradeguard.trace.StepRecord`: a
  :class:`~tradeguard.invariants.TraceAdapter`, or ``None`` for an env that keeps its own
  trace (tradeguard's ``TradingEnv``);
- where to stop, whether to keep what the env returned, whether an exception from the env
  is a finding (the contract) or an error (everyone else).

Why here, in :mod:`tradeguard` itself: :mod:`tradeguard.env` may not import
:mod:`tradeguard.invariants`, and both must reach the loop. What the loop hands a recorder
(:class:`StepData`), how it reads the mask (:func:`env_mask`) and how it checks what the
recorder returns (:func:`checked_record`) live beside it; :mod:`tradeguard.invariants`
re-exports them as part of the adapter API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from tradeguard.trace import StepRecord, Trace, TraceMeta

__all__ = ["Chooser", "PlayedEpisode", "Recorder", "StepData", "checked_record", "env_mask", "play_episode"]

Mask = tuple[bool, ...]

Chooser = Callable[[int, Any, Mask | None], Any]
"""``choose(t, observation, mask)``: the action to play at step ``t``, given the observation
the env returned last and the mask the agent sees (``None`` when the env has none)."""


@dataclass(frozen=True, slots=True)
class StepData:
    """What one ``env.step`` call gave, plus the mask the agent saw before it."""

    t: int
    action: Any
    observation: Any
    reward: Any
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    mask: tuple[bool, ...] | None


class Recorder(Protocol):
    """What the loop asks of a :class:`~tradeguard.invariants.TraceAdapter`: the trace header
    after ``reset``, and one record per step."""

    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        """The trace header, called right after ``reset``."""
        ...

    def begin(self, env: Any, observation: Any, info: dict[str, Any]) -> None:
        """Called after ``reset`` with what it returned."""
        ...

    def record(self, env: Any, step: StepData) -> StepRecord:
        """The record of one step, called right after ``env.step`` returned."""
        ...


def checked_record(adapter: Any, record: Any, t: int) -> StepRecord:
    """``record``, what ``adapter.record`` returned for step ``t``, if it is a StepRecord.

    Raises:
        InvalidConfig: it is anything else (``None``: a forgotten ``return``), blaming the adapter.
    """
    if isinstance(record, StepRecord):
        return record
    from tradeguard.errors import InvalidConfig

    name = getattr(adapter, "name", None) or type(adapter).__name__
    got = "None" if record is None else f"a {type(record).__name__}"
    hint = " (a missing return?)" if record is None else ""
    raise InvalidConfig(
        f"the {name} adapter's record() returned {got} for step {t}; expected a "
        f"tradeguard.trace.StepRecord{hint}. Return StepRecord(...) or partial_record(...) "
        "from record() (docs/adapters.md)."
    )


def env_mask(env: Any, info: dict[str, Any] | None = None) -> tuple[bool, ...] | None:
    """The env's current action mask by either convention: ``action_masks()`` or ``info["action_mask"]``."""
    base = getattr(env, "unwrapped", env)
    fn = getattr(base, "action_masks", None) or getattr(env, "action_masks", None)
    mask: npt.ArrayLike | None = None
    if callable(fn):
        mask = fn()
    elif info is not None and "action_mask" in info:
        mask = info["action_mask"]
    if mask is None:
        return None
    return tuple(bool(x) for x in np.asarray(mask).ravel())


@dataclass
class PlayedEpisode:
    """An episode as played.

    Attributes:
        trace: The recorder's trace (``None`` when the loop ran without a recorder: the
            env keeps its own).
        observations: What ``reset`` and then each step returned, when kept
            (``observations[0]`` is from ``reset``; ``observations[i + 1]`` from step ``i``).
        snapshots: Copies of ``observations`` taken the moment each was returned.
        infos: The info dicts of ``reset`` and of each step, when kept.
        ended: Whether the env said the episode ended (terminated or truncated).
        error: The exception the env raised during a step, when errors are caught.
    """

    trace: Trace | None
    observations: list[Any] = field(default_factory=list)
    snapshots: list[Any] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    ended: bool = False
    error: BaseException | None = None


def play_episode(
    env: Any,
    choose: Chooser,
    *,
    recorder: Recorder | None,
    seed: int | None,
    options: dict[str, Any] | None = None,
    max_steps: int | None = None,
    stop_at_end: bool = True,
    keep_returns: bool = False,
    catch_errors: bool = False,
) -> PlayedEpisode:
    """Reset ``env`` with ``seed`` and play ``choose``'s actions until the end or ``max_steps``.

    Args:
        env: Any gymnasium env.
        choose: ``choose(t, observation, mask)`` gives step ``t``'s action.
        recorder: Turns each step into a record, through :func:`checked_record` (an adapter
            whose ``record()`` returns anything but a StepRecord is named as the culprit);
            ``None`` records nothing.
        seed: Passed to ``reset``.
        options: Passed to ``reset``.
        max_steps: Steps at most (``None``: until the episode ends).
        stop_at_end: Stop when a step says terminated or truncated; ``False`` plays on
            (the contract's step-after-end check needs it).
        keep_returns: Keep what ``reset`` and every step returned: observations, a snapshot
            copy of each taken at once (to tell later whether the env changed it), infos.
        catch_errors: Keep an exception raised during the steps (by the env, the chooser or
            the recorder) in :attr:`PlayedEpisode.error` instead of raising it, so that a
            checker can report it as a finding. ``reset`` always raises.

    Returns:
        The :class:`PlayedEpisode`.

    Example:
        >>> from tradeguard.env import TradingEnv
        >>> env = TradingEnv(scenario="v10")
        >>> played = play_episode(env, lambda t, obs, mask: 4, recorder=None, seed=0, max_steps=3)
        >>> played.trace is None, [r.reason for r in env.trace.records]
        (True, ['NO_POSITION', 'NO_POSITION', 'NO_POSITION'])
    """
    obs, info = env.reset(seed=seed, options=options)
    meta: TraceMeta | None = None
    if recorder is not None:
        recorder.begin(env, obs, info)
        meta = recorder.meta(env, seed=seed)
    played = PlayedEpisode(None)
    if keep_returns:
        played.observations.append(obs)
        played.snapshots.append(_copy(obs))
        played.infos.append(info)
    records: list[StepRecord] = []
    t = 0
    try:
        while max_steps is None or t < max_steps:
            mask = env_mask(env, info)
            action = choose(t, obs, mask)
            obs, reward, terminated, truncated, info = env.step(action)
            if keep_returns:
                played.observations.append(obs)
                played.snapshots.append(_copy(obs))
                played.infos.append(info)
            if recorder is not None:
                step = StepData(t, action, obs, reward, terminated, truncated, info, mask)
                records.append(checked_record(recorder, recorder.record(env, step), t))
            t += 1
            if terminated or truncated:
                played.ended = True
                if stop_at_end:
                    break
    except Exception as exc:
        if not catch_errors:
            raise
        played.error = exc
    if meta is not None:
        played.trace = Trace(tuple(records), meta)
    return played


def _copy(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, dict):
        return {k: _copy(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_copy(v) for v in x)
    return x
