"""tradeguard: property-based simulation and invariant testing for RL trading environments.

The entry points most people reach for first are here (each is imported on first use, so
``import tradeguard`` stays cheap):

- :func:`check_trading_env` -- the gate: Hypothesis searches for a violation of every
  invariant on any gymnasium trading env (with a :class:`TraceAdapter` for a foreign one).
- :class:`InvariantMonitor` -- the per-step checks, as a wrapper, while anything uses the env.
- :func:`invariant_suite` -- one pytest test per invariant for your env.
- :func:`audit_reward` / :func:`audit_policy` -- what a reward makes optimal before
  training; what a trained policy really does after.
- :class:`TradingEnv` -- tradeguard's own deterministic trading env (``tradeguard/Trading-v0``).

The packages behind them:

- :mod:`tradeguard.trace` -- the trace, the one language between an env and the invariants.
- :mod:`tradeguard.env` -- the deterministic trading state machine and its gymnasium env.
- :mod:`tradeguard.invariants` -- invariants over traces, the gate, adapters, the monitor;
  :mod:`tradeguard.invariants.audit` (reward and policy audits) and
  :mod:`tradeguard.invariants.peers` (adapters for third-party envs).
- :mod:`tradeguard.strategies` -- Hypothesis strategies for actions, markets and configs.
- :mod:`tradeguard.limits` -- the bounds every entry point checks.

Example:
    >>> import tradeguard
    >>> report = tradeguard.check_trading_env(tradeguard.TradingEnv, examples=5, seed=0, database=None)
    >>> report.passed
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradeguard._reports import (
        write_check_report,
        write_policy_audit_report,
        write_reward_audit_report,
    )
    from tradeguard.env import TradingEnv
    from tradeguard.invariants import (
        InvariantMonitor,
        TraceAdapter,
        check_trading_env,
        invariant_suite,
    )
    from tradeguard.invariants.audit import audit_policy, audit_reward

__version__ = "0.1.0"
__all__ = [
    "InvariantMonitor",
    "TraceAdapter",
    "TradingEnv",
    "__version__",
    "audit_policy",
    "audit_reward",
    "check_trading_env",
    "invariant_suite",
    "write_check_report",
    "write_policy_audit_report",
    "write_reward_audit_report",
]

_LAZY = {
    "InvariantMonitor": "tradeguard.invariants",
    "TraceAdapter": "tradeguard.invariants",
    "TradingEnv": "tradeguard.env",
    "audit_policy": "tradeguard.invariants.audit",
    "audit_reward": "tradeguard.invariants.audit",
    "check_trading_env": "tradeguard.invariants",
    "invariant_suite": "tradeguard.invariants",
    "write_check_report": "tradeguard._reports",
    "write_policy_audit_report": "tradeguard._reports",
    "write_reward_audit_report": "tradeguard._reports",
}


def __getattr__(name: str) -> Any:
    """Import an entry point's package on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tradeguard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
