"""Differential test: ``TradingEnv`` against a reference model written independently of the table.

The reference below does not import the rule table, ``Machine`` or ``transition``: it
is the design's table written as plain if/else, with exact fractions for fees and
sizes and a binary search for order size, so that a wrong row, a wrong precedence or
a wrong rounding in the library shows up as a disagreement at some step.

Besides the step actually taken, an invariant asks the env's machine what each of the
seven actions *would* do in the current state and compares that too, so every state
reached checks the whole table, not one action. ``event()`` labels show the coverage
(``--hypothesis-show-statistics``). Checked against deliberately broken libraries
(reordered ADD_POSITION preconditions, SELL_ALL not disableable, fees rounded down,
no one-lot minimum on SELL_PARTIAL, ``>=`` for "profitable", cost basis rounded the
other way, penalty on every step, diversity by executed action, order size over budget):
each is caught.
"""

from __future__ import annotations

import copy
import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tradeguard.env import COMPONENT_NAMES, Action, EnvConfig, Market, RewardConfig, TradingEnv
from tradeguard.errors import EpisodeEnded

HOLD, BUY_SMALL, BUY_MEDIUM, BUY_LARGE, SELL_PARTIAL, SELL_ALL, ADD_POSITION = range(7)
BUYS = (BUY_SMALL, BUY_MEDIUM, BUY_LARGE)


class RefStep(NamedTuple):
    """What the reference says one step does."""

    executed: int
    reason: str | None
    quantity: int
    fee: int
    cash: int
    position: int
    components: dict[str, float]


class ReferenceAccount:
    """One long-only account, written from DESIGN.md's table without the library's rules."""

    def __init__(self, cfg: EnvConfig, rcfg: RewardConfig, prices: list[int]) -> None:
        self.initial_cash = cfg.cash
        self.cash = cfg.cash
        self.units = 0
        self.paid = 0  # what the open position cost, fees excluded
        self.lot = cfg.lot_size
        self.fee_rate = Fraction(str(cfg.fee_bps)) / 10_000
        self.size = {
            BUY_SMALL: Fraction(str(cfg.buy_small)),
            BUY_MEDIUM: Fraction(str(cfg.buy_medium)),
            BUY_LARGE: Fraction(str(cfg.buy_large)),
            SELL_PARTIAL: Fraction(str(cfg.sell_partial)),
            ADD_POSITION: Fraction(str(cfg.add_size)),
        }
        self.disabled = {int(a) for a in cfg.disabled_actions}
        self.rcfg = rcfg
        self.curriculum = {int(a) for a in rcfg.curriculum_actions}
        self.min_share = Fraction(str(rcfg.curriculum_min_share))
        self.prices = prices
        self.t = 0
        self.predicted_curriculum = 0
        self.predicted_before: set[int] = set()

    def copy(self) -> ReferenceAccount:
        """An independent copy, to ask what an action would do without doing it."""
        other = copy.copy(self)
        other.predicted_before = set(self.predicted_before)
        return other

    @property
    def done(self) -> bool:
        return self.t >= len(self.prices) - 1

    def fee(self, notional: int) -> int:
        return math.ceil(notional * self.fee_rate)

    def cost(self, units: int, price: int) -> int:
        return units * price + self.fee(units * price)

    def can_afford_a_lot(self, price: int) -> bool:
        return self.cash >= self.cost(self.lot, price)

    def reason(self, action: int, price: int) -> str | None:
        if action == HOLD:
            return None
        if action in self.disabled:
            return "DISABLED"
        if action in BUYS:
            if self.units > 0:
                return "ALREADY_IN_POSITION"
            if not self.can_afford_a_lot(price):
                return "INSUFFICIENT_CASH"
            return None
        if self.units == 0:
            return "NO_POSITION"
        if action == ADD_POSITION:
            if self.units * price <= self.paid:
                return "NOT_PROFITABLE"
            if not self.can_afford_a_lot(price):
                return "INSUFFICIENT_CASH"
        return None

    def mask(self) -> list[bool]:
        price = self.prices[min(self.t, len(self.prices) - 1)]
        return [self.reason(a, price) is None for a in range(7)]

    def units_to_buy(self, action: int, price: int) -> int:
        budget = math.floor(self.cash * self.size[action])
        lo, hi = 0, budget // (self.lot * price) + 1  # cost(lo lots) fits, cost(hi lots) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.cost(mid * self.lot, price) <= budget:
                lo = mid
            else:
                hi = mid
        return max(lo, 1) * self.lot

    def units_to_sell(self, action: int) -> int:
        if action == SELL_ALL:
            return self.units
        lots_held = self.units // self.lot
        lots = math.floor(lots_held * self.size[SELL_PARTIAL])
        return min(max(lots, 1), lots_held) * self.lot

    def step(self, predicted: int) -> RefStep:
        price, next_price = self.prices[self.t], self.prices[self.t + 1]
        unrealized_before = self.units * price - self.paid
        why = self.reason(predicted, price)
        executed = HOLD if why is not None else predicted
        quantity = fee = realized = 0
        if executed in BUYS or executed == ADD_POSITION:
            quantity = self.units_to_buy(executed, price)
            fee = self.fee(quantity * price)
            self.cash -= quantity * price + fee
            self.units += quantity
            self.paid += quantity * price
        elif executed in (SELL_PARTIAL, SELL_ALL):
            sold = self.units_to_sell(executed)
            cost_of_sold = self.paid if sold == self.units else self.paid * sold // self.units
            fee = self.fee(sold * price)
            realized = sold * price - cost_of_sold
            self.cash += sold * price - fee
            self.units -= sold
            self.paid -= cost_of_sold
            quantity = -sold
        unrealized_after = self.units * next_price - self.paid
        self.t += 1
        if predicted in self.curriculum:
            self.predicted_curriculum += 1
        r = self.rcfg
        pct = Fraction(100, self.initial_cash)
        short = self.min_share > 0 and self.predicted_curriculum < self.min_share * self.t
        components = {
            "realized_pnl": float(realized * pct * Fraction(r.realized_pnl)),
            "unrealized_pnl_change": float(
                (unrealized_after - unrealized_before) * pct * Fraction(r.unrealized_pnl_change)
            ),
            "unrealized_pnl_level": float(
                unrealized_after * pct * Fraction(r.unrealized_pnl_level)
            ),
            "transaction_cost": float(-fee * pct * Fraction(r.transaction_cost)),
            "failed_action_penalty": r.failed_action_penalty if why is not None else 0.0,
            "exploration_curriculum": r.curriculum_weight * r.curriculum_scale if short else 0.0,
            "diversity_bonus": r.diversity_bonus if predicted not in self.predicted_before else 0.0,
        }
        self.predicted_before.add(predicted)
        return RefStep(executed, why, quantity, fee, self.cash, self.units, components)


def _disabled(*flags: bool) -> tuple[Action, ...]:
    """Each non-HOLD action disabled with probability about 1/4, independently."""
    return tuple(a for a, off in zip(list(Action)[1:], flags, strict=True) if off)


FRACTIONS = st.sampled_from([0.1, 0.25, 0.333333, 0.5, 1.0])
env_configs = st.builds(
    EnvConfig,
    cash=st.sampled_from([500, 3_000, 20_000, 1_000_000]) | st.integers(1, 50_000),
    lot_size=st.sampled_from([1, 1, 2, 5]),
    fee_bps=st.sampled_from([0.0, 10.0, 50.5, 1000.0]),
    buy_small=FRACTIONS,
    buy_medium=FRACTIONS,
    buy_large=FRACTIONS,
    sell_partial=FRACTIONS,
    add_size=FRACTIONS,
    disabled_actions=st.builds(
        _disabled, *(st.sampled_from([False, False, False, True]) for _ in range(6))
    ),
    episode_length=st.integers(1, 16),
    window=st.integers(1, 3),
)
reward_configs = st.builds(
    RewardConfig,
    realized_pnl=st.sampled_from([1.0, 0.5, 0.0]),
    unrealized_pnl_change=st.sampled_from([1.0, 0.25, 0.0]),
    unrealized_pnl_level=st.sampled_from([0.0, 0.3]),
    transaction_cost=st.sampled_from([1.0, 2.0]),
    failed_action_penalty=st.sampled_from([-1.0, -0.05, 0.0]),
    curriculum_actions=st.sets(st.sampled_from(list(Action)), min_size=1, max_size=3).map(tuple),
    # Shares whose products with step counts are exact in binary floating point up to
    # 16 steps; the exact-boundary case is a unit test in test_rules.py.
    curriculum_min_share=st.sampled_from([0.0, 0.05, 0.25, 0.5]),
    curriculum_weight=st.sampled_from([-0.5, -2.0]),
    curriculum_scale=st.sampled_from([5.0, 1.0]),
    diversity_bonus=st.sampled_from([0.0, 0.5]),
)


@st.composite
def price_paths(draw: st.DrawFn, n: int) -> list[int]:
    """``n`` prices: independent, or a walk (so that positions gain and lose value)."""
    if draw(st.booleans()):
        price = st.integers(1, 3_000) | st.sampled_from([1, 2, 100])
        return draw(st.lists(price, min_size=n, max_size=n))
    prices = [draw(st.sampled_from([1, 40, 700, 2_500]) | st.integers(1, 3_000))]
    for _ in range(n - 1):
        move = draw(st.sampled_from([1.1, 1.0, 0.97, 1.03, 0.8, 1.5]))
        prices.append(max(1, round(prices[-1] * move)))
    return prices


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


class EnvAgainstReference(RuleBasedStateMachine):
    """Drive the env and the reference with the same actions and markets; compare every step."""

    env: TradingEnv
    ref: ReferenceAccount

    def _new_episode(self, data: st.DataObject) -> None:
        prices = data.draw(price_paths(self.env.config.episode_length + 1), label="prices")
        seed = data.draw(st.integers(0, 2**16), label="seed")
        self.env.reset(seed=seed, options={"market": Market(np.array(prices), 0.01, "ref")})
        assert self.env.prices == tuple(prices)
        self.ref = ReferenceAccount(self.env.config, self.env.reward_config, prices)

    @initialize(cfg=env_configs, rcfg=reward_configs, data=st.data())
    def build(self, cfg: EnvConfig, rcfg: RewardConfig, data: st.DataObject) -> None:
        self.env = TradingEnv(config=cfg, reward=rcfg)
        for action in cfg.disabled_actions:
            event(f"{action.name} disabled")
        self._new_episode(data)

    @rule(data=st.data())
    def reset_with_a_new_market(self, data: st.DataObject) -> None:
        self._new_episode(data)

    def _step(self, action: int, data: st.DataObject) -> None:
        if self.ref.done:
            # Stepping a finished episode is refused; then start the next one (auto-reset,
            # as a vectorized env would) so that no rule is wasted.
            with pytest.raises(EpisodeEnded, match=r"call reset\(\)"):
                self.env.step(action)
            self._new_episode(data)
        before = (self.ref.units, self.ref.paid)
        _, reward, terminated, truncated, info = self.env.step(action)
        rec = info["record"]
        want = self.ref.step(action)
        event(f"{Action(action).name}: {want.reason or 'executed'}")
        if want.executed == SELL_PARTIAL and want.position > 0:
            units, paid = before
            event(
                "partial sell with a remainder of cost"
                if paid * -rec.quantity % units
                else "partial sell, even cost"
            )
        where = f"step {rec.t}, predicted {Action(action).name}, price {rec.price}"
        assert rec.predicted == action, where
        assert rec.executed == want.executed, where
        assert rec.reason == want.reason, where
        assert rec.rejected == (want.reason is not None), where
        assert (rec.quantity, rec.fee) == (want.quantity, want.fee), where
        assert (rec.cash_after, rec.position_after) == (want.cash, want.position), where
        got = dict(zip(COMPONENT_NAMES, rec.components, strict=True))
        expected = want.components
        assert set(got) == set(expected)
        for name, value in expected.items():
            assert _same(got[name], value), (where, name, got[name], value)
        assert _same(float(reward), math.fsum(expected.values())), where
        assert terminated == self.ref.done and truncated is False, where

    @rule(data=st.data())
    def hold(self, data: st.DataObject) -> None:
        self._step(HOLD, data)

    @rule(data=st.data())
    def buy_small(self, data: st.DataObject) -> None:
        self._step(BUY_SMALL, data)

    @rule(data=st.data())
    def buy_medium(self, data: st.DataObject) -> None:
        self._step(BUY_MEDIUM, data)

    @rule(data=st.data())
    def buy_large(self, data: st.DataObject) -> None:
        self._step(BUY_LARGE, data)

    @rule(data=st.data())
    def sell_partial(self, data: st.DataObject) -> None:
        self._step(SELL_PARTIAL, data)

    @rule(data=st.data())
    def sell_all(self, data: st.DataObject) -> None:
        self._step(SELL_ALL, data)

    @rule(data=st.data())
    def add_position(self, data: st.DataObject) -> None:
        self._step(ADD_POSITION, data)

    @invariant()
    def every_action_would_do_the_same_here(self) -> None:
        """What each of the seven actions would do now: the env's machine against the reference."""
        if self.ref.done:
            return
        price = self.ref.prices[self.ref.t]
        state = self.env.state
        reasons, _ = self.env.machine.verdicts(state, price)
        for action in range(7):
            what_if = self.ref.copy()
            want = what_if.step(action)
            after, outcome = self.env.machine.step(state, Action(action), price)
            where = f"at t={self.ref.t}, price {price}, state {state}: {Action(action).name}"
            # RejectReason is a StrEnum: it equals the reference's plain string.
            assert reasons[action] == want.reason, where
            assert outcome.reason == want.reason, where
            assert (outcome.executed, outcome.quantity, outcome.fee) == (
                want.executed,
                want.quantity,
                want.fee,
            ), where
            assert tuple(after) == (what_if.cash, what_if.units, what_if.paid), where

    @invariant()
    def same_account_and_mask(self) -> None:
        state = self.env.state
        assert (state.cash, state.position, state.cost_basis) == (
            self.ref.cash,
            self.ref.units,
            self.ref.paid,
        )
        assert self.env.action_masks().tolist() == self.ref.mask()
        assert len(self.env.trace) == self.ref.t


# No "explain" phase: on a failure it replays the machine thousands of times (minutes)
# to annotate the report; the shrunk sequence of rules is the useful part.
EnvAgainstReference.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
TestEnvAgainstReference = EnvAgainstReference.TestCase
