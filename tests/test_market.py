"""Markets: seeded synthetic paths, real series from arrays and CSV, refusals naming the row."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.env import MARKET_KINDS, EnvConfig, Market, MarketSpec, TradingEnv
from tradeguard.errors import InvalidConfig, InvalidMarket


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_market_kinds_are_the_designed_ones() -> None:
    assert set(MARKET_KINDS) == {"random_walk", "trend", "crash", "flat", "gap"}


@pytest.mark.parametrize("kind", MARKET_KINDS)
def test_each_kind_is_deterministic_given_the_rng_seed(kind: str) -> None:
    spec = MarketSpec(kind=kind)  # type: ignore[arg-type]
    a = spec.generate(200, rng(7))
    b = spec.generate(200, rng(7))
    assert a == b and a.prices.tolist() == b.prices.tolist()
    assert len(a) == 200 and a.prices.dtype == np.int64
    assert a.prices.min() >= 1
    assert a.prices[0] == 10_000  # start_price 100.0 at cents
    c = spec.generate(200, rng(8))
    if kind == "flat":
        assert c == a
    else:
        assert c != a


@settings(max_examples=60)
@given(
    kind=st.sampled_from(MARKET_KINDS),
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(2, 300),
    start=st.sampled_from([0.01, 0.05, 1.0, 100.0, 5e6]),
    volatility=st.sampled_from([0.0, 0.01, 0.2, 1.0]),
    drift=st.sampled_from([-0.5, -0.01, 0.0, 0.01, 0.5]),
)
def test_generated_prices_are_integers_of_at_least_one_minor_unit(
    kind: Any, seed: int, length: int, start: float, volatility: float, drift: float
) -> None:
    spec = MarketSpec(kind=kind, start_price=start, volatility=volatility, drift=drift)
    m = spec.generate(length, rng(seed))
    assert len(m) == length
    assert m.prices.dtype == np.int64 and int(m.prices.min()) >= 1
    assert not m.prices.flags.writeable
    assert m == spec.generate(length, rng(seed))


def test_flat_is_constant_and_trend_without_drift_rises() -> None:
    assert (
        MarketSpec(kind="flat", start_price=50.0).generate(5, rng(0)).prices.tolist() == [5_000] * 5
    )
    up = MarketSpec(kind="trend", volatility=0.0).generate(50, rng(0)).prices
    assert (np.diff(up) >= 0).all() and up[-1] > up[0]
    # exp(49 * 0.002) * 10_000, rounded
    assert int(up[-1]) == round(10_000 * math.exp(49 * 0.002))


def test_crash_has_one_drop_of_the_shock_size() -> None:
    prices = MarketSpec(kind="crash", volatility=0.0, shock=0.3).generate(40, rng(3)).prices
    ratios = prices[1:] / prices[:-1]
    moved = np.flatnonzero(ratios != 1.0)
    assert moved.size == 1
    assert ratios[moved[0]] == pytest.approx(0.7, abs=1e-4)


def test_gap_jumps_once_up_or_down_by_the_shock() -> None:
    seen = set()
    for seed in range(20):
        prices = MarketSpec(kind="gap", volatility=0.0, shock=0.2).generate(30, rng(seed)).prices
        ratios = prices[1:] / prices[:-1]
        moved = np.flatnonzero(ratios != 1.0)
        assert moved.size == 1
        r = float(ratios[moved[0]])
        assert r == pytest.approx(0.8, abs=1e-4) or r == pytest.approx(1.2, abs=1e-4)
        seen.add(r > 1)
    assert seen == {True, False}


def test_prices_never_go_below_one_minor_unit() -> None:
    m = MarketSpec(kind="crash", start_price=0.02, drift=-0.5, volatility=1.0, shock=0.99).generate(
        100, rng(1)
    )
    assert int(m.prices.min()) == 1


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (
            {"kind": "random-walk"},
            r"kind='random-walk' is not a market kind.*Did you mean 'random_walk'\?",
        ),
        ({"kind": "crahs"}, r"Did you mean 'crash'\?"),
        ({"start_price": 0.0}, r"start_price=0\.0"),
        ({"start_price": math.nan}, r"start_price=nan"),
        ({"start_price": 0.001}, r"start_price=0\.001 is below one minor unit"),
        ({"volatility": -0.1}, r"volatility=-0\.1"),
        ({"volatility": True}, r"volatility=True"),
        ({"drift": 0.6}, r"drift=0\.6"),
        ({"shock": 0.0}, r"shock=0\.0"),
        ({"shock": 1.0}, r"shock=1\.0"),
        ({"minor_unit": 0}, r"minor_unit=0"),
    ],
)
def test_market_spec_refuses_bad_fields(kwargs: dict[str, Any], pattern: str) -> None:
    with pytest.raises(InvalidConfig, match=pattern):
        MarketSpec(**kwargs)


def test_generate_refuses_a_length_below_two() -> None:
    with pytest.raises(InvalidConfig, match=r"length=1"):
        MarketSpec().generate(1, rng(0))


# --------------------------------------------------------------------------- real series


def test_from_prices_converts_currency_to_ticks() -> None:
    m = Market.from_prices([100.0, 101.5, 99.25])
    assert m.prices.tolist() == [10_000, 10_150, 9_925]
    assert m.in_currency().tolist() == pytest.approx([100.0, 101.5, 99.25])
    fine = Market.from_prices([1.2345, 1.2346], minor_unit=0.0001)
    assert fine.prices.tolist() == [12_345, 12_346]


@pytest.mark.parametrize(
    ("prices", "row", "what"),
    [
        ([100.0, math.nan, 101.0], 1, "is not finite"),
        ([100.0, 101.0, math.inf], 2, "is not finite"),
        ([-math.inf, 1.0], 0, "is not finite"),
        ([100.0, 0.0, 101.0], 1, "is not positive"),
        ([100.0, 101.0, 102.0, -5.0], 3, "is not positive"),
        ([100.0, 100.005], 1, "is not a multiple of minor_unit=0.01"),
    ],
)
def test_from_prices_refuses_bad_prices_naming_the_row(
    prices: list[float], row: int, what: str
) -> None:
    with pytest.raises(InvalidMarket, match=rf"price at row {row} is .*{re.escape(what)}"):
        Market.from_prices(prices)


def test_from_prices_reports_every_bad_row() -> None:
    with pytest.raises(InvalidMarket, match=r"3 such rows, first \[1, 3, 4\]"):
        Market.from_prices([1.0, math.nan, 2.0, math.nan, math.nan])


@pytest.mark.parametrize(
    ("prices", "pattern"),
    [
        (["a", "b"], r"prices must be numbers"),
        ([[1.0, 2.0], [3.0, 4.0]], r"prices must be 1-D; got shape \(2, 2\)"),
        ([1.0], r"at least 2 prices; got 1"),
        ([], r"at least 2 prices; got 0"),
    ],
)
def test_from_prices_refuses_malformed_input(prices: Any, pattern: str) -> None:
    with pytest.raises(InvalidMarket, match=pattern):
        Market.from_prices(prices)


def test_market_constructor_refuses_floats_and_non_positive_ticks() -> None:
    with pytest.raises(InvalidMarket, match=r"1-D integer array of minor units.*float64"):
        Market(np.array([1.0, 2.0]))  # type: ignore[arg-type]
    with pytest.raises(InvalidMarket, match=r"price at row 2 is 0 minor units"):
        Market(np.array([5, 4, 0, 3]))


def test_market_prices_are_a_read_only_copy() -> None:
    source = np.array([100, 101, 102])
    m = Market(source)
    source[0] = 1
    assert m.prices.tolist() == [100, 101, 102]
    with pytest.raises(ValueError):
        m.prices[0] = 7
    assert m == Market(np.array([100, 101, 102])) and hash(m) == hash(
        Market(np.array([100, 101, 102]))
    )
    assert m != Market(np.array([100, 101, 103]))


# --------------------------------------------------------------------------- CSV


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text(text)
    return path


def test_from_csv_reads_the_close_column_case_insensitively(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "Date,Open,Close\n2024-01-01,1,100.5\n2024-01-02,1,101\n2024-01-03,1, 99.99\n"
    )
    m = Market.from_csv(path)
    assert m.prices.tolist() == [10_050, 10_100, 9_999]
    assert Market.from_csv(path, column="open").prices.tolist() == [100, 100, 100]
    assert str(path) in m.name


def test_from_csv_refuses_a_missing_column_with_a_suggestion(tmp_path: Path) -> None:
    path = _write(tmp_path, "date,closing\n2024-01-01,100\n2024-01-02,101\n")
    with pytest.raises(InvalidMarket, match=r"no column 'close'.*Did you mean 'closing'\?"):
        Market.from_csv(path)


@pytest.mark.parametrize(("cell", "shown"), [("abc", "'abc'"), ("", "''"), ("1,5", None)])
def test_from_csv_refuses_a_bad_cell_naming_its_line(
    tmp_path: Path, cell: str, shown: str | None
) -> None:
    row = f'2024-01-02,"{cell}"' if "," in cell else f"2024-01-02,{cell}"
    path = _write(tmp_path, f"date,close\n2024-01-01,100\n{row}\n2024-01-03,102\n")
    pattern = rf"prices\.csv:3: close is {re.escape(shown or repr(cell))}, not a number"
    with pytest.raises(InvalidMarket, match=pattern):
        Market.from_csv(path)


def test_from_csv_refuses_non_finite_and_empty_files(tmp_path: Path) -> None:
    path = _write(tmp_path, "close\n100\nnan\n")
    with pytest.raises(
        InvalidMarket, match=r"prices\.csv: price at row 1 is \S*nan\S*, which is not finite"
    ):
        Market.from_csv(path)
    with pytest.raises(InvalidMarket, match=r"the file is empty"):
        Market.from_csv(_write(tmp_path, ""))


# --------------------------------------------------------------------------- length vs episode


def test_a_market_too_short_for_the_episode_is_refused() -> None:
    cfg = EnvConfig(episode_length=10)
    short = Market(np.arange(1, 11))  # 10 prices; 10 steps need 11
    with pytest.raises(
        InvalidMarket, match=r"has 10 prices; an episode of episode_length=10 steps needs 11"
    ):
        TradingEnv(config=cfg, market=short)
    env = TradingEnv(config=cfg)
    with pytest.raises(InvalidMarket, match=r"needs 11"):
        env.reset(seed=0, options={"market": short})
    env = TradingEnv(config=cfg, market=Market(np.arange(1, 12)))  # exactly enough
    env.reset(seed=0)
    assert env.prices == tuple(range(1, 12))
