"""The adapter for gym-anytrading's ``StocksEnv`` and ``ForexEnv`` (package ``gym-anytrading``).

What the env means (read from ``gym_anytrading/envs``): two actions, ``Sell=0`` and
``Buy=1``, and two positions, ``Short`` and ``Long``. A step trades only when the
action flips the position (``Buy`` while ``Short``, ``Sell`` while ``Long``); any other
action leaves it unchanged. Trades execute at the price of the tick the step moves to.

- ``StocksEnv``: ``Short`` is *flat* (out of the market: no reward, no profit change),
  ``Long`` is all-in. So ``Buy`` opens, ``Sell`` closes, long only: the trace's
  position is 0 (flat) or 1 (one lot = the whole account) and the long-only
  invariants (no sell without a position, no buy while in one) apply.
- ``ForexEnv``: ``Short`` is a real short (its reward is ``-price_diff * 10000``), so
  positions are -1 and +1 and a flip trades two lots. The long-only invariants do not
  describe it; the adapter does not declare positions for it.

Neither env has a "hold" action, a mask, cash, or an equity marked to market every
step (``total_profit`` changes only when a position closes), nor integer money: the
trace gets a virtual action ``(no trade)`` for steps that trade nothing, and declares
only the fields it fills from the env (``TraceMeta.supplies``).

A step that trades nothing is recorded as executed ``(no trade)``, rejected, with the
reason the env did nothing: ``NO_POSITION`` (Sell while flat) and
``ALREADY_IN_POSITION`` (Buy while long) for stocks, ``ALREADY_SHORT`` /
``ALREADY_LONG`` for forex, ``NOT_AN_ACTION`` for anything outside ``{0, 1}``.

Markets: these envs take their data at construction. :func:`make_stocks_env` and
:func:`make_forex_env` return the real env inside :class:`AnyTradingMarketEnv`, a thin
wrapper that rebuilds it on the market passed as ``reset(options={"market": m})``;
``step`` goes straight to the env.
"""

from __future__ import annotations

import weakref
from typing import Any, Literal

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

__all__ = ["AnyTradingAdapter", "AnyTradingMarketEnv", "make_forex_env", "make_stocks_env", "market_frame"]

Kind = Literal["stocks", "forex"]

_ACTION_NAMES = ("Sell", "Buy", "(no trade)")
_ACTION_KINDS: tuple[ActionKind, ...] = ("close", "open", "hold")
_NO_TRADE = 2
_BASE = frozenset({"t", "predicted", "executed", "rejected", "reason", "reward"})
_SUPPLIES: dict[Kind, frozenset[str]] = {
    "stocks": _BASE | {"position_before", "position_after", "quantity"},
    "forex": _BASE,
}
_CLASSES = {"stocks": "StocksEnv", "forex": "ForexEnv"}
DEFAULT_WINDOW = 4
"""Observation window of the envs the factories build (ticks before the first step)."""


def _require() -> Any:
    return import_optional("gym_anytrading.envs", package="gym-anytrading", extra="peers")


def _side(position: Any) -> int:
    """``Positions.Long`` -> 1, ``Positions.Short`` -> 0 (by value, as the env defines them)."""
    return int(getattr(position, "value", position))


class AnyTradingAdapter(MarketWrapperAdapter):
    """Turns gym-anytrading ``StocksEnv``/``ForexEnv`` steps into trace records.

    Args:
        kind: ``"stocks"`` (short means flat: long-only positions 0/1) or ``"forex"``
            (short is a real short: positions are not declared).

    Example:
        >>> from tradeguard.invariants import check_trading_env
        >>> report = check_trading_env(lambda: make_stocks_env(steps=8), adapter=AnyTradingAdapter("stocks"),
        ...                            only=["no-sell-without-position"], examples=5, max_steps=8, seed=0)
        >>> report.results[0].status
        'pass'
    """

    def __init__(self, kind: Kind = "stocks") -> None:
        if kind not in _SUPPLIES:
            from tradeguard.errors import InvalidConfig

            raise InvalidConfig(f"kind={kind!r}; expected 'stocks' or 'forex'.")
        self.kind: Kind = kind
        self._side: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    @property
    def name(self) -> str:
        return f"anytrading-{self.kind}"

    @classmethod
    def for_env(cls, env: Any) -> AnyTradingAdapter:
        """The adapter matching ``env``'s class (``ForexEnv`` -> forex, else stocks)."""
        names = {c.__name__ for c in type(getattr(env, "unwrapped", env)).__mro__}
        return cls("forex" if "ForexEnv" in names else "stocks")

    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        return TraceMeta(
            env_id=f"gym-anytrading {_CLASSES[self.kind]}",
            action_names=_ACTION_NAMES,
            action_kinds=_ACTION_KINDS,
            minor_unit=minor_unit_of(env),
            seed=seed,
            supplies=_SUPPLIES[self.kind],
        )

    def begin(self, env: Any, observation: Any, info: dict[str, Any]) -> None:
        self._side[env] = _side(info["position"])

    def record(self, env: Any, step: StepData) -> StepRecord:
        before = self._side.get(env, 0)
        after = _side(step.info["position"])
        self._side[env] = after
        predicted = action_id(step.action)
        # A flip to Long is a Buy, to Short a Sell; no flip traded nothing.
        executed = (1 if after == 1 else 0) if after != before else _NO_TRADE
        rejected = executed != predicted
        reason = None if not rejected else self._reason(predicted, before)
        pos_before, pos_after = self._units(before), self._units(after)
        base = env.unwrapped
        prices = getattr(base, "prices", None)
        tick = getattr(base, "_current_tick", None)
        price = 0
        if prices is not None and tick is not None and 0 <= tick < len(prices):
            price = round(float(prices[tick]) / minor_unit_of(env))
        return partial_record(
            t=step.t,
            price=price,
            next_price=price,
            predicted=predicted,
            executed=executed,
            rejected=rejected,
            reason=reason,
            position_before=pos_before,
            position_after=pos_after,
            quantity=pos_after - pos_before,
            reward=float(step.reward),
            mask=step.mask,
        )

    def equity(self, env: Any, info: dict[str, Any]) -> float:
        """The account's value, as the env reports it: ``info["total_profit"]``, a multiple of the
        starting capital (1.0 at reset). The env updates it when a position closes and when the
        episode ends (``_update_profit``), so it is the money made once an episode is over."""
        return float(info["total_profit"])

    def _units(self, side: int) -> int:
        if self.kind == "stocks":
            return side
        return 1 if side == 1 else -1

    def _reason(self, predicted: int, side: int) -> str:
        if predicted not in (0, 1):
            return "NOT_AN_ACTION"
        if self.kind == "stocks":
            return "NO_POSITION" if predicted == 0 else "ALREADY_IN_POSITION"
        return "ALREADY_SHORT" if predicted == 0 else "ALREADY_LONG"



def market_frame(market: Any, *, columns: tuple[str, ...] = ("Close",)) -> Any:
    """A pandas DataFrame of ``market``'s prices in currency, one column per name in ``columns``."""
    import pandas as pd

    prices = market.prices.astype("float64") * market.minor_unit
    return pd.DataFrame(dict.fromkeys(columns, prices))


class AnyTradingMarketEnv(gym.Wrapper[Any, Any, Any, Any]):
    """The real ``StocksEnv``/``ForexEnv``, rebuilt on the market given to ``reset``.

    ``reset(options={"market": m})`` builds a fresh env on ``m`` (a tradeguard
    ``Market``; its first ``window_size`` prices are the history of the first
    observation) unless ``m`` is the market it already trades; other options go to the
    env's own ``reset``. ``step`` and everything else go straight to the env.

    Args:
        kind: ``"stocks"`` or ``"forex"``.
        steps: Steps per episode of the default market (the package's own dataset).
        window_size: Ticks in each observation.
        **env_kwargs: Passed to the env's constructor (e.g. ``unit_side`` for forex).
    """

    def __init__(self, kind: Kind, *, steps: int = 30, window_size: int = DEFAULT_WINDOW, **env_kwargs: Any) -> None:
        envs = _require()
        from gym_anytrading import datasets

        self.kind = kind
        self.window_size = window_size
        self.env_kwargs = env_kwargs
        self.tradeguard_market_length = window_size + steps + 1
        self.tradeguard_minor_unit = 0.01 if kind == "stocks" else 0.00001
        data = datasets.STOCKS_GOOGL if kind == "stocks" else datasets.FOREX_EURUSD_1H_ASK
        self._cls = getattr(envs, _CLASSES[kind])
        self._market: Any = None
        super().__init__(self._build(data.iloc[: self.tradeguard_market_length].copy()))

    def _build(self, df: Any) -> Any:
        return self._cls(df=df, window_size=self.window_size, frame_bound=(self.window_size, len(df)), **self.env_kwargs)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        rest = dict(options or {})
        market = rest.pop("market", None)
        if market is not None and market != self._market:
            if len(market) < self.window_size + 2:
                from tradeguard.errors import InvalidMarket

                raise InvalidMarket(
                    f"a market of {len(market)} prices cannot feed {_CLASSES[self.kind]} with window_size="
                    f"{self.window_size}; it needs at least {self.window_size + 2} (window + 2)."
                )
            self.env = self._build(market_frame(market))
            self._market = market
            self.tradeguard_minor_unit = market.minor_unit
        return self.env.reset(seed=seed, options=rest or None)


def make_stocks_env(*, steps: int = 30, window_size: int = DEFAULT_WINDOW, **env_kwargs: Any) -> AnyTradingMarketEnv:
    """gym-anytrading's ``StocksEnv`` on ``steps`` steps of its own GOOGL data, ready to take markets.

    Example:
        >>> env = make_stocks_env(steps=5)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, info["position"].name
        ((4, 2), 'Short')
    """
    return AnyTradingMarketEnv("stocks", steps=steps, window_size=window_size, **env_kwargs)


def make_forex_env(*, steps: int = 30, window_size: int = DEFAULT_WINDOW, **env_kwargs: Any) -> AnyTradingMarketEnv:
    """gym-anytrading's ``ForexEnv`` on ``steps`` steps of its own EUR/USD data, ready to take markets."""
    return AnyTradingMarketEnv("forex", steps=steps, window_size=window_size, **env_kwargs)
