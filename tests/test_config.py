"""Configuration validation: every field refuses bad values with a message naming it."""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from typing import Any

import pytest

from tradeguard.env import Action, EnvConfig, Machine, RewardConfig
from tradeguard.errors import InvalidConfig, TradeguardError

ENV_INT_FIELDS = {
    # field: out-of-range values
    "cash": (0, -5, 10**15 + 1),
    "lot_size": (0, -1, 10**9 + 1),
    "episode_length": (0, -3, 1_000_001),
    "window": (0, 257),
}
ENV_FLOAT_FIELDS = {
    "fee_bps": (-0.01, 1000.01, 5000),
    "buy_small": (0.0, -0.1, 1.01),
    "buy_medium": (0, 1.5),
    "buy_large": (0.0, 2),
    "sell_partial": (0.0, 1.000001),
    "add_size": (-1.0, 1.1),
    "minor_unit": (0.0, -0.01),
}
REWARD_WEIGHTS = (
    "realized_pnl",
    "unrealized_pnl_change",
    "unrealized_pnl_level",
    "transaction_cost",
    "failed_action_penalty",
    "curriculum_weight",
    "curriculum_scale",
    "diversity_bonus",
)
REWARD_FLOAT_FIELDS: dict[str, tuple[Any, ...]] = {
    **dict.fromkeys(REWARD_WEIGHTS, (-1000000.0 - 1, 1000000.0 + 1)),
    "curriculum_min_share": (-0.01, 1.01),
}
WRONG_TYPES = ("10", None, [1], True, False)
NON_FINITE = (math.nan, math.inf, -math.inf)


def _cases(fields: dict[str, tuple[Any, ...]], extra: tuple[Any, ...]) -> list[tuple[str, Any]]:
    return [(name, value) for name, bad in fields.items() for value in (*bad, *extra)]


def _expect_refused(cls: type, field: str, value: Any) -> InvalidConfig:
    pattern = re.escape(f"{field}={value!r}")
    with pytest.raises(InvalidConfig, match=pattern) as info:
        kwargs: dict[str, Any] = {field: value}
        cls(**kwargs)
    return info.value


@pytest.mark.parametrize(
    ("field", "value"), _cases(ENV_INT_FIELDS, (*WRONG_TYPES, 1.5, 2.0, *NON_FINITE))
)
def test_env_int_fields_refuse_bad_values_naming_field_and_value(field: str, value: Any) -> None:
    err = _expect_refused(EnvConfig, field, value)
    assert isinstance(err, TradeguardError) and isinstance(err, ValueError)
    if type(value) is int:
        assert "out of range" in str(err)  # an integer out of range says so, with the range
    else:
        assert "must be an integer" in str(err)


@pytest.mark.parametrize(("field", "value"), _cases(ENV_FLOAT_FIELDS, (*WRONG_TYPES, *NON_FINITE)))
def test_env_number_fields_refuse_bad_values_naming_field_and_value(field: str, value: Any) -> None:
    _expect_refused(EnvConfig, field, value)


@pytest.mark.parametrize(
    ("field", "value"), _cases(REWARD_FLOAT_FIELDS, (*WRONG_TYPES, *NON_FINITE))
)
def test_reward_fields_refuse_bad_values_naming_field_and_value(field: str, value: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a positive penalty warns before it is refused
        _expect_refused(RewardConfig, field, value)


def test_range_messages_state_the_allowed_range() -> None:
    with pytest.raises(
        InvalidConfig, match=re.escape("window=257 is out of range: expected in [1, 256]")
    ):
        EnvConfig(window=257)
    with pytest.raises(
        InvalidConfig, match=r"buy_small=0\.0 must be greater than 0\.0 and at most 1\.0"
    ):
        EnvConfig(buy_small=0.0)
    with pytest.raises(InvalidConfig, match=r"curriculum_min_share=1\.5 .*\[0, 1\]"):
        RewardConfig(curriculum_min_share=1.5)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fee_bps", 0.005),  # fees are whole parts per million: steps of 0.01 bps
        ("fee_bps", 12.345),
        ("buy_small", 0.1234567),
        ("sell_partial", 0.0000001),
        ("add_size", 0.3333333),
    ],
)
def test_fractions_finer_than_the_exact_grid_are_refused_not_rounded(
    field: str, value: float
) -> None:
    with pytest.raises(InvalidConfig, match=re.escape(f"{field}={value!r}")):
        kwargs: dict[str, Any] = {field: value}
        EnvConfig(**kwargs)


def test_fee_on_the_grid_is_held_exactly() -> None:
    assert EnvConfig(fee_bps=12.34).fee_ppm == 1_234
    assert EnvConfig(fee_bps=0.01).fee_ppm == 1
    assert Machine(EnvConfig(fee_bps=0.01)).fee(1_000_000) == 1


def test_valid_extremes_are_accepted() -> None:
    cfg = EnvConfig(
        cash=1,
        lot_size=1,
        fee_bps=1000,
        buy_small=1.0,
        buy_medium=0.000001,
        episode_length=1,
        window=256,
        minor_unit=1e-8,
    )
    assert (cfg.cash, cfg.fee_ppm, cfg.window) == (1, 100_000, 256)
    assert EnvConfig(cash=10**15, episode_length=1_000_000, fee_bps=0).fee_ppm == 0


# --------------------------------------------------------------------------- actions in configs


def test_disabled_actions_accept_names_ids_and_members_sorted_and_unique() -> None:
    cfg = EnvConfig(disabled_actions=["ADD_POSITION", 1, Action.ADD_POSITION, Action.SELL_ALL])  # type: ignore[arg-type]
    assert cfg.disabled_actions == (Action.BUY_SMALL, Action.SELL_ALL, Action.ADD_POSITION)
    assert all(type(a) is Action for a in cfg.disabled_actions)


@pytest.mark.parametrize("hold", ["HOLD", 0, Action.HOLD])
def test_hold_cannot_be_disabled(hold: Any) -> None:
    with pytest.raises(
        InvalidConfig, match=r"disabled_actions contains HOLD; HOLD is always valid"
    ):
        EnvConfig(disabled_actions=(hold, Action.SELL_ALL))


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("ADD_POSITION", r"disabled_actions='ADD_POSITION' must be a list of action names"),
        (5, r"disabled_actions=5 must be a list"),
        (["ADD_POSTION"], r"'ADD_POSTION', which is not an action.*Did you mean 'ADD_POSITION'\?"),
        ([7], r"disabled_actions contains 7; expected action names or ids 0\.\.6"),
        ([-1], r"disabled_actions contains -1"),
        ([True], r"disabled_actions contains True"),
        ([1.0], r"disabled_actions contains 1\.0"),
    ],
)
def test_disabled_actions_refuse_bad_entries(value: Any, pattern: str) -> None:
    with pytest.raises(InvalidConfig, match=pattern):
        EnvConfig(disabled_actions=value)


def test_curriculum_actions_refuse_unknown_names_with_suggestion() -> None:
    with pytest.raises(
        InvalidConfig,
        match=r"curriculum_actions contains 'SELL_PARTAL'.*Did you mean 'SELL_PARTIAL'\?",
    ):
        RewardConfig(curriculum_actions=("SELL_PARTAL",))  # type: ignore[arg-type]
    names_and_ids: Any = (5, "SELL_PARTIAL")  # documented: names, ids or members
    assert RewardConfig(curriculum_actions=names_and_ids).curriculum_actions == (
        Action.SELL_PARTIAL,
        Action.SELL_ALL,
    )


# --------------------------------------------------------------------------- from_dict / to_dict


@pytest.mark.parametrize(
    ("cls", "key", "near"),
    [
        (EnvConfig, "fee_bsp", "fee_bps"),
        (EnvConfig, "episode_lenght", "episode_length"),
        (EnvConfig, "disabled_action", "disabled_actions"),
        (RewardConfig, "failed_action_penalt", "failed_action_penalty"),
        (RewardConfig, "curriculum_min_shar", "curriculum_min_share"),
    ],
)
def test_from_dict_refuses_unknown_keys_and_suggests_the_near_miss(
    cls: Any, key: str, near: str
) -> None:
    pattern = rf"unknown {cls.__name__} field '{key}' in here.*Did you mean '{near}'\?"
    with pytest.raises(InvalidConfig, match=pattern):
        cls.from_dict({key: 1}, where="here")


def test_from_dict_validates_values_and_round_trips_through_to_dict() -> None:
    with pytest.raises(InvalidConfig, match=r"cash=-1"):
        EnvConfig.from_dict({"cash": -1})
    cfg = EnvConfig(
        cash=5_000, fee_bps=2.5, disabled_actions=(Action.ADD_POSITION,), episode_length=7
    )
    data = cfg.to_dict()
    assert data["disabled_actions"] == ["ADD_POSITION"]
    assert EnvConfig.from_dict(data) == cfg
    rcfg = RewardConfig(failed_action_penalty=-0.05, curriculum_min_share=0.05, diversity_bonus=0.1)
    assert RewardConfig.from_dict(rcfg.to_dict()) == rcfg


# --------------------------------------------------------------------------- frozen, replace


def test_configs_are_frozen_and_keyword_only() -> None:
    cfg = EnvConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.cash = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        RewardConfig().failed_action_penalty = -2.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        EnvConfig(1_000)  # type: ignore[misc]
    with pytest.raises(TypeError):
        RewardConfig(1.0)  # type: ignore[misc]
    assert hash(EnvConfig()) == hash(EnvConfig())  # usable as a cache key


def test_replace_changes_one_field_and_revalidates() -> None:
    cfg = EnvConfig(fee_bps=5)
    changed = dataclasses.replace(cfg, episode_length=50, disabled_actions=(Action.SELL_ALL,))
    assert (changed.episode_length, changed.fee_bps, changed.disabled_actions) == (
        50,
        5,
        (Action.SELL_ALL,),
    )
    assert cfg.episode_length == 500
    with pytest.raises(InvalidConfig, match=r"episode_length=0"):
        dataclasses.replace(cfg, episode_length=0)
    with pytest.raises(InvalidConfig, match=r"disabled_actions contains HOLD"):
        dataclasses.replace(cfg, disabled_actions=(Action.HOLD,))
    r = dataclasses.replace(RewardConfig(), failed_action_penalty=-0.05)
    assert r.failed_action_penalty == -0.05 and r.realized_pnl == 1.0


# --------------------------------------------------------------------------- warnings


def test_positive_failed_action_penalty_warns_at_the_callers_line() -> None:
    with pytest.warns(UserWarning, match=r"failed_action_penalty=0\.5 is positive") as record:
        RewardConfig(failed_action_penalty=0.5)
    assert len(record) == 1
    assert record[0].filename == __file__


def test_zero_or_negative_penalty_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RewardConfig(failed_action_penalty=0.0)
        RewardConfig(failed_action_penalty=-1.0)
        EnvConfig()


def test_is_pnl_is_true_only_for_pure_pnl_weights() -> None:
    assert RewardConfig().is_pnl
    assert RewardConfig(failed_action_penalty=-0.05).is_pnl  # the penalty only acts on rejections
    changes: tuple[dict[str, Any], ...] = (
        {"realized_pnl": 0.5},
        {"unrealized_pnl_change": 0.0},
        {"transaction_cost": 2.0},
        {"unrealized_pnl_level": 0.1},
        {"curriculum_min_share": 0.05},
        {"diversity_bonus": 0.1},
    )
    for change in changes:
        assert not RewardConfig(**change).is_pnl, change
