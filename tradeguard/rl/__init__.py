"""Training on tradeguard envs with stable-baselines3, and keeping the trained policy honest.

- :func:`train` trains ``PPO`` or ``MaskablePPO`` on a scenario, with an
  :class:`InvariantCallback` that logs predicted and executed action distributions and
  stops a collapsing run early, checkpoints, and a model saved with its metadata.
- :func:`load` loads it back, knowing whether it is PPO or MaskablePPO.
- :class:`EpsilonGreedy` is the seed's V10 exploration, kept so its failure can be
  reproduced (and documented as the wrong tool for action-dependent envs).

Audit a trained policy with :func:`tradeguard.invariants.audit.audit_policy`.

Importing this package is cheap: stable-baselines3, sb3-contrib and torch (the ``rl``
extra) are imported only when a name that needs them is first used.

Example:
    >>> from tradeguard.rl import parse_exploration
    >>> parse_exploration("epsilon-greedy:0.5:0.01").end
    0.01
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tradeguard.rl._exploration import (
    EXPLORATION_SPECS,
    EpsilonGreedy,
    Exploration,
    parse_exploration,
)
from tradeguard.rl._train import (
    ALGORITHMS,
    TrainResult,
    check_out_path,
    check_rollout,
    load,
    load_metadata,
    make_env,
    metadata_path,
    parse_ent_coef,
    train,
)

if TYPE_CHECKING:
    from tradeguard.rl._callback import (
        DEFAULT_STOP_ON,
        EntCoefSchedule,
        InvariantCallback,
        MetadataCheckpointCallback,
        WindowStats,
    )

__all__ = [
    "ALGORITHMS",
    "DEFAULT_STOP_ON",
    "EXPLORATION_SPECS",
    "EntCoefSchedule",
    "EpsilonGreedy",
    "Exploration",
    "InvariantCallback",
    "MetadataCheckpointCallback",
    "TrainResult",
    "WindowStats",
    "check_out_path",
    "check_rollout",
    "load",
    "load_metadata",
    "make_env",
    "metadata_path",
    "parse_ent_coef",
    "parse_exploration",
    "train",
]

_LAZY = {
    "DEFAULT_STOP_ON": "tradeguard.rl._callback",
    "EntCoefSchedule": "tradeguard.rl._callback",
    "InvariantCallback": "tradeguard.rl._callback",
    "MetadataCheckpointCallback": "tradeguard.rl._callback",
    "WindowStats": "tradeguard.rl._callback",
}


def __getattr__(name: str) -> Any:
    """Import the callbacks (and with them stable-baselines3) on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tradeguard.rl' has no attribute {name!r}")
    from tradeguard.rl._train import require_rl

    require_rl()
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
