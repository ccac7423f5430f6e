"""``InvariantMonitor``: the per-step invariants, checked online while any code uses the env."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Literal, SupportsFloat

import gymnasium as gym

from tradeguard.errors import InvalidConfig
from tradeguard.invariants._adapter import (
    NativeAdapter,
    StepData,
    TraceAdapter,
    adapter_for,
    checked_record,
    env_mask,
    reported_metrics_of,
    require_native,
)
from tradeguard.invariants._catalog import REL_TOL, _executed_counts, _penalty_total
from tradeguard.invariants._check import format_steps, raise_violations, replay_command, select
from tradeguard.invariants._model import Context, Invariant, Violation
from tradeguard.trace import OPTIONAL_FIELDS, StepRecord, Trace, TraceMeta, total_reward

__all__ = ["InvariantMonitor", "fast_step_check", "fast_step_ok"]

def _plain_ledger(meta: TraceMeta) -> bool:
    """Exact, one instrument, long-only, no credit, nothing declared: the fused check's domain."""
    return (
        meta.exact
        and meta.long_only
        and not meta.borrows_cash
        and meta.fee_schedule is None
        and meta.position_limits is None
        and meta.financing_schedule is None
        and not meta.instruments
        and not (meta.supplies & OPTIONAL_FIELDS)
    )


def _unsure(prev: StepRecord | None, r: StepRecord) -> bool:
    return False


def fast_step_ok(prev: StepRecord | None, r: StepRecord, c: Context) -> bool:
    """All per-step invariants of the catalog at once, as one cheap boolean.

    True guarantees every step check would pass; False sends the monitor to the
    individual checks, which name what failed. (It may say False on a step every
    individual check accepts; it never says True on one they reject: see
    ``tests/test_monitor.py``.)
    """
    return fast_step_check(c)(prev, r)


def fast_step_check(c: Context) -> Callable[[StepRecord | None, StepRecord], bool]:
    """:func:`fast_step_ok` compiled for one trace header: its constants bound as locals.

    Soundness: every comparison is the catalog's own expression on the same values
    (so it holds for floats, or numpy integers, exactly when the catalog's does), or
    stricter than it (a tolerance of 1e-9 where the catalog's is at least that); the
    reward passes as in the catalog, when it is ``total_reward`` of its components (bit
    for bit) or within the tolerance of ``math.fsum``'s exact sum, and with a finite
    reward an exact match of either also implies finite components (both give inf or
    NaN, or ``fsum`` raises, on any non-finite one); any exception (an odd type, a short
    components tuple) means "not sure": False. ``tests/test_monitor.py`` checks all of it against the catalog.
    """
    if not _plain_ledger(c.meta):
        # A float, multi-instrument or declared-schedule ledger: the catalog's own checks
        # (with their tolerances) decide every step; the fused check covers only the exact,
        # single-instrument, long-only ledger with nothing declared.
        return _unsure
    hold = c.hold
    n_actions = len(c.kinds)
    disabled = c.meta.disabled_actions
    # per action: 0 hold, 1 reduce, 2 open, 3 add, 4 other, 5 must never execute, 6 close, 7 buy
    code = tuple(
        0 if k == "hold"
        else 5 if a in disabled
        else 1 if k == "reduce"
        else 6 if k == "close"
        else 2 if k == "open"
        else 3 if k == "add"
        else 7 if k == "buy"
        else 4
        for a, k in enumerate(c.kinds)
    )
    pi = c.penalty_index
    penalty = c.meta.failed_action_penalty
    is_pnl = c.meta.reward_is_pnl
    scale = c.meta.pnl_scale
    isfinite = math.isfinite
    fsum = math.fsum
    total = total_reward

    def check(prev: StepRecord | None, r: StepRecord) -> bool:
        try:
            (
                _t, price, next_price, predicted, executed, rejected, _reason,
                pos0, pos1, cash0, cash1, eq0, eq1, q, fee, reward, comps, mask, basis0,
                _legs, _financing, _reported,
            ) = r
            # self-financing's step-to-step part: cash, position and price carry over
            if prev is not None and (
                prev[10] != cash0 or prev[8] != pos0 or prev[2] != price  # cash_after, position_after, next_price
            ):
                return False
            if executed != hold:
                if executed != predicted or rejected or q == 0 or not 0 <= executed < n_actions:
                    return False
                # allowed-actions-execute's part too: each kind moves the position its way (q != 0 above;
                # an open from 0 can only grow it, since the position stays >= 0)
                kind = code[executed]
                if kind == 1:
                    if pos0 <= 0 or q >= 0:
                        return False
                elif kind == 6:
                    if pos0 <= 0 or pos1 != 0:
                        return False
                elif kind == 2:
                    if pos0 != 0:
                        return False
                elif kind == 3:
                    if pos0 <= 0 or pos0 * price <= basis0 or q <= 0:
                        return False
                elif kind == 7:
                    if q <= 0:
                        return False
                elif kind == 5:
                    return False
            elif q != 0 or fee != 0 or (predicted != hold) != rejected:
                return False
            # The catalog's own expressions, so that they hold for floats exactly when its
            # do. "Never sells more than is held" (pos0 + q >= 0) follows from pos0 >= 0,
            # pos1 >= 0 and pos1 - pos0 == q, rounding included (rounding is monotonic).
            change = eq1 - eq0
            if (
                fee < 0
                or cash1 < 0
                or pos1 < 0
                or cash0 < 0
                or pos0 < 0
                or eq0 <= 0  # ruin-ends-episode: no step starts from a ruined account
                or pos1 - pos0 != q
                or cash1 - cash0 != -q * price - fee
                or eq0 != cash0 + pos0 * price
                or eq1 != cash1 + pos1 * next_price
                or change != pos1 * (next_price - price) - fee
            ):
                return False
            # `is not (not rejected)`: only an exact bool entry equal to "executes" passes
            if mask is not None and (
                len(mask) != n_actions
                or not mask[hold]
                or not 0 <= predicted < n_actions
                or mask[predicted] is not (not rejected)
            ):
                return False
            if comps:
                if reward != fsum(comps) and reward != total(comps) and not _reward_sum_close(reward, comps):
                    return False
                if pi is None:
                    pen = 0.0
                else:
                    pen = comps[pi]
                    if pen != (penalty if rejected else 0.0):
                        return False
            elif pi is None:
                pen = 0.0
            else:
                return False  # no penalty component to read: let the catalog say so
            if is_pnl:
                # 1e-9 is the smallest tolerance reward-consistent-with-pnl ever uses
                # (REL_TOL x max(1, ...)), on the catalog's own floats. NaN fails, and so
                # does an infinite reward (it makes the difference inf or NaN).
                if not -1e-9 <= reward - pen - change * scale <= 1e-9:
                    return False
            elif not isfinite(reward):
                return False
        except Exception:  # an odd record: let the individual checks say what
            return False
        return True

    return check


def _reward_sum_close(reward: float, comps: tuple[float, ...]) -> bool:
    """reward-is-sum-of-components' tolerance and finite-rewards' component part, as the catalog decides them."""
    if not all(map(math.isfinite, comps)):
        return False
    total = math.fsum(comps)
    return abs(reward - total) <= REL_TOL * max(1.0, abs(reward), abs(total))


class InvariantMonitor(gym.Wrapper[Any, Any, Any, Any]):
    """Check the catalog's per-step invariants on every step, while anything uses the env.

    Wrap the env you train or evaluate on; each ``step`` checks the new record
    against the one before, and at the end of an episode the whole-episode parts
    (counts, penalty totals) run too.

    Args:
        env: A tradeguard ``TradingEnv``, or any gymnasium env with a ``Discrete`` action space.
        mode: ``"raise"`` raises :class:`~tradeguard.errors.InvariantViolation` at the
            first violating step; ``"record"`` keeps going and collects them in
            :attr:`violations`.
        only: Invariant ids to report (default: every per-step invariant). It narrows
            what is reported, not the cost: every step is screened by one fused check
            of the whole per-step catalog (about 1 us a step in CPython 3.11, a quarter
            of ``TradingEnv``'s own step; ``benchmarks/bench_monitor.py``), and only a
            step it does not pass goes through the selected checks one by one.
        adapter: Turns the env's steps into records; default: chosen for the env as
            :func:`check_trading_env` chooses it (``adapter_for(env)``): tradeguard's own
            env's records, a built-in peer's adapter, else ``GymAdapter``.

    Example:
        >>> from tradeguard.env import TradingEnv
        >>> env = InvariantMonitor(TradingEnv(scenario="v10"), mode="record")
        >>> _ = env.reset(seed=0)
        >>> for _ in range(20):
        ...     _ = env.step(env.action_space.sample())
        >>> env.violations
        []
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        *,
        mode: Literal["raise", "record"] = "raise",
        only: Iterable[str] | None = None,
        adapter: TraceAdapter | None = None,
    ) -> None:
        super().__init__(env)
        if mode not in ("raise", "record"):
            raise InvalidConfig(f"mode={mode!r}; expected 'raise' or 'record'.")
        self.mode = mode
        # The gate's choice (tradeguard's own env: NativeAdapter, whose records the env keeps)
        self.adapter: TraceAdapter = adapter or adapter_for(env)
        self._native = isinstance(self.adapter, NativeAdapter)
        if self._native:
            require_native(env)
        chosen = select(only)
        self.invariants: tuple[Invariant, ...] = tuple(i for i in chosen if i.scope == "step" or (i.scope == "episode" and i.episode_check is not None))
        # The env's own metrics, when the adapter hands them over (reported_metrics), are
        # checked against the trace at the end of every episode.
        self._reports = callable(getattr(self.adapter, "reported_metrics", None))
        self._step_checks = tuple((i, i.step_check) for i in self.invariants if i.step_check is not None)
        # The episode parts this monitor runs, when every step of an episode passed the
        # fused check, are implied by it (see step); any other would have to run.
        self._totals_implied = {
            i.episode_check for i in self.invariants if i.episode_check is not None and "reported_metrics" not in i.needs
        } <= {_executed_counts, _penalty_total}
        self._clean = True
        self.violations: list[Violation] = []
        self._records: list[StepRecord] = []  # only for adapted envs: TradingEnv keeps its own
        self._ctx: Context | None = None
        # The fused check of the whole per-step catalog screens every step, whatever
        # `only` selects: when it passes, every check (so every selected one) would.
        self._fast: Callable[[StepRecord | None, StepRecord], bool] = lambda prev, r: False
        # tradeguard's own env: the hot path (see step)
        self._native_fast: Callable[[StepRecord | None, StepRecord], bool] | None = None
        self._prev: StepRecord | None = None
        self._t = 0
        self._last_info: dict[str, Any] = {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.adapter.begin(self.env, obs, info)
        meta = self.adapter.meta(self.env, seed=seed)
        self._ctx = Context.of(meta)
        self._fast = fast_step_check(self._ctx)
        self._native_fast = self._fast if self._native else None
        self._records = []
        self._prev = None
        self._t = 0
        self._clean = self._totals_implied
        self._last_info = info
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        fast = self._native_fast
        if fast is not None:
            # The env keeps its own records (the monitor reads them back only to report),
            # so a healthy step costs one fused check.
            result = self.env.step(action)
            record: StepRecord = result[4]["record"]
            prev = self._prev
            self._prev = record
            if fast(prev, record):
                if not (result[2] or result[3]):
                    return result
                if self._clean:
                    # Every step of this episode passed the fused check: each non-HOLD
                    # action executed only on a step that predicted it, and each step's
                    # penalty was exactly the penalty if rejected, else 0.0. That is
                    # executed <= predicted per action, and the penalty total
                    # math.fsum(k x penalty) == k x penalty (both the exact product,
                    # rounded once): the episode checks would find nothing.
                    return result
            else:
                self._clean = False
                self._check_step(prev, record)
            if result[2] or result[3]:
                self._end_of_episode()
            return result
        if self._ctx is None:
            return self.env.step(action)  # let the env refuse a step before reset
        mask = env_mask(self.env, self._last_info)
        obs, reward, terminated, truncated, info = self.env.step(action)
        record = checked_record(self.adapter, self.adapter.record(
            self.env, StepData(self._t, action, obs, reward, terminated, truncated, info, mask)
        ), self._t)
        self._last_info = info
        self._t += 1
        self._records.append(record)
        prev = self._prev
        self._prev = record
        if not self._fast(prev, record):
            self._clean = False
            self._check_step(prev, record)
        if (terminated or truncated) and (not self._clean or self._reports):
            self._end_of_episode()
        return obs, reward, terminated, truncated, info

    def _check_step(self, prev: StepRecord | None, record: StepRecord) -> None:
        """The selected step checks, one by one: they say what the fused check did not."""
        ctx = self._ctx
        assert ctx is not None
        found = [
            (inv, msg)
            for inv, check in self._step_checks
            if inv.applicable(ctx.meta) and (msg := check(prev, record, ctx)) is not None  # type: ignore[misc]
        ]
        if found:
            records = self._seen()
            self._report([self._violation(inv, msg, records) for inv, msg in found])

    def _seen(self) -> list[StepRecord]:
        """The records since the last reset: tradeguard's env keeps them itself (not copied per step)."""
        if not self._native:
            return self._records
        trace: Trace = getattr(self.env.unwrapped, "trace")  # noqa: B009  (TradingEnv's, not Env's)
        return list(trace.records)

    @property
    def trace(self) -> Trace:
        """The records seen since the last reset."""
        meta = self._ctx.meta if self._ctx is not None else self.adapter.meta(self.env, seed=None)
        return Trace(tuple(self._seen()) if self._ctx is not None else (), meta)

    def _violation(self, inv: Invariant, message: str, records: list[StepRecord]) -> Violation:
        assert self._ctx is not None
        meta = self._ctx.meta
        index = len(records) - 1
        return Violation(
            invariant=inv.id,
            step=records[index].t,
            message=message,
            seed=meta.seed,
            context=format_steps(records, meta, index),
            replay=replay_command(meta, records, index),
        )

    def _end_of_episode(self) -> None:
        ctx = self._ctx
        assert ctx is not None
        records = self._seen()
        trace = Trace(tuple(records), ctx.meta)
        reported = reported_metrics_of(self.adapter, self.env, self._last_info) if self._reports else None
        if reported is not None:
            ctx = Context.of(ctx.meta, reported)
        found = []
        for inv in self.invariants:
            if inv.episode_check is not None and inv.applicable(ctx.meta, reported=reported is not None):
                for _, msg in inv.episode_check(trace, ctx):
                    found.append(
                        Violation(
                            invariant=inv.id,
                            step=None,
                            message=msg,
                            seed=ctx.meta.seed,
                            replay=replay_command(ctx.meta, records, None),
                        )
                    )
        self._report(found)

    def _report(self, found: list[Violation]) -> None:
        if not found:
            return
        if self.mode == "raise":
            raise_violations(found, what="episode being monitored")
        self.violations.extend(found)
