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

import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from tradeguard._episode import env_mask, play_episode
from tradeguard._validation import check_int, check_number, suggest
from tradeguard.errors import InvalidConfig
from tradeguard.invariants._adapter import NativeAdapter, TraceAdapter
from tradeguard.invariants._check import check_trace
from tradeguard.invariants._model import Violation
from tradeguard.limits import MAX_AUDIT_EPISODES
from tradeguard.trace import Trace, TraceMeta, action_entropy, compute_metrics

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

FindingKind = Literal[
    "single-action-collapse",
    "rejection-collapse",
    "phantom-activity",
    "masked-policy-predicts-invalid",
    "evaluated-without-masks",
    "invariant-violation",
]
FINDING_KINDS: tuple[FindingKind, ...] = get_args(FindingKind)
"""Every kind of finding the audit (and the training callback) can report; stable ids."""

AUDIT_FAMILIES: tuple[str, ...] = ("trend", "crash", "flat", "random_walk")
"""Market families an audit trades by default (``gap`` is available too)."""

_ALL_FAMILIES = ("trend", "crash", "flat", "random_walk", "gap")

MAX_EPISODES = MAX_AUDIT_EPISODES
"""The most episodes per market family one audit plays (:data:`tradeguard.limits.MAX_AUDIT_EPISODES`)."""


# --------------------------------------------------------------------------- the contract
@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyContract:
    """What a policy must satisfy to pass the audit; ``None`` switches a check off.

    Attributes:
        max_action_share: ``single-action-collapse`` when one action's share of the
            predictions exceeds this, in (0, 1]. Default 0.95. HOLD dominating counts only
            when no trade executed: buy, hold 400 steps and sell is HOLD 99.6% and fine.
        max_rejection_rate: ``rejection-collapse`` when the share of predictions that
            were rejected exceeds this, in [0, 1]. Default 0.5 ("most").
        phantom_max_share: ``phantom-activity`` when no trade executed although the
            share of non-HOLD predictions exceeds this, in [0, 1). Default 0.0: any
            non-HOLD prediction with zero trades.
        max_invalid_masked: ``masked-policy-predicts-invalid`` when a mask-aware policy,
            given the mask, predicted more than this many forbidden actions. Default 0.
        require_masks: ``evaluated-without-masks`` when the env has masks and the policy
            can take them but none were passed. Default True.
        require_invariants: ``invariant-violation`` for every violation of the catalog.
            Default True.
        ignore: Finding kinds reported but not counted as failures.

    Example:
        >>> PolicyContract(max_action_share=0.99, ignore=("single-action-collapse",)).max_action_share
        0.99
    """

    max_action_share: float | None = 0.95
    max_rejection_rate: float | None = 0.5
    phantom_max_share: float | None = 0.0
    max_invalid_masked: int | None = 0
    require_masks: bool = True
    require_invariants: bool = True
    ignore: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_action_share is not None:
            check_number("max_action_share", self.max_action_share, min_value=0.0, max_value=1.0, min_exclusive=True)
        if self.max_rejection_rate is not None:
            check_number("max_rejection_rate", self.max_rejection_rate, min_value=0.0, max_value=1.0)
        if self.phantom_max_share is not None:
            check_number("phantom_max_share", self.phantom_max_share, min_value=0.0, max_value=1.0)
            if self.phantom_max_share >= 1.0:
                raise InvalidConfig(
                    f"phantom_max_share={self.phantom_max_share!r} can never be exceeded; expected "
                    "a value in [0, 1), or None to switch phantom-activity off."
                )
        if self.max_invalid_masked is not None:
            check_int("max_invalid_masked", self.max_invalid_masked, min_value=0)
        if isinstance(self.ignore, str):
            raise InvalidConfig(
                f"ignore={self.ignore!r} must be a tuple of finding kinds, e.g. "
                "('single-action-collapse',)."
            )
        for kind in self.ignore:
            if kind not in FINDING_KINDS:
                raise InvalidConfig(
                    f"ignore contains {kind!r}, which is not a finding kind; expected one of "
                    f"{', '.join(FINDING_KINDS)}.{suggest(str(kind), FINDING_KINDS)}"
                )
        object.__setattr__(self, "ignore", tuple(self.ignore))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["ignore"] = list(self.ignore)
        return out


# --------------------------------------------------------------------------- results
@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One way the policy breaks its contract.

    Attributes:
        kind: One of :data:`FINDING_KINDS`.
        message: What is wrong, with the numbers.
        family: The market family it concerns, or ``None`` for the whole audit.
        counts: Whether the contract counts it as a failure (``False`` when ignored).
    """

    kind: FindingKind
    message: str
    family: str | None = None
    counts: bool = True

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "message": self.message, "family": self.family, "counts": self.counts}

    def __str__(self) -> str:
        ignored = " (ignored by the contract)" if not self.counts else ""
        return f"[{self.kind}] {self.message}{ignored}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FamilyReport:
    """What the policy did on one market family (or on all of them: ``family="all"``).

    Shares and rates are over steps, pooled across the family's episodes; returns and
    rewards are means over episodes.

    Attributes:
        family: Market family name, or ``"all"``.
        episodes: Episodes played.
        steps: Steps played.
        action_distribution_predicted: Share of steps on which each action was predicted.
        action_distribution_executed: Share of steps on which each action executed.
        rejection_rate: Share of steps whose prediction was rejected.
        action_entropy_executed: Entropy (nats) of the executed distribution.
        trades: Steps on which a trade executed.
        mean_return: Mean total return per episode (0.01 = +1%).
        mean_episode_reward: Mean sum of rewards per episode.
        invalid_predictions: Predictions the mask the policy saw forbade (0 when the env
            has no mask).
        violations: Invariant violations found in the family's traces.
    """

    family: str
    episodes: int
    steps: int
    action_distribution_predicted: Mapping[str, float]
    action_distribution_executed: Mapping[str, float]
    rejection_rate: float
    action_entropy_executed: float
    trades: int
    mean_return: float
    mean_episode_reward: float
    invalid_predictions: int
    violations: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = {name: getattr(self, name) for name in self.__slots__}
        out["action_distribution_predicted"] = dict(self.action_distribution_predicted)
        out["action_distribution_executed"] = dict(self.action_distribution_executed)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyAuditReport:
    """The audit's verdict: per-family reports, the overall one, findings and violations.

    Attributes:
        policy: The policy's name.
        scenario: The scenario (or env) audited on.
        seed: The audit's seed.
        deterministic: Whether model predictions were deterministic.
        env_supports_masks: The env exposes an action mask.
        masks_passed: The mask was given to the policy at every step.
        policy_takes_masks: The policy's ``act``/``predict`` accepts a mask.
        policy_respects_masks: The policy claims to pick only actions its mask allows.
        families: One report per market family.
        overall: All families pooled.
        findings: Everything the contract flags, in :data:`FINDING_KINDS` order.
        violations: Every invariant violation, with its ledger context.
        contract: The contract applied.
        traces: The episodes' traces (not serialized).
    """

    policy: str
    scenario: str
    seed: int
    deterministic: bool
    env_supports_masks: bool
    masks_passed: bool
    policy_takes_masks: bool
    policy_respects_masks: bool
    families: tuple[FamilyReport, ...]
    overall: FamilyReport
    findings: tuple[Finding, ...]
    violations: tuple[Violation, ...]
    contract: PolicyContract
    traces: tuple[Trace, ...] = field(default=(), repr=False)

    @property
    def passed(self) -> bool:
        """True when no finding counts against the contract."""
        return not any(f.counts for f in self.findings)

    def kinds(self) -> set[str]:
        """The kinds of the findings that count."""
        return {f.kind for f in self.findings if f.counts}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``passed``, ``findings``, the overall metrics, then the details."""
        o = self.overall
        return {
            "passed": self.passed,
            "findings": [f.as_dict() for f in self.findings],
            "action_distribution_predicted": dict(o.action_distribution_predicted),
            "action_distribution_executed": dict(o.action_distribution_executed),
            "rejection_rate": o.rejection_rate,
            "trades": o.trades,
            "action_entropy_executed": o.action_entropy_executed,
            "mean_return": o.mean_return,
            "mean_episode_reward": o.mean_episode_reward,
            "invalid_predictions": o.invalid_predictions,
            "episodes": o.episodes,
            "steps": o.steps,
            "policy": self.policy,
            "scenario": self.scenario,
            "seed": self.seed,
            "deterministic": self.deterministic,
            "env_supports_masks": self.env_supports_masks,
            "masks_passed": self.masks_passed,
            "policy_takes_masks": self.policy_takes_masks,
            "policy_respects_masks": self.policy_respects_masks,
            "families": {f.family: f.as_dict() for f in self.families},
            "violations": [v.as_dict() for v in self.violations],
            "contract": self.contract.as_dict(),
        }

    def format(self, *, max_violations: int = 10) -> str:
        """The report as text: a table per family, distributions side by side, the verdict."""
        fams = (*self.families, self.overall)
        o = self.overall
        per = self.families[0].episodes if self.families else 0
        if not self.env_supports_masks:
            masks = "env has no masks"
        elif self.masks_passed:
            masks = "masks passed"
        elif self.policy_takes_masks:
            masks = "masks NOT passed"
        else:
            masks = "the policy takes no masks"
        if self.masks_passed and not self.policy_respects_masks:
            masks += " (the policy does not use them)"
        lines = [
            f"policy {self.policy} on scenario {self.scenario}: {per} episode(s) x "
            f"{len(self.families)} market families, {o.steps} steps, seed {self.seed}, "
            f"{'deterministic' if self.deterministic else 'stochastic'}, {masks}",
            "",
            f"{'family':<13}{'episodes':>9}{'return':>10}{'reward':>11}{'trades':>8}"
            f"{'rejected':>10}{'entropy':>9}{'invalid':>9}{'violations':>11}",
        ]
        for f in fams:
            lines.append(
                f"{f.family:<13}{f.episodes:>9}{f.mean_return:>+10.2%}{f.mean_episode_reward:>+11.3f}"
                f"{f.trades:>8}{f.rejection_rate:>10.1%}{f.action_entropy_executed:>9.3f}"
                f"{f.invalid_predictions:>9}{f.violations:>11}"
            )
        lines += ["", "action distribution, predicted / executed:"]
        head = f"{'action':<14}" + "".join(f"{f.family[:15]:>16}" for f in fams)
        lines.append(head)
        for name in o.action_distribution_predicted:
            cells = "".join(
                f"{f.action_distribution_predicted[name]:>8.1%}{f.action_distribution_executed[name]:>8.1%}"
                for f in fams
            )
            lines.append(f"{name:<14}{cells}")
        lines.append("")
        if self.passed:
            lines.append("PASS: the policy meets its contract.")
        else:
            n = sum(f.counts for f in self.findings)
            lines.append(f"FAIL: {n} finding(s) break the contract.")
        lines.extend(f"  {finding}" for finding in self.findings)
        if self.violations:
            lines += ["", f"invariant violations ({len(self.violations)}):"]
            for v in self.violations[:max_violations]:
                lines.append(str(v))
            if len(self.violations) > max_violations:
                lines.append(f"... and {len(self.violations) - max_violations} more (see --json)")
        return "\n".join(lines)


# --------------------------------------------------------------------------- policies
@dataclass(frozen=True, slots=True)
class _PolicyInfo:
    name: str
    style: Literal["act", "predict"]
    takes_masks: bool
    respects_masks: bool
    takes_state: bool = False


def describe_policy(policy: Any, *, mask_aware: bool | None = None) -> tuple[str, bool, bool]:
    """How the audit sees ``policy``: ``(name, takes_masks, respects_masks)``.

    A tradeguard policy (``act(observation, mask, rng)``) always takes the mask; it
    respects it when it says so (``respects_mask = True``) or is a
    ``MaskedRandomPolicy``. A model with ``predict(observation, ..., action_masks=...)``
    (sb3-contrib's ``MaskablePPO``) takes and respects masks; one without that
    parameter (stable-baselines3's ``PPO``) takes none. ``mask_aware`` overrides the
    "respects" verdict.

    Raises:
        InvalidConfig: ``policy`` has neither ``act`` nor ``predict``.
    """
    info = _describe(policy, mask_aware)
    return info.name, info.takes_masks, info.respects_masks


def _describe(policy: Any, mask_aware: bool | None) -> _PolicyInfo:
    act = getattr(policy, "act", None)
    predict = getattr(policy, "predict", None)
    if callable(act):
        respects = getattr(policy, "respects_mask", None)
        if respects is None:
            from tradeguard.env import MaskedRandomPolicy

            respects = isinstance(policy, MaskedRandomPolicy)
        name = str(getattr(policy, "name", type(policy).__name__))
        return _PolicyInfo(name, "act", True, bool(respects if mask_aware is None else mask_aware))
    if callable(predict):
        try:
            params = inspect.signature(predict).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        takes = "action_masks" in params or var_kw
        respects = takes if mask_aware is None else mask_aware
        state = ("state" in params and "episode_start" in params) or var_kw
        return _PolicyInfo(type(policy).__name__, "predict", takes, bool(respects), state)
    raise InvalidConfig(
        f"policy={policy!r} is not a policy: expected an object with act(observation, mask, rng) "
        "(a tradeguard policy, see tradeguard.env.parse_policy) or predict(observation, "
        "deterministic=..., action_masks=...) (a stable-baselines3 / sb3-contrib model)."
    )


class _Player:
    """Calls a policy one step at a time, whatever its style."""

    def __init__(self, policy: Any, info: _PolicyInfo, *, deterministic: bool, pass_masks: bool) -> None:
        self.policy = policy
        self.info = info
        self.deterministic = deterministic
        self.pass_masks = pass_masks and info.takes_masks
        self.state: Any = None
        self.start = True

    def begin(self) -> None:
        self.state = None
        self.start = True

    def __call__(self, obs: Any, mask: npt.NDArray[np.bool_] | None, rng: np.random.Generator) -> int:
        given = mask if self.pass_masks else None
        if self.info.style == "act":
            return _as_action(self.policy.act(obs, given, rng))
        kwargs: dict[str, Any] = {"deterministic": self.deterministic}
        if self.info.takes_state:
            kwargs["state"] = self.state
            kwargs["episode_start"] = np.array([self.start])
        if self.pass_masks:
            kwargs["action_masks"] = given
        action, self.state = self.policy.predict(obs, **kwargs)
        self.start = False
        return _as_action(action)


def _as_action(action: Any) -> int:
    arr = np.asarray(action)
    if arr.size != 1 or arr.dtype.kind not in "iu":
        raise InvalidConfig(
            f"the policy returned {action!r} (shape {arr.shape}, dtype {arr.dtype}); expected one "
            "integer action per step. For a vectorized model, pass a single observation."
        )
    return int(arr.reshape(()))


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
@dataclass
class _Tally:
    family: str
    names: tuple[str, ...]
    predicted: list[int]
    executed: list[int]
    episodes: int = 0
    steps: int = 0
    rejections: int = 0
    trades: int = 0
    invalid: int = 0
    violations: int = 0
    returns: list[float] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    @classmethod
    def empty(cls, family: str, names: tuple[str, ...]) -> _Tally:
        return cls(family, names, [0] * len(names), [0] * len(names))

    def add(self, trace: Trace, invalid: int, violations: int) -> None:
        n = len(self.names)
        for r in trace.records:
            if 0 <= r.predicted < n:
                self.predicted[r.predicted] += 1
            if 0 <= r.executed < n:
                self.executed[r.executed] += 1
            self.rejections += r.rejected
            self.trades += r.quantity != 0
        self.steps += len(trace)
        self.episodes += 1
        self.invalid += invalid
        self.violations += violations
        m = compute_metrics(trace)
        self.returns.append(m.total_return)
        self.rewards.append(m.episode_reward)

    def merge(self, other: _Tally) -> None:
        self.predicted = [a + b for a, b in zip(self.predicted, other.predicted, strict=True)]
        self.executed = [a + b for a, b in zip(self.executed, other.executed, strict=True)]
        for name in ("episodes", "steps", "rejections", "trades", "invalid", "violations"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.returns += other.returns
        self.rewards += other.rewards

    def report(self) -> FamilyReport:
        steps = self.steps
        pred = {a: (c / steps if steps else 0.0) for a, c in zip(self.names, self.predicted, strict=True)}
        exe = {a: (c / steps if steps else 0.0) for a, c in zip(self.names, self.executed, strict=True)}
        return FamilyReport(
            family=self.family,
            episodes=self.episodes,
            steps=steps,
            action_distribution_predicted=pred,
            action_distribution_executed=exe,
            rejection_rate=self.rejections / steps if steps else 0.0,
            action_entropy_executed=action_entropy(exe),
            trades=self.trades,
            mean_return=math.fsum(self.returns) / len(self.returns) if self.returns else 0.0,
            mean_episode_reward=math.fsum(self.rewards) / len(self.rewards) if self.rewards else 0.0,
            invalid_predictions=self.invalid,
            violations=self.violations,
        )


def _play(
    env: Any,
    adapter: TraceAdapter,
    player: _Player,
    *,
    seed: int,
    options: dict[str, Any] | None,
    rng: np.random.Generator,
    max_steps: int | None,
) -> tuple[Trace, int]:
    """One episode; returns its trace and how many predictions the visible mask forbade."""
    player.begin()
    invalid = 0

    def choose(t: int, observation: Any, visible: tuple[bool, ...] | None) -> int:
        nonlocal invalid
        mask = np.array(visible, dtype=bool) if visible is not None else None
        action = player(observation, mask, rng)
        if mask is not None and 0 <= action < len(mask) and not mask[action]:
            invalid += 1
        return action

    played = play_episode(env, choose, recorder=adapter, seed=seed, options=options, max_steps=max_steps)
    assert played.trace is not None  # a recorder was given
    return played.trace, invalid


def _predicts_batches(policy: Any) -> bool:
    """Whether ``policy`` is a stable-baselines3 model (its ``predict`` takes a batch of observations)."""
    import sys

    sb3 = sys.modules.get("stable_baselines3")  # a model of it exists only once it is imported
    return sb3 is not None and isinstance(policy, sb3.common.base_class.BaseAlgorithm)


def _batch_engine(env: Any, markets: Sequence[Any], seeds: Sequence[int]) -> tuple[Any, Any] | None:
    """A BatchEngine of ``env``'s configuration, one env per market, reset as ``_play`` resets.

    Returns ``(engine, first observations)``, or
    ``None`` when the batch engine refuses the markets (int64 might not be exact, or
    not a :class:`~tradeguard.env.Market`): the caller then plays them one by one.
    """
    from tradeguard.env import BatchEngine
    from tradeguard.errors import InvalidMarket

    base = env.unwrapped
    try:
        engine = BatchEngine(
            len(markets), base.config, base.reward_config, base.market, scenario=base.scenario
        )
        obs, _ = engine.reset(seed=list(seeds), options={"market": list(markets)})
    except (InvalidConfig, InvalidMarket):
        return None
    return engine, obs


def _play_batch(engine: Any, obs: Any, player: _Player, length: int) -> list[tuple[Trace, int]]:
    """Every env of ``engine`` for one episode of ``length`` steps, the model predicting for all.

    The same traces (and counts of mask-forbidden predictions) as :func:`_play` env by
    env: the observations, masks and records are bit-identical to the scalar env's, and a
    deterministic model maps each observation to its action whether or not it is batched.
    """
    import sys

    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else 0
    try:
        # Small batches on several intra-op threads are slower than one observation at a
        # time (the per-episode loop's batches of one run on one thread anyway): the
        # predictions run on one thread, and the setting is restored afterwards.
        if torch is not None and threads > 1:
            torch.set_num_threads(1)
        return _step_batch(engine, obs, player, length)
    finally:
        if torch is not None and threads > 1:
            torch.set_num_threads(threads)


def _step_batch(engine: Any, obs: Any, player: _Player, length: int) -> list[tuple[Trace, int]]:
    n = engine.num_envs
    invalid = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    state: Any = None
    start = np.ones(n, dtype=np.bool_)
    for _ in range(length):
        masks = engine.action_masks()
        kwargs: dict[str, Any] = {"deterministic": player.deterministic}
        if player.info.takes_state:
            kwargs["state"] = state
            kwargs["episode_start"] = start
        if player.pass_masks:
            kwargs["action_masks"] = masks
        action, state = player.policy.predict(obs, **kwargs)
        start = np.zeros(n, dtype=np.bool_)
        actions = np.asarray(action)
        if actions.shape != (n,) or actions.dtype.kind not in "iu":
            raise InvalidConfig(
                f"the policy returned {actions.shape} {actions.dtype} actions for {n} observations; "
                "expected one integer action per observation."
            )
        inside = (actions >= 0) & (actions < masks.shape[1])
        invalid += inside & ~masks[rows, np.where(inside, actions, 0)]
        obs, *_ = engine.step(actions)
    return [(engine.last_trace(i), int(invalid[i])) for i in range(n)]


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


def _pct(x: float) -> str:
    return f"{x:.1%}"


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


def collapse_findings(
    predicted: Mapping[str, float],
    executed: Mapping[str, float],
    *,
    rejection_rate: float,
    trades: int,
    steps: int,
    hold_name: str,
    contract: PolicyContract,
    per_family: Mapping[str, int] | None = None,
) -> list[tuple[FindingKind, str]]:
    """The collapse findings (``single-action-collapse``, ``rejection-collapse``,
    ``phantom-activity``) for one set of predicted and executed distributions.

    Shared by the audit and the training callback so both say the same thing. A
    policy that predicts HOLD almost always but does trade (buy, hold 400 steps, sell)
    is not a single-action collapse; one that only ever holds is.
    """
    out: list[tuple[FindingKind, str]] = []
    if steps == 0:
        return out
    top, share = max(predicted.items(), key=lambda kv: kv[1])
    executed_top = executed.get(top, 0.0)
    hold_while_trading = top == hold_name and trades > 0
    if contract.max_action_share is not None and share > contract.max_action_share and not hold_while_trading:
        out.append(
            (
                "single-action-collapse",
                f"{_pct(share)} of {steps} predictions are {top} (limit {_pct(contract.max_action_share)}); "
                f"executed {top} {_pct(executed_top)}, executed {hold_name} {_pct(executed.get(hold_name, 0.0))}",
            )
        )
    if contract.max_rejection_rate is not None and rejection_rate > contract.max_rejection_rate:
        out.append(
            (
                "rejection-collapse",
                f"{_pct(rejection_rate)} of {steps} predictions were rejected and executed as "
                f"{hold_name} (limit {_pct(contract.max_rejection_rate)}); most predicted: {top} "
                f"{_pct(share)}",
            )
        )
    non_hold = 1.0 - predicted.get(hold_name, 0.0)
    if contract.phantom_max_share is not None and trades == 0 and non_hold > contract.phantom_max_share:
        shown = ", ".join(f"{a} {_pct(p)}" for a, p in predicted.items() if p > 0 and a != hold_name)
        fams = ""
        if per_family:
            fams = f" across {', '.join(per_family)}"
        out.append(
            (
                "phantom-activity",
                f"the policy predicted non-{hold_name} actions on {_pct(non_hold)} of {steps} steps "
                f"({shown}) and not one trade executed{fams}: executed {hold_name} "
                f"{_pct(executed.get(hold_name, 0.0))}. All metrics are zero because nothing happened",
            )
        )
    return out
