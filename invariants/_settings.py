"""Settings fuzzing: the gate draws the env's constructor keyword arguments with its episodes.

A strategy of settings (``SearchStrategy[dict[str, Any]]``) comes from the caller
(``check_trading_env(..., settings=st.fixed_dictionaries(...))``) or from the adapter's
optional ``settings(env)`` hook (``settings="adapter"``). Each example then carries the
settings it was drawn with; the env is built as ``make_env(**settings)``, and a
counterexample names them. Hypothesis shrinks them with the actions: a bug that lives in
one setting is reported with that setting alone.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Literal

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from tradeguard.errors import InvalidConfig

__all__ = ["SettingsSpec", "declared_settings", "settings_call", "settings_json"]

SettingsSpec = SearchStrategy[dict[str, Any]] | Literal["adapter"] | None
"""What ``check_trading_env(settings=...)`` takes: a strategy of constructor kwargs, ``"adapter"``
(the adapter's declared ones, if it declares any), or ``None`` (no settings drawn)."""


def check_settings_spec(settings: Any) -> None:
    """Refuse a ``settings=`` that is none of a strategy, ``"adapter"`` and ``None``."""
    if settings is None or settings == "adapter" or isinstance(settings, SearchStrategy):
        return
    if isinstance(settings, Mapping):
        hint = (" For fixed keyword arguments, bind them in the factory (functools.partial(make_env, **kwargs)); "
                "to draw them, give st.fixed_dictionaries({'fee': st.floats(0, 0.01)}).")
    else:
        hint = ""
    raise InvalidConfig(
        f"settings={settings!r} (a {type(settings).__name__}); expected a Hypothesis strategy of the env "
        "factory's keyword arguments (e.g. st.fixed_dictionaries({'trading_fees': st.sampled_from([0, 0.01])})), "
        f"'adapter' (the adapter's declared settings), or None (no settings drawn).{hint}"
    )


def declared_settings(adapter: Any, env: Any) -> SearchStrategy[dict[str, Any]] | None:
    """The settings ``adapter`` declares for ``env`` (the env built with no drawn settings),
    through its optional ``settings(env)`` hook; ``None`` when it has none.

    Raises:
        InvalidConfig: the hook returned something other than a strategy or ``None``.
    """
    hook = getattr(adapter, "settings", None)
    if not callable(hook):
        return None
    declared = hook(env)
    if declared is None or isinstance(declared, SearchStrategy):
        return declared
    name = getattr(adapter, "name", None) or type(adapter).__name__
    raise InvalidConfig(
        f"the {name} adapter's settings(env) returned a {type(declared).__name__}; expected a Hypothesis "
        "strategy of the env factory's keyword arguments (e.g. st.fixed_dictionaries(...)), or None for "
        "none (docs/adapters.md, 'Settings fuzzing')."
    )


def check_factory_takes_kwargs(make_env: Any, factory: str) -> None:
    """Refuse, before any search, a factory that takes no keyword arguments at all."""
    try:
        signature = inspect.signature(make_env)
    except (TypeError, ValueError):  # no signature to read: each call's bind will tell
        return
    if not any(p.kind in (p.VAR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
               for p in signature.parameters.values()):
        raise InvalidConfig(
            f"settings are drawn, but the env factory {factory} takes no keyword arguments (signature "
            f"{signature}): each example builds its env as make_env(**settings). Give a factory that takes "
            "them: def make_env(**kwargs): return MyEnv(**kwargs), a class, or "
            "functools.partial(MyEnv, data=...) (not lambda: MyEnv())."
        )


class SettingsRefused(InvalidConfig):
    """The env factory refused drawn settings (``TypeError: unexpected keyword argument``):
    the settings strategy is wrong, not the env. The gate stops with it rather than count
    every example as a crash of the env and the rest as passes that built no env."""


def _refusing(make_env: Callable[..., Any], settings: Mapping[str, Any], factory: str) -> Callable[[], Any]:
    """``make_env(**settings)``; a refusal of one of the drawn keywords raises SettingsRefused."""
    drawn = dict(settings)

    def build() -> Any:
        try:
            return make_env(**drawn)
        except TypeError as exc:
            said = str(exc)
            refused = [k for k in drawn if f"unexpected keyword argument '{k}'" in said]
            if not refused:
                raise  # the env's own TypeError: a crash of the env, reported as such
            raise SettingsRefused(
                f"{factory}(**{drawn!r}) raised TypeError: {said}. The settings strategy drew "
                f"{', '.join(repr(k) for k in refused)}, which the env does not take: draw only keyword "
                "arguments the env's constructor accepts (docs/adapters.md, \"Settings fuzzing\")."
            ) from None

    return build


class SettingsFactories:
    """The env factory of each drawn settings: ``make_env`` bound to them, checked, isolated.

    Args:
        make_env: The caller's factory (it must accept the settings as keyword arguments).
        guard: Wraps a zero-argument factory into the gate's isolated one.
        factory: The factory's name, for messages.
    """

    def __init__(self, make_env: Callable[..., Any], guard: Callable[[Callable[[], Any]], Callable[[], Any]],
                 factory: str) -> None:
        self.make_env = make_env
        self.guard = guard
        self.factory = factory
        try:
            self.signature: inspect.Signature | None = inspect.signature(make_env)
        except (TypeError, ValueError):
            self.signature = None
        self._made: dict[str, Callable[[], Any]] = {}

    def __call__(self, settings: Mapping[str, Any]) -> Callable[[], Any]:
        key = repr(sorted(settings.items(), key=lambda kv: kv[0])) if isinstance(settings, Mapping) else ""
        made = self._made.get(key)
        if made is None:
            self._check(settings)
            made = self.guard(_refusing(self.make_env, settings, self.factory))
            if len(self._made) < 1024:
                self._made[key] = made
        return made

    def _check(self, settings: Any) -> None:
        if not isinstance(settings, Mapping) or not all(isinstance(k, str) for k in settings):
            raise InvalidConfig(
                f"the settings strategy drew {settings!r}; expected a dict of the env factory's keyword "
                "arguments by name (e.g. {'trading_fees': 0.01}). Build it with st.fixed_dictionaries(...)."
            )
        if self.signature is None:
            return
        try:
            self.signature.bind(**settings)
        except TypeError as exc:
            raise InvalidConfig(
                f"the env factory {self.factory} cannot take the drawn settings {dict(settings)!r} as keyword "
                f"arguments ({exc}; its signature is {self.signature}). Give a factory that takes them, e.g. "
                "def make_env(**kwargs): return MyEnv(**kwargs) or functools.partial(MyEnv, data=...), or "
                "draw only the keyword arguments it has."
            ) from None


def with_settings(examples: SearchStrategy[Any], settings: SearchStrategy[dict[str, Any]],
                  make_env: Any = None) -> SearchStrategy[Any]:
    """The gate's examples, each carrying settings drawn from ``settings`` (shrunk with it).

    The keyword arguments ``make_env`` binds itself (a ``functools.partial``, as ``tradeguard
    check --env-kwargs`` builds) are fixed: drawn settings never override them.
    """
    fixed = frozenset(make_env.keywords) if isinstance(make_env, functools.partial) else frozenset()
    if fixed:
        settings = settings.map(functools.partial(_drop, keys=fixed))
    return st.builds(_carry, examples, settings)


def _drop(settings: Any, keys: frozenset[str]) -> Any:
    if not isinstance(settings, Mapping):
        return settings  # refused, with what was drawn, when its env is built
    return {k: v for k, v in settings.items() if k not in keys}


def _carry(example: Any, settings: dict[str, Any]) -> Any:
    return replace(example, settings=settings)


def settings_json(settings: Mapping[str, Any]) -> str | None:
    """``settings`` as a JSON object (for ``--env-kwargs``), or ``None`` when a value has no JSON form."""
    try:
        return json.dumps(dict(settings), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return None


def settings_call(settings: Mapping[str, Any]) -> str:
    """How a counterexample's env is built, in Python: ``make_env(**{'trading_fees': 0.01})``."""
    return f"make_env(**{dict(sorted(settings.items()))!r})" if settings else "make_env() (no setting matters)"


def flat_trimmed(prices: Any) -> tuple[int, ...]:
    """A generated market's prices up to where it stays flat (the gate holds its markets flat
    after their last price, and a replay pads them the same way: nothing is lost)."""
    end = len(prices)
    while end > 1 and prices[end - 2] == prices[end - 1]:
        end -= 1
    return tuple(int(p) for p in prices[:end])
