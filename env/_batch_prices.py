"""Where the batch engine's episodes get their prices: shared markets, per-env slots, the draws.

Shared (fixed) markets are stored once; each episode on one is an offset into it.
Generated and passed-in markets are copied into the env's slot (two per env: its current
and its last completed episode), laid out time-major (row t holds every slot's step t)
so that envs in step read adjacent memory. Step ``t`` of an :class:`Episode` reads
``flat[base + t * stride]`` (and its observation window from row ``base + t * stride`` of
``windows``, or from ``returns`` at ``rbase + t * stride`` on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from gymnasium.utils import seeding

from tradeguard.env._batch_bounds import check_exact, first_inexact
from tradeguard.env._batch_tables import BatchTables, EnvKind
from tradeguard.env._config import PPM
from tradeguard.env._market import Market, MarketSpec
from tradeguard.env._trading_env import N_POSITION_FEATURES, padded_log_returns
from tradeguard.trace import TraceMeta

__all__ = ["PREWINDOW_MAX", "Episode", "FreshEpisode", "PriceStore"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

PREWINDOW_MAX = 32
"""Windows up to this size are stored pre-cut per step (fast gather); larger ones are gathered."""


@dataclass(slots=True)
class Episode:
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


class FreshEpisode(NamedTuple):
    """An episode's prices that must be copied into the env's slot (generated or passed in)."""

    env: int
    seed: int | None
    prices: I64
    padded: F32
    returns: F64 | None
    minor_unit: float | None


class PriceStore:
    """Every env's current and last completed episode, their prices, windows and RNGs.

    ``flat`` holds all prices (shared markets, then the slots), ``windows`` the pre-cut
    observation rows (``prewindow``) or ``returns`` the padded log returns, and
    ``thresholds`` the cash that AFFORDABLE needs at each price (``None`` when lot or fee
    differ between envs).

    Args:
        tables: The batch's tables (kinds, per-env parameters, longest episode).

    Raises:
        InvalidConfig: a shared market on which int64 might not be exact.
    """

    def __init__(self, tables: BatchTables) -> None:
        n = len(tables.env_kind)
        w = tables.window
        self.tables = tables
        self.w = w
        self.lmax = tables.lmax
        self.prewindow = w <= PREWINDOW_MAX
        self.shared: dict[int, tuple[Market, int, int]] = {}  # id -> (market, base, rbase)
        self.checked = set[tuple[int, int]]()
        self.rngs: list[np.random.Generator | None] = [None] * n
        self.episodes: list[Episode | None] = [None] * n
        self.previous: list[Episode | None] = [None] * n
        parts_p: list[I64] = []
        parts_w: list[F32] = []
        parts_r: list[F32] = []
        base = rbase = 0
        for i, k in enumerate(tables.env_kind):
            kind = tables.kinds[k]
            m = kind.market
            if not isinstance(m, Market):
                continue
            if id(m) not in self.shared:
                padded = padded_log_returns(m.prices, w)[0]
                self.shared[id(m)] = (m, base, rbase)
                parts_p.append(m.prices)
                if self.prewindow:
                    parts_w.append(np.lib.stride_tricks.sliding_window_view(padded, w))
                else:
                    parts_r.append(padded)
                base += len(m)
                rbase += len(padded)
            if (k, id(m)) not in self.checked:
                self.checked.add((k, id(m)))
                self.check(i, kind, m.prices, m.name)
        self.slot_base = base
        self.slot_rbase = rbase
        self.parts = (parts_p, parts_w, parts_r)
        self.has_slots = False
        self.slots = 2 * n
        self.build(with_slots=False)

    def check(self, i: int, kind: EnvKind, prices: I64, name: str) -> None:
        """Refuse env ``i``'s market ``prices`` when int64 might not be exact on it."""
        check_exact(
            i,
            name,
            prices,
            episode_length=kind.length,
            cash=kind.cash,
            lot_size=kind.lot,
            fee_ppm=kind.fee_ppm,
        )

    def build(self, *, with_slots: bool) -> None:
        """Concatenate the shared markets' arrays and, once needed, the slots' (time-major)."""
        parts_p, parts_w, parts_r = self.parts
        w, rows, slots = self.w, self.lmax + 1, self.slots
        extra_p = [np.zeros(rows * slots, dtype=np.int64)] if with_slots else []
        self.flat = np.concatenate([*parts_p, *extra_p, np.zeros(0, dtype=np.int64)])
        if self.prewindow:
            # Rows as wide as an observation (the position features left 0): a step's
            # observations are then one gather of whole rows.
            total = sum(len(part) for part in parts_w) + (rows * slots if with_slots else 0)
            self.windows = np.zeros((total, w + N_POSITION_FEATURES), dtype=np.float32)
            start = 0
            for part in parts_w:
                self.windows[start : start + len(part), :w] = part
                start += len(part)
            self.returns = np.zeros(0, dtype=np.float32)
        else:
            extra_r = [np.zeros((self.lmax + w) * slots, dtype=np.float32)] if with_slots else []
            self.returns = np.concatenate([*parts_r, *extra_r, np.zeros(0, dtype=np.float32)])
            self.windows = np.zeros((0, w), dtype=np.float32)
        self.offsets = np.arange(w, dtype=np.int64)
        self.has_slots = with_slots
        self.thresholds = self.affordable_at(self.flat)

    def affordable_at(self, prices: I64) -> I64 | None:
        """Cash that AFFORDABLE needs at each price (one lot plus its fee), when all envs share
        lot and fee; ``None`` otherwise (then the engine computes it per step)."""
        lot, fee_ppm = self.tables.lot, self.tables.fee_ppm
        if isinstance(lot, np.ndarray) or isinstance(fee_ppm, np.ndarray):
            return None
        lot_cost = lot * prices
        needed: I64 = lot_cost - (-lot_cost * fee_ppm // PPM)
        return needed

    def rng(self, i: int, seed: int | None) -> np.random.Generator:
        """Env ``i``'s generator after ``reset(seed=seed)``, as gymnasium's Env.reset seeds it."""
        if seed is not None:
            self.rngs[i] = seeding.np_random(seed)[0]
        rng = self.rngs[i]
        if rng is None:
            rng = self.rngs[i] = seeding.np_random()[0]
        return rng

    def begin(
        self, envs: list[int], seeds: Sequence[int | None], markets: Sequence[Market | None], k: int
    ) -> None:
        """Start the next episode of every env in ``envs`` at engine step ``k``: TradingEnv.reset's draws.

        The random draws (market path or start offset) are made env by env from each env's
        own generator, exactly as the scalar env makes them; the copying is vectorized.
        """
        w = self.w
        tables = self.tables
        fresh: list[FreshEpisode] = []
        padded_of: dict[int, F32] = {}
        for i, seed, market in zip(envs, seeds, markets, strict=True):
            kind_index = tables.env_kind[i]
            kind = tables.kinds[kind_index]
            rng = self.rng(i, seed)
            needed = kind.length + 1
            m = market if market is not None else kind.market
            if isinstance(m, MarketSpec):
                generated = m.generate(needed, rng)
                padded, returns = padded_log_returns(generated.prices, w)
                fresh.append(FreshEpisode(i, seed, generated.prices, padded, returns, None))
                continue
            spare = len(m) - needed
            offset = int(rng.integers(0, spare + 1)) if spare else 0
            shared = self.shared.get(id(m))
            if shared is not None and shared[0] is m and (kind_index, id(m)) in self.checked:
                _, base, rbase = shared
                self.episodes[i] = Episode(
                    kind_index, base + offset, 1, rbase + offset, -1, k, seed, m.minor_unit
                )
                continue
            if id(m) not in padded_of:
                padded_of[id(m)] = padded_log_returns(m.prices, w)[0]
            window = m.prices[offset : offset + needed]
            self.check(i, kind, window, m.name)
            padded = padded_of[id(m)][offset : offset + kind.length + w]
            fresh.append(FreshEpisode(i, seed, window, padded, None, m.minor_unit))
        if fresh:
            self.store(fresh, k)

    def store(self, fresh: list[FreshEpisode], k: int) -> None:
        """Copy fresh episodes into their envs' slots, and check the generated ones' bounds."""
        if not self.has_slots:
            self.build(with_slots=True)
        slots, w, lmax = self.slots, self.w, self.lmax
        by_length: dict[int, list[FreshEpisode]] = {}
        for f in fresh:
            by_length.setdefault(len(f.prices), []).append(f)
        for needed, group in by_length.items():
            envs = [f.env for f in group]
            chosen = []
            for i in envs:
                previous = self.previous[i]
                chosen.append(2 * i + (1 if previous is not None and previous.slot == 2 * i else 0))
            slot = np.array(chosen, dtype=np.int64)
            prices = np.stack([f.prices for f in group])
            generated = [j for j, f in enumerate(group) if f.returns is not None]
            if generated:
                returns = np.stack([group[j].returns for j in generated])  # type: ignore[misc]
                self.check_generated([envs[j] for j in generated], prices[generated], returns)
            p2 = self.flat[self.slot_base :].reshape(lmax + 1, slots)
            p2[:needed, slot] = prices.T
            thresholds = self.affordable_at(prices.T)
            if self.thresholds is not None and thresholds is not None:
                t2 = self.thresholds[self.slot_base :].reshape(lmax + 1, slots)
                t2[:needed, slot] = thresholds
            padded = np.stack([f.padded for f in group])
            if self.prewindow:
                w3 = self.windows[self.slot_base :].reshape(lmax + 1, slots, w + N_POSITION_FEATURES)
                view = np.lib.stride_tricks.sliding_window_view(padded, w, axis=1)
                w3[:needed, slot, :w] = view.transpose(1, 0, 2)
            else:
                r2 = self.returns[self.slot_rbase :].reshape(lmax + w, slots)
                r2[: needed + w - 1, slot] = padded.T
            for f, s in zip(group, chosen, strict=True):
                i = f.env
                self.episodes[i] = Episode(
                    self.tables.env_kind[i],
                    self.slot_base + s,
                    slots,
                    self.slot_rbase + s,
                    s,
                    k,
                    f.seed,
                    f.minor_unit,
                )

    def check_generated(self, envs: list[int], prices: I64, returns: F64) -> None:
        """:func:`~tradeguard.env.exactness_problem` for fresh generated episodes, vectorized."""
        kinds = [self.tables.kinds[self.tables.env_kind[i]] for i in envs]
        j = first_inexact(
            prices,
            returns,
            cash=[k.cash for k in kinds],
            lot_size=[k.lot for k in kinds],
            fee_ppm=[k.fee_ppm for k in kinds],
        )
        if j is not None:
            self.check(envs[j], kinds[j], prices[j], "generated market")

    def episode_prices(self, ep: Episode, count: int) -> I64:
        """The first ``count`` prices of episode ``ep``."""
        prices: I64 = self.flat[ep.base + np.arange(count) * ep.stride]
        return prices
