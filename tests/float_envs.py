"""Trading envs that keep money in floats, as most envs people bring do, and their broken twins.

``Book`` is a healthy float64 env with fractional positions, a percentage fee with a
minimum, several instruments, optional shorts within a limit, a borrow fee on shorts,
optional leverage (borrowed cash), an env-reported portfolio value and trade counter,
and optional rounding of cash to cents. ``BookAdapter`` plugs it into the catalog with
no unit tricks: it copies the env's own numbers into the record and declares the
precision, the fee schedule, the limits and the financing the env promises.

Each broken variant below changes one line of the env's own logic (never the record):
the kind of bug a float ledger really has. tests/test_float_ledgers.py proves each one
is caught by the right invariant and that every healthy configuration passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from tradeguard.invariants import StepData
from tradeguard.trace import (
    CORE_FIELDS,
    FeeSchedule,
    FinancingSchedule,
    Leg,
    Precision,
    StepRecord,
    TraceMeta,
)


@dataclass(frozen=True)
class BookConfig:
    """A ``Book``'s settings. Money in currency (floats); rates per step or per trade."""

    instruments: tuple[str, ...] = ("BTC",)
    cash: float = 10_000.0
    fee_rate: float = 0.001
    min_fee: float = 0.0
    buy_fraction: float = 0.5  # of equity, per BUY
    shorts: bool = False
    limit: float = 2.0  # |position| in units, per instrument, when shorts are on
    short_rate: float = 0.0  # borrow fee on short value, per step
    long_rate: float = 0.0  # carry (a future's funding) on long value, per step
    leverage: float = 1.0  # a BUY may spend up to leverage x equity (cash may go negative)
    round_cash: bool = False  # cash rounded to cents after every step
    length: int = 12


class Book(gym.Env[np.ndarray, int]):
    """Actions: 0 = HOLD; 1 + 2i = BUY instrument i; 2 + 2i = SELL (close, or open a short)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, config: BookConfig = BookConfig()) -> None:
        self.config = config
        n = len(config.instruments)
        self.action_space = gym.spaces.Discrete(1 + 2 * n)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1 + 2 * n,), np.float64)
        self.prices = self._default_prices()
        self.trade_counter = 0

    # ------------------------------------------------------------------ market
    def _default_prices(self, base: Any = None) -> np.ndarray:
        c = self.config
        path = np.asarray(base if base is not None else [100.0 + 3.0 * math.sin(t) for t in range(c.length + 1)],
                          dtype=np.float64)
        cols = [path * (1.0 + 0.5 * i) * (1.0 + 0.01 * np.sin(np.arange(len(path)) + i)) for i in range(len(c.instruments))]
        return np.stack(cols, axis=1)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        prices = (options or {}).get("prices")
        self.prices = self._default_prices(None if prices is None else np.asarray(prices, float) / 100.0)
        self.t = 0
        self.cash = float(self.config.cash)
        self.positions = np.zeros(len(self.config.instruments))
        self.trade_counter = 0
        self.done = False
        return self._obs(), self._info(0.0, np.zeros_like(self.positions), 0.0, None)

    def _obs(self) -> np.ndarray:
        return np.concatenate([[self.cash], self.positions, self.prices[self.t]]).astype(np.float64)

    def value(self, t: int) -> float:
        return float(self.cash + math.fsum(self.positions * self.prices[t]))

    def _info(self, fee: float, traded: np.ndarray, financing: float, reason: str | None) -> dict[str, Any]:
        return {"cash": self.cash, "positions": self.positions.copy(), "fee": fee, "traded": traded,
                "financing": financing, "reason": reason, "portfolio_value": self.reported_value(),
                "trades": self.trade_counter, "price": self.prices[max(self.t - 1, 0)].copy(),
                "next_price": self.prices[self.t].copy()}

    # ------------------------------------------------------------------ the logic (broken twins override one part)
    def reported_value(self) -> float:
        return self.value(self.t)

    def fee_of(self, quantity: float, price: float) -> float:
        if quantity == 0:
            return 0.0
        return max(self.config.min_fee, self.config.fee_rate * abs(quantity) * price)

    def financing_of(self, prices: np.ndarray) -> float:
        shorts = np.maximum(-self.positions, 0.0)
        longs = np.maximum(self.positions, 0.0)
        return self.config.short_rate * math.fsum(shorts * prices) + self.config.long_rate * math.fsum(longs * prices)

    def order(self, action: int, prices: np.ndarray) -> tuple[np.ndarray, str | None]:
        """The signed quantities an action trades, or a rejection reason."""
        c = self.config
        q = np.zeros(len(c.instruments))
        if action == 0:
            return q, None
        i, sell = (action - 1) // 2, (action - 1) % 2 == 1
        held = self.positions[i]
        if not sell:
            if held < 0:
                q[i] = -held  # buy back the short
                return q, None
            equity = self.value(self.t)
            budget = min(c.buy_fraction * equity * c.leverage, self.cash + (c.leverage - 1.0) * equity)
            if budget <= 0:
                return q, "INSUFFICIENT_CASH"
            want = budget / (prices[i] * (1.0 + c.fee_rate))
            if c.min_fee and self.fee_of(want, prices[i]) > c.fee_rate * want * prices[i]:
                want = (budget - c.min_fee) / prices[i]
            if want <= 0:
                return q, "INSUFFICIENT_CASH"
            if c.shorts:
                want = min(want, c.limit - held)
                if want <= 0:
                    return q, "POSITION_LIMIT"
            q[i] = want
            return q, None
        if held > 0:
            q[i] = -held
            return q, None
        if not c.shorts:
            return q, "NO_POSITION"
        room = c.limit + held  # how much more may be shorted
        if room <= 0:
            return q, "POSITION_LIMIT"
        q[i] = -min(room, 0.5 * c.limit)
        return q, None

    def fill(self, requested: np.ndarray) -> np.ndarray:
        """What executes of an order: all of it."""
        return requested.copy()

    def settle_cash(self, cash: float) -> float:
        return round(cash, 2) if self.config.round_cash else cash

    def ruined(self) -> bool:
        return self.value(self.t) <= 0

    # ------------------------------------------------------------------ step
    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action={action!r} is not in {self.action_space}")
        if self.done:
            raise RuntimeError("the episode has ended; call reset()")
        action = int(action)
        prices = self.prices[self.t]
        before = self.value(self.t)
        requested, reason = self.order(action, prices)
        q = self.fill(requested)
        if action != 0:
            self.count_request(reason)
        fees = np.array([self.fee_of(x, p) for x, p in zip(q, prices, strict=True)])
        financing = self.financing_of(prices)
        self.positions = self.positions + q
        self.cash = self.settle_cash(self.cash - math.fsum(q * prices) - math.fsum(fees) - financing)
        self.t += 1
        after = self.value(self.t)
        self.done = self.t >= self.config.length or self.ruined()
        info = self._info(math.fsum(fees), q, financing, reason)
        info["leg_fees"] = fees
        info["requested"] = requested
        return self._obs(), float(after - before), self.done, False, info

    def count_request(self, reason: str | None) -> None:
        if reason is None:
            self.trade_counter += 1


class BookAdapter:
    """``Book`` as a ledger: the env's own floats, no unit tricks, its promises declared."""

    name = "book"

    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        book: Book = env.unwrapped
        c = book.config
        n = len(c.instruments)
        names = ["HOLD"] + [f"{side} {name}" for name in c.instruments for side in ("BUY", "SELL")]
        kinds = ["hold"] + ["open", "close"] * n
        return TraceMeta(
            env_id="Book",
            action_names=tuple(names),
            action_kinds=tuple(kinds),  # type: ignore[arg-type]
            initial_cash=c.cash,
            minor_unit=1.0,
            reward_is_pnl=True,
            seed=seed,
            supplies=(CORE_FIELDS - {"cost_basis_before", "mask"})
            | {"legs", "financing", "reported_equity"},
            precision=Precision.float64(money_step=0.01 if c.round_cash else 0.0),
            instruments=c.instruments,
            long_only=not c.shorts,
            # A short is bought back at whatever it costs and pays its borrow fee from cash, so
            # a book that shorts lends cash when the price rises (found at --profile thorough:
            # all cash in BTC, a short of SOL covered 1% higher left cash at -0.37).
            borrows_cash=c.leverage > 1.0 or c.shorts,
            position_limits=(-c.limit, c.limit) if c.shorts else None,
            max_leverage=c.leverage if c.leverage > 1.0 else None,
            fee_schedule=FeeSchedule(rate=c.fee_rate, minimum=c.min_fee),
            financing_schedule=FinancingSchedule(short_rate=c.short_rate, long_rate=c.long_rate),
        )

    def begin(self, env: Any, observation: Any, info: dict[str, Any]) -> None:
        self.last = info

    def record(self, env: Any, step: StepData) -> StepRecord:
        book: Book = env.unwrapped
        was, now = self.last, step.info
        self.last = now
        requested = now["requested"]
        legs = tuple(
            Leg(price=float(now["price"][i]), next_price=float(now["next_price"][i]),
                position_before=float(was["positions"][i]), position_after=float(now["positions"][i]),
                quantity=float(now["traded"][i]), fee=float(now["leg_fees"][i]), requested=float(requested[i]))
            for i in range(len(book.config.instruments))
        )
        equity_before = was["cash"] + math.fsum(leg.position_before * leg.price for leg in legs)
        equity_after = now["cash"] + math.fsum(leg.position_after * leg.next_price for leg in legs)
        return StepRecord(
            t=step.t, price=0, next_price=0, predicted=int(step.action),
            executed=0 if now["reason"] is not None else int(step.action),
            rejected=now["reason"] is not None, reason=now["reason"], position_before=0, position_after=0,
            cash_before=was["cash"], cash_after=now["cash"], equity_before=equity_before,
            equity_after=equity_after, quantity=0, fee=now["fee"], reward=float(step.reward), components=(),
            mask=None, cost_basis_before=0, legs=legs, financing=now["financing"],
            reported_equity=now["portfolio_value"],
        )

    def reported_metrics(self, env: Any, info: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"trades": info["trades"]}

    def reset_options(self, market: Any) -> dict[str, Any] | None:
        return {"prices": market.prices.tolist()}

    def market_length(self, env: Any) -> int | None:
        return int(env.unwrapped.config.length) + 1


# --------------------------------------------------------------------------- the healthy configurations
LONG = BookConfig()
"""One instrument, long-only, fractional, 0.1% fee, float64 cash."""
PORTFOLIO = BookConfig(instruments=("BTC", "ETH", "SOL"), fee_rate=0.0005, min_fee=1.0, shorts=True,
                       limit=40.0, short_rate=0.0002, long_rate=0.0001, round_cash=True)
"""Three instruments, shorts within +/-40 units, a 1.00 minimum fee, a borrow fee, a carry on longs, cents."""
MARGIN = BookConfig(leverage=10.0, buy_fraction=1.0)
"""One instrument bought with borrowed cash, up to 10x equity: a 10% fall ruins it."""

HEALTHY: dict[str, BookConfig] = {"long": LONG, "portfolio": PORTFOLIO, "margin": MARGIN}


def factory(cls: type[Book], config: BookConfig) -> Callable[[], Book]:
    def make() -> Book:
        return cls(config)

    make.__qualname__ = f"{cls.__name__}({config.instruments})"
    return make


# --------------------------------------------------------------------------- broken on purpose
class FeeChargedTwice(Book):
    """Cash, the reported fee and the PnL reward all agree: the fee itself is double."""

    def fee_of(self, quantity: float, price: float) -> float:
        return 2 * super().fee_of(quantity, price)


class StaleValuation(Book):
    """The reported portfolio value is marked at the previous step's price."""

    def reported_value(self) -> float:
        return self.value(max(self.t - 1, 0))


class CountsRequests(Book):
    """``info["trades"]`` counts requested trades, rejected ones too (the seed's Bug 1)."""

    def count_request(self, reason: str | None) -> None:
        self.trade_counter += 1


class NoBorrowFee(Book):
    """The borrow fee on shorts is declared but never charged."""

    def financing_of(self, prices: np.ndarray) -> float:
        return 0.0


class LongsCarryFree(Book):
    """The carry on long positions is declared but only shorts are charged."""

    def financing_of(self, prices: np.ndarray) -> float:
        return self.config.short_rate * math.fsum(np.maximum(-self.positions, 0.0) * prices)


class ShortPastLimit(Book):
    """The short limit is checked against the position before the trade, not after."""

    def order(self, action: int, prices: np.ndarray) -> tuple[np.ndarray, str | None]:
        q, reason = super().order(action, prices)
        i = (action - 1) // 2
        if action and (action - 1) % 2 == 1 and reason is None and self.positions[i] <= 0:
            q[i] = -0.75 * self.config.limit
        return q, reason


class TradesOnWhenRuined(Book):
    """A ruined account keeps trading."""

    def ruined(self) -> bool:
        return False


class SellsTheWrongInstrument(Book):
    """A sell order for instrument i fills on instrument i + 1."""

    def fill(self, requested: np.ndarray) -> np.ndarray:
        return np.where(requested < 0, np.roll(requested, 1), requested)


class TruncatesCents(Book):
    """Cash is truncated to whole cents (the env declares rounding to the nearest cent)."""

    def fill(self, requested: np.ndarray) -> np.ndarray:
        """What executes of an order: all of it."""
        return requested.copy()

    def settle_cash(self, cash: float) -> float:
        return math.floor(cash * 100) / 100


class OverFills(Book):
    """A buy fills 10% more than was ordered."""

    def fill(self, requested: np.ndarray) -> np.ndarray:
        return np.where(requested > 0, requested * 1.1, requested)


class LeverageUnchecked(Book):
    """A buy spends up to twice the leverage the env promises."""

    def order(self, action: int, prices: np.ndarray) -> tuple[np.ndarray, str | None]:
        q, reason = super().order(action, prices)
        return (q * 2.0 if action and (action - 1) % 2 == 0 and np.all(q >= 0) else q), reason


class MinimumFeeOnNothing(Book):
    """The minimum fee is charged on every instrument of a trading step, traded or not."""

    def fee_of(self, quantity: float, price: float) -> float:
        return max(self.config.min_fee, super().fee_of(quantity, price))


class PositionRounded(Book):
    """The position is stored to 3 decimals; cash pays for the unrounded quantity."""

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        out = super().step(action)
        self.positions = np.round(self.positions, 3)
        out[4]["positions"] = self.positions.copy()
        return out


def with_config(config: BookConfig, **changes: Any) -> BookConfig:
    return replace(config, **changes)
