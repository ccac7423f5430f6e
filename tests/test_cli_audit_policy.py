"""``tradeguard audit-policy`` and ``tradeguard train`` on the command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tradeguard._cli import main


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    status = main(list(argv))
    out = capsys.readouterr().out
    return status, json.loads(out)


@pytest.mark.slow
def test_the_seeds_v10_agent_fails_the_audit() -> None:
    # the acceptance command, through the installed console script
    exe = shutil.which("tradeguard")
    cmd = [exe] if exe else [sys.executable, "-m", "tradeguard"]
    proc = subprocess.run(
        [*cmd, "audit-policy", "--policy", "constant:SELL_PARTIAL", "--scenario", "v10", "--json"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["passed"] is False
    assert [f["kind"] for f in data["findings"]] == ["single-action-collapse", "rejection-collapse", "phantom-activity"]
    assert all(f["message"] for f in data["findings"])
    assert data["action_distribution_predicted"]["SELL_PARTIAL"] == 1.0
    assert data["action_distribution_executed"]["HOLD"] == 1.0
    assert data["rejection_rate"] == 1.0
    assert data["trades"] == 0
    assert data["policy"] == "constant:SELL_PARTIAL" and data["scenario"] == "v10"
    assert data["steps"] == 3 * 4 * 500


def test_text_report_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit-policy", "--policy", "masked-random", "--scenario", "v10", "--episodes", "1", "--episode-length", "50"]) == 0
    out = capsys.readouterr().out
    assert "PASS: the policy meets its contract." in out
    assert "action distribution, predicted / executed:" in out
    for family in ("trend", "crash", "flat", "random_walk", "all"):
        assert family in out
    assert main(["audit-policy", "--policy", "hold", "--episodes", "1", "--episode-length", "50"]) == 1
    assert "[single-action-collapse] 100.0% of 200 predictions are HOLD" in capsys.readouterr().out


def test_contract_options(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["audit-policy", "--policy", "constant:SELL_PARTIAL", "--scenario", "v10", "--episodes", "1", "--episode-length", "30", "--json"]
    status, data = run_json(
        capsys,
        *args,
        "--max-action-share",
        "1.0",
        "--max-rejection-rate",
        "1.0",
        "--ignore",
        "phantom-activity",
    )
    assert status == 0 and data["passed"] is True
    assert [(f["kind"], f["counts"]) for f in data["findings"]] == [("phantom-activity", False)]
    assert data["contract"]["max_action_share"] == 1.0
    status, data = run_json(capsys, *args, "--no-masks", "--policy", "masked-random")
    assert status == 1 and "evaluated-without-masks" in [f["kind"] for f in data["findings"]]
    status, data = run_json(capsys, *args, "--families", "flat,gap")
    assert set(data["families"]) == {"flat", "gap"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["audit-policy"], "give either MODEL_PATH"),
        (["audit-policy", "x.zip", "--policy", "hold"], "not both"),
        (["audit-policy", "--policy", "constant:SEL_PARTIAL"], "Did you mean 'SELL_PARTIAL'?"),
        (["audit-policy", "--policy", "hold", "--families", "trend,crahs"], "Did you mean 'crash'?"),
        (["audit-policy", "--policy", "hold", "--max-rejection-rate", "2"], "--max-rejection-rate 2.0 is out of range"),
        (["audit-policy", "--policy", "hold", "--ignore", "collapse"], "not a finding kind"),
        (["audit-policy", "no/such/model"], "no model at 'no/such/model.zip'"),
        (["train", "--out", "m", "--exploration", "epsilon:0.5"], "exploration='epsilon:0.5' is not an exploration"),
        (["train", "--out", "m", "--ent-coef", "lots"], "ent_coef='lots'"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err


@pytest.mark.slow
@pytest.mark.requires_rl
def test_train_then_audit_the_saved_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run" / "masked"
    status, summary = run_json(
        capsys,
        "train",
        "--algo", "maskable-ppo",
        "--scenario", "v10",
        "--exploration", "none",
        "--steps", "128",
        "--n-steps", "64",
        "--batch-size", "32",
        "--episode-length", "30",
        "--checkpoint-every", "64",
        "--no-progress",
        "--out", str(out),
        "--json",
    )  # fmt: skip
    assert status == 0, summary
    assert summary["steps_done"] == 128 and summary["stopped_early"] is False
    assert Path(summary["path"]) == out.with_suffix(".zip") and out.with_suffix(".zip").is_file()
    assert Path(summary["metadata"]).is_file()
    assert [Path(c).name for c in summary["checkpoints"]] == ["masked_64_steps.zip", "masked_128_steps.zip"]
    assert summary["last_window"]["rejection_rate"] == 0.0

    # the audit reads the scenario the model was trained on (v10, 30-step episodes) from its metadata
    status, report = run_json(capsys, "audit-policy", str(out), "--episodes", "1", "--json")
    assert report["scenario"] == "v10" and report["steps"] == 4 * 30
    assert report["masks_passed"] is True and report["invalid_predictions"] == 0
    assert report["model"] == str(out)
    assert "evaluated-without-masks" not in [f["kind"] for f in report["findings"]]
    status, report = run_json(capsys, "audit-policy", str(out) + ".zip", "--episodes", "1", "--no-masks", "--json")
    assert status == 1
    assert "evaluated-without-masks" in [f["kind"] for f in report["findings"]]


@pytest.mark.slow
@pytest.mark.requires_rl
def test_train_exits_1_when_the_run_is_stopped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the seed's trap in miniature: a rejected action is free (penalty 0) while trading costs
    # (fees x100); with no entropy bonus and a high learning rate, PPO collapses within a few
    # rollouts onto an action that is always rejected (seed 0: ADD_POSITION, as in V10.1)
    config = tmp_path / "collapse.toml"
    config.write_text(
        'name = "collapse"\n[env]\nepisode_length = 32\n[reward]\nfailed_action_penalty = 0.0\n'
        "realized_pnl = 0.0\nunrealized_pnl_change = 0.0\ntransaction_cost = 100.0\n"
    )
    status = main(
        [
            "train", "--algo", "ppo", "--config", str(config), "--steps", "4096", "--n-steps", "64",
            "--batch-size", "64", "--learning-rate", "0.05", "--exploration", "none", "--no-progress",
            "--out", str(tmp_path / "m"),
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert status == 1, captured.err
    assert "tradeguard stopped training at step" in captured.err
    assert "[phantom-activity]" in captured.err and "[single-action-collapse]" in captured.err
    meta = json.loads((tmp_path / "m.tradeguard.json").read_text())
    assert meta["stopped_early"] is True and meta["steps_done"] < 4096
    assert meta["stop_reason"].startswith("tradeguard stopped training")
