"""The benchmark scripts still run against the code they measure (they are not run here in full)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

from tradeguard.env import EnvConfig, TradingEnv
from tradeguard.invariants import Context

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_monitor_ablation_finds_every_section_of_the_fused_check() -> None:
    # It cuts fast_step_check at comment markers: renaming one must fail here, not in a study.
    variants = _load("ablate_monitor")._variants()
    assert list(variants) == ["wrapper", "unpack", "continuity", "rules", "accounting", "mask", "reward", "whole"]
    env = TradingEnv(config=EnvConfig(episode_length=20))
    env.reset(seed=0)
    for a in np.random.default_rng(0).integers(0, 7, size=20):
        env.step(int(a))
    records = env.trace.records
    ctx = Context.of(env.trace_meta)
    for name, factory in variants.items():
        check = factory(ctx)
        assert all(check(records[i - 1] if i else None, r) for i, r in enumerate(records)), name
    # A cut check stops early: it passes a record the whole check refuses.
    broken = records[5]._replace(cash_after=records[5].cash_after + 1)
    assert not variants["whole"](ctx)(records[4], broken)
    assert variants["continuity"](ctx)(records[4], broken)
