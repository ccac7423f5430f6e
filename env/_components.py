"""Custom reward components: a user's own reward terms next to the built-in ones.

A component is a Python function of one step. It reads the step (:class:`Step`: the
predicted action, the transition's outcome, the portfolio before and after, the price
it executed at and the price it is marked to) and, when it needs the past, a
*history* it declares: an initial value, which the function receives and returns
updated. The shaper adds the component's value (times its weight) to the built-in
components, reports it every step under its name (``TraceMeta.component_names``), and
keeps its history in :class:`~tradeguard.env.ShaperState`.

The history is what makes the exact oracle sound: it memoizes over the step, the
portfolio and every history, so everything a component remembers must be in its
declared history, and the history must be hashable. A component that writes a
global or a variable of an enclosing function is refused when it is built; one that
keeps state some other way (a list it appends to, randomness) is caught by
:func:`check_components`, which the oracle runs before it searches.

Example:
    >>> @reward_component(history=0, bounds=(0.0, 1.0))
    ... def holding_bonus(step, held):
    ...     held = held + 1 if step.after.position > 0 else 0
    ...     return (0.1 if held >= 3 else 0.0), held
    >>> holding_bonus.name, holding_bonus.stateful, holding_bonus.potential_based
    ('holding_bonus', True, False)
"""

from __future__ import annotations

import dis
import functools
import inspect
import math
import random
import sys
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from tradeguard.env._actions import Action, RejectReason
from tradeguard.errors import InvalidConfig

if TYPE_CHECKING:
    from tradeguard.env._config import EnvConfig, RewardConfig
    from tradeguard.env._rules import Outcome, PortfolioState

__all__ = [
    "ComponentFunction",
    "CustomComponent",
    "Step",
    "check_components",
    "rest_bound",
    "reward_component",
]

ComponentFunction = Callable[..., Any]
"""``fn(step) -> float``, or ``fn(step, history) -> (float, new_history)`` with a declared history."""

_FLOAT_MAX = sys.float_info.max


class Step(NamedTuple):
    """One step as a reward component sees it.

    Attributes:
        t: The step's index in the episode (0 first).
        predicted: The action the agent predicted.
        outcome: What the transition did: executed action, rejection reason, units
            traded, fee and realized PnL (minor units).
        before: The portfolio before the step (cash, position, cost basis).
        after: The portfolio after it.
        price: The price the step executed at (minor units).
        next_price: The price the portfolio is marked to after the step.
        initial_cash: The account's starting cash (minor units): PnL in percent is
            ``100 * pnl / initial_cash``, the unit of the built-in PnL components.
    """

    t: int
    predicted: Action
    outcome: Outcome
    before: PortfolioState
    after: PortfolioState
    price: int
    next_price: int
    initial_cash: int

    @property
    def executed(self) -> Action:
        """The action that executed (HOLD when the predicted one was rejected)."""
        return self.outcome.executed

    @property
    def rejected(self) -> bool:
        """Whether the predicted action was rejected."""
        return self.outcome.reason is not None

    @property
    def reason(self) -> RejectReason | None:
        """Why the predicted action was rejected, or ``None``."""
        return self.outcome.reason

    @property
    def equity_before(self) -> int:
        """Cash plus position at ``price``, before the step (minor units)."""
        return self.before.cash + self.before.position * self.price

    @property
    def equity_after(self) -> int:
        """Cash plus position at ``next_price``, after the step (minor units)."""
        return self.after.cash + self.after.position * self.next_price

    @property
    def pnl(self) -> int:
        """The step's change of equity (fees included), in minor units."""
        return self.equity_after - self.equity_before

    @property
    def pnl_percent(self) -> float:
        """The step's change of equity in percent of starting cash."""
        return 100.0 * self.pnl / self.initial_cash


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomComponent:
    """A reward component written by the user: a function of the step and a declared history.

    Build one with :func:`reward_component` (a decorator) or directly. Put it in
    :attr:`RewardConfig.custom_components <tradeguard.env.RewardConfig>` (or name it
    ``"module:function"`` in a scenario file's ``[reward] custom_components``).

    Attributes:
        name: The component's name in every record and report; not a built-in
            component's name.
        function: ``fn(step) -> float`` without history, ``fn(step, history) ->
            (float, new_history)`` with one.
        weight: Multiplies the function's value; the record reports the product.
        history: The history at the start of an episode (hashable), or ``None`` for a
            component without history. Everything the function remembers between
            steps must be in it: the exact oracle memoizes on it.
        potential_based: Whether the component is ``Phi(s') - Phi(s)`` for some
            potential ``Phi`` of the state (Ng, Harada & Russell 1999). The audit
            reports it, and refuses a declaration that two paths to the same state
            contradict.
        bounds: ``(low, high)``: the function's value always lies in it (before the
            weight), or ``None``: unbounded. The oracle prunes with it; a value
            outside raises.
        remaining: Optional, for a tighter pruning than ``bounds`` x steps: ``fn(history,
            steps_left) -> (low, high)``, the range of the function's total over the
            ``steps_left`` steps still to come from ``history`` (before the weight). The
            oracle's check plays short episodes and refuses a range a continuation leaves.

    Raises:
        InvalidConfig: a bad name, weight, history or bounds, a function whose
            arguments do not match the declared history, or one that writes a global
            or an enclosing function's variable (undeclared history).
    """

    name: str
    function: ComponentFunction
    weight: float = 1.0
    history: Hashable | None = None
    potential_based: bool = False
    bounds: tuple[float, float] | None = None
    remaining: Callable[[Any, int], tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name.isidentifier():
            hint = " (a lambda has no name of its own: pass name=...)" if name == "<lambda>" else ""
            raise InvalidConfig(
                f"custom component name={name!r} must be an identifier (letters, digits, underscores), "
                f"e.g. 'sharpe_bonus'{hint}."
            )
        if not callable(self.function):
            raise InvalidConfig(
                f"custom component {name!r}: function={self.function!r} is not callable; expected "
                "fn(step) -> float, or fn(step, history) -> (float, new_history)."
            )
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise InvalidConfig(f"custom component {name!r}: weight={w!r} must be a finite number.")
        object.__setattr__(self, "weight", float(w))
        if not isinstance(self.potential_based, bool):
            raise InvalidConfig(
                f"custom component {name!r}: potential_based={self.potential_based!r} must be True or False."
            )
        if self.history is not None:
            _require_hashable(name, self.history, "its initial history")
        if self.bounds is not None:
            b = self.bounds
            ok = isinstance(b, (tuple, list)) and len(b) == 2 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in b
            )
            if not ok or b[0] > b[1]:
                raise InvalidConfig(
                    f"custom component {name!r}: bounds={b!r} must be a (low, high) pair of finite numbers "
                    "with low <= high, the range of the function's value; or None (unbounded)."
                )
            object.__setattr__(self, "bounds", (float(b[0]), float(b[1])))
        if self.remaining is not None and not callable(self.remaining):
            raise InvalidConfig(
                f"custom component {name!r}: remaining={self.remaining!r} must be a function "
                "(history, steps_left) -> (low, high), or None."
            )
        _check_arity(name, self.function, self.history is not None)
        _check_no_hidden_writes(name, self.function)

    @property
    def stateful(self) -> bool:
        """Whether the component declares a history."""
        return self.history is not None

    @property
    def step_bound(self) -> float:
        """The most the component can add to one step's reward (weight included); ``inf`` if unbounded."""
        if self.bounds is None:
            return 0.0 if self.weight == 0.0 else math.inf
        lo, hi = self.bounds
        return max(self.weight * lo, self.weight * hi)

    @property
    def spec(self) -> str | None:
        """``"module:name"`` that imports this component (or its function) back, or ``None``."""
        module = getattr(self.function, "__module__", None)
        qual = getattr(self.function, "__qualname__", None)
        if not module or module == "__main__" or not qual or "<" in qual:
            return None  # a lambda, a local function, or a script's: nothing else can import it
        target: Any = sys.modules.get(module)
        for part in qual.split("."):
            target = getattr(target, part, None)
        if target is self or target is self.function or (
            isinstance(target, CustomComponent) and target.function is self.function
        ):
            return f"{module}:{qual}"
        return None

    def to_value(self) -> str | dict[str, Any]:
        """What a scenario file holds for this component: its ``"module:function"``, or a table with
        the weight and name when they differ from the loaded component's; ``"<name>"`` when no file
        can name it (defined in a script or a function, or changed beyond its weight and name)."""
        spec = self.spec
        if spec is None:  # defined in a script, a notebook or a function: no file can name it
            return f"<{self.name}>"
        from tradeguard.env._component_specs import load_component  # it imports this module

        loaded = load_component(spec)
        if (loaded.history, loaded.potential_based, loaded.bounds, loaded.remaining) != (
            self.history,
            self.potential_based,
            self.bounds,
            self.remaining,
        ):
            return f"<{self.name}>"  # a scenario file can only set the weight and name
        out: dict[str, Any] = {"function": spec}
        if self.weight != loaded.weight:
            out["weight"] = self.weight
        if self.name != loaded.name:
            out["name"] = self.name
        return spec if len(out) == 1 else out

    def __repr__(self) -> str:
        extras = "" if self.weight == 1.0 else f", weight={self.weight!r}"
        return f"CustomComponent({self.name!r}{extras})"


@overload
def reward_component(function: ComponentFunction, /) -> CustomComponent: ...
@overload
def reward_component(
    function: None = None,
    /,
    *,
    name: str | None = None,
    weight: float = 1.0,
    history: Hashable | None = None,
    potential_based: bool = False,
    bounds: tuple[float, float] | None = None,
    remaining: Callable[[Any, int], tuple[float, float]] | None = None,
) -> Callable[[ComponentFunction], CustomComponent]: ...
def reward_component(
    function: ComponentFunction | None = None,
    /,
    *,
    name: str | None = None,
    weight: float = 1.0,
    history: Hashable | None = None,
    potential_based: bool = False,
    bounds: tuple[float, float] | None = None,
    remaining: Callable[[Any, int], tuple[float, float]] | None = None,
) -> CustomComponent | Callable[[ComponentFunction], CustomComponent]:
    """Make a function a reward component (a decorator, with or without arguments).

    Args:
        function: The function (when used as ``@reward_component`` without arguments).
        name: The component's name (default: the function's name).
        weight: Multiplies the value.
        history: The initial history (hashable); ``None``: the function takes only the step.
        potential_based: Whether it is ``Phi(s') - Phi(s)`` (see :class:`CustomComponent`).
        bounds: ``(low, high)`` range of the function's value, for the oracle's pruning.
        remaining: ``(history, steps_left) -> (low, high)``, the range of what is still to
            come, for a tighter pruning (see :class:`CustomComponent`).

    Returns:
        A :class:`CustomComponent` (the name stays importable as ``module:function``).

    Example:
        >>> @reward_component(bounds=(-1.0, 0.0))
        ... def rejection_cost(step):
        ...     return -1.0 if step.rejected else 0.0
        >>> rejection_cost.step_bound
        0.0
    """

    def make(fn: ComponentFunction) -> CustomComponent:
        return CustomComponent(
            name=name or str(getattr(fn, "__name__", "custom")),
            function=fn,
            weight=weight,
            history=history,
            potential_based=potential_based,
            bounds=bounds,
            remaining=remaining,
        )

    return make(function) if function is not None else make


# ----------------------------------------------------------------------------- checks at build


def _require_hashable(name: str, value: Any, what: str) -> None:
    try:
        hash(value)
    except TypeError:
        raise InvalidConfig(
            f"custom component {name!r}: {what} is a {type(value).__name__} ({_short(value)}), which is not "
            "hashable. The exact oracle memoizes on every component's history, so it must be hashable: use "
            "a tuple instead of a list, a frozenset instead of a set, numbers rather than arrays."
        ) from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_arity(name: str, fn: ComponentFunction, stateful: bool) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin or C function: the first call says it
    params = [
        p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in params if p.default is p.empty]
    variadic = any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values())
    want = 2 if stateful else 1
    if len(required) <= want and (variadic or len(params) >= want):
        return
    if stateful:
        raise InvalidConfig(
            f"custom component {name!r} declares a history, so its function is called as fn(step, history) "
            f"and returns (value, new_history); {_fn_name(fn)}{sig} does not take two arguments. Add the "
            "history argument, or drop history= if the component remembers nothing."
        )
    if len(required) >= 2:
        raise InvalidConfig(
            f"custom component {name!r}: {_fn_name(fn)}{sig} takes a second argument, but the component "
            "declares no history. Declare it with its initial value, e.g. "
            "@reward_component(history=0): the function then gets (step, history) and returns "
            "(value, new_history)."
        )
    raise InvalidConfig(
        f"custom component {name!r}: {_fn_name(fn)}{sig} must take the step as its one argument: fn(step) -> float."
    )


def _fn_name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _check_no_hidden_writes(name: str, fn: ComponentFunction) -> None:
    """Refuse a function that stores into a global or an enclosing function's variable."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return
    free = set(code.co_freevars)
    for ins in dis.get_instructions(code):
        if ins.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
            where = f"the global {ins.argval!r}"
        elif ins.opname in ("STORE_DEREF", "DELETE_DEREF") and ins.argval in free:
            where = f"the enclosing function's variable {ins.argval!r} (nonlocal)"
        else:
            continue
        raise InvalidConfig(
            f"custom component {name!r} writes {where}: that is history kept outside the component's "
            "declared history, so the exact oracle (which memoizes on the declared history) would give "
            "wrong answers, and episodes would depend on each other. Declare what it remembers: "
            "@reward_component(history=<initial value>) and return (value, new_history)."
        )


# ----------------------------------------------------------------------------- evaluation


class _Evaluator:
    """The custom components of one reward config, evaluated step by step (the shaper's hot path)."""

    __slots__ = ("_rows", "components", "initial", "names")

    def __init__(self, components: tuple[CustomComponent, ...]) -> None:
        self.components = components
        self.names = tuple(c.name for c in components)
        self.initial = tuple(c.history for c in components)
        rows = []
        for c in components:
            lo, hi = c.bounds if c.bounds is not None else (-_FLOAT_MAX, _FLOAT_MAX)
            rows.append((c.function, c.weight, c.stateful, lo, hi, c))
        self._rows = tuple(rows)

    def evaluate(self, step: Step, histories: tuple[Any, ...]) -> tuple[tuple[float, ...], tuple[Any, ...]]:
        """Each component's weighted value on ``step`` and the new histories."""
        rows = self._rows
        if len(rows) == 1:  # the common case, inlined: this runs for every child the oracle expands
            fn, w, stateful, lo, hi, comp = rows[0]
            if stateful:
                out = fn(step, histories[0])
                if type(out) is not tuple or len(out) != 2:
                    _bad_pair(comp, out, step)
                v, h = out
                try:
                    hash(h)
                except TypeError:
                    _require_hashable(comp.name, h, f"the history it returned at step {step.t}")
            else:
                v = fn(step)
                h = None
            if type(v) is not float:
                v = _as_float(comp, v, step)
            if not lo <= v <= hi:
                _out_of_bounds(comp, v, step)
            return (v * w,), (h,)
        values: list[float] = []
        new: list[Any] = []
        for row, h in zip(rows, histories, strict=True):
            v, h = _call(row, step, h)
            values.append(v)
            new.append(h)
        return tuple(values), tuple(new)


def rest_bound(components: tuple[CustomComponent, ...]) -> Callable[[tuple[Any, ...], int], float]:
    """The most ``components`` can still add (weights included) in ``steps_left`` steps from their
    histories: each one's ``remaining`` range when it declares one, else its per-step bound times
    the steps left (``inf`` when unbounded). The oracle adds it to its upper bound.

    Example:
        >>> @reward_component(bounds=(0.0, 0.5))
        ... def activity(step):
        ...     return 0.5 if step.executed != 0 else 0.0
        >>> rest_bound((activity,))((None,), 4)
        2.0
    """
    parts = [
        (i, c.remaining, c.weight, c.step_bound) for i, c in enumerate(components) if c.weight != 0.0
    ]

    if all(remaining is None for _, remaining, _, _ in parts):
        per_step = sum(p[3] for p in parts)

        def simple(histories: tuple[Any, ...], steps_left: int) -> float:
            return per_step * steps_left if steps_left > 0 else 0.0

        return simple

    def bound(histories: tuple[Any, ...], steps_left: int) -> float:
        if steps_left <= 0:
            return 0.0
        total = 0.0
        for i, remaining, w, per_step in parts:
            if remaining is None:
                total += per_step * steps_left
            else:
                lo, hi = remaining(histories[i], steps_left)
                total += w * hi if w * hi >= w * lo else w * lo
        return total

    return bound


def _call(row: tuple[Any, ...], step: Step, h: Any) -> tuple[float, Any]:
    """One component on one step: its weighted value and new history, both checked."""
    fn, w, stateful, lo, hi, comp = row
    if stateful:
        out = fn(step, h)
        if type(out) is not tuple or len(out) != 2:
            _bad_pair(comp, out, step)
        v, h = out
        try:
            hash(h)
        except TypeError:
            _require_hashable(comp.name, h, f"the history it returned at step {step.t}")
    else:
        v = fn(step)
    if type(v) is not float:
        v = _as_float(comp, v, step)
    if not lo <= v <= hi:
        _out_of_bounds(comp, v, step)
    return v * w, h


def _as_float(comp: CustomComponent, v: Any, step: Step) -> float:
    if isinstance(v, tuple) and not comp.stateful:
        raise InvalidConfig(
            f"custom component {comp.name!r} returned a tuple {_short(v)} at step {step.t}, but declares no "
            "history: a component without history returns a number. If it keeps a history, declare it: "
            "@reward_component(history=<initial value>) and return (value, new_history)."
        )
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InvalidConfig(
            f"custom component {comp.name!r} returned {_short(v)} ({type(v).__name__}) at step {step.t}; "
            "expected a number (float)."
        )
    return float(v)


def _bad_pair(comp: CustomComponent, out: Any, step: Step) -> None:
    raise InvalidConfig(
        f"custom component {comp.name!r} declares a history, so it must return (value, new_history); at "
        f"step {step.t} it returned {_short(out)} ({type(out).__name__})."
    )


def _out_of_bounds(comp: CustomComponent, v: float, step: Step) -> None:
    if not math.isfinite(v):
        raise InvalidConfig(
            f"custom component {comp.name!r} returned {v!r} at step {step.t} (predicted "
            f"{step.predicted.name}); a reward component must be finite."
        )
    raise InvalidConfig(
        f"custom component {comp.name!r} returned {v!r} at step {step.t} (predicted {step.predicted.name}), "
        f"outside its declared bounds {comp.bounds!r}. The oracle prunes with the bounds, so they must hold "
        "on every step: widen them, or clip the value."
    )


# ----------------------------------------------------------------------------- the oracle's probe


def check_components(env: EnvConfig, reward: RewardConfig) -> None:
    """Check that each custom component is a function of the step and its declared history.

    Plays every sequence of three actions on three short markets (up, down, flat) and
    a few longer random ones through the machine, calling the components in order;
    then calls each of them again on every recorded step and history, in reverse
    order. A component that answers differently the second time keeps state outside
    its declared history (a list it appends to, a counter, randomness): the oracle
    would memoize wrong values. A component declared potential-based must give the
    same total on every two paths to the same state (its sum telescopes to
    ``Phi(end) - Phi(start)``). Cached per (machine, components).

    Args:
        env: The machine's configuration.
        reward: The reward config whose ``custom_components`` are checked.

    Raises:
        InvalidConfig: naming the component, the step and the two answers.

    Example:
        >>> from tradeguard.env import EnvConfig, RewardConfig
        >>> seen = []
        >>> @reward_component
        ... def trend(step):
        ...     seen.append(step.price)
        ...     return 0.01 * (len(seen) % 3)
        >>> check_components(EnvConfig(), RewardConfig(custom_components=(trend,)))
        Traceback (most recent call last):
        ...
        tradeguard.errors.InvalidConfig: custom component 'trend' is not a function of the step and its declared history: ...
    """
    if reward.custom_components:
        _check_cached(env, reward.custom_components)


@functools.lru_cache(maxsize=128)
def _check_cached(env: EnvConfig, components: tuple[CustomComponent, ...]) -> None:
    from tradeguard.env._rules import Machine, initial_state

    machine = Machine(env)
    evaluator = _Evaluator(components)
    start = max(10, min(10_000, env.cash // 100))
    markets = [
        [start, start * 103 // 100, start * 106 // 100, start * 104 // 100],
        [start, start * 97 // 100, start * 99 // 100, start * 95 // 100],
        [start, start, start, start],  # round trips without fees come back to the same state
    ]
    rng = random.Random(0)
    long_market = [start]
    for _ in range(10):
        long_market.append(max(1, long_market[-1] * rng.randint(95, 106) // 100))
    actions = tuple(Action)
    plays: list[tuple[list[int], tuple[Action, ...]]] = []
    for prices in markets:
        for a in actions:
            for b in actions:
                for c in actions:
                    plays.append((prices, (a, b, c)))
    for _ in range(6):
        plays.append((long_market, tuple(rng.choice(actions) for _ in range(10))))
    calls: list[tuple[Step, tuple[Any, ...], tuple[float, ...], tuple[Any, ...]]] = []
    ranged = [(i, c) for i, c in enumerate(components) if c.remaining is not None and c.weight != 0.0]
    ends: dict[tuple[Any, ...], tuple[list[float], tuple[Action, ...], list[int]]] = {}
    for prices, seq in plays:
        state, hists = initial_state(env), evaluator.initial
        totals = [0.0] * len(components)
        start_calls = len(calls)
        for t, a in enumerate(seq):
            after, out = machine.step(state, a, prices[t])
            step = Step(t, a, out, state, after, prices[t], prices[t + 1], env.cash)
            values, new = evaluator.evaluate(step, hists)
            calls.append((step, hists, values, new))
            totals = [x + v for x, v in zip(totals, values, strict=True)]
            state, hists = after, new
            key = (id(prices), t, state, hists)
            first = ends.setdefault(key, (list(totals), seq[: t + 1], prices))
            for i, comp in enumerate(components):
                if comp.potential_based and not math.isclose(
                    first[0][i], totals[i], rel_tol=1e-9, abs_tol=1e-9
                ):
                    _not_potential(comp, first, (totals, seq[: t + 1], prices), i)
        played = calls[start_calls:]
        for i, comp in ranged:
            rest = 0.0
            for k in range(len(played) - 1, -1, -1):  # from the last step back: what is still to come
                step, before, values, _ = played[k]
                rest += values[i]
                _check_remaining(comp, before[i], len(played) - k, rest, seq, k)
    for step, hists, values, new in reversed(calls):
        again, again_new = evaluator.evaluate(step, hists)
        for i, comp in enumerate(components):
            if again[i] != values[i] or again_new[i] != new[i]:
                _impure(comp, step, hists[i], (values[i], new[i]), (again[i], again_new[i]))


def _check_remaining(
    comp: CustomComponent, hist: Any, steps_left: int, rest: float, seq: tuple[Action, ...], k: int
) -> None:
    assert comp.remaining is not None
    got = comp.remaining(hist, steps_left)
    ok = (
        isinstance(got, tuple)
        and len(got) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in got)
        and got[0] <= got[1]
    )
    if not ok:
        raise InvalidConfig(
            f"custom component {comp.name!r}: remaining({_short(hist)}, {steps_left}) returned {_short(got)}; "
            "expected a (low, high) pair of numbers with low <= high."
        )
    w = comp.weight
    lo, hi = sorted((w * got[0], w * got[1]))
    tol = 1e-9 * max(1.0, abs(rest))
    if not lo - tol <= rest <= hi + tol:
        raise InvalidConfig(
            f"custom component {comp.name!r}: remaining({_short(hist)}, {steps_left}) = {got!r}, but the "
            f"actions {[a.name for a in seq[k:]]} from step {k} earn {rest / w if w else rest!r} from it. The "
            "oracle prunes with this range, so it must contain every continuation: widen it."
        )


def _impure(comp: CustomComponent, step: Step, hist: Any, first: Any, second: Any) -> None:
    history = f" and history {_short(hist)}" if comp.stateful else " (it declares no history)"
    raise InvalidConfig(
        f"custom component {comp.name!r} is not a function of the step and its declared history: on step "
        f"{step.t} (predicted {step.predicted.name}, price {step.price}){history} it returned "
        f"{_short(first)} and, called again with the same arguments, {_short(second)}. It keeps state "
        "somewhere else (a list it appends to, a counter in an object, randomness), so the exact oracle, "
        "which memoizes on the declared history, would give wrong answers. Declare everything it remembers: "
        "@reward_component(history=<initial value>) and return (value, new_history)."
    )


def _not_potential(
    comp: CustomComponent,
    a: tuple[list[float], tuple[Action, ...], list[int]],
    b: tuple[list[float], tuple[Action, ...], list[int]],
    i: int,
) -> None:
    raise InvalidConfig(
        f"custom component {comp.name!r} is declared potential_based=True, but two action sequences that "
        f"reach the same state earn different totals from it: {[x.name for x in a[1]]} earns {a[0][i]!r} "
        f"and {[x.name for x in b[1]]} earns {b[0][i]!r} (prices {a[2][: len(a[1]) + 1]}). A "
        "potential-based term Phi(s') - Phi(s) sums to Phi(end) - Phi(start) on every path. Declare "
        "potential_based=False, or compute it from a potential of the state."
    )


# ----------------------------------------------------------------------------- loading
