"""``tradeguard check`` on a user's env module: importing it, naming it, options, replays, pipes."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradeguard._cli import EXIT_BROKEN_PIPE, main
from tradeguard._cli._check import _check_command
from tradeguard.env import EnvConfig, TradingEnv
from tradeguard.errors import InvalidConfig
from tradeguard.invariants import check_trading_env

SCRIPT = Path(sys.executable).with_name("tradeguard")
"""The console script: its sys.path starts with its own directory, not the one it runs in."""

BROKEN_ENV = textwrap.dedent(
    '''
    """A tiny trading env with bugs: selling while flat pays a NaN reward; it never refuses
    out-of-range actions nor steps after the end."""

    import gymnasium as gym
    import numpy as np
    from gymnasium import spaces
    from gymnasium.spaces import Discrete


    class BrokenEnv(gym.Env):
        def __init__(self):
            self.action_space = Discrete(3)  # hold, buy, sell
            self.observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
            self.position = 0
            self.t = 0

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.position, self.t = 0, 0
            return np.zeros(1, dtype=np.float32), {}

        def step(self, action):
            self.t += 1
            reward = 0.0
            if action == 1:
                self.position = 1
            elif action == 2:
                reward = float("nan") if self.position == 0 else 1.0
                self.position = 0
            return np.zeros(1, dtype=np.float32), reward, False, self.t >= 6, {}


    def make_env():
        return BrokenEnv()
    '''
)

FAST = ["--examples", "5", "--max-steps", "5", "--database", "none"]
_names = itertools.count()


@pytest.fixture
def env_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The broken env as a module in tmp_path, the current directory, and not on sys.path.

    In-process, under a fresh name per test (sys.modules keeps what was imported); the
    CLI's sys.path change is undone afterwards.
    """
    name = f"user_env_{os.getpid()}_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(BROKEN_ENV)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    yield name
    sys.modules.pop(name, None)


def cli(*args: str, cwd: Path, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRADEGUARD_PROFILE")}
    return subprocess.run([str(SCRIPT), *args], stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env, timeout=120)


# ------------------------------------------------------------------ 1. modules in the current directory
@pytest.mark.slow
def test_env_module_in_the_current_directory_is_found_by_the_console_script(tmp_path: Path) -> None:
    assert SCRIPT.exists(), f"console script not installed next to {sys.executable}"
    (tmp_path / "brokenenv.py").write_text(BROKEN_ENV)
    done = cli("check", "--env", "brokenenv:make_env", "--only", "finite-rewards", *FAST, cwd=tmp_path)
    assert "cannot import" not in done.stderr and "no module named" not in done.stderr, done.stderr
    assert done.returncode == 1, done.stderr
    assert "FAIL finite-rewards" in done.stdout


def test_env_module_in_the_current_directory_is_found_in_process(env_module: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--env", f"{env_module}:make_env", "--only", "finite-rewards", *FAST]) == 1
    assert "FAIL finite-rewards" in capsys.readouterr().out
    assert sys.path[0] == os.getcwd()
    # Once: a second run does not add the directory again.
    main(["check", "--env", f"{env_module}:make_env", "--only", "finite-rewards", *FAST])
    assert sys.path.count(os.getcwd()) == 1


def test_a_module_not_found_says_where_it_looked_and_how_to_fix_it(
    env_module: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--env", "no_such_user_env:make_env", *FAST]) == 2
    err = capsys.readouterr().err
    assert "--env 'no_such_user_env:make_env': no module named 'no_such_user_env'" in err
    assert f"looked in the current directory ({tmp_path})" in err
    assert "PYTHONPATH" in err and "pip install -e" in err

    # A module that is found but imports something missing says that instead.
    (tmp_path / "needs_dep.py").write_text("import no_such_dependency_xyz\n")
    try:
        assert main(["check", "--env", "needs_dep:make_env", *FAST]) == 2
    finally:
        sys.modules.pop("needs_dep", None)
    err = capsys.readouterr().err
    assert "cannot import 'needs_dep': it imports 'no_such_dependency_xyz', which is not installed" in err


# ------------------------------------------------------------------ 2. suggestions for a missing name
def test_a_missing_name_is_never_matched_to_an_imported_module_or_class(
    env_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `nope` is close to `np` (import numpy as np), `Discret` to an imported gymnasium class.
    for attr in ("nope", "Discret", "spaces_"):
        assert main(["check", "--env", f"{env_module}:{attr}", *FAST]) == 2
        err = capsys.readouterr().err
        assert f"has no {attr!r}." in err
        assert "Did you mean" not in err, err
        assert "It defines BrokenEnv, make_env." in err  # what the module itself defines, instead
    assert main(["check", "--env", f"{env_module}:make_evn", *FAST]) == 2
    assert "Did you mean 'make_env'?" in capsys.readouterr().err
    assert main(["check", "--adapter", f"{env_module}:BrokenEnvv"]) == 2
    assert "Did you mean 'BrokenEnv'?" in capsys.readouterr().err


# ------------------------------------------------------------------ 3. options named as given
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-steps", "-1"], "--max-steps -1 is out of range: expected in [1, 10000]."),
        (["--max-steps", "10001"], "--max-steps 10001 is out of range: expected in [1, 10000]."),
        (["--examples", "0"], "--examples 0 is out of range: expected in [1, 100000]."),
        (["--examples", "100001"], "--examples 100001 is out of range: expected in [1, 100000]."),
        (["--timeout", "0"], "--timeout 0.0 must be greater than 0.0 and at most 86400.0."),
        (["--timeout", "86401"], "--timeout 86401.0 is out of range: expected in (0.0, 86400.0]."),
        (["--env", "anytrading-stocks", "--max-steps", "0"], "--max-steps 0 is out of range: expected in [1, 10000]."),
    ],
)
def test_out_of_range_options_are_named_as_given(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", *args]) == 2
    assert capsys.readouterr().err == f"tradeguard check: error: {message}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--steps", "2000000"], "--steps 2000000 is out of range: expected in [1, 1000000]."),
        (["audit-policy", "--policy", "constant:HOLD", "--episode-length", "0"],
         "--episode-length 0 is out of range: expected in [1, 1000000]."),
        (["train", "--out", "unused", "--episode-length", "0"],
         "--episode-length 0 is out of range: expected in [1, 1000000]."),
    ],
)
def test_episode_lengths_of_other_commands_are_named_as_given(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each becomes the scenario's episode_length, whose own check would name that instead.
    assert main(args) == 2
    assert capsys.readouterr().err == f"tradeguard {args[0]}: error: {message}\n"


def test_the_cli_bounds_are_the_gates() -> None:
    # The CLI checks --examples and --max-steps itself; the gate must accept the same range.
    make = lambda: TradingEnv(config=EnvConfig(episode_length=5))  # noqa: E731
    with pytest.raises(InvalidConfig, match=r"max_steps=10001 is out of range: expected in \[1, 10000\]"):
        check_trading_env(make, max_steps=10_001)
    with pytest.raises(InvalidConfig, match=r"examples=100001 is out of range: expected in \[1, 100000\]"):
        check_trading_env(make, examples=100_001)


# ------------------------------------------------------------------ 4. a reader that leaves early
@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["run", "--scenario", "v10", "--policy", "constant:SELL_PARTIAL", "--seed", "0"],
        ["run", "--scenario", "v10", "--policy", "constant:SELL_PARTIAL", "--seed", "0", "--json"],
        ["rules"],
    ],
    ids=["run", "run-json", "rules"],
)
def test_output_piped_into_a_reader_that_closes_early_exits_quietly(args: list[str], tmp_path: Path) -> None:
    # The reader closes its end before the command writes anything (it is still importing):
    # every write meets a closed pipe, as the rest of `tradeguard run ... | head -3` does.
    proc = subprocess.Popen(
        [str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, text=True
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    status = proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert status == EXIT_BROKEN_PIPE == 141


# ------------------------------------------------------------------ 5. replays of foreign envs
@pytest.mark.slow
def test_a_foreign_envs_failures_get_a_check_command_that_reproduces_them(tmp_path: Path) -> None:
    (tmp_path / "brokenenv.py").write_text(BROKEN_ENV)
    done = cli("check", "--env", "brokenenv:make_env", "--adapter", "gym", *FAST, "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    failed = {i["id"]: i["violations"] for i in json.loads(done.stdout)["invariants"] if i["status"] == "fail"}
    assert {"finite-rewards", "action-range-enforced"} <= set(failed)
    for inv, violations in failed.items():
        expected = (
            "tradeguard check --env brokenenv:make_env --adapter gym --examples 5 --max-steps 5 "
            f"--database none --only {inv} --seed 0"
        )
        assert [v["replay"] for v in violations] == [expected] * len(violations)

        # The command reproduces the failure: the same invariant fails, on the same counterexample.
        again = cli(*shlex.split(expected)[1:], "--json", cwd=tmp_path)
        assert again.returncode == 1, again.stderr
        (result,) = [i for i in json.loads(again.stdout)["invariants"] if i["id"] == inv]
        assert result["status"] == "fail"
        assert result["violations"][0]["counterexample"] == violations[0]["counterexample"]
        assert result["violations"][0]["message"] == violations[0]["message"]

    # The text report shows it too.
    text = cli("check", "--env", "brokenenv:make_env", "--only", "finite-rewards", *FAST, cwd=tmp_path)
    assert (
        "  replay: tradeguard check --env brokenenv:make_env --examples 5 --max-steps 5 --database none "
        "--only finite-rewards --seed 0"
    ) in text.stdout


def test_the_check_command_quotes_tradeguards_own_env_configuration() -> None:
    args = argparse.Namespace(
        env=None, adapter=None, scenario=None, config=None, config_json='{"env": {"episode_length": 9}}',
        timeout=2.5, database=None,
    )
    cmd = _check_command(args, "observation-in-space", examples=7, max_steps=9, seed=None)
    assert shlex.split(cmd) == [
        "tradeguard", "check", "--config-json", '{"env": {"episode_length": 9}}', "--examples", "7",
        "--max-steps", "9", "--timeout", "2.5", "--only", "observation-in-space",
    ]


def test_env_names_tradeguards_own_env_as_tradeguard_mutate_does(capsys: pytest.CaptureFixture[str]) -> None:
    # `tradeguard mutate --env tradeguard/Trading-v0` is documented; `check` takes the same name.
    args = ["check", "--only", "equity-identity", "--examples", "3", "--max-steps", "4", "--database", "none",
            "--no-settings", "--json"]
    assert main([*args, "--env", "tradeguard/Trading-v0"]) == 0
    named = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    default = json.loads(capsys.readouterr().out)
    assert named["env"] == default["env"]
    assert named["env"].startswith("tradeguard/Trading-v0 (")
    assert main(["check", "--env", "tradeguard/Trading-v1"]) == 2
    assert "Did you mean 'tradeguard/Trading-v0'?" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_without_a_seed_draws_one_and_its_replay_names_it(tmp_path: Path) -> None:
    # --seed random (as the fast and thorough profiles search) with no example database: the
    # failure could be found again only if the replay command names the seed the run drew.
    (tmp_path / "brokenenv.py").write_text(BROKEN_ENV)
    args = ("check", "--env", "brokenenv:make_env", "--only", "finite-rewards", "--examples", "5", "--max-steps", "5",
            "--database", "none", "--seed", "random")
    done = cli(*args, "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    seed = report["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**32
    (violation,) = report["invariants"][0]["violations"][:1]
    assert violation["replay"].endswith(f"--only finite-rewards --seed {seed}")
    again = cli(*shlex.split(violation["replay"])[1:], "--json", cwd=tmp_path)
    assert json.loads(again.stdout)["invariants"][0]["violations"][0]["counterexample"] == violation["counterexample"]
    text = cli(*args, cwd=tmp_path).stdout
    assert re.search(r"up to 5 examples per invariant, seed \d+\)", text), text
