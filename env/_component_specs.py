"""Custom reward components by name: ``custom_components`` as a scenario file gives them.

``"module:function"`` strings and tables ``{function = "module:function", weight = 0.5}``
become :class:`~tradeguard.env.CustomComponent` objects; the module is imported from the
Python path, then from the current directory (``tradeguard._specs.load_spec``, the loader the
reward audit's ``--env`` and ``--baseline`` use too).

Example:
    >>> [c.name for c in parse_components(["tradeguard.env._component_specs:_example_flat_bonus"])]
    ['_example_flat_bonus']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tradeguard._specs import load_spec
from tradeguard.env._components import CustomComponent, Step, _fn_name, _short, reward_component
from tradeguard.errors import InvalidConfig

__all__ = ["load_component", "parse_components"]


def parse_components(value: Any, *, where: str = "custom_components") -> tuple[CustomComponent, ...]:
    """``custom_components`` as given (components, ``"module:function"`` strings, or tables
    ``{"function": "module:function", "weight": 0.5, "name": "..."}``) as a tuple of components.

    Raises:
        InvalidConfig: a value of another type, a spec that does not import, or two
            components with the same name.
    """
    if isinstance(value, (str, bytes, CustomComponent, Mapping)) or not isinstance(value, Iterable):
        raise InvalidConfig(
            f"{where}={_short(value)} must be a list of components: CustomComponent objects, "
            "'module:function' names, or tables {function = 'module:function', weight = 0.5}."
        )
    out: list[CustomComponent] = []
    for item in value:
        out.append(_one(item, where))
    names = [c.name for c in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidConfig(
            f"{where} has two components named {dup[0]!r}; every component needs its own name "
            "(give one of them name=...)."
        )
    return tuple(out)


def _one(item: Any, where: str) -> CustomComponent:
    if isinstance(item, CustomComponent):
        return item
    if isinstance(item, str):
        return load_component(item, where=where)
    if isinstance(item, Mapping):
        unknown = sorted(set(item) - {"function", "weight", "name"})
        if unknown or "function" not in item:
            raise InvalidConfig(
                f"{where} entry {dict(item)!r}: expected the keys function (required), weight and name"
                + (f"; unknown: {', '.join(map(repr, unknown))}." if unknown else "; function is missing.")
            )
        comp = load_component(str(item["function"]), where=where)
        changes: dict[str, Any] = {}
        if "weight" in item:
            changes["weight"] = item["weight"]
        if "name" in item:
            changes["name"] = item["name"]
        if not changes:
            return comp
        return CustomComponent(
            name=changes.get("name", comp.name),
            function=comp.function,
            weight=changes.get("weight", comp.weight),
            history=comp.history,
            potential_based=comp.potential_based,
            bounds=comp.bounds,
            remaining=comp.remaining,
        )
    if callable(item):
        raise InvalidConfig(
            f"{where} entry {_fn_name(item)} is a plain function; wrap it as a component first: "
            "reward_component(fn), or @reward_component(history=..., bounds=...) on its definition."
        )
    raise InvalidConfig(
        f"{where} entry {_short(item)} ({type(item).__name__}) is not a component; expected a "
        "CustomComponent, a 'module:function' name, or a table {function = 'module:function', weight = 0.5}."
    )


def load_component(spec: str, *, where: str = "custom_components") -> CustomComponent:
    """The component ``"module:name"`` names: a :class:`CustomComponent`, or a plain function
    ``fn(step) -> float`` (then a component without history, not potential-based, unbounded).

    The module is imported from the Python path, then from the current directory.

    Raises:
        InvalidConfig: not ``module:name``, the module or name is missing, or the object is
            neither a component nor a function.

    Example:
        >>> load_component("tradeguard.env._component_specs:_example_flat_bonus").name
        '_example_flat_bonus'
    """
    obj = load_spec(spec, where=where)
    if isinstance(obj, CustomComponent):
        return obj
    if callable(obj) and not isinstance(obj, type):
        component: CustomComponent = reward_component(obj)
        return component
    raise InvalidConfig(
        f"{where}: {spec!r} is a {type(obj).__name__}, not a reward component; expected a function "
        "fn(step) -> float or a component made with @reward_component."
    )


@reward_component(bounds=(0.0, 0.0))
def _example_flat_bonus(step: Step) -> float:
    """A component that pays nothing: the example :func:`load_component` loads."""
    return 0.0
