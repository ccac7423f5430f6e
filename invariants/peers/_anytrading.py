"""The adapter for gym-anytrading's ``StocksEnv`` and ``ForexEnv`` (package ``gym-anytrading``).

What the env keeps (read from ``gym_anytrading/envs``, version 2.0.0): two actions,
``Sell=0`` and ``Buy=1``; two positions, ``Short`` and ``Long``; a step trades only when
the action flips the position (``Buy`` while ``Short``, ``Sell`` while ``Long``), at the
price of the tick the step moves to (``_current_tick`` is advanced first). The account
is ``total_profit``, 1.0 at reset, in units of the starting account; it is updated when a
position closes (and at truncation, as if it closed), from the entry price
``prices[_last_trade_tick]`` and the env's fee rates. Prices are a float32 array and,
under NumPy 2, every amount computed from them is float32: the trace declares
:meth:`Precision.float32 <tradeguard.trace.Precision.float32>`.

The ledger, in the env's own numbers and order of operations:

- ``StocksEnv``: ``Short`` is flat (cash = ``total_profit``), ``Long`` holds
  ``shares = (total_profit * (1 - trade_fee_ask_percent)) / entry_price`` (cash 0), the
  expression ``_update_profit`` evaluates when the long closes. The ask fee is what the
  buy paid beyond the shares' value; the bid fee is what the sale's proceeds lack.
- ``ForexEnv(unit_side="right")``: the account is in the quote (right) currency;
  ``Long`` holds ``total_profit / entry_price`` units of the base currency, sold at
  ``price - trade_fee`` (a fee of ``trade_fee`` per unit, on the close only); ``Short``
  is cash.
- ``ForexEnv(unit_side="left")``: the account is in the base (left) currency; ``Short``
  holds ``total_profit * (entry_price - trade_fee)`` units of the quote currency (the
  spread paid on the way in), whose price in account units is ``1 / price``; ``Long``
  is cash. Reset starts ``Short``, entered at ``prices[start - 1]``: the account begins
  in the quote currency.

So every kind is long-only in its own account: ``Sell`` closes and ``Buy`` opens (left:
the reverse). A step that trades nothing is recorded as the virtual action
``(no trade)``, rejected, with the reason the env did nothing (``NO_POSITION``,
``ALREADY_IN_POSITION``; forex ``ALREADY_SHORT``, ``ALREADY_LONG``; ``NOT_AN_ACTION``).
The reward has one component, the env's reward function recomputed from the ledger's
prices (``_calculate_reward``: the price difference of a closed long for stocks, pips of
the closed position for forex), so ``reward-is-sum-of-components`` checks that the env
pays what its reward function says. The env's own metric ``total_reward`` is handed to
``metrics-match-trace`` as ``episode_reward``.

Not supplied, and why: no action mask; no financing (the env has none); no
``reported_equity`` (``total_profit`` is the cash itself while flat and stale while
holding); no legs (one instrument). For the black-box reward audit, :meth:`equity
<AnyTradingAdapter.equity>` is the account as the env settles it (exit fee paid).

Markets: these envs take their data at construction. :func:`make_stocks_env` and
:func:`make_forex_env` return the real env inside :class:`AnyTradingMarketEnv`, a thin
wrapper that rebuilds it on the market passed as ``reset(options={"market": m})``;
``step`` goes straight to the env.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym

from tradeguard.invariants._adapter import (
    MarketWrapperAdapter,
    StepData,
    action_id,
    import_optional,
    wrapper_attr,
)
from tradeguard.trace import CORE_FIELDS, ActionKind, FeeSchedule, Precision, StepRecord, TraceMeta

__all__ = ["AnyTradingAdapter", "AnyTradingMarketEnv", "make_forex_env", "make_stocks_env", "market_frame"]

Kind = Literal["stocks", "forex"]

_ACTION_NAMES = ("Sell", "Buy", "(no trade)")
_SELL, _BUY, _NO_TRADE = 0, 1, 2
_SHORT, _LONG = 0, 1
_SUPPLIES = CORE_FIELDS - {"mask"}
_CLASSES = {"stocks": "StocksEnv", "forex": "ForexEnv"}
DEFAULT_WINDOW = 4
"""Observation window of the envs the factories build (ticks before the first step)."""


def _require() -> Any:
    return import_optional("gym_anytrading.envs", package="gym-anytrading", extra="peers")


def _side(position: Any) -> int:
    """``Positions.Long`` -> 1, ``Positions.Short`` -> 0 (by value, as the env defines them)."""
    return int(getattr(position, "value", position))


@dataclass(slots=True)
class _Account:
    """The ledger between two steps: the env's side, its cash, the units held and the entry."""

    side: int
    cash: float
    units: float
    entry_tick: int  # the env's _last_trade_tick
    cost_basis: float


class AnyTradingAdapter(MarketWrapperAdapter):
    """Turns gym-anytrading ``StocksEnv``/``ForexEnv`` steps into ledger lines.

    Args:
        kind: ``"stocks"`` or ``"forex"`` (either ``unit_side``: read from the env).

    Example:
        >>> from tradeguard.invariants import check_trading_env
        >>> report = check_trading_env(lambda: make_stocks_env(steps=8), adapter=AnyTradingAdapter("stocks"),
        ...                            only=["self-financing"], examples=5, max_steps=8, seed=0, timeout=60)
        >>> report.results[0].status
        'pass'
    """

    def __init__(self, kind: Kind = "stocks") -> None:
        if kind not in _CLASSES:
            from tradeguard.errors import InvalidConfig

            raise InvalidConfig(f"kind={kind!r}; expected 'stocks' or 'forex'.")
        self.kind: Kind = kind
        self._accounts: weakref.WeakKeyDictionary[Any, _Account] = weakref.WeakKeyDictionary()

    def __getstate__(self) -> dict[str, Any]:
        """The per-env episodes as (env, state) pairs: a pickle (or deep copy) of an env together with
        this adapter then maps the copied env to a copy of its state (the black-box audit's snapshots)."""
        state = dict(self.__dict__)
        state["_accounts"] = list(self._accounts.items())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        pairs = state.pop("_accounts")
        self.__dict__.update(state)
        self._accounts = weakref.WeakKeyDictionary(pairs)

    @property
    def name(self) -> str:
        return f"anytrading-{self.kind}"

    @classmethod
    def for_env(cls, env: Any) -> AnyTradingAdapter:
        """The adapter matching ``env``'s class (``ForexEnv`` -> forex, else stocks)."""
        names = {c.__name__ for c in type(getattr(env, "unwrapped", env)).__mro__}
        return cls("forex" if "ForexEnv" in names else "stocks")

    def settings(self, env: Any) -> Any:
        """The constructor's settings the gate draws (settings fuzzing), for ``env`` built with none:
        ``window_size`` (1 to 12 ticks), ``frame_bound`` (where the episode starts and ends in the
        market) and, for forex, ``unit_side``; each optional (absent: the factory's own), within the
        market the env takes. The episode length the trace declares is read from the env built with them."""
        return anytrading_settings(env, self.kind)

    # ------------------------------------------------------------------ what the env is
    def _left(self, base: Any) -> bool:
        return self.kind == "forex" and str(getattr(base, "unit_side", "left")).lower() == "left"

    def _holding(self, base: Any) -> int:
        """The side that holds the instrument: Long, or Short for a left-unit forex account."""
        return _SHORT if self._left(base) else _LONG

    def _price(self, base: Any, tick: int) -> float:
        """The instrument's price in account units at ``tick`` (the last tick's past the end)."""
        price = float(base.prices[min(tick, len(base.prices) - 1)])
        return 1.0 / price if self._left(base) else price

    def _units(self, base: Any, total_profit: Any, entry_tick: int) -> float:
        """Units held, by the expression ``_update_profit`` evaluates when the position closes."""
        entry = base.prices[entry_tick]
        if self.kind == "stocks":
            return float((total_profit * (1 - base.trade_fee_ask_percent)) / entry)
        if self._left(base):
            return float(total_profit * (entry - base.trade_fee))
        return float(total_profit / entry)

    def _fee_schedule(self, base: Any) -> FeeSchedule:
        if self.kind == "stocks":
            ask, bid = float(base.trade_fee_ask_percent), float(base.trade_fee_bid_percent)

            def stocks_fees(quantity: float, price: float) -> float:
                # Buy: the ask fee is a share of the cash spent, ask / (1 - ask) of the shares' value.
                notional = abs(quantity) * price
                return notional * ask / (1 - ask) if quantity > 0 else notional * bid

            stocks_fees.__name__ = f"ask {ask:.2%} of the cash spent, bid {bid:.2%} of the proceeds"
            return FeeSchedule(function=stocks_fees)
        spread = float(base.trade_fee)
        if self._left(base):

            def spread_on_entry(quantity: float, price: float) -> float:
                # Entering buys quote units at (1 / price - spread): quantity * spread * price^2 / (1 - spread * price).
                return quantity * spread * price * price / (1 - spread * price) if quantity > 0 else 0.0

            spread_on_entry.__name__ = f"a spread of {spread:g} on the price paid for the quote currency"
            return FeeSchedule(function=spread_on_entry)

        def spread_on_exit(quantity: float, price: float) -> float:
            return -quantity * spread if quantity < 0 else 0.0

        spread_on_exit.__name__ = f"a spread of {spread:g} on the price the base currency is sold at"
        return FeeSchedule(function=spread_on_exit)

    # ------------------------------------------------------------------ the protocol
    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        base = env.unwrapped
        left = self._left(base)
        kinds: tuple[ActionKind, ...] = ("open", "close", "hold") if left else ("close", "open", "hold")
        side = f" (unit_side={base.unit_side!r})" if self.kind == "forex" else ""
        return TraceMeta(
            env_id=f"gym-anytrading {_CLASSES[self.kind]}{side}",
            action_names=_ACTION_NAMES,
            action_kinds=kinds,
            component_names=("price_diff_of_closed_long",) if self.kind == "stocks" else ("pips_of_closed_position",),
            initial_cash=0.0 if left else 1.0,
            minor_unit=1.0,
            seed=seed,
            supplies=_SUPPLIES,
            precision=Precision.float32(),
            fee_schedule=self._fee_schedule(base),
            # frame_bound=(start, end) gives the prices of ticks start..end-1; the agent acts on
            # each tick but the last, whose price marks the last step.
            episode_length=int(base.frame_bound[1]) - int(base.frame_bound[0]) - 1,
            # The account at reset: total_profit 1.0, flat (stocks; forex left starts holding).
            initial_position=None if left else 0.0,
            initial_equity=None if left else 1.0,
        )

    def begin(self, env: Any, observation: Any, info: dict[str, Any]) -> None:
        base = env.unwrapped
        side, entry = _side(info["position"]), int(base._last_trade_tick)
        if side == self._holding(base):  # forex left: the env starts in the quote currency
            units = self._units(base, info["total_profit"], entry)
            self._accounts[env] = _Account(side, 0.0, units, entry, units * self._price(base, entry))
        else:
            self._accounts[env] = _Account(side, float(info["total_profit"]), 0.0, entry, 0.0)

    def record(self, env: Any, step: StepData) -> StepRecord:
        base = env.unwrapped
        was = self._accounts[env]
        tick = int(base._current_tick)
        price, next_price = self._price(base, tick), self._price(base, tick + 1)
        side = _side(step.info["position"])
        holding = self._holding(base)
        traded = side != was.side
        fee = 0.0
        if traded and side == holding:  # bought in: all the cash
            entry = int(base._last_trade_tick)
            now = _Account(side, 0.0, self._units(base, step.info["total_profit"], entry), entry, 0.0)
            now.cost_basis = now.units * price
            fee = self._entry_fee(base, step.info["total_profit"], entry)
        elif traded:  # sold out: the env's total_profit is the cash
            now = _Account(side, float(step.info["total_profit"]), 0.0, int(base._last_trade_tick), 0.0)
            fee = self._exit_fee(base, was, tick)
        elif side == holding:  # still holding (at truncation total_profit is a liquidation value, not cash)
            now = _Account(side, was.cash, was.units, was.entry_tick, was.cost_basis)
        else:
            now = _Account(side, float(step.info["total_profit"]), 0.0, was.entry_tick, 0.0)
        self._accounts[env] = now
        predicted = action_id(step.action)
        # A flip to Long is a Buy, to Short a Sell; no flip traded nothing.
        executed = (_BUY if side == _LONG else _SELL) if traded else _NO_TRADE
        rejected = executed != predicted
        return StepRecord(
            t=step.t,
            price=price,
            next_price=next_price,
            predicted=predicted,
            executed=executed,
            rejected=rejected,
            reason=self._reason(predicted, was.side) if rejected else None,
            position_before=was.units,
            position_after=now.units,
            cash_before=was.cash,
            cash_after=now.cash,
            equity_before=was.cash + was.units * price,
            equity_after=now.cash + now.units * next_price,
            quantity=now.units - was.units,
            fee=fee,
            reward=float(step.reward),
            components=(self._reward_of(base, was, tick, traded),),
            mask=step.mask,
            cost_basis_before=was.cost_basis,
        )

    def reported_metrics(self, env: Any, info: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The env's own running total of its rewards (``info["total_reward"]``)."""
        if "total_reward" not in info:
            return None
        return {"episode_reward": float(info["total_reward"])}

    def equity(self, env: Any, info: Mapping[str, Any]) -> float:
        """The account as the env settles it, for the black-box reward audit's PnL: ``total_profit``
        while flat; while holding, what ``_update_profit`` would make it were the position closed
        at the current tick (its own expression, in its float32: exit fee paid), which is what
        ``total_profit`` becomes when the episode is truncated. The ledger's ``equity_after``
        marks the units to the next price without the exit fee; the money an episode makes is
        this."""
        base = env.unwrapped
        profit = info["total_profit"]
        if _side(info["position"]) != self._holding(base) or base._truncated:
            return float(profit)  # flat, or settled by the env at truncation
        entry, now = base.prices[base._last_trade_tick], base.prices[base._current_tick]
        if self.kind == "stocks":
            shares = (profit * (1 - base.trade_fee_ask_percent)) / entry
            return float((shares * (1 - base.trade_fee_bid_percent)) * now)
        if self._left(base):
            return float(profit * (entry - base.trade_fee) / now)
        return float(profit / entry * (now - base.trade_fee))

    # ------------------------------------------------------------------ the env's rules
    def _entry_fee(self, base: Any, total_profit: Any, entry_tick: int) -> float:
        """What buying in cost beyond the units' value, from the env's own (float32) terms."""
        if self.kind == "stocks":  # the ask fee: the part of the cash that buys no shares
            return float(total_profit) - float(total_profit * (1 - base.trade_fee_ask_percent))
        if self._left(base):  # the spread: quote units bought at (price - spread), as the env rounds it
            price = base.prices[entry_tick]
            return float(total_profit) * (float(price) - float(price - base.trade_fee)) / float(price)
        return 0.0

    def _exit_fee(self, base: Any, was: _Account, tick: int) -> float:
        """What the sale's proceeds lack, from the env's own (float32) terms."""
        price = base.prices[tick]
        units = base.prices.dtype.type(was.units)  # the env's float32 units, exactly
        if self.kind == "stocks":  # the bid fee: shares * (1 - bid) are sold at the price
            return float(units) * float(price) - float(units * (1 - base.trade_fee_bid_percent)) * float(price)
        if self._left(base):
            return 0.0
        return float(units) * (float(price) - float(price - base.trade_fee))  # sold at price - spread

    def _reward_of(self, base: Any, was: _Account, tick: int, traded: bool) -> float:
        """``_calculate_reward``, in the env's float32: paid only on the step that closes a position."""
        if not traded:
            return 0.0
        diff = base.prices[tick] - base.prices[was.entry_tick]
        if self.kind == "stocks":
            return float(diff) if was.side == _LONG else 0.0
        return float(-diff * 10000 if was.side == _SHORT else diff * 10000)

    def _reason(self, predicted: int, side: int) -> str:
        if predicted not in (_SELL, _BUY):
            return "NOT_AN_ACTION"
        if self.kind == "stocks":
            return "NO_POSITION" if predicted == _SELL else "ALREADY_IN_POSITION"
        return "ALREADY_SHORT" if predicted == _SELL else "ALREADY_LONG"


def anytrading_settings(env: Any, kind: Kind) -> Any:
    """The settings strategy of :meth:`AnyTradingAdapter.settings`."""
    from hypothesis import strategies as st

    rows = int(wrapper_attr(env, "tradeguard_market_length") or len(env.unwrapped.prices))
    window = int(env.unwrapped.window_size)
    given = wrapper_attr(env, "frame_bound_given")  # a frame_bound the env was built with, kept

    @st.composite
    def draw(draw: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        w = window
        widest = min(12, rows - 2, int(given[0]) if given is not None else rows)
        if draw(st.booleans()) and widest >= 1:
            w = out["window_size"] = draw(st.integers(1, widest))
        # frame_bound=(start, end): ticks start..end-1 are traded, the window before start is history;
        # start >= the window (either one: a drawn window_size may be fixed by the factory instead).
        if draw(st.booleans()) and given is None and max(w, window) <= rows - 2:
            start = draw(st.integers(max(w, window), rows - 2))
            out["frame_bound"] = [start, draw(st.integers(start + 2, rows))]
        if kind == "forex" and draw(st.booleans()):
            out["unit_side"] = draw(st.sampled_from(["left", "right"]))
        return out

    return draw()


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
        env_class: The env to build: the package's ``StocksEnv``/``ForexEnv`` (default), or a
            subclass of it.
        frame_bound: ``(start, end)``: the episode trades ticks ``start`` to ``end - 1`` of each
            market (``window_size <= start``, ``start + 2 <= end <= `` the market's length);
            default ``(window_size, len(market))``, the whole market.
        **env_kwargs: Passed to the env's constructor (e.g. ``unit_side`` for forex).
    """

    def __init__(self, kind: Kind, *, steps: int = 30, window_size: int = DEFAULT_WINDOW,
                 env_class: type | None = None, frame_bound: Any = None, **env_kwargs: Any) -> None:
        envs = _require()
        from gym_anytrading import datasets

        self.kind = kind
        self.window_size = window_size
        self.frame_bound_given = None if frame_bound is None else _frame_bound(frame_bound, window_size)
        self.env_kwargs = env_kwargs
        self.tradeguard_market_length = window_size + steps + 1
        self.tradeguard_minor_unit = 0.01 if kind == "stocks" else 0.00001
        data = datasets.STOCKS_GOOGL if kind == "stocks" else datasets.FOREX_EURUSD_1H_ASK
        self._cls = env_class or getattr(envs, _CLASSES[kind])
        self._market: Any = None
        rows = max(self.tradeguard_market_length, self.frame_bound_given[1] if self.frame_bound_given else 0)
        super().__init__(self._build(data.iloc[:rows].copy()))

    def _build(self, df: Any) -> Any:
        bound = self.frame_bound_given or (self.window_size, len(df))
        if bound[1] > len(df):
            from tradeguard.errors import InvalidMarket

            raise InvalidMarket(f"frame_bound={bound} ends past the market's {len(df)} prices; give an end <= {len(df)}.")
        return self._cls(df=df, window_size=self.window_size, frame_bound=bound, **self.env_kwargs)

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
            space = self.env.action_space
            self.env = self._build(market_frame(market))
            self.env.action_space = space  # one action space (and its random stream) across the markets the env is rebuilt on
            self._market = market
            self.tradeguard_minor_unit = market.minor_unit
        return self.env.reset(seed=seed, options=rest or None)


def _frame_bound(bound: Any, window_size: int) -> tuple[int, int]:
    """``bound`` as ``(start, end)``, checked against the window (the env's own check is an index probe)."""
    from tradeguard.errors import InvalidConfig

    try:
        start, end = (int(b) for b in bound)
    except (TypeError, ValueError):
        raise InvalidConfig(f"frame_bound={bound!r}; expected two tick indices (start, end), e.g. (4, 34).") from None
    if not window_size <= start <= end - 2:
        raise InvalidConfig(
            f"frame_bound={bound!r} with window_size={window_size}; expected window_size <= start <= end - 2 "
            "(the window before start is the first observation's history, and an episode needs a step)."
        )
    return start, end


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
    """gym-anytrading's ``ForexEnv`` on ``steps`` steps of its own EUR/USD data, ready to take markets.

    ``unit_side`` (``"left"``, the package's default, or ``"right"``) goes to the env.
    """
    return AnyTradingMarketEnv("forex", steps=steps, window_size=window_size, **env_kwargs)
