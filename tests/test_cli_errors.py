"""Every numeric option of every subcommand, given a bad number: exit 2 and a message naming it as typed.

The sweep is discovered from the parser (``build_parser()``'s subcommands): every option
whose argparse ``type`` is ``int`` or ``float``, and every ``--seed``, gets -1, 0 and 10**12,
and a float option nan, inf and -0.5 too. Each case either is refused (exit 2, ``tradeguard
CMD: error: --opt VALUE ...`` on stderr, no traceback) or is on the small ``VALID`` list below,
with the reason it is a legitimate value; those run on tiny budgets and must not be refused.

``train`` never trains here: ``tradeguard.rl``'s ``train`` (and the callback, which would
import torch) are replaced by stubs, so a value that slips through validation shows as
"accepted", not as minutes of training. A subprocess checks that refusing a value imports
neither torch nor stable-baselines3.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tradeguard._cli import _audit_reward as cli_audit_reward
from tradeguard._cli import build_parser, main

BAD_INTS = ("-1", "0", str(10**12))
BAD_FLOATS = (*BAD_INTS, "nan", "inf", "-0.5")


def numeric_options() -> list[tuple[str, str, Any]]:
    """(command, option, argparse type) for every int or float option, and every ``--seed``."""
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    found = []
    for command, subparser in sub.choices.items():
        for action in subparser._actions:
            if action.option_strings and (action.type in (int, float) or "--seed" in action.option_strings):
                found.append((command, action.option_strings[0], action.type))
    return found


OPTIONS = numeric_options()
CASES = [
    (command, option, value)
    for command, option, kind in OPTIONS
    for value in (BAD_FLOATS if kind is float else BAD_INTS)
]
KIND = {(command, option): kind for command, option, kind in OPTIONS}

VALID: dict[tuple[str, str, str], str] = {
    ("run", "--seed", "0"): "the default seed",
    ("run", "--seed", str(10**12)): "run takes any seed >= 0, as env.reset() does: replay commands carry "
    "the seed an env was reset with, and audit-policy resets with seeds past 2**32",
    ("run", "--minor-unit", str(10**12)): "a minor unit only scales prices into currency; it has no upper "
    "bound (EnvConfig.minor_unit has none either)",
    ("check", "--seed", "0"): "the ci profile's seed",
    ("audit-reward", "--seed", "0"): "the default seed",
    ("audit-reward", "--pnl-tolerance", "0"): "no tolerance: any PnL shortfall of the reward's optimum is regret",
    ("audit-policy", "--seed", "0"): "the default seed",
    ("audit-policy", "--max-rejection-rate", "0"): "no tolerance: any rejected prediction is a rejection-collapse",
    ("train", "--seed", "0"): "the default seed",
    ("train", "--checkpoint-every", "0"): "0 saves no checkpoints (documented)",
    ("mutate", "--seed", "0"): "the default sample seed",
    ("mutate", "--fail-under", "0"): "no bar: a kill rate of 0% is not under 0%",
}
"""The swept values that are legitimate, each with its reason; every other case must be refused."""

REQUIRED = {
    "audit-policy": ["--policy", "hold"],
    "mutate": ["--env", "tradeguard/Trading-v0", "--source", str(Path(__file__).resolve().parents[1] / "env" / "_rules.py")],
}
"""What a command needs to run at all (train's --out is added per test, in tmp_path)."""

NEEDS = {("run", "--minor-unit"): ["--prices", "100,101,102"]}
"""What an option needs to mean anything (--minor-unit is the unit of --prices)."""

FAST = {
    "run": ["--steps", "2"],
    "check": ["--examples", "1", "--max-steps", "2", "--only", "finite-rewards", "--database", "none"],
    "audit-reward": ["--budget", "0.5", "--max-examples", "5", "--horizon", "2:2"],
    "audit-policy": ["--episodes", "1", "--episode-length", "4", "--families", "flat"],
    "mutate": ["--list"],  # validates every option, then lists the mutants without running the gate
}
"""Tiny budgets, given before the option under test (argparse keeps the last value), so that a
valid case, or an invalid one that slips through, ends in a second."""


class TrainingStarted(Exception):
    """Raised by the stub of ``tradeguard.rl.train``: the command accepted its options."""


STARTED = -1
"""``run_main``'s status when ``train`` got as far as training (the stub)."""


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        status = exc.code if isinstance(exc.code, int) else 2
    except TrainingStarted:
        status = STARTED
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(autouse=True)
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tradeguard.rl``'s training names replaced by stubs: ``train`` raises ``TrainingStarted``,
    so that no case trains, and nothing imports torch or stable-baselines3 (its callback would).

    Set in the module's namespace, not with ``setattr``: reading the lazy names' old values
    would import the ``rl`` extra, and these cases must run without it."""
    import tradeguard.rl

    class Callback:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.history: list[Any] = []

    def train(**kwargs: Any) -> Any:
        raise TrainingStarted(kwargs)

    namespace = vars(tradeguard.rl)
    monkeypatch.setitem(namespace, "DEFAULT_STOP_ON", ())
    monkeypatch.setitem(namespace, "InvariantCallback", Callback)
    monkeypatch.setitem(namespace, "train", train)


def argv_for(command: str, option: str, value: str, tmp_path: Path) -> list[str]:
    argv = [command, *FAST.get(command, []), *REQUIRED.get(command, []), *NEEDS.get((command, option), [])]
    if command == "train":
        argv += ["--out", str(tmp_path / "m")]
    return [*argv, option, value]


def as_typed(option: str, value: str, kind: Any) -> list[str]:
    """How the message may show the option and value: as typed, or a float's repr (0 -> 0.0)."""
    shown = [f"{option} {value}"]
    if kind is float:
        shown.append(f"{option} {float(value)!r}")
    return shown


def test_the_sweep_covers_every_numeric_option() -> None:
    commands = {command for command, _, _ in OPTIONS}
    assert {"run", "check", "audit-reward", "audit-policy", "train"} <= commands
    for expected in [
        ("run", "--seed", int),
        ("run", "--minor-unit", float),
        ("check", "--seed", None),
        ("check", "--timeout", float),
        ("audit-reward", "--budget", float),
        ("audit-policy", "--max-action-share", float),
        ("train", "--n-steps", int),
        ("train", "--batch-size", int),
        ("train", "--learning-rate", float),
    ]:
        assert expected in OPTIONS
    assert len(CASES) >= 80
    stale = set(VALID) - set(CASES)
    assert not stale, f"VALID lists cases the sweep does not make: {stale}"
    assert all(reason for reason in VALID.values())


@pytest.mark.parametrize(("command", "option", "value"), CASES, ids=[" ".join(c) for c in CASES])
def test_a_bad_number_is_refused_naming_the_option(
    command: str,
    option: str,
    value: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    status, out, err = run_main(argv_for(command, option, value, tmp_path), capsys)
    assert "Traceback" not in err, err
    if (command, option, value) in VALID:
        # 1 is a check or audit that found something: still a run, not a usage error
        ok = (STARTED,) if command == "train" else (0, 1)
        assert status in ok, f"{command} {option} {value} is valid ({VALID[command, option, value]}): {err}"
        return
    assert status == 2, f"{command} {option} {value} was accepted (exit {status}); stderr: {err}"
    assert out == ""
    assert err.startswith(f"tradeguard {command}: error: "), err
    assert any(shown in err for shown in as_typed(option, value, KIND[command, option])), err
    assert re.search(r"expected|must be", err), err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--seed", "-1"], "--seed -1 is out of range: expected >= 0."),
        (["train", "--n-steps", "0"], "--n-steps 0 is out of range: expected in [2, 1000000]."),
        (["train", "--batch-size", "0"], "--batch-size 0 is out of range: expected in [2, 2048]."),
        (["train", "--steps", "0"], "--steps 0 is out of range: expected in [1, 1000000000]."),
        (
            ["audit-policy", "--policy", "hold", "--max-action-share", "2"],
            "--max-action-share 2.0 is out of range: expected in (0.0, 1.0].",
        ),
        (["audit-reward", "--seed", "-5"], "--seed -5 is out of range: expected in [0, 4294967295]."),
    ],
)
def test_the_reported_defects(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if argv[0] == "train":
        argv = [*argv, "--out", str(tmp_path / "m")]
    status, _, err = run_main(argv, capsys)
    assert status == 2 and message in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["audit-reward", "--seed", str(2**32)],
        ["audit-policy", "--policy", "hold", "--seed", str(2**32)],
        ["check", "--seed", str(2**32)],
        ["train", "--seed", str(2**32)],
    ],
)
def test_seeds_stop_at_2_32_minus_1(argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    extra = ["--out", str(tmp_path / "m")] if argv[0] == "train" else []
    status, _, err = run_main([*argv, *extra], capsys)
    assert status == 2 and f"--seed {2**32} is out of range: expected in [0, 4294967295]" in err, err
    if argv[0] == "train":
        assert run_main(["train", "--seed", str(2**32 - 1), *extra], capsys)[0] == STARTED


def test_train_options_that_depend_on_each_other(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = ["--out", str(tmp_path / "m")]
    status, _, err = run_main(["train", "--n-steps", "64", "--batch-size", "128", *out], capsys)
    assert status == 2, err
    assert "--batch-size 128 is out of range: expected in [2, 64]" in err
    assert "one rollout of --n-steps (64)" in err
    status, _, err = run_main(["train", "--steps", "500", "--checkpoint-every", "501", *out], capsys)
    assert status == 2 and "--checkpoint-every 501 is out of range: expected in [0, 500]" in err, err
    assert run_main(["train", "--n-steps", "64", "--batch-size", "64", "--steps", "500",
                     "--checkpoint-every", "500", *out], capsys)[0] == STARTED  # fmt: skip


def test_run_minor_unit_needs_prices(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_main(["run", "--minor-unit", "0.5"], capsys)
    assert status == 2 and out == ""
    assert "--minor-unit 0.5" in err and "no --prices was given" in err
    assert """--config-json '{"env": {"minor_unit": 0.5}}'""" in err
    status, out, err = run_main(["run", "--prices", "100,101,102", "--minor-unit", "0.5", "--json"], capsys)
    assert status == 0, err
    assert "--minor-unit 0.5" in json.loads(out)["replay"]


def test_check_seed_that_is_not_a_number(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_main(["check", "--seed", "abc"], capsys)
    assert status == 2
    assert "--seed 'abc' is not a seed: expected an integer 0..4294967295 (2**32 - 1), or 'random'" in err


@pytest.mark.parametrize(
    ("horizon", "message"),
    [("0:3", "--horizon 0:3 is out of range"), ("2:13", "--horizon 2:13 is out of range"), ("5:2", "--horizon 5:2")],
)
def test_audit_reward_horizon_is_named_as_typed(
    horizon: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run_main(["audit-reward", "--horizon", horizon], capsys)
    assert status == 2 and message in err and "1 <= LO <= HI <= 12" in err, err


def test_audit_reward_default_examples_stay_within_bounds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A long --budget without --max-examples: the default (30 a second) is capped, not refused
    under a name the user did not type (it was ``max_examples=1200000 is out of range``)."""
    import tradeguard.invariants.audit as audit

    seen: list[dict[str, Any]] = []

    class Report:
        passed = True

        def format(self) -> str:
            return "stub"

    def stub(scenario: Any, **kwargs: Any) -> Report:
        seen.append(kwargs)
        return Report()

    monkeypatch.setattr(audit, "audit_reward", stub)  # the public name the CLI calls
    assert run_main(["audit-reward", "--budget", "40000"], capsys)[0] == 0
    assert run_main(["audit-reward", "--budget", "2"], capsys)[0] == 0
    assert [(s["budget"], s["max_examples"]) for s in seen] == [(40000.0, 1_000_000), (2.0, 60)]


def test_cli_copies_of_library_constants_agree() -> None:
    """Bounds the CLI repeats (to keep --help free of heavy imports) are the library's."""
    from tradeguard.env._config import MAX_EPISODE_LENGTH
    from tradeguard.invariants.audit import _reward_audit

    assert cli_audit_reward.MAX_HORIZON == _reward_audit.MAX_AUDIT_HORIZON
    assert cli_audit_reward.EXAMPLES_PER_SECOND == _reward_audit.EXAMPLES_PER_SECOND
    assert cli_audit_reward.MAX_EXAMPLES == _reward_audit.MAX_EXAMPLES
    from tradeguard._cli import _check as cli_check
    from tradeguard.invariants import _gate

    assert cli_check.MAX_TIMEOUT == _gate.MAX_TIMEOUT_SECONDS
    from tradeguard._cli import _audit_policy as cli_audit_policy
    from tradeguard.invariants.audit import _policy_audit

    assert cli_audit_policy.MAX_EPISODES == _policy_audit.MAX_EPISODES
    from tradeguard._cli import _train as cli_train
    from tradeguard.rl import _train as rl_train

    assert (cli_train.MAX_N_STEPS, cli_train.MAX_LEARNING_RATE) == (rl_train.MAX_N_STEPS, rl_train.MAX_LEARNING_RATE)
    for command, option in [("run", "--steps"), ("train", "--episode-length"), ("audit-policy", "--episode-length")]:
        assert f"1..{MAX_EPISODE_LENGTH}" in option_help(command, option)


def test_the_policy_help_lists_every_policy_the_parser_takes() -> None:
    from tradeguard.env import POLICY_SPECS

    for command in ("run", "audit-policy"):
        text = option_help(command, "--policy")
        assert [s for s in POLICY_SPECS if s not in text] == [], (command, text)


def option_help(command: str, option: str) -> str:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    (action,) = [a for a in sub.choices[command]._actions if option in a.option_strings]
    return action.help or ""


@pytest.mark.parametrize(("command", "option"), sorted({(c, o) for c, o, _ in OPTIONS}))
def test_every_numeric_option_documents_its_range(command: str, option: str) -> None:
    text = option_help(command, option)
    assert re.search(r"\.\.|> 0|at most|or more", text), (command, option, text)


@pytest.mark.slow
def test_refusing_a_value_imports_neither_torch_nor_stable_baselines3(tmp_path: Path) -> None:
    """Validation runs before the expensive imports (train, and audit-policy loading a model)."""
    failing = [
        argv_for(command, option, value, tmp_path)
        for command, option, value in CASES
        if command in ("train", "audit-policy") and (command, option, value) not in VALID
    ]
    failing.append(["audit-policy", "no/such/model", "--episodes", "0"])
    code = (
        "import json, sys\n"
        "from tradeguard._cli import main\n"
        "statuses = [main(argv) for argv in json.loads(sys.argv[1])]\n"
        "print(json.dumps({'statuses': statuses, 'imported': "
        "[m for m in ('torch', 'stable_baselines3', 'sb3_contrib') if m in sys.modules]}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(failing)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["statuses"] == [2] * len(failing), done.stderr
    assert result["imported"] == [], result
