"""Options shared by several subcommands: choosing a scenario, a seed, JSON output."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
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


def progress_printer(args: argparse.Namespace) -> Any:
    """A ``(done, total, label)`` callback drawing progress on stderr, or ``None`` when quiet.

    Progress shows only when stderr is a terminal and ``--quiet`` is not given, so CI
    logs and pipes stay clean.
    """
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        return None

    def show(done: int, total: int, label: str) -> None:
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r\033[K[{done}/{total}] {label}{end}")
        sys.stderr.flush()

    return show


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
