"""tradeguard: property-based simulation and invariant testing for RL trading environments.

Subpackages:

- :mod:`tradeguard.env` -- the deterministic trading state machine and its gymnasium env.
- :mod:`tradeguard.invariants` -- invariants over traces, checkers, audits.
- :mod:`tradeguard.strategies` -- Hypothesis strategies for actions, markets and configs.
- :mod:`tradeguard.trace` -- the trace model every part speaks.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
