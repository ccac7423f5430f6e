"""``tradeguard run``: in-process through ``main`` for speed, plus one real console-script call."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tradeguard._cli import main
from tradeguard.env import (
    ACTION_NAMES,
    COMPONENT_NAMES,
    TradingEnv,
    load_scenario,
    parse_policy,
    run_episode,
)

SEED_EXAMPLE = ["run", "--scenario", "v10", "--policy", "constant:SELL_PARTIAL", "--steps", "500", "--seed", "0", "--json"]  # fmt: skip


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    status = main(["run", *args, "--json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def run_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    status = main(["run", *args])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    return err


def check_seed_example(data: dict[str, Any]) -> None:
    assert data["steps"] == 500
    assert data["action_distribution_predicted"]["SELL_PARTIAL"] == 1.0
    assert data["action_distribution_executed"]["HOLD"] == 1.0
    assert data["rejection_rate"] == 1.0
    assert data["trades"] == 0
    assert abs(data["reward_components"]["failed_action_penalty"] - (-25.0)) <= 1e-9
    assert abs(data["episode_reward"] - (-25.0)) <= 1e-9


def test_the_seed_example_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(SEED_EXAMPLE) == 0
    check_seed_example(json.loads(capsys.readouterr().out))


@pytest.mark.slow
def test_the_seed_example_through_the_console_script() -> None:
    script = Path(sys.executable).with_name("tradeguard")
    assert script.exists(), f"console script not installed next to {sys.executable}"
    done = subprocess.run([str(script), *SEED_EXAMPLE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    check_seed_example(json.loads(done.stdout))


@pytest.mark.parametrize("scenario", ["default", "v10", "v10.1", "v10.2"])
def test_json_has_the_promised_keys_and_distributions_sum_to_one(
    capsys: pytest.CaptureFixture[str], scenario: str
) -> None:
    data = run_json(
        capsys, "--scenario", scenario, "--policy", "random", "--steps", "60", "--seed", "3"
    )
    for key in ("episode_reward", "trades", "rejection_rate", "action_distribution_predicted",
                "action_distribution_executed", "reward_components"):  # fmt: skip
        assert key in data, key
    for key in ("action_distribution_predicted", "action_distribution_executed"):
        assert list(data[key]) == list(ACTION_NAMES)
        assert math.isclose(math.fsum(data[key].values()), 1.0, rel_tol=1e-12)
    assert list(data["reward_components"]) == list(COMPONENT_NAMES)
    assert data["scenario"] == scenario and data["steps"] == 60 and data["seed"] == 3
    assert math.isclose(
        math.fsum(data["reward_components"].values()),
        data["episode_reward"],
        rel_tol=1e-9,
        abs_tol=1e-9,
    )


def test_json_numbers_are_the_episode_the_library_plays(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(
        capsys, "--scenario", "v10.1", "--policy", "masked-random", "--steps", "80", "--seed", "7"
    )
    scenario = load_scenario("v10.1")
    env = TradingEnv(scenario=scenario, config=dataclasses.replace(scenario.env, episode_length=80))
    expected = run_episode(env, parse_policy("masked-random"), seed=7).metrics().as_dict()
    for key, value in expected.items():
        assert data[key] == value, key
    assert data["final_equity"] == env.trace[-1].equity_after


def test_text_output_shows_predicted_next_to_executed(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["run", "--scenario", "v10", "--policy", "constant:SELL_PARTIAL", "--steps", "20"])
        == 0
    )
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert lines["SELL_PARTIAL"] == ["100.0%", "0.0%"]
    assert lines["HOLD"] == ["0.0%", "100.0%"]
    assert "rejections 20 (100.0%)" in out
    assert "failed_action_penalty" in out and "-1.0000" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--policy", "constant:SELL_PARTAIL"],
            r"'SELL_PARTAIL' is not an action.*Did you mean 'SELL_PARTIAL'\?",
        ),
        (["--policy", "randm"], r"policy='randm' is not a policy.*Did you mean 'random'\?"),
        (["--policy", "masked_random"], r"Did you mean 'masked-random'\?"),
        (["--policy", "constant:9"], r"'9' is not an action.*0\.\.6"),
        (
            ["--scenario", "v01"],
            r"--scenario 'v01' is neither a shipped scenario.*Did you mean 'v10'\?",
        ),
        (["--scenario", "defualt"], r"Did you mean 'default'\?"),
        (["--steps", "0"], r"--steps 0 is out of range: expected in \[1, 1000000\]"),
        (["--config", "no/such/file.toml"], r"--config 'no/such/file.toml' does not exist; expected a scenario file \(TOML or JSON"),
        (["--config-json", "{nope"], r"--config-json is not valid JSON"),
        (["--config-json", "[1, 2]"], r"--config-json must be a JSON object; got list"),
        (
            ["--config-json", '{"reward": {"failed_action_penalt": -1}}'],
            r"Did you mean 'failed_action_penalty'\?",
        ),
        (["--prices", "100,0,100"], r"price at row 1 is 0 minor units"),
        (["--actions", "1,9", "--steps", "3"], r"action=9 is out of range"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    err = run_error(capsys, *args)
    assert err.startswith("tradeguard run: error: ")
    assert re.search(message, err), err


def test_bad_usage_is_argparse_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--steps", "many"])
    assert exc.value.code == 2
    assert "invalid int value: 'many'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["run", "--scenario", "v10", "--config", "x.toml"])
    assert exc.value.code == 2


def test_actions_replay_reproduces_a_trace(capsys: pytest.CaptureFixture[str]) -> None:
    scenario = load_scenario("v10")
    env = TradingEnv(scenario=scenario)
    original = run_episode(env, parse_policy("random"), seed=11, max_steps=120)
    actions = ",".join(str(r.predicted) for r in original)
    assert original.meta.replay == "--scenario v10 --seed 11"
    data = run_json(capsys, *shlex.split(original.meta.replay), "--actions", actions)
    expected = original.metrics().as_dict()
    for key, value in expected.items():
        assert data[key] == value, key
    assert data["final_equity"] == original[-1].equity_after
    assert data["policy"] == "replay"


def test_prices_and_actions_give_the_hand_computed_episode(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 1_000_000 cash, 10 bps: buy 9 @ 10_000 (fee 90), sell 9 @ 10_200 = 91_800 (fee 92).
    data = run_json(capsys, "--prices", "10000,10100,10200,10300", "--actions", "1,0,5")
    assert data["steps"] == 3 and data["trades"] == 2 and data["round_trips"] == 1
    assert data["final_equity"] == 1_000_000 - 90_090 + 91_800 - 92
    assert data["win_rate"] == 1.0
    assert "--prices 10000,10100,10200,10300" in data["replay"]
    again = run_json(capsys, *shlex.split(data["replay"]), "--actions", "1,0,5")
    assert (
        again["final_equity"] == data["final_equity"]
        and again["episode_reward"] == data["episode_reward"]
    )


def test_config_file_in_toml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\n[env]\nepisode_length = 40\n[reward]\nfailed_action_penalty = -0.2\n'
        '[market]\nkind = "flat"\n'
    )
    data = run_json(capsys, "--config", str(path), "--policy", "constant:SELL_ALL")
    assert data["scenario"] == "mine" and data["steps"] == 40
    assert data["reward_components"]["failed_action_penalty"] == pytest.approx(-8.0, abs=1e-9)
    data = run_json(
        capsys, "--config", str(path), "--policy", "constant:BUY_SMALL", "--steps", "10"
    )
    assert data["trades"] == 1 and data["rejections"] == 9
    assert data["total_return"] < 0  # a flat market: the fee is the only PnL
    path.write_text("[env]\nfee_bsp = 3\n")
    err = run_error(capsys, "--config", str(path))
    assert "unknown EnvConfig field 'fee_bsp'" in err and "Did you mean 'fee_bps'?" in err


def test_config_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(
        capsys,
        "--config-json",
        '{"reward": {"failed_action_penalty": -0.3}, "env": {"episode_length": 10}}',
        "--policy",
        "constant:ADD_POSITION",
    )
    assert data["steps"] == 10 and data["rejection_rate"] == 1.0
    assert data["reward_components"]["failed_action_penalty"] == pytest.approx(-3.0, abs=1e-9)
    assert data["scenario"] == "custom"
    data = run_json(capsys, "--config-json", '{"env": {"disabled_actions": ["BUY_SMALL"]}}',
                    "--policy", "constant:BUY_SMALL", "--steps", "5")  # fmt: skip
    assert data["action_distribution_executed"]["HOLD"] == 1.0 and data["trades"] == 0


def test_rules_accepts_the_same_scenario_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["rules", "--config-json", '{"env": {"disabled_actions": ["SELL_ALL", "BUY_LARGE"]}}'])
        == 0
    )
    assert "disabled by this configuration: BUY_LARGE, SELL_ALL;" in capsys.readouterr().out
