"""The transition rules as data, and the pure transition function built on them.

:data:`RULES` is the single source of truth: :func:`transition` executes it,
:meth:`Machine.mask` derives the action mask from it, and ``tradeguard rules``
prints it. Nothing else encodes when an action is valid.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import NamedTuple

from tradeguard.env._actions import Action, RejectReason
from tradeguard.env._config import PPM, EnvConfig

__all__ = [
    "RULES",
    "Condition",
    "Effect",
    "Machine",
    "Outcome",
    "PortfolioState",
    "Rule",
    "format_rules",
    "initial_state",
    "transition",
]


class Condition(enum.Enum):
    """A precondition of an action, and the reason it is rejected when the condition fails."""

    ENABLED = ("not disabled by the configuration", RejectReason.DISABLED)
    FLAT = ("no open position", RejectReason.ALREADY_IN_POSITION)
    IN_POSITION = ("an open position (position > 0)", RejectReason.NO_POSITION)
    PROFITABLE = ("price above the average entry price", RejectReason.NOT_PROFITABLE)
    AFFORDABLE = ("cash covers at least one lot plus the fee", RejectReason.INSUFFICIENT_CASH)

    def __init__(self, text: str, reason: RejectReason) -> None:
        self.text = text
        self.reason = reason


class Effect(enum.Enum):
    """What an executed action does to the portfolio."""

    NOTHING = "nothing"
    OPEN = "buy the configured fraction of cash (at least one lot)"
    REDUCE = "sell the configured fraction of the position (at least one lot)"
    CLOSE = "sell the whole position"
    ADD = "buy more: the configured fraction of cash (at least one lot)"


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the transition table: an action, its preconditions in check order, its effect."""

    action: Action
    requires: tuple[Condition, ...]
    effect: Effect


_C = Condition
_NOTHING, _OPEN, _REDUCE, _CLOSE, _ADD = Effect  # plain names: no enum look-up on the hot path
_FLAT_BIT = 4
_CONDITION_BITS = {Condition.FLAT: _FLAT_BIT, Condition.PROFITABLE: 2, Condition.AFFORDABLE: 1}
"""Each state condition's bit in :meth:`Machine.signature`."""
RULES: tuple[Rule, ...] = (
    Rule(Action.HOLD, (), Effect.NOTHING),
    Rule(Action.BUY_SMALL, (_C.ENABLED, _C.FLAT, _C.AFFORDABLE), Effect.OPEN),
    Rule(Action.BUY_MEDIUM, (_C.ENABLED, _C.FLAT, _C.AFFORDABLE), Effect.OPEN),
    Rule(Action.BUY_LARGE, (_C.ENABLED, _C.FLAT, _C.AFFORDABLE), Effect.OPEN),
    Rule(Action.SELL_PARTIAL, (_C.ENABLED, _C.IN_POSITION), Effect.REDUCE),
    Rule(Action.SELL_ALL, (_C.ENABLED, _C.IN_POSITION), Effect.CLOSE),
    Rule(
        Action.ADD_POSITION,
        (_C.ENABLED, _C.IN_POSITION, _C.PROFITABLE, _C.AFFORDABLE),
        Effect.ADD,
    ),
)
"""The transition table, indexed by action id. Conditions are checked in order; the
first that fails names the rejection reason."""


class PortfolioState(NamedTuple):
    """The account between steps: integers, so every identity holds exactly.

    Attributes:
        cash: Cash in minor units.
        position: Units held (a multiple of the lot size; long only).
        cost_basis: What the open position cost, in minor units, fees excluded;
            ``position * price - cost_basis`` is the unrealized PnL.
    """

    cash: int
    position: int
    cost_basis: int


class Outcome(NamedTuple):
    """What one transition did.

    Attributes:
        executed: The action that executed: the predicted one, or HOLD if rejected.
        reason: Why the predicted action was rejected, or ``None``.
        quantity: Units traded, positive for buys, negative for sells.
        fee: Fee paid in minor units.
        realized: PnL realized by a sell, in minor units (fees excluded).
    """

    executed: Action
    reason: RejectReason | None
    quantity: int
    fee: int
    realized: int


def initial_state(config: EnvConfig) -> PortfolioState:
    """The flat account a config starts with."""
    return PortfolioState(config.cash, 0, 0)


class Machine:
    """The rule table compiled for one :class:`EnvConfig`: execution and mask from the same rows.

    Example:
        >>> m = Machine(EnvConfig())
        >>> s = initial_state(m.config)
        >>> s2, out = m.step(s, Action.SELL_ALL, 10_000)
        >>> out.executed.name, out.reason.value, s2 == s
        ('HOLD', 'NO_POSITION', True)
    """

    __slots__ = ("_disabled", "_effects", "_fee_ppm", "_hold", "_lot", "_rejected", "_size_ppm", "_table", "config")

    def __init__(self, config: EnvConfig) -> None:
        self.config = config
        self._lot = config.lot_size
        self._fee_ppm = config.fee_ppm
        self._size_ppm = tuple(config.size_ppm(a) for a in Action)
        self._disabled = frozenset(config.disabled_actions)
        self._hold = Outcome(Action.HOLD, None, 0, 0, 0)
        self._rejected = {reason: Outcome(Action.HOLD, reason, 0, 0, 0) for reason in RejectReason}
        self._effects = tuple(rule.effect for rule in RULES)
        self._table = self._compile()

    def fee(self, notional: int) -> int:
        """Fee on ``notional`` minor units, rounded up to the next minor unit."""
        return -(-notional * self._fee_ppm // PPM)

    def buy_quantity(self, state: PortfolioState, action: Action, price: int) -> int:
        """Units an OPEN or ADD would buy: the sized budget, at least one lot (may be unaffordable)."""
        lot_cost = self._lot * price
        budget = state.cash * self._size_ppm[action] // PPM
        lots = budget * PPM // (lot_cost * (PPM + self._fee_ppm))
        while lots > 0 and lots * lot_cost + self.fee(lots * lot_cost) > budget:
            lots -= 1
        return max(lots, 1) * self._lot

    def sell_quantity(self, state: PortfolioState, action: Action) -> int:
        """Units a REDUCE or CLOSE would sell."""
        if self._effects[action] is _CLOSE:
            return state.position
        held_lots = state.position // self._lot
        lots = min(max(held_lots * self._size_ppm[action] // PPM, 1), held_lots)
        return lots * self._lot

    def holds(self, condition: Condition, state: PortfolioState, action: Action, price: int) -> bool:
        """Whether ``condition`` holds for ``action`` in ``state`` at ``price``.

        The state conditions are read from :meth:`signature`, the one place they are defined:
        the compiled table the env steps with (:meth:`verdicts`) and :meth:`check` agree by
        construction."""
        if condition is Condition.ENABLED:
            return action not in self._disabled
        sig = self.signature(state, price)
        if condition is Condition.IN_POSITION:
            return not sig & _FLAT_BIT
        return bool(sig & _CONDITION_BITS[condition])

    def check(self, state: PortfolioState, action: Action, price: int) -> RejectReason | None:
        """The reason ``action`` would be rejected, or ``None`` if it would execute."""
        for condition in RULES[action].requires:
            if not self.holds(condition, state, action, price):
                return condition.reason
        return None

    def signature(self, state: PortfolioState, price: int) -> int:
        """The truth of the state conditions as bits: FLAT=4, PROFITABLE=2, AFFORDABLE=1.

        FLAT: no position. PROFITABLE: the position is worth more than it cost. AFFORDABLE:
        the cash buys one lot and its fee; any larger sized order costs at most its budget,
        which is at most the cash, so one lot is the binding case."""
        lot_cost = self._lot * price
        affordable = state.cash >= lot_cost + -(-lot_cost * self._fee_ppm // PPM)
        if state.position == 0:
            return 4 | affordable
        return (state.position * price > state.cost_basis) << 1 | affordable

    def verdicts(
        self, state: PortfolioState, price: int
    ) -> tuple[tuple[RejectReason | None, ...], tuple[bool, ...]]:
        """Every action's rejection reason (``None``: executes) and the action mask, at once.

        Both come from :data:`RULES` evaluated once per combination of condition
        truths; this is :meth:`check` for all actions, at the cost of a table look-up.
        """
        return self._table[self.signature(state, price)]

    @property
    def table(self) -> tuple[tuple[tuple[RejectReason | None, ...], tuple[bool, ...]], ...]:
        """:data:`RULES` compiled for this config: entry ``sig`` (see :meth:`signature`) holds
        every action's rejection reason and the mask. Vectorized engines index it by signature."""
        return self._table

    def mask(self, state: PortfolioState, price: int) -> tuple[bool, ...]:
        """Valid actions at ``price``: ``mask[a]`` is True exactly when ``a`` would execute."""
        return self._table[self.signature(state, price)][1]

    def _compile(self) -> tuple[tuple[tuple[RejectReason | None, ...], tuple[bool, ...]], ...]:
        return _compile_table(self._disabled)


    def step(
        self, state: PortfolioState, action: Action, price: int
    ) -> tuple[PortfolioState, Outcome]:
        """Apply ``action`` at ``price``: the pure transition of the state machine."""
        return self.apply(state, action, price, self.check(state, action, price))

    def apply(
        self, state: PortfolioState, action: Action, price: int, reason: RejectReason | None
    ) -> tuple[PortfolioState, Outcome]:
        """Execute ``action`` whose verdict is ``reason`` (from :meth:`check` or :meth:`verdicts`)."""
        if reason is not None:
            return state, self._rejected[reason]
        effect = self._effects[action]
        if effect is _NOTHING:
            return state, self._hold
        cash, position, basis = state
        if effect is _OPEN or effect is _ADD:
            units = self.buy_quantity(state, action, price)
            notional = units * price
            fee = self.fee(notional)
            return (
                PortfolioState(cash - notional - fee, position + units, basis + notional),
                Outcome(action, None, units, fee, 0),
            )
        units = self.sell_quantity(state, action)
        notional = units * price
        fee = self.fee(notional)
        removed = basis if units == position else basis * units // position
        return (
            PortfolioState(cash + notional - fee, position - units, basis - removed),
            Outcome(action, None, -units, fee, notional - removed),
        )


@functools.lru_cache(maxsize=256)
def _compile_table(
    disabled: frozenset[Action],
) -> tuple[tuple[tuple[RejectReason | None, ...], tuple[bool, ...]], ...]:
    """:data:`RULES` evaluated for every combination of condition truths (see ``Machine.table``)."""
    table = []
    for sig in range(8):
        truth = {
            Condition.FLAT: bool(sig & 4),
            Condition.IN_POSITION: not sig & 4,
            Condition.PROFITABLE: bool(sig & 2),
            Condition.AFFORDABLE: bool(sig & 1),
        }
        verdicts: list[RejectReason | None] = []
        for rule in RULES:
            reason = None
            for condition in rule.requires:
                ok = (
                    rule.action not in disabled
                    if condition is Condition.ENABLED
                    else truth[condition]
                )
                if not ok:
                    reason = condition.reason
                    break
            verdicts.append(reason)
        table.append((tuple(verdicts), tuple(v is None for v in verdicts)))
    return tuple(table)


@functools.lru_cache(maxsize=64)
def _machine(config: EnvConfig) -> Machine:
    return Machine(config)


def transition(
    state: PortfolioState, action: Action, price: int, config: EnvConfig
) -> tuple[PortfolioState, Outcome]:
    """The pure transition function: ``(state, action, price, config) -> (next state, outcome)``.

    An invalid action is rejected: the state is unchanged, HOLD executes, and the
    outcome names the reason.

    Example:
        >>> cfg = EnvConfig(cash=100_000)
        >>> s, out = transition(initial_state(cfg), Action.BUY_SMALL, 1_000, cfg)
        >>> (s.position, s.cash, out.fee)
        (9, 90991, 9)
    """
    return _machine(config).step(state, action, price)


def format_rules(config: EnvConfig | None = None) -> str:
    """The transition table as text (what ``tradeguard rules`` prints)."""
    config = config or EnvConfig()
    disabled = ", ".join(a.name for a in config.disabled_actions) or "none"
    lines = [
        "tradeguard transition rules",
        "An action whose conditions fail is rejected: HOLD executes instead, the reason is",
        "recorded, and the failed-action penalty applies. Conditions are checked in order;",
        "the first that fails names the reason. The action mask is this table, evaluated.",
        f"(disabled by this configuration: {disabled}; fee {config.fee_bps:g} bps of notional,"
        f" lot {config.lot_size} unit(s))",
        "",
    ]
    for rule in RULES:
        size = config.size_ppm(rule.action) / PPM
        effect = rule.effect.value
        if size and rule.effect is not Effect.CLOSE:
            effect = effect.replace("the configured fraction", f"{size:.0%}")
        lines.append(f"{rule.action.value}  {rule.action.name}")
        conds = "; ".join(c.text for c in rule.requires) or "always"
        lines.append(f"     valid when  {conds}")
        lines.append(f"     effect      {effect}")
        if rule.requires:
            lines.append(f"     rejected    {' | '.join(c.reason.value for c in rule.requires)}")
    return "\n".join(lines)
