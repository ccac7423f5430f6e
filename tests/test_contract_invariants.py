"""The contract invariants of issue 14, each against envs broken on purpose and a healthy twin.

Every broken ``Coin`` (tests/contract_envs.py) changes one thing of the env's behaviour; the
gate must name the right invariant with a message that says what is wrong, and the healthy
``Coin`` passes the whole catalog with each of its action spaces (Discrete, Box,
MultiDiscrete): a false positive is as serious as a miss.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from contract_envs import (
    BuyDoesNothing,
    Coin,
    CoinAdapter,
    CoinConfig,
    ConstantOwnSeed,
    DrawsFromGlobalNumpy,
    EndsOneStepEarly,
    HidesPosition,
    IgnoresInitialPosition,
    NoGuardIndexError,
    NumpyActionIsHold,
    OnlyInt64IsAnAction,
    RefusesNumpyActions,
    ReportsCashAsValueAtReset,
    ReseedsActionSpaceUnseeded,
    ReseedsGlobalRandom,
    RunsOneStepLong,
    SellLeavesDust,
    factory,
)

from tradeguard.invariants import check_env_contract, check_trace, check_trading_env, record_episode
from tradeguard.trace import CRASH_ERRORS, TraceMeta

pytest_plugins = ["pytester"]

HOLDING = CoinConfig(initial_position=2.0)
SPACES = ("discrete", "box", "multidiscrete")
NEW = ("seeding-honored", "episode-length-as-configured", "step-after-end-refused", "allowed-actions-execute",
       "position-observable", "initial-state-consistent")


@dataclass(frozen=True)
class Bad:
    cls: type[Coin]
    config: CoinConfig
    invariant: str
    message: str  # a regex the first violation's message must match


BAD = [
    Bad(ReseedsActionSpaceUnseeded, CoinConfig(), "seeding-honored",
        r"two fresh envs, their action spaces seeded differently \(\d+ and \d+\) and reset with seed=None, sampled "
        r"the same 32 actions: reset\(seed=None\) reseeds the action space to a constant, .*"),
    Bad(ConstantOwnSeed, CoinConfig(), "seeding-honored",
        r"two fresh envs reset with seed=None have the same self.np_random state: reset\(seed=None\) seeds the env's "
        r"own generator with a constant, .*"),
    Bad(DrawsFromGlobalNumpy, CoinConfig(), "seeding-honored",
        r"reset\(seed=\d+\) and \d+ steps changed numpy's global generator \(np.random\): the env draws from or "
        r"reseeds the program's global generator .*"),
    Bad(ReseedsGlobalRandom, CoinConfig(), "seeding-honored",
        r"reset\(seed=\d+\) and \d+ steps changed Python's random module: .*"),
    Bad(EndsOneStepEarly, CoinConfig(), "episode-length-as-configured",
        r"the env's settings declare episodes of 10 steps \(TraceMeta.episode_length\); this episode ended after 9 "
        r"steps \(1 step short\), with no ruin to end it early. .*"),
    Bad(RunsOneStepLong, CoinConfig(), "episode-length-as-configured",
        r"the env's settings declare episodes of 10 steps \(TraceMeta.episode_length\); this episode ended after 11 "
        r"steps, 1 past it, with no ruin to end it early. .*"),
    Bad(NoGuardIndexError, CoinConfig(), "step-after-end-refused",
        r"step\(\) after the episode ended at step 9 raised IndexError: index 11 is out of bounds .*; an IndexError "
        r"is a crash by the default rule .*, never a refusal. That is a crash deep in the env's data, .*"),
    Bad(BuyDoesNothing, CoinConfig(), "allowed-actions-execute",
        r"BUY executed, not rejected and with no reason, but the position went 0 -> 0 units: a open action must "
        r"have opened the position. .*"),
    Bad(SellLeavesDust, CoinConfig(), "allowed-actions-execute",
        r"SELL executed, not rejected and with no reason, but the position went [\d.]+ -> [\d.]+ units: a close "
        r"action must have closed the position. .*"),
    Bad(IgnoresInitialPosition, HOLDING, "initial-state-consistent",
        r"the ledger at reset holds holdings 0 units where the settings give 2; .*equity [\d,.]+ where the env "
        r"reports [\d,.]+: .*|the ledger at reset holds holdings 0 units where the settings give 2: .*"),
    Bad(NumpyActionIsHold, CoinConfig(), "replay-determinism",
        r"seed \d+ and the same actions replayed on a second env given the actions as numpy integers and 0-d arrays, "
        r"int64 and also int32 and uint8 \(the forms action_space.sample\(\) and stable-baselines3's predict\(\) "
        r"return, all of which Discrete.contains accepts\) differ: .*"),
    Bad(OnlyInt64IsAnAction, CoinConfig(), "replay-determinism",
        r"seed \d+ and the same actions replayed on a second env given the actions as numpy integers and 0-d arrays, "
        r"int64 and also int32 and uint8 .* differ: .*"),
    Bad(RefusesNumpyActions, CoinConfig(), "replay-determinism",
        r"seed \d+ and the same actions replayed on a second env given the actions as numpy integers .* differ: "
        r"it raised TypeError: action must be an int, got int64 at step 0"),
    Bad(ReportsCashAsValueAtReset, HOLDING, "initial-state-consistent",
        r"the ledger at reset holds equity [\d,.]+ where the env reports 1,000.00: the episode does not start .*"),
]


def _gate(make: object, only: list[str], **kw: object) -> object:
    return check_trading_env(make, adapter=CoinAdapter(**kw), only=only, examples=30, max_steps=12, seed=3,  # type: ignore[arg-type]
                             database=None)


@pytest.mark.parametrize("bad", BAD, ids=[f"{b.invariant}:{b.cls.__name__}" for b in BAD])
def test_the_gate_catches_each_broken_coin(bad: Bad) -> None:
    report = _gate(factory(bad.cls, bad.config), [bad.invariant])
    (result,) = report.results  # type: ignore[attr-defined]
    assert result.status == "fail", report.format()  # type: ignore[attr-defined]
    assert result.violations[0].invariant == bad.invariant
    assert re.fullmatch(bad.message, result.violations[0].message), result.violations[0].message


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("config", [CoinConfig(), HOLDING], ids=["flat", "holding"])
def test_the_healthy_coin_passes_the_whole_catalog(space: str, config: CoinConfig) -> None:
    report = check_trading_env(factory(Coin, replace(config, space=space)), adapter=CoinAdapter(), examples=40,
                               max_steps=12, seed=4, database=None)
    assert report.passed and not report.warnings, report.format()
    statuses = {r.invariant.id: r.status for r in report.results}
    assert {i: statuses[i] for i in NEW} == dict.fromkeys(NEW, "pass"), statuses


@pytest.mark.parametrize("space", ["box", "multidiscrete"])
@pytest.mark.parametrize("bad", [b for b in BAD if b.invariant in ("seeding-honored", "episode-length-as-configured",
                                                                  "step-after-end-refused")],
                         ids=lambda b: b.cls.__name__)
def test_the_env_probes_catch_the_same_bugs_behind_box_and_multidiscrete_actions(space: str, bad: Bad) -> None:
    report = _gate(factory(bad.cls, replace(bad.config, space=space)), [bad.invariant])
    (result,) = report.results  # type: ignore[attr-defined]
    assert result.status == "fail", report.format()  # type: ignore[attr-defined]
    assert re.fullmatch(bad.message, result.violations[0].message), result.violations[0].message


def test_a_hidden_position_is_a_warning_and_can_be_declared() -> None:
    report = _gate(factory(HidesPosition), ["position-observable"])
    (result,) = report.results  # type: ignore[attr-defined]
    assert result.status == "warn" and report.passed, report.format()  # type: ignore[attr-defined]
    assert re.fullmatch(r"after step \d+ the episode holds [\d.]+ units and the same episode played with HOLD only "
                        r"holds 0, yet both observations are identical .*: the agent cannot see its own position. "
                        r"If the env hides it on purpose, declare TraceMeta\(hides_position=True\)",
                        result.violations[0].message), result.violations[0].message
    assert "WARN  position-observable" in report.format() and "1 warning" in report.format()  # type: ignore[attr-defined]
    declared = _gate(factory(HidesPosition), ["position-observable"], hides_position=True)
    (result,) = declared.results  # type: ignore[attr-defined]
    assert result.status == "not-applicable"
    assert "hides the position on purpose (TraceMeta.hides_position)" in result.note


class _ShowsPositionRounded(Coin):
    """The observation shows the position rounded to ``shown`` decimals and the cash to whole units;
    BUY buys ``bought`` units."""

    bought = 1e-40
    shown = 6

    def order(self, action: int, price: float) -> tuple[float, str | None]:
        if action == 1 and self.position == 0:
            return self.bought, None
        return super().order(action, price)

    def obs(self) -> np.ndarray:
        return np.array([self.prices[self.t], round(self.position, self.shown), round(self.cash),
                         self.config.length - self.t])


class _HidesAPositionWorthACent(_ShowsPositionRounded):
    bought, shown = 1e-4, 2  # 0.0001 units at ~100 (0.01 of a 1,000 account) shown as 0.0


def test_a_dust_position_is_flat_to_position_observable_but_a_real_one_hidden_is_not() -> None:
    # A float env whose buy leaves 1e-40 units (a new user's weight of 1.4e-45) holds nothing an
    # agent could act on: its value is zero within the precision of the account, as the
    # accounting invariants judge zero. A position worth a cent that the observation rounds away
    # is hidden.
    dust = _gate(factory(_ShowsPositionRounded), ["position-observable"])
    assert dust.results[0].status == "pass", dust.format()  # type: ignore[attr-defined]
    hidden = _gate(factory(_HidesAPositionWorthACent), ["position-observable"])
    (result,) = hidden.results  # type: ignore[attr-defined]
    assert result.status == "warn", hidden.format()  # type: ignore[attr-defined]
    assert "holds 0.0001 units" in result.violations[0].message


def test_a_refusal_is_what_the_adapter_declares_else_any_exception_but_a_crash() -> None:
    from tradeguard.invariants._contract import _refusal_or_crash

    meta = TraceMeta(env_id="x", action_names=("HOLD",), action_kinds=("hold",))
    assert _refusal_or_crash(RuntimeError("over"), meta, 5, 0) == []
    assert _refusal_or_crash(ValueError("episode over"), meta, 5, 0) == []
    for crash in (IndexError("i"), KeyError("k"), AttributeError("a"), TypeError("t"), ZeroDivisionError("z")):
        assert isinstance(crash, CRASH_ERRORS)
        (v,) = _refusal_or_crash(crash, meta, 5, 0)
        assert v.invariant == "step-after-end-refused" and type(crash).__name__ in v.message
    strict = replace(meta, refusal_errors=(EOFError,))
    assert _refusal_or_crash(EOFError(), strict, 5, 0) == []
    (v,) = _refusal_or_crash(RuntimeError("over"), strict, 5, 0)
    assert "the adapter declares refusal_errors=(EOFError,)" in v.message


def test_the_invariants_that_need_a_declaration_say_so() -> None:
    report = check_trading_env(factory(Coin), examples=5, max_steps=5, seed=0, only=list(NEW), database=None)
    notes = {r.invariant.id: (r.status, r.note) for r in report.results}
    assert notes["episode-length-as-configured"] == (
        "not-applicable", "the gym adapter: the trace declares no episode length (TraceMeta.episode_length)")
    assert notes["position-observable"] == ("not-applicable", "the gym adapter: does not supply position_after or legs")
    assert notes["seeding-honored"][0] == notes["step-after-end-refused"][0] == "pass"
    assert notes["initial-state-consistent"][0] == notes["allowed-actions-execute"][0] == "not-applicable"


def test_the_contract_probes_work_without_the_gate() -> None:
    """check_env_contract outside the gate's isolation: the process's own global generators are watched."""
    found = check_env_contract(factory(DrawsFromGlobalNumpy), [1, 0, 2], seed=0, adapter=CoinAdapter(),
                               only=["seeding-honored"])
    assert [v.invariant for v in found] == ["seeding-honored"]
    assert check_env_contract(factory(Coin), [1, 0, 2], seed=0, adapter=CoinAdapter()) == []
    assert check_env_contract(lambda: gym.make("CartPole-v1"), [0], seed=0, only=["seeding-honored"]) == []


def test_the_healthy_coin_really_trades_and_starts_holding() -> None:
    """The healthy twin is not vacuous: its episodes open and close positions, and it can start holding."""
    ep = record_episode(Coin(HOLDING), [2, 1, 0, 2], seed=0, adapter=CoinAdapter())
    assert [r.position_after > 0 for r in ep.trace] == [False, True, True, False]
    assert ep.trace[0].position_before == 2.0 and check_trace(ep.trace) == []


WARN_PLUGIN_TEST = '''
import sys
sys.path.insert(0, {tests!r})
from contract_envs import CoinAdapter, HidesPosition, factory
from tradeguard.invariants import invariant_suite

test_coin = invariant_suite(factory(HidesPosition), adapter=CoinAdapter(), only=["position-observable"])
'''


def test_the_pytest_plugin_passes_a_warning_and_shows_it(pytester: pytest.Pytester) -> None:
    from pathlib import Path

    pytester.makepyfile(test_user=WARN_PLUGIN_TEST.format(tests=str(Path(__file__).parent)))
    # In-process, tradeguard is imported already, so pytest warns that it cannot rewrite its
    # asserts (a fresh install does, a reused one may not): not the warning under test.
    result = pytester.runpytest("--tradeguard-profile", "fast", "--tradeguard-seed", "1", "--tradeguard-database",
                                "none", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*UserWarning: position-observable: after step * the agent cannot see its own position*"])


def test_the_bad_actions_sent_on_purpose_draw_no_warnings_on_the_users_terminal() -> None:
    # A Box env that checks its action with action_space.contains(): gymnasium warns "Casting
    # input x to numpy array" for every list tradeguard sends on purpose (180 lines for a new
    # user's env). The env's answer is the finding; the warning is noise, and it is kept back.
    import contextlib
    import warnings

    from contract_envs import Coin, CoinConfig

    box = CoinConfig(space="box")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        report = check_trading_env(factory(Coin, box), adapter=CoinAdapter(), only=["action-range-enforced"],
                                   examples=5, max_steps=3, seed=0, database=None)
    assert report.passed, report.format()
    assert [str(w.message) for w in seen if "Casting input" in str(w.message)] == []
    with warnings.catch_warnings(record=True) as direct:  # the env does warn when given a list
        warnings.simplefilter("always")
        env = Coin(box)
        env.reset(seed=0)
        with contextlib.suppress(Exception):
            env.step([0.5])
    assert any("Casting input" in str(w.message) for w in direct)


class _SlackAfterARefusal(Coin):
    """Refuses bad Box actions on a fresh instance; once it has refused one, the instance (even
    reset) takes anything as HOLD: state a refusal leaves behind, not a range bug."""

    refused = False

    def decode(self, action: Any) -> int:
        if self.refused:
            return 0
        try:
            return super().decode(action)
        except ValueError:
            self.refused = True
            raise


class _TakesInfinityAsHold(Coin):
    """Refuses every bad Box action but +inf, which it takes as HOLD: a real range bug."""

    def decode(self, action: Any) -> int:
        if isinstance(action, np.ndarray) and action.shape == (1,) and np.isposinf(action[0]):
            return 0
        return super().decode(action)


class _BrokenForGoodAfterARefusal(_TakesInfinityAsHold):
    """Takes +inf as HOLD (a real range bug); once it has refused an input, every step of the
    instance raises, even after reset(): a shared probe env would refuse +inf for that reason."""

    broken = False

    def decode(self, action: Any) -> int:
        if self.broken:
            raise RuntimeError("the env is broken")
        try:
            return super().decode(action)
        except ValueError:
            self.broken = True
            raise


def test_action_range_probes_share_an_env_but_a_finding_is_made_on_a_fresh_one() -> None:
    # The bad inputs are tried one after another on one env while it refuses them (an env can
    # take ~20 ms to build); an input it takes is tried again on a fresh env before it is
    # reported, so an earlier probe cannot cause a finding.
    from tradeguard.invariants._contract import check_action_range_enforced

    box = CoinConfig(space="box")
    assert check_action_range_enforced(factory(_SlackAfterARefusal, box), [], seed=0, adapter=CoinAdapter()) == []
    found = check_action_range_enforced(factory(_TakesInfinityAsHold, box), [], seed=0, adapter=CoinAdapter())
    assert len(found) == 1, found
    # An env that does not recover from a refusal gets a fresh env for every input after it.
    sticky = check_action_range_enforced(factory(_BrokenForGoodAfterARefusal, box), [], seed=0, adapter=CoinAdapter())
    assert [v.message.split(" (")[0] for v in sticky] == [v.message.split(" (")[0] for v in found]
    assert "inf" in found[0].message and "returned normally instead of raising" in found[0].message
    builds = []

    def counted() -> Coin:
        builds.append(1)
        return Coin(box)

    assert check_action_range_enforced(counted, [], seed=0, adapter=CoinAdapter()) == []
    assert len(builds) == 2  # one to read the space, one for every probe (it recovers after each refusal)


def _caught_by_the_checker(call: Any) -> BaseException:
    """``call()``'s exception as the gate catches it: from a frame of tradeguard's checker."""
    namespace: dict[str, Any] = {"__name__": "tradeguard.invariants._a_checker"}
    exec("def run(f):\n    try:\n        f()\n    except Exception as exc:\n        return exc\n", namespace)
    exc = namespace["run"](call)
    assert isinstance(exc, BaseException)
    return exc


def test_a_crash_is_located_in_the_envs_own_code(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    from tradeguard.invariants._model import raised_at

    # A user's env in a folder of theirs: its own line, not numpy's inside it.
    (tmp_path / "mine_env.py").write_text("import numpy as np\n\ndef step():\n    return np.linalg.inv(np.zeros((2, 2)))\n")
    # An env installed as a package: the package's own line, not numpy's.
    site = tmp_path / "lib" / "site-packages"
    site.mkdir(parents=True)
    (site / "installed_env.py").write_text("import numpy as np\n\n\ndef step():\n    return np.linalg.inv(np.zeros((2, 2)))\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for name in ("mine_env", "installed_env"):
        sys.modules.pop(name, None)
    mine, installed = importlib.import_module("mine_env"), importlib.import_module("installed_env")
    assert raised_at(_caught_by_the_checker(mine.step)) == "in step() at mine_env.py:4"
    assert raised_at(_caught_by_the_checker(installed.step)) == "in step() at installed_env.py:5"
    assert raised_at(ValueError("never raised")) == ""
    # A working directory that is gone (relpath cannot be taken) still gives a location.
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert raised_at(_caught_by_the_checker(mine.step)).startswith("in step() at ")


class _BuysALot(Coin):
    """BUY buys one lot of 2 units when the cash covers it with its fee, else INSUFFICIENT_CASH."""

    lot = 2.0
    buffer = 1.0  # the buggy twin asks for 20% more than the order costs, and blames the cash

    def order(self, action: int, price: float) -> tuple[float, str | None]:
        if action == 1 and self.position == 0:
            cost = self.lot * price * (1.0 + self.config.fee_rate)
            return (0.0, "INSUFFICIENT_CASH") if self.cash < self.buffer * cost else (self.lot, None)
        return super().order(action, price)


class _AsksForABuffer(_BuysALot):
    buffer = 1.2


class _LotAdapter(CoinAdapter):
    def meta(self, env: Any, *, seed: int | None) -> TraceMeta:
        from tradeguard.trace import FeeSchedule

        return replace(super().meta(env, seed=seed), min_order=_BuysALot.lot,
                       fee_schedule=FeeSchedule(rate=env.unwrapped.config.fee_rate))


def test_insufficient_cash_is_judged_against_the_declared_smallest_order() -> None:
    # The seed's agent never bought; one way an env makes that happen is refusing affordable
    # buys "for want of cash". With the smallest order and the fee schedule declared, the
    # reason is checked against the ledger.
    near = CoinConfig(cash=220.0)  # one lot at ~100 costs ~200.2: affordable, but not with a 20% buffer
    healthy = check_trading_env(factory(_BuysALot, near), adapter=_LotAdapter(), examples=40, max_steps=8, seed=1,
                                database=None)
    assert healthy.passed and not healthy.warnings, healthy.format()
    assert {r.invariant.id: r.status for r in healthy.results}["rejection-reason-holds"] == "pass"
    broken = check_trading_env(factory(_AsksForABuffer, near), adapter=_LotAdapter(), examples=40, max_steps=8,
                               seed=1, database=None, only=["rejection-reason-holds"])
    (result,) = broken.results
    assert result.status == "fail", broken.format()
    assert re.fullmatch(r"BUY was rejected INSUFFICIENT_CASH with cash 220\.00, but its smallest order, 2 units at "
                        r"[\d.]+ plus a fee of 0\.\d+, costs [\d.]+", result.violations[0].message), \
        result.violations[0].message
    assert result.counterexample is not None and len(result.counterexample.actions) <= 2
    # Without the declaration the reason is not judged: the same twin passes.
    undeclared = check_trading_env(factory(_AsksForABuffer, near), adapter=CoinAdapter(), examples=40, max_steps=8,
                                   seed=1, database=None, only=["rejection-reason-holds"])
    assert undeclared.results[0].status == "pass"


def test_min_order_must_be_a_positive_number() -> None:
    from tradeguard.errors import InvalidConfig

    base = {"env_id": "x", "action_names": ("HOLD", "BUY"), "action_kinds": ("hold", "open")}
    assert TraceMeta(**base, min_order=0.0001).min_order == 0.0001
    for bad in (0, -1.0, float("nan"), True, "1"):
        with pytest.raises(InvalidConfig, match=r"min_order=.*expected the fewest units a buy can trade, > 0"):
            TraceMeta(**base, min_order=bad)  # type: ignore[arg-type]
