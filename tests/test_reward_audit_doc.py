"""docs/reward-audit.md is real: its Python blocks run, in order, in one namespace.

The walk-through (a Sharpe bonus with a bug, the audit catching it, the fix, the
baseline comparison) asserts what it shows, so a report that drifts fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "reward-audit.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_document_has_its_walk_through() -> None:
    text = "\n".join(BLOCKS)
    assert "def sharpe_bonus(step: Step, hist)" in text and "def sharpe_bonus_fixed(step: Step, hist)" in text
    assert "baseline=sharpe_bonus" in text and "test_the_sharpe_bonus_is_sound()" in text


def test_every_python_block_runs_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    ns: dict[str, Any] = {"__name__": "reward_audit_md"}
    for i, block in enumerate(BLOCKS):
        try:
            exec(compile(block, f"{DOC}:block{i}", "exec"), ns)
        except Exception as exc:  # name the block that broke
            raise AssertionError(f"docs/reward-audit.md python block {i} failed: {exc!r}\n{block}") from exc
    # The walk-through's last report is the fix audited against the buggy component.
    report = ns["report"]
    assert report.baseline is not None and report.baseline.markets_changed > 0
    assert "rejection-in-optimum" in report.baseline.baseline_kinds
