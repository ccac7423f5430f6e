"""The bounds every entry point checks, in one place: the library and the CLI both read them.

Each is the largest value an argument may take (smallest, where it says so). The CLI
checks them under the option's own name before any expensive work starts (so that
``--max-steps -1`` names ``--max-steps``); the library checks the same numbers under
its parameter names. Keep them here and nowhere else: a copy drifts.

Example:
    >>> from tradeguard import limits
    >>> limits.MAX_AUDIT_HORIZON <= limits.MAX_ORACLE_HORIZON
    True
"""

from __future__ import annotations

__all__ = [
    "AUDIT_EXAMPLES_PER_SECOND",
    "FIRST_EPISODE_TIMEOUT",
    "MAX_AUDIT_BUDGET",
    "MAX_AUDIT_EPISODES",
    "MAX_AUDIT_EXAMPLES",
    "MAX_AUDIT_HORIZON",
    "MAX_CASH",
    "MAX_EPISODE_LENGTH",
    "MAX_GATE_EXAMPLES",
    "MAX_GATE_STEPS",
    "MAX_LEARNING_RATE",
    "MAX_N_STEPS",
    "MAX_ORACLE_HORIZON",
    "MAX_PNL_TOLERANCE",
    "MAX_PRICE",
    "MAX_SEED",
    "MAX_THREADS",
    "MAX_TIMEOUT",
    "MAX_TRAIN_STEPS",
]

# The env.
MAX_CASH = 10**15
"""Largest initial cash, in minor units."""
MAX_PRICE = 10**12
"""Largest price, in minor units."""
MAX_EPISODE_LENGTH = 1_000_000
"""Longest episode, in steps."""

# The gate (check_trading_env, tradeguard check).
MAX_GATE_EXAMPLES = 100_000
"""Most generated episodes per invariant."""
MAX_GATE_STEPS = 10_000
"""Longest generated episode, in steps."""
MAX_TIMEOUT = 86_400.0
"""Longest time, in seconds, one example may take: a timeout past what the platform's clock
can represent made every reset "raise", blaming the env."""
FIRST_EPISODE_TIMEOUT = 120.0
"""Seconds the gate's first ``make_env()``, ``reset`` and ``step`` may take (or ``timeout``
if longer): they pay the env's one-time costs, e.g. importing its package on a busy machine."""

# The reward audit and its oracle.
MAX_ORACLE_HORIZON = 20
"""Longest market, in steps, the exact oracle solves (a market of H steps has H + 1 prices)."""
MAX_AUDIT_HORIZON = 12
"""Longest market, in steps, the reward audit generates."""
MAX_AUDIT_EXAMPLES = 1_000_000
"""Most markets one reward audit generates."""
AUDIT_EXAMPLES_PER_SECOND = 30
"""Markets a reward audit generates per second of budget when not told how many."""
MAX_AUDIT_BUDGET = 86_400.0
"""Longest reward-audit budget, in seconds."""
MAX_PNL_TOLERANCE = 100.0
"""Largest PnL shortfall, in percent of starting cash, that may be set to count as regret."""

# The policy audit.
MAX_AUDIT_EPISODES = 10_000
"""Most episodes per market family in one policy audit."""

# Training.
MAX_TRAIN_STEPS = 10**9
"""Most training steps: days of training at these envs' speed."""
MAX_N_STEPS = 1_000_000
"""Longest rollout: stable-baselines3 allocates its buffer up front."""
MAX_LEARNING_RATE = 1.0
"""Largest learning rate."""
MAX_THREADS = 1024
"""Most torch threads."""

# Seeds.
MAX_SEED = 2**32 - 1
"""Largest seed a command chooses: numpy's legacy seeding (``np.random.seed``, which
stable-baselines3's ``set_random_seed`` calls) takes 0..2**32 - 1."""
