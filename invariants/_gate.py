"""The gate: the whole catalog run on Hypothesis-generated episodes, shrunk counterexamples.

:func:`check_trading_env` is the trading counterpart of gymnasium's ``check_env``:
for each invariant it searches, with Hypothesis, for an episode (actions, market,
seed) that violates it, and shrinks any it finds to a minimal one.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from random import Random, SystemRandom
from typing import Any

from hypothesis import HealthCheck, Phase
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.database import ExampleDatabase

from tradeguard._validation import check_int, check_number
from tradeguard.errors import InvalidConfig, InvariantViolation
from tradeguard.invariants._adapter import TraceAdapter, adapter_for, minor_unit_of
from tradeguard.invariants._catalog import CATALOG
from tradeguard.invariants._check import evaluate_trace, select
from tradeguard.invariants._contract import (
    MaskedPlan,
    RecordedEpisode,
    record_episode,
)
from tradeguard.invariants._contract_probes import CONTRACT_CHECKS
from tradeguard.invariants._database import gate_database
from tradeguard.invariants._gate_applicability import TraceApplicability
from tradeguard.invariants._gate_inputs import (
    callable_name,
    check_is_env,
    check_market_taken,
    check_meta_fits,
    check_zero_arguments,
    market_kinds,
    market_spare,
)
from tradeguard.invariants._gate_markets import ExampleMarkets
from tradeguard.invariants._gate_report import CatalogReport, Counterexample, InvariantReport
from tradeguard.invariants._gate_search import _Example, _examples_strategy, _find
from tradeguard.invariants._isolation import CallTimedOut, EnvCall, Isolation
from tradeguard.invariants._legacy import OldAPIFactory, old_api_finding
from tradeguard.invariants._model import Invariant, Violation, raised_at
from tradeguard.invariants._reference import (
    NO_REFERENCE,
    REFERENCE_INVARIANT,
    ReferenceSpec,
    check_matches_reference,
    check_reference_spec,
    declared_reference,
)
from tradeguard.invariants._settings import (
    SettingsFactories,
    SettingsRefused,
    SettingsSpec,
    check_factory_takes_kwargs,
    check_settings_spec,
    declared_settings,
    with_settings,
)
from tradeguard.invariants._spaces import ActionDriver, action_driver, idle_action
from tradeguard.limits import FIRST_EPISODE_TIMEOUT, MAX_GATE_EXAMPLES, MAX_TIMEOUT
from tradeguard.trace import TraceMeta

__all__ = [
    "DEFAULT_EXAMPLES",
    "DEFAULT_MAX_STEPS",
    "DEFAULT_TIMEOUT",
    "CatalogReport",
    "Counterexample",
    "InvariantReport",
    "check_trading_env",
]

DEFAULT_EXAMPLES = 100
"""Examples Hypothesis tries per invariant by default."""
DEFAULT_MAX_STEPS = 30
"""Longest generated action sequence by default."""
DEFAULT_TIMEOUT = 10.0
"""Seconds one example (every env call it makes) may take before the env counts as hanging."""
MAX_TIMEOUTS = 3
"""Timed-out examples after which the check stops (each one costs ``timeout`` seconds)."""

MAX_TIMEOUT_SECONDS = MAX_TIMEOUT
"""The longest ``timeout``, a day: beyond what the platform's clock can represent, every call
would time out at once and the env be blamed."""
END_WITHIN = 10_000
"""Steps ``step-after-end-refused`` plays (action 0) to reach the end of an episode."""


class _Abandon(BaseException):
    """The env timed out MAX_TIMEOUTS times: stop searching."""


def check_trading_env(
    make_env: Callable[[], Any],
    *,
    adapter: TraceAdapter | None = None,
    examples: int = DEFAULT_EXAMPLES,
    max_steps: int = DEFAULT_MAX_STEPS,
    seed: int | None = None,
    only: Iterable[str] | None = None,
    database: ExampleDatabase | str | None = None,
    name: str | None = None,
    raise_on_failure: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[int, int, str], None] | None = None,
    settings: SettingsSpec = None,
    reference: ReferenceSpec = None,
) -> CatalogReport:
    """Run the invariant catalog on Hypothesis-generated episodes of ``make_env()``'s env.

    For every invariant, Hypothesis searches up to ``examples`` episodes (action
    sequences, uniform, sticky, biased towards invalid actions, or drawn among the
    mask's valid actions; markets where the env takes one; seeds) for one that
    violates it, and shrinks what it finds to a minimal counterexample.

    Any gymnasium env with a ``Discrete``, ``MultiDiscrete`` or ``Box`` action space can be
    checked (an env on the old gym API, whose ``reset()`` takes no seed and whose ``step()``
    returns 4 values, through :class:`~tradeguard.invariants.OldGymAPI`, and the old API is
    reported in ``findings``): the space decides the generated actions (ids and mask-respecting plans for
    ``Discrete``, whose mask is read from ``action_masks()`` or ``info["action_mask"]``;
    members of the space, held, reversed and closed, for the others; see
    :func:`tradeguard.strategies.space_action_sequences`). The env is isolated: every call
    into it (``make_env()``, ``reset``, ``step``, ``action_masks``) runs with its own
    warning filters, global random generators, numpy error handling, root logger and
    stdout, and each change it makes to them is reported in ``findings`` (the host
    program's state is put back after every call). Every episode is bounded by
    ``max_steps`` actions and every example by ``timeout`` seconds: an env that raises
    or hangs fails ``valid-steps-do-not-raise`` with the call and its reproduction.

    Args:
        make_env: Zero-argument factory returning a fresh env each call.
        adapter: Turns the env's steps into trace records (default: chosen for the env:
            tradeguard's own, a built-in peer's, else :class:`GymAdapter`).
        examples: Episodes to try per invariant, in [1, 100000].
        max_steps: Longest action sequence, in [1, 10000].
        seed: Makes the search reproducible; ``None`` draws a fresh one (from the operating
            system, never the global generators), reported as :attr:`CatalogReport.seed` so
            that the run can be replayed.
        only: Invariant ids to check (default: the whole catalog).
        database: Where failing examples are saved and replayed first: ``None`` or ``"none"``
            (none), a directory, or a Hypothesis ``ExampleDatabase`` (e.g. Redis, shared by a
            team: ``resolve_database(url)``).
        name: The env's name in the report.
        raise_on_failure: Raise :class:`InvariantViolation` with the report if any fails.
        timeout: Seconds one example may take, > 0 and at most a day
            (``tradeguard.limits.MAX_TIMEOUT``); after MAX_TIMEOUTS timed-out
            examples the check stops and reports the rest as not checked. The first
            episode (the first ``make_env()``, which pays one-time costs such as
            importing the env's package) gets at least
            ``tradeguard.limits.FIRST_EPISODE_TIMEOUT`` (120 s).
        progress: Called as ``progress(done, total, invariant_id)`` before each invariant.
        settings: Settings fuzzing: a Hypothesis strategy of ``make_env``'s keyword arguments
            (e.g. ``st.fixed_dictionaries({"fee": st.floats(0, 0.01)})``), drawn with each
            example, which builds its env as ``make_env(**settings)`` (shrunk with the actions;
            a counterexample names them); ``"adapter"`` for the ones the adapter declares
            (its optional ``settings(env)`` hook; none drawn if it has none); ``None``
            (default): none drawn, ``make_env()`` for every example. Keyword arguments a
            ``functools.partial`` factory binds are fixed: drawn settings never override them.
        reference: A reference implementation the env must match (``matches-reference``): a
            factory called like ``make_env`` (with the drawn settings as keyword arguments, if
            any), whose env plays every example (and the same seed without the example's market)
            with the same observations, rewards, episode ends and trace records; ``"adapter"``
            for the one the adapter's optional ``reference(env)`` hook names; ``None`` (default):
            none, and ``matches-reference`` is not applicable.

    Returns:
        A :class:`CatalogReport`: ``pass``/``fail``/``not-applicable`` per invariant.

    Raises:
        InvalidConfig: an argument out of range, an action space that is none of
            ``Discrete`` from 0, ``MultiDiscrete`` and ``Box``, or an adapter that fails on
            the env's first step.
        InvariantViolation: with ``raise_on_failure``, when an invariant fails.

    Example:
        >>> from tradeguard.env import EnvConfig, TradingEnv
        >>> report = check_trading_env(lambda: TradingEnv(config=EnvConfig(episode_length=10)), examples=5, seed=0)
        >>> report.passed
        True
    """
    __tracebackhide__ = _violation_only  # pytest: the caller's line, then the report
    check_int("examples", examples, min_value=1, max_value=MAX_GATE_EXAMPLES)
    check_int("max_steps", max_steps, min_value=1, max_value=10_000)
    check_number("timeout", timeout, min_value=0.0, max_value=MAX_TIMEOUT_SECONDS, min_exclusive=True)
    invariants = select(only)
    db = gate_database(database)
    check_settings_spec(settings)
    check_reference_spec(reference)
    check_zero_arguments(make_env, name or callable_name(make_env))
    if seed is None:
        seed = SystemRandom().randrange(2**32)
    started = time.perf_counter()
    legacy = OldAPIFactory(make_env)  # an env on the old gym API is checked through OldGymAPI
    with Isolation(seed=seed, timeout=timeout) as iso:
        gate = _GateRun(
            iso, iso.guard(legacy), adapter, invariants, examples, max_steps, seed, db, name, progress,
            factory=name or callable_name(make_env), settings=settings, unguarded=make_env,
            reference=reference, asked=only is not None,
        )
        results, env_name, adapter_name = gate.run()
        if legacy.wrapped is not None:
            iso.findings.insert(0, old_api_finding(legacy.wrapped))
    report = CatalogReport(
        env=env_name,
        results=tuple(results),
        seed=seed,
        examples=examples,
        seconds=time.perf_counter() - started,
        findings=tuple(iso.findings),
        adapter=adapter_name,
        settings=gate.settings_note,
    )
    if raise_on_failure:
        report.raise_for_failures()
    return report


def _violation_only(excinfo: Any) -> bool:
    """pytest's ``__tracebackhide__`` as a callable: hide the frame under an InvariantViolation
    (the report says it all), keep it under any other exception (where it helps)."""
    return isinstance(getattr(excinfo, "value", None), InvariantViolation)


def _env_error(iso: Isolation, exc: BaseException) -> EnvCall | None:
    """The env call that raised ``exc``, or ``None`` when the env did not raise it (the adapter did)."""
    last = iso.last_error
    return last[0] if last is not None and last[1] is exc else None


class _GateRun:
    """One run of the gate on one env: the probe, the searches, a verdict per invariant.

    :meth:`run` does, in order: the probe (one env, one reset, one step, to learn the action
    space and what the adapter supplies; an env that cannot get that far fails
    ``valid-steps-do-not-raise``), one shared search over the trace invariants (each
    example checked against all of them), then one search per invariant, which replays the
    database's saved failures first and shrinks what fails. The env's own failures outside
    a recorded episode (a hang anywhere, a crash in a replay) are collected on the way and
    fail ``valid-steps-do-not-raise``; after ``MAX_TIMEOUTS`` hangs the run is abandoned and
    the rest reported as not checked.
    """

    # Learnt by the probe (_probe) and set up for the searches (_prepare).
    probe: Any
    first: RecordedEpisode
    chosen: TraceAdapter
    driver: ActionDriver
    n_actions: int | None
    meta: TraceMeta
    env_name: str
    offset: int
    strategy: st.SearchStrategy[_Example]
    base_seed: int | None
    settings: Settings
    replay_settings: Settings
    applicable: list[Invariant]
    traced: TraceApplicability
    reports: bool

    def __init__(
        self,
        iso: Isolation,
        make_env: Callable[[], Any],
        adapter: TraceAdapter | None,
        invariants: Sequence[Invariant],
        examples: int,
        max_steps: int,
        seed: int | None,
        db: ExampleDatabase | None,
        name: str | None,
        progress: Callable[[int, int, str], None] | None = None,
        *,
        factory: str = "make_env",
        settings: SettingsSpec = None,
        unguarded: Callable[..., Any] | None = None,
        reference: ReferenceSpec = None,
        asked: bool = False,
    ) -> None:
        self.iso = iso
        self.make_env = make_env
        self.adapter = adapter
        self.invariants = invariants
        self.examples = examples
        self.max_steps = max_steps
        self.seed = seed
        self.db = db
        self.name = name
        self.progress = progress
        self.factory = factory
        self.timeout = iso.timeout
        self.crashes = {inv.id: inv for inv in CATALOG}["valid-steps-do-not-raise"]
        # The env's own failures outside a recorded episode (a hang anywhere, a crash in a
        # replay or a fast-forward), each with the call that failed and its episode.
        self.env_failures: list[tuple[Violation, Counterexample]] = []
        self.abandoned = False
        # The shared search: how many examples it ran, and the invariants it saw failing.
        self.shared = 0
        self.failing: set[str] = set()
        # The env contract's shared search: how many examples it ran.
        self.shared_env = 0
        # Episodes the searches tried to record, and those that recorded a step (or ended cleanly): when
        # none did (every reset raised), no pass would mean anything.
        self.tried_episodes = 0
        self.ran_episodes = 0
        self.env_checks: list[Invariant] = []
        # Settings fuzzing: what was asked for, the factory of each drawn settings, the report's note.
        self.settings_spec = settings
        self.unguarded = unguarded
        self.factories: SettingsFactories | None = None
        self.settings_note: str | None = None
        # Differential checking: the reference asked for, and its factory of each drawn settings.
        self.reference_spec = reference
        self.has_reference = False
        self.reference_factories: SettingsFactories | None = None
        self.asked = asked  # the invariants were named (only=...), not the whole catalog

    # ------------------------------------------------------------------ the run
    def run(self) -> tuple[list[InvariantReport], str, str]:
        """Every invariant's report, the env's name and the adapter's."""
        unprobed = self._probe()
        if unprobed is not None:
            return unprobed
        self._prepare()
        with contextlib.suppress(_Abandon):
            if self.applicable:
                self.search("catalog", self.any_trace_failure)
            if self.env_checks:
                if self.progress is not None:
                    self.progress(0, len(self.invariants), "the env contract")
                self.search("contract", self.any_contract_failure)
        results: list[InvariantReport] = []
        for done, inv in enumerate(self.invariants):
            if self.progress is not None:
                self.progress(done, len(self.invariants), inv.id)
            results.append(self._verdict(inv))
        if self.env_failures:
            results = _with_env_failures(results, self.crashes, self.env_failures)
        if self.abandoned:
            self.iso.findings.append(
                f"the check stopped early: {len(self.iso.timeouts)} examples ran out of their {self.timeout:g} s budget"
            )
        return results, self.env_name, self.chosen.name

    def _probe(self) -> tuple[list[InvariantReport], str, str] | None:
        """One env, one reset, one step: ``None`` when it worked, else the reports of an env
        that cannot get that far (``valid-steps-do-not-raise`` fails, the rest not checked)."""
        iso, make_env, adapter, crashes = self.iso, self.make_env, self.adapter, self.crashes
        probe: Any = None
        first: RecordedEpisode | None = None
        failed: Violation | None = None
        # The first make_env() pays what the env costs once per process (importing its
        # package, reading its data): a slow import on a busy machine is not a hang.
        with iso.example(budget=max(self.timeout, FIRST_EPISODE_TIMEOUT)):
            try:
                probe = make_env()
                check_is_env(probe.tradeguard_target, self.factory)
                driver = action_driver(probe.action_space)
                adapter = adapter or adapter_for(probe)
                first = record_episode(make_env(), [driver.idle], seed=0, adapter=adapter)
            except InvalidConfig:
                raise
            except Exception as exc:
                call = _env_error(iso, exc)
                if call is None:
                    raise InvalidConfig(
                        f"the {getattr(adapter, 'name', 'given')} adapter failed on the env's first episode: "
                        f"{type(exc).__name__}: {exc}{_where(exc)}. Check that the adapter fits this env."
                    ) from exc
                failed = Violation(invariant=crashes.id, step=None, seed=0,
                                   message=f"{call.what} raised {type(exc).__name__}: {exc}{_where(exc)}")
        if iso.timed_out is not None:
            failed = _timeout_violation(iso.timed_out, self.timeout)
        adapter_name = getattr(adapter, "name", "") if adapter is not None else ""
        if failed is not None or first is None or adapter is None:
            assert failed is not None
            base = getattr(getattr(probe, "unwrapped", None), "tradeguard_target", None)
            env_name = self.name or (type(base).__name__ if base is not None else "the env")
            note = "not checked: the env could not reset and step once (see valid-steps-do-not-raise)"
            unprobed = [InvariantReport(invariant=inv, status="not-applicable", examples=0, note=note)
                        for inv in self.invariants
                        if inv.id != REFERENCE_INVARIANT or self.asked or callable(self.reference_spec)]
            cx = Counterexample(actions=(), action_names=(), masked=False, market=None, seed=0)
            return _with_env_failures(unprobed, crashes, [(failed, cx)]), env_name, adapter_name
        n_actions = driver.n_actions
        if n_actions is not None:
            check_meta_fits(first.trace.meta, n_actions, adapter_name)
        if isinstance(first.error, InvalidConfig) and _env_error(iso, first.error) is None:
            raise first.error  # the adapter's own, already saying what to fix (e.g. record() returned None)
        if first.error is not None and _env_error(iso, first.error) is None:
            raise InvalidConfig(
                f"the {adapter_name} adapter failed on the env's first step: {type(first.error).__name__}: "
                f"{first.error}{_where(first.error)}. Check that the adapter fits this env."
            ) from first.error
        self.probe, self.first, self.chosen, self.n_actions = probe, first, adapter, n_actions
        self.driver = driver
        return None

    def _prepare(self) -> None:
        """What every search shares: the strategy, the settings, the market's offset, the applicable invariants."""
        probe, first, adapter, max_steps = self.probe, self.first, self.chosen, self.max_steps
        length_of = getattr(adapter, "market_length", None)
        market_length = length_of(probe) if callable(length_of) else None
        has_mask = callable(getattr(probe.unwrapped, "action_masks", None)) or "action_mask" in (first.infos[0] or {})
        base = probe.unwrapped.tradeguard_target
        self.env_name = self.name or getattr(getattr(probe, "spec", None), "id", None) or type(base).__name__
        self.strategy = _examples_strategy(self.n_actions or 0, max_steps, has_mask and self.n_actions is not None,
                                           market_length, self.driver, market_kinds(adapter, probe),
                                           market_spare(adapter, probe) if market_length is not None else 0)
        self.base_seed = Random(self.seed).getrandbits(64) if self.seed is not None else None
        self._prepare_settings()
        self._prepare_reference()
        if not self.has_reference and not self.asked:
            # A check of a pair, not of the env: left out of a whole-catalog run without a reference,
            # rather than reported not-applicable for every env there is (named in only=, it is).
            self.invariants = [i for i in self.invariants if i.id != REFERENCE_INVARIANT]
        self.meta = meta = first.trace.meta
        if market_length is not None:  # an env whose reset ignores the market would be checked on its own data
            with self.iso.example():
                check_market_taken(self.make_env, adapter, market_length, self.driver.idle,
                                   minor_unit=minor_unit_of(probe))
        self.markets = ExampleMarkets(length_of if callable(length_of) else None, market_length,
                                      offset=max(0, market_length - (max_steps + 1)) if market_length is not None else 0,
                                      instruments=len(meta.instruments), build=self.factories)
        self.settings = Settings(
            max_examples=self.examples,
            database=self.db,
            derandomize=False,  # reproducibility comes from `seed`, not from Hypothesis' ci profile
            deadline=None,
            # No explain phase: the gate reports the shrunk example, never Hypothesis' comments on
            # it, and explaining re-runs the env hundreds of times per failing invariant.
            phases=tuple(p for p in Phase if p.name != "explain"),
            suppress_health_check=list(HealthCheck),
        )
        # Replaying saved failures only: the database's examples, shrunk if one still fails.
        self.replay_settings = Settings(self.settings, phases=(Phase.reuse, Phase.shrink))
        # One shared search over the trace invariants: each example is checked against all of
        # them. Only the ones it shows failing get a search of their own, which shrinks.
        self.reports = first.reported is not None  # the adapter hands over the env's own metrics
        self.traced = TraceApplicability(self.invariants, meta, reports=self.reports, drawn=self.factories is not None)
        self.applicable = self.traced.applicable
        self.env_checks = [i for i in self.invariants
                           if i.scope == "env" and i.why_not_applicable(meta, reported=self.reports) is None
                           and (i.id != REFERENCE_INVARIANT or self.has_reference)]

    def _prepare_settings(self) -> None:
        """Settings fuzzing, when asked for: the examples carry settings, each env is built with them."""
        spec = self.settings_spec
        drawn = declared_settings(self.chosen, self.probe) if spec == "adapter" else spec
        if drawn is None and spec == "adapter":  # asked for, none declared: said, not silent
            self.settings_note = f"none drawn: the {self.chosen.name} adapter declares no settings (a settings(env) hook)"
        if drawn is None:
            return
        unguarded = self.unguarded if self.unguarded is not None else self.make_env
        check_factory_takes_kwargs(unguarded, self.factory)
        self.factories = SettingsFactories(unguarded, functools.partial(_guarded, self.iso), self.factory)
        self.strategy = with_settings(self.strategy, drawn, unguarded)
        self.settings_note = (f"drawn from the {self.chosen.name} adapter's settings" if spec == "adapter"
                              else "drawn from the settings= strategy")

    def _prepare_reference(self) -> None:
        """Differential checking, when asked for: whether there is a reference, and its factories."""
        spec = self.reference_spec
        if spec == "adapter":
            self.has_reference = declared_reference(self.chosen, self.probe) is not None
            return
        self.has_reference = spec is not None
        if callable(spec) and self.factories is not None:
            self.reference_factories = SettingsFactories(spec, functools.partial(_guarded, self.iso),
                                                         callable_name(spec))

    def reference_of(self, ex: _Example, env: Any) -> Callable[[], Any]:
        """The factory of the reference ``ex``'s env (``env``) must match."""
        spec = self.reference_spec
        if spec == "adapter":
            made = declared_reference(self.chosen, env)
            if made is None:
                raise InvalidConfig(
                    f"the {self.chosen.name} adapter's reference(env) named a reference for the env built without "
                    f"settings, but none for the env built with {ex.settings!r}: it must name one for every env."
                )
            return _guarded(self.iso, made)
        assert callable(spec)
        if ex.settings is not None and self.reference_factories is not None:
            return self.reference_factories(ex.settings)
        return _guarded(self.iso, spec)

    def env_factory(self, ex: _Example) -> Callable[[], Any]:
        """The factory of ``ex``'s env: ``make_env(**ex.settings)`` when settings are drawn."""
        if ex.settings is None or self.factories is None:
            return self.make_env
        return self.factories(ex.settings)

    # ------------------------------------------------------------------ one example
    def options(self, ex: _Example) -> dict[str, Any] | None:
        market = self.markets.of(ex.market, ex.settings, ex.spare)
        return None if market is None else self.chosen.reset_options(market)

    def plan(self, ex: _Example) -> list[Any] | MaskedPlan:
        return MaskedPlan(ex.actions, self.n_actions or 0) if ex.kind == "masked" else list(ex.actions)

    def failure(self, v: Violation, call: EnvCall, settings: Any = None, spare: int = 0) -> None:
        """Keep the env's failure outside a recorded episode, with the episode that led to it."""
        meta = self.meta
        actions = tuple(self.driver.kept(a) for a in call.actions)
        market = (call.options or {}).get("market")
        prices = getattr(market, "prices", None)
        cx = Counterexample(
            actions=actions,
            action_names=tuple(self.driver.name(a, meta) for a in actions),
            masked=False,
            market=self.markets.shown(prices, len(actions), settings, spare),
            seed=call.seed if call.seed is not None else 0,
            settings=settings,
            minor_unit=getattr(market, "minor_unit", None),
        )
        self.env_failures.append((v, cx))

    def evaluate(self, ex: _Example, f: Callable[[_Example], list[Violation]]) -> list[Violation]:
        """``f(ex)``, isolated and time-bounded; the env's crashes and hangs become failures."""
        iso, crashes = self.iso, self.crashes
        if self.abandoned:
            raise _Abandon
        found: list[Violation] = []
        with iso.example():
            try:
                found = f(ex)
            except SettingsRefused:
                raise
            except Exception as exc:
                call = _env_error(iso, exc)
                if call is None:
                    raise
                self.failure(Violation(invariant=crashes.id, step=len(call.actions) - 1 if call.actions else None,
                                       message=f"{_called(call)} raised {type(exc).__name__}: {exc}{_where(exc)}",
                                       seed=call.seed),
                             call, ex.settings, ex.spare)
        if iso.timed_out is not None:
            self.failure(_timeout_violation(iso.timed_out, self.timeout), iso.timed_out.call, ex.settings, ex.spare)
            found = []
            if len(iso.timeouts) >= MAX_TIMEOUTS:
                self.abandoned = True
        return found

    def search(self, key: str, condition: Callable[[_Example], bool], replay_only: bool = False) -> _Example | None:
        return _find(
            self.strategy,
            condition,
            settings=self.replay_settings if replay_only else self.settings,
            seed=self.base_seed,
            database_key=f"tradeguard:{self.env_name}:{key}:{self.max_steps}{':settings' * bool(self.factories)}".encode(),
        )

    def trace_violations(self, ex: _Example, ids: Sequence[str]) -> list[Violation]:
        make_env, chosen, iso = self.env_factory(ex), self.chosen, self.iso
        ep = record_episode(make_env(), self.plan(ex), seed=ex.seed, options=self.options(ex), adapter=chosen)
        if ep.error is not None and _env_error(iso, ep.error) is None:
            raise ep.error  # the adapter's, not the env's
        self._recorded(ep)
        results = evaluate_trace(ep.trace, only=ids, reported=ep.reported)
        self.traced.observe(results, ep.trace.meta)
        return [v for res in results for v in res.violations]

    def env_violations(self, ex: _Example, inv: Invariant) -> list[Violation]:
        make_env, chosen, iso, plan, options = self.env_factory(ex), self.chosen, self.iso, self.plan, self.options
        if inv.id == "valid-steps-do-not-raise":
            ep = record_episode(make_env(), plan(ex), seed=ex.seed, options=options(ex), adapter=chosen)
            self._recorded(ep)
            if ep.error is None:
                return []
            steps = len(ep.trace)
            who = "the env" if _env_error(iso, ep.error) is not None else f"the {chosen.name} adapter"
            return [
                Violation(
                    invariant=inv.id,
                    step=steps,
                    message=f"{who} raised {type(ep.error).__name__}: {ep.error}{_where(ep.error)} (at step {steps}, "
                    f"after {steps} valid actions)",
                    seed=ex.seed,
                )
            ]
        if inv.id == REFERENCE_INVARIANT:
            return check_matches_reference(make_env, plan(ex), seed=ex.seed, options=options(ex), adapter=chosen,
                                           reference_of=functools.partial(self.reference_of, ex))
        extra = {"max_steps": END_WITHIN} if inv.id in ("step-after-end-refused", "episode-length-as-configured") else {}
        return CONTRACT_CHECKS[inv.id](make_env, plan(ex), seed=ex.seed, options=options(ex), adapter=chosen, **extra)

    def any_trace_failure(self, ex: _Example) -> bool:
        """The shared search's condition: notes every trace invariant the example breaks, never stops."""
        self.shared += 1
        self.tried_episodes += 1
        found = self.evaluate(ex, lambda e: self.trace_violations(e, [i.id for i in self.applicable]))
        self.failing.update(v.invariant for v in found)
        return False

    def any_contract_failure(self, ex: _Example) -> bool:
        """The env contract's shared search: every env-driving check on the example (each isolated
        and time-bounded on its own), noting each that fails; never stops. One search instead of
        one per check saves the generation of every example once per check."""
        self.shared_env += 1
        for inv in self.env_checks:
            self.tried_episodes += inv.id == "valid-steps-do-not-raise"
            # One seen failing gets its own search, which shrinks it.
            if inv.id not in self.failing and self.evaluate(ex, functools.partial(self.env_violations, inv=inv)):
                self.failing.add(inv.id)
        return False

    def _recorded(self, ep: RecordedEpisode) -> None:
        self.ran_episodes += bool(ep.trace.records) or ep.error is None

    # ------------------------------------------------------------------ one invariant
    def _pass(self, inv: Invariant, examples: int) -> InvariantReport:
        """``inv``'s pass over ``examples``, unless no episode of the run recorded a step: then nothing was checked."""
        report = (_passed(inv, examples, self.iso, self.make_env) if inv.scope == "env"
                  else self.traced.passed(inv, examples))
        if report.status != "pass" or self.ran_episodes or not self.tried_episodes:
            return report
        return InvariantReport(invariant=report.invariant, status="not-applicable", examples=0,
                               note=f"not checked: the env raised before a step could be recorded in every one of "
                               f"the {self.tried_episodes} episodes tried (see valid-steps-do-not-raise)")

    def not_checked(self, inv: Invariant) -> InvariantReport:
        return InvariantReport(invariant=inv, status="not-applicable", examples=0,
                               note=f"not checked: the env timed out {len(self.iso.timeouts)} times (see valid-steps-do-not-raise)")

    def _verdict(self, inv: Invariant) -> InvariantReport:
        """One invariant's report: not applicable, pass, or fail with its shrunk counterexample."""
        meta, chosen, iso, db = self.meta, self.chosen, self.iso, self.db
        if inv.scope != "env" and (unapplied := self.traced.not_applicable(inv, chosen.name)) is not None:
            return unapplied
        if inv.id == REFERENCE_INVARIANT and not self.has_reference:
            return InvariantReport(invariant=inv, status="not-applicable", examples=0, note=NO_REFERENCE)
        undeclared = inv.why_not_applicable(meta, reported=self.reports) if inv.scope == "env" else None
        if undeclared is not None:
            return InvariantReport(invariant=inv, status="not-applicable", examples=0,
                                   note=f"the {chosen.name} adapter: {undeclared}")
        if self.abandoned:
            return self.not_checked(inv)
        one = _InvariantSearch(self, inv)
        try:
            if inv.id not in self.failing:
                # Not seen failing in its shared search; give it its own search only when the
                # database may hold a failure saved by an earlier run (replayed first, cheaply).
                minimal = self.search(inv.id, one.violated, replay_only=True) if db is not None else None
                if minimal is None:
                    return self._pass(inv, max(self.shared_env if inv.scope == "env" else self.shared, one.examples))
            else:
                minimal = self.search(inv.id, one.violated)
                if minimal is None:
                    return self._pass(inv, one.examples)
            found = one.violations(minimal) or [Violation(
                invariant=inv.id, step=None, seed=minimal.seed,
                message="this episode failed once, but not when it was run again: the env does not behave "
                "the same on identical runs (see replay-determinism and seeding-honored)")]
            actions = tuple(self.driver.kept(a) for a in _taken(minimal, self.n_actions or 0, self.env_factory(minimal),
                                                                chosen, self.options(minimal), iso))
        except _Abandon:
            return self.not_checked(inv)
        shown = self.markets.of(minimal.market, minimal.settings, minimal.spare)
        cx = Counterexample(
            actions=actions,
            action_names=tuple(self.driver.name(a, meta) for a in actions),
            masked=minimal.kind == "masked",
            market=self.markets.shown(getattr(shown, "prices", None), len(actions), minimal.settings, minimal.spare),
            seed=minimal.seed,
            settings=minimal.settings,
            minor_unit=getattr(minimal.market, "minor_unit", None),
        )
        return InvariantReport(
            invariant=inv, status="warn" if inv.severity == "warning" else "fail", examples=one.examples,
            violations=tuple(found), counterexample=cx,
        )


class _InvariantSearch:
    """The condition one invariant's search tests, counting the examples it ran."""

    def __init__(self, run: _GateRun, inv: Invariant) -> None:
        self.run = run
        self.inv = inv
        self.examples = 0

    def violations(self, ex: _Example) -> list[Violation]:
        self.examples += 1
        run, inv = self.run, self.inv
        if inv.scope == "env":
            return run.evaluate(ex, lambda e: run.env_violations(e, inv))
        return run.evaluate(ex, lambda e: run.trace_violations(e, [inv.id]))

    def violated(self, ex: _Example) -> bool:
        return bool(self.violations(ex))


def _guarded(iso: Isolation, make_env: Callable[[], Any]) -> Callable[[], Any]:
    """``make_env`` as the gate calls it: isolated, an env on the old gym API wrapped."""
    return iso.guard(OldAPIFactory(make_env))


def _timeout_violation(exc: CallTimedOut, timeout: float) -> Violation:
    call = exc.call
    if exc.budget > timeout:  # the first episode's: the env's one-time costs had their own budget
        what = (f"the first episode's {exc.budget:g} s budget (for the env's one-time costs: imports, "
                f"data) ran out during {call.what} (which had run {exc.elapsed:.1f} s of it): the env hangs")
    else:
        what = (f"the example's {timeout:g} s budget ran out during {call.what} (which had run "
                f"{exc.elapsed:.1f} s of it): the env hangs, or is too slow for timeout={timeout:g}")
    return Violation(
        invariant="valid-steps-do-not-raise",
        step=len(call.actions) - 1 if call.actions else None,
        message=what,
        seed=call.seed,
    )


def _with_env_failures(
    results: list[InvariantReport], crashes: Invariant, failures: list[tuple[Violation, Counterexample]]
) -> list[InvariantReport]:
    """Fail valid-steps-do-not-raise with the env's failures outside recorded episodes (shortest first)."""
    failures = sorted(failures, key=lambda f: len(f[1].actions))
    extra = tuple(v for v, _ in failures)
    for i, r in enumerate(results):
        if r.invariant is crashes:
            if r.status == "fail":
                results[i] = replace(r, violations=r.violations + extra)
            else:
                results[i] = InvariantReport(invariant=crashes, status="fail", examples=max(r.examples, len(extra)),
                                             violations=extra, counterexample=failures[0][1])
            return results
    # Not among the selected invariants: reported anyway, since a crash or a hang must never
    # leave the gate green.
    return [*results, InvariantReport(invariant=crashes, status="fail", examples=len(extra), violations=extra,
                                      counterexample=failures[0][1])]


def _passed(inv: Invariant, examples: int, iso: Isolation, make_env: Callable[[], Any]) -> InvariantReport:
    """A pass, unless the invariant could not be exercised (no episode ever ended)."""
    if inv.id == "step-after-end-refused" and examples and not _ends(iso, make_env):
        return InvariantReport(invariant=inv, status="not-applicable", examples=examples,
                               note=f"not checked: an episode of action 0 did not end within {END_WITHIN} steps")
    return InvariantReport(invariant=inv, status="pass", examples=examples)


def _ends(iso: Isolation, make_env: Callable[[], Any]) -> bool:
    ended = True
    with iso.example():
        try:
            env = make_env()
            env.reset(seed=0)
            idle = idle_action(env.action_space)
            for _ in range(END_WITHIN):
                _, _, terminated, truncated, _ = env.step(idle)
                if terminated or truncated:
                    break
            else:
                ended = False
        except Exception:
            pass  # a crash is valid-steps-do-not-raise's finding; the episode ended either way
    return ended and iso.timed_out is None


def _taken(
    ex: _Example, n_actions: int, make_env: Callable[[], Any], adapter: TraceAdapter,
    options: dict[str, Any] | None, iso: Isolation,
) -> tuple[Any, ...]:
    if ex.kind != "masked":
        return ex.actions
    plan = MaskedPlan(ex.actions, n_actions)
    with iso.example():
        record_episode(make_env(), plan, seed=ex.seed, options=options, adapter=adapter)
    return tuple(plan.taken)


def _called(call: EnvCall) -> str:
    """The call as it was made: a reset with the example's market says so (``reset(seed=0)`` with options {'prices': ...})."""
    if call.what.startswith("reset(") and call.options:
        return f"{call.what} with options {{{', '.join(f'{k!r}: ...' for k in call.options)}}}"
    return call.what


def _where(exc: BaseException) -> str:
    """``", in step() at my_env.py:87"``: where in the env ``exc`` was raised, for a crash's message."""
    at = raised_at(exc)
    return f", {at}" if at else ""
