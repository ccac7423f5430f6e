"""Strategies for the machine's :class:`EnvConfig` and the shaper's :class:`RewardConfig`.

Both shrink towards the defaults (short episodes aside), so that a counterexample
shows only the fields that matter; :func:`config_changes` lists those fields.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import hypothesis.strategies as st
from hypothesis.errors import InvalidArgument

from tradeguard.env import Action, EnvConfig, RewardConfig
from tradeguard.errors import InvalidConfig
from tradeguard.strategies._common import anchored, as_strategy, check_bool, check_fixed_names

__all__ = ["PATHOLOGICAL_REWARDS", "config_changes", "env_configs", "reward_configs"]

_ENV_FIELDS = tuple(f.name for f in dataclasses.fields(EnvConfig))
_REWARD_FIELDS = tuple(f.name for f in dataclasses.fields(RewardConfig))
_ENV_DEFAULT = EnvConfig()
_REWARD_DEFAULT = RewardConfig()
_DISABLEABLE = tuple(a for a in Action if a is not Action.HOLD)
MAX_EPISODE_LENGTH = 20
"""Default upper bound of drawn ``episode_length``: short episodes, fast examples."""


def _fraction(default: float, lo: int, hi: int) -> st.SearchStrategy[float]:
    """Hundredths in ``[lo/100, hi/100]``, shrinking towards ``default``."""
    return anchored(lo, hi, round(default * 100)).map(lambda k: k / 100)


def _env_fields() -> dict[str, st.SearchStrategy[Any]]:
    d = _ENV_DEFAULT
    return {
        # 0.01 to 100,000,000.00 at cents: from "cannot afford one unit" to "never short of cash"
        # A third of the time at most 1,000.00: a few lots at most, often not even one.
        "cash": st.one_of(
            anchored(1, 10**10, d.cash), anchored(1, 10**10, d.cash), st.integers(1, 100_000)
        ),
        "lot_size": anchored(1, 100, d.lot_size),
        # 0 to 100 bps in steps of 0.01 bps
        "fee_bps": _fraction(d.fee_bps, 0, 10_000),
        "buy_small": _fraction(d.buy_small, 1, 100),
        "buy_medium": _fraction(d.buy_medium, 1, 100),
        "buy_large": _fraction(d.buy_large, 1, 100),
        "sell_partial": _fraction(d.sell_partial, 1, 100),
        "add_size": _fraction(d.add_size, 1, 100),
        # Half of the configs disable nothing. Drawn as a plain list then deduplicated:
        # unique lists of sampled_from shrink poorly (they keep extra members).
        "disabled_actions": st.one_of(
            st.just(()),
            st.lists(st.sampled_from(_DISABLEABLE), min_size=1, max_size=len(_DISABLEABLE)).map(
                lambda xs: tuple(sorted(set(xs)))
            ),
        ),
        "episode_length": st.integers(1, MAX_EPISODE_LENGTH),
        "window": anchored(1, 32, d.window),
        "minor_unit": st.just(d.minor_unit),
    }


def env_configs(**fixed: Any) -> st.SearchStrategy[EnvConfig]:
    """:class:`~tradeguard.env.EnvConfig` objects: account, sizing, fees, disabled actions.

    Drawn per field (unless fixed):

    - ``cash``: 1 to 10**10 minor units; a third of the time at most 100,000 (a few
      lots at a round price, or not even one).
    - ``lot_size``: 1 to 100 units. ``fee_bps``: 0 to 100 in steps of 0.01.
    - ``buy_small``, ``buy_medium``, ``buy_large``, ``sell_partial``, ``add_size``:
      0.01 to 1.00 in steps of 0.01, independently.
    - ``disabled_actions``: none half of the time, else a non-empty set of non-HOLD actions.
    - ``episode_length``: 1 to 20 (short, so that examples are fast). ``window``: 1 to 32.
    - ``minor_unit``: the default, 0.01.

    Shrinks towards ``EnvConfig(episode_length=1)``: every field towards its default,
    no disabled actions, and the shortest episode.

    Args:
        **fixed: Fields to fix: a value is used as is, a strategy is drawn from,
            e.g. ``env_configs(episode_length=st.integers(50, 100), fee_bps=0)``.

    Raises:
        InvalidArgument: a keyword that is not an :class:`EnvConfig` field.
        InvalidConfig: a fixed value :class:`EnvConfig` refuses (checked at call time).

    Example:
        >>> from hypothesis import find
        >>> find(env_configs(), lambda c: True) == EnvConfig(episode_length=1)
        True
    """
    fields = _fields("EnvConfig", _ENV_FIELDS, fixed, _env_fields(), _check_env)
    return st.builds(EnvConfig, **fields)


PATHOLOGICAL_REWARDS: Mapping[str, tuple[Any, ...]] = {
    "realized_pnl": (0.0, -1.0, 1e6),
    "unrealized_pnl_change": (0.0, 10.0, 1e6),
    "unrealized_pnl_level": (0.01, 1.0, 1000.0),
    "transaction_cost": (0.0, -1.0, 1e6),
    "failed_action_penalty": (0.0, -0.05, -0.01, -0.001, 0.05, 1.0, -1e6),
    "curriculum_actions": (
        (Action.ADD_POSITION,),
        (Action.BUY_SMALL, Action.BUY_MEDIUM, Action.BUY_LARGE),
        tuple(_DISABLEABLE),
    ),
    "curriculum_min_share": (0.05, 0.5, 1.0),
    "curriculum_weight": (-10.0, 1.0),
    "curriculum_scale": (100.0,),
    "diversity_bonus": (0.1, 1.0, 100.0),
}
"""The values users actually try, per :class:`RewardConfig` field, that
``reward_configs(pathological=True)`` mixes in: no penalty, the seed's V10 penalty
(-0.05) and tinier ones, positive "penalties" (a reward for being rejected), huge
weights, negative PnL weights, paying the unrealized PnL *level* (the V1-V9 bug), the
seed's 5% SELL curriculum and a curriculum demanding 100%, and diversity bonuses."""


def _reward_fields(pathological: bool) -> dict[str, st.SearchStrategy[Any]]:
    d = _REWARD_DEFAULT
    sane: dict[str, st.SearchStrategy[Any]] = {
        "realized_pnl": _fraction(d.realized_pnl, 50, 200),
        "unrealized_pnl_change": _fraction(d.unrealized_pnl_change, 50, 200),
        "unrealized_pnl_level": st.just(0.0),
        "transaction_cost": _fraction(d.transaction_cost, 50, 200),
        # -0.5 to -5.0: of the order of a fee or a small profit, as the seed's fix advises
        "failed_action_penalty": _fraction(d.failed_action_penalty, -500, -50),
        "curriculum_actions": st.just(d.curriculum_actions),
        "curriculum_min_share": st.just(0.0),
        "curriculum_weight": st.just(d.curriculum_weight),
        "curriculum_scale": st.just(d.curriculum_scale),
        "diversity_bonus": st.just(0.0),
    }
    if not pathological:
        return sane
    # one_of shrinks towards its first branch: the sane value, i.e. the default.
    return {
        name: st.one_of(strategy, st.sampled_from(PATHOLOGICAL_REWARDS[name]))
        for name, strategy in sane.items()
    }


def _build_reward(**kwargs: Any) -> RewardConfig:
    """RewardConfig without its positive-penalty warning: the strategy asks for those on purpose."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"failed_action_penalty=.* is positive", category=UserWarning
        )
        return RewardConfig(**kwargs)


def reward_configs(*, pathological: bool = False, **fixed: Any) -> st.SearchStrategy[RewardConfig]:
    """:class:`~tradeguard.env.RewardConfig` objects: the reward shaper's weights.

    By default, sane shapings: PnL weights (realized, unrealized change, transaction
    cost) 0.50 to 2.00 in steps of 0.01, a failed-action penalty of -0.50 to -5.00, no
    unrealized-level reward, no curriculum, no diversity bonus.

    With ``pathological=True`` each field is, half of the time, one of
    :data:`PATHOLOGICAL_REWARDS` instead: penalty 0 or -0.05 (the seed's V10) or
    positive, huge weights, ``unrealized_pnl_level > 0``, a curriculum demanding up to
    100% of one kind of action, diversity bonuses. The positive-penalty
    :class:`UserWarning` is suppressed inside the strategy only (warning filters are
    restored after each draw); build such a config yourself and it still warns.

    Shrinks towards ``RewardConfig()``, the defaults, in both modes: a pathological
    counterexample keeps only the pathological fields it needs.

    Args:
        pathological: Mix in :data:`PATHOLOGICAL_REWARDS`.
        **fixed: Fields to fix: a value is used as is, a strategy is drawn from,
            e.g. ``reward_configs(failed_action_penalty=-0.05)``.

    Raises:
        InvalidArgument: ``pathological`` is not a bool, or a keyword that is not a
            :class:`RewardConfig` field.
        InvalidConfig: a fixed value :class:`RewardConfig` refuses (checked at call time).

    Example:
        >>> from hypothesis import find
        >>> positive = find(reward_configs(pathological=True), lambda r: r.failed_action_penalty > 0)
        >>> config_changes(positive)
        {'failed_action_penalty': 0.05}
    """
    check_bool("pathological", pathological)
    fields = _fields(
        "RewardConfig", _REWARD_FIELDS, fixed, _reward_fields(pathological), _build_reward
    )
    return st.builds(_build_reward, **fields)


def config_changes(config: EnvConfig | RewardConfig) -> dict[str, Any]:
    """The fields of ``config`` that differ from the defaults, as plain values.

    Example:
        >>> config_changes(EnvConfig(episode_length=3, disabled_actions=("ADD_POSITION",)))
        {'disabled_actions': ('ADD_POSITION',), 'episode_length': 3}
    """
    if not isinstance(config, (EnvConfig, RewardConfig)):
        raise InvalidArgument(f"config={config!r} must be an EnvConfig or a RewardConfig.")
    default = _ENV_DEFAULT if isinstance(config, EnvConfig) else _REWARD_DEFAULT
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value != getattr(default, f.name):
            if isinstance(value, tuple):
                value = tuple(a.name if isinstance(a, Action) else a for a in value)
            out[f.name] = value
    return out


# ---------------------------------------------------------------------- helpers
def _check_env(**kwargs: Any) -> EnvConfig:
    return EnvConfig(**kwargs)


def _fields(
    what: str,
    names: tuple[str, ...],
    fixed: dict[str, Any],
    drawn: dict[str, st.SearchStrategy[Any]],
    build: Any,
) -> dict[str, st.SearchStrategy[Any]]:
    """Merge fixed fields over drawn ones, checking names and fixed values at call time."""
    check_fixed_names(what, fixed, names)
    plain = {k: v for k, v in fixed.items() if not isinstance(v, st.SearchStrategy)}
    try:
        build(**plain)
    except InvalidConfig as exc:
        raise InvalidConfig(f"{what} field fixed to a value it refuses: {exc}") from None
    return {**drawn, **{k: as_strategy(v) for k, v in fixed.items()}}
