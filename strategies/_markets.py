"""Market strategies: price paths drawn move by move, so that they shrink well.

A path is a start price and a list of integer moves, each drawn by Hypothesis:
moves in basis points of the current price (``+25`` is +0.25%), plus, for the
``extreme`` kind, jumps by powers of ten and jumps to the price bounds. Each
price is rounded to the tick and clamped to ``[min_price_ticks, max_price_ticks]``.
Shrinking a move shrinks it towards 0 (no change), so paths shrink towards flat.
"""

from __future__ import annotations

from typing import Literal, get_args

import hypothesis.strategies as st
import numpy as np
from hypothesis.errors import InvalidArgument

from tradeguard.env import Market
from tradeguard.errors import InvalidMarket
from tradeguard.strategies._common import anchored, check_int_arg, check_options, check_sizes

__all__ = ["PATH_KINDS", "ROUND_PRICE", "PathKind", "markets"]

PathKind = Literal["flat", "random_walk", "trend", "crash", "gap", "extreme"]
"""Kinds of price path :func:`markets` draws (``flat`` first: the shrink target)."""
PATH_KINDS: tuple[PathKind, ...] = get_args(PathKind)

ROUND_PRICE = 10_000
"""Where start prices shrink to: 10000 ticks (100.00 at cents)."""

MAX_LENGTH = 100_000
_BP = 10_000
_NORMAL_PRICES = (100, 10_000_000)
"""Start prices of the non-extreme kinds: 1.00 to 100,000.00 at cents, where a default
account (10,000.00) can buy at least one unit of most of them."""
_WALK_BP = 200
_TREND_BP = 300
_CRASH_BP = (1_000, 9_000)
_GAP_BP = (500, 5_000)
_FACTORS = (10, 100, 1_000, 1_000_000)


def markets(
    *,
    min_length: int = 2,
    max_length: int = 60,
    kinds: tuple[PathKind, ...] | list[PathKind] = PATH_KINDS,
    min_price_ticks: int = 1,
    max_price_ticks: int = 10**9,
    minor_unit: float = 0.01,
) -> st.SearchStrategy[Market]:
    """:class:`~tradeguard.env.Market` price paths of ``min_length..max_length`` prices.

    Kinds (the market's ``name``):

    - ``flat``: one price throughout.
    - ``random_walk``: moves of -2% to +2% per step.
    - ``trend``: every move in one direction (up or down), 0% to 3% per step.
    - ``crash``: a walk of -1% to +1% moves with one drop of 10% to 90%.
    - ``gap``: a walk of -1% to +1% moves with one jump of 5% to 50%, up or down.
    - ``extreme`` (extreme but legal): starts at a price bound (1 tick, or
      ``max_price_ticks``) or anywhere between, and mixes small moves with jumps by
      x/÷ 10, 100, 1000 or a million and jumps straight to either bound.

    Non-extreme kinds start between 100 and 10,000,000 ticks (within the bounds).
    Every price is an integer in ``[min_price_ticks, max_price_ticks]``.

    Shrinks towards a flat market of ``min_length`` prices at 10000 ticks (the round
    price, or the bound nearest to it). A path that must move keeps its kind (the
    shrinker rarely jumps between kinds) and shrinks its moves towards 0 and its
    shocks towards their smallest size: ``[10000, 9000]`` for a crash, ``[10000,
    10500]`` for a gap, ``[10000, 10001]`` for a random walk.

    Args:
        min_length: Fewest prices, in [2, 100000] (an episode of L steps needs L + 1).
        max_length: Most prices, in [min_length, 100000].
        kinds: The kinds to draw from, a non-empty subset of the above.
        min_price_ticks: Lowest price in ticks (minor units), >= 1.
        max_price_ticks: Highest price in ticks, in [min_price_ticks, 10**12].
        minor_unit: Currency value of one tick, passed to the :class:`Market`.

    Raises:
        InvalidArgument: a length or price bound out of range or inverted, an unknown
            or empty ``kinds``, a ``minor_unit`` that is not a positive number.

    Example:
        >>> from hypothesis import find
        >>> find(markets(), lambda m: True).prices.tolist()
        [10000, 10000]
        >>> find(markets(kinds=("crash",)), lambda m: True).prices.tolist()
        [10000, 9000]
    """
    lo_len, hi_len = check_sizes(
        "min_length", min_length, "max_length", max_length, lowest=2, highest=MAX_LENGTH
    )
    chosen = check_options("kinds", kinds, PATH_KINDS)
    lo_p = check_int_arg("min_price_ticks", min_price_ticks, min_value=1)
    hi_p = check_int_arg("max_price_ticks", max_price_ticks, min_value=1)
    if hi_p < lo_p:
        raise InvalidArgument(
            f"max_price_ticks={hi_p!r} is below min_price_ticks={lo_p!r}; expected "
            "min_price_ticks <= max_price_ticks."
        )
    if (
        isinstance(minor_unit, bool)
        or not isinstance(minor_unit, (int, float))
        or not minor_unit > 0
    ):
        raise InvalidArgument(f"minor_unit={minor_unit!r} must be a positive number, e.g. 0.01.")
    try:
        Market(np.array([lo_p, hi_p], dtype=np.int64), float(minor_unit))
    except (InvalidMarket, OverflowError) as exc:
        raise InvalidArgument(
            f"min_price_ticks={lo_p!r}, max_price_ticks={hi_p!r}: a Market cannot hold these "
            f"prices ({exc})"
        ) from None
    return _market(lo_len, hi_len, chosen, lo_p, hi_p, float(minor_unit))


def _apply_bp(price: int, bp: int) -> int:
    """``price`` moved by ``bp`` basis points, rounded half up to the tick (bp >= -10000)."""
    return (price * (_BP + bp) + _BP // 2) // _BP


@st.composite
def _extreme_move(draw: st.DrawFn, price: int, lo: int, hi: int) -> int:
    op = draw(st.integers(0, 3))
    if op == 0:
        return _apply_bp(price, draw(st.integers(-_WALK_BP, _WALK_BP)))
    if op == 1:
        return price * draw(st.sampled_from(_FACTORS))
    if op == 2:
        return price // draw(st.sampled_from(_FACTORS))
    return draw(st.sampled_from((lo, hi)))


@st.composite
def _market(
    draw: st.DrawFn,
    lo_len: int,
    hi_len: int,
    kinds: tuple[str, ...],
    lo: int,
    hi: int,
    minor_unit: float,
) -> Market:
    kind = draw(st.sampled_from(kinds))
    # Moves are drawn as lists of variable length, so that the shrinker can delete a
    # quiet move anywhere (bringing a crash or a gap to the front), not only the last.
    lo_moves, hi_moves = lo_len - 1, hi_len - 1
    moves = draw(st.integers(lo_moves, hi_moves)) if kind in ("extreme", "flat") else -1
    if kind == "extreme":
        start = draw(st.one_of(st.sampled_from((lo, hi)), anchored(lo, hi, ROUND_PRICE)))
    else:
        nlo, nhi = max(lo, _NORMAL_PRICES[0]), min(hi, _NORMAL_PRICES[1])
        start = draw(
            anchored(nlo, nhi, ROUND_PRICE) if nlo <= nhi else anchored(lo, hi, ROUND_PRICE)
        )
    bps: list[int] = []
    if kind == "random_walk":
        bps = draw(st.lists(st.integers(-_WALK_BP, _WALK_BP), min_size=lo_moves, max_size=hi_moves))
    elif kind == "trend":
        sign = draw(st.sampled_from((1, -1)))
        bps = [
            sign * m
            for m in draw(st.lists(st.integers(0, _TREND_BP), min_size=lo_moves, max_size=hi_moves))
        ]
    elif kind in ("crash", "gap"):
        bps = draw(
            st.lists(
                st.integers(-_WALK_BP // 2, _WALK_BP // 2),
                min_size=max(lo_moves, 1),
                max_size=hi_moves,
            )
        )
        at = draw(st.integers(0, len(bps) - 1))
        if kind == "crash":
            shock = -draw(st.integers(*_CRASH_BP))
        else:
            shock = draw(st.sampled_from((1, -1))) * draw(st.integers(*_GAP_BP))
        # compose the walk's move and the shock multiplicatively, in basis points
        bps[at] = ((_BP + bps[at]) * (_BP + shock) + _BP // 2) // _BP - _BP
    if bps:
        moves = len(bps)
    prices = [start]
    price = start
    for i in range(moves):
        if kind == "extreme":
            price = draw(_extreme_move(price, lo, hi))
        elif kind != "flat":
            price = _apply_bp(price, bps[i])
        price = min(max(price, lo), hi)
        prices.append(price)
    return Market(np.array(prices, dtype=np.int64), minor_unit, kind)
