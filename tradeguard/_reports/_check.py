"""The gate's report: the invariant table, each failure with its counterexample replayed."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from tradeguard._reports._page import (
    _MAX_DETAILED,
    _MAX_VIOLATIONS,
    DATA_FILE,
    _as_data,
    _distribution_of,
    _e,
    _finish,
    _Page,
    _prepare,
)
from tradeguard.errors import InvalidConfig
from tradeguard.trace import Trace

__all__ = ["write_check_report"]


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
    warned = sum(i.get("status") == "warn" for i in invs)
    warn = f", {warned} warning{'s' * (warned != 1)}" if warned else ""
    page = _Page(directory, f"tradeguard check: {data['env']}")
    if data["passed"]:
        page.verdict(True, f"every applicable invariant held ({passed} passed{warn}, {na} not applicable).")
    else:
        page.verdict(False, f"{len(failed)} of {len(invs)} invariants failed ({passed} passed{warn}, {na} not applicable).")
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
        settings = cx.get("settings")
        factory = make_env if settings is None else partial(make_env, **settings)
        where = ("Replayed on the env that was checked" + ("." if settings is None else
                 f", built with the counterexample's settings {settings!r}."))
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
