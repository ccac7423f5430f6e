"""tradeguard/Portfolio-v0: the exact multi-instrument reference, and its broken twins.

Every healthy configuration passes the whole catalog (a false positive is as serious as a
miss); every broken variant (tests/broken_portfolios.py) is caught by the right invariant
with a counterexample of at most 10 steps and a message a trader can read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from broken_portfolios import (
    CLIP,
    HEALTHY,
    LONG,
    SHORT,
    ChargesFeesTwice,
    ClipsPastTheTopToTheBottom,
    CutsWithoutAReason,
    FeesOnIdleLegs,
    FlipsSells,
    FloorsByCeilMinusOne,
    IgnoresTheLimit,
    LeaksCashOnSells,
    MarksAtTheExecutionPrice,
    OverFills,
    SkipsTheGrossScaling,
    TakesNaNAsCash,
    with_env,
    with_machine,
)

import tradeguard.env  # noqa: F401  (registers tradeguard/Portfolio-v0)
from tradeguard.env import PortfolioEnv, format_portfolio_rules, make_portfolio_env
from tradeguard.errors import EpisodeEnded, InvalidAction
from tradeguard.invariants import CATALOG, InvariantMonitor, check_trace, check_trading_env


@dataclass(frozen=True)
class BadPortfolio:
    name: str
    make_env: Callable[[], Any]
    invariant: str
    message: str  # a regex the first violation's message must match in full


BAD = [
    BadPortfolio("a buy over-fills", with_machine(OverFills, LONG), "executed-within-requested",
                 r"[ABC]: executed \d+ units, more than the \d+ requested"),
    BadPortfolio("a sell executes as a buy", with_machine(FlipsSells, SHORT), "executed-within-requested",
                 r"[ABC]: executed \d+ units although -\d+ were requested \(the opposite side, or a trade nobody "
                 r"asked for\)"),
    BadPortfolio("weights not scaled to the declared gross exposure", with_machine(SkipsTheGrossScaling, LONG),
                 "executed-within-requested", r"[ABC]: executed \d+ units, more than the \d+ requested"),
    BadPortfolio("cash leaked on a rebalance's sells", with_machine(LeaksCashOnSells, LONG), "self-financing",
                 r"cash changed by -?[\d,.]+ but trades worth -?[\d,.]+ with fee [\d,.]+ accounts for -?[\d,.]+: "
                 r"value lost \(\d+\.\d\d vanished\)|cash changed by .* value lost"),
    BadPortfolio("every fee charged twice", with_machine(ChargesFeesTwice, LONG), "fees-match-schedule",
                 r"fee of [ABC] charged [\d,.]+ on \d+ units at [\d,.]+ \(notional [\d,.]+\); the declared schedule "
                 r"\(10 bps, rounded up to 1\) charges [\d,.]+ - charged twice\?"),
    BadPortfolio("a ticket fee on legs that did not trade", with_machine(FeesOnIdleLegs, LONG),
                 "fees-only-on-trades", r"fee of [ABC] 0\.01 charged on a step that traded nothing \(step \d+\)"),
    BadPortfolio("a long-only book sells more than it holds", with_machine(FloorsByCeilMinusOne, LONG),
                 "no-sell-without-position", r"sold \d+ units of [ABC] holding only \d+ \(step \d+\)"),
    BadPortfolio("the declared position limit is ignored", with_machine(IgnoresTheLimit, SHORT),
                 "position-within-limits", r"position of [ABC] is -?\d+ units after step \d+, beyond the declared "
                 r"limits -50\.\.50 \(a (long|short) past its limit\)"),
    BadPortfolio("a cut buy gives no reason", with_machine(CutsWithoutAReason, SHORT), "executed-within-requested",
                 r"[ABC]: executed \d+ of the \d+ units requested, with no rejection and no reason: a partial fill "
                 r"or a rejection must say why"),
    BadPortfolio("NaN weights taken as cash", with_env(TakesNaNAsCash, LONG), "action-range-enforced",
                 r"step\(\[nan, 0, 0\]\) \(NaN in component 0; the action space is Box\(0\.0, 1\.0, \(3,\), "
                 r"float64\)\) returned normally instead of raising: the action was silently taken as something "
                 r"else; it executed as no trade"),
    BadPortfolio("clipping past the top to the bottom", with_env(ClipsPastTheTopToTheBottom, CLIP),
                 "action-range-enforced",
                 r"step\(\[inf, 0, 0\]\) \(\+inf in component 0; the action space is Box\(0\.0, 1\.0, \(3,\), "
                 r"float64\)\) was not clipped as the env declares \(out_of_space='clip'\): played as the clipped "
                 r"\[1, 0, 0\] it gives a different step: .*"),
    BadPortfolio("equity marked at the execution price", with_env(MarksAtTheExecutionPrice, LONG), "equity-identity",
                 r"equity after the step is [\d,.]+ but cash [\d,.]+ \+ A .* = [\d,.]+"),
]


@pytest.mark.parametrize("bad", BAD, ids=[b.invariant + ":" + b.name for b in BAD])
def test_gate_catches_a_broken_portfolio(bad: BadPortfolio) -> None:
    report = check_trading_env(bad.make_env, only=[bad.invariant], examples=100, max_steps=12, seed=1,
                               name=bad.name, database=None)
    (result,) = report.results
    assert result.status == "fail", f"{bad.name}: {bad.invariant} did not fire\n{report.format()}"
    assert result.counterexample is not None
    assert len(result.counterexample.actions) <= 10, str(result.counterexample)
    first = result.violations[0]
    assert first.invariant == bad.invariant
    assert re.fullmatch(bad.message, first.message), first.message


def test_each_broken_portfolio_is_one_mechanism_and_names_a_catalog_invariant() -> None:
    assert len(BAD) >= 10
    assert len({b.make_env.__qualname__ for b in BAD}) == len(BAD)
    assert {b.invariant for b in BAD} <= {inv.id for inv in CATALOG}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_every_healthy_portfolio_passes_the_whole_catalog(name: str) -> None:
    config = HEALTHY[name]
    report = check_trading_env(lambda: PortfolioEnv(config), examples=40, max_steps=12, seed=2, name=name,
                               database=None)
    assert report.passed, report.format()
    statuses = {r.invariant.id: r.status for r in report.results}
    for money in ("equity-identity", "self-financing", "fees-only-on-trades", "fees-match-schedule",
                  "executed-within-requested", "no-negative-position-or-cash", "reward-consistent-with-pnl",
                  "penalty-matches-rejections", "action-range-enforced"):
        assert statuses[money] == "pass", (money, statuses[money])
    if config.position_limit is not None:
        assert statuses["position-within-limits"] == "pass"


# --------------------------------------------------------------------------- the env itself
def test_registered_and_exact() -> None:
    env = gym.make("tradeguard/Portfolio-v0", scenario="long-short")
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    for w in ([0.5, -0.5, 0.0], [-1.0, 1.0, 1.0], [0.0, 0.0, 0.0]):
        obs, _, _, _, info = env.step(np.array(w))
        assert env.observation_space.contains(obs)
        record = info["record"]
        assert all(isinstance(x, int) for leg in record.legs for x in (leg.quantity, leg.fee, leg.requested))
        assert record.equity_after == record.cash_after + sum(leg.position_after * leg.next_price
                                                               for leg in record.legs)
    assert check_trace(env.unwrapped.trace) == []


def test_the_gross_exposure_is_scaled_and_a_cash_cut_says_why() -> None:
    env = make_portfolio_env(scenario="long-only", steps=3)
    env.reset(seed=0, options={"prices": np.full((4, 3), 10_000)})
    _, _, _, _, info = env.step(np.array([1.0, 1.0, 1.0]))  # 300% asked: scaled to 1/3 each
    record = info["record"]
    assert [leg.requested for leg in record.legs] == [33, 33, 33]
    assert [leg.quantity for leg in record.legs] == [33, 33, 33]
    assert (record.reason, record.cash_after) == (None, 1_000_000 - 99 * 10_000 - 3 * 330)


def test_actions_outside_the_space_are_refused_with_what_to_do() -> None:
    env = make_portfolio_env(scenario="long-only", steps=3)
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match=r"action=array\(\[nan,  0\.,  0\.\]\) is not in the action space Box"
                       r".*one per instrument: A, B, C\); values past a bound are refused, not clipped "
                       r"\(PortfolioConfig\(out_of_space='clip'\) clips them\)\."):
        env.step(np.array([np.nan, 0.0, 0.0]))
    clip = PortfolioEnv(CLIP)
    clip.reset(seed=0, options={"prices": np.full((13, 3), 10_000)})
    twin = PortfolioEnv(CLIP)
    twin.reset(seed=0, options={"prices": np.full((13, 3), 10_000)})
    assert clip.step(np.array([1e20, 0.0, 0.0]))[4]["record"] == twin.step(np.array([1.0, 0.0, 0.0]))[4]["record"]
    with pytest.raises(InvalidAction):
        clip.step(np.array([np.nan, 0.0, 0.0]))


def test_step_after_the_end_raises() -> None:
    env = make_portfolio_env(steps=2)
    env.reset(seed=0)
    env.step(np.zeros(3))
    env.step(np.zeros(3))
    with pytest.raises(EpisodeEnded):
        env.step(np.zeros(3))


def test_the_monitor_checks_portfolio_steps_online() -> None:
    healthy = InvariantMonitor(PortfolioEnv(LONG), mode="record")
    broken = InvariantMonitor(with_machine(OverFills, LONG)(), mode="record")
    for env in (healthy, broken):
        env.reset(seed=0)
        for w in ([0.5, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 0.0]):
            env.step(np.array(w))
    assert healthy.violations == []
    assert "executed-within-requested" in {v.invariant for v in broken.violations}


def test_the_rules_print_from_the_table() -> None:
    text = format_portfolio_rules(SHORT)
    assert "long and short" in text and "[leg cut: POSITION_LIMIT]" in text and "[leg cut: INSUFFICIENT_CASH]" in text
