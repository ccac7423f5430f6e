"""Progress of the long commands on a terminal, and the demo a new user runs first.

Progress shows on a terminal only (never in a pipe or a CI log, nor with ``--quiet``), and
its line is cleared before the report: ``[20/21] step-after-end-refusedtradeguard check:
...`` was what a terminal showed. ``tradeguard demo`` says what it will show, labels the
FAILs it shows on purpose as expected, and ends with a table of the seed's bugs, the check
that caught each, and the seconds it took.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator

import pytest

from tradeguard._cli import _demo, main
from tradeguard.invariants import CATALOG

PROGRESS = re.compile(r"\[\d+/\d+\] ")


class Terminal(io.StringIO):
    """stdout and stderr of a terminal: one screen, ``\\r`` and erase-line honoured."""

    def isatty(self) -> bool:
        return True

    def screen(self) -> list[str]:
        """The lines as a terminal shows them (each ``\\r`` returns to column 0; ``\\033[K`` erases to the end)."""
        lines: list[str] = []
        line, col = "", 0
        text = self.getvalue()
        i = 0
        while i < len(text):
            if text.startswith("\033[K", i):
                line = line[:col]
                i += 3
                continue
            ch = text[i]
            if ch == "\r":
                col = 0
            elif ch == "\n":
                lines.append(line)
                line, col = "", 0
            else:
                line = line[:col] + ch + line[col + 1:]
                col += 1
            i += 1
        if line:
            lines.append(line)
        return lines


@contextlib.contextmanager
def on_a_terminal() -> Iterator[Terminal]:
    """stdout and stderr both go to one :class:`Terminal` (inside the test: pytest's capture
    puts its own streams back between a fixture's setup and the test)."""
    screen = Terminal()
    with contextlib.redirect_stdout(screen), contextlib.redirect_stderr(screen):
        yield screen


COMMANDS = {
    "check": (["check", "--scenario", "default", "--examples", "3", "--max-steps", "5", "--database", "none"],
              f"[0/{len(CATALOG) - 1}] "),  # matches-reference is left out: no reference env
    "audit-reward": (["audit-reward", "--scenario", "v10", "--budget", "5", "--max-examples", "12"],
                     "searching markets"),
    "audit-policy": (["audit-policy", "--policy", "hold", "--scenario", "default", "--episodes", "1",
                      "--episode-length", "20"], "[0/4] trend episode 1"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_long_command_shows_progress_on_a_terminal_and_clears_it_before_the_report(command: str) -> None:
    argv, shown = COMMANDS[command]
    with on_a_terminal() as terminal:
        main(argv)
    raw = terminal.getvalue()
    assert shown in raw  # progress was drawn ...
    screen = terminal.screen()
    assert [line for line in screen if PROGRESS.search(line)] == []  # ... and nothing of it is left
    assert screen[0].startswith(("tradeguard check:", "reward audit of", "policy hold")), screen[:2]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_progress_off_a_terminal_or_with_quiet(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv, _ = COMMANDS[command]
    with on_a_terminal() as terminal:
        main([*argv, "--quiet"])
    assert not PROGRESS.search(terminal.getvalue()) and "\033[K" not in terminal.getvalue()
    main(argv)  # captured: not a terminal
    out, err = capsys.readouterr()
    assert not PROGRESS.search(err) and "\033[K" not in err and out


def test_the_progress_line_is_drawn_at_most_every_interval_but_each_new_label_at_once() -> None:
    import argparse

    from tradeguard._cli._common import ProgressLine

    with on_a_terminal() as terminal, ProgressLine(argparse.Namespace(quiet=False), interval=3600) as progress:
        assert progress.callback is not None
        for done in range(5):
            progress.callback(done, 5, "searching markets")
        progress.callback(0, 2, "shrinking")
    assert terminal.getvalue().count("searching markets") == 1 and "[0/2] shrinking" in terminal.getvalue()
    assert terminal.getvalue().endswith(ProgressLine.CLEAR)


# --------------------------------------------------------------------------- the demo
@pytest.mark.slow
def test_the_demo_says_what_it_shows_labels_expected_fails_and_ends_with_what_caught_each_bug(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--quick"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    bugs = [s.bug for s in _demo.plan(quick=True) if s.bug]
    assert len(bugs) == 4
    assert lines[0].startswith("tradeguard demo: ") and "the invariant gate" in lines[1]
    assert lines[2].startswith(f"{len(bugs)} audits are meant to find the seed's {len(bugs)} bugs")
    assert lines[3] == ""
    # Every section whose report fails says the failure is expected, and none is unexpected.
    sections = out.split("=" * 78)
    failed = [s for s in sections if re.search(r"^FAIL: ", s, re.MULTILINE)]
    assert len(failed) >= 3 and all("^ expected FAIL: the seed's " in s for s in failed)
    assert "UNEXPECTED" not in out
    # The summary: each seed bug, the check that caught it (with what it found), the seconds.
    table = out.split("summary: the seed's bugs, and what caught them")[1].splitlines()
    rows = {bug: next(line for line in table if line.startswith(bug)) for bug in bugs}
    for bug, row in rows.items():
        assert re.search(r"(audit-reward|audit-policy) \S+: [a-z-]+(, [a-z-]+)*\s+\d+\.\d$", row), (bug, row)
    assert "never-close-optimum" in rows["V1-V9 reward: pays the level of open gains"]
    assert "phantom-activity" in rows["Bug #1 evaluator: counted predicted actions"]
    assert f"{len(bugs)} of {len(bugs)} seed bugs caught" in out


def test_the_demo_fails_when_a_seed_bug_is_not_caught(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = ("--budget", "2", "--max-examples", "10")
    # A "bug" the audit cannot find (the fixed default config) next to its healthy twin (V10).
    monkeypatch.setattr(_demo, "plan", lambda quick_: [
        _demo.Step(("audit-reward", "--scenario", "default", *quick), bug="none: nothing wrong here"),
        _demo.Step(("audit-reward", "--scenario", "v10", *quick), bug="V10 penalty: -0.05, too weak to feel"),
    ])
    assert main(["demo"]) == 1
    out = capsys.readouterr().out
    assert "UNEXPECTED: the seed's none was NOT caught (exit 0)." in out
    assert "^ expected warning: the seed's V10 penalty, caught (weak-penalty)." in out
    assert re.search(r"^none: nothing wrong here\s+audit-reward default: NOT caught\s+\d+\.\d$", out, re.MULTILINE)
    assert "1 of 2 seed bugs caught" in out and "1 MISSED." in out


def test_the_demo_fails_when_the_fixed_configuration_fails(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_demo, "plan", lambda quick_: [
        _demo.Step(("audit-reward", "--scenario", "v9", "--budget", "2", "--max-examples", "10"), must_pass=True),
    ])
    assert main(["demo"]) == 1
    assert "UNEXPECTED: tradeguard audit-reward --scenario v9" in capsys.readouterr().out
