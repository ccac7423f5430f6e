"""Run the invariant catalog on generated episodes; exit 1 on any violation.

Every invariant gets up to --examples Hypothesis-generated episodes (action
sequences uniform, sticky, biased towards invalid actions, or drawn among the
mask's valid actions; markets; seeds). A failure is shrunk to a minimal
counterexample, printed with the ledger lines around it and a replay command.

The search is deterministic for a given --seed (default 0); failing examples are
saved in the example database (--database) and replayed first on the next run.

Other envs: --env tradeguard/Portfolio-v0 (tradeguard's own multi-instrument env, a Box
of target weights), anytrading-stocks, anytrading-forex, gym-trading-env or tradingenv (the
packages of the `peers` extra), or --env MODULE:FACTORY for any gymnasium env with
a Discrete, MultiDiscrete or Box action space (FACTORY is called with no arguments, or with the
settings its adapter draws and --env-kwargs as keyword arguments; MODULE is imported
from the current directory too, as `python -m` does). Invariants whose
fields the env's adapter cannot supply are reported "not-applicable". Changes the
env makes to process-wide state (warning filters, global RNGs, logging, stdout)
are reported as findings; a crash or a hang fails valid-steps-do-not-raise. A
failure that has no replay of its own gets a `tradeguard check ... --only ID --seed S`
command that reproduces it.

Settings fuzzing: with --env, each example also draws the env's constructor settings
that its adapter declares (gym-trading-env: fees, borrow rate, positions,
max_episode_duration...; gym-anytrading: window_size, frame_bound, unit_side), and a
counterexample names them; its replay command pins them with --env-kwargs and
--no-settings. tradeguard's own env draws them without --env too: a shipped scenario
(unless --scenario, --config or --config-json fixes it) and its config (fee, cash at the
edges of what buys, lot size, sizing, disabled actions, episode length), pinned in a
replay as --config-json. --env-kwargs JSON fixes keyword arguments of the factory: a fixed one is
never drawn. --no-settings draws none (the factory's own settings for every example).

examples:
  tradeguard check --env anytrading-stocks
  tradeguard check --env tradeguard/Portfolio-v0 --profile thorough
  tradeguard check --env gym-trading-env --json
  tradeguard check --env gym-trading-env --env-kwargs '{"trading_fees": 0.01}' --no-settings
  tradeguard check --env mypackage.envs:make_env --adapter mypackage.envs:MyAdapter
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import shlex
from types import ModuleType
from typing import Any

from tradeguard import limits
from tradeguard._cli._common import (
    SEED_HELP,
    ProgressLine,
    add_output_arguments,
    add_scenario_arguments,
    check_report_dir,
    check_seed,
    load_scenario_from_args,
    print_json,
    report_ready,
    write_report,
)

COMMAND = "check"
ORDER = 30

PEERS: dict[str, tuple[str, str, str]] = {
    "anytrading-stocks": ("tradeguard.invariants.peers:make_stocks_env", "anytrading-stocks", "gym-anytrading StocksEnv"),
    "anytrading-forex": ("tradeguard.invariants.peers:make_forex_env", "anytrading-forex", "gym-anytrading ForexEnv"),
    "gym-trading-env": ("tradeguard.invariants.peers:make_trading_env", "gym-trading-env", "gym-trading-env TradingEnv"),
    "tradeguard/Portfolio-v0": ("tradeguard.env:make_portfolio_env", "tradeguard", "tradeguard/Portfolio-v0 (long-only)"),
    "tradingenv": ("tradeguard.invariants.peers:make_tradingenv", "tradingenv", "tradingenv TradingEnvXY"),
    "tradeguard/TradingBatch-v0": ("tradeguard.env:make_batch_lane_env", "tradeguard",
                                   "tradeguard/TradingBatch-v0 (one lane of BatchEngine)"),
}
"""``--env`` shortcuts: name -> (factory taking ``steps=``, adapter name, report name)."""
OWN_ENV = "tradeguard/Trading-v0"
"""``--env`` for tradeguard's own env: the same as no ``--env`` (``tradeguard mutate`` names it so too)."""

PRELOAD: dict[str, str] = {"tradingenv": "tradingenv.env:TradingEnvXY"}
"""Packages imported before the check, for the ``--env`` shortcuts whose import is slow."""
PRELOAD_TIMEOUT = 300.0
SLOW_PEERS: dict[str, float] = {"tradingenv": 60.0}
"""Default --timeout of the shortcuts whose envs are slow by design: tradingenv rebuilds a pandas
event loop per market (about a second of CPU per example); 10 s flagged a busy machine as a hang."""
"""Seconds such an import may take (tradingenv's takes 10 s on a quiet machine)."""

MAX_EXAMPLES = limits.MAX_GATE_EXAMPLES
MAX_STEPS = limits.MAX_GATE_STEPS
MAX_TIMEOUT = limits.MAX_TIMEOUT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_scenario_arguments(parser)
    parser.add_argument(
        "--env",
        metavar="NAME|MODULE:FACTORY",
        help=f"check another env: {', '.join(PEERS)}, or MODULE:FACTORY, a callable returning a gymnasium "
        "env, called with no arguments or with the drawn settings as keyword arguments (default: "
        f"{OWN_ENV}, tradeguard's own, from --scenario/--config)",
    )
    parser.add_argument(
        "--env-kwargs",
        metavar="JSON",
        help="keyword arguments for the --env factory, as a JSON object, e.g. '{\"trading_fees\": 0.01}'; "
        "fixed: settings fuzzing never draws them",
    )
    parser.add_argument(
        "--no-settings",
        action="store_true",
        help="settings fuzzing off: build every example's env with the factory's own settings (and "
        "--env-kwargs), instead of also drawing the constructor settings the env's adapter declares",
    )
    parser.add_argument(
        "--reference",
        metavar="NAME|MODULE:FACTORY",
        help="a reference implementation the env must match exactly (matches-reference): built like --env (the "
        "same --env-kwargs and drawn settings), it plays every example too, and the first observation, reward, "
        "episode end or trace record that differs fails (default: the one the adapter names, e.g. the scalar "
        "TradingEnv for tradeguard/TradingBatch-v0; none for most envs)",
    )
    parser.add_argument(
        "--adapter",
        metavar="NAME|MODULE:CLASS",
        help="how the env's steps become trace records: tradeguard, gym, anytrading-stocks, anytrading-forex, "
        "gym-trading-env, or MODULE:CLASS (default: chosen from the env's class)",
    )
    parser.add_argument(
        "--examples", type=int, metavar="N", help=f"episodes per invariant, 1..{MAX_EXAMPLES} (default: the profile's; ci: 100)"
    )
    parser.add_argument(
        "--max-steps", type=int, metavar="N", help=f"longest generated episode, 1..{MAX_STEPS} (default: the profile's; ci: 30)"
    )
    parser.add_argument(
        "--seed",
        default=None,
        metavar="S",
        help=f"search seed, {SEED_HELP}, or 'random' to explore anew with a fresh seed, shown in the report "
        "and its replay commands (default: the profile's; ci: 0)",
    )
    parser.add_argument("--profile", choices=("fast", "ci", "thorough"), help="search budget: fast (25 examples, random seed), ci (100, seed 0), thorough (1000); default: $TRADEGUARD_PROFILE, else ci")
    parser.add_argument("--only", metavar="ID,ID", help="check only these invariant ids")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help=f"seconds one example may take before the env counts as hanging, > 0 and at most {MAX_TIMEOUT:g} "
        f"(default: 10; the first episode, which pays one-time costs such as imports, gets at least "
        f"{limits.FIRST_EPISODE_TIMEOUT:g})",
    )
    parser.add_argument(
        "--database",
        metavar="DIR|URL|none",
        default=None,
        help="example database: a directory, redis://host:port/db, or none (default: $TRADEGUARD_DATABASE, else .hypothesis/tradeguard)",
    )
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import os

    from tradeguard._validation import check_int, check_number
    from tradeguard.errors import InvalidConfig
    from tradeguard.invariants import (
        DEFAULT_TIMEOUT,
        check_trading_env,
        get_profile,
        resolve_database,
    )

    # The command is a gate: deterministic (profile ci) unless asked otherwise.
    profile = get_profile(args.profile or os.environ.get("TRADEGUARD_PROFILE") or "ci")
    examples = args.examples if args.examples is not None else profile.examples
    max_steps = args.max_steps if args.max_steps is not None else profile.max_steps
    timeout = args.timeout if args.timeout is not None else SLOW_PEERS.get(args.env or "", DEFAULT_TIMEOUT)
    # Checked before --max-steps becomes the episode length of tradeguard's own env (whose
    # own check would name episode_length) or reaches the gate (which names max_steps).
    check_int("--examples", examples, min_value=1, max_value=MAX_EXAMPLES)
    check_int("--max-steps", max_steps, min_value=1, max_value=MAX_STEPS)
    check_number("--timeout", timeout, min_value=0.0, min_exclusive=True, max_value=MAX_TIMEOUT)
    if args.seed is None:
        seed: int | None = profile.seed
    elif args.seed == "random":
        seed = None
    else:
        try:
            seed = int(args.seed)
        except ValueError:
            raise InvalidConfig(
                f"--seed {args.seed!r} is not a seed: expected an integer {SEED_HELP}, or 'random' "
                "to explore anew."
            ) from None
        check_seed("--seed", seed)
    only = _only(args.only)
    check_report_dir(args.report)
    database = resolve_database(args.database or os.environ.get("TRADEGUARD_DATABASE"))

    found: tuple[str, ...] = ()
    adapter: Any = None
    if args.env == OWN_ENV:
        args.env = None
    if args.env:
        if args.scenario or args.config or args.config_json:
            raise InvalidConfig(
                f"--env {args.env!r} checks another env; --scenario, --config and --config-json configure "
                "tradeguard's own. Give one or the other."
            )
        make_env, default_adapter, name, found = _other_env(args.env, max_steps, timeout, _env_kwargs(args.env_kwargs))
        adapter_spec = args.adapter or default_adapter
        adapter = _adapter(adapter_spec, timeout) if adapter_spec else None
    else:
        if args.env_kwargs is not None:
            raise InvalidConfig(
                "--env-kwargs gives keyword arguments to an --env factory; tradeguard's own env is "
                "configured with --scenario, --config or --config-json."
            )
        scenario = load_scenario_from_args(args)
        scenario = dataclasses.replace(scenario, env=dataclasses.replace(scenario.env, episode_length=max_steps))
        # Settings fuzzing draws the scenario (its reward weights) unless one was asked for: the one
        # given is fixed (bound by the partial, never drawn), as --env-kwargs fixes an --env's.
        chosen = bool(args.scenario or args.config or args.config_json)
        make_env = (functools.partial(own_env, scenario, scenario=scenario) if chosen
                    else functools.partial(own_env, scenario))
        name = f"tradeguard/Trading-v0 ({scenario.name})"
        adapter = _adapter(args.adapter, timeout) if args.adapter else None

    reference: Any = "adapter"
    if args.reference is not None:
        reference, _, _, found_ref = _other_env(args.reference, max_steps, timeout, _env_kwargs(args.env_kwargs))
        found = (*found, *found_ref)
    with ProgressLine(args) as progress:
        report = check_trading_env(
            make_env,
            adapter=adapter,
            examples=examples,
            max_steps=max_steps,
            seed=seed,
            only=only,
            database=database,
            name=name,
            timeout=timeout,
            progress=progress.callback,
            settings=None if args.no_settings else "adapter",
            reference=reference,
        )
    if found:
        report = dataclasses.replace(report, findings=(*found, *report.findings))
    report = _with_replays(report, args, examples=examples, max_steps=max_steps, seed=report.seed)
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.format())
    # The report replays counterexamples through the adapter the check used (its prices,
    # equity and action names), not one guessed from the env's class.
    write_report("check", report, args.report, make_env=make_env, adapter=adapter, timeout=timeout)
    report_ready(args, report)
    return 0 if report.passed else 1


def own_env(base: Any, scenario: Any = None, config: Any = None) -> Any:
    """tradeguard's own env as ``tradeguard check`` builds it: the scenario ``base`` (episodes of
    --max-steps), or the drawn ``scenario`` (a shipped name) and ``config`` of settings fuzzing."""
    from tradeguard.env import TradingEnv

    return TradingEnv(scenario=base if scenario is None else scenario, config=config)


def _only(text: str | None) -> list[str] | None:
    """``--only ID,ID`` as a list of ids; ``None`` when not given. An empty list is refused:
    it would otherwise check the whole catalog, which is not what was asked."""
    from tradeguard.errors import InvalidConfig

    if text is None:
        return None
    ids = [s.strip() for s in text.split(",") if s.strip()]
    if not ids:
        raise InvalidConfig(
            f"--only {text!r} names no invariant; expected comma-separated invariant ids, e.g. "
            "--only finite-rewards,self-financing. Leave --only out to check the whole catalog."
        )
    return ids


def _env_kwargs(text: str | None) -> dict[str, Any]:
    """``--env-kwargs JSON`` as a dict (``{}`` when not given)."""
    import json

    from tradeguard.errors import InvalidConfig

    if text is None:
        return {}
    try:
        kwargs = json.loads(text)
    except ValueError as exc:
        raise InvalidConfig(
            f"--env-kwargs {text!r} is not JSON ({exc}); expected an object of keyword arguments, e.g. "
            "'{\"trading_fees\": 0.01, \"positions\": [-1, 0, 1]}' (quote it for the shell)."
        ) from None
    if not isinstance(kwargs, dict):
        raise InvalidConfig(
            f"--env-kwargs {text!r} is a JSON {type(kwargs).__name__}; expected an object of keyword "
            "arguments by name, e.g. '{\"trading_fees\": 0.01}'."
        )
    return kwargs


def _other_env(spec: str, max_steps: int, timeout: float,
               kwargs: dict[str, Any] | None = None) -> tuple[Any, str | None, str, tuple[str, ...]]:
    """(factory, default adapter, report name, findings of the import) for ``--env spec``, with
    ``kwargs`` bound (a ``functools.partial``: the gate never draws the settings it binds)."""
    kwargs = kwargs or {}
    from tradeguard._validation import suggest
    from tradeguard.errors import InvalidConfig

    if spec in PEERS:
        target, adapter, name = PEERS[spec]
        preloaded: tuple[str, ...] = ()
        if spec in PRELOAD:
            # A heavy package (tradingenv imports pandas, scikit-learn, statsmodels...): imported
            # once here, isolated (its import-time changes are findings), with time to spare,
            # so that no example's timeout is spent importing it.
            _, preloaded = _load(PRELOAD[spec], "--env", max(timeout, PRELOAD_TIMEOUT))
        factory, found = _load(target, "--env", timeout)
        return functools.partial(factory, **{"steps": max_steps, **kwargs}), adapter, name, (*preloaded, *found)
    if ":" not in spec:
        raise InvalidConfig(
            f"--env {spec!r}; expected one of {OWN_ENV}, {', '.join(PEERS)} or MODULE:FACTORY "
            f"(e.g. mypackage.envs:make_env).{suggest(spec, [OWN_ENV, *PEERS])}"
        )
    factory, found = _load(spec, "--env", timeout)
    if not callable(factory):
        raise InvalidConfig(f"--env {spec!r} is a {type(factory).__name__}, not a callable returning an env.")
    return (functools.partial(factory, **kwargs) if kwargs else factory), None, spec, found


def _adapter(spec: str, timeout: float) -> Any:
    from tradeguard.errors import InvalidConfig
    from tradeguard.invariants import TraceAdapter, get_adapter

    if ":" not in spec:
        return get_adapter(spec)
    obj, _ = _load(spec, "--adapter", timeout)
    adapter = obj() if isinstance(obj, type) else obj
    if not isinstance(adapter, TraceAdapter):
        raise InvalidConfig(
            f"--adapter {spec!r} is a {type(adapter).__name__}, not a trace adapter: it needs name, meta, "
            "begin, record, reset_options and market_length (see docs/adapters.md)."
        )
    return adapter


def _load(spec: str, option: str, timeout: float) -> tuple[Any, tuple[str, ...]]:
    """Import ``MODULE:ATTR`` isolated (its import-time changes to process state are findings)."""
    import importlib

    from tradeguard.errors import InvalidConfig
    from tradeguard.invariants import CallTimedOut, EnvCall, Isolation

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InvalidConfig(f"{option} {spec!r}; expected MODULE:NAME, e.g. mypackage.envs:make_env.")
    cwd = _importable_cwd()
    with Isolation(seed=0, timeout=timeout) as iso:
        try:
            module = iso.call(EnvCall(f"import {module_name}"), importlib.import_module, module_name)
        except CallTimedOut:
            raise InvalidConfig(f"{option} {spec!r}: importing {module_name} took more than {timeout:g} s.") from None
        except ModuleNotFoundError as exc:
            raise InvalidConfig(_not_found(spec, option, module_name, exc, cwd)) from None
        except Exception as exc:  # ImportError, or anything the module's own code raised
            raise InvalidConfig(
                f"{option} {spec!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}."
            ) from None
    try:
        return getattr(module, attr), tuple(iso.findings)
    except AttributeError:
        raise InvalidConfig(f"{option} {spec!r}: module {module_name} has no {attr!r}.{_offer(attr, module)}") from None


def _importable_cwd() -> str:
    """Make modules in the current directory importable, as ``python -m``, pytest and uvicorn do.

    Done when a MODULE:NAME spec is loaded (never at import time): the console script's
    ``sys.path`` starts with its own bin directory, not the directory it is run from.
    """
    import importlib
    import os
    import sys

    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
        importlib.invalidate_caches()
    return cwd


def _not_found(spec: str, option: str, module_name: str, exc: ModuleNotFoundError, cwd: str) -> str:
    """Say where ``module_name`` was looked for, or which of its own imports is missing."""
    missing = exc.name or module_name
    if module_name != missing and not module_name.startswith(f"{missing}."):
        # The module was found; something it imports was not.
        return (
            f"{option} {spec!r}: cannot import {module_name!r}: it imports {missing!r}, which is not "
            f"installed ({type(exc).__name__}: {exc}). Install it in this Python environment."
        )
    path = module_name.replace(".", "/")
    return (
        f"{option} {spec!r}: no module named {missing!r}: looked in the current directory ({cwd}) and on "
        f"the Python path, for {path}.py or {path}/__init__.py. Run from the directory that holds it, add "
        f"that directory to PYTHONPATH (PYTHONPATH=DIR tradeguard check ...), or install its project "
        f"(pip install -e DIR)."
    )


def _offer(given: str, module: ModuleType) -> str:
    """What to suggest for a missing ``MODULE:NAME``: a close callable the module defines, or its list.

    Only what the module defines for the purpose is offered: its own functions and
    classes first, then callables it names in ``__all__``, builds itself (a
    ``functools.partial``) or imports as an env or adapter class. Never a module
    (``import numpy as np``) nor a helper it merely imports (a gymnasium space).
    """
    import inspect

    import gymnasium as gym

    from tradeguard._validation import suggest

    exported = set(getattr(module, "__all__", None) or ())
    own: list[str] = []
    other: list[str] = []
    for name, obj in vars(module).items():
        if name.startswith("_") or inspect.ismodule(obj) or not callable(obj):
            continue
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__:
            own.append(name)
        elif (
            name in exported
            or isinstance(obj, functools.partial)
            # an env or adapter class imported to be named here (not a space, not a helper)
            or (inspect.isclass(obj) and (issubclass(obj, gym.Env) or all(hasattr(obj, m) for m in ("meta", "record"))))
        ):
            other.append(name)
    hint = suggest(given, own) or suggest(given, other)
    if hint or not (own or other):
        return hint
    shown = [*own, *other]
    more = f", ... ({len(shown)} in all)" if len(shown) > 8 else ""
    return f" It defines {', '.join(shown[:8])}{more}."


def _with_replays(report: Any, args: argparse.Namespace, *, examples: int, max_steps: int, seed: int | None) -> Any:
    """The report with a replay command on every violation that has none (a foreign env's, a hang...)."""
    results = []
    for r in report.results:
        if any(v.replay is None for v in r.violations):
            pinned = getattr(r.counterexample, "settings", None)
            r = dataclasses.replace(
                r,
                violations=tuple(
                    v if v.replay is not None else dataclasses.replace(
                        v, replay=_check_command(args, v.invariant, examples=examples, max_steps=max_steps, seed=seed,
                                                 pinned=pinned)
                    )
                    for v in r.violations
                ),
            )
        results.append(r)
    return dataclasses.replace(report, results=tuple(results))


def _check_command(args: argparse.Namespace, invariant: str, *, examples: int, max_steps: int, seed: int | None,
                   pinned: dict[str, Any] | None = None) -> str:
    """``tradeguard check`` on the same env, searching for ``invariant`` alone the same way.

    The same seed, examples and max steps make the same search (given explicitly, so that
    another profile or $TRADEGUARD_PROFILE where it is run cannot change them). A run
    without a seed (``--seed random``, the fast and thorough profiles) searched with one
    the gate drew, which the report carries: the command names it. A counterexample's drawn settings (``pinned``) are given as
    ``--env-kwargs`` with ``--no-settings``: the env of the counterexample, searched again.
    """
    import json

    fixed = dict(_env_kwargs(getattr(args, "env_kwargs", None))) if args.env else {}
    no_settings = bool(getattr(args, "no_settings", False))
    if pinned is not None:
        try:
            fixed_text = json.dumps({**fixed, **pinned}, sort_keys=True, allow_nan=False)
            fixed, no_settings = json.loads(fixed_text), True
        except (TypeError, ValueError):  # a value with no JSON form: the same search finds it again
            pass
    own = None if args.env or not pinned else _own_config_json(args, pinned)
    if own is not None:  # tradeguard's own env: the drawn scenario and config as --config-json
        config_json, max_steps = own
        args = argparse.Namespace(**{**vars(args), "config_json": config_json})
        no_settings = True
    cmd = ["tradeguard", "check"]
    if args.env:
        cmd += ["--env", args.env]
    elif args.config_json:
        cmd += ["--config-json", args.config_json]
    elif args.config:
        cmd += ["--config", args.config]
    elif args.scenario:
        cmd += ["--scenario", args.scenario]
    if fixed:
        cmd += ["--env-kwargs", json.dumps(fixed, sort_keys=True)]
    if no_settings:
        cmd += ["--no-settings"]
    if args.adapter:
        cmd += ["--adapter", args.adapter]
    if getattr(args, "reference", None):
        cmd += ["--reference", args.reference]
    cmd += ["--examples", str(examples), "--max-steps", str(max_steps)]
    if args.timeout is not None:
        cmd += ["--timeout", str(args.timeout)]
    if args.database is not None:
        cmd += ["--database", args.database]
    cmd += ["--only", invariant]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    return shlex.join(cmd)


def _own_config_json(args: argparse.Namespace, pinned: dict[str, Any]) -> tuple[str, int] | None:
    """(--config-json, --max-steps) of tradeguard's own env built with the drawn settings ``pinned``
    (``scenario``, ``config``), or ``None`` when they are not such settings."""
    import json

    from tradeguard.env import EnvConfig, Scenario, load_scenario

    config = pinned.get("config")
    if not isinstance(config, EnvConfig) or set(pinned) - {"scenario", "config"}:
        return None
    drawn = pinned.get("scenario")
    base = (drawn if isinstance(drawn, Scenario) else load_scenario(drawn) if isinstance(drawn, str)
            else load_scenario_from_args(args))
    scenario = Scenario(name="custom", env=config, reward=base.reward, market=base.market)
    try:
        return json.dumps(scenario.changes(), sort_keys=True, allow_nan=False), config.episode_length
    except (TypeError, ValueError):  # a custom component with no JSON form
        return None
