"""Every test that needs the rl extra says so.

``.ci/run`` runs the suite a second time on the newest Python with ``--without-rl``
(torch has no CPU wheel there), which deselects the tests marked ``requires_rl``. A test
that imports stable-baselines3, sb3-contrib or torch without the mark
fails there with ``ModuleNotFoundError``, and only there. This reads the test sources and
names any such test, so the mistake fails here, on every interpreter. (``tradeguard.rl``
itself imports without the extra: it checks its arguments before it loads stable-baselines3.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
RL_MODULES = ("stable_baselines3", "sb3_contrib", "torch")


def _imports_rl(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        names: list[str] = []
        if isinstance(sub, ast.Import):
            names = [a.name for a in sub.names]
        elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
            names = [sub.module]
        if any(n == m or n.startswith(m + ".") for n in names for m in RL_MODULES):
            return True
    return False


def unmarked_rl_tests(source: str) -> list[str]:
    """The test functions in ``source`` that import an RL package and carry no ``requires_rl``
    mark: not on the function, its parameters, or the module (``pytestmark``)."""
    tree = ast.parse(source)
    for stmt in tree.body:
        if (isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in stmt.targets)
                and "requires_rl" in ast.unparse(stmt.value)):
            return []
    found = []
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name.startswith("test"):
            marked = any("requires_rl" in ast.unparse(d) for d in stmt.decorator_list)
            if not marked and _imports_rl(stmt):
                found.append(stmt.name)
    return found


@pytest.mark.parametrize("path", sorted(TESTS.glob("test_*.py")), ids=lambda p: p.name)
def test_every_test_that_imports_rl_code_is_marked_requires_rl(path: Path) -> None:
    missing = unmarked_rl_tests(path.read_text(encoding="utf-8"))
    assert not missing, (
        f"{path.name}: {', '.join(missing)} import(s) the rl extra without @pytest.mark.requires_rl; "
        "add the mark, or --without-rl runs fail with ModuleNotFoundError"
    )


UNMARKED = """
import pytest

@pytest.mark.slow
def test_train():
    from stable_baselines3 import PPO
"""


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (UNMARKED, ["test_train"]),
        (UNMARKED.replace("    from stable_baselines3 import PPO", "    import torch.nn"), ["test_train"]),
        (UNMARKED.replace("from stable_baselines3 import PPO", "from sb3_contrib import MaskablePPO"), ["test_train"]),
        (UNMARKED.replace("@pytest.mark.slow", "@pytest.mark.slow\n@pytest.mark.requires_rl"), []),
        (UNMARKED.replace("@pytest.mark.slow", '@pytest.mark.parametrize("x", [pytest.param(1, marks=pytest.mark.requires_rl)])'), []),
        ("import pytest\npytestmark = [pytest.mark.slow, pytest.mark.requires_rl]\n" + UNMARKED, []),
        (UNMARKED.replace("from stable_baselines3 import PPO", "import torchvision_like"), []),
        (UNMARKED.replace("from stable_baselines3 import PPO", "import numpy"), []),
    ],
    ids=["sb3", "torch-submodule", "sb3-contrib", "marked", "param-mark", "module-mark", "similar-name", "no-rl"],
)
def test_the_marker_rule_flags_an_unmarked_rl_import_and_nothing_else(source: str, expected: list[str]) -> None:
    assert unmarked_rl_tests(source) == expected
