"""``audit_reward`` and ``assert_reward_sound`` for every target: tradeguard's env or any env.

A scenario, a reward config, or a factory of tradeguard's own ``TradingEnv`` is audited
by the exact oracle (:mod:`._reward_audit`); a factory of any other env, or any factory
given with an ``adapter``, by the black-box search (:mod:`._blackbox`). One entry point,
so that a test reads the same whichever env it guards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, overload

from tradeguard._validation import suggest
from tradeguard.env import EnvConfig, RewardConfig, Scenario
from tradeguard.errors import InvalidConfig, InvariantViolation
from tradeguard.invariants._adapter import TraceAdapter
from tradeguard.invariants.audit import _reward_audit
from tradeguard.invariants.audit._baseline import (
    BaselineSpec,
    is_env_factory,
    load_spec,
    scenario_of_factory,
)
from tradeguard.invariants.audit._blackbox import (
    DEFAULT_HORIZON,
    EnvRewardAuditReport,
    audit_env_reward,
)
from tradeguard.invariants.audit._reward_audit import (
    DEFAULT_AUDIT_BUDGET,
    REWARD_FINDING_KINDS,
    WEAK_PENALTY_RATIO,
    RewardAuditReport,
)

__all__ = ["assert_reward_sound", "audit_reward"]

RewardTarget = Scenario | str | RewardConfig | tuple[EnvConfig, RewardConfig]


@overload
def audit_reward(
    scenario_or_configs: RewardTarget,
    *,
    adapter: None = None,
    baseline: BaselineSpec | None = None,
    budget: float = DEFAULT_AUDIT_BUDGET,
    seed: int | None = 0,
    max_examples: int | None = None,
    horizon: tuple[int, int] | int | None = None,
    max_move_bps: int = 500,
    fuzz: Mapping[str, tuple[float, float]] | None = None,
    pnl_tolerance: float = 0.01,
    weak_penalty_ratio: float = WEAK_PENALTY_RATIO,
    progress: Callable[[int, int, str], None] | None = None,
    **blackbox: Any,
) -> RewardAuditReport: ...
@overload
def audit_reward(
    scenario_or_configs: Callable[[], Any],
    *,
    adapter: TraceAdapter | str | None = None,
    baseline: BaselineSpec | None = None,
    budget: float = DEFAULT_AUDIT_BUDGET,
    seed: int | None = 0,
    max_examples: int | None = None,
    horizon: tuple[int, int] | int | None = None,
    max_move_bps: int = 500,
    fuzz: Mapping[str, tuple[float, float]] | None = None,
    pnl_tolerance: float = 0.01,
    weak_penalty_ratio: float = WEAK_PENALTY_RATIO,
    progress: Callable[[int, int, str], None] | None = None,
    **blackbox: Any,
) -> RewardAuditReport | EnvRewardAuditReport: ...
def audit_reward(
    scenario_or_configs: RewardTarget | Callable[[], Any],
    *,
    adapter: TraceAdapter | str | None = None,
    baseline: BaselineSpec | None = None,
    budget: float = DEFAULT_AUDIT_BUDGET,
    seed: int | None = 0,
    max_examples: int | None = None,
    horizon: tuple[int, int] | int | None = None,
    max_move_bps: int = 500,
    fuzz: Mapping[str, tuple[float, float]] | None = None,
    pnl_tolerance: float = 0.01,
    weak_penalty_ratio: float = WEAK_PENALTY_RATIO,
    progress: Callable[[int, int, str], None] | None = None,
    **blackbox: Any,
) -> RewardAuditReport | EnvRewardAuditReport:
    """Audit a reward: search markets where what it makes optimal is degenerate.

    Args:
        scenario_or_configs: What to audit. tradeguard's env, by the exact oracle: a
            :class:`~tradeguard.env.Scenario`, a shipped scenario name (``"v10.1"``) or file, a
            :class:`~tradeguard.env.RewardConfig`, an ``(EnvConfig, RewardConfig)`` pair, or a
            zero-argument factory returning a ``TradingEnv``. Any other env, by the black-box
            search: a zero-argument factory returning it (see ``adapter``).
        adapter: The env's trace adapter (an object or a built-in adapter's name). Given, the
            factory is audited as a black box even when it makes tradeguard's env.
        baseline: The reward this one replaces: for tradeguard's env a scenario, config, reward
            component(s) on the same env or a factory (see :mod:`._baseline`); for a black-box
            env a second factory. ``"module:name"`` names either.
        budget: Seconds the audit may take.
        seed: Seed of the search. ``None``: random.
        max_examples: Markets to generate (default: 30 per second of budget).
        horizon: Market lengths in steps: ``(lo, hi)`` for tradeguard's env (default ``(2, 6)``);
            the steps searched per market for a black-box env (default 8).
        max_move_bps: Largest price move per step, in basis points.
        fuzz: Reward fields drawn per example (tradeguard's env only).
        pnl_tolerance: PnL shortfall, in percent of starting cash, that counts as regret.
        weak_penalty_ratio: ``weak-penalty`` threshold (tradeguard's env only).
        progress: Called as ``progress(done, total, label)`` as the oracle audit goes
            (tradeguard's env only; the command line draws it on one line).
        **blackbox: Further options of the black-box search (``search``, ``max_sequences``,
            ``beam_width``, ``max_states``, ``name``): see
            :func:`~tradeguard.invariants.audit._blackbox.audit_env_reward`.

    Returns:
        A :class:`RewardAuditReport` (tradeguard's env) or an :class:`EnvRewardAuditReport`
        (black box); both have ``passed``, ``kinds``, ``finding(kind)``, ``format()``, ``as_dict()``.

    Raises:
        InvalidConfig: a bad argument, with what was expected.

    Example:
        >>> audit_reward("v10.1", budget=5, max_examples=30).passed
        False
    """
    target: Any = scenario_or_configs
    if adapter is not None or is_env_factory(target):
        if not callable(target) or not is_env_factory(target):
            raise InvalidConfig(
                f"adapter= is for an env factory (the black-box audit); {type(target).__name__} {target!r} is "
                "tradeguard's env configuration, which the exact oracle audits: leave adapter out."
            )
        native = scenario_of_factory(target, what="the factory") if adapter is None else None
        if native is None:
            if fuzz:
                raise InvalidConfig("fuzz= draws tradeguard's reward fields; a black-box env has none. Leave it out.")
            if isinstance(baseline, str) and ":" in baseline:
                baseline = load_spec(baseline)
            if baseline is not None and not is_env_factory(baseline):
                raise InvalidConfig(
                    f"baseline={baseline!r}: a black-box env's baseline is a second env factory (the env before "
                    "the change), a zero-argument callable returning an env, or 'module:factory'."
                )
            return audit_env_reward(
                target,
                adapter=adapter,
                baseline=baseline,  # type: ignore[arg-type]
                budget=budget,
                seed=seed,
                max_examples=max_examples,
                horizon=DEFAULT_HORIZON if horizon is None else horizon,
                max_move_bps=max_move_bps,
                pnl_tolerance=pnl_tolerance,
                **blackbox,
            )
        target = native
    if blackbox:
        raise InvalidConfig(
            f"{', '.join(sorted(blackbox))}: options of the black-box search; tradeguard's env is audited by the "
            "exact oracle, which takes none of them."
        )
    if isinstance(horizon, int):
        raise InvalidConfig(
            f"horizon={horizon!r}: tradeguard's env is audited on markets of several lengths; give a pair "
            f"(shortest, longest), e.g. (2, {horizon})."
        )
    # Looked up on the module at call time, so that a test may stand in for the oracle audit.
    return _reward_audit.audit_reward(
        target,
        baseline=baseline,
        budget=budget,
        seed=seed,
        max_examples=max_examples,
        horizon=(2, 6) if horizon is None else horizon,
        max_move_bps=max_move_bps,
        fuzz=fuzz,
        pnl_tolerance=pnl_tolerance,
        weak_penalty_ratio=weak_penalty_ratio,
        progress=progress,
    )


def assert_reward_sound(
    scenario_or_configs: RewardTarget | Callable[[], Any],
    *,
    allow: Iterable[str] = (),
    **kwargs: Any,
) -> RewardAuditReport | EnvRewardAuditReport:
    """Audit a reward (see :func:`audit_reward`) and raise when it has an error-severity finding.

    One line in a test guards a reward change before any training run:
    ``assert_reward_sound(new_reward, baseline=old_reward)``.

    Args:
        scenario_or_configs: As for :func:`audit_reward`.
        allow: Finding kinds to accept (reported, but not raised).
        **kwargs: Passed to :func:`audit_reward` (``adapter``, ``baseline``, ``budget``, ``seed``...).

    Returns:
        The report, when it passes.

    Raises:
        InvariantViolation: an error-severity finding not in ``allow``; the message is the
            report, with each counterexample (and the baseline comparison). It is an
            ``AssertionError``.

    Example:
        >>> assert_reward_sound("default", budget=5, max_examples=20).passed
        True
    """
    allowed = set(allow)
    for k in allowed:
        if k not in REWARD_FINDING_KINDS:
            raise InvalidConfig(
                f"allow contains {k!r}, which is not a finding kind; expected some of "
                f"{', '.join(REWARD_FINDING_KINDS)}.{suggest(k, REWARD_FINDING_KINDS)}"
            )
    report = audit_reward(scenario_or_configs, **kwargs)
    bad = [f for f in report.errors if f.kind not in allowed]
    if bad:
        raise InvariantViolation(f"reward audit failed: {', '.join(f.kind for f in bad)}\n\n{report.format()}")
    return report

