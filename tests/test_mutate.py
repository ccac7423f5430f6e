"""``tradeguard mutate``: the mutants it makes, how it runs the gate on them, how it reports.

Fast tests cover the mutants (one token changed, the rest byte for byte, nothing made
of strings, annotations or messages), ids, sampling, the equivalents file, the
classification of a run and the command's errors. The ``slow`` tests run real gate
processes: on a toy env written to ``tmp_path`` (kills by invariant, crash and timeout;
equivalents; files untouched through Ctrl-C and ``kill -9``) and on tradeguard's own env,
imported as ``tradeguard.env._rules`` through the editable install's package-dir mapping.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tradeguard._cli import main
from tradeguard.errors import InvalidConfig
from tradeguard.mutate import (
    GateSpec,
    Mutant,
    list_mutants,
    load_equivalents,
    mutants_of_source,
    parse_equivalents,
    read_sources,
    run_mutation,
    sample_mutants,
)
from tradeguard.mutate._engine import classify
from tradeguard.mutate._runner import Interrupted, RunOutcome, WorkerPool

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- the mutants


def changes(text: str) -> list[tuple[int, str]]:
    return [(m.line, m.change) for m in mutants_of_source(text, "t.py")]


def test_every_operator_kind_and_nothing_else() -> None:
    src = textwrap.dedent(
        """\
        def f(a, b, c):
            if a < b <= c and not a is not None:
                return a + b * 2 - c // 3 % 4 ** 1
            x = -a
            x += 1
            return a > b or a in c or a != 0.5 or True
        """
    )
    assert changes(src) == [
        (2, "< -> <="),
        (2, "<= -> <"),
        (2, "and -> or"),
        (2, "not x -> x"),
        (2, "is not -> is"),
        (3, "+ -> -"),
        (3, "* -> /"),
        (3, "2 -> 3"),
        (3, "- -> +"),
        (3, "// -> /"),
        (3, "3 -> 4"),
        (3, "% -> /"),
        (3, "4 -> 5"),
        (3, "** -> *"),
        (3, "1 -> 0"),
        (4, "-x -> x"),
        (5, "+= -> -="),
        (5, "1 -> 0"),
        (6, "> -> >="),
        (6, "or -> and"),
        (6, "in -> not in"),
        (6, "or -> and"),
        (6, "!= -> =="),
        (6, "0.5 -> 1.5"),
        (6, "or -> and"),
        (6, "True -> False"),
    ]


def test_a_mutant_changes_one_token_and_keeps_every_other_byte() -> None:
    src = textwrap.dedent(
        """\
        # a comment that ast.unparse would drop
        LIMIT   =  (0x10)   # odd spacing, hex, parentheses

        def ok(cash, cost, fee):   # trailing comment
            return (cash >= cost + fee) and not  (cost  <  0)
        """
    )
    mutants = mutants_of_source(src, "t.py")
    assert len(mutants) == 7
    for m in mutants:
        out = m.apply(src)
        before, after = src.splitlines(), out.splitlines()
        assert len(before) == len(after)
        differing = [i for i, (x, y) in enumerate(zip(before, after, strict=True)) if x != y]
        assert differing == [m.line - 1], m
        assert src[: m.start] == out[: m.start]
        assert src[m.end :] == out[m.start + len(m.replacement) :]
        assert src[m.start : m.end] == m.original or " ".join(src[m.start : m.end].split()) in (m.original, "not")
        assert src.splitlines()[m.line - 1][m.column - 1 :].startswith(src[m.start : m.end])
    hexed = next(m for m in mutants if m.line == 2)
    assert hexed.apply(src).splitlines()[1] == "LIMIT   =  (17)   # odd spacing, hex, parentheses"
    negated = next(m for m in mutants if m.change == "not x -> x")
    assert negated.apply(src).splitlines()[4] == "    return (cash >= cost + fee) and (cost  <  0)"


def test_messages_annotations_and_declarations_are_not_mutated() -> None:
    src = textwrap.dedent(
        '''\
        """Module docstring 1 + 1."""
        import logging, warnings
        from typing import Literal
        __all__ = ["a" + "b"]
        __slots__ = ("x",)
        log = logging.getLogger(__name__)
        Side = Literal[0, 1]

        @decorate(frozen=True, size=3)
        def f(a: int = 0, b: "x" = None) -> Literal[1]:
            """Doc 2 < 3."""
            n: int = 5
            print(a + 1)
            warnings.warn(f"{a - 1}", stacklevel=2)
            log.info("x %d", a * 2)
            logging.getLogger(__name__).warning("%d", a - 1)
            assert a > 0, f"bad {a + 1}"
            if a == 1:
                raise ValueError("x" + str(a - 1))
            return "label " + str(b)

        if __name__ == "__main__":
            f(2)
        '''
    )
    assert changes(src) == [
        (10, "0 -> 1"),  # a default value is behaviour
        (12, "5 -> 6"),  # the value of an annotated assignment is behaviour
        (17, "> -> >="),  # an assertion's condition is behaviour; its message is not
        (17, "0 -> 1"),
        (18, "== -> !="),
        (18, "1 -> 0"),
        (23, "2 -> 3"),  # the body of the main guard is code; its test is not
    ]


def test_numbers_print_as_numbers() -> None:
    assert changes("x = (0, 1, 2, 10_000, 0x1f, 0.0, 1.0, 2.5, 1e400)\n") == [
        (1, "0 -> 1"),
        (1, "1 -> 0"),
        (1, "2 -> 3"),
        (1, "10_000 -> 10001"),
        (1, "0x1f -> 32"),
        (1, "0.0 -> 1.0"),
        (1, "1.0 -> 0.0"),
        (1, "2.5 -> 3.5"),
        # 1e400 is inf: inf + 1 has no literal, so no mutant
    ]


def test_ids_are_stable_distinct_and_follow_the_code() -> None:
    src = "def f(a, b):\n    return a < b and a + 1 > 0\n"
    first = mutants_of_source(src, "pkg/rules.py")
    again = mutants_of_source(src, "pkg/rules.py")
    assert [m.id for m in first] == [m.id for m in again]
    assert len({m.id for m in first}) == len(first)
    assert all(len(m.id) == 12 and int(m.id, 16) >= 0 for m in first)
    elsewhere = mutants_of_source(src, "pkg/other.py")
    assert not {m.id for m in first} & {m.id for m in elsewhere}
    moved = mutants_of_source("import os\n" + src, "pkg/rules.py")
    assert not {m.id for m in first} & {m.id for m in moved}


def test_a_file_that_is_not_python_is_refused_naming_the_line() -> None:
    with pytest.raises(InvalidConfig, match=r"--source 'bad.py' is not valid Python: line 2"):
        mutants_of_source("x = 1\ndef f(:\n", "bad.py")


def _mutants(n: int) -> list[Mutant]:
    src = "".join(f"x{i} = {i + 2}\n" for i in range(n))
    return mutants_of_source(src, "m.py")


def test_a_sample_depends_on_the_seed_only() -> None:
    pool = _mutants(40)
    a = sample_mutants(pool, 10, seed=0)
    assert len(a) == 10 and len({m.id for m in a}) == 10
    assert [m.id for m in sample_mutants(list(reversed(pool)), 10, seed=0)] == [m.id for m in a]
    assert [m.id for m in sample_mutants(pool, 10, seed=1)] != [m.id for m in a]
    assert [m.line for m in a] == sorted(m.line for m in a)
    assert sample_mutants(pool, 40, seed=3) == sorted(pool, key=lambda m: m.line)
    assert sample_mutants(pool, 99, seed=3) == sorted(pool, key=lambda m: m.line)


# --------------------------------------------------------------------------- the equivalents file


def test_equivalents_file_lines() -> None:
    text = "# header\n\n3f2a9c1b7d04  never read | not even once\n0123456789ab\tthe table has 8 rows\n"
    found = parse_equivalents(text, where="eq.txt")
    assert {k: (v.reason, v.line) for k, v in found.items()} == {
        "3f2a9c1b7d04": ("never read | not even once", 3),
        "0123456789ab": ("the table has 8 rows", 4),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3f2a9c1b7d04\n", "eq.txt:1: mutant 3f2a9c1b7d04 has no reason"),
        ("3f2a9c1b7d0  short id\n", "eq.txt:1: '3f2a9c1b7d0' is not a mutant id; expected 12 hex digits"),
        ("3F2A9C1B7D04  upper case\n", "is not a mutant id"),
        ("3f2a9c1b7d04  a\n\n3f2a9c1b7d04  b\n", "eq.txt:3: mutant 3f2a9c1b7d04 is listed twice (first at line 1)"),
    ],
)
def test_a_bad_equivalents_line_is_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        parse_equivalents(text, where="eq.txt")
    assert message in str(info.value)


def test_a_missing_equivalents_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="does not exist; expected a text file of 'ID  REASON' lines"):
        load_equivalents(str(tmp_path / "nope.txt"))
    with pytest.raises(InvalidConfig, match="is a directory"):
        load_equivalents(str(tmp_path))


# --------------------------------------------------------------------------- reading the sources


def test_sources_are_files_or_directories_of_python(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__pycache__").mkdir()
    for name in ("pkg/a.py", "pkg/sub/b.py", "pkg/__pycache__/c.py", "pkg/notes.txt", "rules.py"):
        (tmp_path / name).write_text("x = 1\n")
    found = read_sources(["pkg", "rules.py", "pkg/a.py"], cwd=str(tmp_path))
    assert [(s.path, s.explicit) for s in found] == [("pkg/a.py", True), ("pkg/sub/b.py", False), ("rules.py", True)]
    with pytest.raises(InvalidConfig, match=r"--source 'rulez.py' does not exist .* Did you mean 'rules.py'\?"):
        read_sources(["rulez.py"], cwd=str(tmp_path))
    with pytest.raises(InvalidConfig, match=r"'pkg/notes.txt' is not a Python source file; expected a \.py file"):
        read_sources(["pkg/notes.txt"], cwd=str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidConfig, match="'empty' is a directory with no Python file"):
        read_sources(["empty"], cwd=str(tmp_path))


# --------------------------------------------------------------------------- judging a run


def outcome(**kw: Any) -> RunOutcome:
    base: dict[str, Any] = {
        "returncode": 0,
        "stdout": "",
        "stderr": "",
        "seconds": 1.0,
        "timed_out": False,
        "served": {"m": "/p/m.py"},
        "mutated_served": True,
        "started": True,
    }
    return RunOutcome(**{**base, **kw})


def gate_json(*failing: str) -> str:
    invariants = [{"id": "equity-identity", "status": "pass", "violations": []}] + [
        {"id": i, "status": "fail", "violations": [{"message": f"step 3: {i} broke\nmore"}]} for i in failing
    ]
    return "noise printed by the env\n" + json.dumps({"passed": not failing, "invariants": invariants}, indent=2)


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"stdout": gate_json()}, ("survived", (), "")),
        (
            {"returncode": 1, "stdout": gate_json("self-financing", "equity-identity")},
            ("invariant", ("self-financing", "equity-identity"), "step 3: self-financing broke"),
        ),
        (
            {"returncode": 1, "stderr": 'Traceback...\n  File "x.py", line 1\nZeroDivisionError: division by zero\n'},
            ("crash", (), "ZeroDivisionError: division by zero"),
        ),
        (
            {"returncode": 2, "stderr": "tradeguard check: error: --env 'toy:make': cannot import 'toy'\n"},
            ("crash", (), "tradeguard check: error: --env 'toy:make': cannot import 'toy'"),
        ),
        ({"returncode": -9, "timed_out": True}, ("timeout", (), "killed after 30 s")),
        (
            {"stdout": gate_json(), "mutated_served": False},
            ("unverified", (), "the run ended without importing the mutated module"),
        ),
        (
            {"stdout": gate_json(), "bypassed": ("/p/m.py",)},
            ("unverified", (), "imported without the mutant: /p/m.py"),
        ),
        ({"started": False, "returncode": 1, "stderr": "boom\n"}, ("unverified", (), "the worker did not start: boom")),
    ],
    ids=["passes", "invariants", "traceback", "import-error", "timeout", "not-served", "bypassed", "no-start"],
)
def test_how_a_run_is_judged(kw: dict[str, Any], expected: tuple[str, tuple[str, ...], str]) -> None:
    assert classify(outcome(**kw), 30.0) == expected


# --------------------------------------------------------------------------- the import hook


def test_the_hook_serves_a_package_that_reads_its_own_data_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tradeguard.env reads its scenarios with importlib.resources: a served package must still find them."""
    import importlib

    from tradeguard.mutate._boot import _Log, _ServeFinder

    pkg = tmp_path / "respkg_for_hook"
    pkg.mkdir()
    (pkg / "data.txt").write_text("shipped")
    init = pkg / "__init__.py"
    init.write_text("from importlib import resources\nDATA = resources.files(__name__).joinpath('data.txt').read_text()\nN = 1\n")
    served = init.read_text().replace("N = 1", "N = 2")
    finder = _ServeFinder({os.path.realpath(init): served}, os.path.realpath(init), _Log(str(tmp_path / "log.jsonl")))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    sys.meta_path.insert(0, finder)
    try:
        module = importlib.import_module("respkg_for_hook")
        assert (module.N, module.DATA, module.__file__) == (2, "shipped", str(init))
    finally:
        sys.meta_path.remove(finder)
        sys.modules.pop("respkg_for_hook", None)
    assert sorted(p.name for p in pkg.iterdir()) == ["__init__.py", "data.txt"], "bytecode was written"
    events = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [(e["event"], e["module"], e["mutated"]) for e in events] == [("served", "respkg_for_hook", True)]


# --------------------------------------------------------------------------- the command's errors


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return status, out, err


RULES = str(ROOT / "env" / "_rules.py")
OWN = ["mutate", "--env", "tradeguard/Trading-v0"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*OWN, "--source", RULES, "--sample", "0"], "--sample 0 is out of range: expected in [1, 1000000]"),
        ([*OWN, "--source", RULES, "--jobs", "0"], "--jobs 0 is out of range: expected in [1, 256]"),
        ([*OWN, "--source", RULES, "--jobs", "-3"], "--jobs -3 is out of range"),
        ([*OWN, "--source", RULES, "--timeout", "0"], "--timeout 0.0 must be greater than 0.0"),
        ([*OWN, "--source", RULES, "--fail-under", "101"], "--fail-under 101.0 is out of range: expected in [0.0, 100.0]"),
        ([*OWN, "--source", "env/_rulez.py"], "--source 'env/_rulez.py' does not exist"),
        ([*OWN, "--source", str(ROOT / "env" / "_rulez.py")], "Did you mean '_rules.py'?"),
        ([*OWN, "--source", str(ROOT / "README.md")], "is not a Python source file"),
        (["mutate", "--env", "tradeguard/Trading-v1", "--source", RULES], "Did you mean 'tradeguard/Trading-v0'?"),
        (["mutate", "--env", "mymodule", "--source", RULES], "expected tradeguard/Trading-v0 (tradeguard's own env)"),
        ([*OWN, "--source", RULES, "--sample", "3", "--mutant", "0123456789ab"], "give one or the other"),
        ([*OWN, "--source", RULES, "--equivalent", "/nonexistent/eq.txt"], "--equivalent '/nonexistent/eq.txt' does not exist"),
        ([*OWN, "--env", "tradeguard/Trading-v0", "--source", RULES], "names an env twice; give each once"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.perf_counter()
    status, out, err = run_cli(argv, capsys)
    assert status == 2 and out == ""
    assert err.startswith("tradeguard mutate: error: "), err
    assert message in err, err
    assert "Traceback" not in err
    assert time.perf_counter() - started < 5, "refused only after running something"


def test_list_shows_every_mutant_without_running(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    eq = tmp_path / "eq.txt"
    ids = [m.id for m in list_mutants(read_sources([RULES]))]
    eq.write_text(f"{ids[0]}  shown equivalent in a test\n")
    status, out, err = run_cli([*OWN, "--source", RULES, "--list", "--equivalent", str(eq)], capsys)
    assert status == 0, err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ids
    assert "(equivalent: shown equivalent in a test)" in lines[0]
    assert lines[-1].startswith(f"{len(ids)} mutants in 1 file(s)")
    status, out, _ = run_cli([*OWN, "--source", RULES, "--list", "--json"], capsys)
    assert [m["id"] for m in json.loads(out)] == ids


def test_help_explains_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(["mutate", "--help"], capsys)
    assert status == 0
    for text in ("killed", "crash", "timeout", "never modified", "--equivalent", "examples:", "exit status:"):
        assert text in out


# --------------------------------------------------------------------------- a toy env, for real

TOY_RULES = '''\
"""Rules of the toy env: a position between 0 and HIGH."""

STEPS = 5
LIMITS = (0, 10)
HIGH = LIMITS[len(LIMITS) - 1]


def clip(x: int) -> int:
    """The position, kept within [0, HIGH]."""
    return min(max(x, 0), HIGH)


def spin(n: int) -> int:
    i = 0
    while i < n:
        i += 1
    return i


SPUN = spin(3)  # computed at import, never used
'''

TOY_ENV = '''\
import gymnasium as gym
import numpy as np

from toy_rules import HIGH, STEPS, clip


class ToyEnv(gym.Env):
    def __init__(self) -> None:
        self.action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.spaces.Box(0.0, float(HIGH), shape=(1,), dtype=np.float64)
        self.t = 0
        self.x = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.x = 0
        return np.array([float(self.x)]), {}

    def step(self, action):
        if isinstance(action, bool) or not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not 0 or 1")
        if self.t >= STEPS:
            raise RuntimeError("episode over: call reset()")
        self.t += 1
        self.x = clip(self.x + int(action) * 3)
        done = self.t >= STEPS
        return np.array([float(self.x)]), 0.0, done, False, {}


def make_env() -> ToyEnv:
    return ToyEnv()
'''

TOY_GATE = GateSpec(env="toy_env:make_env", examples=10, max_steps=8, example_timeout=300)
TOY_ARGS = ["--examples", "10", "--max-steps", "8", "--example-timeout", "300"]
TOY_TIMEOUT = 20.0
"""Far longer than the toy's unmutated run (2 s; 10 s on a loaded machine), and far shorter than
the gate's own bound on an import or an example (300 s here), so that a hang is ours to kill."""


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """The toy project: tmp_path/project (tmp_path/tmp is free for temporary files)."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "toy_rules.py").write_text(TOY_RULES)
    (project / "toy_env.py").write_text(TOY_ENV)
    return project


def find(path: Path, line_text: str, change: str, shown: str | None = None, *, at: str | None = None) -> Mutant:
    """The one mutant of ``path`` with ``change`` on the line containing ``line_text``
    (at the start of ``at`` in that line, when the line has several)."""
    text = path.read_text()
    lines = text.splitlines()
    found = [
        m
        for m in mutants_of_source(text, shown or path.name)
        if line_text in lines[m.line - 1]
        and m.change == change
        and (at is None or lines[m.line - 1].index(at) + 1 == m.column)
    ]
    assert len(found) == 1, found
    return found[0]


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``directory``: content hash and mtime (ns)."""
    return {
        str(p.relative_to(directory)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_toy_kills_are_told_apart_and_equivalents_left_out(toy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Python would write bytecode next to the toy's modules: the workers must not.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    by_invariant = find(toy / "toy_env.py", "if self.t >= STEPS", ">= -> >")
    crash = find(toy / "toy_rules.py", "HIGH = LIMITS", "- -> +")  # LIMITS[3]: IndexError at import
    timeout = find(toy / "toy_rules.py", "i += 1", "+= -> -=")  # spin() never ends, at import
    equivalent = find(toy / "toy_rules.py", "SPUN = spin(3)", "3 -> 4")  # SPUN is never read
    wrongly_listed = find(toy / "toy_env.py", "done = self.t >= STEPS", ">= -> >")
    survivor = find(toy / "toy_rules.py", "return min(max(x, 0), HIGH)", "0 -> 1")
    equivalents = parse_equivalents(
        f"{equivalent.id}  SPUN is computed and never read\n"
        f"{wrongly_listed.id}  listed by mistake: a test of the contradiction report\n"
        "0123456789ab  a mutant of code that is gone\n"
    )
    before = snapshot(toy)
    report = run_mutation(
        TOY_GATE,
        ["toy_rules.py", "toy_env.py"],
        ids=[m.id for m in (by_invariant, crash, timeout, equivalent, wrongly_listed, survivor)],
        timeout=TOY_TIMEOUT,
        jobs=2,
        equivalents=equivalents,
        cwd=str(toy),
    )
    assert snapshot(toy) == before, "a file under the project changed (or bytecode/.hypothesis appeared)"
    verdicts = {r.mutant.id: (r.status, r.invariants) for r in report.results}
    assert verdicts == {
        by_invariant.id: ("invariant", ("step-after-end-refused",)),
        crash.id: ("crash", ()),
        timeout.id: ("timeout", ()),
        equivalent.id: ("survived", ()),
        wrongly_listed.id: ("invariant", ("valid-steps-do-not-raise",)),
        survivor.id: ("survived", ()),
    }
    crashed = next(r for r in report.results if r.mutant.id == crash.id)
    assert "IndexError" in crashed.detail and "toy_env" in crashed.detail, crashed.detail
    assert report.modules == {"toy_rules.py": ("toy_rules",), "toy_env.py": ("toy_env",)}
    assert [r.mutant.id for r in report.equivalents] == [equivalent.id]
    assert [r.mutant.id for r in report.contradicted] == [wrongly_listed.id]
    assert [r.mutant.id for r in report.survivors] == [survivor.id]
    assert [e.id for e in report.stale_equivalents] == ["0123456789ab"]
    assert report.counted == 5 and report.kill_rate == pytest.approx(4 / 5)

    text = report.format()
    assert "kill rate 80.0%: 4 of 5 killed (1 shown equivalent, not counted)" in text
    assert "killed by an invariant     2   step-after-end-refused 1, valid-steps-do-not-raise 1" in text
    assert "killed by a crash          1" in text and "killed by a timeout        1" in text
    assert f"toy_rules.py:10:23  {survivor.id}  0 -> 1" in text
    assert "-    return min(max(x, 0), HIGH)\n    +    return min(max(x, 1), HIGH)" in text
    assert (
        f"rerun: tradeguard mutate --env toy_env:make_env --source toy_rules.py --mutant {survivor.id} "
        "--profile ci --examples 10 --max-steps 8 --example-timeout 300" in text
    )
    assert "SPUN is computed and never read" in text
    assert "listed as equivalent but killed (1)" in text
    assert "line 3: 0123456789ab" in text
    data = report.as_dict()
    assert (data["killed_by_invariant"], data["killed_by_crash"], data["killed_by_timeout"]) == (2, 1, 1)
    assert (data["survived"], data["equivalent"], data["counted"], data["kill_rate"]) == (1, 1, 5, 0.8)


@pytest.mark.slow
def test_the_unmutated_code_must_pass_the_gate(
    toy: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # takes 1.0 (not in Discrete(2)) as an action
    broken = TOY_ENV.replace("isinstance(action, bool) or not self.action_space.contains(action)",
                             "action not in (0, 1)")
    (toy / "toy_env.py").write_text(broken)
    monkeypatch.chdir(toy)
    status, out, err = run_cli(["mutate", "--env", "toy_env:make_env", "--source", "toy_rules.py", *TOY_ARGS], capsys)
    assert status == 2 and out == ""
    assert "the gate fails on the unmutated code (action-range-enforced)" in err
    assert (
        "Run `tradeguard check --env toy_env:make_env --profile ci --seed 0 --examples 10 --max-steps 8 "
        "--timeout 300 --database none`" in err
    )


@pytest.mark.slow
def test_a_file_the_env_does_not_import_is_refused_or_skipped(
    toy: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (toy / "unused.py").write_text("def f(a):\n    return a + 1\n")
    monkeypatch.chdir(toy)
    argv = ["mutate", "--env", "toy_env:make_env", *TOY_ARGS]
    status, out, err = run_cli([*argv, "--source", "toy_rules.py", "unused.py"], capsys)
    assert status == 2 and out == ""
    assert "--source 'unused.py' is not imported when the gate runs on --env toy_env:make_env" in err
    assert "Of the files given, the env imports: toy_rules.py" in err
    # In a directory given, such a file is skipped, and said to be.
    status, out, err = run_cli([*argv, "--source", ".", "--mutant", find(toy / "toy_rules.py", "SPUN", "3 -> 4").id], capsys)
    assert status == 0, err
    assert "not imported by the env, so not mutated: unused.py" in out
    assert "mutants are imported as toy_env (toy_env.py), toy_rules (toy_rules.py)" in out


TOY_ZERO = '''\
import gymnasium as gym
import numpy as np

from toy_rules import clip


class ZeroEnv(gym.Env):
    """Always flat: its observation is the position a sell of everything leaves, clip(-1) = 0."""

    def __init__(self) -> None:
        self.action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.spaces.Box(0.0, 0.0, shape=(1,), dtype=np.float64)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([float(clip(-1))]), {}

    def step(self, action):
        if isinstance(action, bool) or not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not 0 or 1")
        if self.t >= 3:
            raise RuntimeError("episode over: call reset()")
        self.t += 1
        return np.array([float(clip(-1))]), 0.0, self.t >= 3, False, {}


def make_env() -> ZeroEnv:
    return ZeroEnv()
'''


@pytest.mark.slow
def test_several_envs_make_one_gate_and_each_mutant_faces_the_envs_that_import_it(toy: Path) -> None:
    (toy / "toy_zero.py").write_text(TOY_ZERO)
    zero_gate = GateSpec(env="toy_zero:make_env", examples=10, max_steps=8, example_timeout=300)
    # Survives the toy env's gate (its positions never go below 0), fails the zero env's observation space.
    floor = find(toy / "toy_rules.py", "return min(max(x, 0), HIGH)", "0 -> 1")
    # Caught by the toy env's gate, the first: the zero env's is never run on it.
    ends = find(toy / "toy_env.py", "if self.t >= STEPS", ">= -> >")
    # In the zero env's file: the toy env does not import it, so only the zero env's gate judges it.
    zero_only = find(toy / "toy_zero.py", "if self.t >= 3", ">= -> >")
    report = run_mutation(
        [TOY_GATE, zero_gate], ["toy_rules.py", "toy_env.py", "toy_zero.py"],
        ids=[floor.id, ends.id, zero_only.id], timeout=TOY_TIMEOUT, jobs=2, cwd=str(toy),
    )
    verdicts = {r.mutant.id: (r.status, r.invariants, r.env) for r in report.results}
    assert verdicts == {
        floor.id: ("invariant", ("observation-in-space",), "toy_zero:make_env"),
        ends.id: ("invariant", ("step-after-end-refused",), "toy_env:make_env"),
        zero_only.id: ("invariant", ("step-after-end-refused",), "toy_zero:make_env"),
    }
    assert report.modules == {"toy_rules.py": ("toy_rules",), "toy_env.py": ("toy_env",), "toy_zero.py": ("toy_zero",)}
    assert report.kill_rate == 1.0
    text = report.format()
    assert "envs toy_env:make_env, toy_zero:make_env" in text
    assert "gates (2; a mutant is killed when any fails, tried in this order):" in text
    assert "observation-in-space (on toy_zero:make_env)" in text
    assert report.rerun_command(report.results[0]).startswith(
        "tradeguard mutate --env toy_env:make_env --env toy_zero:make_env --source ")
    assert report.as_dict()["envs"] == ["toy_env:make_env", "toy_zero:make_env"]

    # With the toy env's gate alone, the first mutant survives: the second env is what killed it.
    alone = run_mutation(TOY_GATE, ["toy_rules.py"], ids=[floor.id], timeout=TOY_TIMEOUT, jobs=1, cwd=str(toy))
    assert [(r.status, r.env) for r in alone.results] == [("survived", None)]


def _interruptible() -> None:
    """In the child, before it runs: Ctrl-C's default disposition, as a terminal gives it. A test run
    started in the background by a shell (CI scripts, ``cmd &``) ignores SIGINT, and its children
    inherit that: Python then installs no KeyboardInterrupt, and the Ctrl-C these tests send is lost."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_mutate(toy: Path, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    """``tradeguard mutate`` on the toy's never-ending mutant, its temporary files under toy/tmp."""
    tmp = toy.parent / "tmp"
    tmp.mkdir()
    hang = find(toy / "toy_rules.py", "i += 1", "+= -> -=")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tradeguard", "mutate", "--env", "toy_env:make_env", "--source", "toy_rules.py",
         "--mutant", hang.id, "--timeout", "120", *TOY_ARGS, *extra],
        cwd=toy, env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_interruptible,
    )  # fmt: skip
    return proc, tmp


def _wait_for_mutant_worker(tmp: Path, logs: str = "tradeguard-mutate-*/run-*.jsonl") -> set[int]:
    """The pids of the workers once one of them has imported the mutant (the hanging one)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for log in tmp.glob(logs):
            events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
            if any(e.get("mutated") for e in events):
                return {int(e["pid"]) for e in events}
        time.sleep(0.2)
    raise AssertionError("no worker imported the mutant within 60 s")


def _gone(pids: set[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = set()
        for pid in pids:
            try:
                os.kill(pid, 0)
                with open(f"/proc/{pid}/stat") as f:  # a zombie is gone, awaiting its reaper
                    if f.read().split(")")[-1].split()[0] != "Z":
                        alive.add(pid)
            except (ProcessLookupError, FileNotFoundError):
                pass
        if not alive:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_stopping_mutate_stops_its_workers_and_leaves_files_alone(toy: Path, how: str) -> None:
    before = snapshot(toy)
    proc, tmp = _start_mutate(toy)
    try:
        workers = _wait_for_mutant_worker(tmp)
        proc.send_signal(getattr(signal, how))
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert _gone(workers, within=10), f"workers {workers} outlived tradeguard mutate ({how})"
    assert snapshot(toy) == before
    if how == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, err
        assert "interrupted; every run was stopped. Your files were never modified" in err
        assert list(tmp.iterdir()) == [], "the temporary directory was left behind"


@pytest.mark.slow
def test_stopping_the_pool_kills_a_run_in_flight(toy: Path) -> None:
    """Ctrl-C's path without the watchdog's help: the parent (this test) stays alive."""
    import threading

    rules = toy / "toy_rules.py"
    hang = find(rules, "i += 1", "+= -> -=")
    served = {os.path.realpath(rules): hang.apply(rules.read_text())}
    raised: list[BaseException] = []
    with WorkerPool(jobs=1, cwd=str(toy)) as pool:

        def run() -> None:
            try:
                pool.run(TOY_GATE.check_argv(), served, os.path.realpath(rules), 120)
            except BaseException as exc:
                raised.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        workers = _wait_for_mutant_worker(Path(pool.workdir), "run-*.jsonl")
        started = time.monotonic()
        pool.stop()
        thread.join(timeout=10)
        assert not thread.is_alive() and time.monotonic() - started < 5
        assert _gone(workers, within=1)
    assert [type(e).__name__ for e in raised] == ["Interrupted"]
    with pytest.raises(Interrupted):
        pool.run(TOY_GATE.check_argv(), served, None, 5)  # a stopped pool starts nothing


# --------------------------------------------------------------------------- tradeguard's own env


@pytest.mark.slow
def test_mutants_of_an_editable_package_module_are_what_the_gate_imports() -> None:
    """env/_rules.py is imported as tradeguard.env._rules through the editable install's
    package-dir mapping: the unmutated run passes (no false kill), a mutant that makes money
    from nothing is killed by the accounting invariants, and each run says it served the file."""
    rules = ROOT / "env" / "_rules.py"
    text = rules.read_text()
    free_money = find(
        rules, "PortfolioState(cash - notional - fee, position + units", "- -> +", str(rules), at="- notional"
    )
    gate = GateSpec(env="tradeguard/Trading-v0", examples=25)
    argv = gate.check_argv()
    before = snapshot(ROOT / "env")
    with WorkerPool(jobs=2, cwd=str(ROOT)) as pool:
        healthy = pool.run(argv, {os.path.realpath(rules): text}, os.path.realpath(rules), 300)
        broken = pool.run(argv, {os.path.realpath(rules): free_money.apply(text)}, os.path.realpath(rules), 300)
    assert snapshot(ROOT / "env") == before
    for run in (healthy, broken):
        assert run.served == {"tradeguard.env._rules": os.path.realpath(rules)} and run.mutated_served
        assert run.bypassed == ()
    assert classify(healthy, 300) == ("survived", (), ""), healthy.stderr
    status, invariants, _ = classify(broken, 300)
    assert status == "invariant" and "self-financing" in invariants, (status, invariants, broken.stderr[-2000:])


@pytest.mark.slow
def test_a_small_sample_of_tradeguards_own_env(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    before = snapshot(ROOT / "env")
    argv = ["mutate", "--env", "tradeguard/Trading-v0", "--source", "env/_rules.py", "env/_reward.py",
            "--sample", "4", "--seed", "0", "--examples", "10", "--json"]  # fmt: skip
    status, out, err = run_cli(argv, capsys)
    assert status == 0, err
    assert snapshot(ROOT / "env") == before
    data = json.loads(out)
    assert data["modules"] == {"env/_rules.py": ["tradeguard.env._rules"], "env/_reward.py": ["tradeguard.env._reward"]}
    assert data["run"] == 4 and len(data["mutants"]) == 4
    assert data["killed"] == data["killed_by_invariant"] + data["killed_by_crash"] + data["killed_by_timeout"]
    assert data["killed"] + data["survived"] + data["equivalent"] == 4
    assert data["kill_rate"] == round(data["killed"] / data["counted"], 4)
    all_ids = {m.id for f in ("env/_rules.py", "env/_reward.py") for m in mutants_of_source((ROOT / f).read_text(), f)}
    for m in data["mutants"]:
        assert m["id"] in all_ids
        assert m["status"] in ("invariant", "crash", "timeout", "survived")
        assert m["diff"].startswith(f"--- {m['path']}\n+++ {m['path']} (mutant {m['id']})\n")
        assert (m["status"] == "invariant") == bool(m["invariants"])


# --------------------------------------------------------------------------- docs/mutate.md

DOC = ROOT / "docs" / "mutate.md"
_BLOCK = re.compile(r"```(\w+)( [\w.]+)?\n(.*?)```", re.S)


def doc_blocks() -> list[tuple[str, str | None, str]]:
    """(language, file name or None, body) of every fenced block of docs/mutate.md, in order."""
    return [(m.group(1), (m.group(2) or "").strip() or None, m.group(3)) for m in _BLOCK.finditer(DOC.read_text())]


def shows(output: str, shown: str) -> None:
    """Every line of ``shown`` appears in ``output``, in order (``...`` stands for lines left out)."""
    printed = iter(line.rstrip() for line in output.splitlines())
    for line in shown.splitlines():
        if line.strip() != "...":
            assert line.rstrip() in printed, f"docs/mutate.md shows {line!r}, which the command does not print (in this order)"


def _doc_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None, str]]:
    """The page's toy env, rules and equivalents file written in ``tmp_path``, the working directory."""
    blocks = doc_blocks()
    files = {name: body for _, name, body in blocks if name}
    assert sorted(files) == ["equivalents.txt", "toy_env.py", "toy_rules.py"]
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    monkeypatch.chdir(tmp_path)
    return blocks


# The page's example is three tests, one per command, so that pytest-xdist can run them side by side.
@pytest.mark.slow
@pytest.mark.parametrize("which", [0, 1], ids=["without-equivalents", "with-equivalents"])
def test_the_docs_commands_run_and_print_what_they_show(
    which: int, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both commands of docs/mutate.md on its toy env, and their output as the page shows it."""
    blocks = _doc_files(tmp_path, monkeypatch)
    runs = [
        (body.strip(), blocks[i + 1][2])
        for i, (lang, name, body) in enumerate(blocks)
        if lang == "bash" and body.startswith("tradeguard mutate --env toy_env")
    ]
    assert len(runs) == 2
    command, shown = runs[which]
    status = main(shlex.split(command)[1:])
    out = capsys.readouterr().out
    assert status == 0
    shows(out, shown)


@pytest.mark.slow
def test_the_docs_python_example_runs_and_prints_what_it_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = _doc_files(tmp_path, monkeypatch)
    code = next(body for lang, name, body in blocks if lang == "python" and name is None and "run_mutation" in body)
    exec(compile(code, str(DOC), "exec"), {})
    shown = code.split("# ", 2)[-1].splitlines()[0]  # the comment that says what the first print prints
    assert shown == "0.0 ['toy_rules.py:5:9', 'toy_rules.py:6:14', 'toy_rules.py:20:23']"
    assert capsys.readouterr().out.splitlines()[0] == shown


SLOW_ENV = '''\
import time

import gymnasium as gym
import numpy as np

import slow_rules


class SlowEnv(gym.Env):
    action_space = gym.spaces.Discrete(2)
    observation_space = gym.spaces.Box(0, 1, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        time.sleep(slow_rules.PAUSE)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 0.0, False, True, {}


def make_env():
    return SlowEnv()
'''


@pytest.mark.slow
def test_stopping_mutate_while_it_runs_the_unmutated_gate_stops_at_once(tmp_path: Path) -> None:
    """Ctrl-C during the first phase (the gate on the unmutated code, run in a side thread) kills that
    run too: mutate used to wait for it to finish (minutes here) before it stopped."""
    (tmp_path / "slow_env.py").write_text(SLOW_ENV)
    (tmp_path / "slow_rules.py").write_text("PAUSE = 0.5\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tradeguard", "mutate", "--env", "slow_env:make_env", "--source", "slow_rules.py",
         "--examples", "50"],
        cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_interruptible,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not any(tmp.glob("tradeguard-mutate-*/run-*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # the unmutated run is under way (its env sleeps 0.5 s a reset)
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - started < 10, "mutate waited for the unmutated run before it stopped"
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted; every run was stopped" in err
