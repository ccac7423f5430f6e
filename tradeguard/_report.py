"""HTML reports of the gate and the audits: the verdict, tables and plots a person can read.

Each ``write_*_report`` function writes a directory a browser opens without a
network: ``index.html`` (inline CSS, no JavaScript, no CDN), the PNG charts it shows
(referenced by relative paths), and ``report.json``, the data the page was made from.
CI can upload the directory as an artifact; anyone can read the verdict without the
terminal.

The charts:

- predicted vs executed action distributions, side by side: the chart that shows at
  a glance an agent that "sells all day" while nothing executes (the seed's Bug #1);
- an equity curve over the price path with buys, sells and rejected actions marked,
  for the worst counterexample (rebuilt by replaying it through the env);
- for the reward audit, each counterexample market with the shaped-optimal and the
  PnL-optimal action sequences drawn on it.

Every function takes the report object (:class:`~tradeguard.invariants.CatalogReport`,
``RewardAuditReport``, ``PolicyAuditReport``) or its JSON form (``as_dict()`` /
``as_dict()``, e.g. read back from ``--json`` output). The object carries more than
its JSON: from a dict, the policy report has no traces (so no equity chart) and the
reward report replays on the scenario its name designates.

matplotlib is needed (``pip install 'tradeguard[report]'``); it is imported when a
report is written, never at import, and never through ``pyplot``: the importing
program's backend and global state are left alone.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import html
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from tradeguard.errors import InvalidConfig
from tradeguard.trace import Trace

__all__ = [
    "DATA_FILE",
    "REPORT_FILE",
    "write_check_report",
    "write_policy_audit_report",
    "write_reward_audit_report",
]

REPORT_FILE = "index.html"
"""The page each report writes into its directory."""
DATA_FILE = "report.json"
"""The report's data, beside the page (the ``--json`` form)."""

_OWN_CHARTS = ("distribution.png", "equity-*.png", "market-*.png")
"""The file names of the charts a report writes (and removes from an earlier report)."""
_MAX_DETAILED = 8
"""Failures (or findings) shown in full, each with its own chart; the table lists all."""
_MAX_VIOLATIONS = 5
"""Violations shown per failing invariant (the table and report.json have the count)."""

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
h3{font-size:1.05em;margin-top:1.5em}
.verdict{font-size:1.25em;font-weight:bold;padding:.6em 1em;border-radius:6px;margin:1em 0}
.verdict.pass{background:#e3f4e6;color:#14532d;border:1px solid #86c597}
.verdict.fail{background:#fde7e7;color:#7f1d1d;border:1px solid #e59a9a}
.meta{color:#555;font-size:.92em}.explain{color:#444}
table{border-collapse:collapse;width:100%;font-size:.9em;margin:.8em 0}
th,td{border:1px solid #ddd;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{font-weight:bold;white-space:nowrap}.s-pass{color:#15803d}.s-fail{color:#b91c1c}
.s-na{color:#6b7280}.s-warn{color:#b45309}
code,pre{font-family:SFMono-Regular,Consolas,Menlo,monospace;font-size:.85em}
pre{background:#f7f7f7;border:1px solid #e5e5e5;padding:.6em;overflow-x:auto;white-space:pre}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0}
.small{font-size:.85em;color:#555}footer{margin-top:3em;color:#777;font-size:.85em}
"""

_STATUS_CLASS = {
    "pass": "s-pass",
    "fail": "s-fail",
    "FAIL": "s-fail",
    "found": "s-fail",
    "error": "s-fail",
    "warning": "s-warn",
    "not-applicable": "s-na",
    "not found": "s-pass",
    "ignored": "s-na",
    "no violation seen": "s-pass",
}


# --------------------------------------------------------------------------- page
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


class _Page:
    """One report page: a title, a verdict, then sections of explanation, tables and charts."""

    def __init__(self, directory: Path, title: str) -> None:
        self.directory = directory
        self.title = title
        self.parts: list[str] = []
        self.images: list[str] = []

    def verdict(self, passed: bool, text: str) -> None:
        cls = "pass" if passed else "fail"
        self.parts.append(f'<div class="verdict {cls}" id="verdict">{"PASS" if passed else "FAIL"}: {_e(text)}</div>')

    def meta(self, lines: Sequence[str]) -> None:
        self.parts.append('<p class="meta">' + "<br>".join(_e(s) for s in lines) + "</p>")

    def section(self, heading: str, explain: str, anchor: str = "", level: int = 2) -> None:
        ident = f' id="{_e(anchor)}"' if anchor else ""
        self.parts.append(f"<h{level}{ident}>{_e(heading)}</h{level}>")
        if explain:
            self.parts.append(f'<p class="explain">{_e(explain)}</p>')

    def text(self, text: str, cls: str = "") -> None:
        attr = f' class="{cls}"' if cls else ""
        self.parts.append(f"<p{attr}>{_e(text)}</p>")

    def pre(self, text: str) -> None:
        self.parts.append(f"<pre>{_e(text)}</pre>")

    def table(self, head: Sequence[str], rows: Sequence[Sequence[Any]], *, cls: str = "",
              status_col: int | None = None, num_cols: Sequence[int] = ()) -> None:
        out = [f'<table class="{cls}">' if cls else "<table>", "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
        for row in rows:
            cells = []
            for i, cell in enumerate(row):
                if i == status_col:
                    c = _STATUS_CLASS.get(str(cell), "")
                    cells.append(f'<td class="status {c}">{_e(cell)}</td>')
                elif i in num_cols:
                    cells.append(f'<td class="num">{_e(cell)}</td>')
                else:
                    cells.append(f"<td>{_e(cell)}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table>")
        self.parts.append("\n".join(out))

    def image(self, name: str, alt: str, draw: Callable[[Path], None]) -> None:
        """Draw a chart into ``name`` (a PNG in the report's directory) and show it."""
        draw(self.directory / name)
        self.images.append(name)
        self.parts.append(f'<img src="{_e(name)}" alt="{_e(alt)}">')

    def render(self, footer: str) -> str:
        body = "\n".join(self.parts)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{_e(self.title)}</h1>\n{body}\n<footer>{_e(footer)}</footer>\n</body>\n</html>\n"
        )


def _prepare(directory: str | os.PathLike[str]) -> Path:
    from tradeguard._plots import require_matplotlib

    require_matplotlib()
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise InvalidConfig(
            f"report directory {str(path)!r} is a file; give a directory (it is created if missing)."
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidConfig(f"cannot create the report directory {str(path)!r}: {exc}.") from None
    for pattern in _OWN_CHARTS:  # an earlier report's charts must not linger beside this one
        for old in path.glob(pattern):
            old.unlink()
    return path


def _finish(page: _Page, data: Mapping[str, Any], what: str) -> Path:
    from tradeguard import __version__

    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    footer = (
        f"{what} written by tradeguard {__version__} on {now}. The data behind this page is "
        f"{DATA_FILE}, beside it (the command's --json output)."
    )
    (page.directory / DATA_FILE).write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    out = page.directory / REPORT_FILE
    out.write_text(page.render(footer), encoding="utf-8")
    return out


def _as_data(report: Any, what: str, required: Sequence[str]) -> dict[str, Any]:
    """The report's JSON form, from the object or from the dict itself."""
    if isinstance(report, Mapping):
        data = dict(report)
    else:
        method = getattr(report, "as_dict", None)
        if not callable(method):
            raise InvalidConfig(
                f"report={type(report).__name__} object; expected a {what} or its JSON form "
                "(a dict from as_dict() or --json)."
            )
        data = dict(method())
    missing = [k for k in required if k not in data]
    if missing:
        raise InvalidConfig(
            f"the report is missing {', '.join(repr(k) for k in missing)}; expected a {what} or "
            "its JSON form (as_dict(), or the command's --json output)."
        )
    return data



def _pct(x: float) -> str:
    return f"{x:.1%}"


def _money(minor: int, unit: float) -> str:
    decimals = max(0, -math.floor(math.log10(unit) + 1e-9)) if unit > 0 else 2
    return f"{minor * unit:,.{decimals}f}"


def _counts_to_shares(names: Sequence[str], actions: Sequence[str]) -> list[float]:
    n = len(actions)
    return [sum(a == name for a in actions) / n if n else 0.0 for name in names]


def _distribution_of(page: _Page, name: str, trace: Trace, title: str) -> None:
    from tradeguard._plots import distribution_png

    names = list(trace.meta.action_names)
    predicted = [trace.meta.action_name(r.predicted) for r in trace.records]
    executed = [trace.meta.action_name(r.executed) for r in trace.records]
    rejected = sum(bool(r.rejected) for r in trace.records) / max(1, len(trace.records))
    page.image(
        name,
        f"{title}: predicted vs executed action distribution",
        lambda p: distribution_png(
            p, names, _counts_to_shares(names, predicted), _counts_to_shares(names, executed),
            rejected=rejected, title=title, total=len(trace.records),
        ),
    )


# --------------------------------------------------------------------------- check
def write_check_report(
    report: Any,
    directory: str | os.PathLike[str],
    *,
    make_env: Callable[[], Any] | None = None,
    adapter: Any = None,
    timeout: float = 10.0,
) -> Path:
    """Write the gate's report (``tradeguard check``) as an HTML page with charts.

    The page shows the verdict, the invariant table (id, status, examples, first
    violation), and, when an invariant failed, the worst counterexample (the first
    failing invariant in catalog order: the seed's three come first) replayed into a
    trace: its predicted vs executed actions and its equity over the price path with
    buys, sells and rejections marked. Every other failure follows with its own
    equity chart, violations and replay command.

    Args:
        report: A :class:`~tradeguard.invariants.CatalogReport`, or its ``as_dict()``
            (what ``tradeguard check --json`` prints).
        directory: Where to write ``index.html``, the PNGs and ``report.json``;
            created if missing. Earlier PNGs in it are removed.
        make_env: The factory the gate checked, to replay counterexamples on the env
            that failed (default: tradeguard's ``TradingEnv`` with the default
            scenario, sized to the counterexample; the page says which was used).
        adapter: The adapter the gate used (default: chosen for the env).
        timeout: Seconds one replay may take before it is abandoned, > 0.

    Returns:
        The path of ``index.html``.

    Raises:
        InvalidConfig: matplotlib is missing, ``directory`` is a file, or ``report``
            is neither a CatalogReport nor its JSON form.

    Example:
        >>> import tempfile
        >>> from tradeguard.env import EnvConfig, TradingEnv
        >>> from tradeguard.invariants import check_trading_env
        >>> r = check_trading_env(lambda: TradingEnv(config=EnvConfig(episode_length=6)),
        ...                       examples=3, max_steps=6, seed=0)
        >>> write_check_report(r, tempfile.mkdtemp()).name
        'index.html'
    """
    data = _as_data(report, "CatalogReport", ("env", "passed", "invariants"))
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise InvalidConfig(f"timeout={timeout!r}; expected a number of seconds > 0.")
    directory = _prepare(directory)
    invs: list[Mapping[str, Any]] = list(data["invariants"])
    failed = [i for i in invs if i.get("status") == "fail"]
    passed = sum(i.get("status") == "pass" for i in invs)
    na = sum(i.get("status") == "not-applicable" for i in invs)
    page = _Page(directory, f"tradeguard check: {data['env']}")
    if data["passed"]:
        page.verdict(True, f"every applicable invariant held ({passed} passed, {na} not applicable).")
    else:
        page.verdict(False, f"{len(failed)} of {len(invs)} invariants failed ({passed} passed, {na} not applicable).")
    via = f" through the {data['adapter']} adapter" if data.get("adapter") else ""
    page.meta([
        f"env: {data['env']}{via}",
        f"up to {data.get('examples_per_invariant', '?')} generated episodes per invariant, seed "
        f"{data.get('seed')}, {data.get('seconds', 0):.1f} s",
    ])

    page.section(
        "Invariants",
        "Each invariant is a property every episode of a trading env must satisfy. The gate "
        "searched generated episodes (actions, markets, seeds) for one that breaks it and shrank "
        "what it found to a minimal counterexample. 'not-applicable' means the env or its adapter "
        "does not report what the invariant needs.",
        "invariants",
    )
    rows = []
    for inv in invs:
        vs = inv.get("violations") or []
        if vs:
            v = vs[0]
            where = f"step {v.get('step')}" if v.get("step") is not None else "episode"
            seed = f", seed {v.get('seed')}" if v.get("seed") is not None else ""
            first = f"{where}{seed}: {v.get('message', '')}"
        else:
            first = inv.get("note", "") or ""
        rows.append([inv.get("id"), inv.get("statement", ""), inv.get("status"), inv.get("examples", ""), first])
    page.table(["id", "statement", "status", "examples", "first violation (or note)"], rows,
               status_col=2, num_cols=(3,), cls="invariants")

    if failed:
        _check_failures(page, failed, make_env, adapter, float(timeout))
    else:
        page.section(
            "Counterexamples",
            "No invariant failed, so there is no counterexample to replay or chart.",
            "counterexamples",
        )
    findings = list(data.get("findings") or [])
    if findings:
        page.section(
            "Process state the env changed",
            "Calls into the env changed state of the whole program (warning filters, global "
            "random generators, logging, stdout). The gate isolated it; your training script "
            "would not.",
            "findings",
        )
        page.parts.append("<ul>" + "".join(f"<li>{_e(f)}</li>" for f in findings) + "</ul>")
    return _finish(page, data, "Gate report")


def _cx_text(cx: Mapping[str, Any]) -> str:
    prices = "" if cx.get("market") is None else f" on prices {list(cx['market'])}"
    masked = " (drawn among the mask's valid actions)" if cx.get("masked") else ""
    return f"seed {cx.get('seed')}, actions {list(cx.get('action_names') or cx.get('actions') or [])}{prices}{masked}"


def _check_failures(page: _Page, failed: Sequence[Mapping[str, Any]], make_env: Callable[[], Any] | None,
                    adapter: Any, timeout: float) -> None:
    from tradeguard._plots import EpisodePath, equity_png

    with_cx = [(inv, (inv.get("violations") or [{}])[0].get("counterexample")) for inv in failed]
    replayable = [(inv, cx) for inv, cx in with_cx if cx and cx.get("actions")]
    page.section(
        "Worst counterexample",
        "The first failing invariant in catalog order (the post-mortem's three come first), "
        "its minimal episode replayed step by step. Left: the actions predicted; right: what "
        "executed. A prediction the rules refuse executes as HOLD, hatched.",
        "worst",
    )
    worst_id = replayable[0][0].get("id") if replayable else None
    if not replayable:
        page.text("No failing invariant has an episode to replay (the env failed before its first step).")
    else:
        inv, cx = replayable[0]
        trace, note = _replay_gate(cx, make_env, adapter, timeout)
        page.text(f"{inv.get('id')}: {inv.get('statement', '')}")
        page.text(f"minimal counterexample: {_cx_text(cx)}. {note}", cls="small")
        path = EpisodePath.from_trace(trace) if trace is not None else None
        if trace is not None and trace.records:
            _distribution_of(page, "distribution.png", trace, f"{inv.get('id')}: actions of the counterexample")
        if path is not None:
            page.image("equity-worst.png", f"equity curve of the {inv.get('id')} counterexample",
                       partial(equity_png, episode=path, title=f"{inv.get('id')}: price, actions and equity",
                               subtitle=_cx_text(cx)[:110]))
        elif trace is not None:
            page.text("The adapter does not report prices and equity, so no equity chart can be drawn.")

    page.section(
        "Every failure",
        "Each failing invariant with its minimal counterexample, the ledger lines around the "
        "violation, and a command that replays it.",
        "failures",
    )
    for n, inv in enumerate(failed):
        page.section(f"FAIL {inv.get('id')}", str(inv.get("statement", "")), level=3)
        vs = list(inv.get("violations") or [])
        cx = vs[0].get("counterexample") if vs else None
        if cx:
            page.text(f"minimal counterexample: {_cx_text(cx)}", cls="small")
        for v in vs[:_MAX_VIOLATIONS]:
            where = f"step {v.get('step')}" if v.get("step") is not None else "episode"
            lines = [f"{where}: {v.get('message', '')}"]
            if v.get("context"):
                lines.append(str(v["context"]))
            if v.get("replay"):
                lines.append(f"replay: {v['replay']}")
            page.pre("\n".join(lines))
        if len(vs) > _MAX_VIOLATIONS:
            page.text(f"... and {len(vs) - _MAX_VIOLATIONS} more violations (see {DATA_FILE}).", cls="small")
        if n < _MAX_DETAILED and inv.get("id") != worst_id and cx and cx.get("actions"):
            trace, note = _replay_gate(cx, make_env, adapter, timeout)
            path = EpisodePath.from_trace(trace) if trace is not None else None
            if path is not None:
                page.image(f"equity-{n}.png", f"equity curve of the {inv.get('id')} counterexample",
                           partial(equity_png, episode=path, title=f"{inv.get('id')}: price, actions and equity",
                                   subtitle=_cx_text(cx)[:110]))
            page.text(note, cls="small")


def _replay_gate(cx: Mapping[str, Any], make_env: Callable[[], Any] | None, adapter: Any,
                 timeout: float) -> tuple[Trace | None, str]:
    """Replay a gate counterexample into a trace, isolated and bounded like the gate's own calls."""
    import numpy as np

    from tradeguard.env import EnvConfig, Market, TradingEnv
    from tradeguard.invariants import Isolation, adapter_for, record_episode

    actions = [int(a) for a in cx.get("actions") or []]
    prices = [int(p) for p in cx["market"]] if cx.get("market") is not None else None
    seed = int(cx.get("seed") or 0)
    if make_env is None:
        steps = max(len(actions), (len(prices) - 1) if prices else 1)
        config = EnvConfig(episode_length=steps)

        def factory() -> Any:
            return TradingEnv(config=config)

        where = ("Replayed on tradeguard's TradingEnv with the default scenario (pass make_env= to "
                 "replay on the env that was checked).")
    else:
        factory = make_env
        where = "Replayed on the env that was checked."
    trace: Trace | None = None
    note = where
    with Isolation(seed=seed, timeout=timeout) as iso:
        with iso.example():
            try:
                env = iso.guard(factory)()
                chosen = adapter if adapter is not None else adapter_for(env)
                options = None
                length = chosen.market_length(env) if prices else None
                if prices and length:
                    unit = float(getattr(getattr(env.unwrapped, "config", None), "minor_unit", 0.01))
                    padded = (prices + [prices[-1]] * length)[:length] if len(prices) < length else prices
                    options = chosen.reset_options(Market(np.asarray(padded, dtype=np.int64), unit, "counterexample"))
                ep = record_episode(env, actions, seed=seed, options=options, adapter=chosen)
                trace = ep.trace
                if ep.error is not None:
                    note += f" The env raised {type(ep.error).__name__}: {ep.error} after {len(trace)} steps."
            except Exception as exc:
                note += f" The replay failed: {type(exc).__name__}: {exc}."
        if iso.timed_out is not None:
            note += f" The replay ran out of its {timeout:g} s budget."
    return trace, note


# --------------------------------------------------------------------------- reward audit
def write_reward_audit_report(report: Any, directory: str | os.PathLike[str]) -> Path:
    """Write the reward audit's report (``tradeguard audit-reward``) as an HTML page with charts.

    The page shows the verdict, a table of every finding kind (found or not, how often,
    on how many markets), then the worst market the search saw for the first error: the
    shaped-optimal sequence's predicted vs executed actions, its equity over the price
    path, and the shaped-optimal and PnL-optimal sequences drawn on the market. Each
    finding follows with its shrunk market charted the same way, and the reward's
    components (potential-based or not, can they move the optimum).

    Sequences are replayed through :class:`~tradeguard.env.TradingEnv` with the
    audit's machine and the finding's reward config; a replay that disagrees with the
    oracle is reported on the page.

    Args:
        report: A ``RewardAuditReport``, or its ``as_dict()`` (``--json``). From a dict,
            the machine is the shipped scenario the report names (else the default).
        directory: Where to write ``index.html``, the PNGs and ``report.json``.

    Returns:
        The path of ``index.html``.

    Raises:
        InvalidConfig: matplotlib is missing, ``directory`` is a file, or ``report``
            is neither a RewardAuditReport nor its JSON form.

    Example:
        >>> import tempfile
        >>> from tradeguard.invariants.audit import audit_reward
        >>> r = audit_reward("v10.1", budget=5, max_examples=20)
        >>> write_reward_audit_report(r, tempfile.mkdtemp()).name
        'index.html'
    """
    from tradeguard._plots import EpisodePath, equity_png
    from tradeguard.env import EnvConfig, load_scenario, scenario_names
    from tradeguard.invariants.audit import REWARD_FINDING_KINDS, REWARD_SEVERITY

    FINDING_KINDS: tuple[str, ...] = REWARD_FINDING_KINDS
    SEVERITY: Mapping[str, str] = REWARD_SEVERITY

    data = _as_data(report, "RewardAuditReport", ("scenario", "passed", "findings"))
    env_config = getattr(report, "env", None)
    machine_note = ""
    if not isinstance(env_config, EnvConfig):
        name = str(data["scenario"])
        if name in scenario_names():
            env_config = load_scenario(name).env
        else:
            env_config = EnvConfig()
            machine_note = (f"Replays use the default machine: scenario {name!r} is not shipped and the "
                            "report was given as a dict (pass the report object to replay on its machine).")
    directory = _prepare(directory)
    findings: list[Mapping[str, Any]] = list(data["findings"])
    errors = [f for f in findings if f.get("severity") == "error"]
    warnings_ = [f for f in findings if f.get("severity") == "warning"]
    page = _Page(directory, f"tradeguard audit-reward: scenario {data['scenario']}")
    if data["passed"]:
        page.verdict(True, f"no error-severity finding ({len(warnings_)} warning(s)).")
    else:
        kinds = ", ".join(str(f.get("kind")) for f in errors)
        page.verdict(False, f"{len(errors)} error(s), {len(warnings_)} warning(s): {kinds}.")
    reward = data.get("reward") or {}
    shown = ", ".join(f"{k}={v!r}" for k, v in reward.items()) or "the defaults (plain PnL)"
    horizon = data.get("horizon") or ["?", "?"]
    page.meta([
        f"reward: {shown}",
        f"searched {data.get('explored', '?')} markets of {horizon[0]}-{horizon[1]} steps "
        f"({data.get('examples', '?')} analysed with shrinking) in {float(data.get('seconds', 0)):.1f} s, "
        f"budget {data.get('budget')} s, seed {data.get('seed')}"
        + ("; the budget ran out before the search finished" if data.get("budget_exhausted") else ""),
        *([machine_note] if machine_note else []),
    ])

    page.section(
        "Finding kinds",
        "Each kind is a way a reward can make a degenerate policy optimal. On each generated "
        "market an exact oracle found the action sequence that maximizes the shaped reward "
        "(what a trained agent converges to) and the one that maximizes PnL; a kind is found "
        "when they disagree in that way. Errors fail the audit; warnings do not.",
        "kinds",
    )
    by_kind = {str(f.get("kind")): f for f in findings}
    rows = []
    for kind in FINDING_KINDS:
        f = by_kind.get(kind)
        sev = SEVERITY.get(kind, "error")
        if f is None:
            rows.append([kind, sev, "not found", "", ""])
            continue
        d = f.get("details") or {}
        fired = f"{d['markets_fired']} of {d['markets_explored']}" if "markets_fired" in d else ""
        rows.append([kind, sev, "found", fired, f.get("message", "")])
    for kind, f in by_kind.items():  # a kind this page does not know yet: still listed
        if kind not in FINDING_KINDS:
            rows.append([kind, f.get("severity", ""), "found", "", f.get("message", "")])
    page.table(["kind", "severity", "status", "markets where it fired", "what it means here"], rows,
               status_col=2, cls="kinds")

    headline = next((f for f in errors if f.get("worst") or f.get("counterexample")), None)
    headline = headline or next((f for f in findings if f.get("worst") or f.get("counterexample")), None)
    page.section(
        "Worst market seen",
        "The market on which the first error scored worst during the search (unshrunk). The "
        "shaped-optimal sequence is what an agent trained on this reward learns to do.",
        "worst",
    )
    if headline is None:
        page.text("No finding has a market to show.")
    else:
        cx = headline.get("worst") or headline["counterexample"]
        rolls = _reward_paths(cx, env_config)
        page.text(f"{headline.get('kind')}: {headline.get('message', '')}")
        for line in rolls.notes:
            page.text(line, cls="small")
        shaped = rolls.traces.get("shaped-optimal")
        if shaped is not None:
            _distribution_of(page, "distribution.png", shaped,
                             f"{headline.get('kind')}: shaped-optimal sequence on the worst market")
            path = EpisodePath.from_trace(shaped)
            if path is not None:
                page.image("equity-worst.png", "equity curve of the shaped-optimal sequence on the worst market",
                           partial(equity_png, episode=path, title="shaped-optimal sequence: price, actions and equity",
                                   subtitle=f"{headline.get('kind')}, worst market seen"))
        _sequences_image(page, "market-worst.png", rolls, cx, f"{headline.get('kind')}: worst market seen")

    page.section(
        "Findings",
        "Each finding with the smallest market that shows it (shrunk by Hypothesis: fewest "
        "steps, smallest moves), the two optimal sequences drawn on it, step by step.",
        "findings",
    )
    if not findings:
        page.text("The audit found nothing: on every market explored, the shaped optimum is a PnL optimum.")
    for n, f in enumerate(findings):
        page.section(f"[{f.get('severity')}] {f.get('kind')}", str(f.get("message", "")), f"finding-{f.get('kind')}", level=3)
        cx = f.get("counterexample")
        if not cx:
            d = f.get("details") or {}
            if d:
                page.text("; ".join(f"{k}: {v}" for k, v in d.items()), cls="small")
            continue
        rolls = _reward_paths(cx, env_config)
        for note in rolls.notes:
            page.text(note, cls="small")
        if n < _MAX_DETAILED:
            _sequences_image(page, f"market-{n}.png", rolls, cx, f"{f.get('kind')}: smallest market")
        _sequence_table(page, cx)

    comps = list(data.get("components") or [])
    if comps:
        page.section(
            "Reward components",
            "Potential-based shaping cannot change which policy is optimal (Ng, Harada & Russell "
            "1999); a component that is not, at a weight other than its PnL weight, can.",
            "components",
        )
        page.table(
            ["component", "weight", "PnL weight", "potential-based", "can change the optimum", "why"],
            [[c.get("name"), f"{float(c.get('weight', 0)):.4g}", c.get("pnl_weight"),
              "yes" if c.get("potential_based") else "no", "YES" if c.get("can_change_optimum") else "no",
              c.get("why", "")] for c in comps],
            num_cols=(1, 2),
        )
    base = data.get("baseline")
    if base:
        page.section(
            f"Against the baseline {base.get('baseline')}",
            "Markets on which the new reward's optimal behaviour differs from the baseline's, "
            "and the finding kinds that are new or resolved.",
            "baseline",
        )
        page.text(
            f"optimum changed on {base.get('markets_changed')} of {base.get('markets_compared')} markets; "
            f"new findings: {', '.join(base.get('new_findings') or []) or 'none'}; resolved: "
            f"{', '.join(base.get('resolved_findings') or []) or 'none'}."
        )
        changed = base.get("changed")
        if changed:
            rolls = _reward_paths(changed, env_config)
            _sequences_image(page, "market-baseline.png", rolls, changed, "the smallest market where the optimum changed")
    return _finish(page, data, "Reward audit report")


@dataclasses.dataclass
class _Rolls:
    traces: dict[str, Trace]
    notes: list[str]


def _reward_paths(cx: Mapping[str, Any], env_config: Any) -> _Rolls:
    """Replay a reward-audit counterexample's sequences through TradingEnv."""
    import numpy as np

    from tradeguard.env import Action, Market, RewardConfig, TradingEnv

    prices = [int(p) for p in cx["prices"]]
    unit = float(cx.get("minor_unit", env_config.minor_unit))
    try:
        with warnings.catch_warnings():  # the audit already warned about this config (fuzz draws any)
            warnings.simplefilter("ignore", UserWarning)
            reward = RewardConfig.from_dict(dict(cx.get("reward") or {}), where="the counterexample's reward")
    except Exception as exc:
        return _Rolls({}, [f"cannot rebuild the reward config: {exc}"])
    sequences: dict[str, Mapping[str, Any]] = {
        "shaped-optimal": cx["shaped_optimal"], "PnL-optimal": cx["pnl_optimal"], **dict(cx.get("others") or {})
    }
    out = _Rolls({}, [])
    config = dataclasses.replace(env_config, episode_length=len(prices) - 1, minor_unit=unit)
    market = Market(np.asarray(prices, dtype=np.int64), unit, "counterexample")
    for label, seq in sequences.items():
        try:
            env = TradingEnv(config=config, reward=reward)
            env.reset(seed=0, options={"market": market})
            for name in seq["actions"]:
                env.step(int(Action[name]))
            trace = env.trace
        except Exception as exc:
            out.notes.append(f"{label}: the replay through TradingEnv failed: {type(exc).__name__}: {exc}")
            continue
        executed = [trace.meta.action_name(r.executed) for r in trace.records]
        if executed != list(seq.get("executed", executed)):
            out.notes.append(
                f"{label}: replayed through TradingEnv, the executed actions are {executed}, the oracle "
                f"says {list(seq.get('executed', []))}: the oracle and the env disagree."
            )
        out.traces[label] = trace
    return out


def _sequences_image(page: _Page, name: str, rolls: _Rolls, cx: Mapping[str, Any], title: str) -> None:
    from tradeguard._plots import EpisodePath, sequences_png

    panels: list[tuple[str, Any]] = []
    notes: list[str] = []
    for label in ("shaped-optimal", "PnL-optimal", *[k for k in rolls.traces if k not in ("shaped-optimal", "PnL-optimal")]):
        trace = rolls.traces.get(label)
        path = EpisodePath.from_trace(trace) if trace is not None else None
        if path is None:
            continue
        seq = cx["shaped_optimal"] if label == "shaped-optimal" else (
            cx["pnl_optimal"] if label == "PnL-optimal" else (cx.get("others") or {}).get(label, {}))
        unit = path.minor_unit
        rejected = sum(1 for r in seq.get("rejected", []) if r)
        notes.append(
            f"shaped return {float(seq.get('shaped_return', 0)):+.4g}, PnL {_money(int(seq.get('pnl', 0)), unit)}"
            + (f", {rejected} rejected" if rejected else "")
        )
        panels.append((label, path))
        if len(panels) == 4:
            break
    if panels:
        page.image(name, f"{title}: the action sequences drawn on the market",
                   lambda p: sequences_png(p, panels, title=title, notes=notes))


def _sequence_table(page: _Page, cx: Mapping[str, Any]) -> None:
    prices = list(cx["prices"])
    unit = float(cx.get("minor_unit", 0.01))
    cols: list[tuple[str, Mapping[str, Any]]] = [("shaped-optimal", cx["shaped_optimal"]), ("PnL-optimal", cx["pnl_optimal"])]
    cols += list((cx.get("others") or {}).items())
    head = ["step", "price", *[f"{label} (reward)" for label, _ in cols]]
    rows: list[list[Any]] = []
    for t in range(len(prices) - 1):
        row: list[Any] = [t, _money(prices[t], unit)]
        for _, seq in cols:
            acts, rej, rew = seq.get("actions", []), seq.get("rejected", []), seq.get("rewards", [])
            if t < len(acts):
                mark = f" (rejected: {rej[t]})" if t < len(rej) and rej[t] else ""
                row.append(f"{acts[t]}{mark} ({float(rew[t]) if t < len(rew) else 0:+.4g})")
            else:
                row.append("")
        rows.append(row)
    rows.append(["end", _money(prices[-1], unit), *[
        f"return {float(seq.get('shaped_return', 0)):+.4g}, PnL {_money(int(seq.get('pnl', 0)), unit)}" for _, seq in cols
    ]])
    page.table(head, rows, num_cols=(1,), cls="sequence")


# --------------------------------------------------------------------------- policy audit
def write_policy_audit_report(report: Any, directory: str | os.PathLike[str]) -> Path:
    """Write the policy audit's report (``tradeguard audit-policy``) as an HTML page with charts.

    The page shows the verdict, a table of every finding kind (found, ignored by the
    contract, or not found), the predicted vs executed action distributions side by
    side, the per-family metrics, the equity curve of the worst episode (most rejected
    predictions, then lowest return) with buys, sells and rejections marked, and the
    invariant table (each catalog invariant: violated or not over the audit's
    episodes).

    Args:
        report: A ``PolicyAuditReport``, or its ``as_dict()`` (``--json``). A dict has no
            traces: the equity chart is then left out, and invariants without a
            violation show as "no violation seen" (their applicability is unknown).
        directory: Where to write ``index.html``, the PNGs and ``report.json``.

    Returns:
        The path of ``index.html``.

    Raises:
        InvalidConfig: matplotlib is missing, ``directory`` is a file, or ``report``
            is neither a PolicyAuditReport nor its JSON form.

    Example:
        >>> import tempfile
        >>> from tradeguard.env import parse_policy
        >>> from tradeguard.invariants.audit import audit_policy
        >>> r = audit_policy(parse_policy("constant:SELL_PARTIAL"), scenario="v10",
        ...                  episodes=1, episode_length=50)
        >>> write_policy_audit_report(r, tempfile.mkdtemp()).name
        'index.html'
    """
    from tradeguard._plots import EpisodePath, distribution_png, equity_png
    from tradeguard.invariants import CATALOG
    from tradeguard.invariants.audit import POLICY_FINDING_KINDS

    FINDING_KINDS: tuple[str, ...] = POLICY_FINDING_KINDS

    data = _as_data(report, "PolicyAuditReport",
                    ("passed", "findings", "action_distribution_predicted", "action_distribution_executed"))
    traces: tuple[Trace, ...] = tuple(getattr(report, "traces", ()) or ())
    directory = _prepare(directory)
    findings: list[Mapping[str, Any]] = list(data["findings"])
    counting = [f for f in findings if f.get("counts", True)]
    page = _Page(directory, f"tradeguard audit-policy: {data.get('policy', 'policy')} on {data.get('scenario', '?')}")
    if data["passed"]:
        page.verdict(True, "the policy meets its contract.")
    else:
        kinds = ", ".join(dict.fromkeys(str(f.get("kind")) for f in counting))
        page.verdict(False, f"{len(counting)} finding(s) break the contract: {kinds}.")
    fams: dict[str, Mapping[str, Any]] = dict(data.get("families") or {})
    masks = ("env has no masks" if not data.get("env_supports_masks") else
             "masks passed to the policy" if data.get("masks_passed") else "masks NOT passed to the policy")
    page.meta([
        f"policy {data.get('policy')} on scenario {data.get('scenario')}: {data.get('episodes')} episodes over "
        f"{len(fams)} market families ({', '.join(fams)}), {data.get('steps')} steps, seed {data.get('seed')}",
        f"{'deterministic' if data.get('deterministic') else 'stochastic'} predictions; {masks}",
    ])

    page.section(
        "Finding kinds",
        "Each kind is a way a trained policy can look busy or healthy while it is not. "
        "'ignored' findings are reported but the contract does not fail on them.",
        "kinds",
    )
    rows = []
    for kind in FINDING_KINDS:
        mine = [f for f in findings if f.get("kind") == kind]
        if not mine:
            rows.append([kind, "not found", "", ""])
        for f in mine:
            rows.append([kind, "found" if f.get("counts", True) else "ignored", f.get("family") or "all", f.get("message", "")])
    page.table(["kind", "status", "family", "what it means here"], rows, status_col=1, cls="kinds")

    names = list(data["action_distribution_predicted"])
    pred = [float(data["action_distribution_predicted"][a]) for a in names]
    exe = [float(data["action_distribution_executed"].get(a, 0.0)) for a in names]
    page.section(
        "Predicted vs executed actions",
        "Left: the share of steps on which the policy predicted each action. Right: what the "
        "ledger executed. A prediction the rules refuse executes as HOLD (hatched). Counting "
        "predictions instead of executions is how the post-mortem's evaluator reported "
        "'100% SELL_PARTIAL' for an agent that never traded.",
        "distribution",
    )
    page.image("distribution.png", "predicted vs executed action distribution, all market families",
               lambda p: distribution_png(p, names, pred, exe, rejected=float(data.get("rejection_rate", 0.0)),
                                          title=f"{data.get('policy')}: all families, {data.get('steps')} steps",
                                          total=int(data.get("steps") or 0) or None))

    page.section("Per market family", "Means over each family's episodes; shares over its steps.", "families")
    page.table(
        ["family", "episodes", "return", "episode reward", "trades", "rejected", "entropy (nats)", "invalid", "violations"],
        [[name, f.get("episodes"), f"{float(f.get('mean_return', 0)):+.2%}", f"{float(f.get('mean_episode_reward', 0)):+.3f}",
          f.get("trades"), _pct(float(f.get("rejection_rate", 0))), f"{float(f.get('action_entropy_executed', 0)):.3f}",
          f.get("invalid_predictions"), f.get("violations")] for name, f in fams.items()],
        num_cols=(1, 2, 3, 4, 5, 6, 7, 8),
    )
    page.table(
        ["action", *[f"{n} predicted / executed" for n in fams], "all predicted / executed"],
        [[a, *[f"{_pct(float(f['action_distribution_predicted'].get(a, 0)))} / "
               f"{_pct(float(f['action_distribution_executed'].get(a, 0)))}" for f in fams.values()],
          f"{_pct(p)} / {_pct(x)}"] for a, p, x in zip(names, pred, exe, strict=True)],
        cls="family-distribution",
    )

    page.section(
        "Worst episode",
        "The episode with the most rejected predictions (then the lowest return), step by step: "
        "the price path with what executed marked, and the account's equity below.",
        "worst",
    )
    worst = _worst_episode(traces, fams)
    if worst is None:
        page.text("Not drawn: the report was given as a dict, which carries no traces (pass the report object).")
    else:
        trace, family, index = worst
        path = EpisodePath.from_trace(trace)
        rej = sum(bool(r.rejected) for r in trace.records)
        page.text(f"family {family}, episode {index}: {len(trace)} steps, {rej} rejected, seed {trace.meta.seed}.")
        if path is not None:
            page.image("equity-worst.png", "equity curve of the worst episode",
                       partial(equity_png, episode=path, title=f"{data.get('policy')}: worst episode ({family})",
                               subtitle=f"{rej} of {len(trace)} predictions rejected"))
        else:
            page.text("The adapter does not report prices and equity, so no equity chart can be drawn.")

    page.section(
        "Invariants",
        "Every episode's trace was checked against the invariant catalog. Invariants of the "
        "env contract drive the env themselves: run tradeguard check for those.",
        "invariants",
    )
    violations: list[Mapping[str, Any]] = list(data.get("violations") or [])
    meta = traces[0].meta if traces else None
    rows = []
    for inv in CATALOG:
        mine = [v for v in violations if v.get("invariant") == inv.id]
        if mine:
            v = mine[0]
            where = f"step {v.get('step')}" if v.get("step") is not None else "episode"
            status, first = "fail", f"{where}, seed {v.get('seed')}: {v.get('message', '')} ({len(mine)} in all)"
        elif inv.scope == "env":
            status, first = "not-applicable", "checked by tradeguard check, not by the audit"
        elif meta is not None and not inv.applicable(meta, reported=False):
            status, first = "not-applicable", "the trace does not supply what it needs"
        else:
            status, first = ("pass" if meta is not None else "no violation seen"), ""
        rows.append([inv.id, inv.statement, status, data.get("episodes", ""), first])
    page.table(["id", "statement", "status", "episodes", "first violation (or note)"], rows,
               status_col=2, num_cols=(3,), cls="invariants")
    for v in violations[:_MAX_VIOLATIONS]:
        page.pre("\n".join(s for s in (f"[{v.get('invariant')}] step {v.get('step')}: {v.get('message', '')}",
                                       str(v.get("context") or ""), f"replay: {v['replay']}" if v.get("replay") else "") if s))
    return _finish(page, data, "Policy audit report")


def _worst_episode(traces: Sequence[Trace], fams: Mapping[str, Mapping[str, Any]]) -> tuple[Trace, str, int] | None:
    if not traces:
        return None
    labels: list[tuple[str, int]] = []
    for name, f in fams.items():
        labels += [(name, i) for i in range(int(f.get("episodes", 0)))]
    if len(labels) != len(traces):
        labels = [("?", i) for i in range(len(traces))]

    def badness(i: int) -> tuple[int, float]:
        t = traces[i]
        rej = sum(bool(r.rejected) for r in t.records)
        ret = (t.records[-1].equity_after - t.records[0].equity_before) if t.records else 0
        return (-rej, ret)

    i = min(range(len(traces)), key=badness)
    return traces[i], labels[i][0], labels[i][1]
