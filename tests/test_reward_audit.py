"""The reward audit: each finding kind fires on a reward built to trigger it and stays quiet
on one built not to; the seed's own configs give the findings the post-mortem describes."""

from __future__ import annotations

import dataclasses
import doctest
import functools
import warnings
from typing import Any

import pytest

from tradeguard.env import Action, EnvConfig, RewardConfig, load_scenario
from tradeguard.errors import InvalidConfig, InvariantViolation
from tradeguard.invariants.audit import rollout
from tradeguard.invariants.audit._reward_audit import (
    REWARD_FINDING_KINDS,
    REWARD_SEVERITY,
    RewardAuditReport,
    RewardCounterexample,
    assert_reward_sound,
    audit_reward,
    component_table,
    penalty_strength,
)

# Small searches: a generous time budget that never binds, so results depend on the seed only.
FAST: dict[str, Any] = {"budget": 60.0, "max_examples": 40, "horizon": (2, 4), "seed": 0}


def _reward(**changes: Any) -> RewardConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a positive penalty warns on purpose
        return RewardConfig(**changes)


CONFIGS: dict[str, Any] = {
    "default": "default",
    "v10": "v10",
    "v10.1": "v10.1",
    "v10.2": "v10.2",
    "v9": "v9",
    "zero-penalty": _reward(failed_action_penalty=0.0),
    "fees-x100": _reward(transaction_cost=100.0),
    "realized-x2": _reward(realized_pnl=2.0),
    "no-unrealized": _reward(unrealized_pnl_change=0.0),
}


@functools.cache
def audit(name: str) -> RewardAuditReport:
    kwargs = dict(FAST)
    if name == "v9":
        kwargs["max_examples"] = 120  # its counterexamples are rarer among random markets
    return audit_reward(CONFIGS[name], **kwargs)


# kind -> (a config built to trigger it, configs built not to)
FIRES_AND_QUIET: dict[str, tuple[str, tuple[str, ...]]] = {
    "rejection-in-optimum": ("v10.1", ("default", "zero-penalty")),
    "invalid-not-worse-than-hold": ("zero-penalty", ("default", "v10")),
    "idle-optimum": ("fees-x100", ("default", "realized-x2")),
    "never-close-optimum": ("v9", ("default", "realized-x2", "no-unrealized")),
    "pnl-regret": ("realized-x2", ("default", "v10.2")),
    "weak-penalty": ("v10", ("default", "v10.1")),
}


def test_every_kind_is_covered() -> None:
    assert set(FIRES_AND_QUIET) == set(REWARD_FINDING_KINDS) == set(REWARD_SEVERITY)


@pytest.mark.parametrize("kind", REWARD_FINDING_KINDS)
def test_kind_fires_on_the_config_built_to_trigger_it(kind: str) -> None:
    fires, _ = FIRES_AND_QUIET[kind]
    report = audit(fires)
    finding = report.finding(kind)
    assert finding is not None, report.format()
    assert finding.severity == REWARD_SEVERITY[kind]
    assert finding.message
    if kind == "weak-penalty":
        assert finding.counterexample is None and finding.details["ratio"] < 1.0
    else:
        cex = finding.counterexample
        assert cex is not None
        assert len(cex.prices) == cex.shaped_optimal.horizon + 1 == cex.pnl_optimal.horizon + 1
        assert finding.details["markets_fired"] >= 1


@pytest.mark.parametrize(
    ("kind", "quiet"),
    [(k, q) for k, (_, qs) in FIRES_AND_QUIET.items() for q in qs],
)
def test_kind_stays_quiet_on_a_config_built_not_to_trigger_it(kind: str, quiet: str) -> None:
    report = audit(quiet)
    assert kind not in report.kinds, report.format()


def _check_claim(kind: str, cex: RewardCounterexample) -> None:
    """What ``kind`` claims about a counterexample, recomputed from its sequences."""
    s, p = cex.shaped_optimal, cex.pnl_optimal
    assert p.rejections == 0
    if kind == "rejection-in-optimum":
        free = cex.others["best without rejections"]
        assert s.rejections >= 1 and free.rejections == 0
        assert s.shaped_return > free.shaped_return
    elif kind == "invalid-not-worse-than-hold":
        assert cex.detail["reward_rejected"] >= cex.detail["reward_hold"] - 1e-9
    elif kind == "idle-optimum":
        assert s.trades == 0 and p.pnl > 0
    elif kind == "never-close-optimum":
        if cex.detail["pattern"] == "holds to the end":
            assert s.opened and s.ends_in_position and not s.closed and p.closed
        else:
            bns = cex.others[cex.detail["policy"]]
            assert bns.shaped_return > p.shaped_return and bns.pnl < p.pnl
    elif kind == "pnl-regret":
        assert p.pnl > s.pnl
        assert s.shaped_return >= p.shaped_return - 1e-9
    else:  # pragma: no cover
        raise AssertionError(kind)


def test_counterexamples_hold_on_replay() -> None:
    # Every error counterexample (shrunk and worst) shows what its kind claims.
    for kind, (name, _) in FIRES_AND_QUIET.items():
        f = audit(name).finding(kind)
        assert f is not None
        for cex in (f.counterexample, f.worst):
            if cex is not None:
                _check_claim(kind, cex)
                replay = rollout(cex.prices, cex.shaped_optimal.predicted, reward=cex.reward)
                assert replay.shaped_return == cex.shaped_optimal.shaped_return


def test_claim_checker_rejects_a_counterexample_that_does_not_show_its_kind() -> None:
    f = audit("v10.1").finding("rejection-in-optimum")
    assert f is not None and f.counterexample is not None
    fake = dataclasses.replace(f.counterexample, shaped_optimal=f.counterexample.pnl_optimal)
    with pytest.raises(AssertionError):
        _check_claim("rejection-in-optimum", fake)
    with pytest.raises(AssertionError):
        _check_claim("pnl-regret", f.counterexample)


def test_docstring_examples_run() -> None:
    import tradeguard.invariants.audit._reference_policies as refs
    import tradeguard.invariants.audit._reward_analysis as analysis_module
    import tradeguard.invariants.audit._reward_audit as audit_module
    import tradeguard.invariants.audit._reward_report as report_module

    for module in (audit_module, report_module, analysis_module, refs):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# ------------------------------------------------------------------ the seed's configs


def test_v10_gives_weak_penalty_and_nothing_else() -> None:
    report = audit("v10")
    assert report.kinds == ("weak-penalty",)
    assert report.passed  # a warning does not fail the audit
    f = report.finding("weak-penalty")
    assert f is not None and 0 < f.details["ratio"] < 0.5
    assert "-0.05" in f.message


def test_v10_1_rejection_in_optimum_counterexample_is_readable() -> None:
    report = audit("v10.1")
    assert not report.passed
    f = report.finding("rejection-in-optimum")
    assert f is not None and f.counterexample is not None
    cex = f.counterexample
    # A flat-or-falling market where a round trip loses money, and a rejected SELL is optimal.
    assert all(b <= a for a, b in zip(cex.prices, cex.prices[1:], strict=False))
    s, free = cex.shaped_optimal, cex.others["best without rejections"]
    assert s.predicted[0] in (Action.SELL_PARTIAL, Action.SELL_ALL)
    assert s.reasons[0] is not None and s.reasons[0].value == "NO_POSITION"
    assert free.trades >= 2 and free.pnl < 0  # the valid way to satisfy the curriculum loses
    assert cex.pnl_optimal.trades == 0
    text = f.format()
    assert "SELL_PARTIAL (rejected: NO_POSITION)" in text
    assert "shaped-optimal" in text and "PnL-optimal" in text and "best without rejections" in text


def test_v9_pays_for_never_closing() -> None:
    report = audit("v9")
    assert {"never-close-optimum", "pnl-regret"} & set(report.kinds)
    assert not report.passed
    levels = {c.name: c for c in report.components}
    assert levels["unrealized_pnl_level"].can_change_optimum
    assert not levels["unrealized_pnl_level"].potential_based


def test_default_and_v10_2_pass() -> None:
    for name in ("default", "v10.2"):
        report = audit(name)
        assert report.findings == (), report.format()
        assert report.passed and "PASS" in report.format()


def test_same_seed_same_findings() -> None:
    a = audit_reward("v10.1", **FAST).as_dict()
    b = audit("v10.1").as_dict()
    for d in (a, b):
        d.pop("seconds")
    assert a == b


# ------------------------------------------------------------------ baseline and fuzz


def test_baseline_reports_changed_markets_and_new_findings() -> None:
    fixed = audit_reward("default", baseline="v10.1", **FAST)
    assert fixed.baseline is not None
    b = fixed.baseline
    assert b.markets_changed > 0 and b.changed is not None
    assert b.changed.shaped_optimal.predicted != b.changed.others["baseline shaped-optimal"].predicted
    assert "rejection-in-optimum" in b.resolved_findings and b.new_findings == ()
    broken = audit_reward("v10.1", baseline="default", **FAST)
    assert broken.baseline is not None
    assert "rejection-in-optimum" in broken.baseline.new_findings
    assert "compared with baseline default" in broken.format()
    same = audit_reward("default", baseline="default", **FAST)
    assert same.baseline is not None and same.baseline.markets_changed == 0
    assert same.baseline.changed is None


def test_fuzz_mode_finds_the_bad_corner_of_a_range() -> None:
    report = audit_reward(
        "default", fuzz={"failed_action_penalty": (-1.0, 0.5)}, **FAST
    )
    f = report.finding("invalid-not-worse-than-hold")
    assert f is not None and f.counterexample is not None
    assert f.counterexample.reward.failed_action_penalty >= 0.0
    assert "weak-penalty" in report.kinds  # the range's weakest end
    safe = audit_reward("default", fuzz={"failed_action_penalty": (-2.0, -1.0)}, **{**FAST, "max_examples": 25})
    assert safe.passed and safe.findings == ()


def test_bad_arguments_are_refused_with_the_fix() -> None:
    with pytest.raises(InvalidConfig, match="Did you mean 'failed_action_penalty'"):
        audit_reward("default", fuzz={"failed_action_penality": (-1.0, 0.0)})
    with pytest.raises(InvalidConfig, match="low is above high"):
        audit_reward("default", fuzz={"realized_pnl": (2.0, 1.0)})
    with pytest.raises(InvalidConfig, match="budget"):
        audit_reward("default", budget=0)
    with pytest.raises(InvalidConfig, match="horizon"):
        audit_reward("default", horizon=(5, 2))
    with pytest.raises(InvalidConfig, match=r"Did you mean 'v10\.2'"):
        audit_reward("v10.3")
    with pytest.raises(InvalidConfig, match="cannot be combined"):
        audit_reward("default", baseline="v10", fuzz={"realized_pnl": (0.5, 1.0)})
    with pytest.raises(InvalidConfig, match="different \\[env\\]"):
        audit_reward("default", baseline="v10.2")
    with pytest.raises(InvalidConfig, match="not a reward to audit"):
        audit_reward(42)  # type: ignore[arg-type]


# ------------------------------------------------------------------ assertion, components, penalty


def test_assert_reward_sound_raises_an_assertion_with_the_report() -> None:
    with pytest.raises(InvariantViolation) as info:
        assert_reward_sound("v10.1", **FAST)
    assert isinstance(info.value, AssertionError)
    assert "rejection-in-optimum" in str(info.value) and "shaped-optimal" in str(info.value)
    assert assert_reward_sound("default", **FAST).passed
    allowed = assert_reward_sound(
        CONFIGS["zero-penalty"], allow=("invalid-not-worse-than-hold",), **FAST
    )
    assert "invalid-not-worse-than-hold" in allowed.kinds
    with pytest.raises(InvalidConfig, match="not a finding kind"):
        assert_reward_sound("default", allow=("rejection-in-the-optimum",))


def test_component_table_says_what_can_change_the_optimum() -> None:
    default = {c.name: c for c in component_table(RewardConfig())}
    assert not any(c.can_change_optimum for c in default.values())
    assert default["unrealized_pnl_change"].potential_based
    v101 = {c.name: c for c in component_table(load_scenario("v10.1").reward)}
    assert v101["exploration_curriculum"].can_change_optimum
    assert v101["exploration_curriculum"].weight == -2.5
    fees = {c.name: c for c in component_table(_reward(transaction_cost=2.0))}
    assert fees["transaction_cost"].can_change_optimum
    positive = {c.name: c for c in component_table(_reward(failed_action_penalty=0.5))}
    assert positive["failed_action_penalty"].can_change_optimum


def test_penalty_strength_orders_the_seed_versions() -> None:
    env = EnvConfig()
    weak, spread = penalty_strength(env, RewardConfig(failed_action_penalty=-0.05))
    strong, spread2 = penalty_strength(env, RewardConfig())
    assert spread == spread2 > 0
    assert weak < 1.0 < strong
    assert strong == pytest.approx(20 * weak)
    paid, _ = penalty_strength(env, _reward(failed_action_penalty=0.5))
    assert paid < 0


def _penalty_strength_scalar(
    env: EnvConfig, reward: RewardConfig, market: Any, episodes: int, steps: int, seed: int
) -> tuple[float, float]:
    """penalty_strength as it was before the batch engine: one Machine step at a time."""
    import math

    import numpy as np

    from tradeguard.env import COMPONENT_NAMES, Machine, PortfolioState, RewardShaper, total_reward

    steps = min(steps, env.episode_length)
    machine = Machine(env)
    shaper = RewardShaper(reward, env.cash)
    rng = np.random.default_rng([seed, 0xBE7A])
    signal: list[float] = []
    pen = COMPONENT_NAMES.index("failed_action_penalty")
    for _ in range(episodes):
        prices = market.generate(steps + 1, rng).prices.tolist()
        state = PortfolioState(env.cash, 0, 0)
        hist = shaper.initial()
        for t in range(steps):
            a = Action(int(rng.integers(len(Action))))
            after, outcome = machine.step(state, a, prices[t])
            comps, hist = shaper.shape(hist, a, outcome, state, after, prices[t], prices[t + 1])
            signal.append(total_reward(comps) - comps[pen])
            state = after
    spread = float(np.std(signal))
    penalty = reward.failed_action_penalty
    if spread == 0.0:
        return (math.inf if penalty < 0 else (0.0 if penalty == 0 else -math.inf)), 0.0
    return -penalty / spread, spread


@pytest.mark.parametrize(
    ("scenario", "episodes", "steps", "seed"),
    [("v10", 32, 40, 0), ("v10.1", 40, 30, 7), ("v10.2", 3, 25, 3), ("v9", 33, 20, 5)],
)
def test_penalty_strength_equals_the_step_by_step_loop(
    scenario: str, episodes: int, steps: int, seed: int
) -> None:
    from tradeguard.env import MarketSpec

    sc = load_scenario(scenario)
    market = sc.market if isinstance(sc.market, MarketSpec) else MarketSpec()
    got = penalty_strength(sc.env, sc.reward, market, episodes=episodes, steps=steps, seed=seed)
    want = _penalty_strength_scalar(sc.env, sc.reward, market, episodes, steps, seed)
    assert got == want  # same draws, bit-identical rewards: the same floats


@pytest.mark.parametrize("scenario", ["v10", "v10.1", "v10.2", "v9"])
def test_exploring_signal_of_the_batch_engine_is_the_scalar_machines(scenario: str) -> None:
    import numpy as np

    from tradeguard.env import MarketSpec
    from tradeguard.invariants.audit._reward_analysis import (
        _exploring_signal_batch,
        _exploring_signal_scalar,
    )

    sc = load_scenario(scenario)
    rng = np.random.default_rng(11)
    markets = [MarketSpec(volatility=0.03).generate(31, rng) for _ in range(5)]
    actions = rng.integers(0, len(Action), size=(30, 5))
    batch = _exploring_signal_batch(sc.env, sc.reward, markets, actions)
    scalar = _exploring_signal_scalar(sc.env, sc.reward, markets, actions)
    assert batch.shape == (150,)
    assert batch.tobytes() == scalar.tobytes()  # bit for bit, in the same order


def test_penalty_strength_falls_back_to_the_scalar_machine_when_int64_is_not_exact() -> None:
    import numpy as np

    from tradeguard.env import BatchEngine, MarketSpec

    # 10**15 cash is beyond what int64 computes exactly: the batch engine refuses it.
    env = EnvConfig(cash=10**15, episode_length=50)
    market = MarketSpec()
    with pytest.raises(InvalidConfig, match="int64"):
        BatchEngine(1, env, market=market.generate(51, np.random.default_rng(0)))
    reward = RewardConfig()
    got = penalty_strength(env, reward, market, episodes=32, steps=50, seed=1)
    assert got == _penalty_strength_scalar(env, reward, market, 32, 50, 1)


def test_report_json_has_the_documented_shape() -> None:
    d = audit("v10.1").as_dict()
    assert d["passed"] is False
    for f in d["findings"]:
        assert set(f) >= {"kind", "severity", "message", "counterexample"}
        assert f["kind"] in REWARD_FINDING_KINDS
    cex = d["findings"][0]["counterexample"]
    assert cex["shaped_optimal"]["actions"][0] in ("SELL_PARTIAL", "SELL_ALL")
    assert d["components"][0]["name"] == "realized_pnl"


def test_a_budget_that_runs_out_is_reported_not_hidden() -> None:
    report = audit_reward("v10.1", budget=0.05, max_examples=5000, horizon=(2, 4), seed=0)
    assert report.budget_exhausted
    assert report.explored < 5000
    assert "the budget ran out" in report.format()
    # What was found before the budget ran out is still reported, with a counterexample.
    for f in report.errors:
        assert f.counterexample is not None


def test_audit_horizon_is_capped() -> None:
    with pytest.raises(InvalidConfig, match=r"horizon\[1\]=13"):
        audit_reward("default", horizon=(2, 13))
