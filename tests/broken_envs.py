"""Deliberately broken trading envs, machines and reward shapers, shared by the proof tests.

Each is a real bug in a real place (a wrong row of the rule table, the accounting,
the reward shaper, the env contract), not a tampered record.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tradeguard.env import (
    RULES,
    Action,
    Condition,
    EnvConfig,
    Machine,
    Outcome,
    PortfolioState,
    RejectReason,
    RewardConfig,
    RewardShaper,
    TradingEnv,
)

CONFIG = EnvConfig(episode_length=12)


# --------------------------------------------------------------------------- broken machines
class IgnoringMachine(Machine):
    """The rule table with one condition of one action skipped: a wrong row."""

    def __init__(self, config: EnvConfig, action: Action, condition: Condition) -> None:
        self.ignore = (action, condition)
        super().__init__(config)

    def _compile(self) -> Any:
        table = []
        for sig, (verdicts, _) in enumerate(super()._compile()):
            truth = {
                Condition.ENABLED: self.ignore[0] not in self.config.disabled_actions,
                Condition.FLAT: bool(sig & 4),
                Condition.IN_POSITION: not sig & 4,
                Condition.PROFITABLE: bool(sig & 2),
                Condition.AFFORDABLE: bool(sig & 1),
            }
            action, skipped = self.ignore
            reason = next(
                (c.reason for c in RULES[action].requires if c is not skipped and not truth[c]), None
            )
            patched = list(verdicts)
            patched[action] = reason
            table.append((tuple(patched), tuple(v is None for v in patched)))
        return tuple(table)


class MisreadsPosition(Machine):
    """The table reads IN_POSITION from two bits of the signature (FLAT's and AFFORDABLE's): holding a
    position with cash enough for another lot, a sell is refused as NO_POSITION (mask and execution agree)."""

    def _compile(self) -> Any:
        table = []
        for sig in range(8):
            truth = {
                Condition.ENABLED: True,
                Condition.FLAT: bool(sig & 4),
                Condition.IN_POSITION: not sig & 5,
                Condition.PROFITABLE: bool(sig & 2),
                Condition.AFFORDABLE: bool(sig & 1),
            }
            verdicts = []
            for rule in RULES:
                ok = [c for c in rule.requires if not (rule.action not in self._disabled if c is Condition.ENABLED
                                                       else truth[c])]
                verdicts.append(ok[0].reason if ok else None)
            table.append((tuple(verdicts), tuple(v is None for v in verdicts)))
        return tuple(table)


class FeeTwiceMachine(Machine):
    def apply(self, state: PortfolioState, action: Action, price: int, reason: RejectReason | None) -> Any:
        after, out = super().apply(state, action, price, reason)
        return after._replace(cash=after.cash - out.fee), out


class FeeOnHoldMachine(Machine):
    def apply(self, state: PortfolioState, action: Action, price: int, reason: RejectReason | None) -> Any:
        after, out = super().apply(state, action, price, reason)
        if out.executed == Action.HOLD and after.cash > 0:
            return after._replace(cash=after.cash - 1), out._replace(fee=1)
        return after, out


class WrongActionMachine(Machine):
    """BUY_SMALL executes as BUY_LARGE."""

    def apply(self, state: PortfolioState, action: Action, price: int, reason: RejectReason | None) -> Any:
        if action == Action.BUY_SMALL and reason is None:
            after, out = super().apply(state, Action.BUY_LARGE, price, reason)
            return after, out
        return super().apply(state, action, price, reason)


class OverspendMachine(Machine):
    """Buys twice the cash: no affordability check on the sized order."""

    def buy_quantity(self, state: PortfolioState, action: Action, price: int) -> int:
        return 2 * (state.cash // price + 1)


class CrashingMachine(Machine):
    def apply(self, state: PortfolioState, action: Action, price: int, reason: RejectReason | None) -> Any:
        if action == Action.SELL_ALL and reason is None:
            raise ZeroDivisionError("division by zero in the close-out of a position")
        return super().apply(state, action, price, reason)


def env_with(machine: Callable[[EnvConfig], Machine], config: EnvConfig = CONFIG, **kw: Any) -> Callable[[], TradingEnv]:
    def make() -> TradingEnv:
        env = TradingEnv(config=config, **kw)
        env.machine = machine(config)
        return env

    return make


# --------------------------------------------------------------------------- broken shapers
class NoPenaltyShaper(RewardShaper):
    def shape(self, *args: Any) -> Any:
        comps, hist = super().shape(*args)
        return (*comps[:4], 0.0, *comps[5:]), hist


class DoublePenaltyShaper(RewardShaper):
    def shape(self, *args: Any) -> Any:
        comps, hist = super().shape(*args)
        return (*comps[:4], 2 * comps[4], *comps[5:]), hist


class NanShaper(RewardShaper):
    """Unrealized PnL per unit: 0/0 when flat."""

    def shape(self, hist: Any, predicted: Any, outcome: Outcome, before: PortfolioState, after: PortfolioState, price: int, next_price: int) -> Any:
        comps, hist = super().shape(hist, predicted, outcome, before, after, price, next_price)
        level = math.nan if after.position == 0 and outcome.reason is not None else comps[2]
        return (*comps[:2], level, *comps[3:]), hist


class DoubleCountShaper(RewardShaper):
    """Counts unrealized PnL change twice, while the config still says the reward is PnL."""

    def shape(self, *args: Any) -> Any:
        comps, hist = super().shape(*args)
        return (comps[0], 2 * comps[1], *comps[2:]), hist


def env_with_shaper(shaper: type[RewardShaper], reward: RewardConfig | None = None) -> Callable[[], TradingEnv]:
    def make() -> TradingEnv:
        env = TradingEnv(config=CONFIG, reward=reward)
        env.shaper = shaper(env.reward_config, CONFIG.cash)
        return env

    return make


# --------------------------------------------------------------------------- broken env contract
class NonDeterministicReset(TradingEnv):
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        _, info = super().reset(seed=seed, options=options)
        jitter = np.random.default_rng(time.perf_counter_ns()).integers(1, 50, size=len(self._prices))
        self._prices = [p + int(j) for p, j in zip(self._prices, jitter, strict=True)]
        return self._observation(), info


class AliasedObservation(TradingEnv):
    def _observation(self) -> Any:
        fresh = super()._observation()
        buf = self.__dict__.setdefault("_buf", np.empty_like(fresh))
        buf[:] = fresh
        return buf


class MaskOffByOne(TradingEnv):
    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        inner = self.machine

        class Shifted(Machine):
            def verdicts(self, state: PortfolioState, price: int) -> Any:
                reasons, mask = inner.verdicts(state, price)
                return reasons, (True, *mask[2:], mask[1])

        self.machine = Shifted(self.config)


class IgnoresBadActions(TradingEnv):
    def step(self, action: Any) -> Any:
        if isinstance(action, (bool, float)) or action is None or not 0 <= int(action) < 7:
            action = 0
        return super().step(action)


class OutOfSpace(TradingEnv):
    def _observation(self) -> Any:
        obs = super()._observation()
        if self._state.position:
            obs[-3] = 100.0  # exposure "in percent"
        return obs


class TradesPastTheEnd(TradingEnv):
    def step(self, action: Any) -> Any:
        if self._done and self._started:
            return self._observation(), 0.0, True, False, {"record": self._records[-1]}
        return super().step(action)


class ExtraReward(TradingEnv):
    """Pays a bonus on rejected steps outside the components."""

    def step(self, action: Any) -> Any:
        obs, _, terminated, truncated, info = super().step(action)
        rec = info["record"]
        if rec.rejected:
            rec = rec._replace(reward=rec.reward + 0.5)
            self._records[-1] = rec
            info = {"record": rec}
        return obs, rec.reward, terminated, truncated, info


class MarksAtTheWrongPrice(TradingEnv):
    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = super().step(action)
        rec = info["record"]
        if rec.position_after and rec.price != rec.next_price:
            rec = rec._replace(equity_after=rec.cash_after + rec.position_after * rec.price)
            self._records[-1] = rec
            info = {"record": rec}
        return obs, reward, terminated, truncated, info


class StartsWithCostBasis(TradingEnv):
    """Reset builds the flat account with a cost basis of one minor unit (nothing held, 0.01 paid)."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        out = super().reset(seed=seed, options=options)
        self._state = self._state._replace(cost_basis=1)
        return out


def make(cls: type[TradingEnv], **kw: Any) -> Callable[[], TradingEnv]:
    return lambda: cls(config=CONFIG, **kw)


