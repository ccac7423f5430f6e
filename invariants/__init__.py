"""Invariants over traces, the checkers that run them, and the env contract.

Every invariant speaks only the trace model (:mod:`tradeguard.trace`), never env
internals: that is what makes the catalog pluggable into any trading env.

Example:
    >>> from tradeguard.env import TradingEnv, parse_policy, run_episode
    >>> from tradeguard.invariants import check_trace
    >>> check_trace(run_episode(TradingEnv(), parse_policy("random"), seed=1))
    []
"""

from __future__ import annotations

from tradeguard.invariants._adapter import (
    ADAPTERS,
    GymAdapter,
    NativeAdapter,
    StepData,
    TraceAdapter,
    action_id,
    adapter_for,
    env_mask,
    get_adapter,
    partial_record,
)
from tradeguard.invariants._anytrading import (
    AnyTradingAdapter,
    AnyTradingMarketEnv,
    make_forex_env,
    make_stocks_env,
)
from tradeguard.invariants._catalog import CATALOG, REL_TOL, get_invariant, invariant_ids
from tradeguard.invariants._check import (
    InvariantResult,
    assert_trace,
    check_reported_metrics,
    check_trace,
    evaluate_trace,
    format_steps,
    replay_command,
    trace_invariants,
)
from tradeguard.invariants._contract import (
    BAD_ACTIONS,
    CONTRACT_CHECKS,
    EnvFactory,
    MaskedPlan,
    RecordedEpisode,
    check_action_range_enforced,
    check_env_contract,
    check_observation_in_space,
    check_replay_determinism,
    check_returned_data_not_reused,
    check_step_after_end_refused,
    record_episode,
)
from tradeguard.invariants._database import resolve_database
from tradeguard.invariants._gate import (
    DEFAULT_EXAMPLES,
    DEFAULT_MAX_STEPS,
    DEFAULT_TIMEOUT,
    CatalogReport,
    Counterexample,
    InvariantReport,
    check_trading_env,
)
from tradeguard.invariants._gym_trading_env import (
    GymTradingEnvAdapter,
    GymTradingEnvMarketEnv,
    make_trading_env,
)
from tradeguard.invariants._model import Context, Family, Invariant, Scope, Status, Violation
from tradeguard.invariants._monitor import InvariantMonitor
from tradeguard.invariants._oracle import (
    DEFAULT_MAX_NODES,
    MAX_HORIZON,
    Objective,
    OptimalPlan,
    Oracle,
    Rollout,
    rollout,
)
from tradeguard.invariants._policy_audit import (
    AUDIT_FAMILIES,
    FINDING_KINDS,
    FamilyReport,
    Finding,
    FindingKind,
    PolicyAuditReport,
    PolicyContract,
    audit_markets,
    audit_policy,
    collapse_findings,
    describe_policy,
)
from tradeguard.invariants._profiles import PROFILES, GateProfile, get_profile
from tradeguard.invariants._reference_policies import (
    AlwaysHold,
    BuyAndNeverSell,
    EpsilonHold,
    ReferencePolicy,
    Spam,
    UniformRandom,
    parse_reference,
    play_reference,
    play_references,
    reference_policies,
)
from tradeguard.invariants._reward_audit import (
    DEFAULT_AUDIT_BUDGET,
    MAX_AUDIT_HORIZON,
    REWARD_FINDING_KINDS,
    REWARD_SEVERITY,
    WEAK_PENALTY_RATIO,
    BaselineComparison,
    RewardAuditReport,
    RewardComponent,
    RewardCounterexample,
    RewardFinding,
    assert_reward_sound,
    audit_reward,
    component_table,
    penalty_strength,
)

__all__ = [
    "ADAPTERS",
    "DEFAULT_TIMEOUT",
    "AnyTradingAdapter",
    "AnyTradingMarketEnv",
    "GymAdapter",
    "GymTradingEnvAdapter",
    "GymTradingEnvMarketEnv",
    "action_id",
    "adapter_for",
    "get_adapter",
    "partial_record",
    "make_forex_env",
    "make_stocks_env",
    "make_trading_env",
    "DEFAULT_AUDIT_BUDGET",
    "DEFAULT_MAX_NODES",
    "MAX_AUDIT_HORIZON",
    "MAX_HORIZON",
    "REWARD_FINDING_KINDS",
    "REWARD_SEVERITY",
    "WEAK_PENALTY_RATIO",
    "AlwaysHold",
    "BaselineComparison",
    "BuyAndNeverSell",
    "EpsilonHold",
    "Objective",
    "OptimalPlan",
    "Oracle",
    "ReferencePolicy",
    "RewardAuditReport",
    "RewardComponent",
    "RewardCounterexample",
    "RewardFinding",
    "Rollout",
    "Spam",
    "UniformRandom",
    "assert_reward_sound",
    "audit_reward",
    "component_table",
    "parse_reference",
    "penalty_strength",
    "play_reference",
    "play_references",
    "reference_policies",
    "rollout",
    "AUDIT_FAMILIES",
    "FINDING_KINDS",
    "FamilyReport",
    "Finding",
    "FindingKind",
    "PolicyAuditReport",
    "PolicyContract",
    "audit_markets",
    "audit_policy",
    "collapse_findings",
    "describe_policy",
    "BAD_ACTIONS",
    "CATALOG",
    "CONTRACT_CHECKS",
    "DEFAULT_EXAMPLES",
    "DEFAULT_MAX_STEPS",
    "PROFILES",
    "CatalogReport",
    "Counterexample",
    "GateProfile",
    "InvariantReport",
    "MaskedPlan",
    "check_trading_env",
    "get_profile",
    "invariant_suite",
    "resolve_database",
    "REL_TOL",
    "Context",
    "EnvFactory",
    "Family",
    "Invariant",
    "InvariantMonitor",
    "InvariantResult",
    "NativeAdapter",
    "RecordedEpisode",
    "Scope",
    "Status",
    "StepData",
    "TraceAdapter",
    "Violation",
    "assert_trace",
    "check_action_range_enforced",
    "check_env_contract",
    "check_observation_in_space",
    "check_replay_determinism",
    "check_reported_metrics",
    "check_returned_data_not_reused",
    "check_step_after_end_refused",
    "check_trace",
    "env_mask",
    "evaluate_trace",
    "format_steps",
    "get_invariant",
    "invariant_ids",
    "record_episode",
    "replay_command",
    "trace_invariants",
]


def __getattr__(name: str) -> object:
    # The pytest helper imports pytest: load it only when asked for.
    if name == "invariant_suite":
        from tradeguard.invariants._pytest_plugin import invariant_suite

        return invariant_suite
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
