"""The gate: the whole catalog run on Hypothesis-generated episodes, shrunk counterexamples.

:func:`check_trading_env` is the trading counterpart of gymnasium's ``check_env``:
for each invariant it searches, with Hypothesis, for an episode (actions, market,
seed) that violates it, and shrinks any it finds to a minimal one.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import unittest
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from random import Random
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from tradeguard._validation import check_int, check_number
from tradeguard.errors import InvalidConfig, InvariantViolation
from tradeguard.invariants._adapter import TraceAdapter, adapter_for
from tradeguard.invariants._catalog import CATALOG
from tradeguard.invariants._check import evaluate_trace, select
from tradeguard.invariants._contract import (
    CONTRACT_CHECKS,
    MaskedPlan,
    RecordedEpisode,
    record_episode,
)
from tradeguard.invariants._isolation import CallTimedOut, EnvCall, Isolation
from tradeguard.invariants._legacy import OldAPIFactory, old_api_finding
from tradeguard.invariants._model import Invariant, Status, Violation
from tradeguard.invariants._spaces import ActionDriver, action_driver, idle_action
from tradeguard.limits import MAX_GATE_EXAMPLES, MAX_TIMEOUT

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Counterexample:
    """A minimal episode that violates an invariant: replay it with ``replay``.

    Attributes:
        actions: The actions predicted: ids for a ``Discrete`` space (after mapping a masked
            plan), tuples of numbers for a ``Box`` or ``MultiDiscrete`` one.
        action_names: The same, by name (``[0.5, 0, 1]`` for a ``Box`` action).
        masked: Whether the actions were drawn among the mask's valid ones.
        market: The prices the actions traded (minor units; the market stays flat after
            them), or ``None`` if the env made its own.
        seed: The seed passed to ``reset``.
    """

    actions: tuple[Any, ...]
    action_names: tuple[str, ...]
    masked: bool
    market: tuple[int, ...] | None
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "actions": list(self.actions),
            "action_names": list(self.action_names),
            "masked": self.masked,
            "market": None if self.market is None else list(self.market),
            "seed": self.seed,
        }

    def __str__(self) -> str:
        prices = "" if self.market is None else f" on prices {list(self.market)}"
        return f"seed {self.seed}, actions {list(self.action_names)}{prices}"


@dataclass(frozen=True, slots=True, kw_only=True)
class InvariantReport:
    """One invariant's verdict from the gate."""

    invariant: Invariant
    status: Status
    examples: int
    violations: tuple[Violation, ...] = ()
    counterexample: Counterexample | None = None
    note: str = ""
    missing: tuple[str, ...] = ()
    """The record fields the adapter does not supply, when that made the invariant not applicable."""

    def as_dict(self) -> dict[str, Any]:
        cx = None if self.counterexample is None else self.counterexample.as_dict()
        return {
            "id": self.invariant.id,
            "statement": self.invariant.statement,
            "family": self.invariant.family,
            "scope": self.invariant.scope,
            "status": self.status,
            "examples": self.examples,
            "violations": [{**v.as_dict(), "counterexample": cx} for v in self.violations],
            **({"note": self.note} if self.note else {}),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogReport:
    """The gate's verdict on one env: every invariant's status, examples, counterexamples."""

    env: str
    results: tuple[InvariantReport, ...]
    seed: int | None
    examples: int
    seconds: float
    findings: tuple[str, ...] = field(default_factory=tuple)
    adapter: str = ""

    @property
    def passed(self) -> bool:
        """True when no invariant failed (not-applicable ones do not count as passed or failed)."""
        return all(r.status != "fail" for r in self.results)

    @property
    def failures(self) -> tuple[InvariantReport, ...]:
        return tuple(r for r in self.results if r.status == "fail")

    @property
    def not_supplied(self) -> tuple[InvariantReport, ...]:
        """The invariants not checked because the adapter does not supply the fields they read."""
        return tuple(r for r in self.results if r.status == "not-applicable" and r.missing)

    def as_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "adapter": self.adapter,
            "passed": self.passed,
            "seed": self.seed,
            "examples_per_invariant": self.examples,
            "seconds": round(self.seconds, 3),
            "findings": list(self.findings),
            "not_checked_by_adapter": [r.invariant.id for r in self.not_supplied],
            "invariants": [r.as_dict() for r in self.results],
        }

    def format(self) -> str:
        """The report as a table, then each failure with its shrunk counterexample."""
        via = f" via the {self.adapter} adapter" if self.adapter else ""
        lines = [f"tradeguard check: {self.env}{via}  ({self.seconds:.1f} s, up to {self.examples} examples per invariant)", ""]
        for r in self.results:
            mark = {"pass": "pass", "fail": "FAIL", "not-applicable": "n/a "}[r.status]
            lines.append(f"  {mark}  {r.invariant.id:<36} {r.examples:>5} examples  {r.note}")
        for r in self.failures:
            lines += ["", f"FAIL {r.invariant.id}: {r.invariant.statement}"]
            if r.counterexample is not None:
                lines.append(f"  minimal counterexample: {r.counterexample}")
            lines += [str(v) for v in r.violations[:5]]
        for finding in self.findings:
            lines += ["", f"finding: {finding}"]
        passed = sum(r.status == "pass" for r in self.results)
        na = sum(r.status == "not-applicable" for r in self.results)
        lines += ["", f"{passed} passed, {len(self.failures)} failed, {na} not applicable"]
        unchecked = self.not_supplied
        if unchecked:
            fields = {f for r in unchecked for f in r.missing}
            were = "invariant was" if len(unchecked) == 1 else "invariants were"
            fix = (
                "Write an adapter for this env (about 40 lines, see docs/adapters.md) to check them."
                if self.adapter == "gym"
                else "An adapter that supplies them checks them too (docs/adapters.md)."
            )
            lines.append(
                f"{len(unchecked)} {were} not checked: the {self.adapter or 'given'} adapter does not supply "
                f"{_in_words(fields)}. {fix}"
            )
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        """Raise :class:`InvariantViolation` with :meth:`format` if any invariant failed."""
        __tracebackhide__ = True  # pytest: the caller's line, then the report
        if not self.passed:
            raise InvariantViolation(self.format())


_FIELD_WORDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("positions", frozenset({"position_before", "position_after", "quantity"})),
    ("cost bases", frozenset({"cost_basis_before"})),
    ("cash", frozenset({"cash_before", "cash_after"})),
    ("equity", frozenset({"equity_before", "equity_after"})),
    ("prices", frozenset({"price", "next_price"})),
    ("fees", frozenset({"fee"})),
    ("executions", frozenset({"executed", "rejected", "reason"})),
    ("action masks", frozenset({"mask"})),
    ("reward components", frozenset({"components"})),
    ("steps", frozenset({"t"})),
    ("predicted actions", frozenset({"predicted"})),
    ("rewards", frozenset({"reward"})),
)
"""Record fields in a trader's words, in the order a report names them."""


def _in_words(fields: Iterable[str]) -> str:
    """``{"cash_after", "executed", "quantity"}`` -> ``"positions, cash or executions"``."""
    fields = set(fields)
    words = [word for word, group in _FIELD_WORDS if group & fields]
    named = set().union(*(group for _, group in _FIELD_WORDS))
    words += sorted(fields - named)  # a field this table does not know, by its own name
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


@dataclass(frozen=True, slots=True)
class _Example:
    kind: str  # "plain" | "masked"
    actions: tuple[Any, ...]
    market: Any
    seed: int


def _database(database: ExampleDatabase | str | None) -> ExampleDatabase | None:
    if database is None or isinstance(database, ExampleDatabase):
        return database
    if isinstance(database, str):
        from tradeguard.invariants._database import _redact, is_url

        if is_url(database):
            raise InvalidConfig(
                f"database={_redact(database)!r} is a URL; check_trading_env takes a directory path, None, "
                "or an ExampleDatabase. For a shared Redis, pass resolve_database(url) (from tradeguard.invariants)."
            )
        return DirectoryBasedExampleDatabase(database)
    raise InvalidConfig(f"database={database!r}; expected None, a directory path or an ExampleDatabase.")


def _examples_strategy(n_actions: int, max_steps: int, masked: bool, market_length: int | None,
                       driver: ActionDriver | None = None) -> st.SearchStrategy[_Example]:
    from tradeguard.strategies import action_plans, action_sequences, markets

    plain: st.SearchStrategy[tuple[str, tuple[Any, ...]]]
    if driver is not None and driver.kind != "discrete":  # Box, MultiDiscrete: members of the space
        plain = driver.sequences(max_steps).map(lambda a: ("plain", a))
    else:
        plain = st.one_of(
            action_sequences(max_size=max_steps, n_actions=n_actions),
            action_sequences(max_size=max_steps, n_actions=n_actions, style="sticky"),
            *(
                [action_sequences(max_size=max_steps, n_actions=n_actions, style="invalid-biased")]
                if n_actions == 7
                else []
            ),
        ).map(lambda a: ("plain", tuple(a)))
    sources = [plain]
    if masked:
        sources.append(action_plans(max_size=max_steps, n_actions=n_actions).map(lambda p: ("masked", tuple(p))))
    # Markets are drawn short and held flat after their last price, so that a shrunk
    # counterexample's prices move where its actions are, not at the end of the episode.
    market_s: st.SearchStrategy[Any] = (
        st.none()
        if market_length is None
        else markets(min_length=2, max_length=market_length).map(lambda m: _hold_flat(m, market_length))
    )
    return st.builds(
        lambda src, m, s: _Example(src[0], src[1], m, s),
        st.one_of(sources),
        market_s,
        st.integers(0, 2**16),
    )


class _Found(Exception):
    pass


def _find(
    strategy: st.SearchStrategy[_Example],
    condition: Callable[[_Example], bool],
    *,
    settings: Settings,
    seed: int | None,
    database_key: bytes,
) -> _Example | None:
    """``hypothesis.find`` that is seeded *and* keeps its example database.

    ``find(random=...)`` applies ``@seed``, which turns the database off; a gate needs
    both: the same search for the same seed, and failures saved to be replayed first
    on the next run. So the seed is set the way ``@seed`` sets it, minus that.
    """
    last: list[_Example] = []

    def test(example: _Example) -> None:
        if condition(example):
            last[:] = [example]
            raise _Found

    if seed is not None:
        test._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    runner = Settings(settings, report_multiple_bugs=False)(given(strategy)(test))
    runner._hypothesis_internal_database_key = database_key  # type: ignore[attr-defined]
    try:
        runner()
    except _Found:
        return last[0]
    except unittest.SkipTest:  # replay-only with nothing saved: nothing to run
        return None
    return None


def _hold_flat(market: Any, length: int) -> Any:
    from tradeguard.env import Market

    prices = market.prices
    if len(prices) >= length:
        return market
    padded = np.concatenate((prices, np.full(length - len(prices), prices[-1], dtype=prices.dtype)))
    return Market(padded, market.minor_unit, market.name)


def _shown_prices(prices: Any, upto: int) -> tuple[int, ...]:
    """The prices a counterexample of ``upto`` steps trades (one more marks the last step)."""
    return tuple(int(p) for p in prices[: upto + 1])


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
        seed: Makes the search reproducible; ``None`` draws a fresh one.
        only: Invariant ids to check (default: the whole catalog).
        database: Where failing examples are saved and replayed first: ``None`` (none),
            a directory, or a Hypothesis ``ExampleDatabase`` (e.g. Redis, shared by a team).
        name: The env's name in the report.
        raise_on_failure: Raise :class:`InvariantViolation` with the report if any fails.
        timeout: Seconds one example may take, > 0 and at most a day
            (``MAX_TIMEOUT_SECONDS``); after MAX_TIMEOUTS timed-out
            examples the check stops and reports the rest as not checked.
        progress: Called as ``progress(done, total, invariant_id)`` before each invariant.

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
    db = _database(database)
    _check_zero_arguments(make_env, name or _callable_name(make_env))
    started = time.perf_counter()
    legacy = OldAPIFactory(make_env)  # an env on the old gym API is checked through OldGymAPI
    with Isolation(seed=seed, timeout=timeout) as iso:
        results, env_name, adapter_name = _run(
            iso, iso.guard(legacy), adapter, invariants, examples, max_steps, seed, db, name, progress,
            factory=name or _callable_name(make_env),
        )
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


def _run(
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
) -> tuple[list[InvariantReport], str, str]:
    timeout = iso.timeout
    by_id = {inv.id: inv for inv in CATALOG}
    crashes = by_id["valid-steps-do-not-raise"]

    # The probe: one env, one reset, one step, to learn the action space and what the
    # adapter supplies. An env that cannot get that far fails valid-steps-do-not-raise.
    probe: Any = None
    first: RecordedEpisode | None = None
    failed: Violation | None = None
    with iso.example():
        try:
            probe = make_env()
            _check_is_env(probe.tradeguard_target, factory)
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
                    f"{type(exc).__name__}: {exc}. Check that the adapter fits this env."
                ) from exc
            failed = Violation(invariant=crashes.id, step=None, seed=0,
                               message=f"{call.what} raised {type(exc).__name__}: {exc}")
    if iso.timed_out is not None:
        failed = _timeout_violation(iso.timed_out, timeout)
    adapter_name = getattr(adapter, "name", "") if adapter is not None else ""
    if failed is not None or first is None or adapter is None:
        assert failed is not None
        base = getattr(getattr(probe, "unwrapped", None), "tradeguard_target", None)
        env_name = name or (type(base).__name__ if base is not None else "the env")
        note = "not checked: the env could not reset and step once (see valid-steps-do-not-raise)"
        unprobed = [InvariantReport(invariant=inv, status="not-applicable", examples=0, note=note) for inv in invariants]
        cx = Counterexample(actions=(), action_names=(), masked=False, market=None, seed=0)
        return _with_env_failures(unprobed, crashes, [(failed, cx)]), env_name, adapter_name
    n_actions = driver.n_actions
    if n_actions is not None:
        _check_meta_fits(first.trace.meta, n_actions, adapter_name)
    if isinstance(first.error, InvalidConfig) and _env_error(iso, first.error) is None:
        raise first.error  # the adapter's own, already saying what to fix (e.g. record() returned None)
    if first.error is not None and _env_error(iso, first.error) is None:
        raise InvalidConfig(
            f"the {adapter_name} adapter failed on the env's first step: {type(first.error).__name__}: "
            f"{first.error}. Check that the adapter fits this env."
        ) from first.error

    length_of = getattr(adapter, "market_length", None)
    market_length = length_of(probe) if callable(length_of) else None
    offset = max(0, market_length - (max_steps + 1)) if market_length is not None else 0
    has_mask = callable(getattr(probe.unwrapped, "action_masks", None)) or "action_mask" in (first.infos[0] or {})
    base = probe.unwrapped.tradeguard_target
    env_name = name or getattr(getattr(probe, "spec", None), "id", None) or type(base).__name__
    strategy = _examples_strategy(n_actions or 0, max_steps, has_mask and n_actions is not None, market_length, driver)
    base_seed = Random(seed).getrandbits(64) if seed is not None else None
    meta = first.trace.meta
    chosen: TraceAdapter = adapter

    def options(ex: _Example) -> dict[str, Any] | None:
        return None if ex.market is None else chosen.reset_options(ex.market)

    def plan(ex: _Example) -> list[Any] | MaskedPlan:
        return MaskedPlan(ex.actions, n_actions or 0) if ex.kind == "masked" else list(ex.actions)

    settings = Settings(
        max_examples=examples,
        database=db,
        derandomize=False,  # reproducibility comes from `seed`, not from Hypothesis' ci profile
        deadline=None,
        # No explain phase: the gate reports the shrunk example, never Hypothesis' comments on
        # it, and explaining re-runs the env hundreds of times per failing invariant.
        phases=tuple(p for p in Phase if p.name != "explain"),
        suppress_health_check=list(HealthCheck),
    )

    # The env's own failures outside a recorded episode (a hang anywhere, a crash in a
    # replay or a fast-forward), each with the call that failed and its episode.
    env_failures: list[tuple[Violation, Counterexample]] = []
    abandoned = [False]

    def failure(v: Violation, call: EnvCall) -> None:
        actions = tuple(driver.kept(a) for a in call.actions)
        market = (call.options or {}).get("market")
        prices = getattr(market, "prices", None)
        cx = Counterexample(
            actions=actions,
            action_names=tuple(driver.name(a, meta) for a in actions),
            masked=False,
            market=None if prices is None else _shown_prices(prices, offset + len(actions)),
            seed=call.seed if call.seed is not None else 0,
        )
        env_failures.append((v, cx))

    def evaluate(ex: _Example, f: Callable[[_Example], list[Violation]]) -> list[Violation]:
        if abandoned[0]:
            raise _Abandon
        found: list[Violation] = []
        with iso.example():
            try:
                found = f(ex)
            except Exception as exc:
                call = _env_error(iso, exc)
                if call is None:
                    raise
                failure(Violation(invariant=crashes.id, step=len(call.actions) - 1 if call.actions else None,
                                  message=f"{call.what} raised {type(exc).__name__}: {exc}", seed=call.seed), call)
        if iso.timed_out is not None:
            failure(_timeout_violation(iso.timed_out, timeout), iso.timed_out.call)
            found = []
            if len(iso.timeouts) >= MAX_TIMEOUTS:
                abandoned[0] = True
        return found

    # Replaying saved failures only: the database's examples, shrunk if one still fails.
    replay_settings = Settings(settings, phases=(Phase.reuse, Phase.shrink))

    def search(key: str, condition: Callable[[_Example], bool], replay_only: bool = False) -> _Example | None:
        return _find(
            strategy,
            condition,
            settings=replay_settings if replay_only else settings,
            seed=base_seed,
            database_key=f"tradeguard:{env_name}:{key}:{max_steps}".encode(),
        )

    def trace_violations(ex: _Example, ids: Sequence[str]) -> list[Violation]:
        ep = record_episode(make_env(), plan(ex), seed=ex.seed, options=options(ex), adapter=chosen)
        if ep.error is not None and _env_error(iso, ep.error) is None:
            raise ep.error  # the adapter's, not the env's
        return [v for res in evaluate_trace(ep.trace, only=ids, reported=ep.reported) for v in res.violations]

    def env_violations(ex: _Example, inv: Invariant) -> list[Violation]:
        if inv.id == "valid-steps-do-not-raise":
            ep = record_episode(make_env(), plan(ex), seed=ex.seed, options=options(ex), adapter=chosen)
            if ep.error is None:
                return []
            steps = len(ep.trace)
            who = "the env" if _env_error(iso, ep.error) is not None else f"the {chosen.name} adapter"
            return [
                Violation(
                    invariant=inv.id,
                    step=steps,
                    message=f"{who} raised {type(ep.error).__name__}: {ep.error} (at step {steps}, "
                    f"after {steps} valid actions)",
                    seed=ex.seed,
                )
            ]
        extra = {"max_steps": END_WITHIN} if inv.id == "step-after-end-refused" else {}
        return CONTRACT_CHECKS[inv.id](make_env, plan(ex), seed=ex.seed, options=options(ex), adapter=chosen, **extra)

    # One shared search over the trace invariants: each example is checked against all of
    # them. Only the ones it shows failing get a search of their own, which shrinks.
    reports = first.reported is not None  # the adapter hands over the env's own metrics
    applicable = [i for i in invariants if i.scope != "env" and i.applicable(meta, reported=reports)]
    failing: set[str] = set()
    shared = [0]

    def any_trace_failure(ex: _Example) -> bool:
        shared[0] += 1
        found = evaluate(ex, lambda e: trace_violations(e, [i.id for i in applicable]))
        failing.update(v.invariant for v in found)
        return False

    def not_checked(inv: Invariant) -> InvariantReport:
        return InvariantReport(invariant=inv, status="not-applicable", examples=0,
                               note=f"not checked: the env timed out {len(iso.timeouts)} times (see valid-steps-do-not-raise)")

    with contextlib.suppress(_Abandon):
        if applicable:
            search("catalog", any_trace_failure)

    results: list[InvariantReport] = []
    for done, inv in enumerate(invariants):
        if progress is not None:
            progress(done, len(invariants), inv.id)
        if inv.scope != "env" and inv not in applicable:
            if "reported_metrics" in inv.needs and not reports:
                results.append(InvariantReport(invariant=inv, status="not-applicable", examples=0,
                                               note="needs reported metrics (the adapter's reported_metrics hook)"))
                continue
            missing = tuple(sorted(set(inv.needs) - {"reported_metrics"} - meta.supplies))
            why = inv.why_not_applicable(meta, reported=reports) or ""
            note = f"the {chosen.name} adapter does not supply {', '.join(missing)}" if missing else why
            results.append(InvariantReport(invariant=inv, status="not-applicable", examples=0, note=note,
                                           missing=missing))
            continue
        if abandoned[0]:
            results.append(not_checked(inv))
            continue
        counter = [0]

        def violations_of(ex: _Example, inv: Invariant = inv, counter: list[int] = counter) -> list[Violation]:
            counter[0] += 1
            if inv.scope == "env":
                return evaluate(ex, lambda e: env_violations(e, inv))
            return evaluate(ex, lambda e: trace_violations(e, [inv.id]))

        def violated(ex: _Example, f: Callable[[_Example], list[Violation]] = violations_of) -> bool:
            return bool(f(ex))

        try:
            if inv.scope != "env" and inv.id not in failing:
                # Not seen failing in the shared search; give it its own search only when the
                # database may hold a failure saved by an earlier run (replayed first, cheaply).
                minimal = search(inv.id, violated, replay_only=True) if db is not None else None
                if minimal is None:
                    results.append(InvariantReport(invariant=inv, status="pass", examples=max(shared[0], counter[0])))
                    continue
            else:
                minimal = search(inv.id, violated)
                if minimal is None:
                    results.append(_passed(inv, counter[0], iso, make_env))
                    continue
            found = violations_of(minimal)
            actions = tuple(driver.kept(a) for a in _taken(minimal, n_actions or 0, make_env, chosen,
                                                               options(minimal), iso))
        except _Abandon:
            results.append(not_checked(inv))
            continue
        cx = Counterexample(
            actions=actions,
            action_names=tuple(driver.name(a, meta) for a in actions),
            masked=minimal.kind == "masked",
            market=None if minimal.market is None else _shown_prices(minimal.market.prices, offset + len(actions)),
            seed=minimal.seed,
        )
        results.append(
            InvariantReport(
                invariant=inv, status="fail", examples=counter[0], violations=tuple(found), counterexample=cx
            )
        )
    if env_failures:
        results = _with_env_failures(results, crashes, env_failures)
    if abandoned[0]:
        iso.findings.append(
            f"the check stopped early: {len(iso.timeouts)} examples ran out of their {timeout:g} s budget"
        )
    return results, env_name, chosen.name


_ENV_API = ("reset", "step", "action_space", "observation_space")
"""What the gate needs of an env: the gymnasium API it drives."""


def _callable_name(fn: Any) -> str:
    """``module:qualname`` of a factory, for messages (its ``repr`` when it has no name)."""
    qualname = getattr(fn, "__qualname__", None)
    if qualname is None:
        return repr(fn)
    module = getattr(fn, "__module__", None)
    return f"{module}:{qualname}" if module else str(qualname)


def _check_zero_arguments(make_env: Any, factory: str) -> None:
    """Refuse a factory that cannot be called with no arguments (before it is called and blamed as the env)."""
    if not callable(make_env):
        raise InvalidConfig(
            f"make_env={make_env!r} is a {type(make_env).__name__}, not callable; expected a zero-argument "
            "callable that returns a fresh env each call (e.g. a class, a function or a lambda)."
        )
    try:
        signature = inspect.signature(make_env)
    except (TypeError, ValueError):  # no signature to read (some builtins): let the call tell
        return
    try:
        signature.bind()
    except TypeError:
        needed = [
            p.name for p in signature.parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        short = getattr(make_env, "__name__", None) or "make_env"
        example = ", ".join(f"{n}=..." for n in needed)
        raise InvalidConfig(
            f"the env factory {factory} needs arguments ({', '.join(needed)}); the check calls it with "
            f"none, for a fresh env each time. Give a zero-argument callable, e.g. "
            f"functools.partial({short}, {example}) or lambda: {short}({example})."
        ) from None


def _check_is_env(env: Any, factory: str) -> None:
    """Refuse what a factory returned when it is not a gymnasium env (before any adapter reads it)."""
    missing = []
    for attr in _ENV_API:
        try:
            value = getattr(env, attr)
        except AttributeError:
            missing.append(attr)
            continue
        except Exception:  # a property of the env that raises: the env's own failure, reported later
            continue
        if attr in ("reset", "step") and not callable(value):
            missing.append(attr)
    if not missing:
        return
    text = repr(env)
    shown = "None" if env is None else f"a {type(env).__name__} ({text if len(text) <= 60 else text[:57] + '...'})"
    lacks = "none of them" if len(missing) == len(_ENV_API) else f"no {' and no '.join(missing)}"
    raise InvalidConfig(
        f"the env factory {factory} returned {shown}, not a gymnasium env: the check needs "
        f"{', '.join(_ENV_API[:-1])} and {_ENV_API[-1]}, and it has {lacks}. Give a zero-argument "
        "callable that returns a fresh env each call (e.g. mypackage.envs:make_env)."
    )


def _check_meta_fits(meta: Any, n_actions: int, adapter: str) -> None:
    """Refuse an adapter whose ``TraceMeta`` names fewer actions than the env has (more is
    fine: an adapter may add virtual actions after the env's, e.g. ``(no trade)``)."""
    names = meta.action_names
    if len(names) < n_actions:
        raise InvalidConfig(
            f"the {adapter} adapter's meta() names {len(names)} actions {tuple(names)!r}, but the env's "
            f"action_space has {n_actions} (Discrete({n_actions})); expected a name and a kind for each "
            f"action id 0..{n_actions - 1} (virtual actions of the adapter's own may follow). Fix the "
            "adapter's TraceMeta(action_names=..., action_kinds=...)."
        )


def _timeout_violation(exc: CallTimedOut, timeout: float) -> Violation:
    call = exc.call
    return Violation(
        invariant="valid-steps-do-not-raise",
        step=len(call.actions) - 1 if call.actions else None,
        message=f"the example's {timeout:g} s budget ran out during {call.what} (which had run "
        f"{exc.elapsed:.1f} s of it): the env hangs, or is too slow for timeout={timeout:g}",
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
