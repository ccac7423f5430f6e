"""docs/continuous.md runs as written: its env, its adapter (at most 40 lines), its check."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

DOC = Path(__file__).resolve().parents[1] / "docs" / "continuous.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
NS: dict[str, Any] = {}
exec(compile(BLOCKS[0] + BLOCKS[1], str(DOC), "exec"), NS)


def test_the_documented_adapter_is_at_most_40_lines() -> None:
    assert len(BLOCKS[1].strip().splitlines()) <= 40


def test_the_documented_check_passes_with_the_money_invariants_running() -> None:
    ns = dict(NS)
    exec(compile(BLOCKS[2], str(DOC), "exec"), ns)
    statuses = {r.invariant.id: r.status for r in ns["report"].results}
    for inv in ("executed-within-requested", "equity-identity", "self-financing", "fees-match-schedule",
                "no-negative-position-or-cash", "reward-consistent-with-pnl", "action-range-enforced"):
        assert statuses[inv] == "pass", (inv, statuses[inv])


def test_the_documented_env_broken_one_line_at_a_time_is_caught() -> None:
    from tradeguard.invariants import check_trading_env

    class OverFills(NS["WeightsEnv"]):  # type: ignore[misc, name-defined]
        def step(self, action: Any) -> Any:
            obs, reward, terminated, truncated, info = super().step(action)
            extra = 0.01 * np.maximum(info["trade"], 0.0)  # buys fill 1% more than ordered
            self.units = self.units + extra
            self.cash -= float(extra @ self.prices[self.t - 1])
            info["trade"] = info["trade"] + extra
            return obs, reward, terminated, truncated, info

    class NoContainsCheck(NS["WeightsEnv"]):  # type: ignore[misc, name-defined]
        def step(self, action: Any) -> Any:
            self.action_space = type(self.action_space)(-np.inf, np.inf, (2,), np.float64)  # takes anything
            try:
                return super().step(np.nan_to_num(np.asarray(action, dtype=float).reshape(-1)[:2]))
            finally:
                self.action_space = type(self.action_space)(0.0, 1.0, (2,), np.float64)

    for env, invariant in ((OverFills, "executed-within-requested"), (NoContainsCheck, "action-range-enforced")):
        report = check_trading_env(env, adapter=NS["WeightsAdapter"](), only=[invariant], examples=30, max_steps=8,
                                   seed=0, database=None)
        (result,) = report.results
        assert result.status == "fail", report.format()
        assert result.counterexample is not None and len(result.counterexample.actions) <= 10
