"""Actions drawn from an env's own action space: ``Discrete``, ``MultiDiscrete`` and ``Box``.

Most trading envs in use give the agent a ``Box`` action (target weights, target shares,
order sizes over several instruments) or a ``MultiDiscrete`` one (a side per instrument).
The strategies here draw members of such a space, and sequences of them, the way a
trading agent sends them: in-bounds allocations, allocations on and just inside the
bounds, sparse and concentrated ones, and sequences that hold a position, reverse it and
close it. Every draw is a member: ``space.contains(action)`` is True.

The *neutral* action of a space (:func:`neutral_action`) is what every strategy shrinks
towards: 0 in every component, clipped into the bounds (for target weights, all cash),
or the first value of each ``MultiDiscrete`` component. So a shrunk counterexample is a
few steps of "do nothing" with the one allocation that matters.

:func:`adversarial_actions` is the other side: inputs derived from the space that the
space does *not* contain (NaN, infinities, values past the bounds, values too large for
an integer cast, the wrong shape, the wrong dtype, a Python list, ``None``), each with
the member it clips to when clipping makes sense. ``action-range-enforced`` plays them:
an env must refuse each one, or clip it as it declares, never execute garbage.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple, get_args

import hypothesis.strategies as st
import numpy as np
import numpy.typing as npt
from gymnasium import spaces
from hypothesis.errors import InvalidArgument

from tradeguard.strategies._common import check_option, check_sizes

__all__ = [
    "SPACE_STYLES",
    "AdversarialAction",
    "SpaceStyle",
    "adversarial_actions",
    "box_actions",
    "describe_action",
    "multi_discrete_actions",
    "neutral_action",
    "space_action_sequences",
    "space_actions",
]

SpaceStyle = Literal["uniform", "sticky", "hold-reverse-close"]
"""How :func:`space_action_sequences` strings actions together."""
SPACE_STYLES: tuple[SpaceStyle, ...] = get_args(SpaceStyle)

UNBOUNDED = 1e6
"""Where an unbounded ``Box`` dimension is cut for drawing in-bounds values."""
_MAX_RUN = 16
_MAX_SEQUENCE = 100_000
_BIG = 1e20
"""Past ``2**63``: a value no integer cast (int64, uint64) can hold."""


def _check_space(space: Any, allowed: tuple[type, ...], what: str) -> None:
    if not isinstance(space, allowed):
        raise InvalidArgument(
            f"space={space!r} is a {type(space).__name__}; {what} takes a "
            f"{' or '.join('gymnasium.spaces.' + t.__name__ for t in allowed)}."
        )


# --------------------------------------------------------------------------- neutral and bounds
def neutral_action(space: Any) -> Any:
    """The member every strategy shrinks towards: "do nothing" in the space's own terms.

    ``Discrete``: its first value (``start``, 0 by default). ``MultiDiscrete``: the first
    value of each component. ``Box``: 0 in every component, clipped into the bounds (all
    cash, for target weights), in the space's dtype.

    Raises:
        InvalidArgument: ``space`` is none of those.

    Example:
        >>> import numpy as np
        >>> from gymnasium.spaces import Box
        >>> neutral_action(Box(-1.0, 1.0, (3,), np.float64))
        array([0., 0., 0.])
    """
    if isinstance(space, spaces.Discrete):
        return int(space.start)
    if isinstance(space, spaces.MultiDiscrete):
        return np.asarray(space.start, dtype=space.dtype).copy()
    _check_space(space, (spaces.Box,), "neutral_action")
    zero = np.clip(np.zeros(space.shape), space.low, space.high)
    return _as_member(zero, space)


def _as_member(values: npt.ArrayLike, space: spaces.Box) -> npt.NDArray[Any]:
    arr = np.asarray(values, dtype=np.float64)
    if np.issubdtype(space.dtype, np.integer):
        lo = np.ceil(np.asarray(space.low, dtype=np.float64))
        hi = np.floor(np.asarray(space.high, dtype=np.float64))
        return np.clip(np.rint(arr), lo, hi).astype(space.dtype)
    out = arr.astype(space.dtype)
    # Rounding to a narrower float is monotonic and the bounds are representable in the
    # dtype, so a value within them stays within them; clip all the same (NaN never occurs).
    return np.clip(out, space.low, space.high).astype(space.dtype)


def _finite_bounds(space: spaces.Box) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    low = np.maximum(np.asarray(space.low, dtype=np.float64), -UNBOUNDED)
    high = np.minimum(np.asarray(space.high, dtype=np.float64), UNBOUNDED)
    low = np.minimum(low, high)
    return np.broadcast_to(low, space.shape).copy(), np.broadcast_to(high, space.shape).copy()


def _inside(value: float, toward: float, dtype: Any) -> float:
    """One representable step from ``value`` towards ``toward`` (in ``dtype``): just inside a bound."""
    if np.issubdtype(dtype, np.integer):
        return value + (1 if toward > value else -1 if toward < value else 0)
    kind = np.float32 if np.dtype(dtype).itemsize <= 4 else np.float64
    return float(np.nextafter(kind(value), kind(toward)))


# --------------------------------------------------------------------------- single actions
def _box_components(space: spaces.Box) -> tuple[list[st.SearchStrategy[float]], npt.NDArray[np.float64],
                                                 npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Each component's strategy (built once per space), the neutral values and the bounds, flat."""
    low, high = _finite_bounds(space)
    neutral = np.asarray(neutral_action(space), dtype=np.float64).reshape(-1)
    lo, hi = low.reshape(-1), high.reshape(-1)
    integer = np.issubdtype(space.dtype, np.integer)
    width = 32 if np.dtype(space.dtype).itemsize <= 4 else 64
    parts: list[st.SearchStrategy[float]] = []
    for i in range(lo.size):
        edges = sorted({float(lo[i]), float(hi[i]), _inside(float(lo[i]), float(hi[i]), space.dtype),
                        _inside(float(hi[i]), float(lo[i]), space.dtype)})
        inner: st.SearchStrategy[float] = (
            st.integers(math.ceil(lo[i]), math.floor(hi[i])).map(float) if integer
            else st.floats(float(lo[i]), float(hi[i]), allow_nan=False, width=width)  # type: ignore[arg-type]
        )
        # The neutral value first: a shrinking component goes back to "nothing held".
        parts.append(st.one_of(st.just(float(neutral[i])), st.sampled_from(edges), inner))
    return parts, neutral, lo, hi


@st.composite
def _box_draw(draw: st.DrawFn, space: spaces.Box, parts: list[st.SearchStrategy[float]],
              neutral: npt.NDArray[np.float64], lo: npt.NDArray[np.float64],
              hi: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    n = lo.size
    # Allocation shapes, in shrink order (Hypothesis prefers fewer choices): neutral (no
    # further choice), concentrated (one component at its upper bound, the rest neutral),
    # sparse (one or two components away from neutral), every component anywhere (each
    # shrinking towards neutral), every component on a bound.
    shape = draw(st.integers(0, 4))
    values = neutral.copy()
    if shape == 1:
        i = draw(st.integers(0, n - 1))
        values[i] = hi[i]
    elif shape == 2:
        for i in draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=min(2, n), unique=True)):
            values[i] = draw(parts[i])
    elif shape == 3:
        values = np.array([draw(parts[i]) for i in range(n)], dtype=np.float64)
    elif shape == 4:
        values = np.array([draw(st.sampled_from([float(lo[i]), float(hi[i])])) for i in range(n)])
    return _as_member(values.reshape(space.shape), space)


def box_actions(space: spaces.Box) -> st.SearchStrategy[npt.NDArray[Any]]:
    """Members of a ``Box`` action space, as a trading agent sends them.

    Each draw is one of: the neutral action; a *concentrated* allocation (one component
    at its upper bound, the rest neutral); a *sparse* one (one or two components away
    from neutral); every component anywhere in its bounds (neutral, on a bound, one
    representable step inside a bound, or uniform between them); every component on a
    bound. Values
    are arrays of the space's shape and dtype; an unbounded dimension is drawn within
    +-1e6. Every draw satisfies ``space.contains``.

    Shrinks towards :func:`neutral_action` (0 clipped into the bounds: all cash), one
    component at a time.

    Args:
        space: A ``gymnasium.spaces.Box`` (float or integer dtype).

    Raises:
        InvalidArgument: ``space`` is not a ``Box``.

    Example:
        >>> import numpy as np
        >>> from gymnasium.spaces import Box
        >>> from hypothesis import find
        >>> space = Box(0.0, 1.0, (3,), np.float64)
        >>> find(box_actions(space), lambda a: a.max() == 1.0)
        array([1., 0., 0.])
    """
    _check_space(space, (spaces.Box,), "box_actions")
    return _box_draw(space, *_box_components(space))


def multi_discrete_actions(space: spaces.MultiDiscrete) -> st.SearchStrategy[npt.NDArray[Any]]:
    """Members of a ``MultiDiscrete`` space: each component in ``[start, start + nvec)``.

    Shrinks towards :func:`neutral_action` (every component at its start).

    Raises:
        InvalidArgument: ``space`` is not a ``MultiDiscrete``.

    Example:
        >>> from gymnasium.spaces import MultiDiscrete
        >>> from hypothesis import find
        >>> find(multi_discrete_actions(MultiDiscrete([3, 3])), lambda a: a.sum() >= 3).tolist()
        [1, 2]
    """
    _check_space(space, (spaces.MultiDiscrete,), "multi_discrete_actions")
    starts = np.asarray(space.start).reshape(-1)
    sizes = np.asarray(space.nvec).reshape(-1)
    parts = [st.integers(int(s), int(s + n - 1)) for s, n in zip(starts, sizes, strict=True)]
    return st.tuples(*parts).map(lambda t: np.asarray(t, dtype=space.dtype).reshape(space.shape))


def space_actions(space: Any) -> st.SearchStrategy[Any]:
    """Members of a ``Discrete``, ``MultiDiscrete`` or ``Box`` space (one action).

    ``Discrete(n, start)``: ints in ``[start, start + n)``, shrinking towards ``start``;
    the others as :func:`multi_discrete_actions` and :func:`box_actions`.

    Raises:
        InvalidArgument: any other space (Dict, Tuple, ...): write the actions yourself.

    Example:
        >>> from gymnasium.spaces import Discrete
        >>> from hypothesis import find
        >>> find(space_actions(Discrete(3, start=1)), lambda a: a > 1)
        2
    """
    if isinstance(space, spaces.Discrete):
        return st.integers(int(space.start), int(space.start + space.n - 1))
    if isinstance(space, spaces.MultiDiscrete):
        return multi_discrete_actions(space)
    _check_space(space, (spaces.Discrete, spaces.MultiDiscrete, spaces.Box), "space_actions")
    return box_actions(space)


# --------------------------------------------------------------------------- sequences
def _reverse(space: Any, action: Any) -> Any:
    """The opposite allocation: ``-a`` clipped into a ``Box`` that allows negatives, else the
    allocation moved one instrument along (a long-only book cannot go short); a component's
    mirror value for ``MultiDiscrete`` (sell for buy)."""
    if isinstance(space, spaces.Discrete):
        return int(space.start + space.n - 1 - (action - space.start))
    if isinstance(space, spaces.MultiDiscrete):
        mirrored = np.asarray(space.start) + np.asarray(space.nvec) - 1 - (action - np.asarray(space.start))
        return mirrored.astype(space.dtype)
    if np.any(np.asarray(space.low) < 0):
        return _as_member(0.0 - np.asarray(action, dtype=np.float64), space)
    return _as_member(np.roll(np.asarray(action, dtype=np.float64).reshape(-1), 1).reshape(space.shape), space)


@st.composite
def _sequence_draw(draw: st.DrawFn, space: Any, element: st.SearchStrategy[Any], lo: int, hi: int,
                   style: SpaceStyle) -> list[Any]:
    if style == "uniform":
        # The length first, from the whole range (st.lists alone averages a handful of
        # elements); shrinking it truncates the list, then each action goes to neutral.
        size = draw(st.integers(lo, hi))
        return [draw(element) for _ in range(size)]
    neutral = neutral_action(space)
    run = st.integers(1, max(1, min(hi, _MAX_RUN)))
    parts = 1 if style == "sticky" else 3
    segments = draw(st.lists(st.tuples(element, *([run] * parts)), min_size=1 if lo else 0, max_size=max(1, hi)))
    out: list[Any] = []
    for action, *lengths in segments:
        if style == "sticky":
            out.extend([action] * lengths[0])
        else:  # hold it, reverse it, close it
            out.extend([action] * lengths[0])
            out.extend([_reverse(space, action)] * lengths[1])
            out.extend([neutral] * lengths[2])
        if len(out) >= hi:
            break
    del out[hi:]
    while len(out) < lo:  # extend the last run: short lists shrink to it
        out.append(out[-1] if out else neutral)
    return out


def space_action_sequences(
    space: Any,
    *,
    min_size: int = 1,
    max_size: int = 50,
    style: SpaceStyle = "uniform",
) -> st.SearchStrategy[list[Any]]:
    """Lists of members of ``space`` (``Discrete``, ``MultiDiscrete`` or ``Box``), decided up front.

    Styles:

    - ``"uniform"``: each step an independent :func:`space_actions` draw.
    - ``"sticky"``: runs of one repeated action (1 to 16 steps each): an agent that holds
      an allocation, or a collapsed policy that always sends the same one.
    - ``"hold-reverse-close"``: runs of an allocation held, then its reverse (``-a``
      clipped into the bounds where the space allows shorts; the allocation moved one
      instrument along where it does not; the mirror value of each ``MultiDiscrete``
      component), then the neutral action (close everything): the round trips that
      exercise fills, fees and sign changes.

    Every style shrinks towards ``[neutral_action(space)] * min_size``: fewer steps first,
    then each action towards neutral.

    Args:
        space: The env's action space.
        min_size: Fewest actions, in [0, 100000].
        max_size: Most actions, in [min_size, 100000].
        style: ``"uniform"``, ``"sticky"`` or ``"hold-reverse-close"``.

    Raises:
        InvalidArgument: an unsupported space, a size out of range, or an unknown style.

    Example:
        >>> import numpy as np
        >>> from gymnasium.spaces import Box
        >>> from hypothesis import find
        >>> space = Box(-1.0, 1.0, (2,), np.float64)
        >>> seq = find(space_action_sequences(space, style="hold-reverse-close"), lambda s: s[0].max() > 0)
        >>> [a.tolist() for a in seq]  # hold, reverse, close
        [[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]]
    """
    lo, hi = check_sizes("min_size", min_size, "max_size", max_size, lowest=0, highest=_MAX_SEQUENCE)
    check_option("style", style, SPACE_STYLES)
    return _sequence_draw(space, space_actions(space), lo, hi, style)


# --------------------------------------------------------------------------- adversarial inputs
class AdversarialAction(NamedTuple):
    """An input the action space does not contain, and what clipping it into the space gives.

    Attributes:
        what: What it is, for messages (``"NaN in component 0"``).
        action: The input itself, as an agent or a bug would pass it.
        clipped: The member an env that declares ``out_of_space="clip"`` must treat it as
            (values past a bound become the bound), or ``None`` when it cannot be clipped
            (NaN, the wrong shape or dtype, ``None``): every env must refuse it.
    """

    what: str
    action: Any
    clipped: Any


def adversarial_actions(space: Any) -> tuple[AdversarialAction, ...]:
    """Inputs derived from ``space`` that an env must refuse, or clip as it declares.

    ``Box``: NaN, +inf and -inf in one component; a value past the upper and the lower
    bound; 1e20 (too large for any integer cast: the overflow that turns cash into
    -9e18); the wrong shape (one component too many or too few); the wrong dtype (complex
    numbers for a float box, fractions for an integer one); a Python list past the upper
    bound; a scalar; ``None``. ``MultiDiscrete``: a component one past its last value and
    one below its first; the wrong length; fractional components; ``None``. ``Discrete``:
    one past the last action, one below the first, the float 1.5, a whole-number float,
    ``None``, the bool ``True`` (which ``Discrete.contains`` accepts).

    Not all of them are outside every space (a list within the bounds is a ``Box``
    member; ``True`` is in ``Discrete(2)``): filter with ``not space.contains(action)``, as
    ``action-range-enforced`` does. The list is fixed for a space (no randomness).

    Raises:
        InvalidArgument: ``space`` is not a ``Discrete``, ``MultiDiscrete`` or ``Box``.

    Example:
        >>> import numpy as np
        >>> from gymnasium.spaces import Box
        >>> [a.what for a in adversarial_actions(Box(0.0, 1.0, (2,), np.float64))][:3]
        ['NaN in component 0', '+inf in component 0', '-inf in component 0']
    """
    if isinstance(space, spaces.Discrete):
        n, start = int(space.n), int(space.start)
        return (
            AdversarialAction("one past the last action", start + n, start + n - 1),
            AdversarialAction("one below the first action", start - 1, start),
            AdversarialAction("the float 1.5", 1.5, None),
            AdversarialAction("a whole-number float", float(start + n - 1), None),
            AdversarialAction("None", None, None),
            AdversarialAction("the bool True", True, None),
        )
    if isinstance(space, spaces.MultiDiscrete):
        return _multi_discrete_adversarial(space)
    _check_space(space, (spaces.Discrete, spaces.MultiDiscrete, spaces.Box), "adversarial_actions")
    return _box_adversarial(space)


def _box_adversarial(space: spaces.Box) -> tuple[AdversarialAction, ...]:
    neutral = np.asarray(neutral_action(space))
    low = np.broadcast_to(np.asarray(space.low, dtype=np.float64), space.shape)
    high = np.broadcast_to(np.asarray(space.high, dtype=np.float64), space.shape)
    flat_index = (0,) * len(space.shape)
    integer = np.issubdtype(space.dtype, np.integer)

    def one(value: float) -> npt.NDArray[np.float64]:
        arr = neutral.astype(np.float64).copy()
        arr[flat_index] = value
        return arr

    def clip(arr: npt.NDArray[np.float64]) -> Any:
        if np.isnan(arr).any():
            return None
        clipped = np.clip(arr, low, high)
        return None if not np.isfinite(clipped).all() else _as_member(clipped, space)

    hi0, lo0 = float(high[flat_index]), float(low[flat_index])
    out: list[AdversarialAction] = []
    where = " in component 0" if space.shape else ""
    out.append(AdversarialAction(f"NaN{where}", one(math.nan), None))
    out.append(AdversarialAction(f"+inf{where}", one(math.inf), clip(one(math.inf))))
    out.append(AdversarialAction(f"-inf{where}", one(-math.inf), clip(one(-math.inf))))
    if math.isfinite(hi0):
        past = hi0 + max(1.0, abs(hi0))
        out.append(AdversarialAction(f"past the upper bound{where} ({past:g} > {hi0:g})", one(past), clip(one(past))))
    if math.isfinite(lo0):
        past = lo0 - max(1.0, abs(lo0))
        out.append(AdversarialAction(f"past the lower bound{where} ({past:g} < {lo0:g})", one(past), clip(one(past))))
    out.append(AdversarialAction(f"1e20{where}, too large for an integer cast", one(_BIG), clip(one(_BIG))))
    flat = neutral.reshape(-1)
    out.append(AdversarialAction(f"the wrong shape ({flat.size + 1} components for shape {space.shape})",
                                 np.concatenate((flat, flat[:1])), None))
    if flat.size > 1:
        out.append(AdversarialAction(f"the wrong shape ({flat.size - 1} components for shape {space.shape})",
                                     flat[:-1].copy(), None))
    if integer:
        out.append(AdversarialAction(f"the wrong dtype (float64 with a fraction for {space.dtype})",
                                     neutral.astype(np.float64) + 0.5, None))
    else:
        out.append(AdversarialAction(f"the wrong dtype (complex128 for {space.dtype})",
                                     neutral.astype(np.complex128) + 1j, None))
    if math.isfinite(hi0):
        past = hi0 + max(1.0, abs(hi0))
        listed = one(past).tolist()
        out.append(AdversarialAction("a Python list past the upper bound", listed, clip(one(past))))
    if space.shape != ():
        out.append(AdversarialAction("a scalar", float(flat[0]), None))
    out.append(AdversarialAction("None", None, None))
    return tuple(out)


def _multi_discrete_adversarial(space: spaces.MultiDiscrete) -> tuple[AdversarialAction, ...]:
    start = np.asarray(space.start, dtype=np.int64)
    last = start + np.asarray(space.nvec, dtype=np.int64) - 1
    neutral = start.copy()
    at = (0,) * len(space.shape)

    def one(value: int) -> npt.NDArray[np.int64]:
        arr = neutral.copy()
        arr[at] = value
        return arr

    def clip(arr: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        return np.clip(arr, start, last).astype(space.dtype)

    flat = neutral.reshape(-1)
    past, below = int(last[at]) + 1, int(start[at]) - 1
    out = [
        AdversarialAction(f"component 0 one past its last value ({past})", one(past), clip(one(past))),
        AdversarialAction(f"component 0 one below its first value ({below})", one(below), clip(one(below))),
        AdversarialAction(f"the wrong length ({flat.size + 1} components)", np.concatenate((flat, flat[:1])), None),
    ]
    if flat.size > 1:
        out.append(AdversarialAction(f"the wrong length ({flat.size - 1} components)", flat[:-1].copy(), None))
    out.append(AdversarialAction("fractional components", neutral.astype(np.float64) + 0.5, None))
    out.append(AdversarialAction("None", None, None))
    return tuple(out)


def describe_action(action: Any) -> str:
    """An action as a short, readable literal, for counterexamples and messages.

    Example:
        >>> import numpy as np
        >>> describe_action(np.array([0.5, 0.0, 1.0])), describe_action(3), describe_action(None)
        ('[0.5, 0, 1]', '3', 'None')
    """
    if isinstance(action, np.ndarray):
        if action.dtype.kind in "iufb" and action.size <= 16:
            return "[" + ", ".join(_number(x) for x in action.reshape(-1).tolist()) + "]"
        return np.array2string(action, precision=4, threshold=8, separator=", ")
    if isinstance(action, (list, tuple)) and all(isinstance(x, (int, float)) for x in action):
        return "[" + ", ".join(_number(x) for x in action) + "]"
    return repr(action)


def _number(x: float) -> str:
    if isinstance(x, bool):
        return repr(x)
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x)) if x != 0 or math.copysign(1.0, x) > 0 else "0"
    return f"{x:.6g}" if isinstance(x, float) else str(x)

