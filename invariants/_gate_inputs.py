"""What the gate is given, checked before it searches: the factory, the env it returns, and the
adapter's declarations and hooks. Each refusal says what was given, what was expected and how
to fix it.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from tradeguard.errors import InvalidConfig

__all__ = ["MAX_MARKET_SPARE", "callable_name", "check_is_env", "check_market_taken", "check_meta_fits",
           "check_zero_arguments", "market_kinds", "market_spare"]

MAX_MARKET_SPARE = 64
"""The most extra prices an adapter's ``market_spare(env)`` may ask for: the gate's markets move
in their first prices, so a longer spare only starts episodes where prices are flat."""

_ENV_API = ("reset", "step", "action_space", "observation_space")
"""What the gate needs of an env: the gymnasium API it drives."""


def market_kinds(adapter: Any, env: Any) -> tuple[str, ...] | None:
    """The kinds of generated markets the env takes, from the adapter's optional ``market_kinds(env)``
    hook (``None``: every kind :func:`tradeguard.strategies.markets` draws)."""
    from tradeguard.strategies import PATH_KINDS

    hook = getattr(adapter, "market_kinds", None)
    kinds = hook(env) if callable(hook) else None
    if kinds is None:
        return None
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in PATH_KINDS]
    if not kinds or unknown:
        raise InvalidConfig(
            f"the {getattr(adapter, 'name', type(adapter).__name__)} adapter's market_kinds(env) returned "
            f"{kinds!r}; expected a non-empty tuple of {', '.join(PATH_KINDS)} (or None for all)."
        )
    return kinds


def market_spare(adapter: Any, env: Any) -> int:
    """How many prices beyond ``market_length(env)`` an injected market may have, from the adapter's
    optional ``market_spare(env)`` hook: an env that starts each episode at a point of a longer market
    it chooses itself (a random start) declares how much longer to test (0: exactly
    ``market_length``, also when the adapter has no such hook)."""
    hook = getattr(adapter, "market_spare", None)
    spare = hook(env) if callable(hook) else 0
    if spare is None:
        return 0
    if isinstance(spare, bool) or not isinstance(spare, (int, np.integer)) or not 0 <= spare <= MAX_MARKET_SPARE:
        raise InvalidConfig(
            f"the {getattr(adapter, 'name', type(adapter).__name__)} adapter's market_spare(env) returned "
            f"{spare!r}; expected a whole number of extra prices from 0 to {MAX_MARKET_SPARE} (0 or None: "
            "the env takes exactly market_length(env) prices). Return how many more prices than an episode "
            "needs the env accepts, starting its episode at a point of them it chooses."
        )
    return int(spare)


def callable_name(fn: Any) -> str:
    """``module:qualname`` of a factory, for messages (its ``repr`` when it has no name)."""
    qualname = getattr(fn, "__qualname__", None)
    if qualname is None:
        return repr(fn)
    module = getattr(fn, "__module__", None)
    return f"{module}:{qualname}" if module else str(qualname)


def check_zero_arguments(make_env: Any, factory: str) -> None:
    """Refuse a factory that cannot be called with no arguments (before it is called and blamed as the env)."""
    if not callable(make_env):
        raise InvalidConfig(
            f"make_env={make_env!r} is a {type(make_env).__name__}, not callable; expected a zero-argument "
            "callable that returns a fresh env each call (e.g. a class, a function or a lambda)."
        )
    try:
        signature = inspect.signature(make_env)
    except (TypeError, ValueError):  # no signature to read (some builtins): let the call tell
        return
    try:
        signature.bind()
    except TypeError:
        needed = [
            p.name for p in signature.parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        short = getattr(make_env, "__name__", None) or "make_env"
        example = ", ".join(f"{n}=..." for n in needed)
        raise InvalidConfig(
            f"the env factory {factory} needs arguments ({', '.join(needed)}); the check calls it with "
            f"none, for a fresh env each time. Give a zero-argument callable, e.g. "
            f"functools.partial({short}, {example}) or lambda: {short}({example})."
        ) from None


def check_is_env(env: Any, factory: str) -> None:
    """Refuse what a factory returned when it is not a gymnasium env (before any adapter reads it)."""
    missing = []
    for attr in _ENV_API:
        try:
            value = getattr(env, attr)
        except AttributeError:
            missing.append(attr)
            continue
        except Exception:  # a property of the env that raises: the env's own failure, reported later
            continue
        if attr in ("reset", "step") and not callable(value):
            missing.append(attr)
    if not missing:
        return
    text = repr(env)
    shown = "None" if env is None else f"a {type(env).__name__} ({text if len(text) <= 60 else text[:57] + '...'})"
    lacks = "none of them" if len(missing) == len(_ENV_API) else f"no {' and no '.join(missing)}"
    raise InvalidConfig(
        f"the env factory {factory} returned {shown}, not a gymnasium env: the check needs "
        f"{', '.join(_ENV_API[:-1])} and {_ENV_API[-1]}, and it has {lacks}. Give a zero-argument "
        "callable that returns a fresh env each call (e.g. mypackage.envs:make_env)."
    )


def check_meta_fits(meta: Any, n_actions: int, adapter: str) -> None:
    """Refuse an adapter whose ``TraceMeta`` names fewer actions than the env has (more is
    fine: an adapter may add virtual actions after the env's, e.g. ``(no trade)``)."""
    names = meta.action_names
    if len(names) < n_actions:
        raise InvalidConfig(
            f"the {adapter} adapter's meta() names {len(names)} actions {tuple(names)!r}, but the env's "
            f"action_space has {n_actions} (Discrete({n_actions})); expected a name and a kind for each "
            f"action id 0..{n_actions - 1} (virtual actions of the adapter's own may follow). Fix the "
            "adapter's TraceMeta(action_names=..., action_kinds=...)."
        )


def check_market_taken(make_env: Any, adapter: Any, length: int, idle: Any, *, minor_unit: float) -> None:
    """Refuse an env that trades the same prices whatever market the adapter's ``reset_options`` gives it.

    Two markets of ``length`` prices that move in opposite directions at every step (so that no
    rescaling of prices makes them alike) are each played for one step of ``idle``; the prices
    the two records show (their ``price`` and ``next_price``, or every leg's) must differ. When
    they do not, the env's ``reset`` ignores the options, and every generated market (a crash,
    a gap, a boundary price) would be reported as checked while the env traded its own data.
    Skipped when the records supply no prices, or when the env fails to reset or step (what
    the rest of the gate reports).

    Raises:
        InvalidConfig: the env traded the same prices on both markets.
    """
    from tradeguard.env import Market
    from tradeguard.invariants._contract import record_episode

    if length < 2:
        return
    low, high = 10_000, 20_000
    seen = []
    for first, second in ((low, high), (high, low)):
        prices = np.array([first if i % 2 == 0 else second for i in range(length)], dtype=np.int64)
        options = adapter.reset_options(Market(prices, minor_unit=minor_unit))
        if options is None:
            return
        try:
            ep = record_episode(make_env(), [idle], seed=0, options=options, adapter=adapter)
        except TypeError as exc:
            if "unexpected keyword argument" not in str(exc):
                return
            name = getattr(adapter, "name", type(adapter).__name__)
            raise InvalidConfig(
                f"the env's reset() does not take the market the {name} adapter's reset_options gives it: "
                f"{type(exc).__name__}: {exc}. Make reset() take {sorted(options)} (docs/adapters.md, \"An env that "
                "takes its data in its constructor\"; an env on the old gym API gets them as keyword arguments), or "
                "return None from the adapter's market_length and reset_options to check the env on its own data."
            ) from exc
        except Exception:
            return
        if ep.error is not None or not ep.trace.records:
            return
        meta, r = ep.trace.meta, ep.trace.records[0]
        if r.legs is not None and "legs" in meta.supplies:
            seen.append(tuple((leg.price, leg.next_price) for leg in r.legs))
        elif {"price", "next_price"} <= meta.supplies:
            seen.append(((r.price, r.next_price),))
        else:
            return
    if seen[0] == seen[1]:
        name = getattr(adapter, "name", type(adapter).__name__)
        shown = ", ".join(f"{meta.money(p)} to {meta.money(q)}" for p, q in seen[0])
        raise InvalidConfig(
            f"the env traded the same prices ({shown} on its first step) on two markets the {name} adapter's "
            f"reset_options gave it, one rising where the other falls: its reset() ignores options "
            f"{sorted(options)}, and every generated market would be reported as checked while the env traded its "
            "own data. Make reset() trade the market it is given (docs/adapters.md, \"An env that takes its data in "
            "its constructor\"), or return None from the adapter's market_length and reset_options to check the env "
            "on its own data."
        )
