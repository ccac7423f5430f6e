"""The trace: the one language between an env and the invariants.

An env (ours, or another one through an adapter) writes one :class:`StepRecord`
per step; a :class:`Trace` is an episode of them plus a :class:`TraceMeta` header
that says what the actions mean and how exact the numbers are. Invariants and
metrics read traces only, never env internals, which is what makes them pluggable
into any trading env.

Numbers are kept as the env keeps them. tradeguard's own env keeps money as integers
in *minor units* (cents) and positions in whole *units*, and declares
:attr:`Precision.exact`: its accounting identities hold with ``==``. An env that keeps
money in floats, holds fractional or short positions, declares
:meth:`Precision.float64` (with the rounding of money it applies, e.g. to cents), and
every accounting invariant then compares within a tolerance derived from that
declaration and from the magnitudes of the terms it adds: a healthy float ledger
never fails, and a one-cent error on a 10,000.00 account still does.

Timing of step ``t``: the action executes at ``price`` (the market's price at
``t``); the portfolio is then marked to ``next_price`` (the price at ``t + 1``).
So ``equity_before = cash_before + position_before * price`` and
``equity_after = cash_after + position_after * next_price``.

Several instruments: a record's :attr:`StepRecord.legs` holds one :class:`Leg` per
instrument (price, position, requested and executed quantity, fee) around one cash
account; ``TraceMeta.instruments`` names them. A single-instrument env leaves ``legs``
as ``None`` and fills the scalar fields, exactly as before.
"""

from __future__ import annotations

import decimal
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, overload

__all__ = [
    "ACTION_KINDS",
    "BUY_KINDS",
    "CORE_FIELDS",
    "CRASH_ERRORS",
    "EXACT",
    "METRIC_ALIASES",
    "ActionKind",
    "EpisodeMetrics",
    "FeeSchedule",
    "FinancingSchedule",
    "Leg",
    "Number",
    "OutOfSpace",
    "Precision",
    "StepRecord",
    "Trace",
    "TraceMeta",
    "action_entropy",
    "compute_metrics",
    "metric_names",
    "total_reward",
    "unit_decimals",
]

ActionKind = Literal["hold", "open", "reduce", "close", "add", "buy", "rebalance"]
"""What an action does to a position, which is what the rule invariants judge it by:

- ``hold``: nothing; the action a rejected one becomes.
- ``open``: buys only from flat (a buy while holding is refused, or is another action):
  ``no-buy-while-in-position`` holds it to that.
- ``add``: buys more of a position already held; tradeguard's ADD_POSITION also needs it
  profitable (``no-add-without-profitable-position``, where cost bases are supplied).
- ``buy``: buys whatever is held, flat or not (``BUY 10 shares`` that opens or adds).
- ``reduce``: sells part (or all) of what is held; ``close``: sells all of it.
- ``rebalance``: trades any instruments towards a target (what it did is in the record's legs).

An unrejected ``open``, ``add`` or ``buy`` grows the position, a ``reduce`` shrinks it, a
``close`` flattens it (``allowed-actions-execute``)."""

ACTION_KINDS: tuple[ActionKind, ...] = ("hold", "open", "reduce", "close", "add", "buy", "rebalance")

BUY_KINDS: frozenset[ActionKind] = frozenset({"open", "add", "buy"})
"""The kinds that buy: an unrejected one grows the position."""

OutOfSpace = Literal["refuse", "clip"]
"""What an env does with an action its action space does not contain: raise, or clip it into
the space (values past a bound become the bound); either way it never executes garbage."""

Number = int | float
"""An amount as the env keeps it: an ``int`` (exact) or a ``float``."""


class Leg(NamedTuple):
    """One instrument's part of a step, in a multi-instrument record.

    Quantities are signed: positive buys, negative sells; a short position is negative.
    ``requested`` is the quantity the action asked for (``None`` when the adapter cannot
    tell); ``quantity`` is what executed. ``fee`` is what this leg's trade cost.
    """

    price: Number
    next_price: Number
    position_before: Number
    position_after: Number
    quantity: Number
    fee: Number = 0
    requested: Number | None = None


class StepRecord(NamedTuple):
    """What happened at one step, as a ledger line.

    Money fields are numbers as the env keeps them (integers in minor units for an exact
    ledger); positions in units, signed (short is negative). ``reason`` is the rejection
    reason (for example ``"NO_POSITION"``) or ``None`` when the predicted action
    executed. ``components`` are the reward components in the order of
    :attr:`TraceMeta.component_names`; ``reward`` is what the env returned (tradeguard's envs return
    :func:`total_reward` of the components). ``mask`` is
    the action mask the agent saw before acting, or ``None`` when the env has none.
    ``cost_basis_before`` is what the open position cost (fees excluded) before the step:
    ``position * price - cost_basis`` is the unrealized PnL, and ADD_POSITION's
    "profitable" means it is positive.

    The last three fields are optional ledger lines (leave them out of
    ``TraceMeta.supplies`` when the env has no such thing):

    - ``legs``: one :class:`Leg` per instrument, for an env that trades several (the
      scalar ``price``, ``next_price``, ``position_*``, ``quantity`` and
      ``cost_basis_before`` are then unused; ``fee`` is the step's total fee).
    - ``financing``: interest and borrow costs charged to cash on this step (positive is
      a cost, negative is interest earned); cash changes by the trades, the fees and this.
    - ``reported_equity``: the portfolio value the env itself reports after the step,
      to be checked against the ledger's ``equity_after``.
    """

    t: int
    price: Number
    next_price: Number
    predicted: int
    executed: int
    rejected: bool
    reason: str | None
    position_before: Number
    position_after: Number
    cash_before: Number
    cash_after: Number
    equity_before: Number
    equity_after: Number
    quantity: Number
    fee: Number
    reward: float
    components: tuple[float, ...]
    mask: tuple[bool, ...] | None
    cost_basis_before: Number
    legs: tuple[Leg, ...] | None = None
    financing: Number = 0
    reported_equity: Number | None = None

    def instrument_legs(self) -> tuple[Leg, ...]:
        """The step's legs: ``legs``, or one leg made of the scalar fields."""
        if self.legs is not None:
            return self.legs
        return (Leg(self.price, self.next_price, self.position_before, self.position_after,
                    self.quantity, self.fee),)


OPTIONAL_FIELDS: frozenset[str] = frozenset({"legs", "financing", "reported_equity"})
CORE_FIELDS: frozenset[str] = frozenset(StepRecord._fields) - OPTIONAL_FIELDS
"""The fields every record has a meaning for; the default of ``TraceMeta.supplies``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Precision:
    """How exact a trace's numbers are, and so how each accounting identity compares.

    ``exact`` (the default, :data:`EXACT`): integers, compared with ``==``. Otherwise the
    numbers are floats the env computed in float64 (:meth:`float64`) or float32
    (:meth:`float32`: an env whose arithmetic runs on ``np.float32`` values, as any env
    that keeps prices in a float32 array does under NumPy 2), and an identity over terms
    ``x1 .. xn`` holds within ``ulps * n * ulp(max |xi|)`` (the rounding error of ``n``
    float operations on the largest term, ``ulp`` of the env's float width; never below
    the smallest normal float of that width, under which it has no relative precision),
    plus half a ``money_step`` for each stored amount the identity compares that the env
    rounds (cash, equity and fees are rounded to a multiple of ``money_step`` when it is
    not 0).

    Attributes:
        exact: Integers, compared exactly.
        money_step: The rounding of money amounts the env applies, in the trace's money
            units (0.01: cents when money is in currency; 1: whole minor units); 0 when
            the env does not round.
        ulps: Units in the last place allowed per arithmetic operation (floats only).
        bits: The env's float width, 64 or 32 (floats only).

    Example:
        >>> p = Precision.float64(money_step=0.01)
        >>> p.tolerance(10_000.0, 25.5, rounded=1) < 0.01
        True
        >>> Precision.float32().tolerance(1.0) == 4 * 2.0 ** -23
        True
    """

    exact: bool = True
    money_step: float = 0.0
    ulps: float = 4.0
    bits: Literal[32, 64] = 64

    def __post_init__(self) -> None:
        if not (isinstance(self.money_step, (int, float)) and math.isfinite(self.money_step)
                and self.money_step >= 0):
            _bad_precision(f"money_step={self.money_step!r}", "a finite amount >= 0, e.g. 0.01 for cents")
        if not (isinstance(self.ulps, (int, float)) and 1 <= self.ulps <= 1e6):
            _bad_precision(f"ulps={self.ulps!r}", "a number of ulps per float operation, 1..1e6")
        if self.bits not in (32, 64) or isinstance(self.bits, bool):
            _bad_precision(f"bits={self.bits!r}", "64 (float64 arithmetic) or 32 (float32)")

    @classmethod
    def float64(cls, *, money_step: float = 0.0, ulps: float = 4.0) -> Precision:
        """Floats, as the env computes them in float64; ``money_step``: its rounding of money."""
        return cls(exact=False, money_step=money_step, ulps=ulps)

    @classmethod
    def float32(cls, *, money_step: float = 0.0, ulps: float = 4.0) -> Precision:
        """Floats the env computes in float32 (``np.float32`` prices or balances)."""
        return cls(exact=False, money_step=money_step, ulps=ulps, bits=32)

    def tolerance(self, *terms: float, rounded: int = 0) -> float:
        """How far apart two sides of an identity over ``terms`` may be (0.0 when exact).

        ``rounded`` is how many of the compared stored amounts the env rounded to
        ``money_step``. A NaN or infinite term gives a tolerance of NaN or inf, under
        which no comparison holds, so such a value never passes.
        """
        if self.exact:
            return 0.0
        biggest = max((abs(float(t)) for t in terms), default=0.0)
        if not math.isfinite(biggest):
            return math.nan
        ulp = math.ulp(biggest) if self.bits == 64 else _ulp32(biggest)
        # Below the smallest normal float the width keeps no relative precision: an
        # intermediate product underflows to 0 in one order of operations and not in another.
        # So no tolerance is below that (2.2e-308 of a currency unit for float64, 1.2e-38
        # for float32: nothing a ledger holds).
        smallest = sys.float_info.min if self.bits == 64 else _FLOAT32_SMALLEST_NORMAL
        return max(self.ulps * max(1, len(terms)) * ulp, smallest) + rounded * self.money_step / 2

    def describe(self) -> str:
        """``'exact'``, or ``'float64, money rounded to 0.01'``: for messages."""
        if self.exact:
            return "exact"
        return f"float{self.bits}" + (f", money rounded to {self.money_step:g}" if self.money_step else "")


_FLOAT32_SMALLEST_NORMAL = 2.0**-126


def _ulp32(x: float) -> float:
    """The float32 ulp of ``x`` (>= 0): 2**29 float64 ulps for a normal float32, 2**-149 at least."""
    return max(math.ulp(x) * 2.0**29, 2.0**-149)


EXACT = Precision()
"""Integer money and positions, compared exactly (tradeguard's own env)."""


def _bad_precision(given: str, expected: str) -> None:
    from tradeguard.errors import InvalidConfig

    raise InvalidConfig(f"Precision({given}); expected {expected}.")


FeeRounding = Literal["none", "nearest", "up", "down"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FeeSchedule:
    """What a trade should cost: the env's fee schedule, as the adapter declares it.

    The fee of a leg that trades ``quantity`` units at ``price`` is
    ``max(minimum, fixed + rate * |quantity| * price)``, rounded to a multiple of
    ``step`` by ``rounding``; or whatever ``function(quantity, price)`` returns. A leg
    that trades nothing pays nothing. Amounts are in the trace's money units.

    Attributes:
        rate: Fraction of the traded notional (0.001 = 0.1% = 10 bps).
        fixed: Amount per trade.
        minimum: Least fee of a trade.
        step: The rounding of a fee (0.01: cents); 0: not rounded.
        rounding: ``"none"``, ``"nearest"``, ``"up"`` (the env rounds fees up) or ``"down"``.
        function: ``(signed quantity, price) -> fee``, for any other schedule (the
            other attributes are then unused).

    Example:
        >>> FeeSchedule(rate=0.001).expected(2.5, 100.0)
        0.25
        >>> FeeSchedule(rate=0.001, minimum=1.0, step=0.01, rounding="up").expected(-3, 33.333)
        1.0
    """

    rate: float = 0.0
    fixed: float = 0.0
    minimum: float = 0.0
    step: float = 0.0
    rounding: FeeRounding = "none"
    function: Callable[[float, float], float] | None = None

    def __post_init__(self) -> None:
        for name in ("rate", "fixed", "minimum", "step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value >= 0
            ):
                _bad_schedule("FeeSchedule", f"{name}={value!r}", "a finite number >= 0")
        if self.rounding not in ("none", "nearest", "up", "down"):
            _bad_schedule("FeeSchedule", f"rounding={self.rounding!r}", "'none', 'nearest', 'up' or 'down'")
        if self.rounding != "none" and self.step == 0:
            _bad_schedule("FeeSchedule", f"rounding={self.rounding!r} with step=0",
                          "a step to round to, e.g. FeeSchedule(rate=0.001, step=0.01, rounding='up')")
        if self.function is not None and not callable(self.function):
            _bad_schedule("FeeSchedule", f"function={self.function!r}", "a callable (quantity, price) -> fee")

    def expected(self, quantity: float, price: float) -> float:
        """The fee the schedule charges for trading ``quantity`` (signed) units at ``price``."""
        if quantity == 0:
            return 0.0
        if self.function is not None:
            return float(self.function(quantity, price))
        fee = max(self.minimum, self.fixed + self.rate * abs(quantity) * price)
        if self.rounding == "none":
            return fee
        units = fee / self.step
        # A fee a hair past a whole step (float noise in rate x notional) rounds as the whole step.
        if self.rounding == "up":
            whole = math.ceil(units - 1e-9)
        elif self.rounding == "down":
            whole = math.floor(units + 1e-9)
        else:
            whole = round(units)
        return whole * self.step


@dataclass(frozen=True, slots=True, kw_only=True)
class FinancingSchedule:
    """What holding costs per step: interest on cash, on borrowed cash, on shorts and on longs.

    The financing of a step (positive is a cost) is
    ``borrow_rate * max(-cash_before, 0) - cash_rate * max(cash_before, 0)
    + short_rate * sum(max(-position_before, 0) * price)
    + long_rate * sum(max(position_before, 0) * price)``, each rate per step, on the
    balances *before* the step's trade, valued at the price it executed at (the legs'
    ``price``); or ``function(record)``, for any other timing or base (after the trade,
    at ``next_price``, on notional, tiered...).

    Attributes:
        cash_rate: Interest earned on positive cash, per step (0.0001 = 1 bp).
        borrow_rate: Interest paid on negative cash (money borrowed), per step.
        short_rate: Borrow fee on the value of short positions, per step; negative when
            shorts are paid (a perpetual's funding with longs paying).
        long_rate: Carry or funding on the value of long positions, per step (a
            perpetual future's funding rate: ``long_rate=r, short_rate=-r``).
        function: ``StepRecord -> financing``, for any other schedule.

    Example:
        >>> FinancingSchedule(borrow_rate=0.001).expected(-1000.0, ())
        1.0
        >>> funding = FinancingSchedule(long_rate=0.0001, short_rate=-0.0001)
        >>> funding.expected(0.0, (Leg(price=100.0, next_price=101.0, position_before=-50.0,
        ...                            position_after=-50.0, quantity=0.0, fee=0.0),))
        -0.5
    """

    cash_rate: float = 0.0
    borrow_rate: float = 0.0
    short_rate: float = 0.0
    long_rate: float = 0.0
    function: Callable[[StepRecord], float] | None = None

    def __post_init__(self) -> None:
        for name in ("cash_rate", "borrow_rate", "short_rate", "long_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                _bad_schedule("FinancingSchedule", f"{name}={value!r}", "a finite rate per step")
        if self.function is not None and not callable(self.function):
            _bad_schedule("FinancingSchedule", f"function={self.function!r}", "a callable StepRecord -> financing")

    def expected(self, cash_before: float, legs: Iterable[Leg], record: StepRecord | None = None) -> float:
        """The financing the schedule charges on a step that starts with ``cash_before`` and ``legs``."""
        if self.function is not None and record is not None:
            return float(self.function(record))
        legs = tuple(legs)
        shorts = math.fsum(max(-leg.position_before, 0) * leg.price for leg in legs)
        longs = math.fsum(max(leg.position_before, 0) * leg.price for leg in legs) if self.long_rate else 0.0
        return (self.borrow_rate * max(-cash_before, 0) - self.cash_rate * max(cash_before, 0)
                + self.short_rate * shorts + self.long_rate * longs)


def _bad_schedule(cls: str, given: str, expected: str) -> None:
    from tradeguard.errors import InvalidConfig

    raise InvalidConfig(f"{cls}({given}); expected {expected}.")


def unit_decimals(minor_unit: float) -> int:
    """The decimals that show every multiple of ``minor_unit`` exactly: 0.01 -> 2, 0.25 -> 2, 0.025 -> 3, 1 -> 0.

    Example:
        >>> unit_decimals(0.01), unit_decimals(0.25), unit_decimals(0.025), unit_decimals(5.0)
        (2, 2, 3, 0)
    """
    exponent = decimal.Decimal(repr(float(minor_unit))).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def total_reward(components: Iterable[float]) -> float:
    """The reward of a step: its components added left to right, starting from 0.0.

    The definition tradeguard's envs pay (the scalar env, and the batch engine column
    by column) and that the invariant ``reward-is-sum-of-components`` accepts bit for
    bit (an env that adds its components another way passes within the catalog's
    tolerance of their exact sum). Spelled out as float additions because builtin
    ``sum()`` of floats compensates (Neumaier) from CPython 3.12 on: the same
    components would give other reward bits on 3.11 than on 3.12. ``math.fsum`` is
    the same everywhere, but exact summation has no elementwise numpy form for the
    batch engine to reproduce bit for bit; a left-to-right sum is one ``+`` per
    component, in every interpreter and in numpy alike.

    Args:
        components: The reward components, in the order of
            :attr:`TraceMeta.component_names`.

    Returns:
        ``((0.0 + c0) + c1) + ...`` as a float (``0.0`` for no components).

    Example:
        >>> total_reward((0.1, 0.2, 0.3))  # each + rounds; math.fsum would give 0.6
        0.6000000000000001
        >>> total_reward((1e20, 1.0, -1e20))  # sum() gives 1.0 from CPython 3.12 on
        0.0
    """
    total = 0.0
    for c in components:
        total += c
    return total


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceMeta:
    """What a trace's numbers mean: the header every invariant reads.

    Attributes:
        env_id: Name of the env that wrote the trace, for messages.
        action_names: Name of each action, indexed by action id.
        action_kinds: What each action does (see :data:`ActionKind`), indexed by action id.
        component_names: Names of the reward components, in record order.
        penalty_component: Name of the failed-action penalty component, or ``None``.
        failed_action_penalty: Reward added on each rejected step (negative = penalty).
        disabled_actions: Action ids the configuration disables.
        initial_cash: Cash at reset, in the trace's money units.
        minor_unit: Value of one money unit of the trace in currency (0.01: the trace
            counts cents; 1.0: it counts currency), for display.
        pnl_scale: Reward units per money unit of PnL.
        reward_is_pnl: True when the reward claims to equal ``pnl_scale`` times the equity change.
        seed: Seed passed to ``reset``, or ``None``.
        replay: Command-line arguments that rebuild this episode's env and market
            (``tradeguard run`` syntax), or ``None`` when it cannot be replayed.
        supplies: Record fields the producer really fills; the rest are placeholders
            and invariants that need them report "not applicable". Default: every field
            but the optional ledger lines (``legs``, ``financing``, ``reported_equity``).
        precision: How exact the numbers are (:class:`Precision`); the accounting
            invariants derive their tolerances from it. Default: exact integers.
        instruments: Names of the instruments, in the order of each record's ``legs``
            (empty: one instrument, in the scalar fields).
        long_only: Positions are never negative. ``False`` for an env that shorts.
        borrows_cash: Cash may go negative (margin, leverage). ``False``: no credit.
        position_limits: ``(lowest, highest)`` position, in units, each instrument may
            hold, when the env enforces limits; ``None``: none declared.
        max_leverage: The most gross exposure (the sum of ``|position x price|`` right after
            a trade, at the price it executed at) a trade may leave, as a multiple of the
            equity before it, when the env enforces it; ``None``: none declared.
        fee_schedule: What each trade should cost (:class:`FeeSchedule`); ``None``: not declared.
        financing_schedule: What holding should cost per step
            (:class:`FinancingSchedule`); ``None``: not declared.
        ends_on_ruin: An episode ends once equity is at or below zero (the default);
            ``False`` for an env that lets a ruined account trade on by design.
        out_of_space: What the env does with an action outside its action space:
            ``"refuse"`` (raise; the default) or ``"clip"`` (values past a bound are clipped
            to it; anything that cannot be clipped, NaN or the wrong shape, still raises).
            ``action-range-enforced`` holds the env to it.
        episode_length: The steps an episode lasts, by the env's settings (e.g. an
            episode-length or max-duration setting, or the data it was given), when
            nothing ends it early; ``None``: not declared. ``episode-length-as-configured``
            holds the env to it (an early end is allowed only on ruin, with ``ends_on_ruin``).
        refusal_errors: The exception types the env raises on purpose when ``step()`` is
            called after the episode ended (its guard); ``None``: the default rule, under
            which any exception but a crash (:data:`CRASH_ERRORS`: ``IndexError``,
            ``KeyError``, ``AttributeError``, ``TypeError``, arithmetic errors, ...) is a refusal.
        hides_position: The observation leaves the agent's own position out on purpose
            (``position-observable`` is then not applicable).
        initial_position: The position at reset, by the env's settings (a number, or one per
            instrument); ``None``: not declared.
        initial_equity: The portfolio value the env itself reports at reset; ``None``: it
            reports none. With ``initial_cash``, ``initial-state-consistent`` compares the
            ledger at reset to these.
        min_order: The fewest units an order to buy can trade (one lot; the exchange's
            minimum size), > 0; ``None``: not declared. With ``fee_schedule``,
            ``rejection-reason-holds`` judges a buy refused ``INSUFFICIENT_CASH``: the cash
            before the step must be short of ``min_order`` units at the step's price plus
            their fee.
    """

    env_id: str
    action_names: tuple[str, ...]
    action_kinds: tuple[ActionKind, ...]
    component_names: tuple[str, ...] = ()
    penalty_component: str | None = None
    failed_action_penalty: float = 0.0
    disabled_actions: frozenset[int] = frozenset()
    initial_cash: Number = 0
    minor_unit: float = 0.01
    pnl_scale: float = 1.0
    reward_is_pnl: bool = False
    seed: int | None = None
    replay: str | None = None
    supplies: frozenset[str] = CORE_FIELDS
    precision: Precision = EXACT
    instruments: tuple[str, ...] = ()
    long_only: bool = True
    borrows_cash: bool = False
    position_limits: tuple[Number, Number] | None = None
    max_leverage: float | None = None
    fee_schedule: FeeSchedule | None = None
    financing_schedule: FinancingSchedule | None = None
    ends_on_ruin: bool = True
    out_of_space: OutOfSpace = "refuse"
    episode_length: int | None = None
    refusal_errors: tuple[type[BaseException], ...] | None = None
    hides_position: bool = False
    initial_position: Number | tuple[Number, ...] | None = None
    initial_equity: Number | None = None
    min_order: Number | None = None

    def __post_init__(self) -> None:
        # Cheap (a subset test and one pass over the kinds): TradingEnv builds one per reset.
        if not _RECORD_FIELDS.issuperset(self.supplies):
            _bad_supplies(self.supplies)
        kinds = self.action_kinds
        if not _KINDS.issuperset(kinds) or len(kinds) != len(self.action_names):
            _bad_kinds(self.env_id, self.action_names, kinds)
        if self.out_of_space != "refuse" and self.out_of_space != "clip":
            _bad_out_of_space(self.env_id, self.out_of_space)
        if (self.precision is not EXACT or self.instruments or self.position_limits is not None
                or self.max_leverage is not None or self.fee_schedule is not None or self.financing_schedule is not None
                or self.min_order is not None):
            _check_ledger_declarations(self)
        if (self.episode_length is not None or self.refusal_errors is not None or self.initial_position is not None
                or self.initial_equity is not None):
            _check_contract_declarations(self)

    @property
    def exact(self) -> bool:
        """True when money and positions are exact integers, compared with ``==``."""
        return self.precision.exact

    def action_name(self, action: int) -> str:
        """Name of ``action``, or ``"<action 9>"`` for an id outside the table."""
        if 0 <= action < len(self.action_names):
            return self.action_names[action]
        return f"<action {action}>"

    def instrument(self, index: int) -> str:
        """Name of the instrument of leg ``index`` (``"instrument 2"`` when unnamed)."""
        if 0 <= index < len(self.instruments):
            return self.instruments[index]
        return f"instrument {index}"

    def money(self, amount: Number) -> str:
        """Format an amount of the trace's money units as currency, ``12345 -> '123.45'``.

        Integers show the currency's decimals; floats at least two, and more when a
        cent would hide the digits that matter (``0.004`` shows as ``0.004``).
        """
        decimals = unit_decimals(self.minor_unit)
        value = amount * self.minor_unit
        if isinstance(amount, int):
            return f"{value:,.{decimals}f}"
        if not math.isfinite(value):
            return repr(value)
        decimals = max(decimals, 2)
        shown = f"{value:,.{decimals}f}"
        if value != 0 and float(shown.replace(",", "")) == 0:
            return f"{value:.3g}"
        return shown

    def units(self, quantity: Number) -> str:
        """Format a position or quantity: ``3``, ``0.25``, ``-1.5``."""
        if isinstance(quantity, int):
            return str(quantity)
        return f"{quantity:.10g}"


def _check_ledger_declarations(meta: TraceMeta) -> None:
    from tradeguard.errors import InvalidConfig

    where = f"TraceMeta(env_id={meta.env_id!r})"
    if not isinstance(meta.precision, Precision):
        raise InvalidConfig(f"{where}: precision={meta.precision!r}; expected tradeguard.trace.Precision, "
                            "e.g. Precision.float64(money_step=0.01) or EXACT.")
    if meta.instruments and not (isinstance(meta.instruments, tuple)
                                 and all(isinstance(n, str) for n in meta.instruments)):
        raise InvalidConfig(f"{where}: instruments={meta.instruments!r}; expected a tuple of names, "
                            "one per leg, e.g. ('BTC', 'ETH').")
    if meta.position_limits is not None:
        limits = meta.position_limits
        ok = (isinstance(limits, tuple) and len(limits) == 2
              and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in limits)
              and limits[0] <= limits[1])
        if not ok:
            raise InvalidConfig(f"{where}: position_limits={limits!r}; expected (lowest, highest) in units "
                                "with lowest <= highest, e.g. (-10.0, 10.0).")
        if meta.long_only and limits[0] < 0:
            raise InvalidConfig(f"{where}: position_limits={limits!r} allow a short position, but "
                                "long_only=True. Declare long_only=False for an env that shorts.")
    lev = meta.max_leverage
    if lev is not None and (isinstance(lev, bool) or not isinstance(lev, (int, float)) or not math.isfinite(lev)
                            or lev <= 0):
        raise InvalidConfig(f"{where}: max_leverage={lev!r}; expected a multiple of equity > 0, e.g. 3.0.")
    least = meta.min_order
    if least is not None and (isinstance(least, bool) or not isinstance(least, (int, float))
                              or not math.isfinite(least) or least <= 0):
        raise InvalidConfig(f"{where}: min_order={least!r}; expected the fewest units a buy can trade, > 0 "
                            "(e.g. 1 for whole shares, 0.0001 for a crypto exchange's minimum size).")
    for name, cls in (("fee_schedule", FeeSchedule), ("financing_schedule", FinancingSchedule)):
        value = getattr(meta, name)
        if value is not None and not isinstance(value, cls):
            raise InvalidConfig(f"{where}: {name}={value!r}; expected a tradeguard.trace.{cls.__name__}.")


def _check_contract_declarations(meta: TraceMeta) -> None:
    from tradeguard.errors import InvalidConfig

    where = f"TraceMeta(env_id={meta.env_id!r})"
    n = meta.episode_length
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InvalidConfig(f"{where}: episode_length={n!r}; expected the steps of an episode, an int >= 1, "
                            "or None when the env's settings do not say.")
    errors = meta.refusal_errors
    if errors is not None and not (isinstance(errors, tuple) and errors and all(
            isinstance(e, type) and issubclass(e, BaseException) for e in errors)):
        raise InvalidConfig(f"{where}: refusal_errors={errors!r}; expected a non-empty tuple of exception "
                            "classes, e.g. (RuntimeError,), or None for the default rule (any but CRASH_ERRORS).")
    amounts = meta.initial_position if isinstance(meta.initial_position, tuple) else (meta.initial_position,)
    for name, values in (("initial_position", amounts), ("initial_equity", (meta.initial_equity,))):
        if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
                   for v in values):
            raise InvalidConfig(f"{where}: {name}={getattr(meta, name)!r}; expected a finite number (a tuple of "
                                "them, one per instrument, for initial_position) or None.")


CRASH_ERRORS: tuple[type[BaseException], ...] = (
    LookupError, AttributeError, TypeError, ArithmeticError, NameError, RecursionError, MemoryError,
)
"""Exceptions that are crashes, never a refusal, when ``step()`` runs past the end (by default):
an ``IndexError`` or ``KeyError`` from deep in the env's data, an attribute or type error."""


def _bad_out_of_space(env_id: str, value: object) -> None:
    from tradeguard._validation import suggest
    from tradeguard.errors import InvalidConfig

    raise InvalidConfig(
        f"TraceMeta(env_id={env_id!r}, out_of_space={value!r}); expected 'refuse' (the env raises on an "
        "action outside its space) or 'clip' (it clips values past a bound to the bound)."
        f"{suggest(value, ('refuse', 'clip')) if isinstance(value, str) else ''}"
    )


_RECORD_FIELDS: frozenset[str] = frozenset(StepRecord._fields)
_KINDS: frozenset[str] = frozenset(ACTION_KINDS)


def _bad_supplies(supplies: Iterable[object]) -> None:
    from tradeguard._validation import suggest
    from tradeguard.errors import InvalidConfig

    if isinstance(supplies, str):
        raise InvalidConfig(
            f"TraceMeta(supplies={supplies!r}) is a string; expected a frozenset of StepRecord field "
            f"names, e.g. frozenset({{'t', 'predicted', 'reward'}})."
        )
    unknown = sorted((s for s in supplies if s not in _RECORD_FIELDS), key=repr)
    hints = "".join(suggest(s, StepRecord._fields) if isinstance(s, str) else "" for s in unknown)
    raise InvalidConfig(
        f"TraceMeta(supplies=...) names {', '.join(repr(s) for s in unknown)}, which "
        f"{'is not a StepRecord field' if len(unknown) == 1 else 'are not StepRecord fields'}."
        f"{hints} The fields are {', '.join(StepRecord._fields)}. List in supplies the fields "
        "the adapter's records really fill."
    )


def _bad_kinds(env_id: str, names: Sequence[str], kinds: Sequence[object]) -> None:
    from tradeguard._validation import suggest
    from tradeguard.errors import InvalidConfig

    unknown = [k for k in kinds if k not in _KINDS]
    if unknown:
        k = unknown[0]
        raise InvalidConfig(
            f"TraceMeta(env_id={env_id!r}, action_kinds={tuple(kinds)!r}): {k!r} is not an action kind; "
            f"expected one of {', '.join(repr(a) for a in ACTION_KINDS)} for each action (what it does "
            f"to the position: nothing, buy only from flat, sell part, sell all, add to it, buy flat or not, "
            f"trade towards a target), e.g. a buy that opens or adds is 'buy' and a sell of the whole "
            f"position 'close'."
            f"{suggest(k, ACTION_KINDS) if isinstance(k, str) else ''}"
        )
    raise InvalidConfig(
        f"TraceMeta(env_id={env_id!r}) has {len(names)} action_names {tuple(names)!r} but "
        f"{len(kinds)} action_kinds {tuple(kinds)!r}; expected one kind per action name, both "
        "indexed by action id."
    )


@dataclass(frozen=True, slots=True)
class Trace(Sequence[StepRecord]):
    """An episode: its records, in step order, and the header that explains them."""

    records: tuple[StepRecord, ...]
    meta: TraceMeta

    def __len__(self) -> int:
        return len(self.records)

    @overload
    def __getitem__(self, index: int) -> StepRecord: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[StepRecord]: ...
    def __getitem__(self, index: int | slice) -> StepRecord | Sequence[StepRecord]:
        return self.records[index]

    def __iter__(self) -> Iterator[StepRecord]:
        return iter(self.records)

    def component_totals(self) -> dict[str, float]:
        """Episode total of each reward component, keyed by name (summed with ``math.fsum``)."""
        names = self.meta.component_names
        return {
            name: math.fsum(r.components[i] for r in self.records) for i, name in enumerate(names)
        }

    def metrics(self) -> EpisodeMetrics:
        """The episode's metrics, computed from the records alone."""
        return compute_metrics(self)


# The metrics live in their own module; they are part of this one's public API.
from tradeguard._metrics import (  # noqa: E402
    METRIC_ALIASES,
    EpisodeMetrics,
    action_entropy,
    compute_metrics,
    metric_names,
)
