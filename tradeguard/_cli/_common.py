"""Options shared by several subcommands: choosing a scenario, a seed, JSON output."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

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
        return load_scenario(args.config)
    return load_scenario(args.scenario or "default")


def with_episode_length(scenario: Any, steps: int | None) -> Any:
    if steps is None:
        return scenario
    if steps < 1:
        raise InvalidConfig(f"--steps={steps} must be at least 1.")
    env = dataclasses.replace(scenario.env, episode_length=steps)
    return dataclasses.replace(scenario, env=env)


def print_json(obj: Any) -> None:
    try:
        print(json.dumps(obj, indent=2, sort_keys=False, default=str), flush=True)
    except BrokenPipeError:  # `tradeguard ... --json | head`: the reader left; not an error
        sys.stderr.close()
