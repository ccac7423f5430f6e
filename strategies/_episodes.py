"""Whole episodes: a config, a reward shaping, a market and actions, replayable and readable."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis.errors import InvalidArgument

from tradeguard.env import (
    ACTION_NAMES,
    EnvConfig,
    Market,
    RewardConfig,
    Scenario,
    TradingEnv,
    load_scenario,
)
from tradeguard.limits import MAX_GATE_STEPS
from tradeguard.strategies._actions import (
    ACTION_STYLES,
    PLAN_STYLES,
    ActionStyle,
    action_plans,
    action_sequences,
    drive,
)
from tradeguard.strategies._common import check_bool, check_int_arg, check_option, check_options
from tradeguard.strategies._configs import config_changes, env_configs, reward_configs
from tradeguard.strategies._markets import PATH_KINDS, PathKind, markets
from tradeguard.trace import Trace

__all__ = ["Episode", "episodes"]

MAX_STEPS = MAX_GATE_STEPS
_SHOWN_PRICES = 12


@dataclass(frozen=True, slots=True, kw_only=True)
class Episode:
    """One generated episode: everything needed to replay it, bit for bit.

    Attributes:
        config: The machine's configuration; ``episode_length`` is the number of steps.
        reward: The reward shaper's weights.
        market: Exactly ``config.episode_length + 1`` prices.
        actions: Action ids (``masked=False``) or plan choices (``masked=True``, see
            :func:`~tradeguard.strategies.drive`), one per step.
        masked: Whether ``actions`` is a plan mapped onto the valid actions.
        seed: Seed passed to ``reset``.
        scenario: Name of the scenario the configs came from, or ``None``.

    Example:
        >>> import numpy as np
        >>> ep = Episode(
        ...     config=EnvConfig(episode_length=1),
        ...     reward=RewardConfig(failed_action_penalty=-0.05),
        ...     market=Market(np.array([10000, 10000])),
        ...     actions=(4,),
        ... )
        >>> ep
        Episode(actions=[SELL_PARTIAL], prices=[10000, 10000], reward=RewardConfig(failed_action_penalty=-0.05), seed=0)
        >>> ep.run()[0].reason
        'NO_POSITION'
    """

    config: EnvConfig
    reward: RewardConfig
    market: Market
    actions: tuple[int, ...]
    masked: bool = False
    seed: int = 0
    scenario: str | None = None

    def __post_init__(self) -> None:
        for name, cls in (("config", EnvConfig), ("reward", RewardConfig), ("market", Market)):
            if not isinstance(getattr(self, name), cls):
                raise InvalidArgument(f"{name}={getattr(self, name)!r} must be a {cls.__name__}.")
        object.__setattr__(self, "actions", tuple(int(a) for a in self.actions))
        if len(self.market) < self.config.episode_length + 1:
            raise InvalidArgument(
                f"market has {len(self.market)} prices; episode_length="
                f"{self.config.episode_length} needs {self.config.episode_length + 1}."
            )

    @property
    def steps(self) -> int:
        """Number of steps the episode plays (at most ``config.episode_length``)."""
        return min(len(self.actions), self.config.episode_length)

    def make_env(self, factory: Callable[..., Any] | None = None) -> Any:
        """A fresh env for this episode: ``factory(config=..., reward=..., market=...)``.

        Args:
            factory: :class:`~tradeguard.env.TradingEnv` by default; pass a subclass or
                variant (e.g. a deliberately broken one) to run the same episode on it.
        """
        if factory is None:
            # Passing the scenario spares TradingEnv from reading its default scenario file.
            base = Scenario(name=self.scenario or "custom", env=self.config, reward=self.reward)
            return TradingEnv(self.config, self.reward, self.market, scenario=base)
        return factory(config=self.config, reward=self.reward, market=self.market)

    def run(self, env: Any = None) -> Trace:
        """Play the episode and return its trace: the same trace on every call.

        Args:
            env: An env with the tradeguard API to play on (a fresh :meth:`make_env`
                by default); it is reset with this episode's seed and market.
        """
        return drive(
            self.make_env() if env is None else env,
            self.actions,
            masked=self.masked,
            seed=self.seed,
            market=self.market,
        )

    def __repr__(self) -> str:
        parts = [] if self.scenario is None else [f"scenario={self.scenario!r}"]
        if self.masked:
            parts.append(f"plan={list(self.actions)}, masked=True")
        else:
            names = ", ".join(
                ACTION_NAMES[a] if 0 <= a < len(ACTION_NAMES) else f"<action {a}>"
                for a in self.actions
            )
            parts.append(f"actions=[{names}]")
        prices = self.market.prices.tolist()
        shown = ", ".join(str(p) for p in prices[:_SHOWN_PRICES])
        if len(prices) > _SHOWN_PRICES:
            shown += f", ... {len(prices) - _SHOWN_PRICES} more"
        parts.append(f"prices=[{shown}]")
        env_changes = config_changes(self.config)
        if env_changes.get("episode_length") == len(self.actions):
            del env_changes["episode_length"]
        for name, cls, changes in (
            ("config", "EnvConfig", env_changes),
            ("reward", "RewardConfig", config_changes(self.reward)),
        ):
            if changes:
                fields = ", ".join(f"{k}={v!r}" for k, v in changes.items())
                parts.append(f"{name}={cls}({fields})")
        parts.append(f"seed={self.seed}")
        return f"Episode({', '.join(parts)})"


def episodes(
    *,
    scenario: str | Path | Scenario | None = None,
    max_steps: int = 30,
    style: ActionStyle = "uniform",
    masked: bool = False,
    pathological: bool = False,
    kinds: tuple[PathKind, ...] | list[PathKind] = PATH_KINDS,
) -> st.SearchStrategy[Episode]:
    """Whole :class:`Episode` objects: config, reward shaping, market, actions and seed.

    The actions come first (1 to ``max_steps`` of them, see :func:`action_sequences`,
    or a plan from :func:`action_plans` when ``masked``); the config's
    ``episode_length`` is their number and the market (:func:`markets`) has one price
    more. Without a scenario the configs are drawn (:func:`env_configs`,
    :func:`reward_configs`); with one, its env and reward configs are used as is,
    episode length aside. The seed is 0 to 2**32 - 1.

    Shrinks towards one HOLD on a flat market of two prices at 10000 ticks, with the
    default (or the scenario's) configs and seed 0. For "some step is rejected" that
    is ``Episode(actions=[SELL_PARTIAL], prices=[10000, 10000], seed=0)`` or, as the
    shrinker may stop at an equally small example, a buy that the config disables.

    Args:
        scenario: A shipped scenario name (``"v10"``), a scenario file or a
            :class:`~tradeguard.env.Scenario`; ``None`` draws the configs.
        max_steps: Most steps, in [1, 10000].
        style: Action style (``"uniform"``, ``"invalid-biased"``, ``"sticky"``); a
            masked episode takes ``"uniform"`` or ``"sticky"``.
        masked: Draw plans that :func:`drive` maps onto the valid actions: no step is
            rejected.
        pathological: Draw reward configs with ``pathological=True`` (no scenario only).
        kinds: Market kinds, see :func:`markets`.

    Raises:
        InvalidArgument: an argument out of range or of the wrong type, an unknown
            style, ``"invalid-biased"`` with ``masked``, ``pathological`` with a scenario.
        InvalidConfig: an unknown scenario name or a bad scenario file.

    Example:
        >>> from hypothesis import find
        >>> ep = find(episodes(), lambda ep: ep.run().metrics().rejections > 0)
        >>> len(ep.actions), len(ep.market), ep.run()[0].rejected
        (1, 2, True)
    """
    n = check_int_arg("max_steps", max_steps, min_value=1, max_value=MAX_STEPS)
    check_bool("masked", masked)
    check_bool("pathological", pathological)
    if masked and style == "invalid-biased":
        raise InvalidArgument(
            "style='invalid-biased' with masked=True: a masked episode never predicts an "
            "invalid action. Use masked=False to bias towards invalid actions, or "
            f"style in {PLAN_STYLES} for a masked one."
        )
    check_option("style", style, PLAN_STYLES if masked else ACTION_STYLES)
    chosen = check_options("kinds", kinds, PATH_KINDS)
    base: Scenario | None = None
    if scenario is not None:
        if pathological:
            raise InvalidArgument(
                "pathological=True with a scenario: the scenario fixes the reward config. "
                "Drop one of them."
            )
        if isinstance(scenario, Scenario):
            base = scenario
        elif isinstance(scenario, (str, Path)):
            base = load_scenario(scenario)
        else:
            raise InvalidArgument(
                f"scenario={scenario!r} must be a scenario name, a file path or a Scenario."
            )
    steps = (
        action_plans(min_size=1, max_size=n, style=style)  # type: ignore[arg-type]
        if masked
        else action_sequences(min_size=1, max_size=n, style=style)
    )
    configs = env_configs(episode_length=1) if base is None else st.just(base.env)
    rewards = reward_configs(pathological=pathological) if base is None else st.just(base.reward)
    return _episode(steps, configs, rewards, masked, chosen, None if base is None else base.name)


@st.composite
def _episode(
    draw: st.DrawFn,
    steps: st.SearchStrategy[list[int]],
    configs: st.SearchStrategy[EnvConfig],
    rewards: st.SearchStrategy[RewardConfig],
    masked: bool,
    kinds: tuple[str, ...],
    scenario: str | None,
) -> Episode:
    actions = draw(steps)
    n = len(actions)
    config = dataclasses.replace(draw(configs), episode_length=n)
    reward = draw(rewards)
    market = draw(
        markets(min_length=n + 1, max_length=n + 1, kinds=kinds, minor_unit=config.minor_unit)  # type: ignore[arg-type]
    )
    seed = draw(st.integers(0, 2**32 - 1))
    return Episode(
        config=config,
        reward=reward,
        market=market,
        actions=tuple(actions),
        masked=masked,
        seed=seed,
        scenario=scenario,
    )
