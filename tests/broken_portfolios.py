"""``tradeguard/Portfolio-v0`` broken on purpose, one mechanism each, and the healthy configurations.

Each broken variant changes one rule of the env's own logic (a method of
``PortfolioMachine`` or ``PortfolioEnv``), never the record: the record is what the broken
logic really did. tests/test_portfolio.py proves each is caught by the right invariant with
a counterexample of at most 10 steps, and that every healthy configuration passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from tradeguard.env import (
    PortfolioConfig,
    PortfolioEnv,
    PortfolioMachine,
    PortfolioOutcome,
    portfolio_scenario,
)

LONG = replace(portfolio_scenario("long-only"), episode_length=12)
SHORT = replace(portfolio_scenario("long-short"), episode_length=12, position_limit=50)
CLIP = replace(portfolio_scenario("clip"), episode_length=12)
HEALTHY: dict[str, PortfolioConfig] = {"long-only": LONG, "long-short": SHORT, "clip": CLIP}


def with_machine(machine: type[PortfolioMachine], config: PortfolioConfig) -> Callable[[], PortfolioEnv]:
    """A factory of PortfolioEnv whose rules are ``machine``'s."""

    class Env(PortfolioEnv):
        def _machine(self) -> PortfolioMachine:
            return machine(self.config)

    Env.__name__ = Env.__qualname__ = machine.__name__

    def make() -> PortfolioEnv:
        return Env(config)

    make.__qualname__ = machine.__name__
    return make


def with_env(env: type[PortfolioEnv], config: PortfolioConfig) -> Callable[[], PortfolioEnv]:
    def make() -> PortfolioEnv:
        return env(config)

    make.__qualname__ = env.__name__
    return make


# --------------------------------------------------------------------------- broken rules
class OverFills(PortfolioMachine):
    """A buy fills one unit more than was ordered."""

    def fill(self, units: int) -> int:
        return units + 1 if units > 0 else units


class FlipsSells(PortfolioMachine):
    """A sell order executes as a buy of the same size (the sign of the order is lost)."""

    def fill(self, units: int) -> int:
        return abs(units)


class SkipsTheGrossScaling(PortfolioMachine):
    """The fills work towards the raw weights: the declared scaling to max_gross is skipped."""

    def execution_targets(self, wanted: list[int], weights: list[float], equity: int,
                          prices: tuple[int, ...]) -> list[int]:
        return self.targets(weights, equity, prices)


class LeaksCashOnSells(PortfolioMachine):
    """A sell credits 99.9% of its proceeds: a hidden spread, in no fee and no record."""

    def proceeds(self, units: int, price: int) -> int:
        return -units * price * 999 // 1000


class ChargesFeesTwice(PortfolioMachine):
    """Every fee is twice the schedule's (cash, the recorded fee and the reward agree)."""

    def fee(self, notional: int) -> int:
        return 2 * super().fee(notional)


class FeesOnIdleLegs(PortfolioMachine):
    """When any leg trades, every leg pays a one-cent ticket fee, traded or not."""

    def rebalance(self, cash: int, positions: tuple[int, ...], weights: list[float],
                  prices: tuple[int, ...]) -> PortfolioOutcome:
        out = super().rebalance(cash, positions, weights, prices)
        if not any(out.executed):
            return out
        fees = tuple(f if q else 1 for f, q in zip(out.fees, out.executed, strict=True))
        return out._replace(fees=fees, cash=out.cash - (sum(fees) - sum(out.fees)))


class FloorsByCeilMinusOne(PortfolioMachine):
    """Targets are floored as ceil(x) - 1, which is one short on whole numbers: a weight of 0
    sells one unit more than is held."""

    def targets(self, weights: list[float], equity: int, prices: tuple[int, ...]) -> list[int]:
        scale = 1.0 + self.ppm / 1_000_000
        return [math.ceil(w * equity / (p * scale)) - 1 for w, p in zip(weights, prices, strict=True)]


class IgnoresTheLimit(PortfolioMachine):
    """The position limit is declared but never applied."""

    def limit(self, target: int) -> tuple[int, str | None]:
        return target, None


class CutsWithoutAReason(PortfolioMachine):
    """A buy cut to the cash left says nothing about it."""

    def rebalance(self, cash: int, positions: tuple[int, ...], weights: list[float],
                  prices: tuple[int, ...]) -> PortfolioOutcome:
        out = super().rebalance(cash, positions, weights, prices)
        return out._replace(reasons=tuple(None if r == "INSUFFICIENT_CASH" else r for r in out.reasons))


# --------------------------------------------------------------------------- broken env
class TakesNaNAsCash(PortfolioEnv):
    """NaN weights are sanitized to 0 (all cash) instead of refused."""

    def weights(self, action: Any) -> list[float]:
        if isinstance(action, np.ndarray) and action.dtype.kind == "f":
            action = np.nan_to_num(action, nan=0.0)
        return super().weights(action)


class ClipsPastTheTopToTheBottom(PortfolioEnv):
    """Declares out_of_space='clip', but a weight past the upper bound becomes the lower bound."""

    def weights(self, action: Any) -> list[float]:
        if isinstance(action, (np.ndarray, list)) and np.asarray(action).dtype.kind in "if":
            arr = np.asarray(action, dtype=np.float64)
            action = np.where(arr > self.action_space.high, self.action_space.low, arr)
        return super().weights(action)


class MarksAtTheExecutionPrice(PortfolioEnv):
    """Equity after the step is marked at the price the step traded at, not the next one."""

    def mark(self, cash: int, positions: tuple[int, ...], price: tuple[int, ...], next_price: tuple[int, ...]) -> int:
        return cash + sum(q * p for q, p in zip(positions, price, strict=True))
