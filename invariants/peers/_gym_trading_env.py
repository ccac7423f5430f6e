"""The adapter for gym-trading-env's ``TradingEnv`` (package ``gym-trading-env``).

What the env means (read from ``gym_trading_env/environments.py``): the action is an
index into ``positions`` (default ``[0, 1]``), the *target* exposure as a fraction of
the portfolio (-1 short, 0 flat, 1 all-in, 2 leveraged...). A step trades only when
the target differs from the current position (``_take_action``), at the close of the
current row, then moves to the next row. The portfolio is float (``asset`` and
``fiat``), valued every step (``info["portfolio_valuation"]``); fees are a fraction of
each trade; the reward is by default the log return of the valuation.

The trace's money is integer and exact, so the adapter does not declare cash, equity,
fees or positions (fractional targets); it declares what it reads exactly: the
predicted target, the target the env reached (``info["position"]``), and the reward. A
step whose target equals the current position trades nothing: it is recorded as the
virtual action ``(no trade)``, rejected with reason ``ALREADY_AT_TARGET`` (the
catalog's "executed what was predicted, or a rejected no-op" then checks that every
trade is the one the agent asked for).

Markets: the env takes its data at construction; :func:`make_trading_env` returns
the real env inside :class:`GymTradingEnvMarketEnv`, which rebuilds it on the market
passed as ``reset(options={"market": m})``.
"""

from __future__ import annotations

import weakref
from typing import Any

import gymnasium as gym

from tradeguard.invariants._adapter import (
    MarketWrapperAdapter,
    StepData,
    action_id,
    import_optional,
    minor_unit_of,
    partial_record,
)
from tradeguard.trace import ActionKind, StepRecord, TraceMeta

__all__ = ["GymTradingEnvAdapter", "GymTradingEnvMarketEnv", "make_trading_env", "trading_frame"]

_SUPPLIES = frozenset({"t", "predicted", "executed", "rejected", "reason", "reward"})


def _require() -> Any:
    # Importing this module runs warnings.filterwarnings("error") (a finding): the
    # caller imports it inside an isolated call.
    return import_optional("gym_trading_env.environments", package="gym-trading-env", extra="peers")


def _kind(position: float) -> ActionKind:
    return "close" if position == 0 else "open"


class GymTradingEnvAdapter(MarketWrapperAdapter):
    """Turns gym-trading-env ``TradingEnv`` steps into trace records.

    Action ``i`` is named ``position p`` for ``p = env.positions[i]``; action
    ``len(positions)`` is the virtual ``(no trade)``. Kinds describe each target as
    reached from flat (0 closes, anything else opens); no invariant that reads them
    applies, since positions are not declared.
    """

    name = "gym-trading-env"

    def __init__(self) -> None:
        self._position: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        positions = list(env.unwrapped.positions)
        return TraceMeta(
            env_id=f"gym-trading-env TradingEnv ({getattr(env.unwrapped, 'name', 'Stock')})",
            action_names=(*(f"position {p:g}" for p in positions), "(no trade)"),
            action_kinds=(*(_kind(p) for p in positions), "hold"),
            minor_unit=minor_unit_of(env),
            initial_cash=0,
            seed=seed,
            supplies=_SUPPLIES,
        )

    def begin(self, env: Any, observation: Any, info: dict[str, Any]) -> None:
        self._position[env] = info["position"]

    def equity(self, env: Any, info: dict[str, Any]) -> float:
        """The portfolio's value, as the env reports it every step: ``info["portfolio_valuation"]``."""
        return float(info["portfolio_valuation"])

    def record(self, env: Any, step: StepData) -> StepRecord:
        positions = list(env.unwrapped.positions)
        no_trade = len(positions)
        before = self._position.get(env)
        after = step.info["position"]
        self._position[env] = after
        predicted = action_id(step.action)
        executed = positions.index(after) if after != before and after in positions else no_trade
        rejected = executed != predicted
        reason = None
        if rejected:
            if not 0 <= predicted < no_trade:
                reason = "NOT_AN_ACTION"
            elif positions[predicted] == before:
                reason = "ALREADY_AT_TARGET"
            else:
                reason = "TARGET_NOT_REACHED"
        close = step.info.get("data_close")
        price = round(float(close) / minor_unit_of(env)) if close is not None else 0
        return partial_record(
            t=step.t,
            price=price,
            next_price=price,
            predicted=predicted,
            executed=executed,
            rejected=rejected,
            reason=reason,
            reward=float(step.reward),
            mask=step.mask,
        )



def trading_frame(market: Any) -> Any:
    """The DataFrame gym-trading-env wants for ``market``: OHLC at the close, hourly
    DatetimeIndex, one feature ``feature_return`` (the close's step return, 0 at the start)."""
    import pandas as pd

    close = market.prices.astype("float64") * market.minor_unit
    df = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close},
        index=pd.date_range("2020-01-01", periods=len(close), freq="h"),
    )
    df["feature_return"] = df["close"].pct_change().fillna(0.0)
    return df


class GymTradingEnvMarketEnv(gym.Wrapper[Any, Any, Any, Any]):
    """The real gym-trading-env ``TradingEnv``, rebuilt on the market given to ``reset``.

    Args:
        steps: Steps per episode of the default market (an episode of L steps uses L + 1 rows).
        **env_kwargs: Passed to ``TradingEnv`` (``positions``, ``trading_fees``, ...).
    """

    def __init__(self, *, steps: int = 30, **env_kwargs: Any) -> None:
        environments = _require()
        from tradeguard.env import MarketSpec

        self.env_kwargs = env_kwargs
        self.tradeguard_market_length = steps + 1
        self.tradeguard_minor_unit = 0.01
        self._cls = environments.TradingEnv
        self._market: Any = None
        import numpy as np

        default = MarketSpec(kind="random_walk", start_price=100.0).generate(steps + 1, np.random.default_rng(0))
        super().__init__(self._cls(df=trading_frame(default), **env_kwargs))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        rest = dict(options or {})
        market = rest.pop("market", None)
        if market is not None and market != self._market:
            self.env = self._cls(df=trading_frame(market), **self.env_kwargs)
            self._market = market
            self.tradeguard_minor_unit = market.minor_unit
        return self.env.reset(seed=seed, options=rest or None)


def make_trading_env(*, steps: int = 30, **env_kwargs: Any) -> GymTradingEnvMarketEnv:
    """gym-trading-env's ``TradingEnv`` with the package's defaults, ready to take markets.

    ``verbose=0`` unless given (the default ``verbose=1`` prints a line at the end of
    every episode). Its default market is a seeded random walk of ``steps + 1`` prices.
    """
    env_kwargs.setdefault("verbose", 0)
    return GymTradingEnvMarketEnv(steps=steps, **env_kwargs)
