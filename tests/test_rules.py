"""Unit tests of the rule table, the pure transition and the reward shaper.

Every expected number here is computed by hand in the comments next to it, not by
the library: a wrong table, a wrong rounding or a wrong precedence fails a test.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard._cli import main
from tradeguard.env import (
    COMPONENT_NAMES,
    RULES,
    Action,
    EnvConfig,
    Machine,
    Market,
    Outcome,
    PortfolioState,
    RejectReason,
    RewardConfig,
    RewardShaper,
    TradingEnv,
    initial_state,
    load_scenario,
    transition,
)

A = Action
R = RejectReason
NON_HOLD = tuple(a for a in Action if a is not Action.HOLD)

# --------------------------------------------------------------------------- the table itself

# DESIGN.md's table, written out: each action's rejection reasons in precedence order.
EXPECTED_REASON_ORDER = {
    A.HOLD: (),
    A.BUY_SMALL: (R.DISABLED, R.ALREADY_IN_POSITION, R.INSUFFICIENT_CASH),
    A.BUY_MEDIUM: (R.DISABLED, R.ALREADY_IN_POSITION, R.INSUFFICIENT_CASH),
    A.BUY_LARGE: (R.DISABLED, R.ALREADY_IN_POSITION, R.INSUFFICIENT_CASH),
    A.SELL_PARTIAL: (R.DISABLED, R.NO_POSITION),
    A.SELL_ALL: (R.DISABLED, R.NO_POSITION),
    A.ADD_POSITION: (R.DISABLED, R.NO_POSITION, R.NOT_PROFITABLE, R.INSUFFICIENT_CASH),
}


def test_actions_are_numbered_as_in_the_seed() -> None:
    assert [(a.name, int(a)) for a in Action] == [
        ("HOLD", 0),
        ("BUY_SMALL", 1),
        ("BUY_MEDIUM", 2),
        ("BUY_LARGE", 3),
        ("SELL_PARTIAL", 4),
        ("SELL_ALL", 5),
        ("ADD_POSITION", 6),
    ]


def test_rule_table_has_one_row_per_action_in_order_with_the_designed_preconditions() -> None:
    assert [rule.action for rule in RULES] == list(Action)
    for rule in RULES:
        assert tuple(c.reason for c in rule.requires) == EXPECTED_REASON_ORDER[rule.action], rule


# --------------------------------------------------------------------------- verdicts by state

PRICE = 10_000  # one lot of 1 unit costs 10_000 + fee ceil(10_000 * 10 bps) = 10 -> 10_010
STATES = {
    "flat_rich": PortfolioState(1_000_000, 0, 0),
    "flat_poor": PortfolioState(10_009, 0, 0),  # one short of 10_010
    "flat_exact_cash": PortfolioState(10_010, 0, 0),  # exactly one lot plus fee
    "profit_rich": PortfolioState(909_910, 9, 89_999),  # 9 * 10_000 = 90_000 > 89_999
    "even_rich": PortfolioState(909_910, 9, 90_000),  # 90_000 == 90_000: not profitable
    "loss_rich": PortfolioState(909_910, 9, 95_000),
    "profit_poor": PortfolioState(10_009, 9, 89_999),
    "loss_poor": PortfolioState(10_009, 9, 95_000),
    "profit_broke": PortfolioState(0, 9, 1),
}
NP, AIP, NPF, IC = R.NO_POSITION, R.ALREADY_IN_POSITION, R.NOT_PROFITABLE, R.INSUFFICIENT_CASH
#                       HOLD  BUY_S BUY_M BUY_L SELL_P SELL_A ADD
EXPECTED_VERDICTS = {
    "flat_rich":       (None, None, None, None, NP,   NP,   NP),
    "flat_poor":       (None, IC,   IC,   IC,   NP,   NP,   NP),
    "flat_exact_cash": (None, None, None, None, NP,   NP,   NP),
    "profit_rich":     (None, AIP,  AIP,  AIP,  None, None, None),
    "even_rich":       (None, AIP,  AIP,  AIP,  None, None, NPF),
    "loss_rich":       (None, AIP,  AIP,  AIP,  None, None, NPF),
    "profit_poor":     (None, AIP,  AIP,  AIP,  None, None, IC),
    "loss_poor":       (None, AIP,  AIP,  AIP,  None, None, NPF),
    "profit_broke":    (None, AIP,  AIP,  AIP,  None, None, IC),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(STATES))
def test_every_action_in_every_state_gets_the_designed_verdict(name: str) -> None:
    machine = Machine(EnvConfig())
    state = STATES[name]
    expected = EXPECTED_VERDICTS[name]
    reasons, mask = machine.verdicts(state, PRICE)
    assert reasons == expected
    assert mask == tuple(r is None for r in expected)
    assert machine.mask(state, PRICE) == mask
    for action in Action:
        assert machine.check(state, action, PRICE) == expected[action], action
        after, outcome = transition(state, action, PRICE, EnvConfig())
        if expected[action] is None:
            assert outcome.executed is action and outcome.reason is None
        else:
            # Rejected: HOLD executes, nothing changes, the reason is recorded.
            assert outcome == Outcome(A.HOLD, expected[action], 0, 0, 0)
            assert after == state


@pytest.mark.parametrize("name", sorted(STATES))
def test_disabled_comes_first_whatever_the_state(name: str) -> None:
    cfg = EnvConfig(disabled_actions=(A.BUY_SMALL, A.SELL_ALL, A.ADD_POSITION))
    machine = Machine(cfg)
    state = STATES[name]
    reasons, mask = machine.verdicts(state, PRICE)
    for action in (A.BUY_SMALL, A.SELL_ALL, A.ADD_POSITION):
        assert reasons[action] is R.DISABLED
        assert machine.check(state, action, PRICE) is R.DISABLED
        assert transition(state, action, PRICE, cfg) == (
            state,
            Outcome(A.HOLD, R.DISABLED, 0, 0, 0),
        )
    # The actions left enabled keep their ordinary verdicts.
    for action in (A.HOLD, A.BUY_MEDIUM, A.BUY_LARGE, A.SELL_PARTIAL):
        assert reasons[action] == EXPECTED_VERDICTS[name][action]
    assert mask[A.HOLD]


def test_config_disabling_every_non_hold_action_is_legal_and_only_hold_is_valid() -> None:
    cfg = EnvConfig(disabled_actions=NON_HOLD)
    machine = Machine(cfg)
    for state in STATES.values():
        reasons, mask = machine.verdicts(state, PRICE)
        assert mask == (True, False, False, False, False, False, False)
        assert reasons == (None,) + (R.DISABLED,) * 6
    env = TradingEnv(config=dataclasses.replace(cfg, episode_length=len(Action)))
    env.reset(seed=0)
    for action in Action:
        _, _, _, _, info = env.step(action)
        rec = info["record"]
        assert rec.executed == A.HOLD
        assert rec.reason == (None if action is A.HOLD else "DISABLED")
        assert env.action_masks().tolist() == [True] + [False] * 6


# --------------------------------------------------------------------------- accounting by hand


def test_fee_is_rounded_up_to_the_next_minor_unit() -> None:
    m = Machine(EnvConfig(fee_bps=10))  # 1_000 ppm of notional
    assert [m.fee(n) for n in (0, 1, 999, 1_000, 1_001, 90_009)] == [0, 1, 1, 1, 2, 91]
    assert Machine(EnvConfig(fee_bps=0)).fee(123_456) == 0
    assert Machine(EnvConfig(fee_bps=25.5)).fee(10_000) == 26  # 25.5 exactly -> 26 up


@pytest.mark.parametrize(
    ("action", "expected_state", "expected_outcome"),
    [
        # budget 10% of 1_000_000 = 100_000; 9 units: 90_000 + fee 90 = 90_090 <= 100_000,
        # 10 units: 100_000 + 100 > 100_000. Cash 1_000_000 - 90_090.
        (A.BUY_SMALL, (909_910, 9, 90_000), (A.BUY_SMALL, None, 9, 90, 0)),
        # budget 250_000; 24 units: 240_000 + 240 = 240_240; 25 would cost 250_250.
        (A.BUY_MEDIUM, (759_760, 24, 240_000), (A.BUY_MEDIUM, None, 24, 240, 0)),
        # budget 500_000; 49 units: 490_000 + 490 = 490_490; 50 would cost 500_500.
        (A.BUY_LARGE, (509_510, 49, 490_000), (A.BUY_LARGE, None, 49, 490, 0)),
    ],
)
def test_buys_spend_their_fraction_of_cash_exactly(
    action: Action, expected_state: tuple[int, int, int], expected_outcome: tuple[object, ...]
) -> None:
    cfg = EnvConfig()
    after, outcome = transition(initial_state(cfg), action, 10_000, cfg)
    assert tuple(after) == expected_state
    assert tuple(outcome) == expected_outcome


def test_buy_takes_at_least_one_lot_when_the_budget_is_smaller_than_a_lot() -> None:
    cfg = EnvConfig(cash=10_000)
    # budget 1_000 < one lot at 5_000, but cash covers 5_000 + fee 5: one lot.
    after, outcome = transition(initial_state(cfg), A.BUY_SMALL, 5_000, cfg)
    assert tuple(after) == (4_995, 1, 5_000)
    assert tuple(outcome) == (A.BUY_SMALL, None, 1, 5, 0)
    # lot of 100 units at 1_000: one lot is 100_000 + fee 100, beyond the 100_000 budget.
    cfg = EnvConfig(lot_size=100)
    after, outcome = transition(initial_state(cfg), A.BUY_SMALL, 1_000, cfg)
    assert tuple(after) == (899_900, 100, 100_000)
    assert tuple(outcome) == (A.BUY_SMALL, None, 100, 100, 0)


def test_buy_with_exactly_one_lot_of_cash_ends_with_zero_cash() -> None:
    cfg = EnvConfig(cash=10_010)
    after, outcome = transition(initial_state(cfg), A.BUY_LARGE, 10_000, cfg)
    assert tuple(after) == (0, 1, 10_000)
    assert outcome.fee == 10


def test_sell_partial_sells_the_fraction_in_whole_lots_and_realizes_against_average_cost() -> None:
    cfg = EnvConfig()
    # 9 held, 50%: floor(4.5) = 4 sold at 11_000 = 44_000, fee 44; cost removed
    # 90_000 * 4 / 9 = 40_000, realized 4_000; cash 909_910 + 44_000 - 44.
    after, outcome = transition(PortfolioState(909_910, 9, 90_000), A.SELL_PARTIAL, 11_000, cfg)
    assert tuple(after) == (953_866, 5, 50_000)
    assert tuple(outcome) == (A.SELL_PARTIAL, None, -4, 44, 4_000)


def test_sell_partial_sells_at_least_one_lot_and_never_more_than_held() -> None:
    cfg = EnvConfig()
    # One unit held: half of it is 0 lots, raised to the minimum of one lot; it closes.
    after, outcome = transition(PortfolioState(0, 1, 7_000), A.SELL_PARTIAL, 6_000, cfg)
    assert tuple(after) == (5_994, 0, 0)
    assert tuple(outcome) == (A.SELL_PARTIAL, None, -1, 6, -1_000)
    # sell_partial = 1.0 sells everything, not more.
    cfg_all = EnvConfig(sell_partial=1.0)
    after, outcome = transition(PortfolioState(0, 9, 90_000), A.SELL_PARTIAL, 10_000, cfg_all)
    assert after.position == 0 and outcome.quantity == -9
    # Lots of 10: 3 lots held, half is floor(1.5) = 1 lot = 10 units; cost removed 20_000.
    cfg_lots = EnvConfig(lot_size=10)
    after, outcome = transition(PortfolioState(0, 30, 60_000), A.SELL_PARTIAL, 2_000, cfg_lots)
    assert tuple(after) == (19_980, 20, 40_000)
    assert tuple(outcome) == (A.SELL_PARTIAL, None, -10, 20, 0)


def test_sell_all_closes_and_realizes_the_loss() -> None:
    cfg = EnvConfig()
    # 9 at 8_000 = 72_000, fee 72; realized 72_000 - 90_000.
    after, outcome = transition(PortfolioState(909_910, 9, 90_000), A.SELL_ALL, 8_000, cfg)
    assert tuple(after) == (981_838, 0, 0)
    assert tuple(outcome) == (A.SELL_ALL, None, -9, 72, -18_000)


def test_add_position_only_when_position_value_exceeds_cost_basis() -> None:
    cfg = EnvConfig()
    state = PortfolioState(909_910, 9, 90_000)
    # At 10_000: 9 * 10_000 == 90_000, not above the basis.
    assert transition(state, A.ADD_POSITION, 10_000, cfg) == (
        state,
        Outcome(A.HOLD, R.NOT_PROFITABLE, 0, 0, 0),
    )
    # At 10_001: budget 10% of 909_910 = 90_991; 9 units = 90_009 + fee ceil(90.009) = 91.
    after, outcome = transition(state, A.ADD_POSITION, 10_001, cfg)
    assert tuple(after) == (819_810, 18, 180_009)
    assert tuple(outcome) == (A.ADD_POSITION, None, 9, 91, 0)


# --------------------------------------------------------------------------- random states


@st.composite
def configs(draw: st.DrawFn) -> EnvConfig:
    fraction = st.sampled_from([0.01, 0.1, 0.25, 0.333333, 0.5, 0.75, 1.0])
    return EnvConfig(
        cash=draw(st.integers(1, 10**7)),
        lot_size=draw(st.sampled_from([1, 1, 3, 10, 100])),
        fee_bps=draw(st.sampled_from([0.0, 1.0, 10.0, 25.5, 100.0, 1000.0])),
        buy_small=draw(fraction),
        buy_medium=draw(fraction),
        buy_large=draw(fraction),
        sell_partial=draw(fraction),
        add_size=draw(fraction),
        disabled_actions=tuple(draw(st.sets(st.sampled_from(NON_HOLD), max_size=3))),
    )


@st.composite
def situations(draw: st.DrawFn) -> tuple[EnvConfig, PortfolioState, int]:
    cfg = draw(configs())
    price = draw(st.integers(1, 10**6))
    lots = draw(st.sampled_from([0, 0, 1, 2]) | st.integers(0, 10_000))
    position = lots * cfg.lot_size
    if position == 0:
        basis = 0
    else:
        # Around the profit boundary as often as far from it.
        basis = draw(
            st.integers(0, 10**10) | st.integers(-2, 2).map(lambda d: max(0, position * price + d))
        )
    cash = draw(
        st.integers(0, 10**8) | st.integers(-3, 3).map(lambda d: max(0, d + price * cfg.lot_size))
    )
    return cfg, PortfolioState(cash, position, basis), price


@settings(max_examples=200)
@given(situations())
def test_compiled_verdicts_agree_with_check_and_mask_iff_executes(
    situation: tuple[EnvConfig, PortfolioState, int],
) -> None:
    cfg, state, price = situation
    machine = Machine(cfg)
    reasons, mask = machine.verdicts(state, price)
    assert mask[A.HOLD] and any(mask)
    assert machine.mask(state, price) == mask
    for action in Action:
        assert reasons[action] == machine.check(state, action, price), action
        after, outcome = machine.step(state, action, price)
        executes = outcome.reason is None and outcome.executed is action
        assert mask[action] == executes, (action, outcome)
        if not executes:
            assert outcome.executed is A.HOLD and after == state
            assert (outcome.quantity, outcome.fee, outcome.realized) == (0, 0, 0)
        if action in cfg.disabled_actions:
            assert outcome.reason is R.DISABLED


def _budget(cash: int, fraction: float) -> int:
    return math.floor(cash * Fraction(str(fraction)))


def _cost(units: int, price: int, fee_bps: float) -> int:
    notional = units * price
    return notional + math.ceil(notional * Fraction(str(fee_bps)) / 10_000)


@settings(max_examples=200)
@given(situations(), st.sampled_from([A.BUY_SMALL, A.BUY_MEDIUM, A.BUY_LARGE, A.ADD_POSITION]))
def test_buys_are_whole_lots_within_budget_and_as_large_as_the_budget_allows(
    situation: tuple[EnvConfig, PortfolioState, int], action: Action
) -> None:
    cfg, state, price = situation
    after, outcome = Machine(cfg).step(state, action, price)
    if outcome.reason is not None:
        return
    lot = cfg.lot_size
    field = {
        A.BUY_SMALL: cfg.buy_small,
        A.BUY_MEDIUM: cfg.buy_medium,
        A.BUY_LARGE: cfg.buy_large,
        A.ADD_POSITION: cfg.add_size,
    }[action]
    budget = _budget(state.cash, field)
    units = outcome.quantity
    assert units >= lot and units % lot == 0
    assert outcome.fee == _cost(units, price, cfg.fee_bps) - units * price
    assert after == PortfolioState(
        state.cash - units * price - outcome.fee,
        state.position + units,
        state.cost_basis + units * price,
    )
    assert after.cash >= 0
    if _cost(lot, price, cfg.fee_bps) <= budget:
        assert _cost(units, price, cfg.fee_bps) <= budget
        assert _cost(units + lot, price, cfg.fee_bps) > budget
    else:
        assert units == lot


@settings(max_examples=200)
@given(situations(), st.sampled_from([A.SELL_PARTIAL, A.SELL_ALL]))
def test_sells_are_whole_lots_between_one_lot_and_the_position(
    situation: tuple[EnvConfig, PortfolioState, int], action: Action
) -> None:
    cfg, state, price = situation
    after, outcome = Machine(cfg).step(state, action, price)
    if outcome.reason is not None:
        assert state.position == 0 or action in cfg.disabled_actions
        return
    sold = -outcome.quantity
    assert cfg.lot_size <= sold <= state.position and sold % cfg.lot_size == 0
    if action is A.SELL_ALL:
        assert sold == state.position and after.position == 0 and after.cost_basis == 0
    else:
        held_lots = state.position // cfg.lot_size
        want = math.floor(held_lots * Fraction(str(cfg.sell_partial)))
        assert sold == min(max(want, 1), held_lots) * cfg.lot_size
    assert outcome.fee == _cost(sold, price, cfg.fee_bps) - sold * price
    assert after.cash == state.cash + sold * price - outcome.fee
    assert after.position == state.position - sold
    removed = state.cost_basis - after.cost_basis
    assert 0 <= removed <= state.cost_basis
    assert outcome.realized == sold * price - removed
    if after.position == 0:
        assert after.cost_basis == 0


# --------------------------------------------------------------------------- tradeguard rules


def test_rules_command_lists_every_action_and_its_reasons_in_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    blocks: dict[Action, list[str]] = {}
    current: Action | None = None
    for line in out.splitlines():
        head = line.split()
        if len(head) == 2 and head[0].isdigit():
            current = Action(int(head[0]))
            assert head[1] == current.name
            blocks[current] = []
        elif current is not None:
            blocks[current].append(line.strip())
    assert list(blocks) == list(Action)
    for action, lines in blocks.items():
        rejected = [ln for ln in lines if ln.startswith("rejected")]
        expected = EXPECTED_REASON_ORDER[action]
        if not expected:
            assert rejected == [] and any("always" in ln for ln in lines)
        else:
            assert rejected == ["rejected    " + " | ".join(r.value for r in expected)]
    for reason in RejectReason:
        assert reason.value in out


def test_rules_command_shows_the_scenario_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--scenario", "v10.2"]) == 0
    out = capsys.readouterr().out
    assert "disabled by this configuration: ADD_POSITION;" in out
    assert main(["rules"]) == 0
    assert "disabled by this configuration: none;" in capsys.readouterr().out


# --------------------------------------------------------------------------- reward shaper


def test_component_names_are_the_designed_ones_in_order() -> None:
    assert COMPONENT_NAMES == (
        "realized_pnl",
        "unrealized_pnl_change",
        "unrealized_pnl_level",
        "transaction_cost",
        "failed_action_penalty",
        "exploration_curriculum",
        "diversity_bonus",
    )


def _env(prices: list[int], reward: RewardConfig | None = None, **cfg: object) -> TradingEnv:
    """An env on a fixed market of ``prices`` (one episode of len(prices) - 1 steps)."""
    config = EnvConfig(episode_length=len(prices) - 1, **cfg)  # type: ignore[arg-type]
    env = TradingEnv(config=config, reward=reward or RewardConfig())
    env.reset(seed=0, options={"market": Market(np.array(prices), 0.01, "test")})
    return env


def _components(env: TradingEnv, action: Action) -> dict[str, float]:
    _, reward, _, _, info = env.step(action)
    comps = dict(zip(COMPONENT_NAMES, info["record"].components, strict=True))
    assert reward == info["record"].reward
    assert math.isclose(reward, math.fsum(comps.values()), rel_tol=1e-12, abs_tol=1e-12)
    return comps


def test_pnl_components_of_a_round_trip_by_hand() -> None:
    # pnl scale 100 / 1_000_000 = 1e-4 reward per minor unit.
    env = _env([10_000, 10_100, 10_200, 10_300])
    c = _components(env, A.BUY_SMALL)  # 9 @ 10_000, fee 90, marked at 10_100: +900 unrealized
    assert c["realized_pnl"] == 0.0
    assert c["unrealized_pnl_change"] == pytest.approx(0.09, rel=1e-12)
    assert c["transaction_cost"] == pytest.approx(-0.009, rel=1e-12)
    assert c["failed_action_penalty"] == 0.0
    c = _components(env, A.HOLD)  # 9 * (10_200 - 10_100) = +900
    assert c["unrealized_pnl_change"] == pytest.approx(0.09, rel=1e-12)
    assert c["transaction_cost"] == 0.0
    c = _components(env, A.SELL_ALL)  # 9 @ 10_200 = 91_800, fee 92, realized 1_800
    assert c["realized_pnl"] == pytest.approx(0.18, rel=1e-12)
    assert c["unrealized_pnl_change"] == pytest.approx(-0.18, rel=1e-12)  # 1_800 -> 0
    assert c["transaction_cost"] == pytest.approx(-0.0092, rel=1e-12)
    assert env.state == PortfolioState(1_001_618, 0, 0)


def test_failed_action_penalty_is_applied_exactly_on_rejected_steps() -> None:
    env = _env([10_000] * 7, RewardConfig(failed_action_penalty=-0.7))
    actions = [A.SELL_ALL, A.HOLD, A.ADD_POSITION, A.BUY_SMALL, A.BUY_LARGE, A.ADD_POSITION]
    got = [_components(env, a)["failed_action_penalty"] for a in actions]
    # flat: SELL_ALL and ADD rejected; then in position: BUY_LARGE rejected, ADD not profitable.
    assert got == [-0.7, 0.0, -0.7, 0.0, -0.7, -0.7]
    reasons = [r.reason for r in env.trace]
    assert reasons == [
        "NO_POSITION",
        None,
        "NO_POSITION",
        None,
        "ALREADY_IN_POSITION",
        "NOT_PROFITABLE",
    ]


def test_v10_1_curriculum_is_minus_2_5_while_the_sell_share_is_below_5_percent() -> None:
    scenario = load_scenario("v10.1")
    env = _env([10_000] * 31, scenario.reward)
    # Step 1, HOLD: 0 sells of 1 < 5% -> -0.5 * 5.0 = -2.5; no rejection.
    c = _components(env, A.HOLD)
    assert c["exploration_curriculum"] == -2.5 and c["failed_action_penalty"] == 0.0
    # Step 2, SELL_PARTIAL with no position: share 1/2 >= 5%, but rejected: -1.0 (the double bind).
    c = _components(env, A.SELL_PARTIAL)
    assert c["exploration_curriculum"] == 0.0 and c["failed_action_penalty"] == -1.0
    # One sell among n predictions is >= 5% up to n = 20, short from n = 21 on.
    got = [_components(env, A.HOLD)["exploration_curriculum"] for _ in range(3, 23)]
    assert got == [0.0] * 18 + [-2.5, -2.5]
    # SELL_ALL counts as a sell too: 2 of 23 >= 5%.
    assert _components(env, A.SELL_ALL)["exploration_curriculum"] == 0.0


def test_curriculum_counts_predicted_not_executed_and_is_off_at_zero_share() -> None:
    env = _env([10_000] * 5, RewardConfig(curriculum_min_share=0.0, curriculum_weight=-3.0))
    assert [_components(env, A.HOLD)["exploration_curriculum"] for _ in range(4)] == [0.0] * 4
    cfg = RewardConfig(curriculum_min_share=0.5, curriculum_actions=(A.BUY_SMALL,))
    env = _env([10_000] * 6, cfg)
    # BUY_SMALL executes, then is rejected (already in position): both were predicted, so
    # 2 of 3 and 2 of 4 (exactly 50%) meet the minimum; 2 of 5 does not. Counting executed
    # actions instead would make step 3 short (1 of 3).
    actions = (A.BUY_SMALL, A.BUY_SMALL, A.HOLD, A.HOLD, A.HOLD)
    got = [_components(env, a)["exploration_curriculum"] for a in actions]
    assert got == [0.0, 0.0, 0.0, 0.0, -2.5]


def test_curriculum_exactly_at_the_minimum_share_is_not_short() -> None:
    # 7 of 25 predictions is exactly 28%: the minimum is met, no penalty on step 25.
    cfg = RewardConfig(curriculum_min_share=0.28, curriculum_weight=-1.0, curriculum_scale=1.0)
    env = _env([10_000] * 26, cfg)
    got = [_components(env, A.SELL_PARTIAL)["exploration_curriculum"] for _ in range(7)]
    got += [_components(env, A.HOLD)["exploration_curriculum"] for _ in range(18)]
    # Short exactly when 7 < 0.28 * n, i.e. n > 25: never within these 25 steps.
    assert got == [0.0] * 25


def test_diversity_bonus_pays_each_predicted_action_once_per_episode() -> None:
    env = _env([10_000] * 7, RewardConfig(diversity_bonus=0.3))
    actions = [A.HOLD, A.HOLD, A.SELL_PARTIAL, A.SELL_PARTIAL, A.BUY_SMALL, A.HOLD]
    # The rejected SELL_PARTIAL was still predicted for the first time: it earns the bonus.
    assert [_components(env, a)["diversity_bonus"] for a in actions] == [
        0.3,
        0.0,
        0.3,
        0.0,
        0.3,
        0.0,
    ]
    env.reset(seed=0, options={"market": Market(np.array([10_000] * 7), 0.01, "again")})
    assert _components(env, A.HOLD)["diversity_bonus"] == 0.3  # new episode, new history
    env = _env([10_000] * 3)
    assert [_components(env, A.HOLD)["diversity_bonus"] for _ in range(2)] == [0.0, 0.0]


def test_unrealized_pnl_level_is_paid_every_step_a_winner_is_held() -> None:
    env = _env([10_000, 10_100, 10_200, 10_200], RewardConfig(unrealized_pnl_level=2.0))
    # 9 units, basis 90_000: unrealized 900 after step 1, 1_800 after steps 2 and 3.
    got = [_components(env, a)["unrealized_pnl_level"] for a in (A.BUY_SMALL, A.HOLD, A.HOLD)]
    assert got == pytest.approx(
        [2.0 * 1e-4 * 900, 2.0 * 1e-4 * 1_800, 2.0 * 1e-4 * 1_800], rel=1e-12
    )
    assert _env([10_000, 10_100]).step(A.BUY_SMALL)[4]["record"].components[2] == 0.0


def test_shaper_is_a_pure_function_of_its_state() -> None:
    cfg = RewardConfig(diversity_bonus=1.0, curriculum_min_share=0.5)
    shaper = RewardShaper(cfg, 1_000_000)
    s = PortfolioState(1_000_000, 0, 0)
    out = Outcome(A.HOLD, R.NO_POSITION, 0, 0, 0)
    first = shaper.shape(shaper.initial(), A.SELL_ALL, out, s, s, 100, 100)
    again = shaper.shape(shaper.initial(), A.SELL_ALL, out, s, s, 100, 100)
    assert first == again
    comps, hist = first
    assert dict(zip(COMPONENT_NAMES, comps, strict=True))["failed_action_penalty"] == -1.0
    assert hist.steps == 1 and hist.curriculum_count == 1 and hist.seen == 1 << 5
    assert shaper.pnl_scale == 1e-4
