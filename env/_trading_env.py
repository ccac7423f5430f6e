"""``TradingEnv``: the state machine as a gymnasium env that writes a trace."""

from __future__ import annotations

import json
import math
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from tradeguard.env._actions import ACTION_NAMES, N_ACTIONS, Action
from tradeguard.env._config import EnvConfig, RewardConfig
from tradeguard.env._market import Market, MarketSpec
from tradeguard.env._reward import RewardShaper, ShaperState, total_reward
from tradeguard.env._rules import Machine, PortfolioState, initial_state
from tradeguard.env._scenarios import Scenario, load_scenario, scenario_names
from tradeguard.errors import EpisodeEnded, InvalidAction, InvalidConfig, InvalidMarket
from tradeguard.trace import StepRecord, Trace, TraceMeta

__all__ = ["N_POSITION_FEATURES", "OBS_BOUND", "TradingEnv", "validate_action"]

N_POSITION_FEATURES = 4
OBS_BOUND = 32.0
"""Every observation feature lies in [-32, 32]: log returns of prices in 1..1e12 stay within +-27.7."""

_ACTIONS = tuple(Action)
_INT_TYPES = (int, Action, np.int64, np.intp)


def padded_log_returns(
    prices: npt.NDArray[np.int64], window: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    """The observation's log returns (0 at the first price), padded in front with
    ``window - 1`` zeros, as float32; and the unpadded float64 returns.

    The one definition the scalar env and the batch engine both use, so their
    observations agree to the bit.
    """
    logp = np.log(prices.astype(np.float64))
    r = np.diff(logp, prepend=logp[0])
    padded = np.concatenate((np.zeros(window - 1), r)).astype(np.float32)
    return padded, r


def validate_action(action: Any) -> Action:
    """Return ``action`` as an :class:`Action`, or raise :class:`InvalidAction`.

    Accepted: :class:`Action` members, Python ints and numpy integers in 0..6, and
    0-d integer numpy arrays (what some vectorized wrappers pass). Refused: bools,
    floats (even 1.0), ``None``, strings, arrays with more than one element.
    """
    cls = type(action)
    if cls in _INT_TYPES or (isinstance(action, (int, np.integer)) and not isinstance(action, (bool, np.bool_))):
        if 0 <= action < N_ACTIONS:
            return _ACTIONS[int(action)]
        raise InvalidAction(
            f"action={action!r} is out of range: expected an integer in 0..{N_ACTIONS - 1} "
            f"({', '.join(f'{i}={n}' for i, n in enumerate(ACTION_NAMES))}) or an Action member."
        )
    if isinstance(action, np.ndarray) and action.shape == () and action.dtype.kind in "iu":
        return validate_action(action.item())
    hint = ""
    if isinstance(action, (float, np.floating)):
        hint = " Floats are refused rather than truncated; pass int(action) if that is what you mean."
    elif isinstance(action, (bool, np.bool_)):
        hint = " Booleans are refused (True is not BUY_SMALL)."
    elif isinstance(action, np.ndarray):
        hint = f" Got an array of shape {action.shape} dtype {action.dtype}; pass one action per env."
    raise InvalidAction(
        f"action={action!r} of type {type(action).__name__} is not an action: expected an "
        f"integer in 0..{N_ACTIONS - 1} or an Action member.{hint}"
    )


class TradingEnv(gym.Env[npt.NDArray[np.float32], np.int64]):
    """A long-only trading account as a deterministic state machine (``tradeguard/Trading-v0``).

    Each step the agent *predicts* an action; the rule table decides whether it
    executes or is rejected (HOLD executes instead, with a reason, and the
    failed-action penalty applies). ``info["record"]`` is the step's
    :class:`~tradeguard.trace.StepRecord`; :attr:`trace` is the episode so far.

    Observation (float32, all in [-32, 32]): the last ``window`` log returns of the
    price, then ``in_position`` (0 or 1), ``exposure`` (position value / equity),
    ``log(position value / cost basis)`` (> 0 means ADD_POSITION's profit condition
    holds) and the share of the episode remaining.

    Args:
        config: The machine's configuration (default: the scenario's).
        reward: The reward shaper's weights (default: the scenario's).
        market: A fixed :class:`Market` (episodes start at a random offset when it is
            longer than an episode), or a :class:`MarketSpec` drawn anew every reset
            from the env's seeded RNG (default: the scenario's).
        scenario: A shipped scenario name or a scenario file; supplies the defaults.
        render_mode: ``None`` or ``"ansi"`` (the last step as a ledger line).

    Reset options: ``{"market": Market}`` trades that market for this episode only.

    Example:
        >>> env = TradingEnv(scenario="v10")
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(Action.SELL_PARTIAL)
        >>> info["record"].executed, info["record"].reason, reward
        (0, 'NO_POSITION', -0.05)
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}  # noqa: RUF012 (gymnasium declares it so)

    def __init__(
        self,
        config: EnvConfig | None = None,
        reward: RewardConfig | None = None,
        market: Market | MarketSpec | None = None,
        *,
        scenario: str | Scenario | None = None,
        render_mode: str | None = None,
    ) -> None:
        base = scenario if isinstance(scenario, Scenario) else load_scenario(scenario or "default")
        shipped = base.name in scenario_names() and base == load_scenario(base.name)
        self.config: EnvConfig = config if config is not None else base.env
        self.reward_config: RewardConfig = reward if reward is not None else base.reward
        for name, value, cls in (
            ("config", self.config, EnvConfig),
            ("reward", self.reward_config, RewardConfig),
        ):
            if not isinstance(value, cls):
                raise InvalidConfig(f"{name}={value!r} must be a {cls.__name__}.")
        self.market: Market | MarketSpec = market if market is not None else base.market
        if not isinstance(self.market, (Market, MarketSpec)):
            raise InvalidConfig(f"market={self.market!r} must be a Market or a MarketSpec.")
        if isinstance(self.market, Market):
            self._check_length(self.market)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise InvalidConfig(f"render_mode={render_mode!r}; expected None or 'ansi'.")
        self.render_mode = render_mode
        self.scenario = Scenario(
            name=base.name
            if shipped
            and (self.config, self.reward_config, self.market) == (base.env, base.reward, base.market)
            else "custom",
            description=base.description,
            env=self.config,
            reward=self.reward_config,
            market=self.market if isinstance(self.market, MarketSpec) else base.market,
            exploration=base.exploration,
        )
        self.machine = Machine(self.config)
        sc = self.scenario
        self._replay_prefix: str | None = (
            f"--scenario {sc.name}"
            if sc.name != "custom"
            else "--config-json " + _shell_quote(json.dumps(sc.changes(), separators=(",", ":")))
        )
        if any(c.spec is None for c in self.reward_config.custom_components):
            self._replay_prefix = None  # a component that cannot be imported back cannot be replayed
        self.shaper = RewardShaper(self.reward_config, self.config.cash)
        window = self.config.window
        self._window = window
        self._length = self.config.episode_length
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self.observation_space = gym.spaces.Box(
            -OBS_BOUND, OBS_BOUND, shape=(window + N_POSITION_FEATURES,), dtype=np.float32
        )
        self._meta_base = {
            "env_id": "tradeguard/Trading-v0",
            "action_names": ACTION_NAMES,
            "action_kinds": tuple(a.kind for a in Action),
            "component_names": self.reward_config.component_names,
            "penalty_component": "failed_action_penalty",
            "failed_action_penalty": self.reward_config.failed_action_penalty,
            "disabled_actions": frozenset(int(a) for a in self.config.disabled_actions),
            "initial_cash": self.config.cash,
            "minor_unit": self.config.minor_unit,
            "pnl_scale": self.shaper.pnl_scale,
            "reward_is_pnl": self.reward_config.is_pnl,
            "episode_length": self.config.episode_length,
            "initial_position": 0,
            "refusal_errors": (EpisodeEnded,),
        }
        self._returns_cache: tuple[Market | None, npt.NDArray[np.float32]] = (None, np.zeros(0, np.float32))
        self._records: list[StepRecord] = []
        self._rows: npt.NDArray[np.float32] = np.zeros((1, window + N_POSITION_FEATURES), np.float32)
        self._done = True
        self._started = False
        self._t = 0
        self._prices: list[int] = []
        self._state = initial_state(self.config)
        self._hist = self.shaper.initial()
        self._meta = TraceMeta(**self._meta_base)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ helpers
    def _check_length(self, market: Market) -> None:
        if len(market) < self._length_needed():
            raise InvalidMarket(
                f"{market.name} has {len(market)} prices; an episode of episode_length="
                f"{self.config.episode_length} steps needs {self._length_needed()} (one more "
                "than the steps, to mark the last one). Pass a longer market or a smaller "
                "episode_length."
            )

    def _length_needed(self) -> int:
        return self.config.episode_length + 1

    def _returns(self, market: Market) -> npt.NDArray[np.float32]:
        cached_market, padded = self._returns_cache
        if cached_market is not market:
            padded = padded_log_returns(market.prices, self._window)[0]
            self._returns_cache = (market, padded)
        return padded

    def _replay_args(self, seed: int | None, market: Market | None) -> str | None:
        args = self._replay_prefix
        if args is None:
            return None
        if market is not None:
            start = self._offset
            prices = market.prices[start : start + self._length_needed()].tolist()
            args += f" --prices {','.join(map(str, prices))} --minor-unit {market.minor_unit!r}"
        elif seed is None:
            return None
        if seed is not None:
            args += f" --seed {seed}"
        return args

    def _episode_rows(self) -> npt.NDArray[np.float32]:
        """Every step's observation as if flat: the return window and the time remaining.

        Built once per reset; a step copies its row and fills the position features.
        """
        w, length = self._window, self._length
        rows = np.zeros((length + 1, w + N_POSITION_FEATURES), np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(self._padded, w)
        rows[:, :w] = windows[self._offset : self._offset + length + 1]
        rows[:, w + 3] = (length - np.arange(length + 1)) / length
        return rows

    def _observation(self) -> npt.NDArray[np.float32]:
        t = self._t
        obs: npt.NDArray[np.float32] = self._rows[t].copy()
        cash, position, basis = self._state
        if position:
            w = self._window
            value = position * self._prices[t]
            obs[w] = 1.0
            obs[w + 1] = value / (cash + value)
            obs[w + 2] = math.log(value / basis)
        return obs

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        """Start an episode. ``options={"market": Market}`` trades that market this episode."""
        super().reset(seed=seed)
        market: Market | None = None
        if options and "market" in options:
            market = options["market"]
            if not isinstance(market, Market):
                raise InvalidMarket(f"options['market']={market!r} must be a Market.")
            self._check_length(market)
            unknown = set(options) - {"market"}
            if unknown:
                raise InvalidConfig(f"unknown reset options {sorted(unknown)}; expected 'market'.")
        elif options:
            raise InvalidConfig(f"unknown reset options {sorted(options)}; expected 'market'.")
        elif isinstance(self.market, Market):
            market = self.market
        needed = self._length_needed()
        if market is None:
            assert isinstance(self.market, MarketSpec)
            generated = self.market.generate(needed, self.np_random)
            self._offset = 0
            self._padded = self._returns(generated)
            self._prices = generated.prices.tolist()
            replay_market = None
        else:
            spare = len(market) - needed
            self._offset = int(self.np_random.integers(0, spare + 1)) if spare else 0
            self._padded = self._returns(market)
            self._prices = market.prices[self._offset : self._offset + needed].tolist()
            replay_market = market
        self._rows = self._episode_rows()
        self._state = initial_state(self.config)
        self._hist = self.shaper.initial()
        self._records = []
        self._t = 0
        self._done = False
        self._started = True
        self._meta = TraceMeta(
            **self._meta_base,  # type: ignore[arg-type]
            seed=seed,
            replay=self._replay_args(seed, replay_market),
        )
        return self._observation(), {}

    def step(
        self, action: Any
    ) -> tuple[npt.NDArray[np.float32], SupportsFloat, bool, bool, dict[str, Any]]:
        """Predict ``action``; execute it if the rules allow, else execute HOLD and record why."""
        a = validate_action(action)
        if self._done:
            raise EpisodeEnded(
                "step() called after the episode ended (or before the first reset()); call "
                "reset() to start a new episode."
                if self._started
                else "step() called before reset(); call reset(seed=...) first."
            )
        t = self._t
        price = self._prices[t]
        next_price = self._prices[t + 1]
        before = self._state
        machine = self.machine
        verdicts, mask = machine.verdicts(before, price)
        after, outcome = machine.apply(before, a, price, verdicts[a])
        components, self._hist = self.shaper.shape(
            self._hist, a, outcome, before, after, price, next_price
        )
        reward = total_reward(components)
        reason = outcome.reason
        record = StepRecord(
            t,
            price,
            next_price,
            a._value_,
            outcome.executed._value_,
            reason is not None,
            None if reason is None else reason._value_,
            before.position,
            after.position,
            before.cash,
            after.cash,
            before.cash + before.position * price,
            after.cash + after.position * next_price,
            outcome.quantity,
            outcome.fee,
            reward,
            components,
            mask,
            before.cost_basis,
        )
        self._records.append(record)
        self._state = after
        self._t = t = t + 1
        terminated = t >= self._length
        self._done = terminated
        return self._observation(), reward, terminated, False, {"record": record}

    def action_masks(self) -> npt.NDArray[np.bool_]:
        """Valid actions now (a fresh bool array): what MaskablePPO reads. HOLD is always valid."""
        t = min(self._t, len(self._prices) - 1) if self._prices else 0
        price = self._prices[t] if self._prices else 1
        return np.array(self.machine.verdicts(self._state, price)[1], dtype=bool)

    def render(self) -> str | None:  # type: ignore[override]
        """With ``render_mode="ansi"``, the last step as a ledger line."""
        if self.render_mode != "ansi":
            return None
        if not self._records:
            return f"t=0 flat, cash {self._meta.money(self._state.cash)}"
        r = self._records[-1]
        verdict = f"rejected ({r.reason})" if r.rejected else f"executed {ACTION_NAMES[r.executed]}"
        return (
            f"t={r.t} price {self._meta.money(r.price)}: predicted {ACTION_NAMES[r.predicted]}, "
            f"{verdict}; position {r.position_after}, cash {self._meta.money(r.cash_after)}, "
            f"equity {self._meta.money(r.equity_after)}, reward {r.reward:+.4f}"
        )

    # ------------------------------------------------------------------ inspection
    @property
    def trace(self) -> Trace:
        """The episode so far, as an immutable :class:`~tradeguard.trace.Trace`."""
        return Trace(tuple(self._records), self._meta)

    @property
    def trace_meta(self) -> TraceMeta:
        """The header of this episode's trace (cheap: no copy of the records)."""
        return self._meta

    @property
    def state(self) -> PortfolioState:
        """The account now (cash, position, cost basis)."""
        return self._state

    @property
    def shaper_state(self) -> ShaperState:
        """The reward shaper's history counters now."""
        return self._hist

    @property
    def prices(self) -> tuple[int, ...]:
        """This episode's prices in minor units (``episode_length + 1`` of them)."""
        return tuple(self._prices)


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
