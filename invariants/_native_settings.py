"""The settings tradeguard's own envs declare (settings fuzzing, see ``invariants/_settings.py``).

``tradeguard/Trading-v0`` is built as ``TradingEnv(scenario=..., config=EnvConfig(...))``: the
gate draws a shipped scenario (its reward weights: default, v9, v10, v10.1, v10.2; or one of
them with its weights drawn: each component's weight, the failed-action penalty, the
curriculum and its actions, the diversity bonus) and a machine configuration changed from the
env's own in what a user varies: the fee (one that rounds to the minor unit, none, the
largest), the starting cash (boundary-seeking: a whole number of one-lot orders at the
market's round price, exactly, one minor unit short or over, or a cash too small for any
lot), the lot size, the sizing fractions, the disabled actions and the episode length (up to
the env's own). ``tradeguard/TradingBatch-v0`` (the batch engine's lane) draws the same, and
where the lane sits: alone, or one of 2 or 3 envs whose neighbours trade beside it.
``tradeguard/Portfolio-v0`` is built as ``PortfolioEnv(config=...)``: its config, or a shipped
scenario's that keeps the env's action space, with a drawn fee, cash, gross-exposure cap,
position limit, episode length, penalty and window.

The env's declarations (``trace_meta``) are its own: each env built with drawn settings
declares its cash, fee schedule, penalty, disabled actions and episode length itself.
Importing this module loads nothing of ``tradeguard.env``: the hooks import it when called,
on an env that has loaded it already.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

__all__ = ["ROUND_PRICE", "episode_lengths", "lane_settings", "native_settings", "portfolio_settings", "reward_settings",
           "trading_settings"]

ROUND_PRICE = 10_000
"""The price (in minor units) the gate's markets shrink to and hold flat at (``strategies.markets``):
the price a boundary-seeking cash is computed for."""

FEES_BPS: tuple[float, ...] = (0.0, 0.01, 1.0, 2.5, 10.0, 33.33, 100.0, 1000.0)
"""Fees a drawn config may have: none, the finest step of the grid, ones that round to the
minor unit on most notionals (2.5, 33.33), the default, and the largest allowed."""

FRACTIONS: tuple[float, ...] = (0.000001, 0.1, 0.25, 0.333333, 0.5, 1.0)
"""Sizing fractions a drawn config may have: the smallest, the defaults, one that rounds, all."""


def native_settings(env: Any) -> SearchStrategy[dict[str, Any]] | None:
    """The settings of tradeguard's own env ``env`` (``None`` for an env of another kind)."""
    from tradeguard.env import BatchLaneEnv, PortfolioEnv, TradingEnv
    from tradeguard.invariants._adapter import env_target

    base = env_target(env)
    if isinstance(base, BatchLaneEnv):
        return st.builds(lambda trading, lanes: {**trading, **lanes}, trading_settings(base), lane_settings())
    if isinstance(base, TradingEnv):
        return trading_settings(base)
    if isinstance(base, PortfolioEnv):
        return portfolio_settings(base)
    return None


def trading_settings(base: Any) -> SearchStrategy[dict[str, Any]]:
    """``{"scenario": NAME | Scenario, "config": EnvConfig}`` (``scenario`` optional) for the ``TradingEnv``
    ``base``. The scenario is a shipped one by name, or a shipped one whose reward weights were drawn
    (:func:`reward_settings`): a ``Scenario`` named ``"v10, reward drawn"``.

    The config always comes with the scenario: a shipped scenario's own config has episodes of
    500 steps, longer than the markets the gate injects into an env built for shorter ones.
    """
    from tradeguard.env import Action, load_scenario, scenario_names

    config = base.config
    disableable = [a for a in Action if a is not Action.HOLD]
    disabled_s = st.one_of(
        st.just(tuple(config.disabled_actions)),
        st.just((Action.ADD_POSITION,)),  # v10.2's
        st.lists(st.sampled_from(disableable), max_size=3, unique=True).map(tuple),
    )
    lengths = episode_lengths(int(config.episode_length))

    @st.composite
    def draw(draw: Any) -> dict[str, Any]:
        # Every field is drawn, the env's own value first: each shrinks to it, so a counterexample's
        # config differs from the env's only where the failure needs it.
        out: dict[str, Any] = {}
        if draw(st.booleans()):
            name = draw(st.sampled_from(scenario_names()))
            out["scenario"] = name
            if draw(st.booleans()):  # and its reward weights changed
                shipped = load_scenario(name)
                reward = draw(reward_settings(shipped.reward))
                out["scenario"] = dataclasses.replace(shipped, name=f"{name}, reward drawn", reward=reward)
        changes: dict[str, Any] = {
            "episode_length": draw(lengths),
            "fee_bps": draw(st.sampled_from(_own_first(config.fee_bps, FEES_BPS))),
            "lot_size": draw(st.sampled_from(_own_first(config.lot_size, (1, 2, 3, 10, 100)))),
            "disabled_actions": draw(disabled_s),
        }
        for name in ("buy_small", "buy_medium", "buy_large", "sell_partial", "add_size"):
            changes[name] = draw(st.sampled_from(_own_first(getattr(config, name), FRACTIONS)))
        drawn = dataclasses.replace(config, **changes)
        cash = draw(st.one_of(st.just(int(config.cash)), boundary_cash(drawn.lot_size * ROUND_PRICE, drawn.fee_ppm)))
        out["config"] = dataclasses.replace(drawn, cash=cash)
        return out

    return draw()


def lane_settings() -> SearchStrategy[dict[str, Any]]:
    """Where the batch engine's lane sits: ``{}`` (a one-env engine, what it shrinks to) or
    ``{"lanes": n, "lane": i}``, the lane ``i`` of an engine of 2 or 3 envs whose neighbours trade
    beside it, with the lane's config or (``"mixed": True``) another one (``BatchLaneEnv``): the
    lane must match the scalar env whichever it is and whatever they do."""

    def place(lanes: int, lane: int, mixed: bool) -> dict[str, Any]:
        if lanes == 1:
            return {}
        return {"lanes": lanes, "lane": lane % lanes, **({"mixed": True} if mixed else {})}

    return st.builds(place, st.sampled_from((1, 2, 3)), st.integers(0, 2), st.booleans())


def reward_settings(reward: Any) -> SearchStrategy[Any]:
    """A ``RewardConfig`` changed from ``reward`` in its weights: each component's weight (off, the
    default, others), the failed-action penalty (none, mild, harsh), the curriculum (off, a share
    that binds, all steps) and its actions, the diversity bonus, and an unrealized-PnL level.
    Each field shrinks to ``reward``'s own; a reward that is no longer the PnL declares so itself
    (``reward_is_pnl``)."""
    from tradeguard.env import Action

    def own_first(name: str, values: tuple[Any, ...]) -> SearchStrategy[Any]:
        return st.sampled_from(_own_first(getattr(reward, name), values))

    curriculum = (tuple(reward.curriculum_actions), (Action.SELL_PARTIAL, Action.SELL_ALL), (Action.BUY_SMALL,),
                  (Action.HOLD, Action.ADD_POSITION))
    return st.builds(
        lambda **changes: dataclasses.replace(reward, **changes),
        realized_pnl=own_first("realized_pnl", (1.0, 0.0, 0.5, 2.0)),
        unrealized_pnl_change=own_first("unrealized_pnl_change", (1.0, 0.0, 0.5)),
        unrealized_pnl_level=own_first("unrealized_pnl_level", (0.0, 0.1, 1.0)),
        transaction_cost=own_first("transaction_cost", (1.0, 0.0, 3.0)),
        failed_action_penalty=own_first("failed_action_penalty", (-1.0, 0.0, -0.05, -10.0)),
        curriculum_min_share=own_first("curriculum_min_share", (0.0, 0.05, 0.3, 1.0)),
        curriculum_actions=st.sampled_from(_own_first(curriculum[0], curriculum[1:])),
        curriculum_weight=own_first("curriculum_weight", (-0.5, -1.0, 0.25)),
        diversity_bonus=own_first("diversity_bonus", (0.0, 0.01, 0.5)),
    )


def episode_lengths(length: int) -> SearchStrategy[int]:
    """Episode lengths up to the env's own ``length``: it first (what each shrinks to), the
    shortest ones and one step short, or any."""
    return st.one_of(st.just(length), st.sampled_from(sorted({1, 2, max(1, length - 1)})), st.integers(1, length))


def _own_first(own: Any, values: tuple[Any, ...]) -> tuple[Any, ...]:
    return (own, *(v for v in values if v != own))


def boundary_cash(lot_cost: int, fee_ppm: int) -> SearchStrategy[int]:
    """Starting cash at the edges of what buys: ``k`` one-lot orders of ``lot_cost`` (with their fee,
    rounded up to the minor unit) exactly, one minor unit short or over, or any cash up to a few lots."""
    from tradeguard.limits import MAX_CASH

    order = lot_cost + -(-lot_cost * fee_ppm // 1_000_000)
    edges = st.builds(lambda k, d: k * order + d, st.integers(1, 20), st.sampled_from((0, -1, 1)))
    return st.one_of(edges, st.integers(1, 5 * order)).filter(lambda c: 1 <= c <= MAX_CASH)


def portfolio_settings(base: Any) -> SearchStrategy[dict[str, Any]]:
    """``{"config": PortfolioConfig}`` for the ``PortfolioEnv`` ``base``: its own config, or a
    shipped scenario's with its action space (its instruments, long-only or not: for a long-only
    env, ``long-only`` and ``clip``, which clips a weight outside the space instead of refusing
    it), changed in what a user varies: the fee, the starting cash (none to spare for a unit, a
    few units, the env's own), the gross-exposure cap (one that binds, none that does), a
    position limit per instrument (one unit, a few), the episode length (up to the env's own),
    the failed-action penalty and the observation window. Each field shrinks to the env's own.

    ``PortfolioEnv(config=...)``, ``gym.make("tradeguard/Portfolio-v0", config=...)`` and
    ``make_portfolio_env(config=...)`` all take it."""
    from tradeguard.env import portfolio_scenario, portfolio_scenario_names

    config = base.config
    same = [portfolio_scenario(n) for n in portfolio_scenario_names()]
    same = [c for c in same if (c.shorts, c.instruments) == (config.shorts, config.instruments) and c != config]
    lengths = episode_lengths(int(config.episode_length))

    @st.composite
    def draw(draw: Any) -> dict[str, Any]:
        start = draw(st.sampled_from([config, *same]))
        changes: dict[str, Any] = {
            "fee_bps": draw(st.sampled_from(_own_first(start.fee_bps, FEES_BPS))),
            "cash": draw(st.sampled_from(_own_first(start.cash, (ROUND_PRICE - 1, ROUND_PRICE + 1, 3 * ROUND_PRICE,
                                                                 1_000, 100_000_000)))),
            "max_gross": draw(st.sampled_from(_own_first(start.max_gross, (1.0, 0.5, 0.25, 2.0)))),
            "position_limit": draw(st.sampled_from(_own_first(start.position_limit, (None, 1, 3, 50)))),
            "episode_length": draw(lengths),
            "failed_action_penalty": draw(st.sampled_from(_own_first(start.failed_action_penalty, (0.0, -0.1, -5.0)))),
            "window": draw(st.sampled_from(_own_first(start.window, (1, 2, 4)))),
        }
        return {"config": dataclasses.replace(start, **changes)}

    return draw()
