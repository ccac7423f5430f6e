"""Invariants over traces, the checkers that run them, and the env contract.

Every invariant speaks only the trace model (:mod:`tradeguard.trace`), never env
internals: that is what makes the catalog pluggable into any trading env. Importing
this package imports neither :mod:`tradeguard.env` nor stable-baselines3 nor torch.

Two subpackages are imported only when asked for:

- :mod:`tradeguard.invariants.audit`: the exact reward oracle and the audits of rewards
  and policies (they drive tradeguard's own env);
- :mod:`tradeguard.invariants.peers`: the built-in adapters for third-party envs
  (gym-anytrading, gym-trading-env).

Example:
    >>> from tradeguard.env import TradingEnv, parse_policy, run_episode
    >>> from tradeguard.invariants import check_trace
    >>> check_trace(run_episode(TradingEnv(), parse_policy("random"), seed=1))
    []
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradeguard.invariants._adapter import (
    ADAPTERS,
    GymAdapter,
    NativeAdapter,
    StepData,
    TraceAdapter,
    adapter_for,
    get_adapter,
    partial_record,
)
from tradeguard.invariants._catalog import CATALOG, get_invariant, invariant_ids
from tradeguard.invariants._check import (
    InvariantResult,
    assert_trace,
    check_reported_metrics,
    check_trace,
    evaluate_trace,
)
from tradeguard.invariants._contract import RecordedEpisode, record_episode
from tradeguard.invariants._contract_probes import check_env_contract
from tradeguard.invariants._database import resolve_database
from tradeguard.invariants._gate import (
    DEFAULT_EXAMPLES,
    DEFAULT_MAX_STEPS,
    DEFAULT_TIMEOUT,
    CatalogReport,
    Counterexample,
    InvariantReport,
    check_trading_env,
)
from tradeguard.invariants._isolation import CallTimedOut, EnvCall, Isolation
from tradeguard.invariants._legacy import OldGymAPI, speaks_old_api
from tradeguard.invariants._model import (
    Context,
    Family,
    Invariant,
    Scope,
    Severity,
    Status,
    Violation,
)
from tradeguard.invariants._monitor import InvariantMonitor
from tradeguard.invariants._profiles import PROFILES, GateProfile, get_profile
from tradeguard.invariants._settings import SettingsRefused

if TYPE_CHECKING:
    from tradeguard.invariants._pytest_plugin import invariant_suite

__all__ = [
    "ADAPTERS",
    "CATALOG",
    "DEFAULT_EXAMPLES",
    "DEFAULT_MAX_STEPS",
    "DEFAULT_TIMEOUT",
    "PROFILES",
    "CallTimedOut",
    "CatalogReport",
    "Context",
    "Counterexample",
    "EnvCall",
    "Family",
    "GateProfile",
    "GymAdapter",
    "Invariant",
    "InvariantMonitor",
    "InvariantReport",
    "InvariantResult",
    "Isolation",
    "NativeAdapter",
    "OldGymAPI",
    "RecordedEpisode",
    "Scope",
    "SettingsRefused",
    "Severity",
    "Status",
    "StepData",
    "TraceAdapter",
    "Violation",
    "adapter_for",
    "assert_trace",
    "check_env_contract",
    "check_reported_metrics",
    "check_trace",
    "check_trading_env",
    "evaluate_trace",
    "get_adapter",
    "get_invariant",
    "get_profile",
    "invariant_ids",
    "invariant_suite",
    "partial_record",
    "record_episode",
    "resolve_database",
    "speaks_old_api",
]


def __getattr__(name: str) -> object:
    # The pytest helper imports pytest, and the subpackages import env or third-party
    # packages: load each only when asked for.
    if name == "invariant_suite":
        from tradeguard.invariants._pytest_plugin import invariant_suite

        return invariant_suite
    if name in ("audit", "peers"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
