"""The batch engine's inspection view: its step record, and the traces and views read from it.

:class:`StepLog` is the record, a ring of columns that :meth:`BatchEngine.step` writes
one row of per call; :class:`LastStep` holds the arrays of the last step.
:class:`BatchInspection` is the engine's read side (``columns``, ``trace``,
``last_trace``, ``step_records``, ``state``, ``shaper_state``, ``prices``, ``nbytes``),
which materializes records equal to the scalar env's;
:class:`EnvView` shows one env with the scalar env's inspection attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from tradeguard.env._batch_prices import Episode, PriceStore
from tradeguard.env._batch_tables import REASON_TEXT, BatchTables
from tradeguard.env._config import EnvConfig, RewardConfig
from tradeguard.env._market import Market, MarketSpec
from tradeguard.env._reward import ShaperState
from tradeguard.env._rules import PortfolioState
from tradeguard.env._scenarios import Scenario
from tradeguard.env._trading_env import TradingEnv
from tradeguard.errors import EpisodeEnded, InvalidConfig
from tradeguard.trace import StepRecord, Trace, TraceMeta

if TYPE_CHECKING:
    from tradeguard.env._batch import BatchEngine

__all__ = ["BatchInspection", "EnvView", "LastStep", "StepLog"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


class StepLog:
    """The step record: a ring of ``rows`` rows, one per :meth:`BatchEngine.step`, a column per env.

    Args:
        rows: Rows in the ring (2 x the longest episode; 0 keeps no record).
        n: Number of envs.
    """

    def __init__(self, rows: int, n: int) -> None:
        self.rows = rows
        self.predicted = np.zeros((rows, n), dtype=np.int8)
        self.executed = np.zeros((rows, n), dtype=np.int8)
        self.code = np.zeros((rows, n), dtype=np.int8)
        self.signature = np.zeros((rows, n), dtype=np.int8)
        # Per step: cash, position and cost basis after the step (the state is a view of the
        # latest row), quantity, fee.
        self.state = np.zeros((rows, 5, n), dtype=np.int64)
        self.reward = np.zeros((rows, n), dtype=np.float64)
        self.components = np.zeros((rows, 7, n), dtype=np.float64)


class LastStep(NamedTuple):
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


def _array_bytes(owner: object) -> int:
    """Bytes of the arrays ``owner`` holds in its attributes (views not counted)."""
    total = 0
    for value in vars(owner).values():
        if isinstance(value, np.ndarray) and value.base is None:
            total += value.nbytes
    return total


class BatchInspection:
    """The read side of :class:`BatchEngine`: one env's traces, records and state, from the record."""

    num_envs: int
    record: bool
    _tables: BatchTables
    _store: PriceStore
    _log: StepLog
    _last: LastStep | None
    _started: bool
    _k: int
    _state: I64
    _t: I64
    _count: I64
    _seen: I64
    _track_seen: bool

    def _check_index(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.num_envs:
            raise InvalidConfig(f"env index {i!r} is out of range: expected 0..{self.num_envs - 1}.")
        if not self._started:
            raise EpisodeEnded("no episode yet: call reset(seed=...) first.")
        return int(i)

    def _meta(self, ep: Episode) -> TraceMeta:
        if ep.meta is None:
            proto = self._tables.kinds[ep.kind].proto
            if ep.minor_unit is None:
                proto.reset(seed=ep.seed)
            else:
                length = self._tables.kinds[ep.kind].length
                window = Market(self._store.episode_prices(ep, length + 1), ep.minor_unit, "episode")
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
        log = self._log
        if last:
            ep = self._store.previous[i]
            if ep is None:
                raise InvalidConfig(f"env {i} has not completed an episode yet.")
            steps = self._tables.kinds[ep.kind].length
            if self._k - ep.start > log.rows:
                raise InvalidConfig(
                    f"env {i}'s last completed episode was overwritten (an explicit reset cut "
                    "the episode after it short); read last_trace() before resetting."
                )
        else:
            ep = self._store.episodes[i]
            assert ep is not None
            steps = int(self._t[i])
        rows = (ep.start + np.arange(steps)) % max(log.rows, 1)
        kind = self._tables.kinds[ep.kind]
        prices = self._store.episode_prices(ep, steps + 1)
        logged = log.state[rows, :, i]
        cash_after, pos_after, basis_after, quantity, fee = logged.T
        pos_before = np.concatenate(([0], pos_after))[:steps].astype(np.int64)
        cash_before = np.concatenate(([kind.cash], cash_after))[:steps].astype(np.int64)
        basis_before = np.concatenate(([0], basis_after))[:steps].astype(np.int64)
        price = prices[:steps]
        next_price = prices[1 : steps + 1]
        code = log.code[rows, i].astype(np.int64)
        sig = log.signature[rows, i].astype(np.int64)
        return {
            "t": np.arange(steps, dtype=np.int64),
            "price": price,
            "next_price": next_price,
            "predicted": log.predicted[rows, i].astype(np.int64),
            "executed": log.executed[rows, i].astype(np.int64),
            "rejected": code != 0,
            "reason": np.array(REASON_TEXT, dtype=object)[code],
            "position_before": pos_before,
            "position_after": pos_after,
            "cash_before": cash_before,
            "cash_after": cash_after,
            "equity_before": cash_before + pos_before * price,
            "equity_after": cash_after + pos_after * next_price,
            "quantity": quantity,
            "fee": fee,
            "reward": log.reward[rows, i],
            "components": log.components[rows, :, i],
            "mask": self._tables.mask_tab[ep.kind * 8 + sig],
            "signature": sig,
            "cost_basis_before": basis_before,
        }

    def _records(self, cols: dict[str, npt.NDArray[Any]], kind: int) -> tuple[StepRecord, ...]:
        masks = self._tables.kinds[kind].masks
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
        ep = self._store.episodes[i]
        assert ep is not None
        return Trace(self._records(cols, ep.kind), self._meta(ep))

    def last_trace(self, i: int) -> Trace | None:
        """Env ``i``'s last completed episode (what the scalar env's trace was when it ended).

        Returns ``None`` when the env has not completed an episode yet. Kept until the
        env completes its next episode.
        """
        i = self._check_index(i)
        if self._store.previous[i] is None:
            return None
        cols = self.columns(i, last=True)
        ep = self._store.previous[i]
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
            "reason": np.array(REASON_TEXT, dtype=object)[last.code],
            "position_before": last.position_before, "position_after": last.position_after,
            "cash_before": last.cash_before, "cash_after": last.cash_after,
            "equity_before": last.cash_before + last.position_before * last.price,
            "equity_after": last.cash_after + last.position_after * last.next_price,
            "quantity": last.quantity, "fee": last.fee, "reward": last.reward,
        }
        fields = [np.asarray(v).tolist() for v in cols.values()]
        comps = [tuple(row) for row in last.components.T.tolist()]
        sigs = last.sig.tolist()
        kinds = self._tables.kinds
        masks = [kinds[k].masks[s] for k, s in zip(self._tables.env_kind, sigs, strict=True)]
        basis = last.cost_basis_before.tolist()
        return [
            StepRecord._make((*f, c, m, b, None, 0, None))
            for *f, c, m, b in zip(*fields, comps, masks, basis, strict=True)
        ]

    def state(self, i: int) -> PortfolioState:
        """Env ``i``'s account now (the scalar env's :attr:`TradingEnv.state`)."""
        i = self._check_index(i)
        cash, pos, basis = self._state
        return PortfolioState(int(cash[i]), int(pos[i]), int(basis[i]))

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
        ep = self._store.episodes[i]
        assert ep is not None
        length = self._tables.kinds[ep.kind].length
        return tuple(self._store.episode_prices(ep, length + 1).tolist())

    def nbytes(self) -> int:
        """Bytes held in the engine's arrays (state, price windows, record)."""
        return sum(_array_bytes(part) for part in (self, self._tables, self._store, self._log))


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
        tables = self._engine._tables
        return tables.kinds[tables.env_kind[self.index]].proto

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
