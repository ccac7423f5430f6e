"""The deterministic trading state machine, its reward shaper, markets and gymnasium env.

Public names live here; the machinery is in ``_``-prefixed modules.

Example:
    >>> import gymnasium as gym
    >>> import tradeguard.env
    >>> env = gym.make("tradeguard/Trading-v0", scenario="v10")
    >>> obs, info = env.reset(seed=0)
    >>> portfolio = gym.make("tradeguard/Portfolio-v0", scenario="long-short")  # a Box of target weights
"""

from __future__ import annotations

import gymnasium

from tradeguard.env._actions import ACTION_NAMES, N_ACTIONS, Action, RejectReason
from tradeguard.env._batch import MAX_EQUITY, MAX_POSITION, BatchEngine, EnvView, exactness_problem
from tradeguard.env._batch_lane import LANE_ID, BatchLaneEnv, make_batch_lane_env
from tradeguard.env._component_specs import load_component
from tradeguard.env._components import (
    CustomComponent,
    Step,
    check_components,
    rest_bound,
    reward_component,
)
from tradeguard.env._config import COMPONENT_NAMES, EnvConfig, RewardConfig
from tradeguard.env._market import MARKET_KINDS, Market, MarketKind, MarketSpec
from tradeguard.env._policies import (
    POLICY_SPECS,
    BuyAndNeverSellPolicy,
    ConstantPolicy,
    EpsilonHoldPolicy,
    HoldPolicy,
    MaskedRandomPolicy,
    Policy,
    RandomPolicy,
    parse_policy,
    run_episode,
)
from tradeguard.env._portfolio import (
    PORTFOLIO_COMPONENTS,
    PORTFOLIO_RULES,
    PortfolioConfig,
    PortfolioEnv,
    PortfolioMachine,
    PortfolioOutcome,
    PortfolioRule,
    format_portfolio_rules,
    make_portfolio_env,
    portfolio_scenario,
    portfolio_scenario_names,
)
from tradeguard.env._reward import POTENTIAL_BASED, RewardShaper, ShaperState, total_reward
from tradeguard.env._rules import (
    RULES,
    Condition,
    Effect,
    Machine,
    Outcome,
    PortfolioState,
    Rule,
    format_rules,
    initial_state,
    transition,
)
from tradeguard.env._scenarios import Scenario, load_scenario, scenario_names
from tradeguard.env._trading_env import TradingEnv, validate_action

__all__ = [
    "ACTION_NAMES",
    "COMPONENT_NAMES",
    "LANE_ID",
    "MARKET_KINDS",
    "MAX_EQUITY",
    "MAX_POSITION",
    "N_ACTIONS",
    "POLICY_SPECS",
    "PORTFOLIO_COMPONENTS",
    "PORTFOLIO_RULES",
    "POTENTIAL_BASED",
    "RULES",
    "Action",
    "BatchEngine",
    "BatchLaneEnv",
    "BuyAndNeverSellPolicy",
    "Condition",
    "ConstantPolicy",
    "CustomComponent",
    "Effect",
    "EnvConfig",
    "EnvView",
    "EpsilonHoldPolicy",
    "HoldPolicy",
    "Machine",
    "Market",
    "MarketKind",
    "MarketSpec",
    "MaskedRandomPolicy",
    "Outcome",
    "Policy",
    "PortfolioConfig",
    "PortfolioEnv",
    "PortfolioMachine",
    "PortfolioOutcome",
    "PortfolioRule",
    "PortfolioState",
    "RandomPolicy",
    "RejectReason",
    "RewardConfig",
    "RewardShaper",
    "Rule",
    "Scenario",
    "ShaperState",
    "Step",
    "TradingEnv",
    "TradingVecEnv",
    "check_components",
    "exactness_problem",
    "format_portfolio_rules",
    "format_rules",
    "initial_state",
    "load_component",
    "load_scenario",
    "make_batch_lane_env",
    "make_portfolio_env",
    "parse_policy",
    "portfolio_scenario",
    "portfolio_scenario_names",
    "rest_bound",
    "reward_component",
    "run_episode",
    "scenario_names",
    "total_reward",
    "transition",
    "validate_action",
]

ENV_ID = "tradeguard/Trading-v0"
if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="tradeguard.env._trading_env:TradingEnv")
PORTFOLIO_ID = "tradeguard/Portfolio-v0"
if PORTFOLIO_ID not in gymnasium.registry:
    gymnasium.register(id=PORTFOLIO_ID, entry_point="tradeguard.env._portfolio:PortfolioEnv")
if LANE_ID not in gymnasium.registry:
    gymnasium.register(id=LANE_ID, entry_point="tradeguard.env._batch_lane:BatchLaneEnv")


def __getattr__(name: str) -> object:
    # TradingVecEnv subclasses stable-baselines3's VecEnv (which imports torch): load on demand.
    if name == "TradingVecEnv":
        from tradeguard.env._vec_env import TradingVecEnv

        return TradingVecEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
