"""How the policy audit plays a policy: one step at a time whatever its style, or a batch at once.

A tradeguard policy (``act(observation, mask, rng)``) or a stable-baselines3 /
sb3-contrib model (``predict``) is described once (:func:`describe_policy`), then played
through the one episode loop (:func:`tradeguard._episode.play_episode`) or, for an SB3 model
on tradeguard's own env, a family's episodes at once by a
:class:`~tradeguard.env.BatchEngine`: the same traces.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tradeguard._episode import play_episode
from tradeguard.errors import InvalidConfig
from tradeguard.invariants._adapter import TraceAdapter
from tradeguard.trace import Trace

__all__ = ["describe_policy"]


# --------------------------------------------------------------------------- policies
@dataclass(frozen=True, slots=True)
class _PolicyInfo:
    name: str
    style: Literal["act", "predict"]
    takes_masks: bool
    respects_masks: bool
    takes_state: bool = False


def describe_policy(policy: Any, *, mask_aware: bool | None = None) -> tuple[str, bool, bool]:
    """How the audit sees ``policy``: ``(name, takes_masks, respects_masks)``.

    A tradeguard policy (``act(observation, mask, rng)``) always takes the mask; it
    respects it when it says so (``respects_mask = True``) or is a
    ``MaskedRandomPolicy``. A model with ``predict(observation, ..., action_masks=...)``
    (sb3-contrib's ``MaskablePPO``) takes and respects masks; one without that
    parameter (stable-baselines3's ``PPO``) takes none. ``mask_aware`` overrides the
    "respects" verdict.

    Raises:
        InvalidConfig: ``policy`` has neither ``act`` nor ``predict``.
    """
    info = _describe(policy, mask_aware)
    return info.name, info.takes_masks, info.respects_masks


def _describe(policy: Any, mask_aware: bool | None) -> _PolicyInfo:
    act = getattr(policy, "act", None)
    predict = getattr(policy, "predict", None)
    if callable(act):
        respects = getattr(policy, "respects_mask", None)
        if respects is None:
            from tradeguard.env import MaskedRandomPolicy

            respects = isinstance(policy, MaskedRandomPolicy)
        name = str(getattr(policy, "name", type(policy).__name__))
        return _PolicyInfo(name, "act", True, bool(respects if mask_aware is None else mask_aware))
    if callable(predict):
        try:
            params = inspect.signature(predict).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        takes = "action_masks" in params or var_kw
        respects = takes if mask_aware is None else mask_aware
        state = ("state" in params and "episode_start" in params) or var_kw
        return _PolicyInfo(type(policy).__name__, "predict", takes, bool(respects), state)
    raise InvalidConfig(
        f"policy={policy!r} is not a policy: expected an object with act(observation, mask, rng) "
        "(a tradeguard policy, see tradeguard.env.parse_policy) or predict(observation, "
        "deterministic=..., action_masks=...) (a stable-baselines3 / sb3-contrib model)."
    )


class _Player:
    """Calls a policy one step at a time, whatever its style."""

    def __init__(self, policy: Any, info: _PolicyInfo, *, deterministic: bool, pass_masks: bool) -> None:
        self.policy = policy
        self.info = info
        self.deterministic = deterministic
        self.pass_masks = pass_masks and info.takes_masks
        self.state: Any = None
        self.start = True

    def begin(self) -> None:
        self.state = None
        self.start = True

    def __call__(self, obs: Any, mask: npt.NDArray[np.bool_] | None, rng: np.random.Generator) -> int:
        given = mask if self.pass_masks else None
        if self.info.style == "act":
            return _as_action(self.policy.act(obs, given, rng))
        kwargs: dict[str, Any] = {"deterministic": self.deterministic}
        if self.info.takes_state:
            kwargs["state"] = self.state
            kwargs["episode_start"] = np.array([self.start])
        if self.pass_masks:
            kwargs["action_masks"] = given
        action, self.state = self.policy.predict(obs, **kwargs)
        self.start = False
        return _as_action(action)


def _as_action(action: Any) -> int:
    arr = np.asarray(action)
    if arr.size != 1 or arr.dtype.kind not in "iu":
        raise InvalidConfig(
            f"the policy returned {action!r} (shape {arr.shape}, dtype {arr.dtype}); expected one "
            "integer action per step. For a vectorized model, pass a single observation."
        )
    return int(arr.reshape(()))


# --------------------------------------------------------------------------- playing
def _play(
    env: Any,
    adapter: TraceAdapter,
    player: _Player,
    *,
    seed: int,
    options: dict[str, Any] | None,
    rng: np.random.Generator,
    max_steps: int | None,
) -> tuple[Trace, int]:
    """One episode; returns its trace and how many predictions the visible mask forbade."""
    player.begin()
    invalid = 0

    def choose(t: int, observation: Any, visible: tuple[bool, ...] | None) -> int:
        nonlocal invalid
        mask = np.array(visible, dtype=bool) if visible is not None else None
        action = player(observation, mask, rng)
        if mask is not None and 0 <= action < len(mask) and not mask[action]:
            invalid += 1
        return action

    played = play_episode(env, choose, recorder=adapter, seed=seed, options=options, max_steps=max_steps)
    assert played.trace is not None  # a recorder was given
    return played.trace, invalid


def _predicts_batches(policy: Any) -> bool:
    """Whether ``policy`` is a stable-baselines3 model (its ``predict`` takes a batch of observations)."""
    import sys

    sb3 = sys.modules.get("stable_baselines3")  # a model of it exists only once it is imported
    return sb3 is not None and isinstance(policy, sb3.common.base_class.BaseAlgorithm)


def _batch_engine(env: Any, markets: Sequence[Any], seeds: Sequence[int]) -> tuple[Any, Any] | None:
    """A BatchEngine of ``env``'s configuration, one env per market, reset as ``_play`` resets.

    Returns ``(engine, first observations)``, or
    ``None`` when the batch engine refuses the markets (int64 might not be exact, or
    not a :class:`~tradeguard.env.Market`): the caller then plays them one by one.
    """
    from tradeguard.env import BatchEngine
    from tradeguard.errors import InvalidMarket

    base = env.unwrapped
    try:
        engine = BatchEngine(
            len(markets), base.config, base.reward_config, base.market, scenario=base.scenario
        )
        obs, _ = engine.reset(seed=list(seeds), options={"market": list(markets)})
    except (InvalidConfig, InvalidMarket):
        return None
    return engine, obs


def _play_batch(engine: Any, obs: Any, player: _Player, length: int) -> list[tuple[Trace, int]]:
    """Every env of ``engine`` for one episode of ``length`` steps, the model predicting for all.

    The same traces (and counts of mask-forbidden predictions) as :func:`_play` env by
    env: the observations, masks and records are bit-identical to the scalar env's, and a
    deterministic model maps each observation to its action whether or not it is batched.
    """
    import sys

    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else 0
    try:
        # Small batches on several intra-op threads are slower than one observation at a
        # time (the per-episode loop's batches of one run on one thread anyway): the
        # predictions run on one thread, and the setting is restored afterwards.
        if torch is not None and threads > 1:
            torch.set_num_threads(1)
        return _step_batch(engine, obs, player, length)
    finally:
        if torch is not None and threads > 1:
            torch.set_num_threads(threads)


def _step_batch(engine: Any, obs: Any, player: _Player, length: int) -> list[tuple[Trace, int]]:
    n = engine.num_envs
    invalid = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    state: Any = None
    start = np.ones(n, dtype=np.bool_)
    for _ in range(length):
        masks = engine.action_masks()
        kwargs: dict[str, Any] = {"deterministic": player.deterministic}
        if player.info.takes_state:
            kwargs["state"] = state
            kwargs["episode_start"] = start
        if player.pass_masks:
            kwargs["action_masks"] = masks
        action, state = player.policy.predict(obs, **kwargs)
        start = np.zeros(n, dtype=np.bool_)
        actions = np.asarray(action)
        if actions.shape != (n,) or actions.dtype.kind not in "iu":
            raise InvalidConfig(
                f"the policy returned {actions.shape} {actions.dtype} actions for {n} observations; "
                "expected one integer action per observation."
            )
        inside = (actions >= 0) & (actions < masks.shape[1])
        invalid += inside & ~masks[rows, np.where(inside, actions, 0)]
        obs, *_ = engine.step(actions)
    return [(engine.last_trace(i), int(invalid[i])) for i in range(n)]
