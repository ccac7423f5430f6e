"""Adapters: how an env's steps become trace records.

tradeguard's own ``TradingEnv`` writes its records itself (:class:`NativeAdapter`).
Another env joins through an adapter that turns its (action, observation, reward,
terminated, truncated, info, readable state) into :class:`~tradeguard.trace.StepRecord`
objects, and declares in ``TraceMeta.supplies`` which fields it really fills:
invariants needing anything else are reported "not applicable", never "pass".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from tradeguard.trace import StepRecord, TraceMeta

__all__ = ["StepData", "TraceAdapter", "NativeAdapter", "env_mask"]


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


@runtime_checkable
class TraceAdapter(Protocol):
    """Turns another env's steps into trace records."""

    @property
    def name(self) -> str:
        """Short name, for reports."""
        ...

    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        """The trace header, called right after ``reset``."""
        ...

    def begin(self, env: Any, observation: Any, info: dict[str, Any]) -> None:
        """Called after each ``reset`` with what it returned (read the starting state here)."""
        ...

    def record(self, env: Any, step: StepData) -> StepRecord:
        """The record of one step, called right after ``env.step`` returned."""
        ...

    def reset_options(self, market: Any) -> dict[str, Any] | None:
        """``reset`` options that make the env trade ``market`` (a tradeguard Market), or
        ``None`` when the env cannot take a market."""
        ...

    def market_length(self, env: Any) -> int | None:
        """How many prices an injected market must have (``None``: the env cannot take one)."""
        ...


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


class NativeAdapter:
    """The adapter for tradeguard's own ``TradingEnv``: its records are ``info["record"]``."""

    name = "tradeguard"

    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        meta: TraceMeta = env.unwrapped.trace_meta
        return meta

    def begin(self, env: Any, observation: Any, info: dict[str, Any]) -> None:
        return None

    def record(self, env: Any, step: StepData) -> StepRecord:
        try:
            record: StepRecord = step.info["record"]
        except (KeyError, TypeError):
            raise TypeError(
                f"info from step {step.t} has no 'record' (keys: {sorted(step.info)}): this env is "
                "not a tradeguard TradingEnv; pass adapter=... for it"
            ) from None
        return record

    def reset_options(self, market: Any) -> dict[str, Any] | None:
        return {"market": market}

    def market_length(self, env: Any) -> int | None:
        """Prices an injected market needs: one more than the episode's steps."""
        length: int = env.unwrapped.config.episode_length + 1
        return length
