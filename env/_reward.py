"""The reward shaper: named components, reported every step, summing to the reward.

The shaper is a pure function of an explicit :class:`ShaperState` (the episode's
history counters), so that the reward audit's exact oracle can search over it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from tradeguard.env._actions import Action
from tradeguard.env._components import Step, _Evaluator
from tradeguard.env._config import COMPONENT_NAMES, PPM, RewardConfig
from tradeguard.env._rules import Outcome, PortfolioState
from tradeguard.trace import total_reward

__all__ = ["COMPONENT_NAMES", "POTENTIAL_BASED", "RewardShaper", "ShaperState", "total_reward"]

_new_step = tuple.__new__  # builds a Step from its fields without the NamedTuple's Python-level __new__

POTENTIAL_BASED: dict[str, bool] = {
    "realized_pnl": False,
    "unrealized_pnl_change": True,
    "unrealized_pnl_level": False,
    "transaction_cost": False,
    "failed_action_penalty": False,
    "exploration_curriculum": False,
    "diversity_bonus": False,
}
"""Whether each component is potential-based shaping (Ng, Harada & Russell 1999):
``unrealized_pnl_change`` is ``Phi(s') - Phi(s)`` with ``Phi`` = unrealized PnL. The
others change what is optimal unless they are themselves the task's reward (PnL)."""


class ShaperState(NamedTuple):
    """History the history-dependent components need.

    Attributes:
        steps: Steps taken so far in the episode.
        curriculum_count: Steps so far whose *predicted* action is a curriculum action.
        seen: Bit ``a`` is set once action ``a`` has been predicted in the episode.
        custom: The history of each custom component, in ``custom_components`` order
            (``()`` without custom components).
    """

    steps: int
    curriculum_count: int
    seen: int
    custom: tuple[Any, ...] = ()


class RewardShaper:
    """Computes the reward components of one step from the transition's outcome.

    Args:
        config: The component weights.
        initial_cash: Starting cash in minor units; PnL components are in percent of it.

    Example:
        >>> from tradeguard.env import EnvConfig, Machine, initial_state
        >>> env_cfg, shaper = EnvConfig(), RewardShaper(RewardConfig(failed_action_penalty=-0.05), 10**6)
        >>> s = initial_state(env_cfg)
        >>> s2, out = Machine(env_cfg).step(s, Action.SELL_PARTIAL, 100)
        >>> comps, _ = shaper.shape(shaper.initial(), Action.SELL_PARTIAL, out, s, s2, 100, 100)
        >>> dict(zip(COMPONENT_NAMES, comps))["failed_action_penalty"]
        -0.05
    """

    __slots__ = ("_cash", "_curriculum_bits", "_custom", "_min_share_ppm", "_w", "config", "pnl_scale")

    def __init__(self, config: RewardConfig, initial_cash: int) -> None:
        self.config = config
        self.pnl_scale = 100.0 / initial_cash
        self._cash = initial_cash
        self._custom = _Evaluator(config.custom_components) if config.custom_components else None
        c = config
        self._w: tuple[float, float, float, float] = (
            c.realized_pnl * self.pnl_scale,
            c.unrealized_pnl_change * self.pnl_scale,
            c.unrealized_pnl_level * self.pnl_scale,
            -c.transaction_cost * self.pnl_scale,
        )
        bits = 0
        if c.curriculum_min_share > 0.0:
            for a in c.curriculum_actions:
                bits |= 1 << a
        self._curriculum_bits = bits
        self._min_share_ppm = c.curriculum_min_share_ppm

    @property
    def weights(self) -> tuple[float, float, float, float]:
        """Scaled weights per minor unit: realized PnL, unrealized change, unrealized
        level, and the (negated) transaction cost."""
        return self._w

    @property
    def curriculum_bits(self) -> int:
        """Bit ``a`` is set when action ``a`` counts for the curriculum (0: curriculum off)."""
        return self._curriculum_bits

    @property
    def component_names(self) -> tuple[str, ...]:
        """The names of the components :meth:`shape` returns, in order (custom ones last)."""
        return self.config.component_names

    def initial(self) -> ShaperState:
        """The shaper's state at the start of an episode."""
        if self._custom is not None:
            return ShaperState(0, 0, 0, self._custom.initial)
        return ShaperState(0, 0, 0)

    def shape(
        self,
        hist: ShaperState,
        predicted: Action,
        outcome: Outcome,
        before: PortfolioState,
        after: PortfolioState,
        price: int,
        next_price: int,
    ) -> tuple[tuple[float, ...], ShaperState]:
        """Components of one step (in :attr:`component_names` order) and the next shaper state."""
        c = self.config
        w_real, w_uchg, w_ulvl, w_cost = self._w
        u_before = before.position * price - before.cost_basis
        u_after = after.position * next_price - after.cost_basis
        bit = 1 << predicted
        steps = hist.steps + 1
        count = hist.curriculum_count + (1 if self._curriculum_bits & bit else 0)
        curriculum = 0.0
        # short of the required share, exactly: count / steps < min_share
        if self._curriculum_bits and count * PPM < self._min_share_ppm * steps:
            curriculum = c.curriculum_weight * c.curriculum_scale
        diversity = c.diversity_bonus if c.diversity_bonus and not hist.seen & bit else 0.0
        components = (
            outcome.realized * w_real,
            (u_after - u_before) * w_uchg,
            u_after * w_ulvl,
            outcome.fee * w_cost,
            c.failed_action_penalty if outcome.reason is not None else 0.0,
            curriculum,
            diversity,
        )
        if self._custom is not None:
            step = _new_step(Step, (hist.steps, predicted, outcome, before, after, price, next_price, self._cash))
            values, custom = self._custom.evaluate(step, hist.custom)
            return components + values, ShaperState(steps, count, hist.seen | bit, custom)
        return components, ShaperState(steps, count, hist.seen | bit)
