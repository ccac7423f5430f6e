"""Custom reward components: in the shaper, in the trace, in scenario files, and in the exact oracle.

The oracle is proven against brute force over every action sequence, as for the built-in
components (tests/test_oracle.py), on random configs mixing built-in weights with custom
components of every shape: without history, with integer and float histories, bounded
and unbounded, potential-based. Components that break the oracle's premise (history kept
outside the declared one, unhashable histories, values outside their bounds, a false
potential-based declaration) are refused with the component's name. The seed's V10.1
curriculum rewritten as a custom component gets the same audit as the built-in one.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from custom_rewards import (
    HEALTHY,
    drawdown,
    first_try_trap,
    novelty,
    pnl_echo,
    rejection_cost,
    sell_curriculum,
    sharpe_bonus,
    trade_bonus,
    unrealized_potential,
)

from tradeguard.env import (
    COMPONENT_NAMES,
    Action,
    BatchEngine,
    CustomComponent,
    EnvConfig,
    Market,
    RewardConfig,
    RewardShaper,
    Scenario,
    Step,
    TradingEnv,
    check_components,
    load_component,
    load_scenario,
    reward_component,
)
from tradeguard.errors import InvalidConfig
from tradeguard.invariants import check_trace
from tradeguard.invariants.audit import Oracle, audit_reward, component_table, penalty_strength
from tradeguard.trace import Trace

ACTIONS = tuple(Action)


def _brute(oracle: Oracle, prices: list[int], allow_rejections: bool = True) -> float:
    best = -float("inf")
    for seq in itertools.product(ACTIONS, repeat=len(prices) - 1):
        r = oracle.rollout(prices, seq)
        if allow_rejections or not r.rejections:
            best = max(best, r.shaped_return)
    return best


def _random_case(rng: random.Random) -> tuple[EnvConfig, RewardConfig, list[int]]:
    def w() -> float:
        return rng.choice([0.0, 1.0, round(rng.uniform(-2, 3), 3)])

    env = EnvConfig(
        cash=rng.choice([1_000_000, 30_000]),
        lot_size=rng.choice([1, 1, 3]),
        fee_bps=rng.choice([0.0, 10.0, 50.0]),
        buy_small=rng.choice([0.1, 0.01]),
        buy_large=rng.choice([0.5, 1.0]),
        add_size=rng.choice([0.1, 0.5]),
        disabled_actions=tuple(rng.sample(["BUY_MEDIUM", "SELL_PARTIAL", "ADD_POSITION"], rng.choice([0, 0, 1]))),
    )
    chosen = rng.sample(HEALTHY, rng.choice([1, 2, 3]))
    custom = tuple(dataclasses.replace(c, weight=rng.choice([1.0, -1.0, round(rng.uniform(-2, 2), 3)])) for c in chosen)
    reward = RewardConfig(
        realized_pnl=w(),
        unrealized_pnl_change=w(),
        transaction_cost=w(),
        failed_action_penalty=rng.choice([-1.0, -0.05, 0.0]),
        curriculum_min_share=rng.choice([0.0, 0.0, 0.5]),
        diversity_bonus=rng.choice([0.0, 0.0, 0.2]),
        custom_components=custom,
    )
    prices = [rng.choice([10_000, 2_000])]
    for _ in range(rng.randint(2, 3)):
        prices.append(max(1, int(prices[-1] * (1 + rng.uniform(-0.08, 0.08)))))
    return env, reward, prices


@pytest.mark.parametrize("case", range(24))
def test_oracle_matches_brute_force_with_custom_components(case: int) -> None:
    env, reward, prices = _random_case(random.Random(case))
    oracle = Oracle(env, reward)
    plan = oracle.solve(prices)
    assert plan.rollout.shaped_return == pytest.approx(_brute(oracle, prices), rel=1e-7, abs=1e-7), (reward, prices)
    assert plan.value == pytest.approx(plan.rollout.shaped_return, rel=1e-9, abs=1e-9)
    free = oracle.solve(prices, allow_rejections=False)
    assert free.rollout.rejections == 0
    assert free.rollout.shaped_return == pytest.approx(_brute(oracle, prices, False), rel=1e-7, abs=1e-7)


@pytest.mark.parametrize("component", HEALTHY, ids=[c.name for c in HEALTHY])
def test_every_component_alone_matches_brute_force_at_horizon_four(component: CustomComponent) -> None:
    # Four steps: 2,401 sequences; the same portfolio is reached with many histories.
    reward = RewardConfig(failed_action_penalty=-0.05, custom_components=(dataclasses.replace(component, weight=3.0),))
    oracle = Oracle(EnvConfig(fee_bps=5), reward)
    for prices in ([10_000, 10_250, 9_900, 10_400, 10_300], [10_000, 9_800, 9_700, 9_900, 9_500]):
        assert oracle.solve(prices).value == pytest.approx(_brute(oracle, prices), rel=1e-9, abs=1e-9)


def _blind_to_custom_history(oracle: Oracle) -> Oracle:
    """The oracle with the custom histories left out of its memo keys (broken on purpose)."""
    real = oracle._children_fn

    def children_fn(p: Any, objective: Any, allow: bool) -> Any:
        inner = real(p, objective, allow)
        return lambda t, s, h: [(a, r, s2, h2, k2[:4]) for a, r, s2, h2, k2 in inner(t, s, h)]

    oracle._children_fn = children_fn  # type: ignore[method-assign]
    return oracle


def test_the_declared_history_is_what_keeps_memoization_sound() -> None:
    # Broken twin: an oracle whose memo ignores the custom histories merges states that reach
    # the same portfolio with different histories, and brute force catches it.
    reward = RewardConfig(failed_action_penalty=-0.05, custom_components=(first_try_trap,))
    prices = [10_000, 10_000, 10_000, 10_000, 10_000]
    healthy, blind = Oracle(EnvConfig(), reward), _blind_to_custom_history(Oracle(EnvConfig(), reward))
    want = _brute(healthy, prices)
    assert healthy.solve(prices).value == pytest.approx(want, abs=1e-9)
    assert blind.solve(prices).value < want - 0.01


def _bound_violations(oracle: Oracle, prices: list[int]) -> list[tuple[Any, ...]]:
    h = len(prices) - 1
    runs = [oracle.rollout(prices, seq) for seq in itertools.product(ACTIONS, repeat=h)]
    bound = oracle._bound.for_market(tuple(prices), "shaped")
    out = []
    for k in range(h):
        for r in runs:
            v = sum(r.rewards[k:])
            if bound(k, r.states[k], r.hists[k]) < v - 1e-9 * max(1.0, abs(v)):
                out.append((k, r.predicted, v))
    return out


@pytest.mark.parametrize("case", range(6))
def test_the_bound_holds_with_custom_components(case: int) -> None:
    env, reward, prices = _random_case(random.Random(500 + case))
    assert _bound_violations(Oracle(env, reward), prices) == []


def test_the_bound_check_catches_a_bound_that_ignores_custom_components() -> None:
    reward = RewardConfig(custom_components=(dataclasses.replace(trade_bonus, weight=4.0),))
    oracle = Oracle(EnvConfig(), reward)
    oracle._bound._custom_rest = lambda histories, steps_left: 0.0  # as if they could not pay anything
    assert _bound_violations(oracle, [10_000, 10_000, 10_000])


def test_a_declared_remaining_range_prunes_like_the_built_in_bound() -> None:
    # The built-in diversity bonus and the same bonus as a custom component with a remaining
    # range: the same optimum, and about as many states expanded.
    prices = [10_000, 10_013, 9_999, 10_064, 10_074, 10_020, 10_057, 10_189, 10_286, 10_213, 10_085]
    built_in = Oracle(EnvConfig(), RewardConfig(diversity_bonus=0.2)).solve(prices)
    custom = Oracle(EnvConfig(), RewardConfig(custom_components=(novelty,))).solve(prices)
    coarse = Oracle(EnvConfig(), RewardConfig(custom_components=(dataclasses.replace(novelty, remaining=None),))).solve(prices)
    assert built_in.value == pytest.approx(custom.value, abs=1e-12) == pytest.approx(coarse.value, abs=1e-12)
    assert built_in.actions == custom.actions == coarse.actions
    assert custom.nodes == built_in.nodes  # the same bound: the same search
    assert coarse.nodes > 2 * built_in.nodes


def test_a_remaining_range_that_a_continuation_leaves_is_refused() -> None:
    too_tight = dataclasses.replace(novelty, name="too_tight", remaining=lambda seen, k: (0.0, 0.2))  # one bonus at most
    with pytest.raises(InvalidConfig, match=r"'too_tight': remaining\(0, 3\) = \(0.0, 0.2\), but the actions .* earn"):
        check_components(EnvConfig(), RewardConfig(custom_components=(too_tight,)))
    not_a_pair = dataclasses.replace(novelty, name="not_a_pair", remaining=lambda seen, k: 1.0)
    with pytest.raises(InvalidConfig, match=r"'not_a_pair': remaining\(.*\) returned 1.0; expected a \(low, high\) pair"):
        check_components(EnvConfig(), RewardConfig(custom_components=(not_a_pair,)))


def test_unbounded_components_are_searched_without_pruning_and_stay_exact() -> None:
    reward = RewardConfig(custom_components=(dataclasses.replace(pnl_echo, weight=-2.0),))
    oracle = Oracle(EnvConfig(), reward)
    prices = [10_000, 10_300, 10_100, 10_400]
    assert oracle.solve(prices).value == pytest.approx(_brute(oracle, prices), abs=1e-9)
    custom_rest = oracle._bound._custom_rest
    assert custom_rest is not None and custom_rest((None,), 1) == float("inf")


# --------------------------------------------------------------------------- the env and the trace


def test_custom_components_are_reported_every_step_and_the_reward_is_their_sum() -> None:
    reward = RewardConfig(custom_components=(sharpe_bonus, dataclasses.replace(drawdown, weight=0.1)))
    env = TradingEnv(EnvConfig(episode_length=30), reward, scenario="default")
    env.reset(seed=3)
    for a in [1, 0, 6, 4, 5, 4, 2, 0, 5, 3] * 3:
        env.step(a)
    trace = env.trace
    assert trace.meta.component_names == (*COMPONENT_NAMES, "sharpe_bonus", "drawdown")
    assert all(len(r.components) == 9 for r in trace)
    assert any(r.components[-1] < 0 for r in trace) and any(r.components[-2] != 0 for r in trace)
    assert check_trace(trace) == []
    assert set(trace.component_totals()) == set(trace.meta.component_names)
    assert not trace.meta.reward_is_pnl
    # reward-is-sum-of-components covers the custom entries: a reward that leaves one out fails.
    bad = trace.records[4]._replace(reward=trace.records[4].reward - trace.records[4].components[-1] + 1.0)
    broken = Trace((*trace.records[:4], bad, *trace.records[5:]), trace.meta)
    assert "reward-is-sum-of-components" in {v.invariant for v in check_trace(broken)}


def test_the_step_a_component_sees() -> None:
    seen: list[Step] = []

    @reward_component
    def spy(step: Step) -> float:
        seen.append(step)
        return 0.0

    shaper = RewardShaper(RewardConfig(custom_components=(spy,)), 1_000_000)
    env = TradingEnv(EnvConfig(episode_length=3), RewardConfig(custom_components=(spy,)),
                     Market(np.array([10_000, 10_100, 10_200, 10_300])))
    env.reset(seed=0)
    env.step(Action.SELL_ALL)
    env.step(Action.BUY_LARGE)
    rejected, bought = seen
    assert rejected.t == 0 and rejected.rejected and rejected.reason == "NO_POSITION"
    assert rejected.executed is Action.HOLD and rejected.predicted is Action.SELL_ALL and rejected.pnl == 0
    assert bought.t == 1 and bought.price == 10_100 and bought.next_price == 10_200
    assert bought.after.position > 0 and bought.pnl == bought.equity_after - bought.equity_before
    assert bought.pnl_percent == pytest.approx(100 * bought.pnl / 1_000_000)
    assert shaper.component_names[-1] == "spy"


def test_a_scenario_file_names_components_as_module_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "team_rewards.py").write_text(textwrap.dedent("""
        from tradeguard.env import reward_component

        @reward_component(bounds=(0.0, 1.0))
        def activity(step):
            return 1.0 if step.executed != 0 else 0.0

        def plain(step):
            return -0.1 if step.rejected else 0.0
    """))
    (tmp_path / "my_reward.toml").write_text(textwrap.dedent("""
        [reward]
        failed_action_penalty = -1.0
        custom_components = ["team_rewards:plain", {function = "team_rewards:activity", weight = 0.25}]
    """))
    monkeypatch.chdir(tmp_path)  # imported from the current directory, as tradeguard check --env does
    sc = load_scenario(str(tmp_path / "my_reward.toml"))
    plain, activity = sc.reward.custom_components
    assert (plain.name, plain.weight, plain.bounds, activity.name, activity.weight) == ("plain", 1.0, None, "activity", 0.25)
    assert sc.reward.to_dict()["custom_components"] == [
        "team_rewards:plain",
        {"function": "team_rewards:activity", "weight": 0.25},
    ]
    assert RewardConfig.from_dict(sc.reward.to_dict()) == sc.reward  # the round trip a replay needs
    env = TradingEnv(scenario=sc)
    env.reset(seed=0)
    _, reward, *_ = env.step(Action.BUY_SMALL)
    assert env.trace[0].components[-2:] == (0.0, 0.25) and reward == pytest.approx(sum(env.trace[0].components))
    assert "team_rewards:activity" in (env.trace_meta.replay or "")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["no_such_module_xyz:fn"], "no module named 'no_such_module_xyz'"),
        (["custom_rewards:sharpe_bonsu"], "has no 'sharpe_bonsu'.* Did you mean 'sharpe_bonus'"),
        (["custom_rewards"], "is not 'module:name'"),
        ([{"function": "custom_rewards:drawdown", "wieght": 2}], "unknown: 'wieght'"),
        ("custom_rewards:drawdown", "must be a list of components"),
        ([3], "is not a component"),
        ([sell_curriculum, sell_curriculum], "two components named 'sell_curriculum'"),
        ([dataclasses.replace(rejection_cost, name="diversity_bonus")], "name of a built-in component"),
    ],
)
def test_bad_custom_component_lists_are_refused_clearly(value: Any, message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        RewardConfig(custom_components=value)


# --------------------------------------------------------------------------- refused components


def test_a_component_writing_a_global_or_nonlocal_is_refused_naming_it() -> None:
    def make() -> Any:
        count = 0

        def counting(step: Step) -> float:
            nonlocal count
            count += 1
            return 0.0

        return counting

    with pytest.raises(InvalidConfig, match=r"custom component 'counting' writes the enclosing function's variable 'count'"):
        reward_component(make())
    with pytest.raises(InvalidConfig, match=r"custom component '_uses_global' writes the global '_CALLS'"):
        reward_component(_uses_global)


_CALLS = 0


def _uses_global(step: Step) -> float:
    global _CALLS
    _CALLS += 1
    return 0.0


def test_history_kept_in_a_list_is_caught_before_the_oracle_searches() -> None:
    returns: list[float] = []

    @reward_component(bounds=(-1.0, 1.0))
    def hidden_sharpe(step: Step) -> float:
        returns.append(step.pnl_percent)  # undeclared history: the memo cannot see it
        m = sum(returns) / len(returns)
        sd = (sum((x - m) ** 2 for x in returns) / len(returns)) ** 0.5
        return 0.0 if sd == 0 else max(-1.0, min(1.0, m / sd))

    reward = RewardConfig(custom_components=(hidden_sharpe,))
    with pytest.raises(InvalidConfig, match=r"custom component 'hidden_sharpe' is not a function of the step and its declared history"):
        Oracle(EnvConfig(), reward)
    # Its declared twin passes, and the oracle is exact on it (see the brute-force tests).
    check_components(EnvConfig(), RewardConfig(custom_components=(sharpe_bonus,)))


def test_random_components_are_caught() -> None:
    rng = random.Random(0)

    @reward_component(bounds=(0.0, 1.0))
    def noisy(step: Step) -> float:
        return rng.random()

    with pytest.raises(InvalidConfig, match="'noisy' is not a function of the step"):
        check_components(EnvConfig(), RewardConfig(custom_components=(noisy,)))


def test_unhashable_histories_and_undeclared_histories_are_refused_naming_the_component() -> None:
    with pytest.raises(InvalidConfig, match=r"custom component 'window': its initial history is a list .* not hashable.*tuple"):
        reward_component(history=[], bounds=(0.0, 1.0), name="window")(lambda step, h: (0.0, h))

    @reward_component(history=(), name="window")
    def grows_a_list(step: Step, h: Any) -> tuple[float, Any]:
        return 0.0, [*h, step.price]

    env = TradingEnv(EnvConfig(episode_length=3), RewardConfig(custom_components=(grows_a_list,)), scenario="default")
    env.reset(seed=0)
    with pytest.raises(InvalidConfig, match=r"custom component 'window': the history it returned at step 0 is a list"):
        env.step(0)
    with pytest.raises(InvalidConfig, match=r"'two_args'.* takes a second argument, but the component declares no history"):
        reward_component(name="two_args")(lambda step, h: 0.0)
    with pytest.raises(InvalidConfig, match=r"'one_arg' declares a history, so its function is called as fn\(step, history\)"):
        reward_component(name="one_arg", history=0)(lambda step: 0.0)

    @reward_component(name="pair")
    def returns_a_pair(step: Step) -> Any:
        return 0.0, 1

    with pytest.raises(InvalidConfig, match=r"'pair' returned a tuple .* but declares no history"):
        check_components(EnvConfig(), RewardConfig(custom_components=(returns_a_pair,)))


def test_values_outside_the_declared_bounds_or_not_finite_are_refused() -> None:
    @reward_component(bounds=(0.0, 0.1))
    def too_big(step: Step) -> float:
        return 0.5 if step.executed is not Action.HOLD else 0.0

    with pytest.raises(InvalidConfig, match=r"'too_big' returned 0.5 at step \d+ .*outside its declared bounds \(0.0, 0.1\)"):
        Oracle(EnvConfig(), RewardConfig(custom_components=(too_big,))).solve([10_000, 10_100, 10_200])

    @reward_component
    def nan(step: Step) -> float:
        return float("nan")

    with pytest.raises(InvalidConfig, match=r"'nan' returned nan at step 0 .* must be finite"):
        check_components(EnvConfig(), RewardConfig(custom_components=(nan,)))


@pytest.mark.parametrize("fee_bps", [0.0, 10.0])
def test_a_false_potential_based_declaration_is_refused(fee_bps: float) -> None:
    env = EnvConfig(fee_bps=fee_bps)
    liar = dataclasses.replace(rejection_cost, name="liar", potential_based=True)
    with pytest.raises(InvalidConfig, match=r"'liar' is declared potential_based=True, but two action sequences that reach the same state"):
        check_components(env, RewardConfig(custom_components=(liar,)))
    if fee_bps == 0:  # a round trip without fees on a flat market returns to the starting state
        activity = dataclasses.replace(trade_bonus, name="activity", potential_based=True)
        with pytest.raises(InvalidConfig, match=r"'activity' is declared potential_based=True"):
            check_components(env, RewardConfig(custom_components=(activity,)))
    check_components(env, RewardConfig(custom_components=(unrealized_potential,)))


def test_the_batch_engine_refuses_custom_components_instead_of_dropping_them() -> None:
    reward = RewardConfig(custom_components=(trade_bonus,))
    with pytest.raises(InvalidConfig, match=r"batch engine computes the built-in reward components only.*\(trade_bonus\).*TradingEnv"):
        BatchEngine(4, EnvConfig(episode_length=5), reward)
    # The audit's exploring-policy estimate steps 32+ markets with the engine; with custom
    # components it steps them with the scalar machine: the same signal, the component included.
    ratio, spread = penalty_strength(EnvConfig(), reward, episodes=40, steps=20)
    _, spread_plain = penalty_strength(EnvConfig(), RewardConfig(), episodes=40, steps=20)
    assert spread > spread_plain > 0 and ratio == pytest.approx(1.0 / spread)


# --------------------------------------------------------------------------- the audit


def _v101_custom() -> Scenario:
    sc = load_scenario("v10.1")
    reward = dataclasses.replace(sc.reward, curriculum_min_share=0.0, custom_components=(sell_curriculum,))
    return dataclasses.replace(sc, name="v10.1-custom", reward=reward)


def test_the_v10_1_curriculum_as_a_custom_component_has_the_same_optima() -> None:
    built_in, custom = load_scenario("v10.1"), _v101_custom()
    a, b = Oracle(built_in.env, built_in.reward), Oracle(custom.env, custom.reward)
    for seed in range(12):
        prices = built_in.market.generate(seed % 6 + 3, np.random.default_rng(seed)).prices.tolist()
        pa, pb = a.solve(prices), b.solve(prices)
        assert pa.actions == pb.actions and pa.value == pb.value


def test_the_audit_reports_the_same_rejection_in_optimum_for_the_custom_curriculum() -> None:
    # A budget that never binds (about 5 s each on a quiet machine): the results depend on the seed only.
    built_in = audit_reward("v10.1", budget=240, max_examples=60, seed=0)
    custom = audit_reward(_v101_custom(), budget=240, max_examples=60, seed=0)
    assert not built_in.budget_exhausted and not custom.budget_exhausted
    f, g = built_in.finding("rejection-in-optimum"), custom.finding("rejection-in-optimum")
    assert f is not None and g is not None and f.counterexample is not None and g.counterexample is not None
    assert g.counterexample.prices == f.counterexample.prices
    assert g.counterexample.shaped_optimal.predicted == f.counterexample.shaped_optimal.predicted
    assert (g.details["markets_fired"], g.details["markets_explored"]) == (
        f.details["markets_fired"],
        f.details["markets_explored"],
    )
    assert custom.kinds == built_in.kinds
    row = next(c for c in custom.components if c.name == "sell_curriculum")
    assert row.can_change_optimum and not row.potential_based
    assert "sell_curriculum (+1)" in g.message


def test_the_component_table_lists_custom_components_with_their_declaration() -> None:
    table = component_table(RewardConfig(custom_components=(unrealized_potential, dataclasses.replace(trade_bonus, weight=0.0))))
    rows = {c.name: c for c in table}
    assert list(rows)[-2:] == ["unrealized_potential", "trade_bonus"]
    assert rows["unrealized_potential"].potential_based and rows["unrealized_potential"].can_change_optimum
    assert "potential-based" in rows["unrealized_potential"].why
    assert not rows["trade_bonus"].can_change_optimum and rows["trade_bonus"].why == "off"


def test_load_component_wraps_plain_functions() -> None:
    comp = load_component("custom_rewards:_plain_for_loading")
    assert comp.name == "_plain_for_loading" and not comp.stateful and comp.bounds is None
    assert comp.spec == "custom_rewards:_plain_for_loading"
    assert sell_curriculum.spec == "custom_rewards:sell_curriculum"


def test_docstring_examples_of_the_audit_side_run() -> None:
    import doctest

    import tradeguard.invariants.audit._custom as custom_module

    result = doctest.testmod(custom_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
