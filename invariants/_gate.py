"""The gate: the whole catalog run on Hypothesis-generated episodes, shrunk counterexamples.

:func:`check_trading_env` is the trading counterpart of gymnasium's ``check_env``:
for each invariant it searches, with Hypothesis, for an episode (actions, market,
seed) that violates it, and shrinks any it finds to a minimal one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from tradeguard._validation import check_int
from tradeguard.errors import InvalidConfig, InvariantViolation
from tradeguard.invariants._adapter import NativeAdapter, TraceAdapter
from tradeguard.invariants._check import evaluate_trace, select
from tradeguard.invariants._contract import CONTRACT_CHECKS, MaskedPlan, record_episode
from tradeguard.invariants._model import Invariant, Status, Violation

__all__ = [
    "check_trading_env",
    "CatalogReport",
    "InvariantReport",
    "Counterexample",
    "DEFAULT_EXAMPLES",
    "DEFAULT_MAX_STEPS",
]

DEFAULT_EXAMPLES = 100
"""Examples Hypothesis tries per invariant by default."""
DEFAULT_MAX_STEPS = 30
"""Longest generated action sequence by default."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Counterexample:
    """A minimal episode that violates an invariant: replay it with ``replay``.

    Attributes:
        actions: The actions predicted, by id (after mapping a masked plan).
        action_names: The same, by name.
        masked: Whether the actions were drawn among the mask's valid ones.
        market: The prices the actions traded (minor units; the market stays flat after
            them), or ``None`` if the env made its own.
        seed: The seed passed to ``reset``.
    """

    actions: tuple[int, ...]
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

    @property
    def passed(self) -> bool:
        """True when no invariant failed (not-applicable ones do not count as passed or failed)."""
        return all(r.status != "fail" for r in self.results)

    @property
    def failures(self) -> tuple[InvariantReport, ...]:
        return tuple(r for r in self.results if r.status == "fail")

    def as_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "passed": self.passed,
            "seed": self.seed,
            "examples_per_invariant": self.examples,
            "seconds": round(self.seconds, 3),
            "findings": list(self.findings),
            "invariants": [r.as_dict() for r in self.results],
        }

    def format(self) -> str:
        """The report as a table, then each failure with its shrunk counterexample."""
        lines = [f"tradeguard check: {self.env}  ({self.seconds:.1f} s, up to {self.examples} examples per invariant)", ""]
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
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        """Raise :class:`InvariantViolation` with :meth:`format` if any invariant failed."""
        if not self.passed:
            raise InvariantViolation(self.format())


@dataclass(frozen=True, slots=True)
class _Example:
    kind: str  # "plain" | "masked"
    actions: tuple[int, ...]
    market: Any
    seed: int


def _database(database: ExampleDatabase | str | None) -> ExampleDatabase | None:
    if database is None or isinstance(database, ExampleDatabase):
        return database
    if isinstance(database, str):
        return DirectoryBasedExampleDatabase(database)
    raise InvalidConfig(f"database={database!r}; expected None, a directory path or an ExampleDatabase.")


def _examples_strategy(n_actions: int, max_steps: int, masked: bool, market_length: int | None) -> st.SearchStrategy[_Example]:
    from tradeguard.strategies import action_plans, action_sequences, markets

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
) -> CatalogReport:
    """Run the invariant catalog on Hypothesis-generated episodes of ``make_env()``'s env.

    For every invariant, Hypothesis searches up to ``examples`` episodes (action
    sequences, uniform, sticky, biased towards invalid actions, or drawn among the
    mask's valid actions; markets where the env takes one; seeds) for one that
    violates it, and shrinks what it finds to a minimal counterexample.

    Args:
        make_env: Zero-argument factory returning a fresh env each call.
        adapter: Turns the env's steps into trace records (default: tradeguard's own).
        examples: Episodes to try per invariant, in [1, 100000].
        max_steps: Longest action sequence, in [1, 10000].
        seed: Makes the search reproducible; ``None`` draws a fresh one.
        only: Invariant ids to check (default: the whole catalog).
        database: Where failing examples are saved and replayed first: ``None`` (none),
            a directory, or a Hypothesis ``ExampleDatabase`` (e.g. Redis, shared by a team).
        name: The env's name in the report.
        raise_on_failure: Raise :class:`InvariantViolation` with the report if any fails.

    Returns:
        A :class:`CatalogReport`: ``pass``/``fail``/``not-applicable`` per invariant.

    Example:
        >>> from tradeguard.env import EnvConfig, TradingEnv
        >>> report = check_trading_env(lambda: TradingEnv(config=EnvConfig(episode_length=10)), examples=5, seed=0)
        >>> report.passed
        True
    """
    check_int("examples", examples, min_value=1, max_value=100_000)
    check_int("max_steps", max_steps, min_value=1, max_value=10_000)
    adapter = adapter or NativeAdapter()
    invariants = select(only)
    db = _database(database)
    started = time.perf_counter()
    probe = make_env()
    n_actions = int(getattr(probe.action_space, "n", 0))
    if n_actions <= 0:
        raise InvalidConfig(
            f"the env's action_space is {probe.action_space!r}; check_trading_env drives discrete "
            "action spaces (gymnasium.spaces.Discrete)."
        )
    length_of = getattr(adapter, "market_length", None)
    market_length = length_of(probe) if callable(length_of) else None
    if market_length is not None and adapter.reset_options(None) is None:
        market_length = None
    has_mask = callable(getattr(probe.unwrapped, "action_masks", None))
    env_name = name or getattr(getattr(probe, "spec", None), "id", None) or type(probe.unwrapped).__name__
    strategy = _examples_strategy(n_actions, max_steps, has_mask, market_length)
    base_seed = Random(seed).getrandbits(64) if seed is not None else None

    def options(ex: _Example) -> dict[str, Any] | None:
        return None if ex.market is None else adapter.reset_options(ex.market)

    def plan(ex: _Example) -> list[int] | MaskedPlan:
        return MaskedPlan(ex.actions, n_actions) if ex.kind == "masked" else list(ex.actions)

    # Learn what the adapter supplies from one short episode.
    first = record_episode(make_env(), [0], seed=0, adapter=adapter)
    meta = first.trace.meta

    settings = Settings(
        max_examples=examples,
        database=db,
        derandomize=False,  # reproducibility comes from `seed`, not from Hypothesis' ci profile
        deadline=None,
        phases=tuple(Phase),
        suppress_health_check=list(HealthCheck),
    )

    def search(key: str, condition: Callable[[_Example], bool]) -> _Example | None:
        return _find(
            strategy,
            condition,
            settings=settings,
            seed=base_seed,
            database_key=f"tradeguard:{env_name}:{key}:{max_steps}".encode(),
        )

    def trace_violations(ex: _Example, ids: Sequence[str]) -> list[Violation]:
        ep = record_episode(make_env(), plan(ex), seed=ex.seed, options=options(ex), adapter=adapter)
        return [v for res in evaluate_trace(ep.trace, only=ids) for v in res.violations]

    def env_violations(ex: _Example, inv: Invariant) -> list[Violation]:
        if inv.id == "valid-steps-do-not-raise":
            ep = record_episode(make_env(), plan(ex), seed=ex.seed, options=options(ex), adapter=adapter)
            if ep.error is None:
                return []
            steps = len(ep.trace)
            return [
                Violation(
                    invariant=inv.id,
                    step=steps,
                    message=f"the env raised {type(ep.error).__name__}: {ep.error} (at step {steps}, "
                    f"after {steps} valid actions)",
                    seed=ex.seed,
                )
            ]
        return CONTRACT_CHECKS[inv.id](make_env, plan(ex), seed=ex.seed, options=options(ex), adapter=adapter)

    # One shared search over the trace invariants: each example is checked against all of
    # them. Only the ones it shows failing get a search of their own, which shrinks.
    applicable = [i for i in invariants if i.scope != "env" and i.applicable(meta, reported=False)]
    failing: set[str] = set()
    shared = [0]

    def any_trace_failure(ex: _Example) -> bool:
        shared[0] += 1
        failing.update(v.invariant for v in trace_violations(ex, [i.id for i in applicable]))
        return False

    if applicable:
        search("catalog", any_trace_failure)

    results: list[InvariantReport] = []
    for inv in invariants:
        if inv.scope != "env" and inv not in applicable:
            note = "needs reported metrics" if "reported_metrics" in inv.needs else (
                f"the env does not supply {', '.join(sorted(set(inv.needs) - meta.supplies))}"
            )
            results.append(InvariantReport(invariant=inv, status="not-applicable", examples=0, note=note))
            continue
        counter = [0]

        def violations_of(ex: _Example, inv: Invariant = inv, counter: list[int] = counter) -> list[Violation]:
            counter[0] += 1
            return env_violations(ex, inv) if inv.scope == "env" else trace_violations(ex, [inv.id])

        def violated(ex: _Example, f: Callable[[_Example], list[Violation]] = violations_of) -> bool:
            return bool(f(ex))

        if inv.scope != "env" and inv.id not in failing:
            # Not seen failing in the shared search; give it its own search only when the
            # database may hold a failure saved by an earlier run (replayed first, cheaply).
            minimal = search(inv.id, violated) if db is not None else None
            if minimal is None:
                results.append(InvariantReport(invariant=inv, status="pass", examples=max(shared[0], counter[0])))
                continue
        else:
            minimal = search(inv.id, violated)
            if minimal is None:
                results.append(InvariantReport(invariant=inv, status="pass", examples=counter[0]))
                continue
        found = violations_of(minimal)
        actions = _taken(minimal, n_actions, make_env, adapter, options(minimal))
        cx = Counterexample(
            actions=actions,
            action_names=tuple(meta.action_name(a) for a in actions),
            masked=minimal.kind == "masked",
            market=None if minimal.market is None else _shown_prices(minimal.market.prices, len(actions)),
            seed=minimal.seed,
        )
        results.append(
            InvariantReport(
                invariant=inv, status="fail", examples=counter[0], violations=tuple(found), counterexample=cx
            )
        )
    report = CatalogReport(
        env=env_name,
        results=tuple(results),
        seed=seed,
        examples=examples,
        seconds=time.perf_counter() - started,
    )
    if raise_on_failure:
        report.raise_for_failures()
    return report


def _taken(ex: _Example, n_actions: int, make_env: Callable[[], Any], adapter: TraceAdapter, options: dict[str, Any] | None) -> tuple[int, ...]:
    if ex.kind != "masked":
        return ex.actions
    plan = MaskedPlan(ex.actions, n_actions)
    record_episode(make_env(), plan, seed=ex.seed, options=options, adapter=adapter)
    return tuple(plan.taken)

