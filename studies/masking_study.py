"""Invalid-action masking vs penalties vs epsilon-greedy on tradeguard's V10 env.

Reproduces, on this env, the comparison of Huang & Ontanon, "A Closer Look at Invalid
Action Masking in Policy Gradient Algorithms" (FLAIRS-35, 2022; arXiv 2006.14171):

  masked        sb3-contrib MaskablePPO (penalty -0.05, never paid: nothing is rejected)
  penalty-0.05  stable-baselines3 PPO, failed-action penalty -0.05 (the seed's V10 penalty)
  penalty-1.0   PPO, failed-action penalty -1.0 (the seed's "fix")
  epsilon       PPO, penalty -0.05, epsilon-greedy 0.5 -> 0.01 over the first half (the seed's V10)

Everything else is the ``v10`` scenario (500-step episodes of a random walk with 1%
volatility, fees 10 bps, reward = PnL in percent of starting cash + penalty) and SB3's
PPO defaults (n_steps 2048, batch 64, 10 epochs, lr 3e-4, gamma 0.99) with ent_coef
0.01, the same step budget and seeds for every condition.

Each trained model is then audited (``tradeguard.invariants.audit_policy``: 2 episodes
x 4 market families, deterministic, masks passed when the model takes them). The masked
models are audited a second time without masks, as the paper does ("removing the mask
at evaluation"). The training-time ``InvariantCallback`` runs in log-only mode; the
table says at which step it would have stopped each run.

Run from the repository root (needs the ``rl`` extra); the default budget takes about
10-15 minutes on 2 cores:

    python studies/masking_study.py                         # 3 seeds x 4 conditions x 30k steps
    python studies/masking_study.py --steps 100000 --seeds 0 1 2 3 4 --workers 2
    python studies/masking_study.py --steps 4096 --seeds 0 --out /tmp/smoke   # smoke test

Writes ``studies/results/masking_study.json`` (every run) and ``masking_study.md`` (the
tables), or to ``--out DIR``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

CONDITIONS: dict[str, dict[str, Any]] = {
    "masked": {"algo": "maskable-ppo", "penalty": -0.05, "exploration": "none",
               "label": "MaskablePPO"},
    "penalty-0.05": {"algo": "ppo", "penalty": -0.05, "exploration": "none",
                     "label": "PPO, penalty -0.05"},
    "penalty-1.0": {"algo": "ppo", "penalty": -1.0, "exploration": "none",
                    "label": "PPO, penalty -1.0"},
    "epsilon": {"algo": "ppo", "penalty": -0.05, "exploration": "epsilon-greedy:0.5:0.01",
                "label": "PPO + epsilon-greedy 0.5->0.01, penalty -0.05"},
}
ENT_COEF = 0.01
AUDIT_EPISODES = 2


@dataclass(frozen=True)
class Job:
    condition: str
    seed: int
    steps: int


def _scenario(penalty: float) -> Any:
    import dataclasses

    from tradeguard.env import load_scenario

    sc = load_scenario("v10")
    return dataclasses.replace(
        sc,
        name=f"v10 (penalty {penalty:g})" if penalty != sc.reward.failed_action_penalty else "v10",
        reward=dataclasses.replace(sc.reward, failed_action_penalty=penalty),
    )


def run_job(job: Job) -> dict[str, Any]:
    """Train one condition with one seed, audit it, return the numbers."""
    import torch

    torch.set_num_threads(1)
    from tradeguard.invariants.audit._policy_audit import audit_policy
    from tradeguard.rl import InvariantCallback, train

    cond = CONDITIONS[job.condition]
    sc = _scenario(cond["penalty"])
    callback = InvariantCallback(stop_on=(), verbose=0)
    started = time.perf_counter()
    result = train(
        algo=cond["algo"],
        scenario=sc,
        steps=job.steps,
        seed=job.seed,
        exploration=cond["exploration"],
        ent_coef=ENT_COEF,
        invariant_callback=callback,
        progress_bar=False,
    )
    train_s = time.perf_counter() - started
    model = result.model
    ep_rewards = [float(e["r"]) for e in model.ep_info_buffer] if model.ep_info_buffer else []
    audit = audit_policy(model, scenario=sc, episodes=AUDIT_EPISODES, seed=job.seed, deterministic=True)
    out: dict[str, Any] = {
        "condition": job.condition,
        "seed": job.seed,
        "steps": job.steps,
        "train_seconds": round(train_s, 1),
        "steps_per_second": round(result.steps_done / result.wall_time, 1),
        "train_ep_reward_last": round(statistics.fmean(ep_rewards), 3) if ep_rewards else None,
        "audit": _audit_summary(audit),
        "windows": [
            {
                "end_step": w.end_step,
                "predicted": w.action_distribution_predicted,
                "executed": w.action_distribution_executed,
                "rejection_rate": w.rejection_rate,
                "trades": w.trades,
                "findings": [k for k, _ in w.findings],
            }
            for w in callback.history
        ],
        "would_stop_at": _would_stop_at(callback.history),
    }
    if cond["algo"] == "maskable-ppo":
        unmasked = audit_policy(
            model, scenario=sc, episodes=AUDIT_EPISODES, seed=job.seed, deterministic=True, use_masks=False
        )
        out["audit_without_masks"] = _audit_summary(unmasked)
    return out


def _audit_summary(report: Any) -> dict[str, Any]:
    o = report.overall
    return {
        "passed": report.passed,
        "findings": sorted(report.kinds()),
        "mean_episode_reward": o.mean_episode_reward,
        "mean_return": o.mean_return,
        "rejection_rate": o.rejection_rate,
        "trades_per_episode": o.trades / o.episodes,
        "action_distribution_predicted": dict(o.action_distribution_predicted),
        "action_distribution_executed": dict(o.action_distribution_executed),
        "invalid_predictions": o.invalid_predictions,
        "violations": len(report.violations),
    }


def _would_stop_at(history: list[Any], patience: int = 2) -> int | None:
    """The step at which the default InvariantCallback (stop_on defaults, patience 2) would stop."""
    from tradeguard.rl import DEFAULT_STOP_ON

    strikes = 0
    for w in history:
        if any(k in DEFAULT_STOP_ON for k, _ in w.findings):
            if any(k == "invariant-violation" for k, _ in w.findings):
                return int(w.end_step)
            strikes += 1
            if strikes >= patience:
                return int(w.end_step)
        else:
            strikes = 0
    return None


# --------------------------------------------------------------------------- report
def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    m = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:+.2f} ± {sd:.2f}"


def _settled_at(windows: list[dict[str, Any]], limit: float = 0.05) -> int | None:
    """First step from which the policy's own rejection rate stays below ``limit``."""
    settled = None
    for w in windows:
        if w["rejection_rate"] < limit:
            settled = settled if settled is not None else int(w["end_step"])
        else:
            settled = None
    return settled


def _dist(runs: list[dict[str, Any]], key: str, which: str = "audit") -> str:
    names = list(runs[0][which][key])
    means = {n: statistics.fmean(r[which][key][n] for r in runs) for n in names}
    shown = [f"{n} {p:.0%}" for n, p in sorted(means.items(), key=lambda kv: -kv[1]) if p >= 0.005]
    return ", ".join(shown[:4]) + (", ..." if len(shown) > 4 else "")


READING_START = "<!-- reading: written by hand after the run; kept by --render -->"
READING_END = "<!-- /reading -->"


def _reading(md: Path) -> str:
    """The hand-written reading of an earlier results file, if any (kept across re-renders)."""
    if not md.is_file():
        return ""
    text = md.read_text()
    if READING_START in text and READING_END in text:
        return text[text.index(READING_START) : text.index(READING_END) + len(READING_END)]
    return ""


def render(results: list[dict[str, Any]], meta: dict[str, Any], reading: str = "") -> str:
    by: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by.setdefault(r["condition"], []).append(r)
    lines = [
        "# Masking study: MaskablePPO vs failed-action penalties vs epsilon-greedy",
        "",
        "Reproduces on tradeguard's V10 env the comparison of Huang & Ontañón, \"A Closer Look at "
        "Invalid Action Masking in Policy Gradient Algorithms\" (FLAIRS-35, 2022). Generated by "
        "`studies/masking_study.py`; every number below is in `masking_study.json`.",
        "",
        f"- Budget: {meta['steps']:,} env steps per run, seeds {meta['seeds']}, "
        f"{len(results)} runs, {meta['workers']} worker process(es), 1 torch thread each.",
        f"- Wall time: {meta['wall_seconds'] / 60:.1f} min on {meta['machine']} "
        f"(a shared 2-core machine; median training throughput "
        f"{statistics.median(r['steps_per_second'] for r in results):.0f} steps/s per run).",
        f"- Env: scenario `v10` (500-step episodes, random walk 1% volatility, fee 10 bps, reward = "
        f"PnL in % of starting cash + failed-action penalty); PPO defaults of stable-baselines3 "
        f"{meta['versions'].get('stable-baselines3')} with ent_coef {ENT_COEF}.",
        f"- Evaluation: `audit_policy`, {AUDIT_EPISODES} episodes x 4 market families (trend, crash, "
        "flat, random walk), deterministic, masks passed to models that take them. "
        "Return = mean episode reward (PnL % + penalties); PnL = mean total return.",
        f"- Command: `{meta['command']}`",
        "",
        reading or f"{READING_START}\n(no reading yet)\n{READING_END}",
        "",
        "## Final policies (audit)",
        "",
        "| condition | return (reward) | PnL % | rejection rate | trades / episode | executed actions (mean) | predicted actions (mean) | audit passes | findings |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in by.items():
        label = CONDITIONS[name]["label"]
        a = [r["audit"] for r in runs]
        findings = sorted({k for x in a for k in x["findings"]})
        lines.append(
            f"| {label} | {_mean_sd([x['mean_episode_reward'] for x in a])} | "
            f"{_mean_sd([100 * x['mean_return'] for x in a])} | "
            f"{statistics.fmean(x['rejection_rate'] for x in a):.1%} | "
            f"{statistics.fmean(x['trades_per_episode'] for x in a):.1f} | "
            f"{_dist(runs, 'action_distribution_executed')} | {_dist(runs, 'action_distribution_predicted')} | "
            f"{sum(x['passed'] for x in a)}/{len(a)} | {', '.join(findings) or '-'} |"
        )
    masked = by.get("masked", [])
    if masked and "audit_without_masks" in masked[0]:
        a = [r["audit_without_masks"] for r in masked]
        findings = sorted({k for x in a for k in x["findings"]})
        lines.append(
            f"| MaskablePPO evaluated **without** masks | {_mean_sd([x['mean_episode_reward'] for x in a])} | "
            f"{_mean_sd([100 * x['mean_return'] for x in a])} | "
            f"{statistics.fmean(x['rejection_rate'] for x in a):.1%} | "
            f"{statistics.fmean(x['trades_per_episode'] for x in a):.1f} | "
            f"{_dist(masked, 'action_distribution_executed', 'audit_without_masks')} | "
            f"{_dist(masked, 'action_distribution_predicted', 'audit_without_masks')} | "
            f"{sum(x['passed'] for x in a)}/{len(a)} | {', '.join(findings) or '-'} |"
        )
    lines += [
        "",
        "## Per run",
        "",
        "| condition | seed | return (reward) | PnL % | rejection | top predicted | top executed | audit | training ep. reward (last 100) | training rejections: first / last window | own rejections < 5% from step | callback would stop at |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        a = r["audit"]
        tp = max(a["action_distribution_predicted"].items(), key=lambda kv: kv[1])
        te = max(a["action_distribution_executed"].items(), key=lambda kv: kv[1])
        stop = f"{r['would_stop_at']:,}" if r["would_stop_at"] is not None else "never"
        lines.append(
            f"| {CONDITIONS[r['condition']]['label']} | {r['seed']} | {a['mean_episode_reward']:+.2f} | "
            f"{100 * a['mean_return']:+.2f} | {a['rejection_rate']:.1%} | {tp[0]} {tp[1]:.0%} | "
            f"{te[0]} {te[1]:.0%} | {'pass' if a['passed'] else 'FAIL: ' + ', '.join(a['findings'])} | "
            f"{r['train_ep_reward_last'] if r['train_ep_reward_last'] is not None else '-'} | "
            f"{r['windows'][0]['rejection_rate']:.1%} / {r['windows'][-1]['rejection_rate']:.1%} | "
            f"{_fmt_step(_settled_at(r['windows']))} | {stop} |"
        )
    lines += ["", "## Training: the policy's own predictions and rejections over time (seed " + str(meta["seeds"][0]) + ")", ""]
    for name, runs in by.items():
        r = runs[0]
        lines.append(f"**{CONDITIONS[name]['label']}**")
        lines.append("")
        lines.append("| step | top predicted | rejection rate | trades | findings |")
        lines.append("|---|---|---|---|---|")
        windows = r["windows"]
        picks = sorted({0, len(windows) // 4, len(windows) // 2, 3 * len(windows) // 4, len(windows) - 1})
        for i in picks:
            if 0 <= i < len(windows):
                w = windows[i]
                tp = max(w["predicted"].items(), key=lambda kv: kv[1])
                lines.append(
                    f"| {w['end_step']:,} | {tp[0]} {tp[1]:.0%} | {w['rejection_rate']:.1%} | {w['trades']} | "
                    f"{', '.join(w['findings']) or '-'} |"
                )
        lines.append("")
    return "\n".join(lines)


def _fmt_step(step: int | None) -> str:
    return "never" if step is None else f"{step:,}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000, help="env steps per run (default: 30000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (default: 2)")
    parser.add_argument("--out", default="studies/results", help="output folder (default: studies/results)")
    parser.add_argument("--render", metavar="JSON", help="only rewrite the .md from a results JSON of an earlier run")
    args = parser.parse_args(argv)
    if args.render:
        data = json.loads(Path(args.render).read_text())
        md = Path(args.render).with_suffix(".md")
        md.write_text(render(data["runs"], data["meta"], _reading(md)) + "\n")
        print(f"wrote {md}")
        return 0

    jobs = [Job(c, s, args.steps) for s in args.seeds for c in args.conditions]
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    if args.workers > 1:
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
            for res in pool.map(run_job, jobs):
                results.append(res)
                _progress(res, started)
    else:
        for job in jobs:
            res = run_job(job)
            results.append(res)
            _progress(res, started)
    wall = time.perf_counter() - started
    order = {c: i for i, c in enumerate(CONDITIONS)}
    results.sort(key=lambda r: (order[r["condition"]], r["seed"]))

    from tradeguard.rl._train import _versions

    meta = {
        "steps": args.steps,
        "seeds": args.seeds,
        "workers": args.workers,
        "wall_seconds": round(wall, 1),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "versions": _versions(),
        "command": "python studies/masking_study.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "ent_coef": ENT_COEF,
        "audit_episodes_per_family": AUDIT_EPISODES,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "masking_study.json").write_text(json.dumps({"meta": meta, "runs": results}, indent=1, default=_json))
    md = out / "masking_study.md"
    md.write_text(render(results, meta, _reading(md)) + "\n")
    print(f"done in {wall / 60:.1f} min; wrote {out / 'masking_study.md'}")
    return 0


def _json(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return str(x)


def _progress(res: dict[str, Any], started: float) -> None:
    a = res["audit"]
    print(
        f"[{(time.perf_counter() - started) / 60:5.1f} min] {res['condition']:<13} seed {res['seed']}: "
        f"reward {a['mean_episode_reward']:+.2f}, rejection {a['rejection_rate']:.1%}, "
        f"{'pass' if a['passed'] else 'FAIL ' + ','.join(a['findings'])} ({res['steps_per_second']:.0f} steps/s)",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
