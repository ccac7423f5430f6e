"""Audits: what a reward makes optimal before training, and what a policy does after.

- :func:`audit_reward` / :func:`assert_reward_sound`: the exact optimal-policy
  :class:`Oracle` over short markets, searched by Hypothesis for reward shapings whose
  optimum is degenerate (rejections in the optimum, idle or never-close optima, PnL regret);
  for any other replay-deterministic env, the same findings by a black-box search over
  action sequences through its adapter (:class:`EnvRewardAuditReport`).
- :func:`audit_policy`: a policy (a trained SB3 model or a reference policy) run over
  market families; predicted vs executed distributions, collapse, invariant violations.
- Reference policies (:func:`reference_policies`): hold, constant, buy-and-never-sell,
  uniform random, epsilon-hold, the baselines the audits compare against
  (:mod:`tradeguard.env`'s policies; ``AlwaysHold``, ``Spam``, ``UniformRandom``,
  ``EpsilonHold``, ``BuyAndNeverSell``, ``ReferencePolicy`` and ``parse_reference`` are
  their former names here).

This subpackage drives tradeguard's own env (:mod:`tradeguard.env`), so
:mod:`tradeguard.invariants` imports it only when asked for.

Example:
    >>> from tradeguard.invariants.audit import audit_reward
    >>> audit_reward("v10.2", budget=20, seed=0).passed
    True
"""

from __future__ import annotations

from tradeguard.invariants.audit._allocations import (
    AllocationAuditReport,
    InstrumentStats,
    allocation_collapse,
    audit_allocations,
)
from tradeguard.invariants.audit._baseline import ChangedOptimum, load_spec
from tradeguard.invariants.audit._blackbox import (
    BLACKBOX_FINDING_KINDS,
    EnvBaselineComparison,
    EnvCounterexample,
    EnvRewardAuditReport,
    EnvRewardFinding,
    EnvRollout,
)
from tradeguard.invariants.audit._entry import assert_reward_sound, audit_reward
from tradeguard.invariants.audit._oracle import (
    DEFAULT_MAX_NODES,
    MAX_HORIZON,
    Objective,
    OptimalPlan,
    Oracle,
)
from tradeguard.invariants.audit._policy_audit import (
    AUDIT_FAMILIES,
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
from tradeguard.invariants.audit._policy_audit import FINDING_KINDS as POLICY_FINDING_KINDS
from tradeguard.invariants.audit._reference_policies import (
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
from tradeguard.invariants.audit._reward_audit import (
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
    component_table,
    default_max_examples,
    penalty_strength,
)
from tradeguard.invariants.audit._rollout import Rollout, rollout

__all__ = [
    "AUDIT_FAMILIES",
    "BLACKBOX_FINDING_KINDS",
    "DEFAULT_AUDIT_BUDGET",
    "DEFAULT_MAX_NODES",
    "MAX_AUDIT_HORIZON",
    "MAX_HORIZON",
    "POLICY_FINDING_KINDS",
    "REWARD_FINDING_KINDS",
    "REWARD_SEVERITY",
    "WEAK_PENALTY_RATIO",
    "AllocationAuditReport",
    "AlwaysHold",
    "BaselineComparison",
    "BuyAndNeverSell",
    "ChangedOptimum",
    "EnvBaselineComparison",
    "EnvCounterexample",
    "EnvRewardAuditReport",
    "EnvRewardFinding",
    "EnvRollout",
    "EpsilonHold",
    "FamilyReport",
    "Finding",
    "FindingKind",
    "InstrumentStats",
    "Objective",
    "OptimalPlan",
    "Oracle",
    "PolicyAuditReport",
    "PolicyContract",
    "ReferencePolicy",
    "RewardAuditReport",
    "RewardComponent",
    "RewardCounterexample",
    "RewardFinding",
    "Rollout",
    "Spam",
    "UniformRandom",
    "allocation_collapse",
    "assert_reward_sound",
    "audit_allocations",
    "audit_markets",
    "audit_policy",
    "audit_reward",
    "collapse_findings",
    "component_table",
    "default_max_examples",
    "describe_policy",
    "load_spec",
    "parse_reference",
    "penalty_strength",
    "play_reference",
    "play_references",
    "reference_policies",
    "rollout",
]
