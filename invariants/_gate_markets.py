"""The markets the gate's examples trade: drawn short, fitted to the env each example builds
(its ``market_length``, plus the example's spare for an env that starts at a random point of a
longer market), and the prices a counterexample shows of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tradeguard.invariants._settings import flat_trimmed

__all__ = ["ExampleMarkets", "fit_market", "hold_flat"]


def hold_flat(market: Any, length: int) -> Any:
    """``market`` held flat after its last price up to ``length`` prices (as it is when longer)."""
    from tradeguard.env import Market

    prices = market.prices
    if len(prices) >= length:
        return market
    padded = np.concatenate((prices, np.full(length - len(prices), prices[-1], dtype=prices.dtype)))
    return Market(padded, market.minor_unit, market.name)


def fit_market(market: Any, length: int) -> Any:
    """``market`` with exactly ``length`` prices: its first ones, held flat after its last."""
    from tradeguard.env import Market

    if len(market.prices) > length:
        return Market(market.prices[:length], market.minor_unit, market.name)
    return hold_flat(market, length)


class ExampleMarkets:
    """Fits each example's drawn market to its env, and shows a counterexample's.

    Args:
        market_length: The adapter's ``market_length`` hook (``None``: the env takes no market).
        probe_length: What it returned for the env built with no drawn settings.
        offset: Where a market of ``probe_length`` prices starts being traded when it is longer
            than the gate's episodes (the env trades its last prices).
        instruments: How many instruments the env trades.
        build: The factory of an example's env, for drawn settings (``None``: none are drawn).
    """

    def __init__(self, market_length: Callable[[Any], int | None] | None, probe_length: int | None, *, offset: int,
                 instruments: int, build: Callable[[Any], Callable[[], Any]] | None) -> None:
        self.market_length, self.probe_length = market_length, probe_length
        self.offset, self.instruments, self.build = offset, instruments, build
        self.needed: dict[str, int | None] = {}  # prices each drawn settings' env needs, by repr(settings)

    def of(self, market: Any, settings: Any, spare: int) -> Any:
        """The market an example's env trades: ``market`` with the prices the env built with
        ``settings`` needs (its first ones, or held flat after its last), and ``spare`` more."""
        if market is None:
            return None
        needed = self.probe_length
        if settings is not None and self.build is not None and self.market_length is not None:
            key = repr(settings)
            if key not in self.needed:
                env = self.build(settings)()
                try:
                    self.needed[key] = self.market_length(env)
                finally:
                    env.close()
            needed = self.needed[key]
        return market if needed is None else fit_market(market, needed + spare)

    def shown(self, prices: Any, steps: int, settings: Any, spare: int) -> tuple[int, ...] | None:
        """The prices a counterexample shows: those its steps trade, or with drawn settings (which may
        move where the episode starts in the market) every price up to where the market stays flat;
        every price of a market longer than the episode needs (``spare``: the env chose where to start)."""
        if prices is None:
            return None
        if spare or self.instruments > 1:
            # Several instruments: the adapter may price each from any part of the market (tradingenv's
            # reads it rotated), so every price is shown; a cut market would not replay.
            return tuple(int(p) for p in prices)
        if settings is not None:
            return flat_trimmed(prices)
        # The prices its steps trade (one more marks the last step).
        return tuple(int(p) for p in prices[: self.offset + steps + 1])
