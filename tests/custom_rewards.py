"""Custom reward components the tests plug into the shaper (importable as ``custom_rewards:NAME``).

Healthy ones, of every shape a team writes (without history, with an integer or a float
history, bounded or not, potential-based), and the seed's V10.1 curriculum rewritten
as a custom component.
"""

from __future__ import annotations

import math

from tradeguard.env import Action, Step, reward_component

SELLS = (Action.SELL_PARTIAL, Action.SELL_ALL)


@reward_component(history=(0, 0), bounds=(-2.5, 0.0))
def sell_curriculum(step: Step, hist: tuple[int, int]) -> tuple[float, tuple[int, int]]:
    """The seed's V10.1: SELL (partial or all) in at least 5% of predictions, or -0.5 x 5.0."""
    steps, count = hist
    steps += 1
    if step.predicted in SELLS:
        count += 1
    short = count * 20 < steps  # count / steps < 0.05, exactly
    return (-0.5 * 5.0 if short else 0.0), (steps, count)


@reward_component(history=(0, 0), bounds=(-1.0, 0.0))
def half_sells(step: Step, hist: tuple[int, int]) -> tuple[float, tuple[int, int]]:
    """A harsher curriculum: SELL in at least half of the predictions, or -1."""
    steps, count = hist
    steps += 1
    count += step.predicted in SELLS
    return (-1.0 if 2 * count < steps else 0.0), (steps, count)


@reward_component(history=0, bounds=(0.0, 0.3))
def holding_bonus(step: Step, held: int) -> tuple[float, int]:
    """Pays 0.3 on the third and later consecutive steps in a position."""
    held = held + 1 if step.after.position > 0 else 0
    return (0.3 if held >= 3 else 0.0), held


@reward_component(history=(0, 0.0, 0.0), bounds=(-1.0, 1.0))
def sharpe_bonus(step: Step, hist: tuple[int, float, float]) -> tuple[float, tuple[int, float, float]]:
    """The running mean over standard deviation of the step PnL (Welford), clipped to [-1, 1]."""
    n, mean, m2 = hist
    x = step.pnl_percent
    n += 1
    d = x - mean
    mean += d / n
    m2 += d * (x - mean)
    std = math.sqrt(m2 / n)
    value = 0.0 if std == 0.0 else max(-1.0, min(1.0, mean / std))
    return value, (n, mean, m2)


@reward_component(history=0, bounds=(-100.0, 0.0))
def drawdown(step: Step, peak: int) -> tuple[float, int]:
    """Minus the drawdown of equity from its peak, in percent of the peak."""
    equity = step.equity_after
    peak = max(peak, step.equity_before, equity)
    return -100.0 * (peak - equity) / peak, peak


@reward_component(bounds=(-1.0, 0.0))
def rejection_cost(step: Step) -> float:
    """-1 for every rejected prediction (a second failed-action penalty)."""
    return -1.0 if step.rejected else 0.0


@reward_component(bounds=(0.0, 0.5))
def trade_bonus(step: Step) -> float:
    """+0.5 for every executed trade: pays activity, not profit."""
    return 0.5 if step.executed is not Action.HOLD else 0.0


@reward_component
def pnl_echo(step: Step) -> float:
    """The step's PnL in percent again (unbounded: the oracle cannot prune on it)."""
    return step.pnl_percent


def _unrealized_percent(position: int, price: int, basis: int, cash: int) -> float:
    return 100.0 * (position * price - basis) / cash


@reward_component(potential_based=True, bounds=(-100.0, 100.0))
def unrealized_potential(step: Step) -> float:
    """Phi(s') - Phi(s) with Phi the unrealized PnL in percent: potential-based by construction."""
    b, a = step.before, step.after
    return _unrealized_percent(a.position, step.next_price, a.cost_basis, step.initial_cash) - _unrealized_percent(
        b.position, step.price, b.cost_basis, step.initial_cash
    )




def _plain_for_loading(step: Step) -> float:
    """A plain function (no decorator): load_component wraps it as a component without history."""
    return 0.0


@reward_component(history=False, bounds=(-1.0, 0.3))
def first_try_trap(step: Step, tried: bool) -> tuple[float, bool]:
    """+0.3 for the first rejected prediction, then -1 on every later step: a trap only the
    history shows (the portfolio after a rejection is the one HOLD leaves)."""
    if tried:
        return -1.0, True
    return (0.3 if step.rejected else 0.0), step.rejected


def _unseen_left(seen: int, steps_left: int) -> tuple[float, float]:
    return 0.0, 0.2 * min(steps_left, len(Action) - bin(seen).count("1"))


@reward_component(history=0, bounds=(0.0, 0.2), remaining=_unseen_left)
def novelty(step: Step, seen: int) -> tuple[float, int]:
    """0.2 the first time each action is predicted (the built-in diversity bonus, as a custom
    component), with the range of what is still to come: one bonus per action not yet seen."""
    bit = 1 << step.predicted
    return (0.0 if seen & bit else 0.2), seen | bit


_SIGNAL = {
    Action.HOLD: 0,
    Action.BUY_SMALL: 1,
    Action.BUY_MEDIUM: 1,
    Action.BUY_LARGE: 1,
    Action.ADD_POSITION: 1,
    Action.SELL_PARTIAL: -1,
    Action.SELL_ALL: -1,
}


def _running_sharpe(hist: tuple[int, float, float], r: float) -> tuple[float, tuple[int, float, float]]:
    n, mean, m2 = hist
    n += 1
    d = r - mean
    mean += d / n
    m2 += d * (r - mean)
    std = math.sqrt(m2 / n)
    return (0.0 if std < 1e-12 else max(-1.0, min(1.0, mean / std))), (n, mean, m2)


@reward_component(history=(0, 0.0, 0.0), bounds=(-1.0, 1.0), weight=0.5)
def signal_sharpe(step: Step, hist: tuple[int, float, float]) -> tuple[float, tuple[int, float, float]]:
    """A Sharpe-like bonus with the seed's bug: the return of the action *predicted* (a SELL
    while flat scores as a short that profits from a fall, although it is rejected)."""
    r = _SIGNAL[step.predicted] * 100.0 * (step.next_price - step.price) / step.price
    return _running_sharpe(hist, r)


@reward_component(history=(0, 0.0, 0.0), bounds=(-1.0, 1.0), weight=0.5)
def account_sharpe(step: Step, hist: tuple[int, float, float]) -> tuple[float, tuple[int, float, float]]:
    """The fix: the Sharpe of what the account earned (executed trades, fees included)."""
    return _running_sharpe(hist, step.pnl_percent)


HEALTHY = (
    sell_curriculum,
    half_sells,
    holding_bonus,
    sharpe_bonus,
    drawdown,
    rejection_cost,
    trade_bonus,
    pnl_echo,
    unrealized_potential,
    first_try_trap,
    novelty,
)
