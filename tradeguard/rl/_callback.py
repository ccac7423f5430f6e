"""stable-baselines3 callbacks: invariants and collapse detection during training, and schedules.

This module imports stable-baselines3 when it is imported; ``tradeguard.rl`` loads it
only when one of its names is used.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback

from tradeguard._validation import check_int, check_number
from tradeguard.errors import InvalidConfig
from tradeguard.invariants import Violation, check_trace
from tradeguard.invariants.audit import (
    POLICY_FINDING_KINDS,
    FindingKind,
    PolicyContract,
    collapse_findings,
)
from tradeguard.trace import StepRecord, Trace, TraceMeta, action_entropy

__all__ = ["EntCoefSchedule", "InvariantCallback", "MetadataCheckpointCallback", "WindowStats"]

DEFAULT_STOP_ON: tuple[FindingKind, ...] = (
    "single-action-collapse",
    "phantom-activity",
    "masked-policy-predicts-invalid",
    "invariant-violation",
)
"""What stops a run by default. ``rejection-collapse`` alone does not: an untrained policy
on this env rejects about half its predictions (the uniform random policy: 51%)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WindowStats:
    """What the policy did over one check window of training steps.

    The fields carry :class:`~tradeguard.trace.EpisodeMetrics`' names and formulas, over a
    window instead of an episode. ``action_distribution_predicted`` is the policy's own
    choice (the algorithm's ``actions``), before any action wrapper;
    ``action_distribution_env_predicted`` is what reached the env (after epsilon-greedy, for
    instance). Rejection rate and trades are over the policy's own steps (where the two
    agree), so exploration noise neither hides nor fakes a collapse.

    Attributes:
        end_step: ``num_timesteps`` at the end of the window.
        steps: Env steps in the window (over all envs).
        action_distribution_predicted: Share of each action among the policy's predictions.
        action_distribution_env_predicted: Share of each action among the actions the env received.
        action_distribution_executed: Share of each action the env executed.
        rejection_rate: Share of the policy's own steps that were rejected.
        trades: Trades executed on the policy's own steps.
        replaced_share: Share of steps where a wrapper replaced the policy's action.
        action_entropy_executed: Entropy (nats) of ``action_distribution_executed``.
        invalid_masked: Predictions the mask (given to the policy) forbade.
        violations: Invariant violations found in episodes that ended in the window.
        findings: ``(kind, message)`` of everything flagged in this window.
    """

    end_step: int
    steps: int
    action_distribution_predicted: dict[str, float]
    action_distribution_env_predicted: dict[str, float]
    action_distribution_executed: dict[str, float]
    rejection_rate: float
    trades: int
    replaced_share: float
    action_entropy_executed: float
    invalid_masked: int
    violations: int
    findings: tuple[tuple[FindingKind, str], ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = dataclasses.asdict(self)
        out["findings"] = [{"kind": k, "message": m} for k, m in self.findings]
        return out


class InvariantCallback(BaseCallback):
    """Check invariants and watch for collapse while stable-baselines3 trains on a tradeguard env.

    At every step it reads ``info["record"]`` (the :class:`~tradeguard.trace.StepRecord`)
    from each env's info, and the policy's actions from the algorithm's locals. When an
    episode ends it checks the episode's trace against the invariant catalog. Every
    ``check_every`` steps (default: one rollout, ``n_steps x n_envs``) it

    - logs to the SB3 logger (so to TensorBoard/CSV when configured):
      ``tradeguard/predicted/<ACTION>``, ``tradeguard/executed/<ACTION>``,
      ``tradeguard/rejection_rate``, ``tradeguard/trades``, ``tradeguard/entropy_executed``,
      ``tradeguard/replaced_share``, ``tradeguard/invalid_masked``, ``tradeguard/violations``;
    - judges the window with the same :class:`~tradeguard.invariants.PolicyContract` as the
      policy audit (``single-action-collapse``, ``rejection-collapse``, ``phantom-activity``,
      and ``masked-policy-predicts-invalid`` when the algorithm passes masks);
    - stops training (returns False) when a kind in ``stop_on`` was found in ``patience``
      consecutive windows, or at once on an invariant violation. :attr:`stop_reason`
      then says why, and with ``verbose >= 1`` it is printed to stderr.

    The check happens inside ``_on_step`` at the window's last step, so an on-policy
    algorithm stops before it trains on the collapsed rollout.

    Args:
        contract: Thresholds (default :class:`~tradeguard.invariants.PolicyContract`).
        check_every: Steps (over all envs) per window; default one rollout.
        patience: Consecutive collapsed windows before stopping, >= 1.
        stop_on: Finding kinds that stop the run (default :data:`DEFAULT_STOP_ON`);
            ``()`` only logs.
        check_invariants: Check each finished episode's trace against the catalog.
        log_prefix: Logger key prefix.
        verbose: 0 silent, 1 print the stop message, 2 also every window's findings.

    Example:
        >>> from sb3_contrib import MaskablePPO  # doctest: +SKIP
        >>> from tradeguard.env import TradingEnv  # doctest: +SKIP
        >>> cb = InvariantCallback()  # doctest: +SKIP
        >>> MaskablePPO("MlpPolicy", TradingEnv(scenario="v10")).learn(100_000, callback=cb)  # doctest: +SKIP
        >>> cb.stopped, cb.stop_reason  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        contract: PolicyContract | None = None,
        check_every: int | None = None,
        patience: int = 2,
        stop_on: Sequence[str] = DEFAULT_STOP_ON,
        check_invariants: bool = True,
        log_prefix: str = "tradeguard",
        verbose: int = 1,
    ) -> None:
        super().__init__(verbose=verbose)
        self.contract = contract if contract is not None else PolicyContract()
        if not isinstance(self.contract, PolicyContract):
            raise InvalidConfig(f"contract={contract!r} must be a PolicyContract.")
        if check_every is not None:
            check_int("check_every", check_every, min_value=1)
        self._check_every_arg = check_every
        self.patience = check_int("patience", patience, min_value=1)
        for kind in stop_on:
            if kind not in POLICY_FINDING_KINDS:
                raise InvalidConfig(
                    f"stop_on contains {kind!r}; expected finding kinds from {', '.join(POLICY_FINDING_KINDS)}."
                )
        self.stop_on: tuple[str, ...] = tuple(stop_on)
        self.check_invariants = check_invariants
        self.log_prefix = log_prefix
        self.history: list[WindowStats] = []
        """Every window's statistics, in order."""
        self.violations: list[Violation] = []
        """Every invariant violation found (capped at 100)."""
        self.stopped = False
        """True when this callback stopped the run."""
        self.stop_reason: str | None = None
        """Why the run was stopped, as printed."""
        self.check_every = 0
        self._names: tuple[str, ...] = ()
        self._hold = 0
        self._strikes = 0
        self._records: list[list[StepRecord]] = []
        self._meta: list[TraceMeta | None] = []
        self._reset_window()

    # ------------------------------------------------------------------ setup
    _ids = True

    def _init_callback(self) -> None:
        env = self.training_env
        n_envs = env.num_envs
        n_steps = getattr(self.model, "n_steps", None)
        default = int(n_steps) * n_envs if isinstance(n_steps, int) else 2048
        self.check_every = self._check_every_arg or default
        self._records = [[] for _ in range(n_envs)]
        self._meta = [None] * n_envs
        # A Box or MultiDiscrete policy sends allocations, not action ids: what it asked for
        # is the record's own predicted action, and its allocations are watched for collapse.
        self._ids = hasattr(env.action_space, "n") and not hasattr(env.action_space, "nvec")
        self._reset_window()

    def _on_training_start(self) -> None:
        self.stopped = False
        self.stop_reason = None
        self._strikes = 0

    def _reset_window(self) -> None:
        n = len(self._names)
        self._w_steps = 0
        self._w_pred: list[int] = [0] * n
        self._w_env_pred: list[int] = [0] * n
        self._w_exec: list[int] = [0] * n
        self._w_own = 0
        self._w_own_rejected = 0
        self._w_own_trades = 0
        self._w_replaced = 0
        self._w_invalid = 0
        self._w_violations = 0
        self._w_first_violation: Violation | None = None
        self._w_allocations: list[Any] = []

    def _setup_names(self, record: StepRecord, i: int) -> None:
        meta = self._episode_meta(i)
        self._names = meta.action_names
        kinds = meta.action_kinds
        self._hold = kinds.index("hold") if "hold" in kinds else 0
        n = len(self._names)
        self._w_pred = [0] * n
        self._w_env_pred = [0] * n
        self._w_exec = [0] * n

    def _episode_meta(self, i: int) -> TraceMeta:
        meta = self._meta[i]
        if meta is None:
            got = self.training_env.get_attr("trace_meta", indices=[i])[0]
            meta = dataclasses.replace(got, seed=None, replay=None)
            self._meta[i] = meta
        return meta

    # ------------------------------------------------------------------ per step
    def _on_step(self) -> bool:
        infos = self.locals.get("infos")
        actions = self.locals.get("actions")
        dones = self.locals.get("dones")
        if infos is None or actions is None or dones is None:
            raise InvalidConfig(
                "InvariantCallback found no 'infos', 'actions' and 'dones' in the algorithm's "
                "locals; it needs a stable-baselines3 algorithm that collects rollouts "
                "(PPO, A2C, MaskablePPO, DQN, ...)."
            )
        if not self._ids and self.locals.get("clipped_actions") is not None:
            actions = self.locals["clipped_actions"]  # the allocations the envs received
        policy_actions = np.asarray(actions).reshape(len(infos), -1)
        masks = self.locals.get("action_masks")
        mask_arr = None if masks is None else np.asarray(masks).reshape(len(infos), -1)
        for i, info in enumerate(infos):
            record = info.get("record")
            if not isinstance(record, StepRecord):
                raise InvalidConfig(
                    f"info from env {i} has no 'record' (keys: {sorted(info)}): InvariantCallback "
                    "needs a tradeguard TradingEnv (possibly wrapped), whose step() returns "
                    "info['record']."
                )
            if not self._names:
                self._setup_names(record, i)
            if self._ids:
                a = int(policy_actions[i, 0])
            else:
                a = record.predicted
                self._w_allocations.append(policy_actions[i].copy())
            n = len(self._names)
            if 0 <= a < n:
                self._w_pred[a] += 1
            if 0 <= record.predicted < n:
                self._w_env_pred[record.predicted] += 1
            if 0 <= record.executed < n:
                self._w_exec[record.executed] += 1
            if record.predicted == a:
                self._w_own += 1
                self._w_own_rejected += record.rejected
                self._w_own_trades += record.quantity != 0 if record.legs is None else any(
                    leg.quantity != 0 for leg in record.legs)
            else:
                self._w_replaced += 1
            if mask_arr is not None and 0 <= a < mask_arr.shape[1] and not mask_arr[i, a]:
                self._w_invalid += 1
            self._w_steps += 1
            if self.check_invariants:
                self._records[i].append(record)
                if dones[i]:
                    self._end_episode(i)
        if self._w_steps >= self.check_every:
            return self._end_window(masks_used=mask_arr is not None)
        return not self.stopped

    def _end_episode(self, i: int) -> None:
        trace = Trace(tuple(self._records[i]), self._episode_meta(i))
        self._records[i] = []
        found = check_trace(trace)
        if found:
            self._w_violations += len(found)
            if self._w_first_violation is None:
                self._w_first_violation = found[0]
            room = 100 - len(self.violations)
            self.violations.extend(found[: max(0, room)])

    # ------------------------------------------------------------------ per window
    def _end_window(self, *, masks_used: bool) -> bool:
        names = self._names
        steps = self._w_steps
        own = self._w_own

        def dist(counts: list[int], total: int) -> dict[str, float]:
            return {a: (c / total if total else 0.0) for a, c in zip(names, counts, strict=True)}

        predicted = dist(self._w_pred, steps)
        executed = dist(self._w_exec, steps)
        rejection_rate = self._w_own_rejected / own if own else 0.0
        findings: list[tuple[FindingKind, str]] = list(
            collapse_findings(
                predicted,
                executed,
                rejection_rate=rejection_rate,
                trades=self._w_own_trades,
                steps=steps,
                hold_name=names[self._hold],
                contract=self.contract,
            )
        )
        if not self._ids:
            # REBALANCE on every step is what a continuous policy does: its collapse is one
            # allocation sent whatever it observes.
            from tradeguard.invariants.audit import allocation_collapse

            findings = [(k, m) for k, m in findings if k != "single-action-collapse"]
            share = self.contract.max_action_share
            collapsed = None if share is None else allocation_collapse(self._w_allocations, limit=share)
            if collapsed is not None:
                findings.append(("single-action-collapse", collapsed))
        limit = self.contract.max_invalid_masked
        if masks_used and limit is not None and self._w_invalid > limit:
            findings.append(
                (
                    "masked-policy-predicts-invalid",
                    f"the algorithm passed action masks, yet {self._w_invalid} of {steps} of the "
                    f"policy's actions were forbidden by them (limit {limit})",
                )
            )
        first = self._w_first_violation
        if self._w_violations and first is not None:
            findings.append(
                (
                    "invariant-violation",
                    f"{self._w_violations} invariant violation(s) in episodes that ended in this "
                    f"window; first: {first.headline()}",
                )
            )
        findings = [(k, m) for k, m in findings if k not in self.contract.ignore]
        stats = WindowStats(
            end_step=self.num_timesteps,
            steps=steps,
            action_distribution_predicted=predicted,
            action_distribution_env_predicted=dist(self._w_env_pred, steps),
            action_distribution_executed=executed,
            rejection_rate=rejection_rate,
            trades=self._w_own_trades,
            replaced_share=self._w_replaced / steps if steps else 0.0,
            action_entropy_executed=action_entropy(executed),
            invalid_masked=self._w_invalid,
            violations=self._w_violations,
            findings=tuple(findings),
        )
        self.history.append(stats)
        self._log(stats)
        self._reset_window()

        stopping = [(k, m) for k, m in findings if k in self.stop_on]
        if self.verbose >= 2 and findings:
            for k, m in findings:
                print(f"tradeguard: step {self.num_timesteps}: [{k}] {m}", file=sys.stderr)
        if any(k == "invariant-violation" for k, _ in stopping):
            return self._stop(stopping, "an invariant was violated")
        if stopping:
            self._strikes += 1
            if self._strikes >= self.patience:
                return self._stop(
                    stopping,
                    f"the policy collapsed in {self._strikes} consecutive check(s) of "
                    f"{self.check_every:,} steps",
                )
        else:
            self._strikes = 0
        return True

    def _stop(self, findings: list[tuple[FindingKind, str]], why: str) -> bool:
        total = getattr(self.model, "_total_timesteps", None)
        of = f" of {total:,}" if isinstance(total, int) else ""
        lines = [f"tradeguard stopped training at step {self.num_timesteps:,}{of}: {why}."]
        lines += [f"  [{k}] {m}" for k, m in findings]
        lines.append(
            "  Training on would only reinforce this. Check the failed-action penalty and the "
            "exploration (epsilon-greedy replaces actions with invalid ones), or train with "
            "action masks (--algo maskable-ppo). Audit the saved model: tradeguard audit-policy PATH."
        )
        self.stop_reason = "\n".join(lines)
        self.stopped = True
        if self.verbose >= 1:
            print(self.stop_reason, file=sys.stderr)
        return False

    def _log(self, s: WindowStats) -> None:
        p = self.log_prefix
        record = self.logger.record
        for name, share in s.action_distribution_predicted.items():
            record(f"{p}/predicted/{name}", share)
        for name, share in s.action_distribution_executed.items():
            record(f"{p}/executed/{name}", share)
        record(f"{p}/rejection_rate", s.rejection_rate)
        record(f"{p}/trades", s.trades)
        record(f"{p}/entropy_executed", s.action_entropy_executed)
        record(f"{p}/replaced_share", s.replaced_share)
        record(f"{p}/invalid_masked", s.invalid_masked)
        record(f"{p}/violations", s.violations)
        record(f"{p}/findings", len(s.findings))


class EntCoefSchedule(BaseCallback):
    """Decay the entropy coefficient linearly from ``start`` to ``end`` over training.

    Sets ``model.ent_coef`` at the start of every rollout from the training progress
    (SB3's ``_current_progress_remaining``) and logs it as ``train/ent_coef_scheduled``.
    The seed's V10.2 used 0.5 -> 0.01.

    Args:
        start: Coefficient at the start of training, >= 0.
        end: Coefficient at the end of training, >= 0.
    """

    def __init__(self, start: float, end: float, verbose: int = 0) -> None:
        super().__init__(verbose=verbose)
        self.start = check_number("ent_coef start", start, min_value=0.0, max_value=100.0)
        self.end = check_number("ent_coef end", end, min_value=0.0, max_value=100.0)

    def value(self, progress: float) -> float:
        """The coefficient at ``progress`` (0 = start of training, 1 = end)."""
        progress = min(1.0, max(0.0, progress))
        return self.start + (self.end - self.start) * progress

    def _on_rollout_start(self) -> None:
        progress = 1.0 - float(getattr(self.model, "_current_progress_remaining", 1.0))
        coef = self.value(progress)
        self.model.ent_coef = coef  # type: ignore[attr-defined]
        self.logger.record("train/ent_coef_scheduled", coef)

    def _on_step(self) -> bool:
        return True


class MetadataCheckpointCallback(CheckpointCallback):
    """SB3's ``CheckpointCallback`` that also writes tradeguard's metadata next to each zip,
    so that ``tradeguard.rl.load`` knows each checkpoint's algorithm and scenario."""

    def __init__(self, save_freq: int, save_path: str, metadata: dict[str, Any], name_prefix: str = "model") -> None:
        super().__init__(save_freq=save_freq, save_path=save_path, name_prefix=name_prefix)
        self.metadata = metadata
        self.saved: list[str] = []

    def _on_step(self) -> bool:
        from tradeguard.rl._train import metadata_path

        result = super()._on_step()
        if self.n_calls % self.save_freq == 0:
            zip_path = Path(self._checkpoint_path(extension="zip"))
            meta = dict(self.metadata, steps_done=self.num_timesteps, checkpoint=True)
            metadata_path(zip_path).write_text(json.dumps(meta, indent=2, default=str))
            self.saved.append(str(zip_path))
        return result
