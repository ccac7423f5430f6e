"""Proof that the gate catches bugs: deliberately broken envs, each caught by the right invariant.

Every broken variant (tests/broken_envs.py) is a real bug in a real place, not a
tampered record; the gate must name the right invariant, shrink the counterexample
to at most 10 steps, and say what is wrong in a message a trader can read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from broken_envs import (
    CONFIG,
    AliasedObservation,
    CrashingMachine,
    DoubleCountShaper,
    DoublePenaltyShaper,
    ExtraReward,
    FeeOnHoldMachine,
    FeeTwiceMachine,
    IgnoresBadActions,
    IgnoringMachine,
    MarksAtTheWrongPrice,
    MaskOffByOne,
    MisreadsPosition,
    NanShaper,
    NonDeterministicReset,
    NoPenaltyShaper,
    OutOfSpace,
    OverspendMachine,
    StartsWithCostBasis,
    TradesPastTheEnd,
    WrongActionMachine,
    env_with,
    env_with_shaper,
    make,
)

from tradeguard.env import Action, Condition, TradingEnv, parse_policy, run_episode
from tradeguard.invariants import check_reported_metrics, check_trace
from tradeguard.invariants._gate import check_trading_env


# --------------------------------------------------------------------------- the cases
@dataclass(frozen=True)
class BadEnv:
    name: str
    make_env: Callable[[], Any]
    invariant: str
    message: str  # a regex the first violation's message must match in full


BAD_ENVS = [
    BadEnv(
        "sell executes with no position (seed bug: SELL without BUY)",
        env_with(lambda c: IgnoringMachine(c, Action.SELL_ALL, Condition.IN_POSITION)),
        "no-sell-without-position",
        r"SELL_ALL executed with position 0 units \(no position to sell\); predicted SELL_ALL",
    ),
    BadEnv(
        "failed-action penalty not applied (seed bug #2's cousin)",
        env_with_shaper(NoPenaltyShaper),
        "penalty-matches-rejections",
        r"failed-action penalty 0\.0 on a step whose \w+ was rejected \(\w+\); expected -1\.0 "
        r"\(penalty -1\.0 on rejected steps only\)",
    ),
    BadEnv(
        "failed-action penalty applied twice",
        env_with_shaper(DoublePenaltyShaper),
        "penalty-matches-rejections",
        r"failed-action penalty -2\.0 on a step whose \w+ was rejected \(\w+\); expected -1\.0 .*",
    ),
    BadEnv(
        "executes BUY_LARGE when BUY_SMALL was predicted",
        env_with(WrongActionMachine),
        "executed-never-exceeds-predicted",
        r"executed BUY_LARGE although BUY_SMALL was predicted; a step executes what was predicted "
        r"or, if rejected, HOLD",
    ),
    BadEnv(
        "opening buy while in position",
        env_with(lambda c: IgnoringMachine(c, Action.BUY_SMALL, Condition.FLAT)),
        "no-buy-while-in-position",
        r"BUY_SMALL executed while already holding \d+ units; opening is only valid when flat "
        r"\(adding is ADD_POSITION\)",
    ),
    BadEnv(
        "ADD_POSITION on a losing position",
        env_with(lambda c: IgnoringMachine(c, Action.ADD_POSITION, Condition.PROFITABLE)),
        "no-add-without-profitable-position",
        r"ADD_POSITION executed at price [\d,.]+ with the position worth [\d,.]+ against a cost "
        r"basis of [\d,.]+ \(not profitable\)",
    ),
    BadEnv(
        "disabled action executes",
        env_with(
            lambda c: IgnoringMachine(c, Action.BUY_LARGE, Condition.ENABLED),
            replace(CONFIG, disabled_actions=(Action.BUY_LARGE,)),
        ),
        "disabled-actions-never-execute",
        r"BUY_LARGE executed but the configuration disables it",
    ),
    BadEnv(
        "mask off by one",
        make(MaskOffByOne),
        "mask-matches-execution",
        r"the mask (allowed|forbade) \w+ but (it executed|it was rejected \(\w+\))",
    ),
    BadEnv(
        "fee charged twice",
        env_with(FeeTwiceMachine),
        "self-financing",
        r"cash changed by -[\d,.]+ but the trade of \+\d+ units at [\d,.]+ with fee ([\d,.]+) "
        r"accounts for -[\d,.]+: value lost \(\1 vanished\)",
    ),
    BadEnv(
        "fee charged on HOLD",
        env_with(FeeOnHoldMachine),
        "fees-only-on-trades",
        r"fee 0\.01 charged on a step that traded nothing \(HOLD\)",
    ),
    BadEnv(
        "buys more than the cash",
        env_with(OverspendMachine),
        "no-negative-position-or-cash",
        r"cash is -[\d,.]+ \(negative\) after BUY_\w+; the env declares no credit",
    ),
    BadEnv(
        "equity marked at the execution price, not the next one",
        make(MarksAtTheWrongPrice),
        "equity-identity",
        r"equity after the step is [\d,.]+ but cash [\d,.]+ \+ \d+ units x [\d,.]+ = [\d,.]+",
    ),
    BadEnv(
        "reward pays a bonus outside its components",
        make(ExtraReward),
        "reward-is-sum-of-components",
        r"reward -0\.5 but its components sum to -1\.0 \(failed_action_penalty=-1\.0\)",
    ),
    BadEnv(
        "NaN in a reward component",
        env_with_shaper(NanShaper),
        "finite-rewards",
        r"reward is nan",
    ),
    BadEnv(
        "reward claims to be PnL but counts unrealized gains twice",
        env_with_shaper(DoubleCountShaper),
        "reward-consistent-with-pnl",
        r"the reward claims to be PnL but pays -?[\d.e-]+ \(penalty excluded\) for an equity change "
        r"of -?[\d,.]+ = -?[\d.e-]+ reward units",
    ),
    BadEnv(
        "non-deterministic reset",
        make(NonDeterministicReset),
        "replay-determinism",
        r"seed \d+ and the same actions replayed on a second env differ: .*",
    ),
    BadEnv(
        "aliased observation",
        make(AliasedObservation),
        "returned-data-not-reused",
        r"the observation returned by (reset|step \d+) was changed afterwards \(was .*, now .*\): "
        r"the env writes into an array it already returned",
    ),
    BadEnv(
        "observation outside its space",
        make(OutOfSpace),
        "observation-in-space",
        r"the observation from step \d+ is outside the observation space: 1 invalid entries: "
        r"obs\[11\]=100\.0 not in \[-32\.0, 32\.0\]",
    ),
    BadEnv(
        "out-of-range action silently ignored",
        make(IgnoresBadActions),
        "action-range-enforced",
        r"step\(7\) \(one past the last action; valid actions are 0\.\.6\) returned normally instead "
        r"of raising: the action was silently taken as something else; it executed as action 0",
    ),
    BadEnv(
        "steps past the end of the data",
        make(TradesPastTheEnd),
        "step-after-end-refused",
        r"step\(\) after the episode ended at step 11 returned normally instead of raising: an agent "
        r"can keep trading past the end of the data",
    ),
    BadEnv(
        "sell refused as NO_POSITION while holding (the rule table misreads the position)",
        env_with(MisreadsPosition),
        "rejection-reason-holds",
        r"SELL_(ALL|PARTIAL) was rejected NO_POSITION while holding \d+ units",
    ),
    BadEnv(
        "flat account starts with a cost basis",
        make(StartsWithCostBasis),
        "initial-state-consistent",
        r"the ledger at reset holds a cost basis of 0\.01 for no position \(nothing held, nothing paid\): .*",
    ),
    BadEnv(
        "crashes on a valid close-out",
        env_with(CrashingMachine),
        "valid-steps-do-not-raise",
        r"the env raised ZeroDivisionError: division by zero in the close-out of a position, in apply\(\) at "
        r"\S*broken_envs\.py:\d+ \(at step \d+, after \d+ valid actions\)",
    ),
]


@pytest.mark.parametrize("bad", BAD_ENVS, ids=[b.invariant + ":" + b.name for b in BAD_ENVS])
def test_gate_catches_bad_env(bad: BadEnv) -> None:
    report = check_trading_env(bad.make_env, only=[bad.invariant], examples=100, max_steps=12, seed=1, name=bad.name)
    (result,) = report.results
    assert result.status == "fail", f"{bad.name}: {bad.invariant} did not fire\n{report.format()}"
    assert result.counterexample is not None
    assert len(result.counterexample.actions) <= 10, str(result.counterexample)
    first = result.violations[0]
    assert first.invariant == bad.invariant
    assert re.fullmatch(bad.message, first.message), first.message
    # The ledger message carries what is needed to replay it.
    assert "[" + bad.invariant + "]" in str(first)


def test_every_invariant_has_a_bad_env() -> None:
    """Every invariant of the catalog is shown catching a real bug: here, on a float ledger, or on
    the env-contract twins of tests/contract_envs.py (position-observable among them, as a warning)."""
    from test_contract_invariants import BAD as BAD_COINS
    from test_float_ledgers import BAD_BOOKS

    from tradeguard.invariants import CATALOG

    caught = ({b.invariant for b in BAD_ENVS} | {b.invariant for b in BAD_BOOKS} | {b.invariant for b in BAD_COINS}
              | {"position-observable"}  # test_a_hidden_position_is_a_warning_and_can_be_declared
              | {"matches-reference"})  # tests/test_reference.py: lanes and a port broken on purpose
    assert caught == {inv.id for inv in CATALOG}


def test_the_healthy_env_passes_what_the_bad_ones_fail() -> None:
    ids = sorted({b.invariant for b in BAD_ENVS})
    report = check_trading_env(lambda: TradingEnv(config=CONFIG), only=ids, examples=30, max_steps=20, seed=1)
    assert report.passed, report.format()


# --------------------------------------------------------------------------- seed bug #1
def counting_evaluator(predicted: list[int]) -> dict[str, Any]:
    """The seed's evaluator: counts what the model *predicted*, before the env processed it."""
    names = [a.name for a in Action]
    counts = [predicted.count(i) for i in range(len(names))]
    return {"action_distribution_executed": {n: c / len(predicted) for n, c in zip(names, counts, strict=True)}}


def test_seed_bug_1_evaluator_counting_predictions_is_flagged() -> None:
    env = TradingEnv(scenario="v10")
    trace = run_episode(env, parse_policy("constant:SELL_PARTIAL"), seed=0)
    reported = counting_evaluator([r.predicted for r in trace])
    assert reported["action_distribution_executed"]["SELL_PARTIAL"] == 1.0
    assert trace.metrics().action_distribution_executed["HOLD"] == 1.0
    (violation,) = check_reported_metrics(trace, reported)
    assert violation.invariant == "metrics-match-trace"
    assert violation.message == (
        "action_distribution_executed disagrees with the trace: HOLD reported 0.0, trace says 1.0, "
        "SELL_PARTIAL reported 1.0, trace says 0.0"
    )
    # An honest evaluator (executed actions from the trace) passes.
    honest = {"action_distribution_executed": trace.metrics().action_distribution_executed}
    assert check_reported_metrics(trace, honest) == []


def test_check_trace_reports_every_violation_not_only_the_first() -> None:
    env = env_with(lambda c: IgnoringMachine(c, Action.SELL_ALL, Condition.IN_POSITION))()
    trace = run_episode(env, parse_policy("constant:SELL_ALL"), seed=3)
    found = [v for v in check_trace(trace) if v.invariant == "no-sell-without-position"]
    assert [v.step for v in found] == list(range(12))
    assert found[0].seed == 3
    assert found[0].replay is not None and found[0].replay.endswith("--actions 5")
    assert "  >   0" in found[0].context
