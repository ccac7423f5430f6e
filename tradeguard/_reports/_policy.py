"""The policy audit's report: predicted vs executed actions, per family, and the worst episode's equity."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from tradeguard._reports._page import (
    _MAX_VIOLATIONS,
    _as_data,
    _finish,
    _Page,
    _pct,
    _prepare,
)
from tradeguard.trace import Trace

__all__ = ["write_policy_audit_report"]


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
