"""The reward audit of any replay-deterministic env, through its adapter: what its reward makes optimal.

tradeguard's own env has an exact oracle that reads its state machine. Another env is
a black box: the audit only resets it (with a seed, and a market when its adapter can
inject one), steps it and reads the adapter's records. Replay-determinism (an
invariant the gate checks) is what makes that enough: the same seed and actions give
the same episode, so every action sequence can be replayed, and the best one found.

Search, per market (or seed), over the action sequences of ``horizon`` steps:

``exhaustive``
    Every sequence, when ``actions ** horizon`` is at most ``max_sequences``. Exact.
``memo``
    When the adapter declares the env's state (``state_key(env)``: everything the rest
    of the episode depends on, hashable), a search memoized over distinct states, as
    the oracle's: exact at any horizon the state count allows. The declaration is
    spot-checked: two prefixes with the same key must offer the same next steps.
``beam``
    Otherwise the ``beam_width`` best prefixes per step, per objective. Not proven
    optimal: the report says so, and the findings are then lower bounds.

On each market the audit finds the sequence that maximizes the env's reward, the best
one without rejected actions and the one that maximizes PnL (final equity minus
initial; from the adapter's ``equity(env, info)`` when it has one, else the records'
``equity_before``/``equity_after``), plays
reference behaviours (hold, spam each action, buy-and-never-sell, random), and reports
the reward audit's findings where the adapter supplies what they need, each with the
market (or seed) and the action sequences that replay it:

- ``rejection-in-optimum``, ``invalid-not-worse-than-hold``: need rejections and a
  HOLD action (an env without one holds by repeating an action, which its adapter may
  record as rejected: then they do not apply);
- ``idle-optimum``, ``pnl-regret`` (reward hacking: the reward-maximizing behaviour
  makes less money than the PnL optimum, or loses money against doing nothing): need
  equity;
- ``never-close-optimum``: needs positions and equity.

What does not apply is listed, with the reason, never reported as passing.

The machinery lives beside this module: the replays and the search tree in
:mod:`._blackbox_tree`, one market's optima and findings in :mod:`._blackbox_analysis`,
the report and its messages in :mod:`._blackbox_report`. This module generates the
markets (Hypothesis, steered by ``target()``, then shrunk) and assembles the report.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradeguard._validation import check_int, check_number, suggest
from tradeguard.env import Market
from tradeguard.errors import InvalidConfig
from tradeguard.invariants._adapter import TraceAdapter, adapter_for
from tradeguard.invariants._gate_inputs import callable_name, check_market_taken
from tradeguard.invariants._spaces import idle_action
from tradeguard.invariants.audit._blackbox_analysis import MarketAnalysis, _Needs, analyse_market
from tradeguard.invariants.audit._blackbox_report import (
    BLACKBOX_FINDING_KINDS,
    EnvBaselineComparison,
    EnvCounterexample,
    EnvRewardAuditReport,
    EnvRewardFinding,
    _counterexample,
    _message,
)
from tradeguard.invariants.audit._blackbox_snapshot import prove_snapshots
from tradeguard.invariants.audit._blackbox_tree import (
    _HOLD_KIND,
    DEFAULT_BEAM_WIDTH,
    DEFAULT_HORIZON,
    DEFAULT_MAX_SEQUENCES,
    EnvRollout,
    _Driver,
    _OutOfBudget,
    _SnapshotsSlower,
    _Tree,
)
from tradeguard.invariants.audit._reward_report import REWARD_SEVERITY
from tradeguard.limits import AUDIT_EXAMPLES_PER_SECOND, MAX_AUDIT_EXAMPLES
from tradeguard.trace import TraceMeta

__all__ = [
    "BLACKBOX_FINDING_KINDS",
    "DEFAULT_BEAM_WIDTH",
    "DEFAULT_HORIZON",
    "DEFAULT_MAX_SEQUENCES",
    "EnvBaselineComparison",
    "EnvCounterexample",
    "EnvRewardAuditReport",
    "EnvRewardFinding",
    "EnvRollout",
    "MarketAnalysis",
    "analyse_market",
    "audit_env_reward",
]


# ----------------------------------------------------------------------------- the audit


class _Found(Exception):
    def __init__(self, analysis: MarketAnalysis) -> None:
        super().__init__("found")
        self.analysis = analysis


@dataclass(slots=True)
class _Setup:
    """One env under audit: its driver, what it supplies, how its markets are made and searched."""

    name: str
    driver: _Driver
    meta: TraceMeta
    needs: _Needs
    hold: int | None
    horizon: int
    search: str
    market_length: int | None
    unit: float
    start: int
    max_move_bps: int
    pnl_tolerance: float
    beam_width: int
    max_states: int
    seed: int | None
    stepping: str = "auto"
    first: bool = True
    cache: dict[Hashable, MarketAnalysis] = field(default_factory=dict)

    def analyse(self, market_key: tuple[int | None, tuple[int, ...] | None]) -> MarketAnalysis:
        hit = self.cache.get(market_key)
        if hit is not None:
            return hit
        reset_seed, prices = market_key
        options = None
        if prices is not None:
            market = Market(np.array(prices, dtype=np.int64), minor_unit=self.unit)
            options = self.driver.adapter.reset_options(market)
        if self.driver.stepping is None:
            self._choose_stepping(reset_seed, options)
        tree = _Tree(
            self.driver,
            reset_seed,
            options,
            self.horizon,
            hold=self.hold,
            use_keys=self.search == "memo",
            max_states=self.max_states,
        )
        if self.first and tree.snapshots and tree.transpose and self.stepping == "auto":
            # Equal snapshots share a node, so how much cheaper snapshots are shows only on a
            # market: stop them at the time replaying every sequence would take, and replay.
            d = self.driver
            tree.fill_deadline = time.perf_counter() + d.n_actions**self.horizon * d.replay_cost
        self.first = False
        try:
            a = self._analyse_tree(tree, prices)
        except _SnapshotsSlower:
            self.driver.stepping = "replay"
            self.driver.stepping_note = (
                "snapshots replay alike, but searching the first market by them took longer than replaying "
                "every sequence from the reset"
            )
            return self.analyse(market_key)
        self.cache[market_key] = a
        return a

    def _analyse_tree(self, tree: _Tree, prices: tuple[int, ...] | None) -> MarketAnalysis:
        return analyse_market(
            tree,
            self.meta,
            self.needs,
            market=prices,
            pnl_tolerance=self.pnl_tolerance,
            search=self.search,
            beam_width=self.beam_width,
        )

    def _choose_stepping(self, reset_seed: int | None, options: dict[str, Any] | None) -> None:
        """On the first market: step deep copies of the env when it is proven to replay alike from
        them (and an exact search walks the tree), else replay every sequence from the reset."""
        driver = self.driver
        if self.stepping == "replay":
            driver.stepping, driver.stepping_note = "replay", "replay was asked for (stepping='replay')"
            return
        if self.search == "beam":
            driver.stepping, driver.stepping_note = "replay", "the beam search replays the prefixes it keeps"
            return
        ok, why = prove_snapshots(driver, reset_seed, options, self.horizon)
        b = max(2, driver.n_actions)
        per_child = 2 * driver.snapshot_cost + driver.step_cost
        if ok and self.search == "memo" and self.stepping == "auto" and per_child * b / (b - 1) > driver.replay_cost:
            ok, why = False, (
                f"snapshots replay alike, but a snapshot costs {1e6 * driver.snapshot_cost:,.0f} us against "
                f"{1e6 * driver.step_cost:,.0f} us a replayed step: replaying from the reset is cheaper for this env"
            )
            driver.stepping, driver.stepping_note = "replay", why
            return
        if ok:
            driver.stepping, driver.stepping_note = "snapshots", ""
            return
        if self.stepping == "snapshots":
            raise InvalidConfig(f"stepping='snapshots': {why}. Use stepping='auto' to replay such an env.")
        driver.stepping, driver.stepping_note = "replay", why


def _setup(
    name: str,
    make_env: Callable[[], Any],
    adapter: TraceAdapter | None,
    *,
    horizon: int,
    search: str,
    max_sequences: int,
    deadline: float,
    max_move_bps: int,
    pnl_tolerance: float,
    beam_width: int,
    max_states: int,
    seed: int | None,
    start_price: float = 100.0,
    stepping: str = "auto",
) -> _Setup:
    with warnings.catch_warnings():
        probe = make_env()
    _require_env(probe, name)
    if adapter is None:
        adapter = adapter_for(probe)
    close = getattr(probe, "close", None)
    if callable(close):
        close()
    driver = _Driver(make_env, adapter, deadline=deadline)
    if driver.n_actions <= 0:
        raise InvalidConfig(
            f"{name}: the env's action_space is {driver.env.action_space!r}; the black-box reward audit searches "
            "discrete actions (gymnasium.spaces.Discrete)."
        )
    market_length = adapter.market_length(driver.env)
    unit = 0.01
    start = 10_000
    if market_length is not None:
        from tradeguard.invariants._adapter import minor_unit_of

        unit = minor_unit_of(driver.env)
        start = max(1, round(start_price / unit))
        probe_market = Market(np.full(market_length, start, dtype=np.int64), minor_unit=unit)
        if adapter.reset_options(probe_market) is None:
            market_length = None
        else:  # an env whose reset ignores the market would be audited on its own data, unsaid
            check_market_taken(make_env, adapter, market_length, idle_action(driver.env.action_space), minor_unit=unit)
    driver.reset(seed if seed is not None else 0, None)
    meta = driver.meta
    assert meta is not None
    n = driver.n_actions
    hold = next((a for a in range(n) if a < len(meta.action_kinds) and meta.action_kinds[a] == _HOLD_KIND), None)
    supplies = meta.supplies
    has_equity = driver.equity_from_records() or driver.equity_fn is not None
    needs = _Needs(
        rejections="rejected" in supplies,
        hold=hold,
        equity=has_equity,
        positions={"position_before", "position_after"} <= supplies,
        executed="executed" in supplies,
    )
    if market_length is not None:
        horizon = min(horizon, market_length - 1)
    chosen = search
    if search == "auto":
        if n ** horizon <= max_sequences:
            chosen = "exhaustive"
        elif driver.key_fn is not None:
            chosen = "memo"
        else:
            chosen = "beam"
    elif search == "memo" and driver.key_fn is None:
        raise InvalidConfig(
            f"search='memo' needs the adapter to declare the env's state (a state_key(env) method); the "
            f"{getattr(adapter, 'name', type(adapter).__name__)} adapter has none. Use search='auto'."
        )
    return _Setup(
        name=name,
        driver=driver,
        meta=meta,
        needs=needs,
        hold=hold,
        horizon=horizon,
        search=chosen,
        market_length=market_length,
        unit=unit,
        start=start,
        max_move_bps=max_move_bps,
        pnl_tolerance=pnl_tolerance,
        beam_width=beam_width,
        max_states=max_states,
        seed=seed,
        stepping=stepping,
    )


def _require_env(env: Any, name: str) -> None:
    if not (hasattr(env, "reset") and hasattr(env, "step") and hasattr(env, "action_space")):
        raise InvalidConfig(
            f"{name} returned a {type(env).__name__}, not a gymnasium env (reset, step, action_space); the "
            "factory must take no arguments and return a fresh env."
        )


def _prices(start: int, moves: Sequence[int]) -> tuple[int, ...]:
    out = [start]
    for m in moves:
        out.append(max(1, round(out[-1] * (10_000 + m) / 10_000)))
    return tuple(out)


def _explore(
    setup: _Setup,
    max_examples: int,
    *,
    kinds: Sequence[str],
    hunt: str | None,
    visited: list[Hashable] | None,
    baseline: _Setup | None,
) -> MarketAnalysis | None:
    """Generate markets (or seeds) with Hypothesis, steering each kind's score up with target();
    with ``hunt``, stop at the first market where it fires and shrink it."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings, target
    from hypothesis import seed as hyp_seed
    from hypothesis import strategies as st

    if setup.market_length is not None:
        strategy: Any = st.lists(
            st.integers(-setup.max_move_bps, setup.max_move_bps),
            min_size=setup.market_length - 1,
            max_size=setup.market_length - 1,
        ).map(lambda moves: (setup.seed if setup.seed is not None else 0, _prices(setup.start, moves)))
    else:
        strategy = st.integers(0, 2**32 - 1).map(lambda s: (s, None))
    last: list[MarketAnalysis] = []

    @settings(
        parent=settings.get_profile("default"),
        database=None,
        max_examples=max_examples,
        deadline=None,
        derandomize=False,
        phases=(Phase.generate, Phase.target, Phase.shrink),
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )
    @given(strategy)
    def probe(market_key: tuple[int | None, tuple[int, ...] | None]) -> None:
        a = setup.analyse(market_key)
        if visited is not None:
            visited.append(market_key)
        if baseline is not None:
            b = baseline.analyse(market_key)
            target(float(a.shaped.actions != b.shaped.actions), label="optimum-changed")
        for kind in kinds:
            target(_finite(a.scores.get(kind, 0.0)), label=kind)
        if hunt is not None and hunt in a.fired:
            last[:] = [a]
            raise _Found(a)

    test = hyp_seed(setup.seed)(probe) if setup.seed is not None else probe
    try:
        test()
    except _Found as exc:
        return exc.analysis
    except _OutOfBudget:
        return last[0] if last else None
    return None


def _finite(x: float) -> float:
    if math.isnan(x):
        return 0.0
    return max(-1e12, min(1e12, x))


def audit_env_reward(
    make_env: Callable[[], Any],
    *,
    adapter: TraceAdapter | str | None = None,
    baseline: Callable[[], Any] | None = None,
    budget: float = 20.0,
    seed: int | None = 0,
    max_examples: int | None = None,
    horizon: int | tuple[int, int] = DEFAULT_HORIZON,
    max_move_bps: int = 500,
    pnl_tolerance: float = 0.01,
    search: str = "auto",
    max_sequences: int = DEFAULT_MAX_SEQUENCES,
    beam_width: int = DEFAULT_BEAM_WIDTH,
    max_states: int = 200_000,
    name: str | None = None,
    start_price: float = 100.0,
    stepping: str = "auto",
) -> EnvRewardAuditReport:
    """Audit the reward of any replay-deterministic env: what its reward makes optimal.

    ``audit_reward(make_env, adapter=...)`` calls this for an env that is not tradeguard's
    own (tradeguard's gets the exact oracle). See the module docstring for the searches and
    the findings.

    Args:
        make_env: A zero-argument callable returning a fresh gymnasium env (Discrete actions).
        adapter: Its trace adapter (an object, or a built-in adapter's name); default: the one
            :func:`~tradeguard.invariants.adapter_for` chooses.
        baseline: A second factory (the env before the change); the report then lists the
            markets on which the reward-maximizing behaviour changed and the new findings.
        budget: Seconds the audit may take.
        seed: Seed of the search (and of ``reset`` on injected markets).
        max_examples: Markets (or seeds) to generate (default: 30 per second of budget).
        horizon: Steps searched per market (an ``(lo, hi)`` pair means ``hi``), at most the
            episode: an injected market's length caps it.
        max_move_bps: Largest price move per step of an injected market, in basis points.
        start_price: First price of an injected market, in currency (100.0: 100.00; an
            instrument quoted near 1, such as EUR/USD, wants 1.0: fees in price units then
            weigh as they do in its own data).
        pnl_tolerance: PnL shortfall, in percent of the starting equity, that counts.
        search: ``"auto"`` (exhaustive when ``actions ** horizon <= max_sequences``, else
            memoized if the adapter declares ``state_key``, else beam), or one of
            ``"exhaustive"``, ``"memo"``, ``"beam"``.
        max_sequences: The most sequences an exhaustive search may enumerate per market.
        beam_width: Prefixes the guided search keeps per step and objective.
        max_states: The most states the memoized search expands on one market before it
            falls back to the beam (reported as not exact).
        name: The env's name in the report (default: the adapter's ``env_id``).
        stepping: How an exact search steps the env: ``"auto"`` (deep copies of the env at each
            node of the action tree, once proven on the first market to replay bit-identically,
            else every sequence replayed from the reset), ``"snapshots"`` (the same, but an
            error when the proof fails) or ``"replay"``.

    Returns:
        The :class:`EnvRewardAuditReport`.

    Raises:
        InvalidConfig: a bad argument, a factory that does not make an env, an env that is not
            replay-deterministic, or an adapter ``state_key`` that is not the whole state.
    """
    t0 = time.perf_counter()
    if isinstance(horizon, (tuple, list)) and len(horizon) == 2:
        horizon = horizon[1]
    check_int("horizon", horizon, min_value=1, max_value=64)
    check_number("budget", budget, min_value=0.0, min_exclusive=True, max_value=86_400)
    if seed is not None:
        check_int("seed", seed, min_value=0, max_value=2**63 - 1)
    if max_examples is None:
        max_examples = min(MAX_AUDIT_EXAMPLES, max(10, int(AUDIT_EXAMPLES_PER_SECOND * budget)))
    check_int("max_examples", max_examples, min_value=1, max_value=MAX_AUDIT_EXAMPLES)
    check_int("max_move_bps", max_move_bps, min_value=1, max_value=5_000)
    check_number("start_price", start_price, min_value=0.0, min_exclusive=True, max_value=1e9)
    check_number("pnl_tolerance", pnl_tolerance, min_value=0.0, max_value=100.0)
    searches = ("auto", "exhaustive", "memo", "beam")
    if search not in searches:
        raise InvalidConfig(f"search={search!r}; expected one of {', '.join(searches)}.{suggest(search, searches)}")
    check_int("max_sequences", max_sequences, min_value=1)
    check_int("beam_width", beam_width, min_value=1)
    check_int("max_states", max_states, min_value=1)
    steppings = ("auto", "snapshots", "replay")
    if stepping not in steppings:
        raise InvalidConfig(
            f"stepping={stepping!r}; expected one of {', '.join(steppings)}.{suggest(stepping, steppings)}"
        )
    if not callable(make_env):
        raise InvalidConfig(f"make_env={make_env!r} is not callable; expected a zero-argument env factory.")
    if isinstance(adapter, str):
        from tradeguard.invariants._adapter import get_adapter

        adapter = get_adapter(adapter)
    common = {
        "horizon": horizon,
        "search": search,
        "max_sequences": max_sequences,
        "deadline": math.inf,  # set below: the budget starts once the envs are built (imports take time)
        "max_move_bps": max_move_bps,
        "pnl_tolerance": pnl_tolerance,
        "beam_width": beam_width,
        "max_states": max_states,
        "seed": seed,
        "start_price": start_price,
        "stepping": stepping,
    }
    setup = _setup(name or "env", make_env, adapter, **common)  # type: ignore[arg-type]
    env_name = name or setup.meta.env_id
    if search == "exhaustive" and setup.driver.n_actions ** setup.horizon > max_sequences:
        raise InvalidConfig(
            f"search='exhaustive' would enumerate {setup.driver.n_actions}^{setup.horizon} sequences per market, "
            f"more than max_sequences={max_sequences:,}. Raise max_sequences, shorten the horizon, or use "
            "search='auto'."
        )
    unchecked = setup.needs.not_applicable()
    if len(unchecked) == len(BLACKBOX_FINDING_KINDS):
        # An audit that can judge nothing must not pass: it says why, and what to give it.
        adapter_name = getattr(setup.driver.adapter, "name", type(setup.driver.adapter).__name__)
        reasons = "; ".join(sorted(set(unchecked.values())))
        raise InvalidConfig(
            f"nothing to audit: none of the {len(unchecked)} finding kinds applies to what the {adapter_name} adapter "
            f"supplies ({reasons}). Give an adapter that records rejections and equity (docs/adapters.md; the "
            "black-box audit in docs/reward-audit.md)."
        )
    base_setup = None
    if baseline is not None:
        if not callable(baseline):
            raise InvalidConfig(f"baseline={baseline!r} must be a zero-argument env factory for the black-box audit.")
        base_setup = _setup(callable_name(baseline), baseline, adapter, **common)  # type: ignore[arg-type]
        if base_setup.driver.n_actions != setup.driver.n_actions or base_setup.market_length != setup.market_length:
            raise InvalidConfig(
                "the baseline env has a different action space or market length than the audited env; a "
                "baseline comparison needs the same env with another reward. Build both alike."
            )
        base_setup.search = setup.search
        base_setup.horizon = setup.horizon
    started = time.perf_counter()
    deadline = started + budget
    for s in (setup, base_setup):
        if s is not None:
            s.driver.deadline = started + 0.6 * budget
    kinds = [k for k in BLACKBOX_FINDING_KINDS if k not in unchecked]
    visited: list[Hashable] = []
    _explore(setup, max_examples, kinds=kinds, hunt=None, visited=visited, baseline=base_setup)
    explore_hit = time.perf_counter() > setup.driver.deadline
    if explore_hit and not any(setup.cache[k].fired for k in visited):
        # Nothing to shrink: the rest of the budget explores on (the same seed replays the
        # markets already analysed from the cache, then goes on to new ones).
        for s in (setup, base_setup):
            if s is not None:
                s.driver.deadline = deadline
        visited = []
        _explore(setup, max_examples, kinds=kinds, hunt=None, visited=visited, baseline=base_setup)
        explore_hit = time.perf_counter() > deadline
    visited = list(dict.fromkeys(visited))
    fired_counts: dict[str, int] = {}
    worst: dict[str, tuple[float, MarketAnalysis]] = {}
    for key in visited:
        a = setup.cache[key]
        for kind in a.fired:
            fired_counts[kind] = fired_counts.get(kind, 0) + 1
            score = a.scores[kind]
            if kind not in worst or score > worst[kind][0]:
                worst[kind] = (score, a)
    hunt = [k for k in kinds if k in fired_counts]
    shrunk: dict[str, MarketAnalysis] = {}
    for i, kind in enumerate(hunt):
        remaining = deadline - time.perf_counter()
        setup.driver.deadline = time.perf_counter() + max(0.0, remaining) / (len(hunt) - i)
        found = _explore(setup, max_examples, kinds=kinds, hunt=kind, visited=None, baseline=None)
        if found is None:
            found = next(setup.cache[k] for k in visited if kind in setup.cache[k].fired)
        shrunk[kind] = found
    findings = []
    for kind in kinds:
        if kind not in shrunk:
            continue
        a = shrunk[kind]
        w = worst[kind][1]
        findings.append(
            EnvRewardFinding(
                kind=kind,
                severity=REWARD_SEVERITY[kind],
                message=_message(kind, a, setup.pnl_tolerance),
                counterexample=_counterexample(kind, a, setup.unit),
                details={
                    "markets_fired": fired_counts[kind],
                    "markets_explored": len(visited),
                    "worst_score": worst[kind][0],
                },
                worst=None if w is a else _counterexample(kind, w, setup.unit),
            )
        )
    comparison = None
    if base_setup is not None:
        comparison = _compare(setup, base_setup, visited, findings)
    steps = setup.driver.steps + (base_setup.driver.steps if base_setup is not None else 0)
    exact = all(a.exact for a in setup.cache.values())
    return EnvRewardAuditReport(
        env=env_name,
        adapter=getattr(setup.driver.adapter, "name", type(setup.driver.adapter).__name__),
        findings=tuple(findings),
        not_applicable=setup.needs.not_applicable(),
        search=setup.search,
        exact=exact,
        actions=setup.driver.n_actions,
        horizon=setup.horizon,
        markets="injected" if setup.market_length is not None else "seeds",
        explored=len(visited),
        examples=len(setup.cache),
        steps=steps,
        seconds=time.perf_counter() - t0,
        budget=float(budget),
        budget_exhausted=explore_hit or time.perf_counter() > deadline,
        seed=seed,
        baseline=comparison,
        beam_width=beam_width,
        stepping=setup.driver.stepping or "replay",
        stepping_note=setup.driver.stepping_note,
    )


def _compare(
    setup: _Setup, base: _Setup, visited: Sequence[Hashable], findings: Sequence[EnvRewardFinding]
) -> EnvBaselineComparison:
    base_kinds: set[str] = set()
    changed: list[dict[str, Any]] = []
    compared = 0
    for key in visited:
        b = base.cache.get(key)
        if b is None:
            continue
        a = setup.cache[key]
        compared += 1
        base_kinds.update(b.fired)
        if a.shaped.actions != b.shaped.actions:
            changed.append(
                {
                    "seed": a.seed,
                    "market": None if a.market is None else list(a.market),
                    "actions": a.shaped.labels(),
                    "baseline_actions": b.shaped.labels(),
                    "pnl": a.shaped.pnl,
                    "baseline_pnl": b.shaped.pnl,
                }
            )
    changed.sort(key=lambda c: _finite(c["pnl"] - c["baseline_pnl"]))
    new_kinds = {f.kind for f in findings}
    return EnvBaselineComparison(
        baseline=base.name,
        minor_unit=setup.unit,
        markets_compared=compared,
        markets_changed=len(changed),
        changed=tuple(changed),
        new_findings=tuple(k for k in BLACKBOX_FINDING_KINDS if k in new_kinds and k not in base_kinds),
        resolved_findings=tuple(k for k in BLACKBOX_FINDING_KINDS if k in base_kinds and k not in new_kinds),
        baseline_kinds=tuple(k for k in BLACKBOX_FINDING_KINDS if k in base_kinds),
    )
