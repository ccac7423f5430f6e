"""``PortfolioEnv`` (``tradeguard/Portfolio-v0``): several instruments, a ``Box`` of target weights.

The multi-instrument, continuous-action counterpart of ``Trading-v0``, on the same
principles: the rules are data (:data:`PORTFOLIO_RULES`: execution, the reasons and the
printed rules come from the same rows), money is integer minor units and positions whole
units, so every accounting identity holds with ``==``; the same seed and actions give a
bit-identical trace. It is the exact reference on which the catalog's multi-instrument
invariants are tested for false positives.

Each step the agent sends target weights, one per instrument (a fraction of equity; a
negative weight is a short when the configuration allows shorts). The rules turn them
into whole-unit orders (the *requested* quantities), then execute what the account
allows: sells first, then buys within the cash. A leg that executes less than requested
carries the reason (``POSITION_LIMIT``, ``INSUFFICIENT_CASH``); a rebalance that executes
nothing at all is *rejected* (HOLD executes, the failed-action penalty applies).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from importlib import resources
from typing import Any, NamedTuple, SupportsFloat

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from tradeguard._validation import check_int, check_number, suggest
from tradeguard.env._config import PPM
from tradeguard.env._market import Market, MarketSpec
from tradeguard.errors import EpisodeEnded, InvalidAction, InvalidConfig, InvalidMarket
from tradeguard.limits import MAX_CASH, MAX_EPISODE_LENGTH
from tradeguard.trace import CORE_FIELDS, FeeSchedule, Leg, OutOfSpace, StepRecord, Trace, TraceMeta

__all__ = [
    "PORTFOLIO_COMPONENTS",
    "PORTFOLIO_RULES",
    "PortfolioConfig",
    "PortfolioEnv",
    "PortfolioMachine",
    "PortfolioOutcome",
    "PortfolioRule",
    "format_portfolio_rules",
    "make_portfolio_env",
    "portfolio_scenario",
    "portfolio_scenario_names",
]

PORTFOLIO_COMPONENTS: tuple[str, ...] = ("pnl_change", "failed_action_penalty")
"""The reward's components, in record order: the equity change in percent of starting cash,
and the failed-action penalty (on a rebalance that executed nothing)."""

OBS_BOUND = 32.0
_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.float16))


@dataclass(frozen=True, slots=True, kw_only=True)
class PortfolioConfig:
    """A portfolio account's settings. Money in minor units (cents); fractions as plain floats.

    Attributes:
        instruments: Names of the instruments, one weight each.
        cash: Starting cash, in minor units (1_000_000 = 10,000.00).
        fee_bps: Fee in basis points of each leg's notional (10 = 0.1%), rounded up to the
            next minor unit.
        shorts: Allow negative weights (short positions). ``False``: the weights are in [0, 1].
        max_gross: Largest gross exposure: weights whose sum of absolute values exceeds it
            are scaled down proportionally to it (1.0: fully invested at most).
        position_limit: Largest position per instrument, in units, long or short; ``None``: none.
        episode_length: Steps per episode.
        window: Log returns per instrument in the observation.
        failed_action_penalty: Reward added on a rebalance that executed nothing (<= 0).
        out_of_space: What an action outside the action space gets: ``"refuse"`` (raise
            :class:`~tradeguard.errors.InvalidAction`) or ``"clip"`` (finite values past a
            bound are clipped to it; NaN, the wrong shape or dtype still raise).
        minor_unit: Value of one minor unit in currency.

    Example:
        >>> PortfolioConfig(instruments=("A", "B"), shorts=True).max_gross
        1.0
    """

    instruments: tuple[str, ...] = ("A", "B", "C")
    cash: int = 1_000_000
    fee_bps: float = 10.0
    shorts: bool = False
    max_gross: float = 1.0
    position_limit: int | None = None
    episode_length: int = 100
    window: int = 4
    failed_action_penalty: float = -0.1
    out_of_space: OutOfSpace = "refuse"
    minor_unit: float = 0.01

    def __post_init__(self) -> None:
        names = self.instruments
        if not (isinstance(names, tuple) and names and all(isinstance(n, str) and n for n in names)
                and len(set(names)) == len(names)):
            raise InvalidConfig(f"instruments={names!r}; expected a tuple of distinct names, e.g. ('A', 'B').")
        check_int("cash", self.cash, min_value=1, max_value=MAX_CASH)
        check_number("fee_bps", self.fee_bps, min_value=0.0, max_value=1000.0)
        if round(self.fee_bps * 100) != self.fee_bps * 100:
            raise InvalidConfig(f"fee_bps={self.fee_bps!r} has more precision than 0.01 bps; round it.")
        if not isinstance(self.shorts, bool):
            raise InvalidConfig(f"shorts={self.shorts!r}; expected True or False.")
        check_number("max_gross", self.max_gross, min_value=0.0, max_value=10.0, min_exclusive=True)
        if self.position_limit is not None:
            check_int("position_limit", self.position_limit, min_value=1)
        check_int("episode_length", self.episode_length, min_value=1, max_value=MAX_EPISODE_LENGTH)
        check_int("window", self.window, min_value=1, max_value=256)
        check_number("failed_action_penalty", self.failed_action_penalty, min_value=-1e6, max_value=0.0)
        if self.out_of_space not in ("refuse", "clip"):
            raise InvalidConfig(f"out_of_space={self.out_of_space!r}; expected 'refuse' or 'clip'."
                                f"{suggest(str(self.out_of_space), ('refuse', 'clip'))}")
        check_number("minor_unit", self.minor_unit, min_value=0.0, min_exclusive=True)

    @property
    def fee_ppm(self) -> int:
        """The fee in parts per million of notional (10 bps = 1000 ppm)."""
        return round(self.fee_bps * 100)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "") -> PortfolioConfig:
        """Build from a mapping of field names (a scenario file's ``[portfolio]`` table)."""
        names = [f.name for f in fields(cls)]
        for key in data:
            if key not in names:
                raise InvalidConfig(f"unknown PortfolioConfig field {key!r}{' in ' + where if where else ''}; "
                                    f"expected one of {', '.join(names)}.{suggest(key, names)}")
        kwargs: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
        return cls(**kwargs)


# --------------------------------------------------------------------------- the rules, as data
class PortfolioRule(NamedTuple):
    """One row of the rebalancing rules: what happens, in order, and the reason a leg is cut."""

    name: str
    text: str
    reason: str | None


PORTFOLIO_RULES: tuple[PortfolioRule, ...] = (
    PortfolioRule("in-space", "the action is a member of the action space: one weight per instrument, in "
                  "[0, 1] (long-only) or [-1, 1] (shorts); otherwise it is refused, or clipped into the "
                  "space when the configuration says out_of_space='clip' (NaN is always refused)", None),
    PortfolioRule("gross-exposure", "weights whose absolute values sum past max_gross are scaled down "
                  "proportionally to max_gross", None),
    PortfolioRule("whole-units", "each target position is weight x equity / (price x (1 + fee)), "
                  "truncated towards zero to whole units; the requested quantity is target - position", None),
    PortfolioRule("position-limit", "a target beyond +-position_limit units is cut to the limit",
                  "POSITION_LIMIT"),
    PortfolioRule("sells-first", "sells (and shorts) execute first; their proceeds, less fees, go to cash", None),
    PortfolioRule("buys-within-cash", "buys then execute in instrument order, each cut to the whole units "
                  "the cash left covers with its fee", "INSUFFICIENT_CASH"),
    PortfolioRule("fee", "every leg that trades pays fee_bps of its notional, rounded up to the next minor "
                  "unit; a leg that trades nothing pays nothing", None),
)
"""The rebalancing rules, in the order they apply. Execution follows them row by row; a leg
cut by a row carries that row's reason."""


def format_portfolio_rules(config: PortfolioConfig | None = None) -> str:
    """The rebalancing rules as text (what ``tradeguard rules --env portfolio`` would print).

    Example:
        >>> print(format_portfolio_rules().splitlines()[0])
        tradeguard/Portfolio-v0 rebalancing rules (instruments A, B, C; long-only; fee 10 bps; max gross 1)
    """
    c = config or PortfolioConfig()
    side = "long and short" if c.shorts else "long-only"
    lines = [f"tradeguard/Portfolio-v0 rebalancing rules (instruments {', '.join(c.instruments)}; {side}; "
             f"fee {c.fee_bps:g} bps; max gross {c.max_gross:g})"]
    for i, rule in enumerate(PORTFOLIO_RULES, start=1):
        lines.append(f"{i}. {rule.name}: {rule.text}" + (f" [leg cut: {rule.reason}]" if rule.reason else ""))
    lines.append("A rebalance that executes nothing at all is rejected: HOLD executes, the failed-action "
                 f"penalty ({c.failed_action_penalty:g}) applies.")
    return "\n".join(lines)


class PortfolioOutcome(NamedTuple):
    """What one rebalance did, leg by leg (signed units; fees in minor units)."""

    requested: tuple[int, ...]
    executed: tuple[int, ...]
    fees: tuple[int, ...]
    reasons: tuple[str | None, ...]
    cash: int
    positions: tuple[int, ...]


class PortfolioMachine:
    """The rules of :data:`PORTFOLIO_RULES` for one configuration: a pure rebalancing function.

    Each method is one rule; :meth:`rebalance` applies them in order. (The bad-envs suite
    breaks one method at a time.)

    Example:
        >>> m = PortfolioMachine(PortfolioConfig(instruments=("A", "B")))
        >>> out = m.rebalance(1_000_000, (0, 0), [0.5, 0.25], (10_000, 5_000))
        >>> out.requested, out.executed, out.fees, out.cash
        ((49, 49), (49, 49), (490, 245), 264265)
    """

    def __init__(self, config: PortfolioConfig) -> None:
        self.config = config
        self.ppm = config.fee_ppm
        # No limit declared and the position-limit rule as written: nothing to cut.
        self._no_limit = config.position_limit is None and type(self).limit is PortfolioMachine.limit

    # --- rule: fee
    def fee(self, notional: int) -> int:
        """The fee on ``notional`` minor units, rounded up to the next minor unit."""
        return -(-(notional if notional >= 0 else -notional) * self.ppm // PPM)

    # --- rule: in-space (the env validates the action itself; see PortfolioEnv.weights)
    # --- rule: gross-exposure
    def normalize(self, weights: list[float]) -> list[float]:
        """Weights scaled down to ``max_gross`` when their gross exposure exceeds it."""
        gross = sum(map(abs, weights))
        if gross > self.config.max_gross:
            scale = self.config.max_gross / gross
            return [w * scale for w in weights]
        return weights

    # --- rule: whole-units
    def targets(self, weights: list[float], equity: int, prices: tuple[int, ...]) -> list[int]:
        """Whole-unit target positions, truncated towards zero."""
        scale = 1.0 + self.ppm / PPM
        # int() of a float truncates towards zero, as math.trunc does (and is a cheaper call).
        return [int(w * equity / (p * scale)) for w, p in zip(weights, prices, strict=True)]

    # --- rule: position-limit
    def limit(self, target: int) -> tuple[int, str | None]:
        """The target cut to the position limit, and the reason when it was cut."""
        cap = self.config.position_limit
        if cap is not None and abs(target) > cap:
            return (cap if target > 0 else -cap), "POSITION_LIMIT"
        return target, None

    # --- rules: sells-first, buys-within-cash
    def affordable(self, units: int, price: int, cash: int) -> int:
        """The most of ``units`` (> 0) that ``cash`` pays for with the fee (a bisection:
        the cost of ``u`` units with their fee grows with ``u``)."""
        if cash <= 0:
            return 0
        lo, hi = 0, min(units, cash // price)
        guess = min(hi, cash * PPM // (price * (PPM + self.ppm)))  # exact but for the fee's rounding
        if guess * price + self.fee(guess * price) <= cash:
            lo = guess
        else:
            hi = guess - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if mid * price + self.fee(mid * price) <= cash:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def execution_targets(self, wanted: list[int], weights: list[float], equity: int,
                          prices: tuple[int, ...]) -> list[int]:
        """The targets the fills work towards: the requested ones (the order is what executes)."""
        return wanted

    def fill(self, units: int) -> int:
        """What executes of an order of ``units`` the account allows: all of it."""
        return units

    def proceeds(self, units: int, price: int) -> int:
        """Cash a sell of ``units`` (< 0) brings, before its fee: its notional."""
        return -units * price

    def rebalance(self, cash: int, positions: tuple[int, ...], weights: list[float],
                  prices: tuple[int, ...]) -> PortfolioOutcome:
        """Rebalance towards ``weights`` (members of the action space) at ``prices``."""
        n = len(positions)
        idx = range(n)
        equity = cash
        for i in idx:
            equity += positions[i] * prices[i]
        if equity < 0:
            equity = 0
        wanted = self.targets(self.normalize(weights), equity, prices)
        requested = [wanted[i] - positions[i] for i in idx]
        targets = self.execution_targets(wanted, weights, equity, prices)
        reasons: list[str | None] = [None] * n
        if self._no_limit:  # nothing to cut: the orders are the requests, unless the targets differ
            orders = requested if targets is wanted else [targets[i] - positions[i] for i in idx]
        else:
            limit = self.limit
            orders = [0] * n
            for i in idx:
                cut, reasons[i] = limit(targets[i])
                orders[i] = cut - positions[i]
        executed = [0] * n
        fees = [0] * n
        fee, fill = self.fee, self.fill
        for i in idx:  # sells first
            q = orders[i]
            if q < 0:
                e = fill(q)
                executed[i] = e
                fees[i] = f = fee(e * prices[i])
                cash += self.proceeds(e, prices[i]) - f
        for i in idx:  # then buys, within the cash
            q = orders[i]
            if q > 0:
                units = self.affordable(q, prices[i], cash)
                if units < q and reasons[i] is None:
                    reasons[i] = "INSUFFICIENT_CASH"
                if units:
                    e = fill(units)
                    executed[i] = e
                    fees[i] = f = fee(e * prices[i])
                    cash -= e * prices[i] + f
        return PortfolioOutcome(
            tuple(requested), tuple(executed), tuple(fees),
            tuple([reasons[i] if executed[i] != requested[i] else None for i in idx]),
            cash, tuple([positions[i] + executed[i] for i in idx]),
        )


# --------------------------------------------------------------------------- scenarios
@dataclass(frozen=True, slots=True)
class _Scenario:
    name: str
    description: str
    config: PortfolioConfig


@functools.cache
def _shipped(name: str) -> _Scenario:
    text = resources.files("tradeguard.env").joinpath("scenarios", "portfolio", f"{name}.toml").read_text()
    data = tomllib.loads(text)
    return _Scenario(name, str(data.get("description", "")).strip(),
                     PortfolioConfig.from_dict(data.get("portfolio", {}), where=f"portfolio scenario {name!r}"))


@functools.cache
def portfolio_scenario_names() -> tuple[str, ...]:
    """Names of the portfolio scenarios shipped with tradeguard."""
    folder = resources.files("tradeguard.env").joinpath("scenarios", "portfolio")
    return tuple(sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml")))


def portfolio_scenario(name: str) -> PortfolioConfig:
    """A shipped portfolio scenario's configuration.

    Raises:
        InvalidConfig: unknown name (with the closest one).

    Example:
        >>> portfolio_scenario("long-short").shorts
        True
    """
    names = portfolio_scenario_names()
    if name not in names:
        raise InvalidConfig(f"portfolio scenario {name!r}; the shipped ones are {', '.join(names)}."
                            f"{suggest(name, names)}")
    return _shipped(name).config


# --------------------------------------------------------------------------- the env
class PortfolioEnv(gym.Env[npt.NDArray[np.float32], npt.NDArray[np.float64]]):
    """Several instruments, one cash account, a ``Box`` of target weights (``tradeguard/Portfolio-v0``).

    ``info["record"]`` is the step's :class:`~tradeguard.trace.StepRecord` with one
    :class:`~tradeguard.trace.Leg` per instrument (requested and executed units, fee);
    :attr:`trace` is the episode so far; :attr:`trace_meta` declares what the account
    promises (exact money, long-only or not, position limits, the fee schedule, what it
    does with an action outside its space), so tradeguard's own adapter reads it as is.

    Observation (float32, in [-32, 32]): the last ``window`` log returns of each
    instrument, then each instrument's weight (position value / equity, clipped to
    [-32, 32]), the cash weight, and the share of the episode remaining.

    Args:
        config: The account (default: the scenario's).
        scenario: A shipped portfolio scenario: ``long-only`` (default), ``long-short``, ``clip``.
        market: A :class:`MarketSpec` each instrument's prices are drawn from at every reset
            (default: a random walk; instrument ``i`` starts at ``100 x (1 + i/2)``), or a fixed
            :class:`Market` traded every episode as the ``market`` reset option trades it.

    Reset options: ``{"market": Market}`` trades one path for every instrument, instrument
    ``i`` reading it rotated left by ``i x len // n`` steps (each sees the same moves at
    other times); ``{"prices": array (episode_length + 1, n_instruments)}`` of minor units
    gives each instrument its own.

    Example:
        >>> import numpy as np
        >>> env = PortfolioEnv(scenario="long-only")
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(np.array([0.5, 0.3, 0.0]))
        >>> [leg.quantity for leg in info["record"].legs], info["record"].reason
        ([49, 19, 0], None)
    """

    metadata = {"render_modes": []}  # noqa: RUF012 (gymnasium declares it so)

    def __init__(self, config: PortfolioConfig | None = None, *, scenario: str = "long-only",
                 market: Market | MarketSpec | None = None) -> None:
        self.config: PortfolioConfig = config if config is not None else portfolio_scenario(scenario)
        if not isinstance(self.config, PortfolioConfig):
            raise InvalidConfig(f"config={self.config!r} must be a PortfolioConfig.")
        self.fixed_market = market if isinstance(market, Market) else None
        self.spec_market = market if isinstance(market, MarketSpec) else MarketSpec(kind="random_walk",
                                                                                    volatility=0.02)
        if market is not None and not isinstance(market, (Market, MarketSpec)):
            raise InvalidConfig(f"market={market!r} must be a Market or a MarketSpec.")
        c = self.config
        n = len(c.instruments)
        self.machine = self._machine()
        low = -1.0 if c.shorts else 0.0
        self.action_space = gym.spaces.Box(low, 1.0, (n,), np.float64)
        self._bounds = (low, 1.0)
        self._specs = [replace(self.spec_market, start_price=self.spec_market.start_price * (1 + i / 2))
                       for i in range(n)]
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (n * c.window + n + 2,), np.float32)
        self._meta_base: dict[str, Any] = {
            "env_id": "tradeguard/Portfolio-v0",
            "action_names": ("HOLD", "REBALANCE"),
            "action_kinds": ("hold", "rebalance"),
            "component_names": PORTFOLIO_COMPONENTS,
            "penalty_component": "failed_action_penalty",
            "failed_action_penalty": c.failed_action_penalty,
            "initial_cash": c.cash,
            "minor_unit": c.minor_unit,
            "pnl_scale": 100.0 / c.cash,
            "reward_is_pnl": True,
            "supplies": (CORE_FIELDS - {"mask", "cost_basis_before"}) | {"legs"},
            "instruments": c.instruments,
            "long_only": not c.shorts,
            "borrows_cash": False,
            "position_limits": None if c.position_limit is None else (
                -c.position_limit if c.shorts else 0, c.position_limit),
            # The fee as configured (fee_bps), not as the machine derives it (fee_ppm): a wrong
            # derivation would charge the wrong fee however consistently the ledger books it.
            "fee_schedule": FeeSchedule(rate=c.fee_bps / 10_000, step=1, rounding="up"),
            "max_leverage": c.max_gross,  # the gross-exposure rule: no rebalance leaves more
            "out_of_space": c.out_of_space,
            "episode_length": c.episode_length,
            "initial_position": (0,) * n,
            "refusal_errors": (EpisodeEnded,),
        }
        self._meta = self._unseeded_meta = TraceMeta(**self._meta_base)
        self._pnl_scale: float = self._meta_base["pnl_scale"]
        self._records: list[StepRecord] = []
        self._prices = np.zeros((c.episode_length + 1, n), dtype=np.int64)
        self._price_rows: list[tuple[int, ...]] = []
        self._rows = np.zeros((c.episode_length + 1, n * c.window + n + 2), dtype=np.float32)
        self._weights_at = n * c.window  # where the observation's weights start
        self._cash = c.cash
        self._positions: tuple[int, ...] = (0,) * n
        self._fixed_paths: npt.NDArray[np.int64] | None = None
        self._t = 0
        self._done = True
        self._started = False

    def _machine(self) -> PortfolioMachine:
        return PortfolioMachine(self.config)

    # ------------------------------------------------------------------ markets
    def _market_prices(self, options: dict[str, Any] | None) -> npt.NDArray[np.int64]:
        c = self.config
        n, needed = len(c.instruments), c.episode_length + 1
        options = dict(options or {})
        market = options.pop("market", None)
        prices = options.pop("prices", None)
        if market is None and prices is None:
            market = self.fixed_market
        if options:
            raise InvalidConfig(f"unknown reset options {sorted(options)}; expected 'market' or 'prices'.")
        if market is not None and prices is not None:
            raise InvalidConfig("reset options give both 'market' and 'prices'; give one.")
        fixed = self.fixed_market
        if fixed is not None and market is fixed:
            # A Market is frozen (its prices are read-only): its paths are computed once.
            if self._fixed_paths is None:
                self._fixed_paths = self._paths(fixed)
            return self._fixed_paths
        if market is not None:
            return self._paths(market)
        if prices is not None:
            arr = np.asarray(prices)
            if arr.shape != (needed, n) or arr.dtype.kind not in "iu" or (arr < 1).any():
                raise InvalidMarket(f"options['prices'] has shape {arr.shape} dtype {arr.dtype}; expected "
                                    f"({needed}, {n}) positive integers (minor units), one column per instrument.")
            return arr.astype(np.int64)
        cols = [spec.generate(needed, self.np_random).prices for spec in self._specs]
        return np.stack(cols, axis=1).astype(np.int64)

    def _paths(self, market: Market) -> npt.NDArray[np.int64]:
        """One path per instrument from ``market``: instrument ``i`` reads it rotated left by ``i x len // n``."""
        c = self.config
        n, needed = len(c.instruments), c.episode_length + 1
        if not isinstance(market, Market):
            raise InvalidMarket(f"options['market']={market!r} must be a Market.")
        if len(market) < needed:
            raise InvalidMarket(f"{market.name} has {len(market)} prices; an episode of {c.episode_length} "
                                f"steps needs {needed}.")
        path = market.prices[:needed]
        shift = needed // n
        return np.stack([np.roll(path, -i * shift) for i in range(n)], axis=1).astype(np.int64)

    # ------------------------------------------------------------------ the action
    def weights(self, action: Any) -> list[float]:
        """``action`` as weights, per the in-space rule: a member as is; outside the space,
        refused, or (``out_of_space="clip"``) clipped when its values are finite numbers of
        the right shape.

        Raises:
            InvalidAction: the action is not in the space (and cannot be clipped into it).
        """
        space = self.action_space
        lo, hi = self._bounds
        # gymnasium's Box.contains, step by step (without its warning on a list): an array
        # whose dtype casts safely to float64, or anything else converted to float64; the
        # right shape; every entry within the bounds (NaN never is).
        if type(action) is np.ndarray and action.dtype in _FLOAT_DTYPES:
            arr: npt.NDArray[Any] | None = action
        elif isinstance(action, np.ndarray):
            arr = action if np.can_cast(action.dtype, np.float64) else None
        else:
            try:
                arr = np.asarray(action, dtype=np.float64)
            except (TypeError, ValueError):
                arr = None
        if arr is not None and arr.shape == space.shape:
            values: list[float] = arr.tolist() if arr.dtype.kind == "f" else arr.astype(np.float64).tolist()
            for x in values:
                if not lo <= x <= hi:  # NaN never is
                    break
            else:
                return values
        if self.config.out_of_space == "clip":
            clipped = self._clippable(action)
            if clipped is not None:
                return [min(max(x, lo), hi) for x in clipped.tolist()]
        raise InvalidAction(
            f"action={_short(action)} is not in the action space {space}: expected a numpy array of "
            f"{len(self.config.instruments)} finite weights in [{lo:g}, {hi:g}] (one per instrument: "
            f"{', '.join(self.config.instruments)})"
            + ("" if self.config.out_of_space == "clip" else "; values past a bound are refused, not clipped "
               "(PortfolioConfig(out_of_space='clip') clips them)") + "."
        )

    def _clippable(self, action: Any) -> npt.NDArray[np.float64] | None:
        if not isinstance(action, (np.ndarray, list, tuple)):
            return None
        try:
            arr = np.asarray(action)
        except Exception:
            return None
        if arr.shape != self.action_space.shape or arr.dtype.kind not in "iuf":
            return None
        arr = arr.astype(np.float64)
        return None if np.isnan(arr).any() else arr

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        """Start an episode (see the class docstring for the reset options)."""
        super().reset(seed=seed)
        c = self.config
        prices = self._market_prices(options)
        if prices is not self._prices:  # a new path (a fixed market's is the same array every episode)
            self._load(prices)
        self._cash = c.cash
        self._positions = (0,) * len(c.instruments)
        self._records = []
        self._t = 0
        self._done = False
        self._started = True
        # The header is immutable: an unseeded episode shares the one built in __init__.
        self._meta = self._unseeded_meta if seed is None else TraceMeta(**self._meta_base, seed=seed)
        return self._observation(), {}

    def _load(self, prices: npt.NDArray[np.int64]) -> None:
        """Take ``prices`` as the episode's paths, and build each step's observation but for the weights."""
        c = self.config
        self._prices = prices
        self._price_rows = list(map(tuple, prices.tolist()))  # Python ints: the ledger's arithmetic
        logp = np.log(prices.astype(np.float64))
        r = np.diff(logp, axis=0, prepend=logp[:1])
        returns = np.concatenate((np.zeros((c.window - 1, len(c.instruments))), r)).astype(np.float32)
        # Each step's observation but for the weights: the window of returns, instrument by
        # instrument, and the time remaining; built once per reset, copied per step.
        n, k = len(c.instruments), len(c.instruments) * c.window
        windows = np.lib.stride_tricks.sliding_window_view(returns, c.window, axis=0).reshape(
            returns.shape[0] - c.window + 1, -1)
        rows = np.zeros((c.episode_length + 1, k + n + 2), dtype=np.float32)
        rows[:, :k] = windows
        rows[:, -1] = (c.episode_length - np.arange(c.episode_length + 1)) / c.episode_length
        self._rows = rows
        self._weights_at = k

    def step(self, action: Any) -> tuple[npt.NDArray[np.float32], SupportsFloat, bool, bool, dict[str, Any]]:
        """Rebalance towards the target weights ``action``; record each leg."""
        weights = self.weights(action)
        if self._done:
            raise EpisodeEnded("step() called after the episode ended (or before the first reset()); call "
                               "reset() to start a new episode." if self._started else
                               "step() called before reset(); call reset(seed=...) first.")
        c = self.config
        t = self._t
        price, next_price = self._price_rows[t], self._price_rows[t + 1]
        cash0, pos0 = self._cash, self._positions
        # The PortfolioOutcome, field by field (one unpacking, not an attribute look-up per use).
        requested, executed_q, fees, reasons, cash1, pos1 = self.machine.rebalance(cash0, pos0, weights, price)
        legs = tuple(map(Leg, price, next_price, pos0, pos1, executed_q, fees, requested))
        equity0 = cash0
        for q, p in zip(pos0, price):  # noqa: B905 (one length: the instruments)
            equity0 += q * p
        equity1 = self.mark(cash1, pos1, price, next_price)
        predicted = 1 if any(requested) else 0
        executed = 1 if any(executed_q) else 0
        rejected = predicted != executed
        reason = None
        for r in reasons:
            if r is not None:
                reason = r
                break
        penalty = c.failed_action_penalty if rejected else 0.0
        pnl = (equity1 - equity0) * self._pnl_scale
        components = (pnl, penalty)
        reward = pnl + penalty  # math.fsum of two terms: the same correctly rounded sum
        # Every field, in order (financing 0, no reported equity): _make takes one tuple, where
        # the namedtuple's __new__ binds 22 arguments by name.
        record = StepRecord._make((t, 0, 0, predicted, executed, rejected, reason, 0, 0, cash0, cash1, equity0,
                                   equity1, 0, sum(fees), reward, components, None, 0, legs, 0, None))
        self._records.append(record)
        self._cash, self._positions = cash1, pos1
        self._t = t + 1
        terminated = self._t >= c.episode_length or equity1 <= 0
        self._done = terminated
        return self._observation(), reward, terminated, False, {"record": record}

    def mark(self, cash: int, positions: tuple[int, ...], price: tuple[int, ...], next_price: tuple[int, ...]) -> int:
        """Equity after a step: cash plus each position at the next price."""
        for q, p in zip(positions, next_price):  # noqa: B905 (one length: the instruments)
            cash += q * p
        return cash

    def _observation(self) -> npt.NDArray[np.float32]:
        t = self._t
        prices = self._price_rows[t]
        values = [q * p for q, p in zip(self._positions, prices)]  # noqa: B905 (one length)
        cash = self._cash
        equity = cash + sum(values)
        scale = 1.0 / equity if equity > 0 else 0.0
        values.append(cash)
        obs: npt.NDArray[np.float32] = self._rows[t].copy()
        # Each weight clipped to [-OBS_BOUND, OBS_BOUND], written in place (an element at a
        # time: numpy converts a list for a slice assignment more slowly than it stores 4 floats).
        i = self._weights_at
        for v in values:
            w = v * scale
            if w > OBS_BOUND:
                w = OBS_BOUND
            elif w < -OBS_BOUND:
                w = -OBS_BOUND
            obs[i] = w
            i += 1
        return obs

    # ------------------------------------------------------------------ inspection
    @property
    def trace(self) -> Trace:
        """The episode so far, as an immutable :class:`~tradeguard.trace.Trace`."""
        return Trace(tuple(self._records), self._meta)

    @property
    def trace_meta(self) -> TraceMeta:
        """The header of this episode's trace."""
        return self._meta

    @property
    def prices(self) -> npt.NDArray[np.int64]:
        """This episode's prices in minor units, shape ``(episode_length + 1, n_instruments)`` (a copy)."""
        return self._prices.copy()


def _short(action: Any) -> str:
    text = repr(action)
    return text if len(text) <= 80 else text[:77] + "..."


def make_portfolio_env(*, steps: int | None = None, scenario: str = "long-only", config: PortfolioConfig | None = None,
                       **changes: Any) -> PortfolioEnv:
    """``tradeguard/Portfolio-v0`` for a scenario, episodes of ``steps`` steps (the scenario's
    when ``None``), with any other :class:`PortfolioConfig` field changed; or built with
    ``config`` as given (``steps``, ``scenario`` and field changes then do not apply, as
    ``make_batch_lane_env`` takes its ``config``).

    Example:
        >>> make_portfolio_env(steps=10, scenario="long-short").config.episode_length
        10
        >>> make_portfolio_env(steps=10, config=PortfolioConfig(episode_length=3)).config.episode_length
        3
    """
    if config is not None:
        if changes:
            raise InvalidConfig(f"config= is given with field changes {sorted(changes)}; change them in the config "
                                "itself (dataclasses.replace(config, ...)), or leave config out.")
        return PortfolioEnv(config)
    base = portfolio_scenario(scenario)
    if steps is not None:
        changes["episode_length"] = steps
    return PortfolioEnv(replace(base, **changes) if changes else base)
