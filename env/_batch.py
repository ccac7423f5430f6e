"""The batch engine: N trading accounts stepped by one call, bit-identical to :class:`TradingEnv`.

The engine holds N envs as a structure of arrays (cash, position, cost basis, step,
shaper counters; one price window per episode) and steps all of them with a fixed
number of numpy operations. It has no rules of its own: verdicts, rejection reasons
and masks are looked up in :attr:`Machine.table` (the rule table compiled per
condition signature), indexed by the signature of every env at once; quantities,
fees and rewards are the scalar machine's and shaper's formulas, vectorized, with
the same operations in the same order, so traces, observations and rewards are
bit-identical to the scalar env's (the differential test in
``tests/test_batch_engine.py`` checks every field of every step).

This module is the engine's control: building, resetting and stepping. Its parts live
beside it, one job each:

- ``_batch_tables``: the rule and reward tables of every kind of env, as arrays;
- ``_batch_prices``: where each episode's prices live, and the draws that fill them;
- ``_batch_kernel``: one step's arithmetic (trades, reward sums, the observation's log);
- ``_batch_view``: the step record, and the traces and per-env views read from it;
- ``_batch_bounds``: int64 exactness. The scalar env computes with Python integers, the
  engine with int64. :func:`exactness_problem` states the bounds (equity below
  :data:`MAX_EQUITY` minor units, position below :data:`MAX_POSITION` units, one lot's
  cost times ``1 + fee`` in ppm below 2**63); markets are checked when the batch is
  built (fixed markets) or when an episode's prices are drawn (generated markets), and
  a market that could overflow raises :class:`~tradeguard.errors.InvalidConfig`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium.vector import VectorEnv
from gymnasium.vector.vector_env import AutoresetMode

from tradeguard._validation import check_int
from tradeguard.env._actions import ACTION_NAMES, N_ACTIONS
from tradeguard.env._batch_bounds import MAX_EQUITY, MAX_POSITION, exactness_problem
from tradeguard.env._batch_kernel import log_like_math as _log_like_math
from tradeguard.env._batch_kernel import total_rewards as _total_rewards
from tradeguard.env._batch_kernel import trade
from tradeguard.env._batch_prices import PriceStore
from tradeguard.env._batch_tables import BITS, BatchTables, group_kinds
from tradeguard.env._batch_view import BatchInspection, EnvView, LastStep, StepLog
from tradeguard.env._config import PPM, EnvConfig, RewardConfig
from tradeguard.env._market import Market, MarketSpec
from tradeguard.env._scenarios import Scenario
from tradeguard.env._trading_env import N_POSITION_FEATURES
from tradeguard.errors import EpisodeEnded, InvalidAction, InvalidConfig, InvalidMarket

__all__ = [
    "MAX_EQUITY",
    "MAX_POSITION",
    "BatchEngine",
    "EnvView",
    "exactness_problem",
]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
B = npt.NDArray[np.bool_]


def _as_list(name: str, value: Any, n: int) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise InvalidConfig(
                f"{name} has {len(value)} entries for num_envs={n}; pass one value for every "
                "env or a single value for all."
            )
        return list(value)
    return [value] * n


class BatchEngine(BatchInspection, VectorEnv[F32, npt.NDArray[np.int64], npt.NDArray[Any]]):
    """N independent :class:`TradingEnv` accounts stepped at once, with identical results.

    A gymnasium vector env (``autoreset_mode`` same-step, as stable-baselines3): when an
    env's episode ends, :meth:`step` returns its final observation in
    ``info["final_obs"]`` (``info["_final_obs"]`` marks which envs) and the first
    observation of its next episode in the batch. Every step is recorded in columns;
    :meth:`trace` and :meth:`last_trace` materialize one env's episode as a
    :class:`~tradeguard.trace.Trace` equal, record for record, to the scalar env's.

    Args:
        num_envs: Number of envs, >= 1.
        config: One :class:`EnvConfig` for all envs, or one per env (all with the same
            ``window``); default: the scenario's.
        reward: One :class:`RewardConfig`, or one per env; default: the scenario's.
        market: A :class:`Market` or :class:`MarketSpec` for all envs, or one per env;
            default: the scenario's. As in :class:`TradingEnv`, a fixed market longer than
            an episode starts each episode at a random offset.
        scenario: A scenario name or :class:`Scenario` (or one per env) supplying defaults.
        record: Keep every step's columns (the current and the last completed episode of
            every env) so that traces can be materialized. ``False`` saves memory.

    Raises:
        InvalidConfig: a bad argument, different ``window`` sizes, or a market on which
            int64 might not be exact (see :func:`exactness_problem`).
        InvalidMarket: a fixed market shorter than ``episode_length + 1``.

    Example:
        >>> import numpy as np
        >>> engine = BatchEngine(3, scenario="v10")
        >>> obs, info = engine.reset(seed=0)
        >>> obs, rewards, terminated, truncated, info = engine.step(np.array([4, 1, 0]))
        >>> float(rewards[0]), [r.executed for r in engine.step_records()], engine.trace(0)[0].reason
        (-0.05, [0, 1, 0], 'NO_POSITION')
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        num_envs: int,
        config: EnvConfig | Sequence[EnvConfig] | None = None,
        reward: RewardConfig | Sequence[RewardConfig] | None = None,
        market: Market | MarketSpec | Sequence[Market | MarketSpec] | None = None,
        *,
        scenario: str | Scenario | Sequence[str | Scenario | None] | None = None,
        record: bool = True,
    ) -> None:
        n = check_int("num_envs", num_envs, min_value=1)
        self.num_envs = n
        self.record = bool(record)
        kinds, env_kind = group_kinds(
            _as_list("config", config, n),
            _as_list("reward", reward, n),
            _as_list("market", market, n),
            _as_list("scenario", scenario, n),
        )
        self._tables = tables = BatchTables(kinds, env_kind)
        self._w = tables.window
        self._store = PriceStore(tables)
        # State. ``_pidx`` is base + t * stride: the price (and window row) index of step t.
        # Rows: cash, position, cost basis (one array: one gather, copy or log write for all three).
        self._state = np.zeros((3, n), dtype=np.int64)
        self._state[0] = tables.cash0
        self._t = np.zeros(n, dtype=np.int64)
        self._count = np.zeros(n, dtype=np.int64)
        self._seen = np.zeros(n, dtype=np.int64)
        # The predicted-action bits (ShaperState.seen) are kept when the diversity bonus
        # needs them or there is no record to read them from (see shaper_state).
        self._track_seen = tables.any_diversity or not self.record
        self._pidx = np.zeros(n, dtype=np.int64)
        self._ridx = np.zeros(n, dtype=np.int64)
        self._stride = np.ones(n, dtype=np.int64)
        self._price_now = np.ones(n, dtype=np.int64)
        self._value = np.zeros(n, dtype=np.int64)  # position * price now
        self._sig: I64 | None = None
        self._k = 0
        self._left = 0  # steps until the first episode end (set by _restart)
        self._last: LastStep | None = None
        self._started = False
        # The record: a ring of 2 x longest episode rows, one row per step() call.
        self._log = StepLog(2 * tables.lmax if self.record else 0, n)

        proto = kinds[0].proto
        self.single_observation_space = proto.observation_space
        self.single_action_space = proto.action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, n)
        self.action_space = gym.spaces.MultiDiscrete(np.full(n, N_ACTIONS, dtype=np.int64))
        self.render_mode = None

    # ------------------------------------------------------------------ checks
    def _actions(self, actions: Any, *, copy: bool = True) -> I64:
        a = np.asarray(actions)
        n = self.num_envs
        if a.shape != (n,):
            if a.shape == (n, 1):
                a = a.reshape(n)
            else:
                raise InvalidAction(
                    f"actions of shape {a.shape}: expected one action per env, shape ({n},)."
                )
        if a.dtype == np.int64 and not (a.view(np.uint64) >= N_ACTIONS).any():
            # The caller may reuse its array: the last step's records keep a copy (with
            # records on, the record's row, so step() asks for no copy).
            return a.copy() if copy else a
        if a.dtype.kind not in "iu":
            hint = ""
            if a.dtype.kind == "f":
                hint = " Floats are refused rather than truncated; pass actions.astype(int) if that is what you mean."
            elif a.dtype.kind == "b":
                hint = " Booleans are refused (True is not BUY_SMALL)."
            raise InvalidAction(
                f"actions of dtype {a.dtype}: expected integers in 0..{N_ACTIONS - 1}.{hint}"
            )
        bad = np.flatnonzero((a < 0) | (a >= N_ACTIONS))
        if bad.size:
            shown = ", ".join(f"actions[{j}]={int(a[j])}" for j in bad[:10])
            more = f" (and {bad.size - 10} more)" if bad.size > 10 else ""
            raise InvalidAction(
                f"{bad.size} action(s) out of range: {shown}{more}; expected integers in "
                f"0..{N_ACTIONS - 1} ({', '.join(f'{i}={nm}' for i, nm in enumerate(ACTION_NAMES))})."
            )
        return a.astype(np.int64, copy=False)

    # ------------------------------------------------------------------ episodes
    def _restart(self, envs: list[int]) -> None:
        """Zero the accounts of ``envs`` and point them at their new episodes' first step."""
        idx = np.array(envs, dtype=np.int64)
        # Fresh arrays: the last step's records still refer to the old ones.
        self._state = self._state.copy()
        self._t, self._pidx, self._ridx = self._t.copy(), self._pidx.copy(), self._ridx.copy()
        self._stride, self._price_now = self._stride.copy(), self._price_now.copy()
        self._state[0, idx] = self._tables.cash0[idx]
        self._state[1:, idx] = 0
        self._t[idx] = 0
        self._count[idx] = 0
        self._seen[idx] = 0
        episodes = [self._store.episodes[i] for i in envs]
        self._pidx[idx] = [ep.base for ep in episodes]  # type: ignore[union-attr]
        self._ridx[idx] = [ep.rbase for ep in episodes]  # type: ignore[union-attr]
        self._stride[idx] = [ep.stride for ep in episodes]  # type: ignore[union-attr]
        self._price_now[idx] = self._store.flat.take(self._pidx[idx])
        self._value = self._value.copy()
        self._value[idx] = 0
        self._sig = None
        self._left = int((self._tables.lengths - self._t).min())

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[F32, dict[str, Any]]:
        """Start new episodes and return the first observations (and an empty info dict).

        Args:
            seed: ``None`` (each env keeps its RNG stream, or draws a random seed the
                first time), an int (env ``i`` gets ``seed + i``, as gymnasium and SB3
                vector envs do), or one seed (or ``None``) per env.
            options: ``{"market": Market}`` trades that market in every env this episode,
                ``{"market": [Market | None, ...]}`` one per env (``None``: the configured
                market); ``{"reset_mask": bool array}`` resets only the marked envs.

        Raises:
            InvalidConfig: unknown options, or seeds/markets of the wrong length.
            InvalidMarket: a market that is not a :class:`Market` or is too short.
        """
        n = self.num_envs
        seeds: list[int | None]
        if seed is None:
            seeds = [None] * n
        elif isinstance(seed, bool):
            raise InvalidConfig(f"seed={seed!r}; expected an int, a list of seeds, or None.")
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(n)]
        else:
            seeds = _as_list("seed", list(seed), n)
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        markets: list[Any] = _as_list("options['market']", options.pop("market", None), n)
        if options:
            raise InvalidConfig(
                f"unknown reset options {sorted(options)}; expected 'market' and/or 'reset_mask'."
            )
        if mask is None:
            chosen = np.arange(n)
        else:
            mask = np.asarray(mask)
            if mask.shape != (n,) or mask.dtype != np.bool_:
                raise InvalidConfig(
                    f"options['reset_mask'] has shape {mask.shape} dtype {mask.dtype}; expected "
                    f"a bool array of shape ({n},)."
                )
            if not self._started and not mask.all():
                raise InvalidConfig("the first reset() must reset every env; drop 'reset_mask'.")
            chosen = np.flatnonzero(mask)
        for i in chosen.tolist():
            m = markets[i]
            if m is not None:
                if not isinstance(m, Market):
                    raise InvalidMarket(f"options['market'] for env {i} is {m!r}; expected a Market.")
                kind = self._tables.kinds[self._tables.env_kind[i]]
                if len(m) < kind.length + 1:
                    raise InvalidMarket(
                        f"env {i}: {m.name} has {len(m)} prices; an episode of episode_length="
                        f"{kind.length} steps needs {kind.length + 1}. Pass a longer market."
                    )
        envs = chosen.tolist()
        self._store.begin(envs, [seeds[i] for i in envs], [markets[i] for i in envs], self._k)
        self._restart(envs)
        self._started = True
        return self._observe(), {}

    # ------------------------------------------------------------------ stepping
    @property
    def _cash(self) -> I64:
        row: I64 = self._state[0]
        return row

    @property
    def _pos(self) -> I64:
        row: I64 = self._state[1]
        return row

    @property
    def _basis(self) -> I64:
        row: I64 = self._state[2]
        return row

    def _signature(self) -> I64:
        """Every env's condition signature (FLAT=4, PROFITABLE=2, AFFORDABLE=1; Machine.signature)."""
        if self._sig is None:
            thresholds = self._store.thresholds
            if thresholds is not None:
                needed = thresholds.take(self._pidx)
            else:
                lot_cost = self._tables.lot * self._price_now
                needed = lot_cost - (-lot_cost * self._tables.fee_ppm // PPM)
            # Flat implies a zero cost basis, so PROFITABLE is False there, as in the table.
            sig = (self._pos == 0) * 4
            sig += (self._value > self._basis) * 2
            sig += self._cash >= needed
            self._sig = sig
        return self._sig

    def step(
        self, actions: Any
    ) -> tuple[F32, F64, B, B, dict[str, Any]]:
        """Predict one action per env; execute or reject each by the rule table; auto-reset ended envs.

        Args:
            actions: Integer array of shape ``(num_envs,)`` with values in 0..6.

        Returns:
            ``(observations, rewards, terminated, truncated, info)``. For envs whose
            episode ended, ``observations`` holds the next episode's first observation and
            ``info["final_obs"][i]`` the last one (``info["_final_obs"]`` marks them).

        Raises:
            InvalidAction: a non-integer array, a wrong shape, or out-of-range actions
                (every offender named by env index and value).
            EpisodeEnded: :meth:`reset` was never called.
        """
        rec = self.record
        a = self._actions(actions, copy=not rec)
        if not self._started:
            raise EpisodeEnded("step() called before reset(); call reset(seed=...) first.")
        tab, store, log = self._tables, self._store, self._log
        t = self._t
        pidx = self._pidx
        price = self._price_now
        next_pidx = pidx + self._stride
        next_price = store.flat.take(next_pidx)
        state, value = self._state, self._value
        cash, pos, basis = state
        sig = self._signature()
        row = sig * N_ACTIONS
        row += a
        if tab.kind8 is not None:
            row += tab.kind8 * N_ACTIONS
        n = self.num_envs
        k = self._k % log.rows if rec else 0
        if rec:  # straight into this step's record row
            code = tab.reason_tab.take(row, out=log.code[k], mode="clip")
            executed = tab.exec_tab.take(row, out=log.executed[k], mode="clip")
            after = log.state[k]
        else:
            code = tab.reason_tab.take(row)
            executed = tab.exec_tab.take(row)
            after = np.empty((5, n), dtype=np.int64)
        effect = tab.effect_tab.take(row)
        # The state after the step starts as the state before: rows cash, position, basis,
        # then quantity and fee (0). The state then moves to these rows, so that a record
        # row is only ever rewritten after the state has left it.
        np.copyto(after[:3], state)
        after[3:] = 0
        traded = effect.nonzero()[0]
        if traded.size:
            realized = np.zeros(n, dtype=np.int64)
            trade(tab, state, traded, effect, executed, price, after, realized)
        else:
            realized = tab.zeros
        state_after = after[:3]
        cash_after, pos_after, basis_after, quantity, fee = after
        value_after = pos_after * next_price
        # RewardShaper.shape, component by component.
        u_before = value - basis
        u_after = value_after - basis_after
        comp = log.components[k] if rec else np.empty((7, n), dtype=np.float64)
        w = tab.weights
        np.multiply(realized, w[0], out=comp[0])
        np.multiply(u_after - u_before, w[1], out=comp[1])
        np.multiply(u_after, w[2], out=comp[2])
        np.multiply(fee, w[3], out=comp[3])
        # failed_action_penalty if rejected else 0.0: a table by rejection code.
        index = code if tab.kind6 is None else tab.kind6 + code
        np.take(tab.penalty_tab, index, out=comp[4], mode="clip")  # indices are valid: no buffering
        bit = BITS.take(a) if self._track_seen else a
        steps = t + 1
        if tab.any_curriculum:
            self._count = self._count + tab.curr_tab.take(a if tab.kind7 is None else tab.kind7 + a)
            short = tab.has_curriculum & (self._count < tab.min_share * steps)
            comp[5] = np.where(short, tab.curriculum, 0.0)
        if tab.any_diversity:
            comp[6] = np.where((self._seen & bit) == 0, tab.diversity, 0.0)
        # Components that no env pays stay 0.0; the record's rows are zeros from the start.
        if not rec:
            if not tab.any_curriculum:
                comp[5] = 0.0
            if not tab.any_diversity:
                comp[6] = 0.0
        if self._track_seen:
            self._seen = self._seen | bit
        reward = _total_rewards(comp, tab.summed)  # total_reward, as TradingEnv pays it
        predicted = a
        if rec:
            predicted = log.predicted[k]
            predicted[...] = a
            log.signature[k] = sig
            log.reward[k] = reward
        self._last = LastStep(
            t, price, next_price, predicted, executed, code, sig, pos, pos_after, cash, cash_after,
            quantity, fee, reward, comp, basis,
        )
        self._state, self._value = state_after, value_after
        self._t = steps
        self._pidx = next_pidx
        if not store.prewindow:
            self._ridx = self._ridx + self._stride
        self._price_now = next_price
        self._sig = None
        self._k += 1
        # Steps until the first env's episode ends: no comparison before then.
        self._left -= 1
        done = np.zeros(n, dtype=np.bool_) if self._left > 0 else steps >= tab.lengths
        obs = self._observe()
        info: dict[str, Any] = {}
        if self._left <= 0 and done.any():
            idx = np.flatnonzero(done)
            envs = idx.tolist()
            final = np.full(n, None, dtype=object)
            for i in envs:
                final[i] = obs[i].copy()
                store.previous[i] = store.episodes[i]
            store.begin(envs, [None] * len(envs), [None] * len(envs), self._k)
            self._restart(envs)
            obs[idx] = self._observe(idx)
            info = {"final_obs": final, "_final_obs": done.copy()}
        return obs, reward, done, np.zeros(n, dtype=np.bool_), info

    def _observe(self, idx: I64 | None = None) -> F32:
        """Observations of envs ``idx`` (default all): TradingEnv._observation, vectorized."""
        if idx is None:
            t, pidx, value = self._t, self._pidx, self._value
            cash, pos, basis, length = self._cash, self._pos, self._basis, self._tables.lengths
        else:
            t, pidx, value = self._t[idx], self._pidx[idx], self._value[idx]
            cash, pos, basis = self._cash[idx], self._pos[idx], self._basis[idx]
            length = self._tables.lengths[idx]
        w = self._w
        store = self._store
        if store.prewindow:
            obs: F32 = store.windows.take(pidx, axis=0)
        else:
            obs = np.empty((len(t), w + N_POSITION_FEATURES), dtype=np.float32)
            ridx = self._ridx if idx is None else self._ridx[idx]
            stride = self._stride if idx is None else self._stride[idx]
            obs[:, :w] = store.returns.take(ridx[:, None] + store.offsets * stride[:, None])
        # float64 results cast to float32 on writing: the rounding of TradingEnv's assignment.
        np.not_equal(pos, 0, out=obs[:, w])
        np.divide(value, np.maximum(cash + value, 1), out=obs[:, w + 1])
        # value / basis in position (value >= 1 there), 1 when flat (log 0.0, as TradingEnv's 0.0)
        obs[:, w + 2] = _log_like_math(np.maximum(value, 1) / np.maximum(basis, 1))
        remaining32 = self._tables.remaining32
        if remaining32 is not None:
            np.take(remaining32, t, out=obs[:, w + 3], mode="clip")  # t <= L: valid indices
        else:
            np.divide(length - t, length, out=obs[:, w + 3])
        return obs

    def action_masks(self) -> B:
        """Every env's valid actions now, shape ``(num_envs, 7)`` (a fresh array): for MaskablePPO."""
        if not self._started:
            raise EpisodeEnded("action_masks() called before reset(); call reset(seed=...) first.")
        sig = self._signature()
        tab = self._tables
        return tab.mask_tab.take(sig if tab.kind8 is None else tab.kind8 + sig, axis=0)

    def env(self, i: int) -> EnvView:
        """A read-only view of env ``i`` with the scalar env's inspection attributes."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.num_envs:
            raise InvalidConfig(f"env index {i!r} is out of range: expected 0..{self.num_envs - 1}.")
        return EnvView(self, int(i))

    def __repr__(self) -> str:
        return (
            f"BatchEngine(num_envs={self.num_envs}, kinds={len(self._tables.kinds)}, "
            f"window={self._w}, record={self.record})"
        )
