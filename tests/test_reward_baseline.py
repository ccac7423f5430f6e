"""Baselines for reward changes: a reward function, a factory or a config, from Python and the CLI.

"Fuzz every reward change before training": the audit of the new reward is compared
with the one it replaces, the report lists every market on which the optimal behaviour
changed and the findings that are new. A change that changes nothing must report
nothing (the healthy twin of every check below).
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from custom_rewards import account_sharpe, signal_sharpe

from tradeguard._cli import main
from tradeguard.env import EnvConfig, Scenario, TradingEnv, load_scenario
from tradeguard.errors import InvalidConfig, InvariantViolation
from tradeguard.invariants.audit import RewardAuditReport, assert_reward_sound, audit_reward

FAST: dict[str, Any] = {"budget": 60.0, "max_examples": 40, "horizon": (2, 4), "seed": 0}


def _with(component: Any, base: str = "v10") -> Scenario:
    sc = load_scenario(base)
    return dataclasses.replace(sc, name=component.name, reward=dataclasses.replace(sc.reward, custom_components=(component,)))


@pytest.fixture(scope="module")
def bug_vs_fix() -> RewardAuditReport:
    """The buggy Sharpe component audited with the fixed one as its baseline."""
    return audit_reward(_with(signal_sharpe), baseline=account_sharpe, **FAST)


def test_a_component_baseline_lists_changed_markets_and_new_findings(bug_vs_fix: RewardAuditReport) -> None:
    report = bug_vs_fix
    b = report.baseline
    assert b is not None and not report.budget_exhausted
    assert b.baseline == "signal_sharpe with account_sharpe"
    assert {"rejection-in-optimum", "invalid-not-worse-than-hold"} <= set(b.new_findings)
    assert b.resolved_findings == ()
    assert b.markets_changed == len(b.changed_markets) > 0
    worst = b.changed_markets[0]
    assert worst.pnl_change == min(c.pnl_change for c in b.changed_markets)
    assert worst.actions != worst.baseline_actions
    assert any("(rejected:" in a for c in b.changed_markets for a in c.actions)
    text = report.format()
    assert "compared with baseline signal_sharpe with account_sharpe" in text
    assert "markets where the optimum changed" in text and "baseline " in text


def test_the_fix_against_the_bug_resolves_the_findings_and_adds_none() -> None:
    # (Without allow=, never-close-optimum would fail the gate, as the buggy version fails it below.)
    report = assert_reward_sound(_with(account_sharpe), baseline=signal_sharpe, allow=["never-close-optimum"], **FAST)
    b = report.baseline
    assert b is not None
    assert b.new_findings == ()
    assert b.resolved_findings == ("rejection-in-optimum", "invalid-not-worse-than-hold")
    # What is left is what a Sharpe term is: it pays for smooth gains, so on some market
    # holding a small steady position beats trading well. A deliberate trade-off is allowed.
    assert report.kinds == ("never-close-optimum", "weak-penalty")


def test_an_unchanged_reward_changes_no_market() -> None:
    report = audit_reward(_with(account_sharpe), baseline=account_sharpe, **FAST)
    b = report.baseline
    assert b is not None
    assert (b.markets_changed, b.changed_markets, b.new_findings, b.resolved_findings) == (0, (), (), ())
    assert b.markets_compared > 0


def test_assert_reward_sound_with_a_baseline_is_one_line_in_a_test() -> None:
    with pytest.raises(InvariantViolation) as info:
        assert_reward_sound(_with(signal_sharpe), baseline=account_sharpe, **FAST)
    message = str(info.value)
    assert message.startswith(
        "reward audit failed: rejection-in-optimum, invalid-not-worse-than-hold, never-close-optimum"
    )
    assert "findings new in this config: rejection-in-optimum, invalid-not-worse-than-hold" in message


def _make_env_with(component: Any) -> Any:
    return lambda: TradingEnv(scenario=_with(component))


def test_a_factory_of_tradeguards_env_is_audited_exactly_and_can_be_the_baseline(
    bug_vs_fix: RewardAuditReport,
) -> None:
    report = audit_reward(_with(signal_sharpe), baseline=_make_env_with(account_sharpe), **FAST)
    assert report.baseline is not None and "rejection-in-optimum" in report.baseline.new_findings
    # The same comparison as with the component as the baseline: the same markets change.
    assert bug_vs_fix.baseline is not None
    assert report.baseline.changed_markets == bug_vs_fix.baseline.changed_markets


def test_a_baseline_of_another_env_is_refused_with_what_to_do() -> None:
    with pytest.raises(InvalidConfig, match=r"not tradeguard's TradingEnv.*black-box audit"):
        audit_reward("default", baseline=lambda: gym.make("CartPole-v1"), **FAST)
    with pytest.raises(InvalidConfig, match="must be callable with no arguments"):
        audit_reward("default", baseline=lambda steps: TradingEnv(), **FAST)
    with pytest.raises(InvalidConfig, match="different \\[env\\] table"):
        audit_reward("default", baseline=lambda: TradingEnv(EnvConfig(fee_bps=0)), **FAST)


def test_the_cli_takes_a_component_as_the_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "new.toml"
    cfg.write_text(textwrap.dedent("""
        name = "new"
        [reward]
        failed_action_penalty = -0.05
        custom_components = ["custom_rewards:signal_sharpe"]
    """))
    args = ["--budget", "60", "--max-examples", "40", "--horizon", "2:4", "--seed", "0", "--json"]
    assert main(["audit-reward", "--config", str(cfg), "--baseline", "custom_rewards:account_sharpe", *args]) == 1
    out = json.loads(capsys.readouterr().out)
    assert "rejection-in-optimum" in out["baseline"]["new_findings"]
    assert out["baseline"]["baseline"] == "new with account_sharpe"
    changed = out["baseline"]["changed_markets"]
    assert len(changed) == out["baseline"]["markets_changed"] > 0
    assert set(changed[0]) == {"prices", "actions", "baseline_actions", "pnl", "baseline_pnl", "pnl_change"}
    assert main(["audit-reward", "--config", str(cfg), "--baseline", "custom_rewards:sharpe_bonsu", *args]) == 2
    err = capsys.readouterr().err
    assert "--baseline: module custom_rewards has no 'sharpe_bonsu'" in err and "Did you mean" in err


@pytest.mark.parametrize("module", ["_baseline", "_entry"])
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    mod = importlib.import_module(f"tradeguard.invariants.audit.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
