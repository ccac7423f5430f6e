"""The catalog on healthy traces, its structure, and its messages on traces broken by hand."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.env import EnvConfig, TradingEnv, load_scenario, parse_policy, run_episode
from tradeguard.errors import InvalidConfig, InvariantViolation
from tradeguard.invariants import (
    CATALOG,
    assert_trace,
    check_trace,
    evaluate_trace,
    get_invariant,
    invariant_ids,
)
from tradeguard.invariants._check import compress_actions
from tradeguard.strategies import action_sequences, markets
from tradeguard.trace import Trace, TraceMeta

SHORT = EnvConfig(episode_length=15)


def test_catalog_ids_are_stable_kebab_case_and_unique() -> None:
    ids = invariant_ids()
    assert len(ids) == len(set(ids)) == len(CATALOG)
    for inv in CATALOG:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", inv.id), inv.id
        assert inv.statement.endswith(".")
        assert inv.scope in ("step", "episode", "env")
        if inv.scope == "step":
            assert inv.step_check is not None
        if inv.scope == "episode":
            assert inv.episode_check is not None
    # The required ids are all present.
    required = ["no-sell-without-position", "executed-never-exceeds-predicted", "penalty-matches-rejections", "no-add-without-profitable-position", "no-buy-while-in-position", "disabled-actions-never-execute", "mask-matches-execution", "equity-identity", "self-financing", "no-negative-position-or-cash", "fees-only-on-trades", "reward-is-sum-of-components", "finite-rewards", "reward-consistent-with-pnl", "metrics-match-trace", "replay-determinism", "returned-data-not-reused", "observation-in-space", "action-range-enforced", "step-after-end-refused"]
    assert set(required) <= set(ids)


def test_unknown_invariant_id_suggests_the_near_miss() -> None:
    with pytest.raises(InvalidConfig, match=r"no invariant 'no-sell-without-positon'.*Did you mean 'no-sell-without-position'\?"):
        get_invariant("no-sell-without-positon")


@settings(max_examples=40, deadline=None)
@given(
    scenario=st.sampled_from(["default", "v10", "v10.1", "v10.2"]),
    actions=action_sequences(max_size=15),
    market=markets(min_length=16, max_length=16),
    seed=st.integers(0, 1000),
)
def test_healthy_env_traces_satisfy_every_trace_invariant(scenario: str, actions: list[int], market: object, seed: int) -> None:
    sc = load_scenario(scenario)
    env = TradingEnv(scenario=dataclasses.replace(sc, env=dataclasses.replace(sc.env, episode_length=15)))
    env.reset(seed=seed, options={"market": market})
    for a in actions:
        env.step(a)
    assert check_trace(env.trace) == []


def _trace(policy: str = "random", seed: int = 0) -> Trace:
    return run_episode(TradingEnv(config=SHORT), parse_policy(policy), seed=seed)


def test_a_record_edited_by_hand_is_caught_with_a_ledger_message() -> None:
    trace = _trace("masked-random", seed=4)
    i = next(i for i, r in enumerate(trace) if r.fee > 0)
    bad = trace.records[i]._replace(cash_after=trace.records[i].cash_after + 100)
    broken = Trace((*trace.records[:i], bad, *trace.records[i + 1 :]), trace.meta)
    found = {v.invariant for v in check_trace(broken)}
    assert {"equity-identity", "self-financing"} <= found
    (v,) = [v for v in check_trace(broken, only=["self-financing"]) if v.step == bad.t]
    assert re.fullmatch(
        r"cash changed by -?[\d,.]+ but the trade of [+-]\d+ units at [\d,.]+ with fee [\d,.]+ "
        r"accounts for -?[\d,.]+: value from nothing",
        v.message,
    )
    assert v.seed == 4
    assert f"  >{bad.t:>4}" in v.context


# One BUY of 1 unit at 100.00 with a 0.10 fee, the price then 101.00: cash 1,000.00 -> 899.90,
# equity 1,000.00 -> 1,000.90. Each case moves one number off by an amount in minor units.
_BUY = {"t": 0, "price": 10_000, "next_price": 10_100, "position_before": 0, "position_after": 1, "quantity": 1,
        "fee": 10, "cash_before": 100_000, "cash_after": 89_990, "equity_before": 100_000, "equity_after": 100_090}


@pytest.mark.parametrize(
    ("field", "off", "message"),
    [
        ("cash_after", -10, "cash changed by -100.20 but the trade of +1 units at 100.00 with fee 0.10 accounts "
         "for -100.10: value lost (0.10 vanished)"),  # the fee charged twice
        ("cash_after", +10, "cash changed by -100.00 but the trade of +1 units at 100.00 with fee 0.10 accounts "
         "for -100.10: value from nothing"),  # the fee never taken from cash
        ("equity_after", -40, "equity changed by 0.50; holding 1 units through 100.00 -> 101.00 minus fee 0.10 "
         "accounts for 0.90: value lost (0.40 vanished)"),
        ("equity_after", +100, "equity changed by 1.90; holding 1 units through 100.00 -> 101.00 minus fee 0.10 "
         "accounts for 0.90: value from nothing"),
    ],
    ids=["cash-fell-more", "cash-rose-more", "equity-fell-more", "equity-rose-more"],
)
def test_self_financing_says_whether_value_was_lost_or_made_from_nothing(field: str, off: int, message: str) -> None:
    trace = _trace()
    healthy = trace.records[0]._replace(**_BUY)
    assert check_trace(Trace((healthy,), trace.meta), only=["self-financing"]) == []
    bad = healthy._replace(**{field: getattr(healthy, field) + off})
    (v,) = check_trace(Trace((bad,), trace.meta), only=["self-financing"])
    assert v.message == message


def test_assert_trace_raises_an_assertion_error_listing_all() -> None:
    trace = _trace()
    recs = [r._replace(fee=-1) for r in trace.records[:3]]
    broken = Trace((*recs, *trace.records[3:]), trace.meta)
    with pytest.raises(InvariantViolation) as info:
        assert_trace(broken, only=["fees-only-on-trades"])
    assert isinstance(info.value, AssertionError)
    text = str(info.value)
    assert text.startswith("3 invariant violation(s) in the trace (fees-only-on-trades):")
    assert text.count("negative fee -0.01 (a fee is a cost)") == 3


def test_not_applicable_when_the_producer_does_not_supply_the_fields() -> None:
    trace = _trace()
    meta = dataclasses.replace(trace.meta, supplies=frozenset({"t", "predicted", "executed", "rejected", "reward"}))
    results = {r.invariant.id: r.status for r in evaluate_trace(Trace(trace.records, meta))}
    assert results["equity-identity"] == "not-applicable"
    assert results["executed-never-exceeds-predicted"] == "pass"
    assert results["metrics-match-trace"] == "not-applicable"


def test_replay_command_replays_the_violation() -> None:
    from tradeguard._cli import main

    trace = _trace("random", seed=9)
    assert trace.meta.replay is not None
    cmd = f"run {trace.meta.replay} --actions {compress_actions([r.predicted for r in trace])} --json"
    import io
    import json
    import shlex
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(shlex.split(cmd)) == 0
    replayed = json.loads(out.getvalue())
    assert replayed["episode_reward"] == pytest.approx(trace.metrics().episode_reward, abs=0)
    assert replayed["final_equity"] == trace[-1].equity_after


def test_compress_actions_round_trips_through_the_cli_parser() -> None:
    from tradeguard._cli._run import _int_list

    actions = [4] * 500 + [1, 0, 0] + [6] * 3
    text = compress_actions(actions)
    assert text == "4x500,1,0,0,6x3"
    assert _int_list(text) == actions


def test_penalty_total_is_checked_at_episode_level() -> None:
    trace = run_episode(TradingEnv(scenario="v10"), parse_policy("constant:SELL_PARTIAL"), seed=0)
    meta = dataclasses.replace(trace.meta, failed_action_penalty=-0.5)
    found = check_trace(Trace(trace.records, meta), only=["penalty-matches-rejections"])
    episode = [v for v in found if v.step is None]
    assert len(episode) == 1
    assert episode[0].message == (
        "failed-action penalty total -25.0 over 500 steps; expected 500 rejections x -0.5 = -250.0"
    )


def test_meta_action_name_handles_ids_outside_the_table() -> None:
    meta = TraceMeta(env_id="x", action_names=("A",), action_kinds=("hold",))
    assert meta.action_name(3) == "<action 3>"
