"""The batch engine's arithmetic: the scalar machine's and shaper's formulas, vectorized.

Each function does for every env at once what :class:`~tradeguard.env.Machine`,
:class:`~tradeguard.env.RewardShaper` or :class:`~tradeguard.env.TradingEnv` does for one,
with the same operations in the same order, so the results are the same bits:
:func:`trade` executes the envs that trade, :func:`total_rewards` sums the reward
components, :func:`log_like_math` takes the observation's log.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeguard.env._batch_tables import BUYS, BatchTables
from tradeguard.env._config import PPM

__all__ = ["log_like_math", "total_rewards", "trade"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def _sub(param: Any, idx: I64) -> Any:
    """A per-env parameter for envs ``idx`` (a scalar when all envs share it)."""
    return param[idx] if isinstance(param, np.ndarray) else param


def trade(
    tables: BatchTables,
    state: I64,
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

    Args:
        tables: The batch's tables.
        state: Cash, position and cost basis of every env before the step (3 x N).
        traded: The envs whose executed action has an effect.
        effect: Every env's effect code (see :data:`EFFECTS`).
        executed: Every env's executed action.
        price: Every env's price now.
        after: Where the state after the step, quantity and fee go (5 x N).
        realized: Where the realized PnL goes (N).
    """
    c, q0, b0 = state.take(traded, axis=1)
    p = price.take(traded)
    ex = executed.take(traded)
    size = tables.size_tab.take(ex if tables.kind7 is None else tables.kind7[traded] + ex)
    buy = BUYS.take(ex)
    # Machine.buy_quantity. Its while-loop never runs: budget * PPM //
    # (lot_cost * (PPM + fee)) lots cost n with n * (PPM + fee) <= budget * PPM,
    # so n + ceil(n * fee / PPM) <= budget (tests/test_batch_engine.py checks it).
    budget = c * size // PPM
    budget *= PPM
    # Machine.sell_quantity; CLOSE's size is PPM in the table, so it sells the whole position.
    if tables.unit_lot:  # lot_size 1 everywhere: units are lots
        lots = budget // (p * _sub(tables.lot_divisor, traded))
        np.maximum(lots, 1, out=lots)
        sold = q0 * size // PPM
        np.maximum(sold, 1, out=sold)
        np.minimum(sold, q0, out=sold)
        units = np.where(buy, lots, sold)
    else:
        lot = _sub(tables.lot, traded)
        lots = budget // (lot * p * _sub(tables.lot_divisor, traded))
        np.maximum(lots, 1, out=lots)
        held = q0 // lot
        sold = held * size // PPM
        np.maximum(sold, 1, out=sold)
        np.minimum(sold, held, out=sold)
        units = np.where(buy, lots, sold)
        units *= lot
        np.copyto(units, q0, where=effect.take(traded) == 3)  # CLOSE: the whole position, not whole lots
    notional = units * p
    f = notional * -_sub(tables.fee_ppm, traded)
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


def total_rewards(comp: F64, summed: Sequence[int], out: F64 | None = None) -> F64:
    """:func:`~tradeguard.trace.total_reward` of every env (column) at once, bit for bit.

    The same additions in the same order, elementwise: ``0.0 + c[summed[0]]``, then
    each further row added in place. Rows left out of ``summed`` must be zero (0.0 or
    -0.0) for every env: adding them would change nothing (see :class:`BatchTables`).
    Spelled as one ``np.add`` per row rather than a reduction, whose order of additions
    is numpy's choice (pairwise along a contiguous axis).

    Args:
        comp: Components, shape ``(7, num_envs)``.
        summed: Indices of the rows to add, in order.
        out: Where to write the rewards (default: a new array); must not be a row of ``comp``.

    Returns:
        The rewards, shape ``(num_envs,)`` (``out`` when given).

    Example:
        >>> comp = np.zeros((7, 2))
        >>> comp[0], comp[4] = [1.5, -0.0], [0.0, -0.05]
        >>> total_rewards(comp, [0, 4]).tolist()
        [1.5, -0.05]
    """
    total: F64 = np.empty(comp.shape[1], dtype=np.float64) if out is None else out
    if not summed:
        total[...] = 0.0
        return total
    np.add(comp[summed[0]], 0.0, out=total)  # 0.0 + c0 (turns -0.0 into 0.0, as the loop does)
    for j in summed[1:]:
        np.add(total, comp[j], out=total)
    return total


def log_like_math(ratio: F64) -> F64:
    """``math.log`` of every element, as float64 that rounds to the same float32.

    numpy's vectorized log may differ from the C library's (what ``math.log`` calls) in
    the last bit. Such a difference changes the float32 observation only when the
    result lies within a few float64 ulps of a float32 rounding tie; those elements
    (about one in 10**8) are recomputed with ``math.log``.

    Args:
        ratio: Positive float64 values.

    Returns:
        Their logs, a new array.

    Example:
        >>> log_like_math(np.array([1.0, math.e])).tolist()
        [0.0, 1.0]
    """
    out = np.log(ratio)
    low = out.view(np.int64) & 0x1FFFFFFF
    near = (low - 0x0FFFFFFC).view(np.uint64) <= 8
    if near.any():
        for j in np.flatnonzero(near).tolist():
            out[j] = math.log(float(ratio[j]))
    return out
