"""Process-state isolation and bounded execution for the env under test.

Importing, building or stepping another env can change process-wide state: warning
filters (gym-trading-env turns every warning into an error), numpy's or Python's
global random generator, numpy's floating-point error handling, the root logger,
stdout. :class:`Isolation` runs every call into the env under test (``make_env()``,
``reset``, ``step``, ``action_masks``) in the env's own *world* of that state, then
puts the host program's state back, and reports each change as a finding. The env's
world persists from call to call, as it would in a real program: an env that draws
from ``np.random`` gets a continuing private stream (seeded by the check's seed), so
that replaying the same seed really shows whether its episodes depend on it.

Bounds: every call gets what is left of its example's wall-clock budget. On the main
thread of a Unix process a ``SIGALRM`` interval timer interrupts the call by raising
:class:`CallTimedOut` inside the env's code, which unwinds it and leaves no thread
behind; it re-fires every 50 ms, so an env that swallows exceptions in a loop is
interrupted again. Elsewhere (another thread, or no ``SIGALRM``) the call runs in a
daemon worker thread joined with a timeout: the checker always returns, but a hung
call cannot be stopped and keeps its thread until the process exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

__all__ = [
    "CallTimedOut",
    "EnvCall",
    "GuardedEnv",
    "Isolation",
    "fresh_global_rngs",
    "global_rngs",
    "global_rngs_changed",
    "set_global_rngs",
]

_REFIRE = 0.05
"""Seconds between repeated timer interrupts once a call is over its budget."""


class CallTimedOut(BaseException):
    """A call into the env under test did not return within its example's budget.

    A ``BaseException`` (as ``KeyboardInterrupt``) so that neither the env's nor the
    checks' ``except Exception`` can mistake it for an ordinary error of the env.
    """

    def __init__(self, call: EnvCall, budget: float, elapsed: float) -> None:
        super().__init__(f"{call.what} did not return within {budget:g} s")
        self.call = call
        self.budget = budget
        self.elapsed = elapsed


@dataclass(frozen=True, slots=True)
class EnvCall:
    """One call into the env under test, with the episode that led to it.

    Attributes:
        what: The call as code, e.g. ``"step(1)"`` or ``"make_env()"``.
        seed: The ``reset`` seed of the episode, or ``None`` (no reset yet).
        options: The ``reset`` options of the episode.
        actions: The actions stepped since that reset, this call's last if it is a step.
    """

    what: str
    seed: int | None = None
    options: dict[str, Any] | None = None
    actions: tuple[Any, ...] = ()


@dataclass
class _History:
    seed: int | None = None
    options: dict[str, Any] | None = None
    actions: list[Any] = field(default_factory=list)


class _NumpyGlobalRng:
    """Fast read/write access to the state of numpy's legacy global generator (``np.random.*``).

    ``np.random.get_state()`` costs about 100 microseconds, more than a step of most
    envs; the MT19937 state (624 key words and a position) is read and written here
    through the bit generator's documented ``ctypes`` interface instead, after checking
    that the layout matches what ``get_state`` reports (else the slow path is used).
    """

    def __init__(self) -> None:
        self._view: npt.NDArray[np.uint32] | None = None
        self._owner: Any = None
        rs = np.random.mtrand._rand
        bg: Any = getattr(rs, "_bit_generator", None)
        if type(bg).__name__ == "MT19937":
            view = np.ctypeslib.as_array((ctypes.c_uint32 * 625).from_address(bg.ctypes.state_address))
            state = bg.state["state"]
            if np.array_equal(view[:624], state["key"]) and int(view[624]) == int(state["pos"]):
                self._view, self._owner = view, bg

    def _fast(self) -> npt.NDArray[np.uint32] | None:
        if self._view is not None and getattr(np.random.mtrand._rand, "_bit_generator", None) is self._owner:
            return self._view
        return None

    def get(self) -> Any:
        view = self._fast()
        return view.copy() if view is not None else np.random.get_state()

    def set(self, state: Any) -> None:
        view = self._fast()
        if view is not None and isinstance(state, np.ndarray):
            view[:] = state
        else:
            np.random.set_state(state if not isinstance(state, np.ndarray) else _legacy(state))

    @staticmethod
    def same(a: Any, b: Any) -> bool:
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            return bool(np.array_equal(a, b))
        return _legacy_tuple(a) == _legacy_tuple(b)

    def seeded(self, seed: int) -> Any:
        legacy: Any = np.random.RandomState(seed).get_state()
        if self._fast() is None:
            return legacy
        return np.concatenate((legacy[1], np.array([legacy[2]], dtype=np.uint32)))


def _legacy(state: npt.NDArray[np.uint32]) -> tuple[Any, ...]:
    return ("MT19937", state[:624].copy(), int(state[624]), 0, 0.0)


def _legacy_tuple(state: Any) -> tuple[Any, ...]:
    if isinstance(state, np.ndarray):
        state = _legacy(state)
    name, key, pos, has_gauss, gauss = state
    return (name, key.tobytes(), int(pos), int(has_gauss), float(gauss))


def _mutate_filters() -> None:
    bump = getattr(warnings, "_filters_mutated", None)
    if callable(bump):
        bump()


def _filters() -> list[Any]:
    return list(warnings.filters)


def _set_filters(filters: list[Any]) -> None:
    live = cast("list[Any]", warnings.filters)
    live[:] = filters
    _mutate_filters()


def _err() -> dict[str, str]:
    return {k: str(v) for k, v in np.geterr().items()}


def describe_filter(entry: tuple[Any, ...]) -> str:
    """A warning filter as the ``warnings.filterwarnings`` call that installs it."""
    action, message, category, module, lineno = entry
    parts = [repr(action), f"category={getattr(category, '__name__', category)}"]
    if message is not None:
        parts.append(f"message={getattr(message, 'pattern', message)!r}")
    if module is not None:
        parts.append(f"module={getattr(module, 'pattern', module)!r}")
    if lineno:
        parts.append(f"lineno={lineno}")
    text = f"warnings.filterwarnings({', '.join(parts)})"
    if message is None and module is None and category is Warning:
        if action == "error":
            text += ": every warning anywhere in the program now raises an exception"
        elif action == "ignore":
            text += ": every warning anywhere in the program is now hidden"
    return text


def _logging_state() -> tuple[int, tuple[logging.Handler, ...], int]:
    root = logging.getLogger()
    return root.level, tuple(root.handlers), logging.root.manager.disable


def _set_logging(state: tuple[int, tuple[logging.Handler, ...], int]) -> None:
    root = logging.getLogger()
    level, handlers, disable = state
    root.setLevel(level)
    root.handlers[:] = list(handlers)
    logging.disable(disable)


class Isolation:
    """Runs calls into an env under test in the env's own world of process state, bounded in time.

    Use as a context manager around a whole check; wrap each example in :meth:`example`
    and route every env call through :meth:`call` (or hand out :meth:`guard`-ed
    factories, whose envs route their own calls).

    Args:
        seed: Seeds the env's private global random generators (numpy's and Python's).
        timeout: Seconds one example (all its env calls together) may take, > 0.

    Attributes:
        findings: One line per process-wide change or stdout output, in order of discovery.
        timed_out: The :class:`CallTimedOut` of the current example, if any.
        timeouts: Every call that timed out during the check.
        last_error: The last exception an env call raised, with the call.
    """

    def __init__(self, *, seed: int | None, timeout: float) -> None:
        self.timeout = timeout
        self.findings: list[str] = []
        self._seen: set[str] = set()
        self.timed_out: CallTimedOut | None = None
        self.timeouts: list[CallTimedOut] = []
        self.last_error: tuple[EnvCall, BaseException] | None = None
        self._np = _NumpyGlobalRng()
        world_seed = random.Random(seed).getrandbits(32) if seed is not None else random.SystemRandom().getrandbits(32)
        self._env_np = self._np.seeded(world_seed)
        self._env_random = random.Random(world_seed).getstate()
        self._env_filters: list[Any] | None = None
        self._env_err: dict[str, str] | None = None
        self._deadline: float | None = None
        self._budget = timeout  # of the current example
        self._in_call: EnvCall | None = None
        self._call_started = 0.0
        self._use_signal = False
        self._saved_handler: Any = None
        self._saved_timer: tuple[float, float] = (0.0, 0.0)
        self._entered = 0.0

    # ------------------------------------------------------------------ lifetime
    def __enter__(self) -> Isolation:
        self._env_filters = _filters()
        self._env_err = _err()
        self._use_signal = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        if self._use_signal:
            self._entered = time.monotonic()
            self._saved_handler = signal.signal(signal.SIGALRM, self._on_alarm)
            self._saved_timer = signal.setitimer(signal.ITIMER_REAL, 0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._use_signal:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._saved_handler)
            remaining, interval = self._saved_timer
            if remaining > 0:  # re-arm the host's own timer with what it had left
                left = remaining - (time.monotonic() - self._entered)
                signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), interval)

    def _on_alarm(self, signum: int, frame: Any) -> None:
        call = self._in_call
        if call is not None:
            raise CallTimedOut(call, self._budget, time.monotonic() - self._call_started)

    def _finding(self, key: str, text: str) -> None:
        if key not in self._seen:
            self._seen.add(key)
            self.findings.append(text)

    # ------------------------------------------------------------------ examples
    @contextlib.contextmanager
    def example(self, budget: float | None = None) -> Iterator[None]:
        """Bound one example by ``budget`` seconds (default: ``timeout``), and give it the
        env's Python ``random`` state."""
        self._budget = self.timeout if budget is None else budget
        self._deadline = time.monotonic() + self._budget
        self.timed_out = None
        host_random = random.getstate()
        random.setstate(self._env_random)
        try:
            yield
        except CallTimedOut as exc:
            self._timed_out(exc)
        finally:
            after = random.getstate()
            if after != self._env_random:
                self._env_random = after
                self._finding(
                    "random",
                    "the env draws from Python's global random module (random.random(), random.choice(), ...), "
                    "not from its own self.np_random: reset(seed=...) cannot make it reproducible, and it "
                    "changes the random state of the program that runs it (tradeguard gave it a private copy)",
                )
            random.setstate(host_random)
            self._deadline = None
            self._budget = self.timeout

    def _timed_out(self, exc: CallTimedOut) -> None:
        if self.timed_out is None:
            self.timed_out = exc
            self.timeouts.append(exc)

    # ------------------------------------------------------------------ calls
    def call(self, call: EnvCall, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` (a call into the env under test) isolated and bounded."""
        now = time.monotonic()
        budget = (self._deadline - now) if self._deadline is not None else self.timeout
        if budget <= 0:
            exc = CallTimedOut(call, self._budget, 0.0)
            self._timed_out(exc)
            raise exc
        host_filters = _filters()
        env_filters = self._env_filters if self._env_filters is not None else host_filters
        if env_filters != host_filters:
            _set_filters(env_filters)
        host_np = self._np.get()
        self._np.set(self._env_np)
        host_err = _err()
        if self._env_err is not None and self._env_err != host_err:
            np.seterr(**self._env_err)  # type: ignore[arg-type]
        host_log = _logging_state()
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                return self._bounded(call, budget, fn, args, kwargs)
        except CallTimedOut as exc:
            self._timed_out(exc)
            raise
        except BaseException as exc:
            self.last_error = (call, exc)
            raise
        finally:
            self._restore(call, host_filters, env_filters, host_np, host_err, host_log, out.getvalue())

    def _bounded(self, call: EnvCall, budget: float, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        if self._use_signal:
            self._call_started = time.monotonic()
            self._in_call = call
            signal.setitimer(signal.ITIMER_REAL, budget, _REFIRE)
            try:
                return fn(*args, **kwargs)
            finally:
                self._in_call = None
                signal.setitimer(signal.ITIMER_REAL, 0)
        result: list[Any] = []
        error: list[BaseException] = []

        def run() -> None:
            try:
                result.append(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the caller's thread
                error.append(exc)

        started = time.monotonic()
        worker = threading.Thread(target=run, name=f"tradeguard {call.what}", daemon=True)
        worker.start()
        worker.join(budget)
        if worker.is_alive():
            raise CallTimedOut(call, self._budget, time.monotonic() - started)
        if error:
            raise error[0]
        return result[0]

    def _restore(
        self,
        call: EnvCall,
        host_filters: list[Any],
        env_filters: list[Any],
        host_np: Any,
        host_err: dict[str, str],
        host_log: tuple[int, tuple[logging.Handler, ...], int],
        printed: str,
    ) -> None:
        now_filters = _filters()
        if now_filters != env_filters:
            added = [f for f in now_filters if f not in env_filters]
            removed = [f for f in env_filters if f not in now_filters]
            changes = [f"added {describe_filter(f)}" for f in added] + [f"removed {describe_filter(f)}" for f in removed]
            self._finding(
                f"warnings:{call.what}:{changes}",
                f"{call.what} changed the process-wide warning filters: {'; '.join(changes) or 'reordered them'} "
                "(tradeguard restored them after the call; every program that runs this code keeps the change)",
            )
            self._env_filters = now_filters
        if now_filters != host_filters:
            _set_filters(host_filters)
        env_np = self._np.get()
        if not self._np.same(env_np, self._env_np):
            self._finding(
                "numpy-random",
                f"{call.what} draws from numpy's global random generator (np.random.*), not from the env's own "
                "self.np_random: reset(seed=...) cannot make it reproducible, and it changes the random state "
                "of the program that runs it (tradeguard gave it a private copy)",
            )
            self._env_np = env_np
        self._np.set(host_np)
        env_err = _err()
        if env_err != self._env_err:
            self._finding(
                f"seterr:{env_err}",
                f"{call.what} changed numpy's floating-point error handling from {self._env_err} to {env_err} "
                "(np.seterr is process-wide; tradeguard restored it after the call)",
            )
            self._env_err = env_err
        if env_err != host_err:
            np.seterr(**host_err)  # type: ignore[arg-type]
        env_log = _logging_state()
        if env_log != host_log:
            self._finding(f"logging:{call.what}", f"{call.what} changed the root logger: {_logging_diff(host_log, env_log)} "
                          "(tradeguard restored it after the call)")
            _set_logging(host_log)
        if printed:
            lines = printed.splitlines()
            first = lines[0] if lines else printed
            self._finding(
                f"stdout:{call.what.split('(')[0]}",
                f"{call.what} wrote to stdout ({len(lines)} line{'s' * (len(lines) != 1)}, first: {first[:80]!r}); "
                "tradeguard captured it so that reports (--json) stay clean",
            )

    def env_global_rngs(self) -> tuple[Any, Any]:
        """The states of the env's private global generators now: numpy's (``np.random``) and
        Python's ``random`` (live in the ``random`` module during an example), for
        :func:`global_rngs_changed` to compare: an env that draws from or reseeds them changes them."""
        np_state = self._env_np.copy() if isinstance(self._env_np, np.ndarray) else self._env_np
        return np_state, (random.getstate() if self._deadline is not None else self._env_random)

    def set_env_global_rngs(self, states: tuple[Any, Any]) -> None:
        """Put the env's private global generators in ``states`` (as :meth:`env_global_rngs` gives them)."""
        self._env_np = states[0]
        if self._deadline is not None:
            random.setstate(states[1])
        else:
            self._env_random = states[1]

    # ------------------------------------------------------------------ guarded envs
    def guard(self, make_env: Callable[[], Any]) -> Callable[[], GuardedEnv]:
        """A factory like ``make_env`` whose envs route every call through this isolation."""

        def make() -> GuardedEnv:
            return GuardedEnv(self.call(EnvCall("make_env()"), make_env), self)

        return make


def global_rngs(env: Any) -> tuple[Any, Any]:
    """The states of the global generators ``env`` draws from: numpy's and Python's ``random``
    (the private ones of its :class:`Isolation` when the env is guarded, else the process's)."""
    iso = getattr(env, "tradeguard_isolation", None)
    if isinstance(iso, Isolation):
        return iso.env_global_rngs()
    return np.random.get_state(), random.getstate()


def set_global_rngs(env: Any, states: tuple[Any, Any]) -> None:
    """Put the global generators ``env`` draws from in ``states`` (a :func:`global_rngs` snapshot)."""
    iso = getattr(env, "tradeguard_isolation", None)
    if isinstance(iso, Isolation):
        iso.set_env_global_rngs(states)
        return
    np.random.set_state(states[0] if not isinstance(states[0], np.ndarray) else _legacy(states[0]))
    random.setstate(states[1])


def fresh_global_rngs(seed: int) -> tuple[Any, Any]:
    """Global generator states seeded from ``seed``, to start a probe from a state no env chose."""
    return np.random.RandomState(seed).get_state(), random.Random(seed).getstate()


def global_rngs_changed(before: tuple[Any, Any], after: tuple[Any, Any]) -> list[str]:
    """Which of the global generators changed between two :func:`global_rngs` snapshots, by name."""
    changed = []
    if not _NumpyGlobalRng.same(before[0], after[0]):
        changed.append("numpy's global generator (np.random)")
    if before[1] != after[1]:
        changed.append("Python's random module")
    return changed


def _logging_diff(before: tuple[int, tuple[logging.Handler, ...], int], after: tuple[int, tuple[logging.Handler, ...], int]) -> str:
    parts = []
    if before[0] != after[0]:
        parts.append(f"level {logging.getLevelName(before[0])} -> {logging.getLevelName(after[0])}")
    added = [h for h in after[1] if h not in before[1]]
    removed = [h for h in before[1] if h not in after[1]]
    if added:
        parts.append(f"handlers added {added}")
    if removed:
        parts.append(f"handlers removed {removed}")
    if before[2] != after[2]:
        parts.append(f"logging.disable {before[2]} -> {after[2]}")
    return ", ".join(parts)


_GUARDED_EXTRA = ("action_masks",)


class GuardedEnv:
    """An env whose ``reset``, ``step`` and ``action_masks`` run through an :class:`Isolation`.

    Every other attribute is read from (and written to) the env itself; ``unwrapped``
    is guarded too, sharing the episode history used to describe a failing call.
    """

    __slots__ = ("__weakref__", "_tg_env", "_tg_history", "_tg_iso", "_tg_unwrapped")

    def __init__(self, env: Any, iso: Isolation, history: _History | None = None) -> None:
        object.__setattr__(self, "_tg_env", env)
        object.__setattr__(self, "_tg_iso", iso)
        object.__setattr__(self, "_tg_history", history or _History())
        object.__setattr__(self, "_tg_unwrapped", None)

    @property
    def tradeguard_target(self) -> Any:
        """The env under test itself."""
        return self._tg_env

    @property
    def tradeguard_isolation(self) -> Isolation:
        """The :class:`Isolation` this env's calls run in (the env's private global generators are there)."""
        iso: Isolation = self._tg_iso
        return iso

    @property
    def unwrapped(self) -> Any:
        inner = getattr(self._tg_env, "unwrapped", self._tg_env)
        if inner is self._tg_env:
            return self
        if self._tg_unwrapped is None or self._tg_unwrapped._tg_env is not inner:
            object.__setattr__(self, "_tg_unwrapped", GuardedEnv(inner, self._tg_iso, self._tg_history))
        return self._tg_unwrapped

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        h = self._tg_history
        h.seed, h.options, h.actions = seed, options, []
        return self._tg_iso.call(EnvCall(f"reset(seed={seed!r})", seed, options), self._tg_env.reset, seed=seed, options=options, **kwargs)

    def step(self, action: Any) -> Any:
        h = self._tg_history
        h.actions.append(action)
        call = EnvCall(f"step({action!r})", h.seed, h.options, tuple(h.actions))
        return self._tg_iso.call(call, self._tg_env.step, action)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._tg_env, name)
        if name in _GUARDED_EXTRA and callable(value):
            iso, h = self._tg_iso, self._tg_history

            def guarded(*args: Any, **kwargs: Any) -> Any:
                return iso.call(EnvCall(f"{name}()", h.seed, h.options, tuple(h.actions)), value, *args, **kwargs)

            return guarded
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._tg_env, name, value)

    def __repr__(self) -> str:
        return f"GuardedEnv({self._tg_env!r})"
