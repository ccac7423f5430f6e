"""Rough edges a new user hit in the CLI: each test pins the fix of one.

The report of ``check`` on a foreign env uses the adapter the check used; a bad
``--report DIR`` or ``train --out`` is refused before anything runs; a file that is not
a model archive, an empty ``--only``, a scenario option that names nothing, a negative
``--prices`` list and an inverted ``--fuzz`` range each get a message naming the option
as typed.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradeguard._cli import main
from tradeguard.errors import InvalidConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "adapters.md"
COIN_ENV = (
    '"""docs/adapters.md\'s CoinEnv and CoinAdapter, run with a bug: cash pays every fee twice."""\n\n'
    + re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)[0]
    + textwrap.dedent(
        """


        class LeakyCoinEnv(CoinEnv):
            def step(self, action):
                obs, reward, terminated, truncated, info = super().step(action)
                self.cash -= info["fee"]  # the bug: the fee, a second time
                info["cash"] = self.cash
                return obs, reward, terminated, truncated, info


        def make_env():
            return LeakyCoinEnv()
        """
    )
)
"""The documented env and adapter, verbatim, and a buggy env: if the documented adapter stops
catching the bug, the report test below fails."""


_names = itertools.count()


@pytest.fixture
def coin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The buggy coin env as a module in the current directory (a fresh name per test)."""
    name = f"coin_env_{os.getpid()}_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(COIN_ENV)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the CLI's insertion of the cwd is undone
    yield name
    sys.modules.pop(name, None)


def err_of(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err


# --------------------------------------------------------------------------- 1. check --report uses --adapter
def test_the_check_report_replays_through_the_adapter_the_check_used(
    coin_module: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "rep"
    status = main([
        "check", "--env", f"{coin_module}:make_env", "--adapter", f"{coin_module}:CoinAdapter",
        "--only", "self-financing", "--examples", "60", "--max-steps", "3", "--seed", "0",
        "--database", "none", "--quiet", "--report", str(report),
    ])
    out = capsys.readouterr().out
    assert status == 1, out
    html = (report / "index.html").read_text()
    assert "does not report prices and equity" not in html
    assert (report / "equity-worst.png").is_file()
    assert 'alt="equity curve of the self-financing counterexample"' in html


# --------------------------------------------------------------------------- 2. --report checked up front
@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--examples", "1", "--max-steps", "2", "--database", "none"],
        ["audit-reward", "--budget", "1", "--max-examples", "2"],
        ["audit-policy", "--policy", "hold", "--episodes", "1"],
    ],
    ids=["check", "audit-reward", "audit-policy"],
)
def test_a_report_directory_that_cannot_be_written_is_refused_before_the_run(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main([*argv, "--report", str(afile)]) == 2
    out, err = capsys.readouterr()
    assert out == "", "the command ran before refusing --report"
    assert f"--report {str(afile)!r} is a file; expected a directory for the HTML report" in err
    assert main([*argv, "--report", str(afile / "sub")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"--report {str(afile / 'sub')!r} cannot be created: {str(afile)!r} is a file, not a directory" in err
    assert main([*argv, "--report", ""]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "--report '' is empty" in err


# --------------------------------------------------------------------------- 3. train --out checked up front
@pytest.mark.parametrize("extra", [[], ["--checkpoint-every", "0"]], ids=["checkpoints", "no-checkpoints"])
def test_train_out_under_a_file_is_refused_before_torch_is_imported(extra: list[str], tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    code = (
        "import sys\n"
        "from tradeguard._cli import main\n"
        f"status = main(['train', '--out', 'afile/x', '--steps', '10', *{extra!r}])\n"
        "assert 'torch' not in sys.modules, 'torch was imported before --out was checked'\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        "tradeguard train: error: --out 'afile/x': cannot save the model there: "
        f"{str(tmp_path / 'afile')!r} is a file, not a directory. Expected PATH in a directory"
    ) in done.stderr


def test_the_library_refuses_an_unusable_out_before_training(tmp_path: Path) -> None:
    from tradeguard.rl import train

    (tmp_path / "afile").write_text("")
    with pytest.raises(InvalidConfig, match=r"out '.*afile/x': cannot save the model there: .* is a file"):
        train(steps=10, out=tmp_path / "afile" / "x")
    (tmp_path / "m.zip").mkdir()
    with pytest.raises(InvalidConfig, match=r"the model is saved as '.*m\.zip', which is a directory"):
        train(steps=10, out=tmp_path / "m")
    (tmp_path / "c_checkpoints").write_text("")
    with pytest.raises(InvalidConfig, match=r"checkpoints are saved into '.*c_checkpoints', which is a file"):
        train(steps=10, out=tmp_path / "c", checkpoint_every=5)


# --------------------------------------------------------------------------- 4. not a model archive
def test_a_file_that_is_not_a_model_archive_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "fake.zip"
    fake.write_text("not a zip")
    assert main(["audit-policy", str(fake)]) == 2
    err = err_of(capsys)
    assert f"{fake} is not a stable-baselines3 model archive: it is not a zip file; expected a " in err
    assert "cannot tell which algorithm" not in err
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert main(["audit-policy", str(other)]) == 2
    assert "the zip has no 'data' member (it holds readme.txt)" in err_of(capsys)


# --------------------------------------------------------------------------- 5. empty --only
@pytest.mark.parametrize("only", ["", " , "])
def test_an_empty_only_is_refused(only: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--only", only, "--examples", "1", "--max-steps", "2", "--database", "none"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"--only {only!r} names no invariant; expected comma-separated invariant ids" in err


# --------------------------------------------------------------------------- 6. scenario options named as typed
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["audit-reward", "--baseline", "nope"], "--baseline 'nope' is neither a shipped scenario nor an existing file"),
        (["audit-reward", "--baseline", "{tmp}"], "--baseline '{tmp}' is a directory; expected a shipped scenario"),
        (["check", "--config", "{tmp}"], "--config '{tmp}' is a directory; expected a scenario file (TOML or JSON"),
        (["run", "--config", "{tmp}"], "--config '{tmp}' is a directory"),
        (["check", "--scenario", "v10.3"], "--scenario 'v10.3' is neither a shipped scenario"),
    ],
)
def test_scenario_options_are_named_as_typed(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = err_of(capsys)
    assert message.format(tmp=tmp_path) in err
    assert "scenario='" not in err


def test_a_shipped_scenario_given_as_baseline_still_works(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit-reward", "--baseline", "default", "--budget", "1", "--max-examples", "2", "--json"]) in (0, 1)
    assert '"baseline": "default"' in capsys.readouterr().out


# --------------------------------------------------------------------------- 7. --prices -5,10
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--prices", "-5,10"], "--prices: price at row 0 is -5 minor units; expected 1.."),
        (["--actions", "-1,2", "--steps", "3"], "action=-1 is out of range"),
    ],
)
def test_a_list_starting_with_a_minus_reaches_its_own_check(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", *argv]) == 2
    err = err_of(capsys)
    assert message in err
    assert "expected one argument" not in err


# --------------------------------------------------------------------------- 8. --fuzz LOW > HIGH
def test_an_inverted_fuzz_range_is_named_as_typed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit-reward", "--fuzz", "failed_action_penalty=2:1", "--budget", "1"]) == 2
    err = err_of(capsys)
    assert (
        "--fuzz failed_action_penalty=2:1 has LOW (2) above HIGH (1); expected FIELD=LOW:HIGH with LOW <= HIGH. "
        "Swap them: --fuzz failed_action_penalty=1:2."
    ) in err
    assert main(["audit-reward", "--fuzz", "failed_action_penalty=nan:1", "--budget", "1"]) == 2
    assert "--fuzz failed_action_penalty=nan:1 is not a range of finite numbers" in err_of(capsys)
