"""The adapter for ``tradingenv``'s ``TradingEnvXY`` (package ``tradingenv``, PyPI 0.1.3).

What the env means (read from ``tradingenv/env.py``, ``spaces.py`` and ``broker/``): the
action is a ``BoxPortfolio`` of target weights, one per asset, in ``[max_short,
max_long]`` (shorts and leverage: weights need not sum to 1). At each step the broker
first accrues interest on cash since the last step (``Broker.accrued_interest``: idle
cash earns ``rate - markup``, borrowed cash pays ``rate + markup``, compounded by the
elapsed fraction of a 365-day year), then turns each weight into a number of contracts,
``weight x NLV / price`` (``Weights._to_nr_contracts``), and trades the difference from
the holdings, skipping an asset whose imbalance is under ``margin`` of NLV
(``Rebalancing.make_trades``). A trade pays ``fixed + fee x |notional|``
(``BrokerFees.commissions``) and moves cash by its notional. Money and positions are
float64 and fractional. The env speaks the old gym API (``reset()`` returns the
observation only, ``step()`` 4 values): tradeguard checks it through ``OldGymAPI``.

The adapter copies the env's own numbers into the ledger (cash, holdings, prices, each
trade's quantity and commission, the interest as financing, the broker's net liquidation
value as the reported equity) and declares what the package documents: float64
precision, shorts, borrowing, the fee schedule and the interest schedule. The requested
quantity of each asset is ``weight x NLV / price - holding``, with the broker's NLV at the
start of the rebalance (interest included), as ``Weights._to_nr_contracts`` computes it.

The factory builds the env with ``spread=0`` (the trace has one price per instrument; a
bid-ask spread would need a second), ``steps_delay=0`` (a trade executes at the step
that asked for it) and the ``24/7`` calendar (every row of the market is a step).
"""

from __future__ import annotations

import copy
import math
import weakref
from typing import Any

import numpy as np

from tradeguard.invariants._adapter import MarketWrapperAdapter, StepData, import_optional
from tradeguard.trace import (
    CORE_FIELDS,
    FeeSchedule,
    FinancingSchedule,
    Leg,
    Precision,
    StepRecord,
    TraceMeta,
)

__all__ = ["TradingEnvAdapter", "TradingEnvMarketEnv", "make_tradingenv"]

_SUPPLIES = (CORE_FIELDS - {"mask", "cost_basis_before", "components"}) | {"legs", "financing", "reported_equity"}
SECONDS_IN_YEAR = 365 * 24 * 60 * 60
"""The year ``tradingenv.broker.broker`` compounds interest over."""
_DAY = 86_400


def _require() -> Any:
    return import_optional("tradingenv.env", package="tradingenv", extra="peers")


class TradingEnvMarketEnv:
    """The real ``tradingenv.env.TradingEnvXY``, rebuilt on the market given to ``reset``.

    It keeps the env's old API: ``reset(market=None)`` returns the observation only (the
    gate reaches it through ``OldGymAPI``, which passes reset options as keyword
    arguments), ``step`` is the env's own.

    Args:
        steps: Steps per episode of the default market.
        instruments: Asset names; asset ``i`` reads the market path rotated left by
            ``i x len // n`` rows.
        **env_kwargs: Passed to ``TradingEnvXY`` (``fee``, ``fixed``, ``markup``,
            ``max_long``, ``max_short``, ``margin``, ``cash``, ``reward_clipping``...).
    """

    def __init__(self, *, steps: int = 30, instruments: tuple[str, ...] = ("A", "B"), rate: float = 0.02,
                 **env_kwargs: Any) -> None:
        self._xy = _require().TradingEnvXY
        self.instruments = instruments
        self.rate = rate
        self.env_kwargs = {"cash": 10_000.0, "spread": 0.0, "steps_delay": 0, "calendar": "24/7",
                           "transformer": "z-score", "fee": 0.0002, "fixed": 0.0, "markup": 0.005,
                           "margin": 0.02, "max_long": 1.0, "max_short": -1.0, **env_kwargs}
        # TradingEnvXY's first row warms the observation up: L + 2 rows make L steps.
        self.tradeguard_market_length = steps + 2
        self.tradeguard_minor_unit = 0.01
        self._market: Any = None
        self._default_length = steps + 2
        # Building a TradingEnvXY takes ~20 ms (pandas), and the gate makes an env for every
        # probe, then resets it on a market of its own: the env is built on the first market
        # reset() is given. The spaces come from the first env built with these settings;
        # each env takes a copy, with its own unseeded random stream.
        self._env: Any = None
        key = self._template_key()
        spaces = _TEMPLATE_SPACES.get(key) if key is not None else None
        if spaces is None:
            template = self._build(self._default_market())
            spaces = (template.action_space, template.observation_space)
            if key is not None:
                if len(_TEMPLATE_SPACES) >= _TEMPLATES_KEPT:
                    del _TEMPLATE_SPACES[next(iter(_TEMPLATE_SPACES))]
                _TEMPLATE_SPACES[key] = spaces
        self.action_space, self.observation_space = copy.deepcopy(spaces)

    def _template_key(self) -> str | None:
        """The settings as an exact key, or ``None`` (no sharing) when a value is not a plain
        number, string or ``None``: a numpy array's repr rounds (and follows print options)."""
        values = [self.rate, *self.env_kwargs.values()]
        if not all(v is None or isinstance(v, (bool, int, float, str)) for v in values):
            return None
        return repr((self._xy, self.instruments, self.rate, self._default_length, sorted(self.env_kwargs.items())))

    def _default_market(self) -> Any:
        from tradeguard.env import MarketSpec

        return MarketSpec(kind="random_walk", start_price=100.0, volatility=0.02).generate(
            self._default_length, np.random.default_rng(0))

    def _build(self, market: Any) -> Any:
        import pandas as pd

        path = market.prices.astype(np.float64) * market.minor_unit
        n = len(self.instruments)
        shift = len(path) // n
        index = pd.date_range("2021-03-01", periods=len(path), freq="D")
        prices = pd.DataFrame({name: np.roll(path, -i * shift) for i, name in enumerate(self.instruments)},
                              index=index)
        features = np.log(prices).diff().fillna(0.0)
        rate = pd.Series(self.rate, index=index, name="rate")
        return self._xy(features, prices, rate=rate, **self.env_kwargs)

    @property
    def env(self) -> Any:
        """The ``TradingEnvXY`` of the current market (built on the default market if none was given yet)."""
        if self._env is None:
            self._rebuild(self._default_market())
        return self._env

    def _rebuild(self, market: Any) -> None:
        env = self._build(market)
        # One action space (and its random stream) across the markets the env is rebuilt on.
        env.action_space = self.action_space
        self._env = env
        self._market = market
        self.tradeguard_minor_unit = market.minor_unit

    @property
    def unwrapped(self) -> Any:
        return self

    def reset(self, market: Any = None) -> Any:
        if market is not None and (self._env is None or market != self._market):
            self._rebuild(market)
        return self.env.reset()

    def step(self, action: Any) -> tuple[Any, float, bool, dict[str, Any]]:
        result: tuple[Any, float, bool, dict[str, Any]] = self.env.step(action)
        return result

    @property
    def broker(self) -> Any:
        return self.env.broker

    @property
    def exchange(self) -> Any:
        return self.env.exchange

    @property
    def contracts(self) -> tuple[Any, ...]:
        return tuple(self.env.action_space.contracts)


_TEMPLATE_SPACES: dict[str, tuple[Any, Any]] = {}
"""The spaces of a ``TradingEnvXY`` per settings (at most ``_TEMPLATES_KEPT``), never sampled: each env takes a copy."""
_TEMPLATES_KEPT = 64


class _Book:
    """The account between two steps, as the adapter read it."""

    __slots__ = ("cash", "positions", "prices", "time")

    def __init__(self, env: TradingEnvMarketEnv) -> None:
        broker, exchange = env.broker, env.exchange
        holdings = broker.holdings_quantity
        self.cash = float(holdings.get(broker.base_currency, 0.0))
        self.positions = [float(holdings.get(c, 0.0)) for c in env.contracts]
        self.prices = [float(exchange[c].mid_price) for c in env.contracts]
        self.time = env.env.now()


class TradingEnvAdapter(MarketWrapperAdapter):
    """Turns ``tradingenv`` ``TradingEnvXY`` steps into multi-instrument ledger lines.

    Action ``0`` is ``HOLD`` (no trade executed), ``1`` is ``REBALANCE``: a step predicts
    REBALANCE when some asset's requested quantity is not zero, and executes it when some
    trade executed; a leg skipped because its imbalance is under ``margin`` carries the
    reason ``BELOW_MARGIN``; a step on a ruined account (the broker raises, no trade)
    ``ACCOUNT_RUINED``.
    """

    name = "tradingenv"

    def __init__(self) -> None:
        self._books: weakref.WeakKeyDictionary[Any, _Book] = weakref.WeakKeyDictionary()

    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        market_env: TradingEnvMarketEnv = env.unwrapped
        kw = market_env.env_kwargs
        rate, markup = market_env.rate, float(kw["markup"])

        def interest(record: StepRecord) -> float:
            return _financing(record, rate, markup)

        return TraceMeta(
            env_id="tradingenv TradingEnvXY",
            action_names=("HOLD", "REBALANCE"),
            action_kinds=("hold", "rebalance"),
            initial_cash=float(kw["cash"]),
            initial_position=0.0,  # the broker starts with the deposit only (TradingEnv.reset)
            minor_unit=1.0,
            seed=seed,
            supplies=_SUPPLIES,
            precision=Precision.float64(),
            instruments=market_env.instruments,
            long_only=float(kw["max_short"]) >= 0,
            borrows_cash=True,
            fee_schedule=FeeSchedule(rate=float(kw["fee"]), fixed=float(kw["fixed"])),
            financing_schedule=FinancingSchedule(function=interest),
        )

    def begin(self, env: Any, observation: Any, info: dict[str, Any]) -> None:
        self._books[env.unwrapped] = _Book(env.unwrapped)

    def record(self, env: Any, step: StepData) -> StepRecord:
        market_env: TradingEnvMarketEnv = env.unwrapped
        was = self._books[market_env]
        now = _Book(market_env)
        self._books[market_env] = now
        rebalancing = step.info.get("_rebalancing") if isinstance(step.info, dict) else None
        contracts = market_env.contracts
        traded = [0.0] * len(contracts)
        fees = [0.0] * len(contracts)
        exec_prices = list(was.prices)
        if rebalancing is not None:
            for trade in rebalancing.trades:
                i = contracts.index(trade.contract)
                traded[i] += float(trade.quantity)
                fees[i] += float(trade.cost_of_commissions)
                exec_prices[i] = float(trade.acq_price)
            financing = -float(rebalancing.profit_on_idle_cash)
        else:  # the broker found the account ruined before trading: only interest moved cash
            financing = -(now.cash - was.cash)
        equity_before = was.cash + math.fsum(q * p for q, p in zip(was.positions, exec_prices, strict=True))
        # The weights apply to the broker's NLV once the interest is in (its context_pre, the
        # value Weights._to_nr_contracts reads): the same operations, so the same bits.
        nlv = float(rebalancing.context_pre.nlv) if rebalancing is not None else equity_before - financing
        weights = np.asarray(step.action, dtype=np.float64).reshape(-1)
        requested = [float(w) * nlv / p / 1.0 - q for w, p, q in zip(weights, exec_prices, was.positions, strict=True)]
        margin = float(market_env.env_kwargs["margin"])
        reasons: list[str | None] = []
        for i, (req, q) in enumerate(zip(requested, traded, strict=True)):
            if rebalancing is None and req != 0:
                reasons.append("ACCOUNT_RUINED")
            elif q == 0 and req != 0 and abs(req * exec_prices[i] / nlv) < margin:
                reasons.append("BELOW_MARGIN")
            else:
                reasons.append(None)
        legs = tuple(
            Leg(price=exec_prices[i], next_price=now.prices[i], position_before=was.positions[i],
                position_after=now.positions[i], quantity=traded[i], fee=fees[i], requested=requested[i])
            for i in range(len(contracts))
        )
        equity_after = now.cash + math.fsum(q * p for q, p in zip(now.positions, now.prices, strict=True))
        predicted = 1 if any(requested) else 0
        executed = 1 if any(traded) else 0
        try:
            reported = float(market_env.broker.net_liquidation_value(raise_if_broke=False))
        except Exception:  # a price the broker cannot find: no valuation to compare
            reported = None
        return StepRecord(
            t=step.t, price=0, next_price=0, predicted=predicted, executed=executed,
            rejected=predicted != executed, reason=next((r for r in reasons if r is not None), None),
            position_before=0, position_after=0, cash_before=was.cash, cash_after=now.cash,
            equity_before=equity_before, equity_after=equity_after, quantity=0, fee=math.fsum(fees),
            reward=float(step.reward), components=(), mask=None, cost_basis_before=0, legs=legs,
            financing=financing, reported_equity=reported,
        )


def _financing(record: StepRecord, rate: float, markup: float) -> float:
    """The interest the package's broker charges (positive) or pays (negative) on a step.

    ``Broker.accrued_interest``: ``cash x ((1 + rate - markup x sign(cash)) ** years - 1)``
    over the time since the last accrual, floored at 0 on positive cash; the first
    rebalance of an episode starts the clock (nothing accrues). Steps are one day apart.
    """
    if record.t == 0:
        return 0.0
    cash = float(record.cash_before)
    cagr = rate - markup * float(np.sign(cash))
    accrued = cash * (float((1 + cagr) ** (_DAY / SECONDS_IN_YEAR)) - 1)
    if cash > 0 and accrued < 0:
        accrued = 0.0
    return float(-accrued)


def make_tradingenv(*, steps: int = 30, **env_kwargs: Any) -> TradingEnvMarketEnv:
    """``tradingenv``'s ``TradingEnvXY`` on two assets, ready to take markets (old gym API).

    Shorts to -100% and longs to +100% per asset, a 0.02% fee, 0.5% markup on a 2% rate,
    a 2% rebalancing margin (the package's defaults, but ``spread=0``, ``steps_delay=0``
    and the ``24/7`` calendar: see the module docstring).
    """
    return TradingEnvMarketEnv(steps=steps, **env_kwargs)
