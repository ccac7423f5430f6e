"""Built-in adapters for third-party trading envs, and factories that build them.

Each module imports its package (``pip install 'tradeguard[peers]'``) only when used,
so :mod:`tradeguard.invariants` imports this subpackage only when asked for. The
adapters are also reachable by name: ``tradeguard check --env anytrading-stocks``,
``get_adapter("gym-trading-env")``.

Example:
    >>> from tradeguard.invariants import check_trading_env
    >>> from tradeguard.invariants.peers import AnyTradingAdapter, make_stocks_env
    >>> report = check_trading_env(make_stocks_env, adapter=AnyTradingAdapter("stocks"),
    ...                            only=["self-financing"], examples=5, max_steps=3,
    ...                            seed=0, database=None, timeout=60)
    >>> [(r.invariant.id, r.status) for r in report.results]
    [('self-financing', 'pass')]
"""

from __future__ import annotations

from tradeguard.invariants.peers._anytrading import (
    AnyTradingAdapter,
    AnyTradingMarketEnv,
    make_forex_env,
    make_stocks_env,
)
from tradeguard.invariants.peers._gym_trading_env import (
    GymTradingEnvAdapter,
    GymTradingEnvMarketEnv,
    make_margin_trading_env,
    make_trading_env,
)
from tradeguard.invariants.peers._tradingenv import (
    TradingEnvAdapter,
    TradingEnvMarketEnv,
    make_tradingenv,
)

__all__ = [
    "AnyTradingAdapter",
    "AnyTradingMarketEnv",
    "GymTradingEnvAdapter",
    "GymTradingEnvMarketEnv",
    "TradingEnvAdapter",
    "TradingEnvMarketEnv",
    "make_forex_env",
    "make_margin_trading_env",
    "make_stocks_env",
    "make_trading_env",
    "make_tradingenv",
]
