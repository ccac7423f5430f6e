"""``InvariantMonitor``: the per-step invariants, checked online while any code uses the env."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal, SupportsFloat

import gymnasium as gym

from tradeguard.errors import InvalidConfig
from tradeguard.invariants._adapter import NativeAdapter, StepData, TraceAdapter, env_mask
from tradeguard.invariants._check import format_steps, raise_violations, replay_command, select
from tradeguard.invariants._model import Context, Invariant, Violation
from tradeguard.trace import StepRecord, Trace

__all__ = ["InvariantMonitor", "fast_step_ok"]

_SELL = frozenset({"reduce", "close"})


def fast_step_ok(prev: StepRecord | None, r: StepRecord, c: Context) -> bool:
    """All per-step invariants of the catalog at once, as one cheap boolean.

    True guarantees every step check would pass; False sends the monitor to the
    individual checks, which name what failed. (It may say False on a step every
    individual check accepts; it never says True on one they reject: see
    ``tests/test_monitor.py``.)
    """
    executed = r.executed
    predicted = r.predicted
    hold = c.hold
    pos0 = r.position_before
    pos1 = r.position_after
    q = r.quantity
    fee = r.fee
    price = r.price
    if executed != hold:
        if executed != predicted or r.rejected or q == 0:
            return False
        kind = c.kinds[executed]
        if kind in _SELL:
            if pos0 <= 0:
                return False
        elif kind == "open":
            if pos0 != 0:
                return False
        elif kind == "add" and (pos0 <= 0 or pos0 * price <= r.cost_basis_before):
            return False
        if executed in c.meta.disabled_actions:
            return False
    elif q != 0 or fee != 0 or (predicted != hold) != r.rejected:
        return False
    if fee < 0 or r.cash_after < 0 or pos1 < 0 or r.cash_before < 0 or pos0 < 0 or pos0 + q != pos1:
        return False
    if r.cash_after - r.cash_before != -q * price - fee:
        return False
    if r.equity_before != r.cash_before + pos0 * price:
        return False
    if r.equity_after != r.cash_after + pos1 * r.next_price:
        return False
    if prev is not None and (
        prev.cash_after != r.cash_before
        or prev.position_after != pos0
        or prev.next_price != price
    ):
        return False
    mask = r.mask
    if mask is not None and (len(mask) != len(c.kinds) or not mask[hold] or mask[predicted] == r.rejected):
        return False
    comps = r.components
    if comps:
        reward = r.reward
        total = math.fsum(comps)
        if not abs(reward - total) <= 1e-9 * max(1.0, abs(reward), abs(total)):
            return False
        pi = c.penalty_index
        if pi is not None and comps[pi] != (c.meta.failed_action_penalty if r.rejected else 0.0):
            return False
        meta = c.meta
        if meta.reward_is_pnl:
            shaped = reward - (comps[pi] if pi is not None else 0.0)
            pnl = (r.equity_after - r.equity_before) * meta.pnl_scale
            scale = abs(r.equity_before * meta.pnl_scale)
            if not abs(shaped - pnl) <= 1e-9 * max(1.0, abs(shaped), abs(pnl), scale):
                return False
    elif not math.isfinite(r.reward):
        return False
    return math.isfinite(r.reward)


class InvariantMonitor(gym.Wrapper[Any, Any, Any, Any]):
    """Check the catalog's per-step invariants on every step, while anything uses the env.

    Wrap the env you train or evaluate on; each ``step`` checks the new record
    against the one before, and at the end of an episode the whole-episode parts
    (counts, penalty totals) run too.

    Args:
        env: A tradeguard ``TradingEnv`` (or any env, with ``adapter=``).
        mode: ``"raise"`` raises :class:`~tradeguard.errors.InvariantViolation` at the
            first violating step; ``"record"`` keeps going and collects them in
            :attr:`violations`.
        only: Invariant ids to check (default: every per-step invariant).
        adapter: Turns the env's steps into records; default: the env's own records.

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
        self.adapter: TraceAdapter = adapter or NativeAdapter()
        self._native = isinstance(self.adapter, NativeAdapter)
        chosen = select(only)
        self.invariants: tuple[Invariant, ...] = tuple(i for i in chosen if i.scope == "step" or (i.scope == "episode" and i.episode_check is not None and "reported_metrics" not in i.needs))
        self._step_checks = tuple((i, i.step_check) for i in self.invariants if i.step_check is not None)
        self._use_fast = only is None
        self.violations: list[Violation] = []
        self._records: list[StepRecord] = []
        self._ctx: Context | None = None
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
        self._records = []
        self._prev = None
        self._t = 0
        self._last_info = info
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        ctx = self._ctx
        if ctx is None:
            return self.env.step(action)  # let the env refuse a step before reset
        mask = None if self._native else env_mask(self.env, self._last_info)
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._native:
            record: StepRecord = info["record"]
        else:
            record = self.adapter.record(
                self.env, StepData(self._t, action, obs, reward, terminated, truncated, info, mask)
            )
            self._last_info = info
        self._t += 1
        self._records.append(record)
        prev = self._prev
        self._prev = record
        if not (self._use_fast and fast_step_ok(prev, record, ctx)):
            found = [
                self._violation(inv, msg)
                for inv, check in self._step_checks
                if inv.applicable(ctx.meta) and (msg := check(prev, record, ctx)) is not None  # type: ignore[misc]
            ]
            self._report(found)
        if terminated or truncated:
            self._end_of_episode(ctx)
        return obs, reward, terminated, truncated, info

    @property
    def trace(self) -> Trace:
        """The records seen since the last reset."""
        meta = self._ctx.meta if self._ctx is not None else self.adapter.meta(self.env, seed=None)
        return Trace(tuple(self._records), meta)

    def _violation(self, inv: Invariant, message: str) -> Violation:
        assert self._ctx is not None
        meta = self._ctx.meta
        index = len(self._records) - 1
        return Violation(
            invariant=inv.id,
            step=self._records[index].t,
            message=message,
            seed=meta.seed,
            context=format_steps(self._records, meta, index),
            replay=replay_command(meta, self._records, index),
        )

    def _end_of_episode(self, ctx: Context) -> None:
        trace = Trace(tuple(self._records), ctx.meta)
        found = []
        for inv in self.invariants:
            if inv.episode_check is not None and inv.applicable(ctx.meta):
                for _, msg in inv.episode_check(trace, ctx):
                    found.append(
                        Violation(
                            invariant=inv.id,
                            step=None,
                            message=msg,
                            seed=ctx.meta.seed,
                            replay=replay_command(ctx.meta, self._records, None),
                        )
                    )
        self._report(found)

    def _report(self, found: list[Violation]) -> None:
        if not found:
            return
        if self.mode == "raise":
            raise_violations(found, what="episode being monitored")
        self.violations.extend(found)
