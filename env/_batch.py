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

Integer exactness: the scalar env computes with Python integers, the engine with
int64. :func:`exactness_problem` states the bounds (equity below
:data:`MAX_EQUITY` minor units, position below :data:`MAX_POSITION` units, one lot's
cost times ``1 + fee`` in ppm below 2**63); markets are checked when the batch is
built (fixed markets) or when an episode's prices are drawn (generated markets), and
a market that could overflow raises :class:`~tradeguard.errors.InvalidConfig`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium.utils import seeding
from gymnasium.vector import VectorEnv
from gymnasium.vector.vector_env import AutoresetMode

from tradeguard._validation import check_int
from tradeguard.env._actions import ACTION_NAMES, N_ACTIONS, Action, RejectReason
from tradeguard.env._config import PPM, EnvConfig, RewardConfig
from tradeguard.env._market import Market, MarketSpec
from tradeguard.env._reward import ShaperState
from tradeguard.env._rules import RULES, Effect, PortfolioState
from tradeguard.env._scenarios import Scenario
from tradeguard.env._trading_env import N_POSITION_FEATURES, TradingEnv, padded_log_returns
from tradeguard.errors import EpisodeEnded, InvalidAction, InvalidConfig, InvalidMarket
from tradeguard.trace import StepRecord, Trace, TraceMeta

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

INT64_MAX = 2**63 - 1
MAX_EQUITY = INT64_MAX // PPM
"""Largest equity (minor units) an episode may reach for int64 to be exact: 9_223_372_036_854.

Every product the machine forms is at most equity times one million (``cash * size_ppm``,
``budget * PPM``, ``notional * fee_ppm``, ``held_lots * size_ppm``)."""
MAX_POSITION = math.isqrt(INT64_MAX)
"""Largest position (units) for the partial sell's cost-basis share to be exact: 3_037_000_499."""

_PREWINDOW_MAX = 32
"""Windows up to this size are stored pre-cut per step (fast gather); larger ones are gathered."""

_EFFECT_CODE = {Effect.NOTHING: 0, Effect.OPEN: 1, Effect.ADD: 1, Effect.REDUCE: 2, Effect.CLOSE: 3}
_EFFECTS = np.array([_EFFECT_CODE[rule.effect] for rule in RULES], dtype=np.int64)
_REASONS: tuple[RejectReason, ...] = tuple(RejectReason)
_REASON_CODE = {reason: i + 1 for i, reason in enumerate(_REASONS)}
_REASON_TEXT: tuple[str | None, ...] = (None, *(reason.value for reason in _REASONS))
_BUYS = _EFFECTS == 1
"""Whether each action, executed, buys (opens or adds)."""
_BITS = np.array([1 << a for a in range(N_ACTIONS)], dtype=np.int64)


def exactness_problem(
    prices: npt.ArrayLike,
    *,
    episode_length: int,
    cash: int,
    lot_size: int,
    fee_ppm: int,
) -> str | None:
    """Why int64 might not be exact for episodes on ``prices``, or ``None`` when it is.

    An episode's equity is at most ``cash`` times the product of its up-moves
    (``max(1, p[t+1] / p[t])``): a long-only account cannot beat perfect foresight.
    From that bound, with ``p_min``/``p_max`` the lowest/highest price:

    - equity <= :data:`MAX_EQUITY` (every product is at most equity x 10**6),
    - position <= equity / p_min <= :data:`MAX_POSITION` (a partial sell forms
      ``(basis mod position) * units``),
    - ``lot_size * p_max * (10**6 + fee_ppm)`` < 2**63 (the lot-count division).

    Args:
        prices: Prices in minor units; for a market longer than an episode every
            window of ``episode_length + 1`` prices is covered.
        episode_length: Steps per episode.
        cash: Starting cash in minor units.
        lot_size: Units per lot.
        fee_ppm: Fee in parts per million of notional.

    Returns:
        A sentence naming the bound that fails and the numbers, or ``None``.

    Example:
        >>> exactness_problem([9000, 8000], episode_length=1, cash=10**12, lot_size=1, fee_ppm=0)
        >>> exactness_problem([9000, 18000], episode_length=1, cash=MAX_EQUITY, lot_size=1, fee_ppm=0)[:40]
        'equity can grow to 1.845e+13 minor units'
    """
    p = np.asarray(prices, dtype=np.int64)
    steps = min(episode_length, len(p) - 1)
    ups = np.where(p[1:] > p[:-1], np.diff(np.log(p.astype(np.float64))), 0.0)
    cum = np.concatenate(([0.0], np.cumsum(ups)))
    log_growth = float(np.max(cum[steps:] - cum[: len(cum) - steps])) if steps > 0 else 0.0
    if log_growth > 0.0:
        # np.log is within a few ulps; the cumulative sum loses at most n*eps of its total.
        slack = 1e-12 + 1e-14 * steps + 4 * np.finfo(np.float64).eps * len(p) * float(cum[-1])
        equity = cash * math.exp(log_growth + slack)
    else:
        equity = float(cash)
    p_min, p_max = int(p.min()), int(p.max())
    if equity > MAX_EQUITY:
        return (
            f"equity can grow to {equity:.4g} minor units (cash {cash} x growth bound "
            f"{equity / cash:.6g} over {steps} steps); int64 is exact up to {MAX_EQUITY}"
        )
    if equity / p_min > MAX_POSITION:
        return (
            f"the position can reach {equity / p_min:.4g} units (equity {equity:.4g} at the "
            f"lowest price {p_min}); int64 is exact up to {MAX_POSITION} units"
        )
    if lot_size * p_max * (PPM + fee_ppm) > INT64_MAX:
        return (
            f"one lot at the highest price costs {lot_size} x {p_max} minor units, and "
            f"lot cost x (10**6 + fee_ppm {fee_ppm}) exceeds 2**63"
        )
    return None


class _Kind:
    """One distinct (config, reward, market, scenario): its prototype scalar env and its tables."""

    def __init__(self, proto: TradingEnv) -> None:
        self.proto = proto
        cfg, rew = proto.config, proto.reward_config
        if rew.custom_components:
            raise InvalidConfig(
                f"the batch engine computes the built-in reward components only; this reward has custom "
                f"components ({', '.join(c.name for c in rew.custom_components)}), which are Python functions "
                "of one step. Step these envs with TradingEnv (or a DummyVecEnv of them) instead."
            )
        self.config = cfg
        self.length = cfg.episode_length
        self.cash = cfg.cash
        self.lot = cfg.lot_size
        self.fee_ppm = cfg.fee_ppm
        self.size_ppm = [cfg.size_ppm(a) for a in Action]
        table = proto.machine.table
        self.masks: tuple[tuple[bool, ...], ...] = tuple(entry[1] for entry in table)
        self.reasons = [
            [0 if r is None else _REASON_CODE[r] for r in entry[0]] for entry in table
        ]
        self.weights = proto.shaper.weights
        self.penalty = rew.failed_action_penalty
        self.curriculum_bits = proto.shaper.curriculum_bits
        self.min_share = rew.curriculum_min_share
        self.curriculum = rew.curriculum_weight * rew.curriculum_scale
        self.diversity = rew.diversity_bonus
        self.market = proto.market


@dataclass(slots=True)
class _Episode:
    """Where one episode's prices live, and what its trace header needs.

    Step ``t``'s price is ``prices[base + t * stride]`` (its window: row ``base + t *
    stride`` of the windows, or returns from ``rbase + t * stride`` on). ``slot`` is the
    env's storage slot, or -1 for an episode on a shared market.
    """

    kind: int
    base: int
    stride: int
    rbase: int
    slot: int
    start: int
    seed: int | None
    minor_unit: float | None
    meta: TraceMeta | None = None


class _Fresh(NamedTuple):
    """An episode's prices that must be copied into the env's slot (generated or passed in)."""

    env: int
    seed: int | None
    prices: I64
    padded: F32
    returns: F64 | None
    minor_unit: float | None


class _Last(NamedTuple):
    """The arrays of the last step, for :meth:`BatchEngine.step_records`."""

    t: I64
    price: I64
    next_price: I64
    predicted: npt.NDArray[np.integer[Any]]
    executed: npt.NDArray[np.int8]
    code: npt.NDArray[np.int8]
    sig: I64
    position_before: I64
    position_after: I64
    cash_before: I64
    cash_after: I64
    quantity: I64
    fee: I64
    reward: F64
    components: F64
    cost_basis_before: I64


def _as_list(name: str, value: Any, n: int) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise InvalidConfig(
                f"{name} has {len(value)} entries for num_envs={n}; pass one value for every "
                "env or a single value for all."
            )
        return list(value)
    return [value] * n


class BatchEngine(VectorEnv[F32, npt.NDArray[np.int64], npt.NDArray[Any]]):
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
        args = zip(
            _as_list("config", config, n),
            _as_list("reward", reward, n),
            _as_list("market", market, n),
            _as_list("scenario", scenario, n),
            strict=True,
        )
        kinds: list[_Kind] = []
        index: dict[tuple[Any, ...], int] = {}
        env_kind: list[int] = []
        for cfg, rew, mkt, scn in args:
            key = (
                cfg,
                rew,
                id(mkt) if isinstance(mkt, Market) else mkt,
                id(scn) if isinstance(scn, Scenario) else scn,
            )
            if key not in index:
                index[key] = len(kinds)
                kinds.append(_Kind(TradingEnv(cfg, rew, mkt, scenario=scn)))
            env_kind.append(index[key])
        windows = sorted({k.config.window for k in kinds})
        if len(windows) > 1:
            raise InvalidConfig(
                f"the envs' configs have window sizes {windows}; a batch needs one observation "
                "shape. Give every config the same window (or build one batch per window)."
            )
        self._kinds = kinds
        self._env_kind = env_kind
        w = windows[0]
        self._w = w
        self._kind_of = np.array(env_kind, dtype=np.int64)
        uniform = len(kinds) == 1

        def per_env(values: Sequence[Any], dtype: Any) -> Any:
            if uniform:
                return values[0]
            return np.array(values, dtype=dtype)[self._kind_of]

        self._lengths = np.array([kinds[k].length for k in env_kind], dtype=np.int64)
        self._cash0 = np.array([kinds[k].cash for k in env_kind], dtype=np.int64)
        self._lot = per_env([k.lot for k in kinds], np.int64)
        self._fee_ppm = per_env([k.fee_ppm for k in kinds], np.int64)
        self._lot_divisor = per_env([PPM + k.fee_ppm for k in kinds], np.int64)
        self._unit_lot = all(k.lot == 1 for k in kinds)
        self._kind8 = None if uniform else self._kind_of * 8
        self._kind7 = None if uniform else self._kind_of * N_ACTIONS
        self._zeros = np.zeros(n, dtype=np.int64)
        self._zeros.flags.writeable = False
        self._reason_tab = np.array([k.reasons for k in kinds], dtype=np.int8).reshape(-1)
        # What executes for each (kind, signature, predicted action), and its effect.
        self._exec_tab = np.where(
            self._reason_tab == 0, np.tile(np.arange(N_ACTIONS), len(kinds) * 8), 0
        ).astype(np.int8)
        self._effect_tab = _EFFECTS.take(self._exec_tab).astype(np.int8)
        self._mask_tab = np.array([k.masks for k in kinds], dtype=np.bool_).reshape(-1, N_ACTIONS)
        # Sizes by executed action, with CLOSE's (0 in the config) as the whole position,
        # PPM: then one formula, min(max(held * size // PPM, 1), held), sizes every sell.
        self._size_tab = np.array(
            [
                [PPM if _EFFECTS[a] == 3 else size for a, size in enumerate(k.size_ppm)]
                for k in kinds
            ],
            dtype=np.int64,
        ).reshape(-1)
        self._curr_tab = np.array(
            [[(k.curriculum_bits >> a) & 1 for a in range(N_ACTIONS)] for k in kinds],
            dtype=np.int64,
        ).reshape(-1)
        self._weights = [per_env([k.weights[j] for k in kinds], np.float64) for j in range(4)]
        self._kind6 = None if uniform else self._kind_of * (len(_REASONS) + 1)
        self._penalty_tab = np.array(
            [[0.0] + [float(k.penalty)] * len(_REASONS) for k in kinds], dtype=np.float64
        ).reshape(-1)
        self._min_share = per_env([float(k.min_share) for k in kinds], np.float64)
        self._has_curriculum = per_env([k.curriculum_bits != 0 for k in kinds], np.bool_)
        self._curriculum = per_env([float(k.curriculum) for k in kinds], np.float64)
        # RewardShaper pays ``diversity_bonus if diversity_bonus and ...``: a falsy -0.0 pays 0.0.
        self._diversity = per_env([float(k.diversity) if k.diversity else 0.0 for k in kinds], np.float64)
        self._any_curriculum = any(k.curriculum_bits for k in kinds)
        self._any_diversity = any(k.diversity for k in kinds)
        # Which components can be non-zero. A component that is zero (0.0 or -0.0) for
        # every env is left out of the reward's sum: total_reward's running total starts
        # at 0.0 + c0, so it is never -0.0, and adding a zero then leaves it unchanged.
        nonzero = [
            any(k.weights[0] for k in kinds),
            any(k.weights[1] for k in kinds),
            any(k.weights[2] for k in kinds),
            any(k.weights[3] for k in kinds),
            any(k.penalty for k in kinds),
            any(k.curriculum_bits and k.curriculum for k in kinds),
            self._any_diversity,
        ]
        self._summed = [j for j in range(7) if nonzero[j]]

        # Shared (fixed) markets are stored once; each episode on one is an offset into it.
        # Generated and passed-in markets are copied into the env's slot (two per env: its
        # current and its last completed episode), laid out time-major (row t holds every
        # slot's step t) so that envs in step read adjacent memory.
        lmax = int(self._lengths.max())
        self._lmax = lmax
        # (L - t) / L for every t, when all envs share L (the int/int division of TradingEnv).
        self._remaining = (
            (lmax - np.arange(lmax + 1, dtype=np.int64)) / lmax
            if int(self._lengths.min()) == lmax
            else None
        )
        # As float32 (the observation's rounding of the float64 quotient), taken into place.
        self._remaining32 = None if self._remaining is None else self._remaining.astype(np.float32)
        self._prewindow = w <= _PREWINDOW_MAX
        self._shared: dict[int, tuple[Market, int, int]] = {}  # id -> (market, base, rbase)
        self._checked = set[tuple[int, int]]()
        parts_p: list[I64] = []
        parts_w: list[F32] = []
        parts_r: list[F32] = []
        base = rbase = 0
        for i, k in enumerate(env_kind):
            kind = kinds[k]
            m = kind.market
            if not isinstance(m, Market):
                continue
            if id(m) not in self._shared:
                padded = padded_log_returns(m.prices, w)[0]
                self._shared[id(m)] = (m, base, rbase)
                parts_p.append(m.prices)
                if self._prewindow:
                    parts_w.append(np.lib.stride_tricks.sliding_window_view(padded, w))
                else:
                    parts_r.append(padded)
                base += len(m)
                rbase += len(padded)
            if (k, id(m)) not in self._checked:
                self._checked.add((k, id(m)))
                self._check_exact(i, kind, m.prices, m.name)
        self._slot_base = base
        self._slot_rbase = rbase
        self._parts = (parts_p, parts_w, parts_r)
        self._has_slots = False
        self._slots = 2 * n
        self._build_storage(with_slots=False)
        # State. ``_pidx`` is base + t * stride: the price (and window row) index of step t.
        # Rows: cash, position, cost basis (one array: one gather, copy or log write for all three).
        self._state = np.zeros((3, n), dtype=np.int64)
        self._state[0] = self._cash0
        self._t = np.zeros(n, dtype=np.int64)
        self._count = np.zeros(n, dtype=np.int64)
        self._seen = np.zeros(n, dtype=np.int64)
        # The predicted-action bits (ShaperState.seen) are kept when the diversity bonus
        # needs them or there is no record to read them from (see shaper_state).
        self._track_seen = self._any_diversity or not self.record
        self._pidx = np.zeros(n, dtype=np.int64)
        self._ridx = np.zeros(n, dtype=np.int64)
        self._stride = np.ones(n, dtype=np.int64)
        self._price_now = np.ones(n, dtype=np.int64)
        self._value = np.zeros(n, dtype=np.int64)  # position * price now
        self._sig: I64 | None = None
        self._rngs: list[np.random.Generator | None] = [None] * n
        self._episodes: list[_Episode | None] = [None] * n
        self._previous: list[_Episode | None] = [None] * n
        self._k = 0
        self._left = 0  # steps until the first episode end (set by _restart)
        self._last: _Last | None = None
        self._started = False
        # The record: a ring of 2 x longest episode rows, one row per step() call.
        rows = 2 * lmax if self.record else 0
        self._rows = rows
        self._log_pred = np.zeros((rows, n), dtype=np.int8)
        self._log_exec = np.zeros((rows, n), dtype=np.int8)
        self._log_code = np.zeros((rows, n), dtype=np.int8)
        self._log_sig = np.zeros((rows, n), dtype=np.int8)
        # Per step: cash, position and cost basis after the step (the state is a view of the
        # latest row), quantity, fee.
        self._log_state = np.zeros((rows, 5, n), dtype=np.int64)
        self._log_reward = np.zeros((rows, n), dtype=np.float64)
        self._log_comp = np.zeros((rows, 7, n), dtype=np.float64)

        proto = kinds[0].proto
        self.single_observation_space = proto.observation_space
        self.single_action_space = proto.action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, n)
        self.action_space = gym.spaces.MultiDiscrete(np.full(n, N_ACTIONS, dtype=np.int64))
        self.render_mode = None

    # ------------------------------------------------------------------ checks
    def _check_exact(self, i: int, kind: _Kind, prices: I64, name: str) -> None:
        problem = exactness_problem(
            prices,
            episode_length=kind.length,
            cash=kind.cash,
            lot_size=kind.lot,
            fee_ppm=kind.fee_ppm,
        )
        if problem is not None:
            raise InvalidConfig(
                f"env {i} (market {name!r}, {len(prices)} prices, cash {kind.cash}, lot_size "
                f"{kind.lot}): {problem}. The batch engine computes with int64; lower "
                "EnvConfig.cash, episode_length or lot_size, use a calmer market, or step this "
                "config with the scalar TradingEnv (Python integers, no limit)."
            )

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
    def _build_storage(self, *, with_slots: bool) -> None:
        """Concatenate the shared markets' arrays and, once needed, the slots' (time-major)."""
        parts_p, parts_w, parts_r = self._parts
        w, rows, slots = self._w, self._lmax + 1, self._slots
        extra_p = [np.zeros(rows * slots, dtype=np.int64)] if with_slots else []
        self._flat_prices = np.concatenate([*parts_p, *extra_p, np.zeros(0, dtype=np.int64)])
        if self._prewindow:
            # Rows as wide as an observation (the position features left 0): a step's
            # observations are then one gather of whole rows.
            total = sum(len(part) for part in parts_w) + (rows * slots if with_slots else 0)
            self._windows = np.zeros((total, w + N_POSITION_FEATURES), dtype=np.float32)
            start = 0
            for part in parts_w:
                self._windows[start : start + len(part), :w] = part
                start += len(part)
            self._returns = np.zeros(0, dtype=np.float32)
        else:
            extra_r = [np.zeros((self._lmax + w) * slots, dtype=np.float32)] if with_slots else []
            self._returns = np.concatenate([*parts_r, *extra_r, np.zeros(0, dtype=np.float32)])
            self._windows = np.zeros((0, w), dtype=np.float32)
        self._offsets = np.arange(w, dtype=np.int64)
        self._has_slots = with_slots
        self._thresholds = self._affordable_at(self._flat_prices)

    def _affordable_at(self, prices: I64) -> I64 | None:
        """Cash that AFFORDABLE needs at each price (one lot plus its fee), when all envs share
        lot and fee; ``None`` otherwise (then :meth:`_signature` computes it per step)."""
        if isinstance(self._lot, np.ndarray) or isinstance(self._fee_ppm, np.ndarray):
            return None
        lot_cost = self._lot * prices
        needed: I64 = lot_cost - (-lot_cost * self._fee_ppm // PPM)
        return needed

    def _rng(self, i: int, seed: int | None) -> np.random.Generator:
        """Env ``i``'s generator after ``reset(seed=seed)``, as gymnasium's Env.reset seeds it."""
        if seed is not None:
            self._rngs[i] = seeding.np_random(seed)[0]
        rng = self._rngs[i]
        if rng is None:
            rng = self._rngs[i] = seeding.np_random()[0]
        return rng

    def _begin(self, envs: list[int], seeds: Sequence[int | None], markets: Sequence[Market | None]) -> None:
        """Start the next episode of every env in ``envs``: TradingEnv.reset, for many envs.

        The random draws (market path or start offset) are made env by env from each env's
        own generator, exactly as the scalar env makes them; the rest is vectorized.
        """
        w = self._w
        fresh: list[_Fresh] = []
        padded_of: dict[int, F32] = {}
        for i, seed, market in zip(envs, seeds, markets, strict=True):
            k = self._env_kind[i]
            kind = self._kinds[k]
            rng = self._rng(i, seed)
            needed = kind.length + 1
            m = market if market is not None else kind.market
            if isinstance(m, MarketSpec):
                generated = m.generate(needed, rng)
                padded, returns = padded_log_returns(generated.prices, w)
                fresh.append(_Fresh(i, seed, generated.prices, padded, returns, None))
                continue
            spare = len(m) - needed
            offset = int(rng.integers(0, spare + 1)) if spare else 0
            shared = self._shared.get(id(m))
            if shared is not None and shared[0] is m and (k, id(m)) in self._checked:
                _, base, rbase = shared
                self._episodes[i] = _Episode(
                    k, base + offset, 1, rbase + offset, -1, self._k, seed, m.minor_unit
                )
                continue
            if id(m) not in padded_of:
                padded_of[id(m)] = padded_log_returns(m.prices, w)[0]
            window = m.prices[offset : offset + needed]
            self._check_exact(i, kind, window, m.name)
            padded = padded_of[id(m)][offset : offset + kind.length + w]
            fresh.append(_Fresh(i, seed, window, padded, None, m.minor_unit))
        if fresh:
            self._store(fresh)

    def _store(self, fresh: list[_Fresh]) -> None:
        """Copy fresh episodes into their envs' slots, and check the generated ones' bounds."""
        if not self._has_slots:
            self._build_storage(with_slots=True)
        slots, w, lmax = self._slots, self._w, self._lmax
        by_length: dict[int, list[_Fresh]] = {}
        for f in fresh:
            by_length.setdefault(len(f.prices), []).append(f)
        for needed, group in by_length.items():
            envs = [f.env for f in group]
            chosen = []
            for i in envs:
                previous = self._previous[i]
                chosen.append(2 * i + (1 if previous is not None and previous.slot == 2 * i else 0))
            slot = np.array(chosen, dtype=np.int64)
            prices = np.stack([f.prices for f in group])
            generated = [j for j, f in enumerate(group) if f.returns is not None]
            if generated:
                returns = np.stack([group[j].returns for j in generated])  # type: ignore[misc]
                self._check_generated([envs[j] for j in generated], prices[generated], returns)
            p2 = self._flat_prices[self._slot_base :].reshape(lmax + 1, slots)
            p2[:needed, slot] = prices.T
            thresholds = self._affordable_at(prices.T)
            if self._thresholds is not None and thresholds is not None:
                t2 = self._thresholds[self._slot_base :].reshape(lmax + 1, slots)
                t2[:needed, slot] = thresholds
            padded = np.stack([f.padded for f in group])
            if self._prewindow:
                w3 = self._windows[self._slot_base :].reshape(lmax + 1, slots, w + N_POSITION_FEATURES)
                view = np.lib.stride_tricks.sliding_window_view(padded, w, axis=1)
                w3[:needed, slot, :w] = view.transpose(1, 0, 2)
            else:
                r2 = self._returns[self._slot_rbase :].reshape(lmax + w, slots)
                r2[: needed + w - 1, slot] = padded.T
            for f, s in zip(group, chosen, strict=True):
                i = f.env
                self._episodes[i] = _Episode(
                    self._env_kind[i],
                    self._slot_base + s,
                    slots,
                    self._slot_rbase + s,
                    s,
                    self._k,
                    f.seed,
                    f.minor_unit,
                )

    def _check_generated(self, envs: list[int], prices: I64, returns: F64) -> None:
        """:func:`exactness_problem` for freshly generated episodes, vectorized over envs."""
        kinds = [self._kinds[self._env_kind[i]] for i in envs]
        cash = np.array([k.cash for k in kinds], dtype=np.float64)
        ups = np.where(prices[:, 1:] > prices[:, :-1], returns[:, 1:], 0.0)
        log_growth = ups.sum(axis=1)
        steps = prices.shape[1] - 1
        slack = 1e-12 + 1e-14 * steps + 4 * np.finfo(np.float64).eps * steps * log_growth
        equity = np.where(log_growth > 0.0, cash * np.exp(log_growth + slack), cash)
        p_min = prices.min(axis=1)
        p_max = prices.max(axis=1).astype(object)
        lot_cost = [k.lot * int(pm) * (PPM + k.fee_ppm) for k, pm in zip(kinds, p_max, strict=True)]
        bad = (equity > MAX_EQUITY) | (equity / p_min > MAX_POSITION) | (
            np.array([c > INT64_MAX for c in lot_cost], dtype=np.bool_)
        )
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            i = envs[j]
            self._check_exact(i, kinds[j], prices[j], "generated market")

    def _restart(self, envs: list[int]) -> None:
        """Zero the accounts of ``envs`` and point them at their new episodes' first step."""
        idx = np.array(envs, dtype=np.int64)
        # Fresh arrays: the last step's records still refer to the old ones.
        self._state = self._state.copy()
        self._t, self._pidx, self._ridx = self._t.copy(), self._pidx.copy(), self._ridx.copy()
        self._stride, self._price_now = self._stride.copy(), self._price_now.copy()
        self._state[0, idx] = self._cash0[idx]
        self._state[1:, idx] = 0
        self._t[idx] = 0
        self._count[idx] = 0
        self._seen[idx] = 0
        episodes = [self._episodes[i] for i in envs]
        self._pidx[idx] = [ep.base for ep in episodes]  # type: ignore[union-attr]
        self._ridx[idx] = [ep.rbase for ep in episodes]  # type: ignore[union-attr]
        self._stride[idx] = [ep.stride for ep in episodes]  # type: ignore[union-attr]
        self._price_now[idx] = self._flat_prices.take(self._pidx[idx])
        self._value = self._value.copy()
        self._value[idx] = 0
        self._sig = None
        self._left = int((self._lengths - self._t).min())

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
                kind = self._kinds[self._env_kind[i]]
                if len(m) < kind.length + 1:
                    raise InvalidMarket(
                        f"env {i}: {m.name} has {len(m)} prices; an episode of episode_length="
                        f"{kind.length} steps needs {kind.length + 1}. Pass a longer market."
                    )
        envs = chosen.tolist()
        self._begin(envs, [seeds[i] for i in envs], [markets[i] for i in envs])
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

    @staticmethod
    def _sub(param: Any, idx: I64) -> Any:
        """A per-env parameter for envs ``idx`` (a scalar when all envs share it)."""
        return param[idx] if isinstance(param, np.ndarray) else param

    def _signature(self) -> I64:
        """Every env's condition signature (FLAT=4, PROFITABLE=2, AFFORDABLE=1; Machine.signature)."""
        if self._sig is None:
            if self._thresholds is not None:
                needed = self._thresholds.take(self._pidx)
            else:
                lot_cost = self._lot * self._price_now
                needed = lot_cost - (-lot_cost * self._fee_ppm // PPM)
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
        t = self._t
        pidx = self._pidx
        price = self._price_now
        next_pidx = pidx + self._stride
        next_price = self._flat_prices.take(next_pidx)
        state, value = self._state, self._value
        cash, pos, basis = state
        sig = self._signature()
        row = sig * N_ACTIONS
        row += a
        if self._kind8 is not None:
            row += self._kind8 * N_ACTIONS
        n = self.num_envs
        k = self._k % self._rows if rec else 0
        if rec:  # straight into this step's record row
            code = self._reason_tab.take(row, out=self._log_code[k], mode="clip")
            executed = self._exec_tab.take(row, out=self._log_exec[k], mode="clip")
            after = self._log_state[k]
        else:
            code = self._reason_tab.take(row)
            executed = self._exec_tab.take(row)
            after = np.empty((5, n), dtype=np.int64)
        effect = self._effect_tab.take(row)
        # The state after the step starts as the state before: rows cash, position, basis,
        # then quantity and fee (0). The state then moves to these rows, so that a record
        # row is only ever rewritten after the state has left it.
        np.copyto(after[:3], state)
        after[3:] = 0
        traded = effect.nonzero()[0]
        if traded.size:
            realized = np.zeros(n, dtype=np.int64)
            self._trade(traded, effect, executed, price, after, realized)
        else:
            realized = self._zeros
        state_after = after[:3]
        cash_after, pos_after, basis_after, quantity, fee = after
        value_after = pos_after * next_price
        # RewardShaper.shape, component by component.
        u_before = value - basis
        u_after = value_after - basis_after
        comp = self._log_comp[k] if rec else np.empty((7, n), dtype=np.float64)
        w = self._weights
        np.multiply(realized, w[0], out=comp[0])
        np.multiply(u_after - u_before, w[1], out=comp[1])
        np.multiply(u_after, w[2], out=comp[2])
        np.multiply(fee, w[3], out=comp[3])
        # failed_action_penalty if rejected else 0.0: a table by rejection code.
        index = code if self._kind6 is None else self._kind6 + code
        np.take(self._penalty_tab, index, out=comp[4], mode="clip")  # indices are valid: no buffering
        bit = _BITS.take(a) if self._track_seen else a
        steps = t + 1
        if self._any_curriculum:
            self._count = self._count + self._curr_tab.take(a if self._kind7 is None else self._kind7 + a)
            short = self._has_curriculum & (self._count < self._min_share * steps)
            comp[5] = np.where(short, self._curriculum, 0.0)
        if self._any_diversity:
            comp[6] = np.where((self._seen & bit) == 0, self._diversity, 0.0)
        # Components that no env pays stay 0.0; the record's rows are zeros from the start.
        if not rec:
            if not self._any_curriculum:
                comp[5] = 0.0
            if not self._any_diversity:
                comp[6] = 0.0
        if self._track_seen:
            self._seen = self._seen | bit
        reward = _total_rewards(comp, self._summed)  # total_reward, as TradingEnv pays it
        predicted = a
        if rec:
            predicted = self._log_pred[k]
            predicted[...] = a
            self._log_sig[k] = sig
            self._log_reward[k] = reward
        self._last = _Last(
            t, price, next_price, predicted, executed, code, sig, pos, pos_after, cash, cash_after,
            quantity, fee, reward, comp, basis,
        )
        self._state, self._value = state_after, value_after
        self._t = steps
        self._pidx = next_pidx
        if not self._prewindow:
            self._ridx = self._ridx + self._stride
        self._price_now = next_price
        self._sig = None
        self._k += 1
        # Steps until the first env's episode ends: no comparison before then.
        self._left -= 1
        done = np.zeros(n, dtype=np.bool_) if self._left > 0 else steps >= self._lengths
        obs = self._observe()
        info: dict[str, Any] = {}
        if self._left <= 0 and done.any():
            idx = np.flatnonzero(done)
            envs = idx.tolist()
            final = np.full(n, None, dtype=object)
            for i in envs:
                final[i] = obs[i].copy()
                self._previous[i] = self._episodes[i]
            self._begin(envs, [None] * len(envs), [None] * len(envs))
            self._restart(envs)
            obs[idx] = self._observe(idx)
            info = {"final_obs": final, "_final_obs": done.copy()}
        return obs, reward, done, np.zeros(n, dtype=np.bool_), info

    def _trade(
        self,
        traded: I64,
        effect: npt.NDArray[np.int8],
        executed: npt.NDArray[np.int8],
        price: I64,
        after: I64,
        realized: I64,
    ) -> None:
        """Machine.apply for the envs ``traded``: both effects' formulas, then the right one.

        Writes cash, position, basis, quantity and fee of those envs into ``after`` (5 x N)
        and their realized PnL into ``realized``.
        """
        c, q0, b0 = self._state.take(traded, axis=1)
        p = price.take(traded)
        ex = executed.take(traded)
        size = self._size_tab.take(ex if self._kind7 is None else self._kind7[traded] + ex)
        buy = _BUYS.take(ex)
        # Machine.buy_quantity. Its while-loop never runs: budget * PPM //
        # (lot_cost * (PPM + fee)) lots cost n with n * (PPM + fee) <= budget * PPM,
        # so n + ceil(n * fee / PPM) <= budget (tests/test_batch_engine.py checks it).
        budget = c * size // PPM
        budget *= PPM
        # Machine.sell_quantity; CLOSE's size is PPM in the table, so it sells the whole position.
        if self._unit_lot:  # lot_size 1 everywhere: units are lots
            lots = budget // (p * self._sub(self._lot_divisor, traded))
            np.maximum(lots, 1, out=lots)
            sold = q0 * size // PPM
            np.maximum(sold, 1, out=sold)
            np.minimum(sold, q0, out=sold)
            units = np.where(buy, lots, sold)
        else:
            lot = self._sub(self._lot, traded)
            lots = budget // (lot * p * self._sub(self._lot_divisor, traded))
            np.maximum(lots, 1, out=lots)
            held = q0 // lot
            sold = held * size // PPM
            np.maximum(sold, 1, out=sold)
            np.minimum(sold, held, out=sold)
            units = np.where(buy, lots, sold)
            units *= lot
            np.copyto(units, q0, where=effect.take(traded) == 3)  # CLOSE: the whole position, not whole lots
        notional = units * p
        f = notional * -self._sub(self._fee_ppm, traded)
        f //= PPM
        np.negative(f, out=f)  # Machine.fee: rounded up
        # The share of the cost basis a sell removes, basis * units // position (which is
        # the whole basis when units == position, the scalar machine's shortcut), formed
        # without the product: basis = whole * position + rest.
        divisor = np.maximum(q0, 1)
        whole, rest = np.divmod(b0, divisor)
        rest *= units
        rest //= divisor
        whole *= units
        removed = whole
        removed += rest
        # Scatter row by row (1-D views: numpy's fastest fancy assignment).
        cash_after, pos_after, basis_after, quantity, fee = after
        signed = np.negative(units)
        np.copyto(signed, units, where=buy)
        quantity[traded] = signed
        fee[traded] = f
        f += signed * p
        cash_after[traded] = c - f
        pos_after[traded] = q0 + signed
        b = b0 - removed
        np.add(b0, notional, out=b, where=buy)
        basis_after[traded] = b
        notional -= removed
        notional[buy] = 0
        realized[traded] = notional

    def _observe(self, idx: I64 | None = None) -> F32:
        """Observations of envs ``idx`` (default all): TradingEnv._observation, vectorized."""
        if idx is None:
            t, pidx, value = self._t, self._pidx, self._value
            cash, pos, basis, length = self._cash, self._pos, self._basis, self._lengths
        else:
            t, pidx, value = self._t[idx], self._pidx[idx], self._value[idx]
            cash, pos, basis = self._cash[idx], self._pos[idx], self._basis[idx]
            length = self._lengths[idx]
        w = self._w
        if self._prewindow:
            obs: F32 = self._windows.take(pidx, axis=0)
        else:
            obs = np.empty((len(t), w + N_POSITION_FEATURES), dtype=np.float32)
            ridx = self._ridx if idx is None else self._ridx[idx]
            stride = self._stride if idx is None else self._stride[idx]
            obs[:, :w] = self._returns.take(ridx[:, None] + self._offsets * stride[:, None])
        # float64 results cast to float32 on writing: the rounding of TradingEnv's assignment.
        np.not_equal(pos, 0, out=obs[:, w])
        np.divide(value, np.maximum(cash + value, 1), out=obs[:, w + 1])
        # value / basis in position (value >= 1 there), 1 when flat (log 0.0, as TradingEnv's 0.0)
        obs[:, w + 2] = _log_like_math(np.maximum(value, 1) / np.maximum(basis, 1))
        if self._remaining32 is not None:
            np.take(self._remaining32, t, out=obs[:, w + 3], mode="clip")  # t <= L: valid indices
        else:
            np.divide(length - t, length, out=obs[:, w + 3])
        return obs

    def action_masks(self) -> B:
        """Every env's valid actions now, shape ``(num_envs, 7)`` (a fresh array): for MaskablePPO."""
        if not self._started:
            raise EpisodeEnded("action_masks() called before reset(); call reset(seed=...) first.")
        sig = self._signature()
        return self._mask_tab.take(sig if self._kind8 is None else self._kind8 + sig, axis=0)

    # ------------------------------------------------------------------ inspection
    def _check_index(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.num_envs:
            raise InvalidConfig(f"env index {i!r} is out of range: expected 0..{self.num_envs - 1}.")
        if not self._started:
            raise EpisodeEnded("no episode yet: call reset(seed=...) first.")
        return int(i)

    def _episode_prices(self, ep: _Episode, count: int) -> I64:
        return self._flat_prices[ep.base + np.arange(count) * ep.stride]

    def _meta(self, ep: _Episode) -> TraceMeta:
        if ep.meta is None:
            proto = self._kinds[ep.kind].proto
            if ep.minor_unit is None:
                proto.reset(seed=ep.seed)
            else:
                length = self._kinds[ep.kind].length
                window = Market(self._episode_prices(ep, length + 1), ep.minor_unit, "episode")
                proto.reset(seed=ep.seed, options={"market": window})
            ep.meta = proto.trace_meta
        return ep.meta

    def columns(self, i: int, *, last: bool = False) -> dict[str, npt.NDArray[Any]]:
        """One env's episode as columns named like :class:`StepRecord` fields (numpy arrays).

        ``components`` and ``mask`` have one row per step; ``reason`` holds strings or
        ``None``. This is what :meth:`trace` materializes, without building records.

        Args:
            i: Env index.
            last: The last *completed* episode instead of the current one.

        Raises:
            InvalidConfig: bad index, ``record=False``, or (``last``) no completed episode
                is still held (it is kept until the env completes its next one).
        """
        i = self._check_index(i)
        if not self.record:
            raise InvalidConfig(
                "this BatchEngine was built with record=False and keeps no step records; "
                "build it with record=True to materialize traces."
            )
        if last:
            ep = self._previous[i]
            if ep is None:
                raise InvalidConfig(f"env {i} has not completed an episode yet.")
            steps = self._kinds[ep.kind].length
            if self._k - ep.start > self._rows:
                raise InvalidConfig(
                    f"env {i}'s last completed episode was overwritten (an explicit reset cut "
                    "the episode after it short); read last_trace() before resetting."
                )
        else:
            ep = self._episodes[i]
            assert ep is not None
            steps = int(self._t[i])
        rows = (ep.start + np.arange(steps)) % max(self._rows, 1)
        kind = self._kinds[ep.kind]
        prices = self._episode_prices(ep, steps + 1)
        logged = self._log_state[rows, :, i]
        cash_after, pos_after, basis_after, quantity, fee = logged.T
        pos_before = np.concatenate(([0], pos_after))[:steps].astype(np.int64)
        cash_before = np.concatenate(([kind.cash], cash_after))[:steps].astype(np.int64)
        basis_before = np.concatenate(([0], basis_after))[:steps].astype(np.int64)
        price = prices[:steps]
        next_price = prices[1 : steps + 1]
        code = self._log_code[rows, i].astype(np.int64)
        sig = self._log_sig[rows, i].astype(np.int64)
        return {
            "t": np.arange(steps, dtype=np.int64),
            "price": price,
            "next_price": next_price,
            "predicted": self._log_pred[rows, i].astype(np.int64),
            "executed": self._log_exec[rows, i].astype(np.int64),
            "rejected": code != 0,
            "reason": np.array(_REASON_TEXT, dtype=object)[code],
            "position_before": pos_before,
            "position_after": pos_after,
            "cash_before": cash_before,
            "cash_after": cash_after,
            "equity_before": cash_before + pos_before * price,
            "equity_after": cash_after + pos_after * next_price,
            "quantity": quantity,
            "fee": fee,
            "reward": self._log_reward[rows, i],
            "components": self._log_comp[rows, :, i],
            "mask": self._mask_tab[ep.kind * 8 + sig],
            "signature": sig,
            "cost_basis_before": basis_before,
        }

    def _records(self, cols: dict[str, npt.NDArray[Any]], kind: int) -> tuple[StepRecord, ...]:
        masks = self._kinds[kind].masks
        fields = [
            cols[name].tolist()
            for name in (
                "t", "price", "next_price", "predicted", "executed", "rejected", "reason",
                "position_before", "position_after", "cash_before", "cash_after",
                "equity_before", "equity_after", "quantity", "fee", "reward",
            )
        ]
        comps = [tuple(row) for row in cols["components"].tolist()]
        mask = [masks[s] for s in cols["signature"].tolist()]
        basis = cols["cost_basis_before"].tolist()
        return tuple(
            StepRecord._make((*f, c, m, b, None, 0, None))
            for *f, c, m, b in zip(*fields, comps, mask, basis, strict=True)
        )

    def trace(self, i: int) -> Trace:
        """Env ``i``'s current episode so far, equal to the scalar env's :attr:`TradingEnv.trace`."""
        cols = self.columns(i)
        ep = self._episodes[i]
        assert ep is not None
        return Trace(self._records(cols, ep.kind), self._meta(ep))

    def last_trace(self, i: int) -> Trace | None:
        """Env ``i``'s last completed episode (what the scalar env's trace was when it ended).

        Returns ``None`` when the env has not completed an episode yet. Kept until the
        env completes its next episode.
        """
        i = self._check_index(i)
        if self._previous[i] is None:
            return None
        cols = self.columns(i, last=True)
        ep = self._previous[i]
        assert ep is not None
        return Trace(self._records(cols, ep.kind), self._meta(ep))

    def traces(self) -> list[Trace]:
        """Every env's current episode (see :meth:`trace`)."""
        return [self.trace(i) for i in range(self.num_envs)]

    def step_records(self) -> list[StepRecord]:
        """The records of the last :meth:`step`, one per env (the scalar env's ``info["record"]``)."""
        last = self._last
        if last is None:
            raise EpisodeEnded("no step yet: call reset() and step() first.")
        cols = {
            "t": last.t, "price": last.price, "next_price": last.next_price,
            "predicted": last.predicted, "executed": last.executed,
            "rejected": last.code != 0,
            "reason": np.array(_REASON_TEXT, dtype=object)[last.code],
            "position_before": last.position_before, "position_after": last.position_after,
            "cash_before": last.cash_before, "cash_after": last.cash_after,
            "equity_before": last.cash_before + last.position_before * last.price,
            "equity_after": last.cash_after + last.position_after * last.next_price,
            "quantity": last.quantity, "fee": last.fee, "reward": last.reward,
        }
        fields = [np.asarray(v).tolist() for v in cols.values()]
        comps = [tuple(row) for row in last.components.T.tolist()]
        sigs = last.sig.tolist()
        kinds = self._kinds
        masks = [kinds[k].masks[s] for k, s in zip(self._env_kind, sigs, strict=True)]
        basis = last.cost_basis_before.tolist()
        return [
            StepRecord._make((*f, c, m, b, None, 0, None))
            for *f, c, m, b in zip(*fields, comps, masks, basis, strict=True)
        ]

    def state(self, i: int) -> PortfolioState:
        """Env ``i``'s account now (the scalar env's :attr:`TradingEnv.state`)."""
        i = self._check_index(i)
        return PortfolioState(int(self._cash[i]), int(self._pos[i]), int(self._basis[i]))

    def shaper_state(self, i: int) -> ShaperState:
        """Env ``i``'s reward-shaper counters now (the scalar env's :attr:`TradingEnv.shaper_state`)."""
        i = self._check_index(i)
        seen = int(self._seen[i])
        if not self._track_seen:
            for a in set(self.columns(i)["predicted"].tolist()):
                seen |= 1 << a
        return ShaperState(int(self._t[i]), int(self._count[i]), seen)

    def prices(self, i: int) -> tuple[int, ...]:
        """Env ``i``'s prices this episode (``episode_length + 1`` of them)."""
        i = self._check_index(i)
        ep = self._episodes[i]
        assert ep is not None
        length = self._kinds[ep.kind].length
        return tuple(self._episode_prices(ep, length + 1).tolist())

    def env(self, i: int) -> EnvView:
        """A read-only view of env ``i`` with the scalar env's inspection attributes."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.num_envs:
            raise InvalidConfig(f"env index {i!r} is out of range: expected 0..{self.num_envs - 1}.")
        return EnvView(self, int(i))

    def nbytes(self) -> int:
        """Bytes held in the engine's arrays (state, price windows, record)."""
        total = 0
        for value in vars(self).values():
            if isinstance(value, np.ndarray) and value.base is None:
                total += value.nbytes
        return total

    def __repr__(self) -> str:
        return (
            f"BatchEngine(num_envs={self.num_envs}, kinds={len(self._kinds)}, "
            f"window={self._w}, record={self.record})"
        )


def _total_rewards(comp: F64, summed: Sequence[int], out: F64 | None = None) -> F64:
    """:func:`~tradeguard.trace.total_reward` of every env (column) at once, bit for bit.

    The same additions in the same order, elementwise: ``0.0 + c[summed[0]]``, then
    each further row added in place. Rows left out of ``summed`` must be zero (0.0 or
    -0.0) for every env: adding them would change nothing (see :class:`BatchEngine`).
    Spelled as one ``np.add`` per row rather than a reduction, whose order of additions
    is numpy's choice (pairwise along a contiguous axis).

    Args:
        comp: Components, shape ``(7, num_envs)``.
        summed: Indices of the rows to add, in order.
        out: Where to write the rewards (default: a new array); must not be a row of ``comp``.

    Returns:
        The rewards, shape ``(num_envs,)`` (``out`` when given).
    """
    total: F64 = np.empty(comp.shape[1], dtype=np.float64) if out is None else out
    if not summed:
        total[...] = 0.0
        return total
    np.add(comp[summed[0]], 0.0, out=total)  # 0.0 + c0 (turns -0.0 into 0.0, as the loop does)
    for j in summed[1:]:
        np.add(total, comp[j], out=total)
    return total


def _log_like_math(ratio: F64) -> F64:
    """``math.log`` of every element, as float64 that rounds to the same float32.

    numpy's vectorized log may differ from the C library's (what ``math.log`` calls) in
    the last bit. Such a difference changes the float32 observation only when the
    result lies within a few float64 ulps of a float32 rounding tie; those elements
    (about one in 10**8) are recomputed with ``math.log``.
    """
    out = np.log(ratio)
    low = out.view(np.int64) & 0x1FFFFFFF
    near = (low - 0x0FFFFFFC).view(np.uint64) <= 8
    if near.any():
        for j in np.flatnonzero(near).tolist():
            out[j] = math.log(float(ratio[j]))
    return out


class EnvView:
    """One env of a :class:`BatchEngine`, with the inspection API of :class:`TradingEnv`.

    What ``DummyVecEnv.get_attr``/``env_method`` would reach on a scalar env:
    ``trace``, ``last_trace``, ``state``, ``shaper_state``, ``prices``,
    ``action_masks()``, ``config``, ``reward_config``, ``market``, ``scenario``.
    """

    __slots__ = ("_engine", "index")

    def __init__(self, engine: BatchEngine, index: int) -> None:
        self._engine = engine
        self.index = index

    @property
    def _proto(self) -> TradingEnv:
        e = self._engine
        return e._kinds[e._env_kind[self.index]].proto

    @property
    def config(self) -> EnvConfig:
        """The env's machine configuration."""
        return self._proto.config

    @property
    def reward_config(self) -> RewardConfig:
        """The env's reward weights."""
        return self._proto.reward_config

    @property
    def market(self) -> Market | MarketSpec:
        """The env's configured market."""
        return self._proto.market

    @property
    def scenario(self) -> Scenario:
        """The env's scenario (as :attr:`TradingEnv.scenario`)."""
        return self._proto.scenario

    @property
    def render_mode(self) -> None:
        """Always ``None``: the batch does not render."""
        return None

    @property
    def trace(self) -> Trace:
        """The current episode so far."""
        return self._engine.trace(self.index)

    @property
    def last_trace(self) -> Trace | None:
        """The last completed episode, or ``None``."""
        return self._engine.last_trace(self.index)

    @property
    def state(self) -> PortfolioState:
        """The account now."""
        return self._engine.state(self.index)

    @property
    def shaper_state(self) -> ShaperState:
        """The reward shaper's counters now."""
        return self._engine.shaper_state(self.index)

    @property
    def prices(self) -> tuple[int, ...]:
        """This episode's prices."""
        return self._engine.prices(self.index)

    def action_masks(self) -> B:
        """Valid actions now (a fresh bool array of 7)."""
        masks: B = self._engine.action_masks()[self.index]
        return masks

    def __repr__(self) -> str:
        return f"EnvView({self._engine!r}, index={self.index})"
