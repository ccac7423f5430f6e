"""Options shared by several subcommands: choosing a scenario, a seed, JSON output."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any

from tradeguard import limits
from tradeguard.errors import InvalidConfig


def add_scenario_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--scenario", metavar="NAME", help="a shipped scenario: default, v9, v10, v10.1, v10.2 (default: default)"
    )
    group.add_argument("--config", metavar="FILE", help="a scenario file (TOML or JSON), same format as the shipped ones")
    group.add_argument(
        "--config-json",
        metavar="JSON",
        help="changes to the defaults as JSON, e.g. '{\"reward\": {\"failed_action_penalty\": -0.05}}' "
        "(what replay commands print)",
    )


def load_scenario_from_args(args: argparse.Namespace) -> Any:
    from tradeguard.env import Scenario, load_scenario

    if getattr(args, "config_json", None):
        try:
            data = json.loads(args.config_json)
        except json.JSONDecodeError as exc:
            raise InvalidConfig(f"--config-json is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidConfig(f"--config-json must be a JSON object; got {type(data).__name__}.")
        data.setdefault("name", "custom")
        return Scenario.from_dict(data, where="--config-json")
    if getattr(args, "config", None):
        return load_scenario_option("--config", args.config)
    if getattr(args, "scenario", None):
        return load_scenario_option("--scenario", args.scenario)
    return load_scenario("default")


def load_scenario_option(option: str, value: str) -> Any:
    """The scenario ``option value`` names (``--scenario v10``, ``--config FILE``, ``--baseline X``).

    Shipped names and scenario files are accepted as before; a directory or a name that is
    neither is refused naming the option as typed (not the ``scenario=`` it becomes).
    """
    from pathlib import Path

    from tradeguard._validation import suggest
    from tradeguard.env import load_scenario, scenario_names

    names = scenario_names()
    if value in names:
        return load_scenario(value)
    expected = (
        "a scenario file (TOML or JSON, the format of the shipped scenarios)"
        if option == "--config"
        else f"a shipped scenario ({', '.join(names)}) or a scenario file (TOML or JSON)"
    )
    path = Path(value)
    if path.is_dir():
        raise InvalidConfig(f"{option} {value!r} is a directory; expected {expected}. Give the file's path.")
    if not path.is_file():
        hint = suggest(value, names)
        what = "does not exist" if option == "--config" else "is neither a shipped scenario nor an existing file"
        raise InvalidConfig(f"{option} {value!r} {what}; expected {expected}.{hint}")
    return load_scenario(value)


MAX_SEED = limits.MAX_SEED

SEED_HELP = f"0..{MAX_SEED} (2**32 - 1)"


def check_seed(option: str, seed: int, *, max_value: int | None = MAX_SEED) -> int:
    """A seed given as ``option``: 0..``max_value`` (``None``: no upper bound), named as typed."""
    from tradeguard._validation import check_int

    return check_int(option, seed, min_value=0, max_value=max_value)


def check_episode_length(option: str, steps: int | None) -> None:
    """An episode length given as ``option`` (``--steps``, ``--episode-length``), checked under that
    name: the scenario's own check would name ``episode_length``, which the user did not type."""
    if steps is not None:
        from tradeguard._validation import check_int

        check_int(option, steps, min_value=1, max_value=limits.MAX_EPISODE_LENGTH)


def with_episode_length(scenario: Any, steps: int | None) -> Any:
    """``scenario`` with episodes ``steps`` long (``None``: unchanged), checked as ``--steps``."""
    if steps is None:
        return scenario
    check_episode_length("--steps", steps)
    env = dataclasses.replace(scenario.env, episode_length=steps)
    return dataclasses.replace(scenario, env=env)


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--json``, ``--report DIR`` and ``--quiet``: what every checking command offers."""
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument(
        "--report",
        metavar="DIR",
        help="also write an HTML report (index.html, PNG charts, report.json) into DIR; "
        "needs tradeguard[report]",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress on stderr (it is off anyway when stderr is not a terminal)"
    )


class ProgressLine:
    """Progress of a long command on one line of stderr, cleared when the command is done.

    Use it as a context manager and pass :attr:`callback` (``progress(done, total, label)``)
    to the library: ``[3/21] equity-identity`` is redrawn in place, at most every
    :attr:`interval` seconds (a new label always shows), and on leaving the ``with`` block the
    line is erased, so the report that follows starts on a clean line. It draws only when
    stderr is a terminal and ``--quiet`` was not given: CI logs and pipes stay clean.

    Example:
        >>> with ProgressLine(argparse.Namespace(quiet=True)) as progress:
        ...     progress.callback is None
        True
    """

    CLEAR = "\r\033[K"
    """Carriage return, then erase to the end of the line."""

    def __init__(self, args: argparse.Namespace, *, interval: float = 0.1) -> None:
        self.enabled = not getattr(args, "quiet", False) and sys.stderr.isatty()
        self.interval = interval
        self.drawn = False
        self._last_label: str | None = None
        self._last_time = -math.inf

    @property
    def callback(self) -> Callable[[int, int, str], None] | None:
        """What the library's ``progress=`` takes: this line's :meth:`show`, or ``None`` when off."""
        return self.show if self.enabled else None

    def show(self, done: int, total: int, label: str) -> None:
        """Draw ``[done/total] label`` over the previous progress."""
        now = time.monotonic()
        if label == self._last_label and now - self._last_time < self.interval:
            return
        self._last_label, self._last_time = label, now
        sys.stderr.write(f"{self.CLEAR}[{done}/{total}] {label}")
        sys.stderr.flush()
        self.drawn = True

    def clear(self) -> None:
        """Erase the progress line (nothing to do when none was drawn)."""
        if self.drawn:
            sys.stderr.write(self.CLEAR)
            sys.stderr.flush()
            self.drawn = False

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()


def report_ready(args: argparse.Namespace, report: Any) -> None:
    """Hand a command's report to whoever ran it in-process (``main(..., on_report=...)``;
    ``tradeguard demo`` reads what each audit found this way)."""
    on_report = getattr(args, "on_report", None)
    if on_report is not None:
        on_report(report)


def check_report_dir(directory: str | None, option: str = "--report") -> None:
    """Refuse a ``--report DIR`` that cannot be written, before the command runs anything.

    Otherwise a run of minutes ends in exit 2, hiding its own 0/1 verdict. Nothing is
    created here: DIR itself, or the nearest part of it that exists, must be a writable
    directory. matplotlib (the ``report`` extra) is checked too.
    """
    if directory is None:
        return
    from pathlib import Path

    from tradeguard._plots import require_matplotlib
    from tradeguard._validation import unwritable_ancestor

    if not directory.strip():
        raise InvalidConfig(f"{option} {directory!r} is empty; give a directory for the HTML report (created if missing).")
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise InvalidConfig(
            f"{option} {directory!r} is a file; expected a directory for the HTML report (created if "
            "missing). Give another path, or move the file away."
        )
    existing, why = unwritable_ancestor(path)
    if why is not None and not existing.is_dir():
        raise InvalidConfig(
            f"{option} {directory!r} cannot be created: {str(existing)!r} is a file, not a directory. "
            "Give a path whose parents are directories (or do not exist yet)."
        )
    if why is not None:
        where = "" if existing == path.absolute() else f": its parent {str(existing)!r} is not writable"
        raise InvalidConfig(
            f"{option} {directory!r} is not writable{where}. Give a directory you can write to."
        )
    require_matplotlib()


def write_report(kind: str, report: Any, directory: str | None, **kwargs: Any) -> None:
    """Write the HTML report of ``kind`` (check, reward, policy) when ``--report`` was given."""
    if not directory:
        return
    from tradeguard import _reports

    writer = {
        "check": _reports.write_check_report,
        "reward": _reports.write_reward_audit_report,
        "policy": _reports.write_policy_audit_report,
    }[kind]
    print(f"report: {writer(report, directory, **kwargs)}", file=sys.stderr)


def print_json(obj: Any) -> None:
    # A reader that leaves early (`tradeguard ... --json | head`) is handled once, for every
    # command, by the entry point (tradeguard._cli.main).
    print(json.dumps(obj, indent=2, sort_keys=False, default=str), flush=True)
