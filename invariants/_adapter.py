"""Adapters: how an env's steps become trace records.

tradeguard's own ``TradingEnv`` writes its records itself (:class:`NativeAdapter`).
Another env joins through an adapter that turns its (action, observation, reward,
terminated, truncated, info, readable state) into :class:`~tradeguard.trace.StepRecord`
objects, and declares in ``TraceMeta.supplies`` which fields it really fills:
invariants needing anything else are reported "not applicable", never "pass".
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tradeguard._episode import StepData, checked_record, env_mask
from tradeguard.trace import ActionKind, StepRecord, TraceMeta

__all__ = [
    "ADAPTERS",
    "GymAdapter",
    "NativeAdapter",
    "StepData",
    "TraceAdapter",
    "action_id",
    "adapter_for",
    "checked_record",
    "env_mask",
    "get_adapter",
]


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


def reported_metrics_of(adapter: Any, env: Any, info: Any) -> Mapping[str, Any] | None:
    """What the env itself reports about the episode so far, through the adapter's optional
    ``reported_metrics(env, info)`` hook (``None`` when the adapter has none).

    Raises:
        InvalidConfig: the hook returned something other than a mapping or ``None``.
    """
    hook = getattr(adapter, "reported_metrics", None)
    if not callable(hook):
        return None
    from tradeguard._validation import suggest
    from tradeguard.errors import InvalidConfig
    from tradeguard.invariants._model import raised_at
    from tradeguard.trace import metric_names

    name = getattr(adapter, "name", None) or type(adapter).__name__
    try:
        reported = hook(env, info if isinstance(info, dict) else {})
    except Exception as exc:  # the adapter's mistake (a key the env's info lacks), named with its line
        at = raised_at(exc)
        raise InvalidConfig(
            f"the {name} adapter's reported_metrics() raised {type(exc).__name__}: {exc}{f', {at}' if at else ''}. "
            "It is called at the end of each episode with its last info (docs/adapters.md)."
        ) from exc
    if reported is None:
        return None
    if not isinstance(reported, Mapping):
        raise InvalidConfig(
            f"the {name} adapter's reported_metrics() returned a {type(reported).__name__}; expected a "
            "mapping of metric names (EpisodeMetrics fields, e.g. 'trades', 'episode_reward') to the "
            "values the env reports, or None (docs/adapters.md)."
        )
    known = metric_names()
    unknown = [k for k in reported if k not in known]
    if unknown:  # a name metrics-match-trace cannot check must not pass as checked
        raise InvalidConfig(
            f"the {name} adapter's reported_metrics() returned {', '.join(map(repr, unknown))}, which "
            f"{'is not a metric' if len(unknown) == 1 else 'are not metrics'} tradeguard can check; expected "
            f"names among {', '.join(known)}.{suggest(str(unknown[0]), known)} Leave out what the env reports "
            "that has no counterpart, or derive one (e.g. the share of steps each action executed: "
            "action_distribution_executed, by action name)."
        )
    return reported


class NativeAdapter:
    """The adapter for tradeguard's own ``TradingEnv``: its records are ``info["record"]``."""

    name = "tradeguard"

    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        require_native(env)
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

    def settings(self, env: Any) -> Any:
        """The constructor's settings the gate draws (settings fuzzing), for ``env`` built with none:
        Trading-v0's ``scenario`` (its reward weights) and ``config`` (fee, boundary-seeking cash, lot
        size, sizing, disabled actions, episode length up to ``env``'s); Portfolio-v0's ``scenario``
        (a shipped one with ``env``'s action space: long-only or clip). See ``_native_settings``."""
        from tradeguard.invariants._native_settings import native_settings

        return native_settings(env)

    def reference(self, env: Any) -> Any:
        """The env ``env`` must match step for step (``matches-reference``): for
        ``tradeguard/TradingBatch-v0``, one lane of the batch engine, the scalar ``TradingEnv``
        built with the same settings; ``None`` for the others."""
        from tradeguard.env import BatchLaneEnv

        base = env_target(env)
        return base.reference if isinstance(base, BatchLaneEnv) else None

    def market_kinds(self, env: Any) -> tuple[str, ...] | None:
        """The kinds of generated markets ``env`` takes: all but ``extreme`` for the batch engine's lane
        (it computes with int64 and refuses, by design, markets whose x1000 jumps could overflow it:
        see ``exactness_problem``; the scalar env, with Python integers, takes them all)."""
        from tradeguard.env import BatchLaneEnv
        from tradeguard.strategies import PATH_KINDS

        base = env_target(env)
        return tuple(k for k in PATH_KINDS if k != "extreme") if isinstance(base, BatchLaneEnv) else None

    def market_length(self, env: Any) -> int | None:
        """Prices an injected market needs: one more than the episode's steps."""
        length: int = env.unwrapped.config.episode_length + 1
        return length

    def market_spare(self, env: Any) -> int:
        """Prices an injected market may have beyond :meth:`market_length`: ``TradingEnv`` (and the
        batch engine's lane) start an episode at a random point of a longer market, so the gate
        tests markets up to 4 prices longer (its markets move in their first prices: a longer spare
        would start episodes where they are flat); ``PortfolioEnv`` takes exactly its episode's prices."""
        from tradeguard.env import BatchLaneEnv, TradingEnv

        return 4 if isinstance(env_target(env), (TradingEnv, BatchLaneEnv)) else 0

    def state_key(self, env: Any) -> Any:
        """Everything the rest of the episode depends on (for the black-box reward audit's
        memoized search): the step, the account, and the reward shaper's history that the
        reward config makes matter (the curriculum count, the actions seen, the custom
        components' histories). The market is fixed by the reset."""
        base = env.unwrapped
        h = base.shaper_state
        r = base.reward_config
        return (
            h.steps,
            base.state,
            h.curriculum_count if r.curriculum_min_share > 0 and r.curriculum_actions else 0,
            h.seen if r.diversity_bonus != 0 else 0,
            h.custom,
        )


def env_target(env: Any) -> Any:
    """The env itself under its wrappers: ``env.unwrapped``, and under the checker's guard its target."""
    base = getattr(env, "unwrapped", env)
    return getattr(base, "tradeguard_target", base)  # an env guarded by the checker


def is_native(env: Any) -> bool:
    """Whether ``env`` is (a wrapper of) tradeguard's own ``TradingEnv``, whose records
    :class:`NativeAdapter` reads."""
    return hasattr(env_target(env), "trace_meta")


def require_native(env: Any) -> None:
    """Refuse :class:`NativeAdapter` for an env that is not tradeguard's own ``TradingEnv``.

    Raises:
        InvalidConfig: ``env`` keeps no tradeguard records (no ``trace_meta``).
    """
    if is_native(env):
        return
    from tradeguard.errors import InvalidConfig

    base = env_target(env)
    raise InvalidConfig(
        f"adapter 'tradeguard' (NativeAdapter) was given for a {type(base).__name__}, which is not "
        "tradeguard's TradingEnv: that adapter reads the records TradingEnv keeps itself (trace_meta "
        "and info['record']), and this env keeps none. Leave the adapter out to have adapter_for(env) "
        "choose one (GymAdapter for a plain gymnasium env, which knows nothing of its trading), "
        "or write an adapter for this env to check its trading (docs/adapters.md)."
    )


def action_id(action: Any) -> int:
    """``action`` as an integer id: ints, numpy integers and 0-d integer arrays as they are,
    anything else (floats, bools, ``None``, ...) as ``-1`` (no action of any table)."""
    if isinstance(action, (bool, np.bool_)):
        return -1
    if isinstance(action, (int, np.integer)):
        return int(action)
    if isinstance(action, np.ndarray) and action.shape == () and action.dtype.kind in "iu":
        return int(action.item())
    return -1


class GymAdapter:
    """The adapter for any gymnasium env with a ``Discrete``, ``MultiDiscrete`` or ``Box`` action space.

    It knows nothing of the env's trading: it declares the step number, the predicted
    action (``Discrete`` only: the others have no action ids), the reward and (when the
    env has one) the mask. The env contract
    invariants and ``finite-rewards`` apply; every invariant about positions, cash or
    execution is reported not applicable. Action kinds are unknown and given as
    ``hold``; no applicable invariant reads them.
    """

    name = "gym"

    def __init__(self) -> None:
        # Whether the last reset's info held a mask (``info["action_mask"]``): begin() sees
        # it before meta() is called, and meta() reads no info of its own.
        self._reset_mask = False

    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        space = env.action_space
        spec = getattr(env, "spec", None)
        env_id = getattr(spec, "id", None) or type(env.unwrapped).__name__
        n = getattr(space, "n", None)
        if hasattr(space, "nvec") or hasattr(space, "low"):  # MultiDiscrete, Box: no action ids
            rebalance: ActionKind = "rebalance"
            return TraceMeta(env_id=env_id, action_names=("(an action of the space)",), action_kinds=(rebalance,),
                             seed=seed, supplies=frozenset({"t", "reward"}))
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
            from tradeguard.errors import InvalidConfig

            raise InvalidConfig(
                f"the env's action_space is {space!r}; the gym adapter records Discrete, MultiDiscrete "
                "and Box actions. For another action space, write an adapter (docs/adapters.md)."
            )
        n = int(n)
        supplies = {"t", "predicted", "reward"}
        if self._reset_mask or env_mask(env) is not None:
            supplies.add("mask")
        return TraceMeta(
            env_id=env_id,
            action_names=tuple(f"action {i}" for i in range(n)),
            action_kinds=_hold_kinds(n),
            seed=seed,
            supplies=frozenset(supplies),
        )

    def begin(self, env: Any, observation: Any, info: dict[str, Any]) -> None:
        self._reset_mask = isinstance(info, dict) and env_mask(env, info) is not None

    def record(self, env: Any, step: StepData) -> StepRecord:
        a = action_id(step.action) if not hasattr(env.action_space, "low") and not hasattr(env.action_space, "nvec") else 0
        try:
            reward = float(step.reward)
        except (TypeError, ValueError):
            reward = float("nan")
        return partial_record(t=step.t, predicted=a, executed=a, reward=reward, mask=step.mask)

    def reset_options(self, market: Any) -> dict[str, Any] | None:
        return None

    def market_length(self, env: Any) -> int | None:
        return None


_PLACEHOLDERS: dict[str, Any] = {
    "price": 0, "next_price": 0, "rejected": False, "reason": None,
    "position_before": 0, "position_after": 0, "cash_before": 0, "cash_after": 0,
    "equity_before": 0, "equity_after": 0, "quantity": 0, "fee": 0, "reward": 0.0,
    "components": (), "mask": None, "cost_basis_before": 0,
}  # fmt: skip


def partial_record(**supplied: Any) -> StepRecord:
    """A record with the fields an adapter can supply; every other field is a placeholder
    (0, ``()``, ``None``) that the adapter's ``TraceMeta.supplies`` must leave out, so
    that the invariants reading it report "not applicable" instead of checking zeros."""
    return StepRecord(**{**_PLACEHOLDERS, **supplied})


def _hold_kinds(n: int) -> tuple[ActionKind, ...]:
    hold: ActionKind = "hold"
    return (hold,) * n


ADAPTERS: dict[str, str] = {
    "tradeguard": "tradeguard.invariants._adapter:NativeAdapter",
    "gym": "tradeguard.invariants._adapter:GymAdapter",
    "anytrading-stocks": "tradeguard.invariants.peers:AnyTradingAdapter:stocks",
    "anytrading-forex": "tradeguard.invariants.peers:AnyTradingAdapter:forex",
    "gym-trading-env": "tradeguard.invariants.peers:GymTradingEnvAdapter",
    "tradingenv": "tradeguard.invariants.peers:TradingEnvAdapter",
}
"""The built-in adapters by name, as ``module:class[:argument]`` (imported when asked for)."""


def get_adapter(name: str) -> TraceAdapter:
    """The built-in adapter called ``name`` (see :data:`ADAPTERS`).

    Raises:
        InvalidConfig: ``name`` is not a built-in adapter (with the closest one).
    """
    import importlib

    from tradeguard._validation import suggest
    from tradeguard.errors import InvalidConfig

    try:
        module, cls, *args = ADAPTERS[name].split(":")
    except KeyError:
        raise InvalidConfig(
            f"adapter={name!r}; the built-in adapters are {', '.join(ADAPTERS)} "
            f"(or give MODULE:CLASS).{suggest(name, ADAPTERS)}"
        ) from None
    adapter: TraceAdapter = getattr(importlib.import_module(module), cls)(*args)
    return adapter


def adapter_for(env: Any) -> TraceAdapter:
    """The adapter for ``env``: tradeguard's own, a built-in peer's, or :class:`GymAdapter`."""
    if is_native(env):
        return NativeAdapter()
    base = env_target(env)
    names = {f"{c.__module__}.{c.__qualname__}" for c in type(base).__mro__}
    if any(n.startswith("gym_anytrading.") for n in names):
        from tradeguard.invariants.peers import AnyTradingAdapter

        return AnyTradingAdapter.for_env(base)
    if any(n.startswith("gym_trading_env.") for n in names):
        from tradeguard.invariants.peers import GymTradingEnvAdapter

        return GymTradingEnvAdapter()
    if "tradeguard.invariants.peers._tradingenv.TradingEnvMarketEnv" in names:
        from tradeguard.invariants.peers import TradingEnvAdapter

        return TradingEnvAdapter()
    return GymAdapter()


class MarketWrapperAdapter:
    """Shared by the adapters of envs that tradeguard wraps to inject markets: the wrapper
    publishes ``tradeguard_market_length`` and ``tradeguard_minor_unit``, and takes
    ``reset(options={"market": Market})``."""

    def reset_options(self, market: Any) -> dict[str, Any] | None:
        return {"market": market}

    def market_length(self, env: Any) -> int | None:
        length = wrapper_attr(env, "tradeguard_market_length")
        return None if length is None else int(length)


def import_optional(module: str, *, package: str, extra: str) -> Any:
    """Import ``module`` of an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:  # pragma: no cover - depends on the installation
        from tradeguard.errors import InvalidConfig

        raise InvalidConfig(
            f"{package} is not installed; install the {extra} extra: pip install 'tradeguard[{extra}]'."
        ) from None


def wrapper_attr(env: Any, name: str) -> Any:
    """``env``'s attribute ``name`` looked up through gymnasium wrappers, or ``None``."""
    getter = getattr(env, "get_wrapper_attr", None)
    try:
        return getter(name) if callable(getter) else getattr(env, name)
    except AttributeError:
        return None


def minor_unit_of(env: Any) -> float:
    """The currency value of one minor unit of the market a wrapper fed ``env`` (0.01 by default)."""
    unit = wrapper_attr(env, "tradeguard_minor_unit")
    return float(unit) if unit else 0.01
