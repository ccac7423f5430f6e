"""The seed's versions as shipped scenarios, and scenario files written by users."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from tradeguard.env import (
    Action,
    EnvConfig,
    Market,
    MarketSpec,
    RewardConfig,
    Scenario,
    TradingEnv,
    load_scenario,
    scenario_names,
)
from tradeguard.errors import InvalidConfig

SHIPPED = ("default", "v10", "v10.1", "v10.2")


def test_the_seed_scenarios_are_shipped_as_plain_toml_files() -> None:
    names = scenario_names()
    assert set(SHIPPED) <= set(names) and list(names) == sorted(names)
    folder = resources.files("tradeguard.env").joinpath("scenarios")
    for name in names:
        text = folder.joinpath(f"{name}.toml").read_text()
        data = tomllib.loads(text)
        assert data["name"] == name and data["description"].strip()


@pytest.mark.parametrize("name", scenario_names())
def test_every_scenario_loads_and_runs(name: str) -> None:
    sc = load_scenario(name)
    assert isinstance(sc, Scenario) and sc.name == name
    assert isinstance(sc.env, EnvConfig) and isinstance(sc.reward, RewardConfig)
    assert isinstance(sc.market, MarketSpec)
    if name in SHIPPED:
        assert sc.env.episode_length == 500  # the seed's 500-step episodes
    env = TradingEnv(scenario=name)
    assert env.scenario.name == name
    env.reset(seed=0)
    for action in Action:
        env.step(action)
    assert len(env.trace) == 7


def test_v10_weak_penalty_and_epsilon_greedy() -> None:
    sc = load_scenario("v10")
    assert sc.reward.failed_action_penalty == -0.05
    assert sc.exploration == "epsilon-greedy:0.5:0.01"
    assert sc.reward.curriculum_min_share == 0.0
    assert sc.env.disabled_actions == ()


def test_v10_1_curriculum_numbers() -> None:
    r = load_scenario("v10.1").reward
    assert r.failed_action_penalty == -1.0
    assert r.curriculum_actions == (Action.SELL_PARTIAL, Action.SELL_ALL)
    assert r.curriculum_min_share == 0.05
    assert (r.curriculum_weight, r.curriculum_scale) == (-0.5, 5.0)
    assert r.curriculum_weight * r.curriculum_scale == -2.5
    assert load_scenario("v10.1").env.disabled_actions == ()


def test_v10_2_disables_add_position_without_curriculum() -> None:
    sc = load_scenario("v10.2")
    assert sc.env.disabled_actions == (Action.ADD_POSITION,)
    assert sc.reward.failed_action_penalty == -1.0
    assert sc.reward.curriculum_min_share == 0.0
    assert sc.exploration == "none"
    # Even in a profitable position, ADD_POSITION is rejected as DISABLED.
    env = TradingEnv(scenario="v10.2")
    prices = np.array([10_000, 11_000, 12_000] + [12_000] * 498)
    env.reset(seed=0, options={"market": Market(prices)})
    env.step(Action.BUY_SMALL)
    assert env.state.position * 11_000 > env.state.cost_basis
    assert not env.action_masks()[Action.ADD_POSITION]
    _, _, _, _, info = env.step(Action.ADD_POSITION)
    assert (info["record"].executed, info["record"].reason) == (Action.HOLD, "DISABLED")
    assert info["record"].components[4] == -1.0


def test_default_is_the_safe_pnl_reward() -> None:
    sc = load_scenario("default")
    assert sc.reward.is_pnl and sc.reward.failed_action_penalty == -1.0
    assert sc.env == EnvConfig() and sc.reward == RewardConfig()


@pytest.mark.parametrize("name", scenario_names())
def test_changes_rebuild_the_scenario(name: str) -> None:
    sc = load_scenario(name)
    again = Scenario.from_dict(json.loads(json.dumps(sc.changes())), where="replay")
    assert (again.env, again.reward, again.market) == (sc.env, sc.reward, sc.market)


# --------------------------------------------------------------------------- user files


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_user_toml_file_loads_by_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'name = "mine"\n[env]\ncash = 50_000\ndisabled_actions = ["SELL_ALL"]\n'
        '[reward]\nfailed_action_penalty = -0.5\n[market]\nkind = "trend"\n'
        '[training]\nexploration = "none"\n',
    )
    sc = load_scenario(path)
    assert sc.name == "mine"
    assert (sc.env.cash, sc.env.disabled_actions) == (50_000, (Action.SELL_ALL,))
    assert sc.reward.failed_action_penalty == -0.5 and sc.market.kind == "trend"
    assert load_scenario(str(path)) == sc
    unnamed = load_scenario(write(tmp_path, "[env]\ncash = 7\n", "other.toml"))
    assert unnamed.name.endswith("other.toml")


def test_a_user_json_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps({"reward": {"diversity_bonus": 0.1}}), "mine.json")
    assert load_scenario(path).reward.diversity_bonus == 0.1


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            "[rewrd]\nfailed_action_penalty = -1.0\n",
            r"unknown table or key 'rewrd'.*Did you mean 'reward'\?",
        ),
        ("[enviroment]\ncash = 5\n", r"unknown table or key 'enviroment'"),
        ("[env]\nfee_bsp = 5\n", r"'fee_bsp' in .*mine\.toml \[env\].*Did you mean 'fee_bps'\?"),
        (
            "[reward]\nfailed_action_penalt = -1.0\n",
            r"mine\.toml \[reward\].*Did you mean 'failed_action_penalty'\?",
        ),
        ("[market]\nvolatilty = 0.02\n", r"'volatilty' in .*mine\.toml \[market\].*Did you mean 'volatility'\?"),
        (
            '[training]\nexploraton = "none"\n',
            r"unknown \[training\] keys \['exploraton'\]; expected exploration",
        ),
    ],
)
def test_unknown_tables_and_fields_are_refused_with_the_near_miss(
    tmp_path: Path, text: str, pattern: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InvalidConfig, match=pattern) as info:
        load_scenario(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("[env]\ncash = -5\n", r"cash=-5"),
        ('[env]\ndisabled_actions = ["HOLD"]\n', r"HOLD is always valid"),
        ("[reward]\ncurriculum_min_share = 2.0\n", r"curriculum_min_share=2\.0"),
        ('[market]\nkind = "random-walk"\n', r"kind='random-walk'.*Did you mean 'random_walk'\?"),
        ("[env\ncash = 5\n", r"(?i)not valid toml: Expected ']'"),
    ],
)
def test_bad_values_in_a_file_are_refused(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(InvalidConfig, match=pattern):
        load_scenario(write(tmp_path, text))


def test_unknown_scenario_names_suggest_the_near_miss() -> None:
    with pytest.raises(
        InvalidConfig, match=r"scenario='v10.3' is neither a shipped scenario.*Did you mean"
    ):
        load_scenario("v10.3")
    with pytest.raises(InvalidConfig, match=r"Did you mean 'default'\?"):
        load_scenario("defalt")
    with pytest.raises(InvalidConfig, match=r"config file '.*missing\.toml' does not exist"):
        load_scenario("missing.toml")
    with pytest.raises(InvalidConfig, match=r"Did you mean 'v10\.2'\?"):
        TradingEnv(scenario="v10.22")
