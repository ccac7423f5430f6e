"""A small single-instrument trading env that keeps the env contract, and its broken twins.

``Coin`` trades one instrument from float cash: HOLD, BUY (open from flat, with a fee),
SELL (close). Its prices are a random walk drawn from ``self.np_random``; its observation
shows the price, the position, the cash and the time left; ``step()`` after the end raises
``RuntimeError``. The same env takes its actions from a ``Discrete(3)``, a ``Box`` (the
action is ``floor(a[0])``) or a ``MultiDiscrete([3])`` space. ``CoinAdapter`` plugs it in
and declares what its settings promise: the episode length, the position and cash at reset,
the portfolio value it reports at reset.

Each twin below changes one thing of the env's own behaviour (never the record): a bug
the contract invariants of issue 14 must catch; tests/test_contract_invariants.py proves
each is caught by the right invariant and that the healthy env passes the whole catalog.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from tradeguard.invariants import StepData
from tradeguard.trace import CORE_FIELDS, Precision, StepRecord, TraceMeta

ACTIONS = ("HOLD", "BUY", "SELL")


@dataclass(frozen=True)
class CoinConfig:
    """Settings: money in currency; ``length`` steps per episode; ``space`` the action space."""

    length: int = 10
    cash: float = 1_000.0
    initial_position: float = 0.0
    fee_rate: float = 0.001
    space: str = "discrete"  # "discrete" | "box" | "multidiscrete"


class Coin(gym.Env[np.ndarray, Any]):
    """Actions 0 = HOLD, 1 = BUY (all cash, from flat), 2 = SELL (close)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, config: CoinConfig = CoinConfig()) -> None:
        self.config = config
        self.action_space: gym.Space[Any] = {
            "discrete": gym.spaces.Discrete(3),
            "box": gym.spaces.Box(0.0, 2.999, (1,), np.float32),
            "multidiscrete": gym.spaces.MultiDiscrete([3]),
        }[config.space]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float64)
        self.prices = np.full(config.length + 1, 100.0)
        self.done = True

    def decode(self, action: Any) -> int:
        if not self.action_space.contains(action):
            raise ValueError(f"action={action!r} is not in {self.action_space}")
        return int(action) if self.config.space == "discrete" else math.floor(float(np.asarray(action)[0]))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.draw_prices()
        self.t = 0
        self.start()
        self.done = False
        return self.obs(), self.info(0.0, None)

    def draw_prices(self) -> None:
        steps = self.np_random.normal(0.0, 1.0, self.config.length)
        self.prices = 100.0 + np.concatenate([[0.0], np.cumsum(steps)])

    def start(self) -> None:
        self.cash = float(self.config.cash)
        self.position = float(self.config.initial_position)

    def obs(self) -> np.ndarray:
        return np.array([self.prices[self.t], self.position, self.cash, self.config.length - self.t], dtype=np.float64)

    def value(self) -> float:
        return self.cash + self.position * float(self.prices[self.t])

    def info(self, fee: float, reason: str | None) -> dict[str, Any]:
        return {"cash": self.cash, "position": self.position, "fee": fee, "reason": reason,
                "portfolio_value": self.reported_value()}

    def reported_value(self) -> float:
        return self.value()

    # ------------------------------------------------------------------ the logic (twins override one part)
    def order(self, action: int, price: float) -> tuple[float, str | None]:
        if action == 1:
            if self.position != 0:
                return 0.0, "ALREADY_IN_POSITION"
            return self.cash / (price * (1.0 + self.config.fee_rate)), None
        if action == 2:
            if self.position <= 0:
                return 0.0, "NO_POSITION"
            return -self.position, None
        return 0.0, None

    def ended(self) -> bool:
        return self.t >= self.config.length

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = self.decode(action)
        self.last_action = a
        self.guard()
        price = float(self.prices[self.t])
        before = self.value()
        q, reason = self.order(a, price)
        fee = self.config.fee_rate * abs(q) * price
        self.position += q
        self.cash -= q * price + fee
        self.t += 1
        self.done = self.ended()
        return self.obs(), self.value() - before, self.done, False, self.info(fee, reason)

    def guard(self) -> None:
        if self.done:
            raise RuntimeError("the episode has ended; call reset()")


class CoinAdapter:
    """``Coin`` as a ledger; declares the length, the start and the reported value at reset."""

    name = "coin"

    def __init__(self, *, hides_position: bool = False) -> None:
        self.hides_position = hides_position

    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        coin: Coin = env.unwrapped
        c = coin.config
        return TraceMeta(
            env_id="Coin", action_names=ACTIONS, action_kinds=("hold", "open", "close"),
            initial_cash=c.cash, minor_unit=1.0, reward_is_pnl=True, seed=seed,
            supplies=CORE_FIELDS - {"cost_basis_before", "mask", "components"},
            precision=Precision.float64(), episode_length=c.length, initial_position=c.initial_position,
            initial_equity=self.last["portfolio_value"], hides_position=self.hides_position,
        )

    def begin(self, env: Any, observation: Any, info: dict[str, Any]) -> None:
        self.last = info

    def record(self, env: Any, step: StepData) -> StepRecord:
        coin: Coin = env.unwrapped
        was, now = self.last, step.info
        self.last = now
        a = coin.last_action
        price, next_price = float(coin.prices[coin.t - 1]), float(coin.prices[coin.t])
        return StepRecord(
            t=step.t, price=price, next_price=next_price, predicted=a,
            executed=0 if now["reason"] is not None else a, rejected=now["reason"] is not None,
            reason=now["reason"], position_before=was["position"], position_after=now["position"],
            cash_before=was["cash"], cash_after=now["cash"],
            equity_before=was["cash"] + was["position"] * price, equity_after=now["cash"] + now["position"] * next_price,
            quantity=now["position"] - was["position"], fee=now["fee"], reward=float(step.reward), components=(),
            mask=None, cost_basis_before=0,
        )

    def reset_options(self, market: Any) -> dict[str, Any] | None:
        return None

    def market_length(self, env: Any) -> int | None:
        return None


def factory(cls: type[Coin], config: CoinConfig = CoinConfig()) -> Callable[[], Coin]:
    def make() -> Coin:
        return cls(config)

    make.__qualname__ = f"{cls.__name__}({config.space})"
    return make


# --------------------------------------------------------------------------- broken on purpose
class ReseedsActionSpaceUnseeded(Coin):
    """``reset(seed=None)`` reseeds the action space to a constant (gym-anytrading 2.0.0 does)."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        out = super().reset(seed=seed, options=options)
        self.action_space.seed(seed if seed is not None else 0)
        return out


class ConstantOwnSeed(Coin):
    """An unseeded reset seeds the env's own generator with 0: every unseeded episode is the same."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        return super().reset(seed=0 if seed is None else seed, options=options)


class DrawsFromGlobalNumpy(Coin):
    """The prices are drawn from numpy's global generator, not ``self.np_random``."""

    def draw_prices(self) -> None:
        self.prices = 100.0 + np.concatenate([[0.0], np.cumsum(np.random.normal(0.0, 1.0, self.config.length))])


class ReseedsGlobalRandom(Coin):
    """``reset`` reseeds Python's global ``random`` module."""

    def draw_prices(self) -> None:
        random.seed(1234)
        super().draw_prices()


class EndsOneStepEarly(Coin):
    """An episode-length setting of 10 gives 9 steps (the end test is off by one)."""

    def ended(self) -> bool:
        return self.t >= self.config.length - 1


class RunsOneStepLong(Coin):
    """An episode runs one step past its setting."""

    def ended(self) -> bool:
        return self.t >= self.config.length + 1

    def draw_prices(self) -> None:
        super().draw_prices()
        self.prices = np.append(self.prices, self.prices[-1])


class NoGuardIndexError(Coin):
    """No end-of-episode guard: the step past the end dies on an IndexError in the price data."""

    def guard(self) -> None:
        return None


class BuyDoesNothing(Coin):
    """An allowed, affordable BUY silently does nothing: no trade, no rejection, no reason."""

    def order(self, action: int, price: float) -> tuple[float, str | None]:
        if action == 1 and self.position == 0:
            return 0.0, None
        return super().order(action, price)


class SellLeavesDust(Coin):
    """SELL (close) sells only 90% of the position, with no reason."""

    def order(self, action: int, price: float) -> tuple[float, str | None]:
        q, reason = super().order(action, price)
        return (0.9 * q if action == 2 else q), reason


class HidesPosition(Coin):
    """The observation leaves the position and the cash out: the agent cannot see what it holds."""

    def obs(self) -> np.ndarray:
        return np.array([self.prices[self.t], 0.0, 0.0, self.config.length - self.t], dtype=np.float64)


class IgnoresInitialPosition(Coin):
    """The settings give an initial position; reset starts flat anyway."""

    def start(self) -> None:
        super().start()
        self.position = 0.0


class ReportsCashAsValueAtReset(Coin):
    """At reset the env reports its cash as its portfolio value, leaving out the initial holdings."""

    def reported_value(self) -> float:
        return self.cash if self.t == 0 else self.value()


class NumpyActionIsHold(Coin):
    """Reads ``isinstance(action, int)``: a numpy integer (what SB3 and action_space.sample() pass) is HOLD."""

    def decode(self, action: Any) -> int:
        a = super().decode(action)
        return a if isinstance(action, int) else 0


class OnlyInt64IsAnAction(Coin):
    """Takes an action only as an int or an int64 (scalar or 0-d array), as code written against
    ``action_space.sample()`` does: any other integer dtype is HOLD."""

    def decode(self, action: Any) -> int:
        a = super().decode(action)
        return a if type(action) in (int, np.int64) or getattr(action, "dtype", None) == np.int64 else 0


class RefusesNumpyActions(Coin):
    """Refuses every action that is not a Python int (numpy integers and 0-d arrays included)."""

    def decode(self, action: Any) -> int:
        if type(action) is not int:
            raise TypeError(f"action must be an int, got {type(action).__name__}")
        return super().decode(action)

