"""Price paths: seeded synthetic markets and real series from CSV or arrays.

Prices are held as integer minor units (ticks). A real series is refused, with
the row and the value, if any price is non-finite, non-positive or off the tick
grid: tradeguard never rounds away your data silently.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from tradeguard._validation import check_int, check_number, suggest
from tradeguard.errors import InvalidConfig, InvalidMarket
from tradeguard.limits import MAX_PRICE

__all__ = ["MARKET_KINDS", "MAX_PRICE", "Market", "MarketKind", "MarketSpec"]

MarketKind = Literal["random_walk", "trend", "crash", "flat", "gap"]
MARKET_KINDS: tuple[MarketKind, ...] = get_args(MarketKind)


@dataclass(frozen=True, slots=True, eq=False)
class Market:
    """A price path in integer minor units.

    Build one with :meth:`from_prices`, :meth:`from_csv` or :meth:`MarketSpec.generate`.

    Attributes:
        prices: Read-only int64 array of prices in minor units, all >= 1.
        minor_unit: Value of one minor unit in currency (0.01 = cents).
        name: Where the prices came from, for messages.
    """

    prices: npt.NDArray[np.int64]
    minor_unit: float = 0.01
    name: str = "market"

    def __post_init__(self) -> None:
        prices = np.asarray(self.prices)
        if prices.ndim != 1 or prices.dtype.kind not in "iu":
            raise InvalidMarket(
                f"Market prices must be a 1-D integer array of minor units; got shape "
                f"{prices.shape} dtype {prices.dtype}. Use Market.from_prices() for prices in "
                "currency."
            )
        if len(prices) < 2:
            raise InvalidMarket(f"{self.name}: a market needs at least 2 prices; got {len(prices)}.")
        check_number("minor_unit", self.minor_unit, min_value=0.0, min_exclusive=True)
        bad = np.flatnonzero((prices < 1) | (prices > MAX_PRICE))
        if bad.size:
            i = int(bad[0])
            raise InvalidMarket(
                f"{self.name}: price at row {i} is {int(prices[i])} minor units; expected 1.."
                f"{MAX_PRICE} ({bad.size} such rows, first rows {bad[:5].tolist()})."
            )
        frozen = prices.astype(np.int64, copy=True)
        frozen.flags.writeable = False
        object.__setattr__(self, "prices", frozen)

    def __len__(self) -> int:
        return len(self.prices)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Market)
            and self.minor_unit == other.minor_unit
            and np.array_equal(self.prices, other.prices)
        )

    def __hash__(self) -> int:
        return hash((self.minor_unit, self.prices.tobytes()))

    def __repr__(self) -> str:
        head = ", ".join(str(p) for p in self.prices[:6].tolist())
        more = ", ..." if len(self) > 6 else ""
        return f"Market([{head}{more}], n={len(self)}, minor_unit={self.minor_unit}, name={self.name!r})"

    def in_currency(self) -> npt.NDArray[np.float64]:
        """The prices in currency units (float)."""
        return self.prices.astype(np.float64) * self.minor_unit

    @classmethod
    def from_prices(
        cls,
        prices: Sequence[float] | npt.ArrayLike,
        *,
        minor_unit: float = 0.01,
        name: str = "array",
    ) -> Market:
        """Build a market from prices in currency units.

        Raises:
            InvalidMarket: a price is NaN or infinite, not positive, or not a multiple of
                ``minor_unit`` (pass a smaller ``minor_unit``, or round the series yourself).

        Example:
            >>> Market.from_prices([100.0, 101.5, 99.25]).prices.tolist()
            [10000, 10150, 9925]
        """
        check_number("minor_unit", minor_unit, min_value=0.0, min_exclusive=True)
        try:
            values = np.asarray(prices, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidMarket(f"{name}: prices must be numbers; {exc}.") from None
        if values.ndim != 1:
            raise InvalidMarket(f"{name}: prices must be 1-D; got shape {values.shape}.")
        _refuse(name, values, ~np.isfinite(values), "is not finite", "drop or fill those rows")
        _refuse(name, values, values <= 0, "is not positive", "prices must be > 0")
        ticks = values / minor_unit
        rounded = np.rint(ticks)
        off = np.abs(ticks - rounded) > 1e-6 * np.maximum(1.0, np.abs(ticks))
        _refuse(
            name,
            values,
            off,
            f"is not a multiple of minor_unit={minor_unit}",
            "pass a smaller minor_unit (e.g. 0.0001) or round the series yourself",
        )
        _refuse(name, values, (rounded < 1) | (rounded > MAX_PRICE), "is out of range", f"prices are 1..{MAX_PRICE} minor units")
        return cls(rounded.astype(np.int64), minor_unit, name)

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        column: str = "close",
        minor_unit: float = 0.01,
    ) -> Market:
        """Load prices from column ``column`` of a CSV file with a header row.

        Column names match case-insensitively. Every row must hold a price: an empty
        or non-numeric cell is an error naming its line, never a silently dropped row.

        Raises:
            InvalidMarket: missing column, unreadable cell, or a price :meth:`from_prices` refuses.
        """
        path = Path(path)
        with path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise InvalidMarket(f"{path}: the file is empty; expected a header row and prices.")
            lowered = [h.strip().lower() for h in header]
            if column.lower() not in lowered:
                raise InvalidMarket(
                    f"{path}: no column {column!r}; the header has {header}."
                    f"{suggest(column.lower(), lowered)} Pass column=..."
                )
            idx = lowered.index(column.lower())
            values: list[float] = []
            for line_no, row in enumerate(reader, start=2):
                cell = row[idx].strip() if idx < len(row) else ""
                try:
                    values.append(float(cell))
                except ValueError:
                    raise InvalidMarket(
                        f"{path}:{line_no}: {column} is {cell!r}, not a number. Fix or remove "
                        "that row (tradeguard does not skip rows silently)."
                    ) from None
        return cls.from_prices(values, minor_unit=minor_unit, name=str(path))


def _refuse(name: str, values: npt.NDArray[np.float64], bad: npt.NDArray[np.bool_], what: str, fix: str) -> None:
    rows = np.flatnonzero(bad)
    if rows.size:
        i = int(rows[0])
        raise InvalidMarket(
            f"{name}: price at row {i} is {float(values[i])!r}, which {what}; {fix}. "
            f"{rows.size} such rows, first {rows[:5].tolist()}."
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketSpec:
    """Recipe for seeded synthetic price paths.

    Attributes:
        kind: ``random_walk`` (geometric, drift and volatility per step), ``trend`` (drift
            dominates), ``crash`` (walk, then one drop of ``shock`` at a random step),
            ``flat`` (constant price), ``gap`` (walk with one jump of ``shock``, up or down).
        start_price: First price in currency, > 0.
        drift: Mean log return per step (0.001 = 0.1%).
        volatility: Standard deviation of the log return per step, >= 0.
        shock: Size of the crash or gap as a fraction of price, in (0, 0.99].
        minor_unit: Value of one minor unit in currency.

    Example:
        >>> import numpy as np
        >>> m = MarketSpec(kind="flat", start_price=50.0).generate(3, np.random.default_rng(0))
        >>> m.prices.tolist()
        [5000, 5000, 5000]
    """

    kind: MarketKind = "random_walk"
    start_price: float = 100.0
    drift: float = 0.0
    volatility: float = 0.01
    shock: float = 0.3
    minor_unit: float = 0.01

    def __post_init__(self) -> None:
        if self.kind not in MARKET_KINDS:
            raise InvalidConfig(
                f"kind={self.kind!r} is not a market kind; expected one of "
                f"{', '.join(MARKET_KINDS)}.{suggest(str(self.kind), MARKET_KINDS)}"
            )
        check_number("start_price", self.start_price, min_value=0.0, min_exclusive=True, max_value=1e9)
        check_number("drift", self.drift, min_value=-0.5, max_value=0.5)
        check_number("volatility", self.volatility, min_value=0.0, max_value=1.0)
        check_number("shock", self.shock, min_value=0.0, max_value=0.99, min_exclusive=True)
        check_number("minor_unit", self.minor_unit, min_value=0.0, min_exclusive=True)
        if self.start_price / self.minor_unit < 1:
            raise InvalidConfig(
                f"start_price={self.start_price!r} is below one minor unit ({self.minor_unit})."
            )

    def generate(self, length: int, rng: np.random.Generator) -> Market:
        """Draw a path of ``length`` prices from ``rng`` (the env passes its ``np_random``)."""
        check_int("length", length, min_value=2)
        n = length - 1
        if self.kind == "flat":
            steps = np.zeros(n)
        else:
            drift = self.drift if self.kind != "trend" or self.drift else 0.002
            steps = rng.normal(drift, self.volatility, size=n)
            if self.kind in ("crash", "gap") and n > 0:
                at = int(rng.integers(0, n))
                sign = -1.0 if self.kind == "crash" or rng.random() < 0.5 else 1.0
                steps[at] += math.log1p(sign * self.shock)
        log_path = np.concatenate(([0.0], np.cumsum(steps)))
        ticks = np.rint(self.start_price / self.minor_unit * np.exp(log_path))
        ticks = np.clip(ticks, 1, MAX_PRICE).astype(np.int64)
        return Market(ticks, self.minor_unit, f"{self.kind}")
