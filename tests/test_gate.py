"""The gate from the outside: `tradeguard check`, the pytest plugin, profiles, the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tradeguard._cli import main
from tradeguard.env import Action, Condition, EnvConfig, TradingEnv
from tradeguard.errors import InvalidConfig
from tradeguard.invariants import (
    InvariantReport,
    check_trading_env,
    get_profile,
    invariant_ids,
    resolve_database,
)

pytest_plugins = ["pytester"]


def test_check_json_lists_every_invariant_with_status_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", "--scenario", "v10", "--examples", "5", "--max-steps", "8", "--json", "--database", "none"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["passed"] is True
    # Every invariant but matches-reference, which checks an env against a reference and is left out of a
    # whole-catalog run that has none (tradeguard/Trading-v0's adapter names none).
    assert [i["id"] for i in out["invariants"]] == [i for i in invariant_ids() if i != "matches-reference"]
    for inv in out["invariants"]:
        assert set(inv) >= {"id", "statement", "status", "examples", "violations"}
        assert inv["status"] in ("pass", "not-applicable")
    assert {i["id"]: i["status"] for i in out["invariants"]}["metrics-match-trace"] == "not-applicable"


def test_check_exits_1_with_a_shrunk_counterexample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A broken env plugged in through the Python API, seen through the same report.
    from broken_envs import IgnoringMachine

    config = EnvConfig(episode_length=8)

    def make() -> TradingEnv:
        env = TradingEnv(config=config)
        env.machine = IgnoringMachine(config, Action.SELL_ALL, Condition.IN_POSITION)
        return env

    report = check_trading_env(make, only=["no-sell-without-position"], examples=50, max_steps=8, seed=0, database=str(tmp_path / "db"))
    assert not report.passed
    data = report.as_dict()
    (inv,) = data["invariants"]
    assert inv["status"] == "fail"
    cx = inv["violations"][0]["counterexample"]
    assert cx["action_names"] == ["SELL_ALL"]
    assert inv["violations"][0]["replay"].startswith("tradeguard run --config-json")
    text = report.format()
    assert "FAIL no-sell-without-position" in text and "minimal counterexample: seed" in text

    # The failure was saved: the next run replays it first and fails again at once,
    # even with a budget too small to find it from scratch.
    again = check_trading_env(make, only=["no-sell-without-position"], examples=1, max_steps=8, seed=12345, database=str(tmp_path / "db"))
    assert not again.passed
    assert again.results[0].examples <= 3


def _broken_add() -> TradingEnv:
    """ADD_POSITION executes on a losing position: a bug one random example almost never finds."""
    from broken_envs import IgnoringMachine

    config = EnvConfig(episode_length=8)
    env = TradingEnv(config=config)
    env.machine = IgnoringMachine(config, Action.ADD_POSITION, Condition.PROFITABLE)
    return env


def test_a_saved_failure_is_replayed_first_under_the_gates_own_key() -> None:
    from hypothesis.database import InMemoryExampleDatabase

    only = ["no-add-without-profitable-position"]
    db = InMemoryExampleDatabase()

    def check(examples: int, seed: int, database: InMemoryExampleDatabase | None) -> InvariantReport:
        report = check_trading_env(_broken_add, only=only, examples=examples, max_steps=8, seed=seed,
                                   database=database, name="broken-add")
        return report.results[0]

    found = check(200, 0, db)
    assert found.status == "fail"
    # Filed under the gate's own key (the key every earlier version used, so saved failures
    # and a team's shared database keep replaying), never under one Hypothesis derives.
    assert db.data.get(b"tradeguard:broken-add:no-add-without-profitable-position:8")
    assert all(key.startswith(b"tradeguard:broken-add:") for key in db.data), sorted(db.data)
    # Another seed, one example: the saved failure is replayed first, and fails at once on the
    # same minimal counterexample.
    replayed = check(1, 99, db)
    assert replayed.status == "fail" and replayed.examples <= 3
    assert replayed.counterexample == found.counterexample
    # The control: the same run without the database does not find the bug in one example.
    assert check(1, 99, None).status == "pass"


def test_the_gates_database_view_refuses_keys_it_cannot_place() -> None:
    from hypothesis.database import InMemoryExampleDatabase

    from tradeguard.invariants._gate_search import KeyedDatabase

    db = InMemoryExampleDatabase()
    view = KeyedDatabase(db, b"tradeguard:e:i:8")
    view.save(b"K", b"1")
    view.move(b"K", b"K.secondary", b"1")
    view.save(b"K.pareto", b"2")
    assert {k: set(v) for k, v in db.data.items() if v} == {
        b"tradeguard:e:i:8.secondary": {b"1"}, b"tradeguard:e:i:8.pareto": {b"2"}}
    assert list(view.fetch(b"K.secondary")) == [b"1"]
    with pytest.raises(RuntimeError, match="files examples differently"):
        view.save(b"OTHER", b"3")


def test_same_seed_same_report() -> None:
    def run() -> dict[str, object]:
        r = check_trading_env(lambda: TradingEnv(config=EnvConfig(episode_length=6)), examples=5, max_steps=6, seed=7)
        return {x.invariant.id: (x.status, x.examples) for x in r.results}

    assert run() == run()


def test_bad_arguments_are_refused_clearly() -> None:
    with pytest.raises(InvalidConfig, match=r"examples=0 is out of range: expected in \[1, 100000\]"):
        check_trading_env(TradingEnv, examples=0)
    with pytest.raises(InvalidConfig, match=r"profile='nightly'; expected one of fast, ci, thorough\."):
        get_profile("nightly")


def test_database_spec_resolution(tmp_path: Path) -> None:
    from hypothesis.database import DirectoryBasedExampleDatabase

    assert resolve_database("none") is None
    assert isinstance(resolve_database(str(tmp_path)), DirectoryBasedExampleDatabase)


@pytest.mark.parametrize("spec", ["bogus://x", "S3://bucket/failures", "file:///tmp/db", "redis+tls://h:1/0"])
def test_a_database_url_of_an_unknown_scheme_is_refused(
    spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scheme = spec[: spec.index("://") + 3]
    message = (
        f"database={spec!r}: tradeguard does not know the scheme {scheme!r}; expected a directory path "
        "(e.g. .hypothesis/tradeguard), none (no database), or a shared Redis: redis://[:password@]host:port/db "
        "(rediss:// for TLS, unix:///path/redis.sock)."
    )
    with pytest.raises(InvalidConfig) as info:
        resolve_database(spec)
    assert str(info.value) == message
    monkeypatch.chdir(tmp_path)  # a wrongly accepted spec would become a directory here
    quick = ["check", "--scenario", "v10", "--examples", "1", "--max-steps", "2", "--only", "finite-rewards"]
    assert main([*quick, "--database", spec]) == 2
    assert capsys.readouterr().err == f"tradeguard check: error: {message}\n"
    monkeypatch.setenv("TRADEGUARD_DATABASE", spec)
    assert main(quick) == 2
    assert capsys.readouterr().err == f"tradeguard check: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_a_url_given_to_check_trading_env_as_its_database_is_refused() -> None:
    with pytest.raises(InvalidConfig) as info:
        check_trading_env(TradingEnv, database="redis://:hunter2@ci-redis:6379/0", examples=1)
    assert str(info.value) == (
        "database='redis://:***@ci-redis:6379/0' is a URL; check_trading_env takes a directory path, None, or an "
        "ExampleDatabase. For a shared Redis, pass resolve_database(url) (from tradeguard.invariants)."
    )


@pytest.mark.parametrize("spec", ["none", "NONE"])
def test_check_trading_env_takes_none_spelled_as_the_cli_spells_it(
    spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/ci.md's `none` means no database in Python too, not a directory called `none`."""
    monkeypatch.chdir(tmp_path)
    from broken_envs import IgnoringMachine

    def sells_while_flat() -> TradingEnv:
        env = TradingEnv(config=EnvConfig(episode_length=8))
        env.machine = IgnoringMachine(env.config, Action.SELL_ALL, Condition.IN_POSITION)
        return env

    only = ["no-sell-without-position"]
    report = check_trading_env(sells_while_flat, database=spec, examples=50, max_steps=8, seed=0, only=only)
    assert report.results[0].status == "fail"  # a failure a database would have saved
    assert list(tmp_path.iterdir()) == []
    # ... as a directory path does save it
    saved = check_trading_env(sells_while_flat, database="db", examples=50, max_steps=8, seed=0, only=only)
    assert saved.results[0].status == "fail"
    assert [p.name for p in tmp_path.iterdir()] == ["db"]


@pytest.mark.parametrize("spec", ["", "  "])
def test_an_empty_database_path_is_refused(spec: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        check_trading_env(TradingEnv, database=spec, examples=1)
    assert str(info.value) == (
        f"database={spec!r} names no directory; expected None or 'none' (no database), a directory path such as "
        "'.hypothesis/tradeguard', or an ExampleDatabase."
    )


@pytest.mark.parametrize("spec", ["db", "a:b/failures", "C:/failures", "C:\\failures", "./x://y", "-/x://y", "1a://b"])
def test_directory_paths_stay_directories_colons_included(spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hypothesis.database import DirectoryBasedExampleDatabase

    monkeypatch.chdir(tmp_path)
    db = resolve_database(spec)
    assert isinstance(db, DirectoryBasedExampleDatabase) and db.path == Path(spec)
    absolute = resolve_database(str(tmp_path / spec))
    assert isinstance(absolute, DirectoryBasedExampleDatabase) and absolute.path == tmp_path / spec


def test_profile_defaults_to_ci_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADEGUARD_PROFILE", raising=False)
    monkeypatch.setenv("CI", "true")
    assert get_profile().name == "ci" and get_profile().seed == 0
    monkeypatch.delenv("CI")
    assert get_profile().name == "fast"
    monkeypatch.setenv("TRADEGUARD_PROFILE", "thorough")
    assert get_profile().examples == 1000


PLUGIN_TEST = '''
from tradeguard.env import EnvConfig, TradingEnv
from tradeguard.invariants import invariant_suite

test_trading_env = invariant_suite(lambda: TradingEnv(config=EnvConfig(episode_length=6)), only=["no-sell-without-position", "metrics-match-trace", "step-after-end-refused"])
'''

BROKEN_PLUGIN_TEST = '''
from tradeguard.env import EnvConfig, TradingEnv
from tradeguard.invariants import invariant_suite

class Broken(TradingEnv):
    def step(self, action):
        return super().step(0 if not isinstance(action, int) or not 0 <= action < 7 else action)

test_broken = invariant_suite(lambda: Broken(config=EnvConfig(episode_length=6)), only=["action-range-enforced"])
'''


def test_pytest_plugin_parametrizes_the_catalog_for_a_user_env(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=PLUGIN_TEST)
    result = pytester.runpytest("--tradeguard-profile", "fast", "--tradeguard-seed", "1", "--tradeguard-database", "none", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*metrics-match-trace is not applicable: needs reported metrics*"])


def test_pytest_plugin_fails_a_broken_env_with_the_counterexample(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=BROKEN_PLUGIN_TEST)
    result = pytester.runpytest("--tradeguard-profile", "fast", "--tradeguard-database", "none", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*InvariantViolation*", "*FAIL action-range-enforced*", "*step(7) (one past the last action; valid actions are 0..6) returned normally*"])


def test_pytest_plugin_failures_show_the_violation_not_tradeguards_frames(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=BROKEN_PLUGIN_TEST)
    result = pytester.runpytest("--tradeguard-profile", "fast", "--tradeguard-database", "none", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "_pytest_plugin.py" not in out and "_gate.py" not in out, out
    assert "report.raise_for_failures()" not in out and "raise InvariantViolation" not in out, out
    result.stdout.fnmatch_lines([
        "*test_broken[[]action-range-enforced[]]*",
        "E   tradeguard.errors.InvariantViolation: tradeguard check: Broken via the tradeguard adapter*",
        "*step(7) (one past the last action; valid actions are 0..6) returned normally*",
    ])


def test_check_trading_env_hides_its_frames_only_under_a_violation(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=BROKEN_PLUGIN_TEST.split("test_broken =")[0] + '''
from tradeguard.invariants import check_trading_env

def test_raises_on_failure():
    check_trading_env(lambda: Broken(config=EnvConfig(episode_length=6)), only=["action-range-enforced"],
                      examples=5, seed=0, raise_on_failure=True)

def test_bad_argument():
    check_trading_env(Broken, examples=0)
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    violation, bad_argument = result.stdout.str().split("_ test_bad_argument _")
    assert "raise_on_failure=True)" in violation and "_gate.py" not in violation, violation
    assert "InvariantViolation: tradeguard check: Broken" in violation
    assert "_gate.py" in bad_argument and "examples=0 is out of range" in bad_argument, bad_argument


@pytest.mark.slow
def test_console_script_check_runs_in_a_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "TRADEGUARD_DATABASE": "none"}
    proc = subprocess.run(
        [sys.executable, "-m", "tradeguard", "check", "--examples", "3", "--max-steps", "5", "--only", "equity-identity,replay-determinism"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 passed, 0 failed, 0 not applicable" in proc.stdout
