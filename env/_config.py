"""Frozen, keyword-only configuration of the trading machine and of its reward shaper.

Change a field with :func:`dataclasses.replace`; every field is validated when the
object is built, and a bad value raises :class:`~tradeguard.errors.InvalidConfig`
naming the field, the value and the allowed range.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from tradeguard._validation import check_int, check_number, suggest
from tradeguard.env._actions import Action
from tradeguard.env._component_specs import parse_components
from tradeguard.env._components import CustomComponent
from tradeguard.errors import InvalidConfig
from tradeguard.limits import MAX_CASH, MAX_EPISODE_LENGTH

__all__ = ["COMPONENT_NAMES", "PPM", "EnvConfig", "RewardConfig"]

PPM = 1_000_000
"""Fractions are held exactly as integer parts per million."""

COMPONENT_NAMES: tuple[str, ...] = (
    "realized_pnl",
    "unrealized_pnl_change",
    "unrealized_pnl_level",
    "transaction_cost",
    "failed_action_penalty",
    "exploration_curriculum",
    "diversity_bonus",
)
"""Reward components, in the order every record reports them."""


def _to_ppm(name: str, value: float) -> int:
    ppm = round(value * PPM)
    if abs(ppm - value * PPM) > 1e-6:
        raise InvalidConfig(
            f"{name}={value!r} has more precision than one part per million; round it to 6 decimals."
        )
    return ppm


def parse_actions(name: str, values: Any) -> tuple[Action, ...]:
    """Turn names, ids or :class:`Action` members into a sorted tuple of unique actions."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise InvalidConfig(
            f"{name}={values!r} must be a list of action names, e.g. ['ADD_POSITION']."
        )
    out: set[Action] = set()
    for v in values:
        if isinstance(v, Action):
            out.add(v)
        elif isinstance(v, str):
            if v not in Action.__members__:
                raise InvalidConfig(
                    f"{name} contains {v!r}, which is not an action; expected one of "
                    f"{', '.join(Action.__members__)}.{suggest(v, Action.__members__)}"
                )
            out.add(Action[v])
        elif isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(Action):
            out.add(Action(v))
        else:
            raise InvalidConfig(
                f"{name} contains {v!r}; expected action names or ids 0..{len(Action) - 1}."
            )
    return tuple(sorted(out))


class _FromMapping:
    """``from_dict``/``to_dict`` shared by the config classes (TOML and JSON round trip)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "") -> Self:
        """Build from a mapping of field names, refusing unknown keys with a suggestion."""
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        for key in data:
            if key not in names:
                place = f" in {where}" if where else ""
                raise InvalidConfig(
                    f"unknown {cls.__name__} field {key!r}{place}; expected one of "
                    f"{', '.join(names)}.{suggest(key, names)}"
                )
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
        if not where:
            return cls(**kwargs)
        try:
            return cls(**kwargs)
        except InvalidConfig as exc:
            raise InvalidConfig(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON/TOML values."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = [
                    a.name if isinstance(a, Action) else a.to_value() if isinstance(a, CustomComponent) else a
                    for a in v
                ]
            out[f.name] = v
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvConfig(_FromMapping):
    """The trading machine's configuration: account, sizing, fees, episode.

    Attributes:
        cash: Starting cash in minor units (cents by default): 1_000_000 = 10,000.00.
        lot_size: Units (shares) per lot; every trade is a whole number of lots.
        fee_bps: Fee in basis points of notional, rounded up to the next minor unit;
            10 = 0.1%. At most 1000 (10%), in steps of 0.01.
        buy_small: Fraction of cash a BUY_SMALL spends (size plus fee), in (0, 1].
        buy_medium: Fraction of cash a BUY_MEDIUM spends, in (0, 1].
        buy_large: Fraction of cash a BUY_LARGE spends, in (0, 1].
        sell_partial: Fraction of the position SELL_PARTIAL sells (at least one lot), in (0, 1].
        add_size: Fraction of cash an ADD_POSITION spends, in (0, 1].
        disabled_actions: Actions that are always rejected with ``DISABLED``. HOLD cannot be
            disabled. Given as names, ids or :class:`Action` members.
        episode_length: Steps per episode, in [1, 1_000_000].
        window: Past log returns in the observation, in [1, 256].
        minor_unit: Value of one minor unit in currency, for display and CSV prices: 0.01.

    Example:
        >>> import dataclasses
        >>> cfg = EnvConfig(fee_bps=5, disabled_actions=("ADD_POSITION",))
        >>> dataclasses.replace(cfg, episode_length=50).episode_length
        50
    """

    cash: int = 1_000_000
    lot_size: int = 1
    fee_bps: float = 10.0
    buy_small: float = 0.1
    buy_medium: float = 0.25
    buy_large: float = 0.5
    sell_partial: float = 0.5
    add_size: float = 0.1
    disabled_actions: tuple[Action, ...] = ()
    episode_length: int = 500
    window: int = 10
    minor_unit: float = 0.01

    def __post_init__(self) -> None:
        check_int("cash", self.cash, min_value=1, max_value=MAX_CASH)
        check_int("lot_size", self.lot_size, min_value=1, max_value=10**9)
        check_number("fee_bps", self.fee_bps, min_value=0, max_value=1000)
        if abs(self.fee_bps * 100 - round(self.fee_bps * 100)) > 1e-6:
            raise InvalidConfig(
                f"fee_bps={self.fee_bps!r} is finer than the fee grid of 0.01 bps; round it to "
                "2 decimals (fees are exact integers of parts per million)."
            )
        for name in ("buy_small", "buy_medium", "buy_large", "sell_partial", "add_size"):
            value = getattr(self, name)
            check_number(name, value, min_value=0.0, max_value=1.0, min_exclusive=True)
            _to_ppm(name, value)
        disabled = parse_actions("disabled_actions", self.disabled_actions)
        if Action.HOLD in disabled:
            raise InvalidConfig(
                "disabled_actions contains HOLD; HOLD is always valid (it is what a rejected "
                "action executes as). Remove it."
            )
        object.__setattr__(self, "disabled_actions", disabled)
        check_int("episode_length", self.episode_length, min_value=1, max_value=MAX_EPISODE_LENGTH)
        check_int("window", self.window, min_value=1, max_value=256)
        check_number("minor_unit", self.minor_unit, min_value=0.0, min_exclusive=True)

    @property
    def fee_ppm(self) -> int:
        """Fee in parts per million of notional (10 bps = 1000 ppm)."""
        return round(self.fee_bps * 100)

    def size_ppm(self, action: Action) -> int:
        """The sizing fraction of ``action`` in parts per million (0 for HOLD and SELL_ALL)."""
        field = _SIZE_FIELD.get(action)
        return round(getattr(self, field) * PPM) if field else 0


_SIZE_FIELD: dict[Action, str] = {
    Action.BUY_SMALL: "buy_small",
    Action.BUY_MEDIUM: "buy_medium",
    Action.BUY_LARGE: "buy_large",
    Action.SELL_PARTIAL: "sell_partial",
    Action.ADD_POSITION: "add_size",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RewardConfig(_FromMapping):
    """Weights of the reward shaper's named components; the reward is their sum.

    PnL components are in percent of starting cash (a PnL of 1% of the account is
    1.0 reward at weight 1), so that they compare with the seed's penalties.

    Attributes:
        realized_pnl: Weight of PnL realized by sells.
        unrealized_pnl_change: Weight of the step's change in unrealized PnL.
        unrealized_pnl_level: Weight of the *level* of unrealized PnL, paid every step
            (the V1-V9 bug: holding a winner pays again and again). 0 by default.
        transaction_cost: Weight of fees (the component is ``-weight * fee``).
        failed_action_penalty: Reward added on every rejected step; negative is a penalty.
            The seed's V10 used -0.05, V10.1 and V10.2 used -1.0.
        curriculum_actions: Actions whose *predicted* share the exploration curriculum
            counts (the seed's "SELL": SELL_PARTIAL and SELL_ALL).
        curriculum_min_share: Required share of ``curriculum_actions`` among predicted
            actions so far, in [0, 1]; 0 turns the curriculum off.
        curriculum_weight: Curriculum penalty weight (the seed: -0.5).
        curriculum_scale: Curriculum penalty scale (the seed: 5.0); the component is
            ``curriculum_weight * curriculum_scale`` on each step the share is short.
        diversity_bonus: Reward for predicting an action for the first time in the episode.
        custom_components: The user's own components (:class:`CustomComponent`), reported
            after the built-in ones; in a scenario file, ``"module:function"`` names or tables
            ``{function = "module:function", weight = 0.5}``. See ``docs/reward-audit.md``.

    With the defaults (realized, unrealized change and cost at 1, the rest 0 but the
    penalty), rewards on executed steps sum exactly to the PnL in percent.
    """

    realized_pnl: float = 1.0
    unrealized_pnl_change: float = 1.0
    unrealized_pnl_level: float = 0.0
    transaction_cost: float = 1.0
    failed_action_penalty: float = -1.0
    curriculum_actions: tuple[Action, ...] = (Action.SELL_PARTIAL, Action.SELL_ALL)
    curriculum_min_share: float = 0.0
    curriculum_weight: float = -0.5
    curriculum_scale: float = 5.0
    diversity_bonus: float = 0.0
    custom_components: tuple[CustomComponent, ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "realized_pnl",
            "unrealized_pnl_change",
            "unrealized_pnl_level",
            "transaction_cost",
            "failed_action_penalty",
            "curriculum_weight",
            "curriculum_scale",
            "diversity_bonus",
        ):
            # Held as float: a TOML "-1" must give the same reward components as "-1.0".
            value = check_number(name, getattr(self, name), min_value=-1e6, max_value=1e6)
            object.__setattr__(self, name, value)
        check_number("curriculum_min_share", self.curriculum_min_share, min_value=0, max_value=1)
        _to_ppm("curriculum_min_share", self.curriculum_min_share)
        object.__setattr__(
            self,
            "curriculum_actions",
            parse_actions("curriculum_actions", self.curriculum_actions),
        )
        if self.custom_components:
            custom = parse_components(self.custom_components)
            clash = [c.name for c in custom if c.name in COMPONENT_NAMES]
            if clash:
                raise InvalidConfig(
                    f"custom component {clash[0]!r} has the name of a built-in component; the built-in "
                    f"ones are {', '.join(COMPONENT_NAMES)}. Name it differently (name=...)."
                )
            object.__setattr__(self, "custom_components", custom)
        elif not isinstance(self.custom_components, tuple):
            object.__setattr__(self, "custom_components", parse_components(self.custom_components))
        if self.failed_action_penalty > 0:
            warnings.warn(
                f"failed_action_penalty={self.failed_action_penalty!r} is positive: every "
                "rejected action earns a reward. Penalties are negative, e.g. -1.0.",
                UserWarning,
                stacklevel=3,
            )

    @property
    def curriculum_min_share_ppm(self) -> int:
        """``curriculum_min_share`` in exact parts per million (0.05 -> 50_000)."""
        return round(self.curriculum_min_share * PPM)

    @property
    def is_pnl(self) -> bool:
        """True when executed steps' rewards equal the PnL in percent of starting cash."""
        return (
            self.realized_pnl == 1.0
            and self.unrealized_pnl_change == 1.0
            and self.transaction_cost == 1.0
            and self.unrealized_pnl_level == 0.0
            and self.curriculum_min_share == 0.0
            and self.diversity_bonus == 0.0
            and not self.custom_components
        )

    @property
    def component_names(self) -> tuple[str, ...]:
        """Every component's name, in record order: the built-in ones, then the custom ones."""
        if not self.custom_components:
            return COMPONENT_NAMES
        return COMPONENT_NAMES + tuple(c.name for c in self.custom_components)
