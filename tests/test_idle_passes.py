"""A pass that had nothing to check says so (CatalogReport.idle, a note, a summary line).

An invariant can apply to an env and still have nothing to judge on it: no failed-action
penalty is declared, no action is disabled, the reward claims nothing. Reporting such a pass
like any other overstates what the gate checked; these tests hold the report to saying which
passes were idle and why, and to not calling a pass idle when some env it ran on (one built
with drawn settings) gave it something to check.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tradeguard.env import EnvConfig, TradingEnv
from tradeguard.invariants import CATALOG, check_trading_env

DOC = Path(__file__).resolve().parents[1] / "docs" / "adapters.md"
_NS: dict[str, Any] = {"__name__": "adapters_md"}
exec(compile(re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0], str(DOC), "exec"), _NS)
CoinEnv: Any = _NS["CoinEnv"]
CoinAdapter: Any = _NS["CoinAdapter"]


def test_the_coin_envs_idle_passes_are_named_with_their_reasons() -> None:
    report = check_trading_env(CoinEnv, adapter=CoinAdapter(), examples=10, max_steps=3, seed=0)
    assert report.passed
    assert [r.invariant.id for r in report.idle] == ["penalty-matches-rejections", "disabled-actions-never-execute"]
    penalty = report.result("penalty-matches-rejections")
    assert penalty.status == "pass" and penalty.idle
    assert penalty.note == "nothing to check: no failed-action penalty is declared (TraceMeta.penalty_component)"
    assert report.result("disabled-actions-never-execute").note == (
        "nothing to check: no action is disabled (TraceMeta.disabled_actions)")
    # A pass that checked something is not idle, and has no such note.
    fees = report.result("fees-match-schedule")
    assert fees.status == "pass" and not fees.idle and fees.note == ""
    data = {r["id"]: r for r in report.as_dict()["invariants"]}
    assert data["penalty-matches-rejections"]["idle"] is True and "idle" not in data["fees-match-schedule"]
    assert "  pass  penalty-matches-rejections" in report.format()
    one = check_trading_env(CoinEnv, adapter=CoinAdapter(), examples=5, max_steps=3, seed=0,
                            only=["disabled-actions-never-execute", "fees-match-schedule"])
    assert one.format().splitlines()[-1] == ("1 pass had nothing to check on this env "
                                             "(disabled-actions-never-execute): its note says why.")


def test_a_declared_penalty_and_pnl_claim_are_checked_not_idle() -> None:
    report = check_trading_env(lambda: TradingEnv(config=EnvConfig(episode_length=4)), examples=5, max_steps=3,
                               seed=0, only=["penalty-matches-rejections", "reward-consistent-with-pnl",
                                             "disabled-actions-never-execute", "no-add-without-profitable-position"])
    assert report.statuses == {"penalty-matches-rejections": "pass", "reward-consistent-with-pnl": "pass",
                               "disabled-actions-never-execute": "pass", "no-add-without-profitable-position": "pass"}
    # tradeguard's default config disables nothing: the one idle pass
    assert [r.invariant.id for r in report.idle] == ["disabled-actions-never-execute"]


def test_drawn_settings_that_give_an_idle_invariant_something_to_check_make_it_a_real_pass() -> None:
    """Trading-v0's drawn configs disable actions; its default one does not."""
    only = ["disabled-actions-never-execute"]
    make = lambda: TradingEnv(config=EnvConfig(episode_length=4))  # noqa: E731
    plain = check_trading_env(make, examples=20, max_steps=3, seed=0, only=only)
    assert plain.result(only[0]).idle
    drawn = check_trading_env(TradingEnv, examples=60, max_steps=3, seed=0, only=only, settings="adapter")
    result = drawn.result(only[0])
    assert result.status == "pass" and not result.idle and drawn.idle == ()


def test_each_idle_reason_is_none_exactly_when_the_header_gives_the_check_something() -> None:
    meta = TradingEnv(config=EnvConfig(episode_length=4)).trace_meta
    by_id = {i.id: i for i in CATALOG}
    assert by_id["penalty-matches-rejections"].idle_reason(meta) is None
    assert by_id["reward-consistent-with-pnl"].idle_reason(meta) is None
    assert by_id["no-add-without-profitable-position"].idle_reason(meta) is None  # ADD_POSITION is an "add"
    assert by_id["disabled-actions-never-execute"].idle_reason(meta) is not None
    changed = meta.__class__(**{**{f: getattr(meta, f) for f in meta.__dataclass_fields__},
                                "penalty_component": None, "reward_is_pnl": False,
                                "disabled_actions": frozenset({3})})
    assert by_id["penalty-matches-rejections"].idle_reason(changed) is not None
    assert by_id["reward-consistent-with-pnl"].idle_reason(changed) is not None
    assert by_id["disabled-actions-never-execute"].idle_reason(changed) is None
    assert all(i.idle_reason(meta) is None for i in CATALOG if i.idle is None)
