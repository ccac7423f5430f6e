"""The policy audit: what a policy *does* over generated markets, and whether that is sane.

A policy (a tradeguard reference policy, a stable-baselines3 or sb3-contrib model,
or anything with the same ``act`` or ``predict`` method) plays episodes on markets
of several families (trends, crashes, flat prices, random walks). The audit reports,
per family and overall, the *predicted* and the *executed* action distributions side
by side, the rejection rate, the entropy of the executed actions, the trades and the
return, and checks every trace against the invariant catalog. A
:class:`PolicyContract` turns that into findings with stable kinds, and pass or fail:

- ``single-action-collapse``: one action dominates the predictions.
- ``rejection-collapse``: most predictions are rejected.
- ``phantom-activity``: the policy predicts trades and none executes (the seed's
  "all metrics zero and the only action is SELL_PARTIAL").
- ``masked-policy-predicts-invalid``: a mask-aware policy, given the mask, predicted
  an action the mask forbids.
- ``evaluated-without-masks``: the env has action masks and the policy can take them,
  but the evaluation did not pass them (sb3-contrib's ``predict()`` then silently
  samples from *all* actions).
- ``invariant-violation``: a trace broke an invariant of the catalog.

This module never imports stable-baselines3 or torch: models are duck-typed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tradeguard._episode import env_mask
from tradeguard._validation import check_int, suggest
from tradeguard.errors import InvalidConfig
from tradeguard.invariants._adapter import NativeAdapter, TraceAdapter
from tradeguard.invariants._check import check_trace
from tradeguard.invariants._model import Violation
from tradeguard.invariants.audit._policy_play import (
    _batch_engine,
    _describe,
    _play,
    _play_batch,
    _Player,
    _PolicyInfo,
    _predicts_batches,
    describe_policy,
)
from tradeguard.invariants.audit._policy_report import (
    FINDING_KINDS,
    FamilyReport,
    Finding,
    FindingKind,
    PolicyAuditReport,
    PolicyContract,
    _Tally,
    collapse_findings,
)
from tradeguard.limits import MAX_AUDIT_EPISODES
from tradeguard.trace import Trace, TraceMeta

__all__ = [
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
]

AUDIT_FAMILIES: tuple[str, ...] = ("trend", "crash", "flat", "random_walk")
"""Market families an audit trades by default (``gap`` is available too)."""

_ALL_FAMILIES = ("trend", "crash", "flat", "random_walk", "gap")

MAX_EPISODES = MAX_AUDIT_EPISODES
"""The most episodes per market family one audit plays (:data:`tradeguard.limits.MAX_AUDIT_EPISODES`)."""

# --------------------------------------------------------------------------- markets
def audit_markets(
    families: Sequence[str] = AUDIT_FAMILIES,
    *,
    episodes: int = 3,
    length: int = 501,
    seed: int = 0,
) -> dict[str, list[Any]]:
    """The markets an audit trades: ``episodes`` per family, each of ``length`` prices.

    Each market's parameters are drawn from a RNG seeded with ``(seed, family)``, so the
    same arguments always give the same markets. Families: ``trend`` (drift 0.1% to 0.4%
    per step, up or down), ``crash`` (a walk, then one drop of 20% to 50%), ``flat`` (one
    price), ``random_walk`` (drift within +-0.1%, volatility 0.5% to 2% per step) and
    ``gap`` (a walk with one jump of 10% to 40%, up or down). Start prices are 20.00 to
    200.00, so a default account (10,000.00) can always buy.

    Raises:
        InvalidConfig: an unknown family, ``episodes < 1`` or ``length < 2``.

    Example:
        >>> m = audit_markets(["flat"], episodes=1, length=4, seed=0)["flat"][0]
        >>> len(set(m.prices.tolist()))
        1
    """
    from tradeguard.env import MarketSpec

    check_int("episodes", episodes, min_value=1, max_value=MAX_EPISODES)
    check_int("length", length, min_value=2)
    out: dict[str, list[Any]] = {}
    for family in families:
        if family not in _ALL_FAMILIES:
            raise InvalidConfig(
                f"family {family!r} is not a market family; expected some of "
                f"{', '.join(_ALL_FAMILIES)}.{suggest(str(family), _ALL_FAMILIES)}"
            )
        rng = np.random.default_rng([seed, _ALL_FAMILIES.index(family)])
        markets = []
        for _ in range(episodes):
            start = round(float(rng.uniform(20.0, 200.0)), 2)
            if family == "trend":
                sign = 1.0 if rng.random() < 0.5 else -1.0
                spec = MarketSpec(
                    kind="trend",
                    start_price=start,
                    drift=round(sign * float(rng.uniform(0.001, 0.004)), 6),
                    volatility=round(float(rng.uniform(0.002, 0.01)), 6),
                )
            elif family == "crash":
                spec = MarketSpec(
                    kind="crash",
                    start_price=start,
                    drift=round(float(rng.uniform(0.0, 0.001)), 6),
                    volatility=round(float(rng.uniform(0.005, 0.015)), 6),
                    shock=round(float(rng.uniform(0.2, 0.5)), 4),
                )
            elif family == "gap":
                spec = MarketSpec(
                    kind="gap",
                    start_price=start,
                    volatility=round(float(rng.uniform(0.005, 0.015)), 6),
                    shock=round(float(rng.uniform(0.1, 0.4)), 4),
                )
            elif family == "flat":
                spec = MarketSpec(kind="flat", start_price=start)
            else:
                spec = MarketSpec(
                    kind="random_walk",
                    start_price=start,
                    drift=round(float(rng.uniform(-0.001, 0.001)), 6),
                    volatility=round(float(rng.uniform(0.005, 0.02)), 6),
                )
            markets.append(spec.generate(length, rng))
        out[family] = markets
    return out


# --------------------------------------------------------------------------- the audit
def audit_policy(
    policy: Any,
    *,
    scenario: Any = None,
    env: Any = None,
    adapter: TraceAdapter | None = None,
    episodes: int = 3,
    families: Sequence[str] = AUDIT_FAMILIES,
    markets: Mapping[str, Iterable[Any]] | None = None,
    seed: int = 0,
    deterministic: bool = True,
    use_masks: bool = True,
    mask_aware: bool | None = None,
    episode_length: int | None = None,
    contract: PolicyContract | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> PolicyAuditReport:
    """Play ``policy`` over generated markets and judge what it does against a contract.

    Args:
        policy: A tradeguard policy (``act(observation, mask, rng)``, for example
            ``parse_policy("constant:SELL_PARTIAL")``) or a model with
            ``predict(observation, state=..., episode_start=..., deterministic=...)`` and,
            if mask-aware, ``action_masks=`` (stable-baselines3 ``PPO``, sb3-contrib
            ``MaskablePPO``, ``tradeguard.rl.load(path)``).
        scenario: Scenario name, file or :class:`~tradeguard.env.Scenario` of the env the
            audit builds (default ``"default"``). Ignored when ``env`` is given.
        env: An env to audit on instead (any gymnasium env; pair another env with its
            ``adapter``). It must accept the audit's markets through
            ``adapter.reset_options(market)``, or the env's own markets are used.
        adapter: Turns the env's steps into trace records (default: tradeguard's own).
        episodes: Episodes per market family, >= 1.
        progress: Called as ``progress(done, total, label)`` before each episode (the CLI
            draws it on stderr when attached to a terminal).
        families: Market families to trade (see :func:`audit_markets`).
        markets: Your own markets per family instead (``{"crash": [Market, ...]}``), for
            example drawn from ``tradeguard.strategies.markets()``.
        seed: Seeds the markets, the env resets and the reference policies' RNG.
            Stochastic model predictions draw from torch's global RNG: seed it yourself.
        deterministic: Passed to ``predict`` (models only). With ``True``, a
            stable-baselines3 model and the env the audit builds, each family's episodes
            are stepped at once by a :class:`~tradeguard.env.BatchEngine` (the same
            traces and report as one episode at a time; see docs/batch-engine.md).
        use_masks: Pass the env's action mask to the policy at every step. ``False``
            reproduces an evaluator that forgets them (``evaluated-without-masks``).
        mask_aware: Override whether the policy claims to respect its mask.
        episode_length: Steps per episode of the env the audit builds (default: the
            scenario's). Markets have ``episode_length + 1`` prices.
        contract: Thresholds deciding pass/fail (default :class:`PolicyContract`).

    Returns:
        The :class:`PolicyAuditReport`; ``report.passed`` is the verdict.

    Raises:
        InvalidConfig: a bad argument (unknown family, ``episodes < 1``, not a policy).

    Example:
        >>> from tradeguard.env import parse_policy
        >>> report = audit_policy(parse_policy("constant:SELL_PARTIAL"), scenario="v10",
        ...                       episodes=1, episode_length=50)
        >>> report.passed, sorted(report.kinds())
        (False, ['phantom-activity', 'rejection-collapse', 'single-action-collapse'])
        >>> report.overall.action_distribution_executed["HOLD"]
        1.0
    """
    check_int("episodes", episodes, min_value=1, max_value=MAX_EPISODES)
    check_int("seed", seed, min_value=0)
    if episode_length is not None:
        check_int("episode_length", episode_length, min_value=1)
    contract = contract if contract is not None else PolicyContract()
    if not isinstance(contract, PolicyContract):
        raise InvalidConfig(f"contract={contract!r} must be a PolicyContract.")
    info = _describe(policy, mask_aware)
    # tradeguard's own env and a model that predicts for a batch of observations: each
    # family's episodes are stepped at once by the BatchEngine (the same traces).
    batched = env is None and adapter is None and deterministic and _predicts_batches(policy)
    adapter = adapter if adapter is not None else NativeAdapter()
    if env is None:
        env, scenario_name = _default_env(scenario, episode_length)
    else:
        base = getattr(env, "unwrapped", env)
        sc = getattr(base, "scenario", None)
        scenario_name = str(getattr(sc, "name", type(base).__name__))
    length = _episode_length(env, episode_length)
    if markets is None:
        chosen: dict[str, list[Any]] = audit_markets(families, episodes=episodes, length=length + 1, seed=seed)
    else:
        chosen = {str(k): list(v) for k, v in markets.items()}
        if not chosen or not all(chosen.values()):
            raise InvalidConfig("markets= must map at least one family to a non-empty list of markets.")

    env_has_masks = env_mask(env) is not None
    player = _Player(policy, info, deterministic=deterministic, pass_masks=use_masks and env_has_masks)
    names: tuple[str, ...] | None = None
    tallies: list[_Tally] = []
    violations: list[tuple[str, Violation]] = []
    traces: list[Trace] = []
    n_episodes = sum(len(list(m)) for m in chosen.values())
    started = 0
    for fi, (family, family_markets) in enumerate(chosen.items()):
        tally: _Tally | None = None
        played: list[tuple[Trace, int]] | None = None
        if batched:
            seeds = [seed * 1_000_003 + fi * 10_007 + ei for ei in range(len(family_markets))]
            started_batch = _batch_engine(env, family_markets, seeds)
            if started_batch is not None:
                if progress is not None:
                    for ei in range(len(family_markets)):
                        progress(started, n_episodes, f"{family} episode {ei + 1}")
                        started += 1
                played = _play_batch(*started_batch, player, length)
        for ei, market in enumerate(family_markets):
            if played is not None:
                trace, invalid = played[ei]
            else:
                if progress is not None:
                    progress(started, n_episodes, f"{family} episode {ei + 1}")
                    started += 1
                options = adapter.reset_options(market)
                episode_seed = seed * 1_000_003 + fi * 10_007 + ei
                rng = np.random.default_rng([seed, fi, ei, 0x9A])
                trace, invalid = _play(
                    env,
                    adapter,
                    player,
                    seed=episode_seed,
                    options=options,
                    rng=rng,
                    max_steps=length,
                )
            names = names or trace.meta.action_names
            tally = tally or _Tally.empty(family, names)
            found = check_trace(trace)
            violations.extend((family, v) for v in found)
            tally.add(trace, invalid, len(found))
            traces.append(trace)
        assert tally is not None
        tallies.append(tally)

    assert names is not None
    total = _Tally.empty("all", names)
    for t in tallies:
        total.merge(t)
    overall = total.report()
    hold = _hold_index(traces[0].meta)
    findings = _findings(
        overall,
        [t.report() for t in tallies],
        hold=hold,
        contract=contract,
        info=info,
        env_has_masks=env_has_masks,
        masks_passed=player.pass_masks,
        violations=violations,
    )
    return PolicyAuditReport(
        policy=info.name,
        scenario=scenario_name,
        seed=seed,
        deterministic=deterministic,
        env_supports_masks=env_has_masks,
        masks_passed=player.pass_masks,
        policy_takes_masks=info.takes_masks,
        policy_respects_masks=info.respects_masks,
        families=tuple(t.report() for t in tallies),
        overall=overall,
        findings=tuple(findings),
        violations=tuple(v for _, v in violations),
        contract=contract,
        traces=tuple(traces),
    )


def _default_env(scenario: Any, episode_length: int | None) -> tuple[Any, str]:
    import dataclasses

    from tradeguard.env import Scenario, TradingEnv, load_scenario

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario or "default")
    if episode_length is not None:
        sc = dataclasses.replace(sc, env=dataclasses.replace(sc.env, episode_length=episode_length))
    return TradingEnv(scenario=sc), sc.name


def _episode_length(env: Any, given: int | None) -> int:
    config = getattr(getattr(env, "unwrapped", env), "config", None)
    length = getattr(config, "episode_length", None)
    if isinstance(length, int):
        return length
    return given if given is not None else 500


def _hold_index(meta: TraceMeta) -> int:
    return meta.action_kinds.index("hold") if "hold" in meta.action_kinds else 0


def _findings(
    overall: FamilyReport,
    families: list[FamilyReport],
    *,
    hold: int,
    contract: PolicyContract,
    info: _PolicyInfo,
    env_has_masks: bool,
    masks_passed: bool,
    violations: list[tuple[str, Violation]],
) -> list[Finding]:
    out: list[Finding] = []
    ignore = set(contract.ignore)

    def add(kind: FindingKind, message: str, family: str | None = None) -> None:
        out.append(Finding(kind=kind, message=message, family=family, counts=kind not in ignore))

    out.extend(
        Finding(kind=kind, message=message, counts=kind not in ignore)
        for kind, message in collapse_findings(
            overall.action_distribution_predicted,
            overall.action_distribution_executed,
            rejection_rate=overall.rejection_rate,
            trades=overall.trades,
            steps=overall.steps,
            hold_name=list(overall.action_distribution_predicted)[hold],
            contract=contract,
            per_family={f.family: f.trades for f in families},
        )
    )
    if (
        contract.max_invalid_masked is not None
        and masks_passed
        and info.respects_masks
        and overall.invalid_predictions > contract.max_invalid_masked
    ):
        where = ", ".join(f"{f.family} {f.invalid_predictions}" for f in families if f.invalid_predictions)
        add(
            "masked-policy-predicts-invalid",
            f"{info.name} was given the action mask and claims to respect it, yet "
            f"{overall.invalid_predictions} of {overall.steps} predictions were actions the mask "
            f"forbade ({where}); limit {contract.max_invalid_masked}",
        )
    if contract.require_masks and env_has_masks and not masks_passed and info.takes_masks:
        add(
            "evaluated-without-masks",
            f"the env provides action masks and {info.name} accepts them, but the evaluation did not "
            "pass them: sb3-contrib's predict() without action_masks= samples from all actions, "
            "so this measures a different policy than the one trained with masks "
            f"({overall.rejection_rate:.1%} of predictions rejected, {overall.invalid_predictions} "
            "forbidden by the mask)",
        )
    if contract.require_invariants:
        for family, v in violations:
            add("invariant-violation", f"{family}: {v.headline()}", family)
    return out
