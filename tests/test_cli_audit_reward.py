"""``tradeguard audit-reward``: exit status, JSON shape, human output, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradeguard._cli import main

FAST = ["--budget", "60", "--max-examples", "30", "--horizon", "2:4", "--seed", "0"]


def test_v10_1_fails_with_exit_1_and_json_findings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit-reward", "--scenario", "v10.1", *FAST, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] is False
    kinds = [f["kind"] for f in out["findings"]]
    assert "rejection-in-optimum" in kinds
    for f in out["findings"]:
        assert set(f) >= {"kind", "severity", "message", "counterexample"}
        assert f["severity"] in ("error", "warning")
    cex = out["findings"][kinds.index("rejection-in-optimum")]["counterexample"]
    assert cex["shaped_optimal"]["rejected"][0] == "NO_POSITION"
    assert cex["pnl_optimal"]["actions"] == ["HOLD"] * (len(cex["prices"]) - 1)


def test_default_passes_with_exit_0_and_prints_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit-reward", *FAST]) == 0
    out = capsys.readouterr().out
    assert "PASS: 0 error(s), 0 warning(s)" in out
    assert "reward audit of scenario default" in out


def test_v10_warns_but_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit-reward", "--scenario", "v10", *FAST]) == 0
    out = capsys.readouterr().out
    assert "[warning] weak-penalty" in out and "PASS: 0 error(s), 1 warning(s)" in out


def test_human_output_shows_both_sequences_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit-reward", "--scenario", "v10.1", *FAST]) == 1
    out = capsys.readouterr().out
    assert "[error] rejection-in-optimum" in out
    header = next(line.strip() for line in out.splitlines() if line.strip().startswith("step "))
    assert header.index("shaped-optimal") < header.index("PnL-optimal")
    assert "SELL_PARTIAL (rejected: NO_POSITION)" in out
    assert "shaped return" in out and "PnL" in out


def test_config_file_and_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "mine.toml"
    cfg.write_text('name = "mine"\n[reward]\nrealized_pnl = 2.0\n')
    assert main(["audit-reward", "--config", str(cfg), "--baseline", "default", *FAST, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert "pnl-regret" in [f["kind"] for f in out["findings"]]
    assert "pnl-regret" in out["baseline"]["new_findings"]
    assert out["baseline"]["markets_changed"] > 0


def test_config_json_and_fuzz(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["audit-reward", "--config-json", '{"reward": {"failed_action_penalty": -2.0}}', *FAST]
    assert main([*args, "--fuzz", "failed_action_penalty=-2:-1"]) == 0
    assert "fuzzed: failed_action_penalty in [-2, -1]" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scenario", "v10.3"], "Did you mean 'v10.2'"),
        (["--fuzz", "failed_action_penality=-1:0"], "Did you mean 'failed_action_penalty'"),
        (["--fuzz", "realized_pnl=1:0.5"], "--fuzz realized_pnl=1:0.5 has LOW (1) above HIGH (0.5); expected FIELD=LOW:HIGH with LOW <= HIGH"),
        (["--budget", "0"], "--budget 0.0 must be greater than 0.0"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit-reward", *argv]) == 2
    assert message in capsys.readouterr().err


def test_malformed_fuzz_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["audit-reward", "--fuzz", "realized_pnl"])
    assert info.value.code == 2
    assert "FIELD=LOW:HIGH" in capsys.readouterr().err
