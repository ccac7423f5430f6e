"""The adapter for gym-trading-env's ``TradingEnv`` (package ``gym-trading-env``).

What the env keeps (read from ``gym_trading_env/environments.py`` and
``utils/portfolio.py``, version 0.3.5): the action is an index into ``positions``, the
*target* exposure as a fraction of the portfolio (-1 short, 0 flat, 1 all-in, 2
leveraged). A step trades only when the target differs from the current one
(``_take_action``), at the close of the current row, then moves to the next row. The
portfolio is float64: ``asset`` and ``fiat`` (negative when borrowed), and the interest
owed on them, ``interest_asset`` (in units of the asset) and ``interest_fiat``, all
reported every step in ``info["portfolio_distribution_*"]``; its value,
``info["portfolio_valuation"]``, is ``asset * price + fiat - interest_asset * price -
interest_fiat``. A trade pays ``trading_fees`` of its notional (a buy receives
``1 - trading_fees`` of the units paid for; a sale receives ``1 - trading_fees`` of its
proceeds). Before a trade that reduces a borrowed position, ``trade_to_position``
settles the matching share of the interest; after every step ``update_interest`` sets
the interest owed to ``borrow_interest_rate`` times what is borrowed.

The ledger, in the env's own numbers:

- ``position``: ``asset``, the units the account holds (negative: borrowed); ``cash``:
  ``fiat`` less the interest owed, ``interest_fiat`` and ``interest_asset`` marked at
  the price the record marks at (interest owed in units of the asset is a debt whose
  value moves with the price). So ``equity = cash + position * price`` is the env's
  valuation, and ``reported_equity`` is ``info["portfolio_valuation"]`` itself, checked
  against it. Units change by the trade, and by the interest ``trade_to_position``
  settles in units of the asset before it trades.
- ``fee``: what the trade's cash paid beyond the value of the units it moved, at the
  execution price (a buy receives ``1 - trading_fees`` of the units paid for, a sale
  ``1 - trading_fees`` of its proceeds); ``fees-match-schedule`` checks it against
  ``trading_fees``.
- ``financing``: the change of the interest owed that the trade did not settle, at the
  prices it is marked at. The declared schedule is the rule the constructor documents
  (``borrow_interest_rate`` per step on what is borrowed): the interest owed after a step
  is what was owed before, less what the trade settled, plus the rate times what is
  borrowed after the trade (``info["portfolio_distribution_borrowed_*"]``).
- ``components``: the default reward function, ``log(value / previous value)``,
  recomputed from the valuations (not supplied for a custom ``reward_function``).
- Declarations from the constructor's settings: ``long_only`` when no position is
  negative, ``borrows_cash`` when one exceeds 1 or a short pays interest (the interest owed
  in units of the asset is a debt booked against the cash), the fee schedule from
  ``trading_fees`` (not declared when a short pays interest in units of the asset: the
  units a trade settles that interest with change the position beside the trade), the
  env ends on ruin (``portfolio_value <= 0`` ends the episode), and ``max_leverage`` is
  the largest ``|position|`` offered (a target is a fraction of the portfolio's value,
  so no trade may leave more exposure than that). No ``position_limits``: the env
  limits exposure, not units.
- ``info["step"]``, the env's step counter, is handed to ``metrics-match-trace`` as
  ``steps``.

Records: with ``positions`` of 0 and one other target (the package's default ``[0,
1]``), the targets are ``close`` and ``open`` and records are single-position; with more
targets (``[-1, 0, 1, 2]``), an action is no single kind (target 1 opens from 0 and
reduces from 2), so each record carries one leg and the single-position rules
(``no-buy-while-in-position``, ``no-add-without-profitable-position``) do not apply. A
step whose target equals the current one trades nothing: it is recorded as the virtual
action ``(no trade)``, rejected with reason ``ALREADY_AT_TARGET``.

Markets: the env takes its data at construction; :func:`make_trading_env` returns the
real env inside :class:`GymTradingEnvMarketEnv`, which rebuilds it on the market passed
as ``reset(options={"market": m})``.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from tradeguard.invariants._adapter import (
    MarketWrapperAdapter,
    StepData,
    action_id,
    import_optional,
    wrapper_attr,
)
from tradeguard.trace import (
    CORE_FIELDS,
    ActionKind,
    FeeSchedule,
    FinancingSchedule,
    Leg,
    Precision,
    StepRecord,
    TraceMeta,
)

__all__ = [
    "GymTradingEnvAdapter",
    "GymTradingEnvMarketEnv",
    "make_margin_trading_env",
    "make_trading_env",
    "trading_frame",
]


def _require() -> Any:
    # Importing this module runs warnings.filterwarnings("error") (a finding): the
    # caller imports it inside an isolated call.
    return import_optional("gym_trading_env.environments", package="gym-trading-env", extra="peers")


def _kind(position: float) -> ActionKind:
    return "close" if position == 0 else "open"


@dataclass(frozen=True, slots=True)
class _Book:
    """The env's portfolio as ``info`` reports it, after a reset or a step."""

    target: float
    asset: float
    fiat: float
    interest_asset: float
    interest_fiat: float
    value: float
    price: float

    @classmethod
    def of(cls, info: Mapping[str, Any]) -> _Book:
        d = "portfolio_distribution_"
        return cls(
            target=float(info["position"]),
            asset=float(info[d + "asset"]) - float(info[d + "borrowed_asset"]),
            fiat=float(info[d + "fiat"]) - float(info[d + "borrowed_fiat"]),
            interest_asset=float(info[d + "interest_asset"]),
            interest_fiat=float(info[d + "interest_fiat"]),
            value=float(info["portfolio_valuation"]),
            price=float(info["data_close"]),
        )

    def cash(self, price: float) -> float:
        """``fiat`` less the interest owed, the part owed in units of the asset marked at ``price``."""
        return self.fiat - self.interest_fiat - self.interest_asset * price


@dataclass(slots=True)
class _Episode:
    book: _Book
    cost_basis: float = 0.0
    interest_due: dict[int, float] = field(default_factory=dict)


def _single_position(positions: list[float]) -> bool:
    """Whether every target is 0 or one other: actions are then ``close`` and ``open``."""
    return 0 in positions and len({p for p in positions if p != 0}) <= 1


class GymTradingEnvAdapter(MarketWrapperAdapter):
    """Turns gym-trading-env ``TradingEnv`` steps into ledger lines.

    Action ``i`` is named ``position p`` for ``p = env.positions[i]``; action
    ``len(positions)`` is the virtual ``(no trade)``.

    Example:
        >>> from tradeguard.invariants import check_trading_env
        >>> report = check_trading_env(lambda: make_trading_env(steps=6, initial_position=0),
        ...                            adapter=GymTradingEnvAdapter(), only=["self-financing"],
        ...                            examples=5, max_steps=6, seed=0, timeout=60)
        >>> report.results[0].status
        'pass'
    """

    name = "gym-trading-env"

    def __init__(self) -> None:
        self._episodes: weakref.WeakKeyDictionary[Any, _Episode] = weakref.WeakKeyDictionary()

    def __getstate__(self) -> dict[str, Any]:
        """The per-env episodes as (env, state) pairs: a pickle (or deep copy) of an env together with
        this adapter then maps the copied env to a copy of its state (the black-box audit's snapshots)."""
        state = dict(self.__dict__)
        state["_episodes"] = list(self._episodes.items())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        pairs = state.pop("_episodes")
        self.__dict__.update(state)
        self._episodes = weakref.WeakKeyDictionary(pairs)

    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        base = env.unwrapped
        positions = [float(p) for p in base.positions]
        fees, rate = float(base.trading_fees), float(base.borrow_interest_rate)
        long_only = min(positions) >= 0
        supplies = CORE_FIELDS - {"mask"} | {"financing", "reported_equity"}
        if not _single_position(positions):
            supplies = supplies - {"cost_basis_before"} | {"legs"}
        if not self._default_reward(base):
            supplies = supplies - {"components"}
        episode = self._episodes.get(env)
        due = episode.interest_due if episode is not None else {}
        return TraceMeta(
            env_id=f"gym-trading-env TradingEnv ({getattr(base, 'name', 'Stock')})",
            action_names=(*(f"position {p:g}" for p in positions), "(no trade)"),
            action_kinds=(*(_kind(p) for p in positions), "hold"),
            component_names=("log_return",) if "components" in supplies else (),
            initial_cash=float(base.portfolio_initial_value),
            minor_unit=1.0,
            seed=seed,
            supplies=frozenset(supplies),
            precision=Precision.float64(),
            long_only=long_only,
            # Borrowed cash (a target over 1), or borrowed units whose interest is a debt
            # the ledger books against the cash (a short, with a borrow rate): a short
            # whose price spikes owes more in interest than the account holds.
            borrows_cash=max(positions) > 1 or (not long_only and rate > 0),
            # A target is a fraction of the portfolio's value: the largest one is the most
            # exposure a trade may leave (what the constructor's `positions` offer).
            max_leverage=max(abs(p) for p in positions),
            fee_schedule=None if (rate > 0 and not long_only) else FeeSchedule(function=_fee_schedule(fees)),
            financing_schedule=FinancingSchedule(function=_interest_schedule(due)),
            episode_length=_episode_length(base),
            initial_equity=float(base.portfolio_initial_value),  # whatever its initial position
        )

    def begin(self, env: Any, observation: Any, info: dict[str, Any]) -> None:
        book = _Book.of(info)
        self._episodes[env] = _Episode(book, cost_basis=book.asset * book.price)

    def record(self, env: Any, step: StepData) -> StepRecord:
        base = env.unwrapped
        positions = [float(p) for p in base.positions]
        episode = self._episodes[env]
        was, now = episode.book, _Book.of(step.info)
        episode.book = now
        price, next_price = was.price, now.price
        traded = now.target != was.target
        # What trade_to_position left of the interest owed (1: it settled nothing), and the
        # portfolio it traded from once it had settled the rest.
        kept = _interest_kept(was, now.target, price) if traded else 1.0
        asset = was.asset - (1 - kept) * was.interest_asset if kept < 1 else was.asset
        fiat = was.fiat - (1 - kept) * was.interest_fiat if kept < 1 else was.fiat
        paid = fiat - now.fiat  # the trade's cash: > 0 for a buy, < 0 for a sale
        # What the cash paid beyond the units' value (a buy receives fewer units, a sale fewer
        # proceeds); an env without fees charges none.
        fee = paid - (now.asset - asset) * price if traded and base.trading_fees else 0.0
        carried_asset, carried_fiat = kept * was.interest_asset, kept * was.interest_fiat
        financing = (now.interest_fiat - carried_fiat) + (now.interest_asset * next_price - carried_asset * price)
        # The documented rule: what was owed (less what the trade settled), plus the rate on what is borrowed.
        rate = float(base.borrow_interest_rate)
        owed_fiat = carried_fiat + rate * max(0.0, -now.fiat)
        owed_asset = carried_asset + rate * max(0.0, -now.asset)
        episode.interest_due[step.t] = (owed_fiat - carried_fiat) + (owed_asset * next_price - carried_asset * price)

        predicted = action_id(step.action)
        no_trade = len(positions)
        executed = positions.index(now.target) if traded and now.target in positions else no_trade
        rejected = executed != predicted
        reason = None
        if rejected:
            if not 0 <= predicted < no_trade:
                reason = "NOT_AN_ACTION"
            elif positions[predicted] == was.target:
                reason = "ALREADY_AT_TARGET"
            else:
                reason = "TARGET_NOT_REACHED"
        quantity = now.asset - was.asset
        cost_basis = episode.cost_basis
        episode.cost_basis = 0.0 if now.asset == 0 else cost_basis + quantity * price
        legs = None
        if not _single_position(positions):
            legs = (Leg(price, next_price, was.asset, now.asset, quantity, fee),)
        reward = float(step.reward)
        log_return = math.log(now.value / was.value) if now.value > 0 and was.value > 0 else 0.0
        return StepRecord(
            t=step.t,
            price=price,
            next_price=next_price,
            predicted=predicted,
            executed=executed,
            rejected=rejected,
            reason=reason,
            position_before=was.asset,
            position_after=now.asset,
            cash_before=was.cash(price),
            cash_after=now.cash(next_price),
            equity_before=was.cash(price) + was.asset * price,
            equity_after=now.cash(next_price) + now.asset * next_price,
            quantity=quantity,
            fee=fee,
            reward=reward,
            components=(log_return,) if self._default_reward(base) else (),
            mask=step.mask,
            cost_basis_before=cost_basis,
            legs=legs,
            financing=financing,
            reported_equity=now.value,
        )

    def settings(self, env: Any) -> Any:
        """The constructor's settings the gate draws (settings fuzzing), for ``env`` built with none:
        ``trading_fees``, ``borrow_interest_rate``, ``positions`` (as many as the env has, the
        action space's size, with the initial position if the env was given one), ``initial_position``, ``portfolio_initial_value``, ``windows`` and
        ``max_episode_duration``, each optional (absent: the factory's own), within what the env
        accepts on a market of the env's length. Every declaration of :meth:`meta` is read from
        the env built with them."""
        return gym_trading_env_settings(env)

    def reported_metrics(self, env: Any, info: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The env's own step counter (``info["step"]``)."""
        return {"steps": int(info["step"])} if "step" in info else None

    @staticmethod
    def _default_reward(base: Any) -> bool:
        fn = getattr(base, "reward_function", None)
        return getattr(fn, "__module__", None) == "gym_trading_env.environments" and getattr(
            fn, "__name__", None) == "basic_reward_function"


_TARGETS = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
"""Targets a drawn ``positions`` list is made of: shorts, flat, fractions, leverage."""


def gym_trading_env_settings(env: Any) -> Any:
    """The settings strategy of :meth:`GymTradingEnvAdapter.settings`."""
    from hypothesis import strategies as st

    base = env.unwrapped
    rows = wrapper_attr(env, "tradeguard_market_length") or len(base.df)
    start = base.initial_position  # a fixed one must stay among the positions drawn
    required = () if start == "random" else (float(start),)

    @st.composite
    def draw(draw: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if draw(st.booleans()):
            out["trading_fees"] = draw(st.sampled_from([0.0, 0.0001, 0.001, 0.0025, 0.01, 0.05]))
        if draw(st.booleans()):
            out["borrow_interest_rate"] = draw(st.sampled_from([0.0, 0.0001, 0.001, 0.01]))
        positions = list(base.positions)
        if len(positions) <= len(_TARGETS) and draw(st.booleans()):
            # As many as the env has: the actions are drawn for its action space, Discrete(len(positions)).
            n = len(positions)
            drawn = draw(st.lists(st.sampled_from([p for p in _TARGETS if p not in required]),
                                  min_size=n - len(required), max_size=n - len(required), unique=True))
            positions = [*required, *drawn]
            out["positions"] = [int(p) if p == int(p) else p for p in positions]
        if draw(st.booleans()) and not required:
            out["initial_position"] = draw(st.sampled_from(["random", *out.get("positions", positions)]))
        if draw(st.booleans()):
            out["portfolio_initial_value"] = draw(st.sampled_from([1.0, 100.0, 1000.0, 1_000_000.0]))
        windows = base.windows
        # reset() draws the start in [first, rows - duration - first), first = windows - 1: the
        # window and the duration must leave it room.
        duration = base.max_episode_duration if isinstance(base.max_episode_duration, int) else 1
        widest = min(5, rows - 3, (rows - duration - 1) // 2 + 1)
        if draw(st.booleans()) and widest >= 1:
            windows = out["windows"] = draw(st.integers(1, widest))
        first = windows - 1 if windows else 0
        longest = rows - 1 - 2 * first
        if draw(st.booleans()) and longest >= 1:
            out["max_episode_duration"] = draw(st.integers(1, longest))
        return out

    return draw()


def _interest_kept(was: _Book, target: float, price: float) -> float:
    """``interest_reduction_ratio`` of ``Portfolio.trade_to_position``, in its own arithmetic."""
    value = sum([was.asset * price, was.fiat, -was.interest_asset * price, -was.interest_fiat])
    current = was.asset * price / value
    if target <= 0 and current < 0:
        return min(1.0, target / current)
    if target >= 1 and current > 1:
        return min(1.0, (target - 1) / (current - 1))
    return 1.0


def _fee_schedule(fees: float) -> Any:
    def trading_fees(quantity: float, price: float) -> float:
        # A buy of `quantity` received units paid quantity / (1 - fees) of them; a sale pays on its units.
        notional = abs(quantity) * price
        return fees * notional / (1 - fees) if quantity > 0 else fees * notional

    trading_fees.__name__ = f"trading_fees={fees:g} of the notional"
    return trading_fees


def _interest_schedule(due: dict[int, float]) -> Any:
    """The financing the documented rule gives each step, worked out from the env's balances
    when the step is recorded (a record's own fields do not say what is borrowed after its trade)."""

    def borrow_interest_rate(record: StepRecord) -> float:
        return due.get(record.t, math.nan)

    return borrow_interest_rate


def trading_frame(market: Any) -> Any:
    """The DataFrame gym-trading-env wants for ``market``: OHLC at the close, hourly
    DatetimeIndex, one feature ``feature_return`` (the close's step return, 0 at the start)."""
    import pandas as pd

    close = market.prices.astype("float64") * market.minor_unit
    df = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close},
        index=pd.date_range("2020-01-01", periods=len(close), freq="h"),
    )
    df["feature_return"] = df["close"].pct_change().fillna(0.0)
    return df


def _episode_length(base: Any) -> int | None:
    """Steps of an episode by the env's settings: ``max_episode_duration`` ("truncated after reaching
    the desired max duration in steps"), or with ``"max"`` every row after the first window."""
    duration = base.max_episode_duration
    if isinstance(duration, int) and not isinstance(duration, bool):
        return duration
    first = base.windows - 1 if base.windows is not None else 0
    steps = len(base.df) - 1 - first
    return steps if steps >= 1 else None


class GymTradingEnvMarketEnv(gym.Wrapper[Any, Any, Any, Any]):
    """The real gym-trading-env ``TradingEnv``, rebuilt on the market given to ``reset``.

    Args:
        steps: Steps per episode of the default market (an episode of L steps uses L + 1 rows).
        env_class: The env to build: ``TradingEnv`` (default), or a subclass of it.
        **env_kwargs: Passed to ``TradingEnv`` (``positions``, ``trading_fees``, ...).
    """

    def __init__(self, *, steps: int = 30, env_class: type | None = None, **env_kwargs: Any) -> None:
        environments = _require()
        from tradeguard.env import MarketSpec

        self.env_kwargs = env_kwargs
        self.tradeguard_market_length = steps + 1
        self.tradeguard_minor_unit = 0.01
        self._cls = env_class or environments.TradingEnv
        self._market: Any = None
        import numpy as np

        default = MarketSpec(kind="random_walk", start_price=100.0).generate(steps + 1, np.random.default_rng(0))
        super().__init__(self._cls(df=trading_frame(default), **env_kwargs))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        rest = dict(options or {})
        market = rest.pop("market", None)
        if market is not None and market != self._market:
            space = self.env.action_space
            self.env = self._cls(df=trading_frame(market), **self.env_kwargs)
            self.env.action_space = space  # one action space (and its random stream) across the markets the env is rebuilt on
            self._market = market
            self.tradeguard_minor_unit = market.minor_unit
        return self.env.reset(seed=seed, options=rest or None)


def make_trading_env(*, steps: int = 30, **env_kwargs: Any) -> GymTradingEnvMarketEnv:
    """gym-trading-env's ``TradingEnv``, ready to take markets: the package's defaults
    (``positions=[0, 1]``, ``initial_position='random'``, no borrowing) with a 0.1% fee.

    ``verbose=0`` unless given (the default ``verbose=1`` prints a line at the end of
    every episode); ``trading_fees=0.001`` unless given (the package's default is 0, which
    leaves the fee invariants nothing to check). Its default market is a seeded random
    walk of ``steps + 1`` prices.
    """
    env_kwargs.setdefault("verbose", 0)
    env_kwargs.setdefault("trading_fees", 0.001)
    return GymTradingEnvMarketEnv(steps=steps, **env_kwargs)


def make_margin_trading_env(*, steps: int = 30, **env_kwargs: Any) -> GymTradingEnvMarketEnv:
    """gym-trading-env's ``TradingEnv`` with shorts and leverage: ``positions=[-1, 0, 1, 2]``
    (short, flat, all-in, twice the value), a 0.1% fee and a borrow interest rate of
    0.01% per step, starting flat.

    ``tradeguard check --env tradeguard.invariants.peers:make_margin_trading_env``.
    """
    env_kwargs.setdefault("positions", [-1, 0, 1, 2])
    env_kwargs.setdefault("borrow_interest_rate", 0.0001)
    env_kwargs.setdefault("initial_position", 0)
    return make_trading_env(steps=steps, **env_kwargs)
