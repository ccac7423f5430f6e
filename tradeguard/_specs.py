"""``MODULE:NAME`` specs, imported as the command line imports them: from the Python path,
then from the current directory (as ``python -m`` and pytest do).

Shared by scenario files (``custom_components = ["my_rewards:sharpe"]``), the reward audit's
``--baseline`` and ``--env``: one loader, one set of messages.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from tradeguard.errors import InvalidConfig

__all__ = ["load_spec"]


def load_spec(spec: str, *, where: str) -> Any:
    """The object ``"module:name"`` names (``name`` may be dotted: ``module:Class.attr``).

    Args:
        spec: ``"module:name"``.
        where: What the spec was given as, for messages (``"--baseline"``, ``"custom_components"``).

    Raises:
        InvalidConfig: not ``module:name``, the module cannot be imported (with where it was
            looked for), or it has no such name (with the closest one).
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidConfig(
            f"{where}: {spec!r} is not 'module:name'; expected e.g. 'my_rewards:sharpe_bonus'."
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name.split(".")[0] and exc.name != module_name:
            raise InvalidConfig(
                f"{where}: importing {module_name!r} for {spec!r} failed: it imports {exc.name!r}, which is not "
                "installed."
            ) from None
        module = _import_from_cwd(module_name, spec, where)
    except Exception as exc:
        raise InvalidConfig(
            f"{where}: cannot import {module_name!r} for {spec!r}: {type(exc).__name__}: {exc}."
        ) from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            from tradeguard._validation import suggest

            names = [n for n in vars(module) if not n.startswith("__")]
            raise InvalidConfig(
                f"{where}: module {module_name} has no {attr!r} (from {spec!r}).{suggest(part, names)}"
            )
        target = getattr(target, part)
    return target


def _import_from_cwd(module_name: str, spec: str, where: str) -> Any:
    cwd = os.getcwd()
    if cwd in sys.path:
        raise InvalidConfig(
            f"{where}: no module named {module_name!r} (from {spec!r}), on the Python path or in the current "
            f"directory ({cwd}). Run from the directory that holds it, or add that directory to PYTHONPATH."
        )
    sys.path.insert(0, cwd)
    try:
        importlib.invalidate_caches()
        return importlib.import_module(module_name)
    except ModuleNotFoundError:
        raise InvalidConfig(
            f"{where}: no module named {module_name!r} (from {spec!r}), on the Python path or in the current "
            f"directory ({cwd}). Run from the directory that holds it, or add that directory to PYTHONPATH."
        ) from None
    finally:
        sys.path.remove(cwd)


