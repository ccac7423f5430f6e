"""tradeguard: property-based simulation and invariant testing for RL trading environments.

Subpackages:

- :mod:`tradeguard.env` -- the deterministic trading state machine and its gymnasium env.
- :mod:`tradeguard.invariants` -- invariants over traces, checkers, audits.
- :mod:`tradeguard.strategies` -- Hypothesis strategies for actions, markets and configs.
- :mod:`tradeguard.trace` -- the trace model every part speaks.
"""

from __future__ import annotations

from tradeguard._report import (
    write_check_report,
    write_policy_audit_report,
    write_reward_audit_report,
)

__version__ = "0.1.0"
__all__ = ["__version__", "write_check_report", "write_policy_audit_report", "write_reward_audit_report"]
