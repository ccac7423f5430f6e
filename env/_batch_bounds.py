"""The batch engine's int64 exactness: the bounds, and the checks that refuse a market past them.

The scalar env computes with Python integers, the batch engine with int64.
:func:`exactness_problem` states when int64 is exact (equity below :data:`MAX_EQUITY`
minor units, position below :data:`MAX_POSITION` units, one lot's cost times ``1 + fee``
in ppm below 2**63); :func:`check_exact` turns a failed bound into
:class:`~tradeguard.errors.InvalidConfig` naming the env and the fix, and
:func:`first_inexact` screens many freshly generated episodes at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from tradeguard.env._config import PPM
from tradeguard.errors import InvalidConfig

__all__ = [
    "INT64_MAX",
    "MAX_EQUITY",
    "MAX_POSITION",
    "check_exact",
    "exactness_problem",
    "first_inexact",
]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

INT64_MAX = 2**63 - 1
MAX_EQUITY = INT64_MAX // PPM
"""Largest equity (minor units) an episode may reach for int64 to be exact: 9_223_372_036_854.

Every product the machine forms is at most equity times one million (``cash * size_ppm``,
``budget * PPM``, ``notional * fee_ppm``, ``held_lots * size_ppm``)."""
MAX_POSITION = math.isqrt(INT64_MAX)
"""Largest position (units) for the partial sell's cost-basis share to be exact: 3_037_000_499."""


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


def check_exact(
    env: int,
    market_name: str,
    prices: I64,
    *,
    episode_length: int,
    cash: int,
    lot_size: int,
    fee_ppm: int,
) -> None:
    """Refuse env ``env``'s market when int64 might not be exact on it (:func:`exactness_problem`).

    Args:
        env: The env's index in the batch (for the message).
        market_name: The market's name (for the message).
        prices: The prices the env's episodes are drawn from, in minor units.
        episode_length: Steps per episode.
        cash: Starting cash in minor units.
        lot_size: Units per lot.
        fee_ppm: Fee in parts per million of notional.

    Raises:
        InvalidConfig: a bound fails; the message names the env, the market, the bound and the
            ways out.

    Example:
        >>> calm = np.array([9000, 8000])
        >>> check_exact(0, "calm", calm, episode_length=1, cash=10**6, lot_size=1, fee_ppm=0)
    """
    problem = exactness_problem(
        prices,
        episode_length=episode_length,
        cash=cash,
        lot_size=lot_size,
        fee_ppm=fee_ppm,
    )
    if problem is not None:
        raise InvalidConfig(
            f"env {env} (market {market_name!r}, {len(prices)} prices, cash {cash}, lot_size "
            f"{lot_size}): {problem}. The batch engine computes with int64; lower "
            "EnvConfig.cash, episode_length or lot_size, use a calmer market, or step this "
            "config with the scalar TradingEnv (Python integers, no limit)."
        )


def first_inexact(
    prices: I64,
    returns: F64,
    *,
    cash: Sequence[int],
    lot_size: Sequence[int],
    fee_ppm: Sequence[int],
) -> int | None:
    """The first of many freshly generated episodes that may break a bound, vectorized over episodes.

    A screen, as conservative as :func:`exactness_problem`'s bound: the episode it names
    is then checked exactly with :func:`check_exact`. Each episode covers its whole path,
    so the growth bound is the sum of its up-moves.

    Args:
        prices: One episode per row, in minor units.
        returns: The episodes' log returns (column ``t`` is ``log(p[t] / p[t - 1])``).
        cash: Each episode's starting cash in minor units.
        lot_size: Each episode's units per lot.
        fee_ppm: Each episode's fee in parts per million of notional.

    Returns:
        The row of the first episode that fails the screen, or ``None``.

    Example:
        >>> p = np.array([[9000, 18000], [9000, 8000]])
        >>> r = np.log(p / np.array([[9000], [9000]]))
        >>> first_inexact(p, r, cash=[MAX_EQUITY, MAX_EQUITY], lot_size=[1, 1], fee_ppm=[0, 0])
        0
    """
    cash_f = np.array(cash, dtype=np.float64)
    ups = np.where(prices[:, 1:] > prices[:, :-1], returns[:, 1:], 0.0)
    log_growth = ups.sum(axis=1)
    steps = prices.shape[1] - 1
    slack = 1e-12 + 1e-14 * steps + 4 * np.finfo(np.float64).eps * steps * log_growth
    equity = np.where(log_growth > 0.0, cash_f * np.exp(log_growth + slack), cash_f)
    p_min = prices.min(axis=1)
    p_max = prices.max(axis=1).astype(object)
    lot_cost = [
        lot * int(pm) * (PPM + fee) for lot, fee, pm in zip(lot_size, fee_ppm, p_max, strict=True)
    ]
    bad = (equity > MAX_EQUITY) | (equity / p_min > MAX_POSITION) | (
        np.array([c > INT64_MAX for c in lot_cost], dtype=np.bool_)
    )
    if bad.any():
        return int(np.flatnonzero(bad)[0])
    return None
