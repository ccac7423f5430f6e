"""The house rules, held by tests: what each package may import, and what it shows.

- ``tradeguard.invariants`` reads traces only: importing it loads neither tradeguard's own
  env nor stable-baselines3 nor torch (its ``audit`` and ``peers`` subpackages, which do,
  are imported only when asked for).
- ``tradeguard.env`` knows nothing of the invariants.
- No library module imports another package's private (underscore) names: a module may
  use the private names of its own package and of the packages that contain it
  (``tradeguard._validation`` serves every subpackage), never a sibling's.
- Every package lists its public names in a sorted ``__all__``, and each is really there.
- No library module is over :data:`MAX_MODULE_LINES` lines: past that, split it into
  modules with names (a newcomer should know where a change goes).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"tradeguard": "tradeguard", "env": "tradeguard.env", "invariants": "tradeguard.invariants",
           "strategies": "tradeguard.strategies"}
PACKAGES = ("tradeguard", "tradeguard.env", "tradeguard.invariants", "tradeguard.invariants.audit",
            "tradeguard.invariants.peers", "tradeguard.strategies", "tradeguard.rl", "tradeguard.limits",
            "tradeguard.mutate",
            "tradeguard.trace", "tradeguard.errors")


def library_modules() -> dict[str, Path]:
    """Every library module's dotted name, as installed, and its file."""
    found: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if folder == "tradeguard" and parts[0] in ("env", "invariants", "strategies"):
                continue  # not a real folder here; mapped by package-dir
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def owner_of_private(dotted: str) -> str | None:
    """The package whose private name ``dotted`` is: the part before its first ``_name``."""
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) for every tradeguard module or name that ``path`` imports."""
    tree = ast.parse(path.read_text(), str(path))
    package = package_of(module, path)
    seen: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            seen += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            seen += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return [(line, name) for line, name in seen if name.startswith("tradeguard")]


def test_no_module_imports_another_packages_private_names() -> None:
    offenders = []
    for module, path in library_modules().items():
        package = package_of(module, path)
        for line, name in imports(path, module):
            owner = owner_of_private(name)
            if owner is not None and not (package == owner or package.startswith(owner + ".")):
                offenders.append(f"{path.relative_to(ROOT)}:{line} ({package}) imports {name} (private to {owner})")
    assert offenders == [], "\n".join(offenders)


def test_the_private_import_rule_flags_a_sibling_and_allows_a_parent() -> None:
    """The rule above, on the cases it decides (so that it cannot pass by matching nothing)."""
    assert owner_of_private("tradeguard.invariants._gate.check_trading_env") == "tradeguard.invariants"
    assert owner_of_private("tradeguard._validation.check_int") == "tradeguard"
    assert owner_of_private("tradeguard.invariants.check_trace") is None
    assert owner_of_private("tradeguard.invariants.audit._oracle.Oracle") == "tradeguard.invariants.audit"
    modules = library_modules()
    assert "tradeguard._cli._check" in modules and "tradeguard.invariants.audit._oracle" in modules
    assert len([m for m in modules if m.startswith("tradeguard.env.")]) >= 5


def test_env_knows_nothing_of_the_invariants() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for module, path in library_modules().items()
        if module.startswith("tradeguard.env")
        for line, name in imports(path, module)
        if name.startswith("tradeguard.invariants")
    ]
    assert offenders == []


def loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_importing_the_invariants_loads_neither_env_nor_training_code() -> None:
    loaded = loaded_after("import tradeguard.invariants")
    heavy = {"tradeguard.env", "tradeguard.invariants.audit", "tradeguard.invariants.peers",
             "stable_baselines3", "sb3_contrib", "torch", "gym_anytrading", "gym_trading_env", "pandas"}
    assert loaded & heavy == set()
    assert "tradeguard.invariants._gate" in loaded  # the probe really ran the import


def test_the_subpackages_load_when_asked_for() -> None:
    loaded = loaded_after("import tradeguard.invariants as inv; inv.audit.audit_reward")
    assert {"tradeguard.invariants.audit", "tradeguard.env"} <= loaded
    assert "torch" not in loaded


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_are_listed_sorted_and_exist(name: str) -> None:
    module = importlib.import_module(name)
    listed = list(module.__all__)
    # isort's order, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions.
    assert listed == sorted(listed, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)), (
        f"{name}.__all__ is not sorted"
    )
    assert len(set(listed)) == len(listed)
    rl_installed = importlib.util.find_spec("stable_baselines3") is not None
    missing = []
    for n in listed:
        try:
            getattr(module, n)
        except AttributeError:
            missing.append(n)
        except Exception:
            # A lazy name of the rl extra (TradingVecEnv, the SB3 callbacks): it exists only where
            # stable-baselines3 is installed, and is checked there.
            if rl_installed:
                raise
    assert missing == []


MAX_MODULE_LINES = 800
"""The longest a library module may be."""


def long_modules(limit: int = MAX_MODULE_LINES) -> dict[str, int]:
    """Every library module (env/, invariants/, tradeguard/, strategies/) over ``limit`` lines."""
    return {
        str(path.relative_to(ROOT)): lines
        for path in library_modules().values()
        if (lines := len(path.read_text().splitlines())) > limit
    }


def test_no_library_module_is_over_800_lines() -> None:
    too_long = long_modules()
    assert too_long == {}, f"split these into modules with names: {too_long}"


def test_the_length_rule_sees_every_folder_and_counts_lines() -> None:
    """The rule above on the cases it decides, so that it cannot pass by reading nothing."""
    folders = {Path(name).parts[0] for name in long_modules(0)}
    assert folders == {"env", "invariants", "tradeguard", "strategies"}
    assert long_modules(0)["invariants/_gate.py"] == len((ROOT / "invariants/_gate.py").read_text().splitlines())
