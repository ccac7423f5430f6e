"""The reward audit's report: each finding, its market, the shaped-optimal and PnL-optimal sequences drawn on it."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from tradeguard._episode import play_episode
from tradeguard._reports._page import (
    _MAX_DETAILED,
    _as_data,
    _distribution_of,
    _finish,
    _money,
    _Page,
    _prepare,
)
from tradeguard.trace import Trace

__all__ = ["write_reward_audit_report"]


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


def _playing(actions: Sequence[int]) -> Callable[[int, Any, Any], int]:
    """A chooser that plays ``actions`` in order."""
    return lambda t, observation, mask: actions[t]


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
            actions = [int(Action[name]) for name in seq["actions"]]
            play_episode(env, _playing(actions), recorder=None, seed=0, options={"market": market},
                         max_steps=len(actions), stop_at_end=False)
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
