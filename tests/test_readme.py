"""The console examples in the README and docs/ are real: each is run, and what it shows is printed.

Every ```console block that starts with ``$ tradeguard ...`` is run in-process; each
line it shows (``...`` stands for lines left out) must appear in the command's output,
in the same order. A README that drifts from the program fails here.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradeguard._cli import main

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```console\n(.*?)```", re.S)


def _examples() -> Iterator[tuple[str, str, list[str]]]:
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for match in BLOCK.finditer(path.read_text(encoding="utf-8")):
            first, *shown = match.group(1).splitlines()
            if first.startswith("$ tradeguard "):
                yield path.name, first[2:], shown


EXAMPLES = list(_examples())


def test_the_readme_has_console_examples_to_check() -> None:
    assert [cmd for name, cmd, _ in EXAMPLES if name == "README.md"] == [
        "tradeguard run --scenario v10 --policy constant:SELL_PARTIAL --seed 0",
        "tradeguard rules",
        "tradeguard audit-policy --policy constant:SELL_PARTIAL --scenario v10",
    ]


@pytest.mark.parametrize(("doc", "command", "shown"), EXAMPLES, ids=[f"{d}: {c}" for d, c, _ in EXAMPLES])
def test_console_example_shows_what_the_command_prints(
    doc: str, command: str, shown: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(shlex.split(command)[1:])
    printed = iter(line.rstrip() for line in capsys.readouterr().out.splitlines())
    assert status in (0, 1), f"{command} exited {status}"
    for line in shown:
        if line.strip() == "...":
            continue
        # `in` on an iterator consumes it up to the match: the lines must come in order
        assert line.rstrip() in printed, f"{doc}: {command!r} does not print {line!r} (in this order)"
