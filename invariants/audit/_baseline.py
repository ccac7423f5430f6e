"""What a reward audit compares against: a baseline given as a reward function, a factory, or a config.

``audit_reward(new, baseline=old)`` answers "what did this reward change do?". The
old reward may be given as what it is in a team's code:

- a scenario name or file, a :class:`~tradeguard.env.Scenario`, a
  :class:`~tradeguard.env.RewardConfig`, an ``(EnvConfig, RewardConfig)`` pair;
- a reward function on the same env: a :class:`~tradeguard.env.CustomComponent` (or
  several), which replaces the audited reward's custom components;
- a factory: a zero-argument callable returning tradeguard's ``TradingEnv`` (its
  scenario is used) or, for the black-box audit, any env;
- any of those as ``"module:name"`` (what ``--baseline`` takes on the command line).

This module turns each into what the audit compares: a :class:`~tradeguard.env.Scenario`
for tradeguard's own env, or the factory itself for the black-box audit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeguard.env import (
    CustomComponent,
    EnvConfig,
    RewardConfig,
    Scenario,
    load_component,
    scenario_names,
)
from tradeguard.errors import InvalidConfig

if TYPE_CHECKING:
    from tradeguard.invariants.audit._rollout import Rollout

BaselineSpec = (
    Scenario
    | str
    | RewardConfig
    | tuple[EnvConfig, RewardConfig]
    | CustomComponent
    | Sequence[CustomComponent]
    | Callable[[], Any]
)
"""What ``baseline=`` takes: a scenario name, file or object, a reward config (or pair), a
reward component (or several) on the same env, an env factory, or ``"module:name"`` of one."""

__all__ = [
    "BaselineSpec",
    "ChangedOptimum",
    "changed_optima",
    "format_changed",
    "is_env_factory",
    "load_spec",
    "resolve_baseline",
    "scenario_of_factory",
]


def is_env_factory(value: Any) -> bool:
    """Whether ``value`` is a zero-argument env factory rather than a config, a name or a component."""
    return callable(value) and not isinstance(
        value, (str, Scenario, RewardConfig, EnvConfig, CustomComponent, tuple, type(None))
    )


def load_spec(spec: str, *, option: str = "baseline") -> Any:
    """The object ``"module:name"`` names (the module imported from the path, then the current directory).

    Raises:
        InvalidConfig: not ``module:name``, or the module or name is missing.
    """
    from tradeguard._specs import load_spec as load

    return load(spec, where=option)


def scenario_of_factory(factory: Callable[[], Any], *, what: str = "the factory") -> Scenario | None:
    """The scenario of the env ``factory`` makes when it is tradeguard's own ``TradingEnv``
    (the exact oracle can then audit it); ``None`` for any other env.

    Raises:
        InvalidConfig: the factory needs arguments.
    """
    try:
        env = factory()
    except TypeError as exc:
        if "argument" in str(exc):
            raise InvalidConfig(
                f"{what} {getattr(factory, '__qualname__', factory)!r} must be callable with no arguments and "
                f"return an env; calling it raised TypeError: {exc}. Wrap it: lambda: make_env(...)."
            ) from None
        raise
    base = getattr(env, "unwrapped", env)
    scenario = getattr(base, "scenario", None)
    if isinstance(scenario, Scenario) and hasattr(base, "trace_meta"):
        name = getattr(factory, "__qualname__", None) or "factory"
        return dataclasses.replace(scenario, name=name if scenario.name == "custom" else scenario.name)
    close = getattr(env, "close", None)
    if callable(close):
        close()
    return None


def resolve_baseline(baseline: Any, target: Scenario) -> Any:
    """``baseline`` as something the oracle audit's resolver takes (a Scenario, a name, a file...).

    Custom components replace ``target``'s custom components (the same env, the old reward
    function); ``"module:name"`` is imported; a factory of tradeguard's env gives its scenario.

    Args:
        baseline: What the user gave (see the module docstring).
        target: The audited scenario.

    Returns:
        A :class:`~tradeguard.env.Scenario`, or ``baseline`` unchanged when it is already a
        scenario name, file, Scenario, RewardConfig or pair.

    Raises:
        InvalidConfig: a spec that does not import, or a factory of an env that is not
            tradeguard's (audit it with the black-box audit: ``audit_reward(make_env, adapter=...)``).

    Example:
        >>> from tradeguard.env import load_scenario, reward_component
        >>> old = reward_component(name="old_bonus")(lambda step: 0.0)
        >>> resolve_baseline(old, load_scenario("default")).reward.custom_components
        (CustomComponent('old_bonus'),)
    """
    if isinstance(baseline, str) and _is_spec(baseline):
        obj = load_spec(baseline)
        if callable(obj) and not isinstance(obj, (type, CustomComponent)) and not _takes_a_step(obj):
            baseline = obj  # a factory
        elif callable(obj) and not isinstance(obj, type) and not isinstance(obj, CustomComponent):
            baseline = load_component(baseline, where="baseline")
        else:
            baseline = obj
    if isinstance(baseline, CustomComponent) or (
        isinstance(baseline, (list, tuple))
        and baseline
        and all(isinstance(c, CustomComponent) for c in baseline)
    ):
        components = (baseline,) if isinstance(baseline, CustomComponent) else tuple(baseline)
        return dataclasses.replace(
            target,
            name=f"{target.name} with {', '.join(c.name for c in components)}",
            reward=dataclasses.replace(target.reward, custom_components=components),
        )
    if is_env_factory(baseline):
        scenario = scenario_of_factory(baseline, what="baseline")
        if scenario is None:
            raise InvalidConfig(
                "the baseline factory makes an env that is not tradeguard's TradingEnv, while the audited "
                "reward is tradeguard's: a baseline comparison needs the same env. Audit both with the "
                "black-box audit: audit_reward(make_env, adapter=..., baseline=make_old_env)."
            )
        return scenario
    return baseline


def _is_spec(text: str) -> bool:
    """``module:name``, not a shipped scenario or a file."""
    return ":" in text and text not in scenario_names() and not Path(text).is_file()


def _takes_a_step(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` takes arguments (a reward function of the step), not none (a factory)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangedOptimum:
    """One market on which the reward change changed the optimal behaviour.

    Attributes:
        prices: The market, in minor units.
        actions: The new reward's optimal sequence (action names; rejected ones marked).
        baseline_actions: The baseline's optimal sequence.
        pnl: The PnL of the new optimum, in minor units.
        baseline_pnl: The PnL of the baseline's optimum.
    """

    prices: tuple[int, ...]
    actions: tuple[str, ...]
    baseline_actions: tuple[str, ...]
    pnl: int
    baseline_pnl: int

    @property
    def pnl_change(self) -> int:
        """What the change did to the optimum's PnL (minor units; negative: it now makes less)."""
        return self.pnl - self.baseline_pnl

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {**dataclasses.asdict(self), "prices": list(self.prices), "actions": list(self.actions),
                "baseline_actions": list(self.baseline_actions), "pnl_change": self.pnl_change}


def changed_optima(pairs: Iterable[tuple[Rollout, Rollout]]) -> tuple[ChangedOptimum, ...]:
    """The markets of ``(new optimum, baseline optimum)`` pairs on which the sequences differ,
    those where the change costs the most money first."""
    out = [
        ChangedOptimum(
            prices=new.prices,
            actions=tuple(new.labels()),
            baseline_actions=tuple(old.labels()),
            pnl=new.pnl,
            baseline_pnl=old.pnl,
        )
        for new, old in pairs
        if new.predicted != old.predicted
    ]
    out.sort(key=lambda c: (c.pnl_change, len(c.prices), c.prices))
    return tuple(out)


def format_changed(changed: Sequence[ChangedOptimum], unit: float, *, limit: int = 10) -> list[str]:
    """Up to ``limit`` changed markets, one line each: the prices and both optima with their PnL."""
    if not changed:
        return []
    lines = [f"  markets where the optimum changed, by what the change did to its PnL (costliest first; {min(limit, len(changed))} of {len(changed)}):"]
    for c in changed[:limit]:
        prices = " ".join(f"{p * unit:,.2f}" for p in c.prices)
        lines.append(f"    {prices}")
        lines.append(f"      now      {' '.join(c.actions):<60} PnL {c.pnl * unit:+,.2f}")
        lines.append(f"      baseline {' '.join(c.baseline_actions):<60} PnL {c.baseline_pnl * unit:+,.2f}")
    if len(changed) > limit:
        lines.append(f"    ... and {len(changed) - limit} more (--json lists them all)")
    return lines
