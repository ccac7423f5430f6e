"""The HTML reports, opened and read back: verdict, tables, every chart a valid PNG, nothing fetched."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tradeguard._reports import (
    DATA_FILE,
    REPORT_FILE,
    write_check_report,
    write_policy_audit_report,
    write_reward_audit_report,
)
from tradeguard.env import Action, Condition, EnvConfig, TradingEnv, parse_policy
from tradeguard.errors import InvalidConfig
from tradeguard.invariants import CATALOG, CatalogReport, check_trading_env, invariant_ids
from tradeguard.invariants.audit import (
    POLICY_FINDING_KINDS,
    REWARD_FINDING_KINDS,
    audit_policy,
    audit_reward,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REWARD_KINDS: tuple[str, ...] = REWARD_FINDING_KINDS
POLICY_KINDS: tuple[str, ...] = POLICY_FINDING_KINDS


class Page(HTMLParser):
    """What a reader sees: the verdict, the tables (by class), the images, the text; and every URL."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.verdict = ""
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[tuple[str, str]] = []
        self.urls: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self._in_verdict = False
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "div" and a.get("id") == "verdict":
            self._in_verdict = True
        elif tag == "table":
            self._table = a.get("class") or f"table-{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.images.append((a.get("src") or "", a.get("alt") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            self._in_verdict = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_verdict:
            self.verdict += data
        if self._cell is not None:
            self._cell.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())

    def column(self, table: str, name: str) -> dict[str, str]:
        """``{first cell: cell under name}`` for each body row of ``table``."""
        head, *rows = self.tables[table]
        i = head.index(name)
        return {r[0]: r[i] for r in rows}


def open_report(index: Path) -> Page:
    """Read the written report as a person would, checking it is self-contained and every chart loads."""
    from PIL import Image

    assert index.name == REPORT_FILE and index.is_file()
    page = Page(index)
    assert "script" not in page.tags, "the report must be readable without JavaScript"
    for url in page.urls:
        assert "://" not in url and not url.startswith("//"), f"the report fetches {url!r} from the network"
    for src, alt in page.images:
        png = index.parent / src
        assert png.parent == index.parent and png.is_file(), f"{src} is referenced but missing"
        data = png.read_bytes()
        assert data[:8] == PNG_SIGNATURE, f"{src} is not a PNG"
        with Image.open(png) as img:
            img.load()
            assert img.format == "PNG" and img.width > 100 and img.height > 100, (src, img.size)
        assert alt, f"{src} has no alt text"
    assert (index.parent / DATA_FILE).is_file()
    return page


def sell_all_without_position() -> Any:
    from broken_envs import IgnoringMachine

    config = EnvConfig(episode_length=8)

    def make() -> TradingEnv:
        env = TradingEnv(config=config)
        env.machine = IgnoringMachine(config, Action.SELL_ALL, Condition.IN_POSITION)
        return env

    return make


@pytest.fixture(scope="module")
def failing_check() -> tuple[CatalogReport, Any]:
    make = sell_all_without_position()
    return check_trading_env(make, examples=20, max_steps=8, seed=0, database=None), make


@pytest.fixture(scope="module")
def reward_report() -> Any:
    return audit_reward("v10.1", budget=10, max_examples=20, seed=0)


@pytest.fixture(scope="module")
def policy_report() -> Any:
    return audit_policy(parse_policy("constant:SELL_PARTIAL"), scenario="v10", episodes=1, episode_length=60)


# --------------------------------------------------------------------------- check
def test_check_report_shows_the_verdict_every_invariant_and_the_worst_counterexample(
    failing_check: tuple[CatalogReport, Any], tmp_path: Path
) -> None:
    report, make = failing_check
    assert [r.invariant.id for r in report.failures] == ["no-sell-without-position"]
    page = open_report(write_check_report(report, tmp_path / "check", make_env=make))

    # Every invariant but matches-reference, left out of a run without a reference env.
    checked = [i for i in invariant_ids() if i != "matches-reference"]
    assert len(checked) == len(CATALOG) - 1
    assert page.verdict.startswith("FAIL") and f"1 of {len(checked)} invariants failed" in page.verdict
    status = page.column("invariants", "status")
    assert list(status) == checked
    assert status["no-sell-without-position"] == "fail"
    # tradeguard's env supplies everything but the optional ledger lines, and declares no fee
    # schedule, limits, leverage or financing: exactly those invariants are not applicable.
    declared_only = {"metrics-match-trace", "fees-match-schedule", "position-within-limits", "leverage-within-limit",
                     "financing-as-declared", "reported-equity-matches-ledger", "executed-within-requested"}
    assert {i for i, s in status.items() if s == "not-applicable"} == declared_only
    assert {s for i, s in status.items() if i != "no-sell-without-position" and i not in declared_only} == {"pass"}
    examples = page.column("invariants", "examples")
    assert examples["no-sell-without-position"] == str(report.results[0].examples)
    first = page.column("invariants", "first violation (or note)")["no-sell-without-position"]
    assert first.startswith("step 0, seed") and "SELL_ALL executed with position 0 units" in first

    assert sorted(src for src, _ in page.images) == ["distribution.png", "equity-worst.png"]
    text = page.all_text
    assert "minimal counterexample: seed" in text and "['SELL_ALL']" in text
    assert "Replayed on the env that was checked." in text
    assert "replay: tradeguard run" in text
    assert json.loads((tmp_path / "check" / DATA_FILE).read_text()) == json.loads(json.dumps(report.as_dict(), default=str))


def test_check_report_from_json_of_a_passing_run_has_no_charts_and_says_why(tmp_path: Path) -> None:
    report = check_trading_env(lambda: TradingEnv(config=EnvConfig(episode_length=6)), examples=3, max_steps=6, seed=0)
    data = json.loads(json.dumps(report.as_dict()))
    page = open_report(write_check_report(data, tmp_path))
    assert page.verdict.startswith("PASS")
    assert list(page.column("invariants", "status")) == [i for i in invariant_ids() if i != "matches-reference"]
    assert page.images == []
    assert "No invariant failed, so there is no counterexample to replay or chart." in page.all_text


def test_every_failure_gets_its_chart_and_rewriting_removes_the_earlier_charts(tmp_path: Path) -> None:
    from broken_envs import CONFIG, OutOfSpace, OverspendMachine

    def make() -> OutOfSpace:
        # Two bugs that show on any episode with a buy: overspending (negative cash) and
        # an observation out of its space once in a position.
        env = OutOfSpace(config=CONFIG)
        env.machine = OverspendMachine(CONFIG)
        return env

    report = check_trading_env(make, only=["no-negative-position-or-cash", "self-financing", "observation-in-space"],
                               examples=20, max_steps=6, seed=0, database=None)
    failed = [r.invariant.id for r in report.failures]
    assert failed == ["no-negative-position-or-cash", "observation-in-space"]
    page = open_report(write_check_report(report, tmp_path))
    assert sorted(src for src, _ in page.images) == ["distribution.png", "equity-1.png", "equity-worst.png"]
    assert page.column("invariants", "status") == {
        "no-negative-position-or-cash": "fail", "self-financing": "pass", "observation-in-space": "fail"}
    # Without make_env the replay runs on the reference env, and the page says so.
    assert "Replayed on tradeguard's TradingEnv with the default scenario" in page.all_text

    mine = tmp_path / "team-logo.png"
    mine.write_bytes(PNG_SIGNATURE)
    passing = {**report.as_dict(), "passed": True, "invariants": [
        {**i, "status": "pass", "violations": []} for i in report.as_dict()["invariants"]]}
    write_check_report(passing, tmp_path)
    assert not [p.name for p in tmp_path.glob("equity-*.png")] and not (tmp_path / "distribution.png").exists()
    assert mine.exists(), "a report must only remove the charts it writes"


def test_a_counterexample_the_env_crashes_on_is_replayed_up_to_the_crash(tmp_path: Path) -> None:
    from broken_envs import CrashingMachine, env_with

    make = env_with(CrashingMachine)
    report = check_trading_env(make, only=["valid-steps-do-not-raise"], examples=30, max_steps=6, seed=0, database=None)
    assert not report.passed
    page = open_report(write_check_report(report, tmp_path, make_env=make))
    assert page.column("invariants", "status") == {"valid-steps-do-not-raise": "fail"}
    assert "The env raised ZeroDivisionError: division by zero in the close-out of a position" in page.all_text


# --------------------------------------------------------------------------- reward audit
def test_reward_audit_report_lists_every_finding_kind_and_draws_both_optima(reward_report: Any, tmp_path: Path) -> None:
    assert not reward_report.passed
    page = open_report(write_reward_audit_report(reward_report, tmp_path))
    assert page.verdict.startswith("FAIL") and "rejection-in-optimum" in page.verdict
    status = page.column("kinds", "status")
    assert list(status) == list(REWARD_KINDS)
    for kind in REWARD_KINDS:
        assert status[kind] == ("found" if kind in reward_report.kinds else "not found")
    srcs = [src for src, _ in page.images]
    assert srcs[:3] == ["distribution.png", "equity-worst.png", "market-worst.png"]
    with_market = [f for f in reward_report.findings if f.counterexample is not None]
    assert srcs[3:] == [f"market-{i}.png" for i, f in enumerate(reward_report.findings) if f.counterexample is not None]
    assert with_market, "v10.1 must show at least one market"
    # The double bind, step by step: the shaped optimum predicts a SELL the machine refuses.
    rows = page.tables["sequence"]
    assert rows[0][:4] == ["step", "price", "shaped-optimal (reward)", "PnL-optimal (reward)"]
    assert rows[1][2].startswith("SELL_PARTIAL (rejected: NO_POSITION)")
    assert "the oracle and the env disagree" not in page.all_text


def test_reward_audit_report_from_json_replays_on_the_named_scenario_and_flags_a_disagreement(
    reward_report: Any, tmp_path: Path
) -> None:
    data = json.loads(json.dumps(reward_report.as_dict()))
    cx = data["findings"][0]["counterexample"]
    cx["shaped_optimal"]["executed"] = list(cx["shaped_optimal"]["actions"])  # an oracle that ignores rejections
    page = open_report(write_reward_audit_report(data, tmp_path))
    assert list(page.column("kinds", "status")) == list(REWARD_KINDS)
    assert "the oracle and the env disagree" in page.all_text
    assert "Replays use the default machine" not in page.all_text  # v10.1 is shipped: its machine is used


# --------------------------------------------------------------------------- policy audit
def test_policy_audit_report_shows_phantom_activity_and_the_invariant_table(policy_report: Any, tmp_path: Path) -> None:
    page = open_report(write_policy_audit_report(policy_report, tmp_path))
    assert page.verdict.startswith("FAIL")
    status = page.column("kinds", "status")
    assert set(status) == set(POLICY_KINDS)
    assert {k for k, s in status.items() if s == "found"} == {"single-action-collapse", "rejection-collapse", "phantom-activity"}
    inv = page.column("invariants", "status")
    assert list(inv) == list(invariant_ids())
    assert "fail" not in inv.values()
    assert inv["replay-determinism"] == "not-applicable"
    assert [src for src, _ in page.images] == ["distribution.png", "equity-worst.png"]
    dist = page.tables["family-distribution"]
    assert [dist[5][0], dist[5][-1]] == ["SELL_PARTIAL", "100.0% / 0.0%"]
    assert [dist[1][0], dist[1][-1]] == ["HOLD", "0.0% / 100.0%"]
    assert "60 steps, 60 rejected" in page.all_text


def test_policy_audit_report_from_json_leaves_out_the_equity_chart_and_says_so(policy_report: Any, tmp_path: Path) -> None:
    data = json.loads(json.dumps(policy_report.as_dict()))
    page = open_report(write_policy_audit_report(data, tmp_path))
    assert [src for src, _ in page.images] == ["distribution.png"]
    assert "carries no traces" in page.all_text
    assert set(page.column("invariants", "status").values()) == {"no violation seen", "not-applicable"}


# --------------------------------------------------------------------------- contract
def test_bad_input_is_refused_clearly(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("")
    with pytest.raises(InvalidConfig, match=r"report directory .*file' is a file; give a directory"):
        write_check_report({"env": "x", "passed": True, "invariants": []}, afile)
    with pytest.raises(InvalidConfig, match=r"report=int object; expected a CatalogReport or its JSON form"):
        write_check_report(3, tmp_path)
    with pytest.raises(InvalidConfig, match=r"the report is missing 'findings'; expected a PolicyAuditReport"):
        write_policy_audit_report({"passed": True, "action_distribution_predicted": {}, "action_distribution_executed": {}}, tmp_path)


def test_writing_a_report_leaves_matplotlib_global_state_alone(policy_report: Any, tmp_path: Path) -> None:
    import sys

    import matplotlib

    backend = matplotlib.get_backend()
    rc = dict(matplotlib.rcParams)
    had_pyplot = "matplotlib.pyplot" in sys.modules
    write_policy_audit_report(policy_report, tmp_path)
    assert matplotlib.get_backend() == backend
    assert dict(matplotlib.rcParams) == rc
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot


# --------------------------------------------------------------------------- the commands
def test_the_three_commands_write_their_report_with_report_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tradeguard._cli import main

    assert main(["check", "--scenario", "v10", "--examples", "3", "--max-steps", "6", "--database", "none",
                 "--json", "--report", str(tmp_path / "check")]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True  # --json output stays clean
    assert open_report(tmp_path / "check" / REPORT_FILE).verdict.startswith("PASS")

    assert main(["audit-reward", "--scenario", "v10.1", "--budget", "5", "--max-examples", "10",
                 "--report", str(tmp_path / "reward")]) == 1
    assert open_report(tmp_path / "reward" / REPORT_FILE).verdict.startswith("FAIL")

    assert main(["audit-policy", "--policy", "constant:SELL_PARTIAL", "--scenario", "v10", "--episodes", "1",
                 "--episode-length", "20", "--report", str(tmp_path / "policy")]) == 1
    page = open_report(tmp_path / "policy" / REPORT_FILE)
    assert page.column("kinds", "status")["phantom-activity"] == "found"
    assert f"report: {tmp_path / 'policy' / REPORT_FILE}" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["_check", "_reward", "_policy"])
def test_docstring_examples_run(name: str) -> None:
    import doctest
    import importlib

    module = importlib.import_module(f"tradeguard._reports.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_a_counterexample_shows_its_market_in_currency_as_the_ledger_lines_do() -> None:
    # A new user read "on prices [10000, ...]" beside ledger lines at 100.00: the market is in
    # minor units; the text shows currency, the data keeps the integers to replay with.
    from tradeguard.invariants._gate_report import Counterexample

    cx = Counterexample(actions=(1,), action_names=("BUY",), masked=False, market=(10_000, 10_150), seed=0,
                        minor_unit=0.01)
    assert str(cx) == "seed 0, actions ['BUY'] on prices [100.00, 101.50]"
    assert cx.as_dict()["market"] == [10_000, 10_150] and cx.as_dict()["minor_unit"] == 0.01
    quarter = Counterexample(actions=(1,), action_names=("BUY",), masked=False, market=(401, 402), seed=0,
                             minor_unit=0.25)
    assert str(quarter).endswith("on prices [100.25, 100.50]")  # the decimals of the unit, not of its log10
    whole = Counterexample(actions=(1,), action_names=("BUY",), masked=False, market=(7, 8), seed=0, minor_unit=1.0)
    assert str(whole).endswith("on prices [7, 8]")
    unknown = Counterexample(actions=(1,), action_names=("BUY",), masked=False, market=(7, 8), seed=0)
    assert str(unknown).endswith("on prices [7, 8]") and "minor_unit" not in unknown.as_dict()
