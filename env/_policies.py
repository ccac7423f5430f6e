"""Reference policies, their one parser, and the episode runner of ``tradeguard run``.

One family: ``tradeguard run --policy``, the policy audit and the reward audit (which plays
them on the bare state machine against its exact optimum) all take these policies by the
same names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from tradeguard._episode import play_episode
from tradeguard._validation import check_number, suggest
from tradeguard.env._actions import Action
from tradeguard.errors import InvalidConfig
from tradeguard.trace import Trace

__all__ = [
    "POLICY_SPECS",
    "BuyAndNeverSellPolicy",
    "ConstantPolicy",
    "EpsilonHoldPolicy",
    "HoldPolicy",
    "MaskedRandomPolicy",
    "Policy",
    "RandomPolicy",
    "parse_policy",
    "run_episode",
]

POLICY_SPECS = (
    "random",
    "hold",
    "masked-random",
    "constant:ACTION",
    "buy-and-never-sell:BUY_SIZE[+ADD]",
    "epsilon-hold:EPSILON",
)
"""How :func:`parse_policy` spells each policy (and ``Policy.name`` prints it)."""

_BUYS = (Action.BUY_SMALL, Action.BUY_MEDIUM, Action.BUY_LARGE)


@runtime_checkable
class Policy(Protocol):
    """Anything that picks an action from an observation and the current action mask.

    The reference policies here are the simple, named behaviours a degenerate learner
    collapses to or explores with; ``tradeguard run``, the policy audit and the reward
    audit all play them. They decide from the mask, never from the observation, so the
    reward audit can play them on the bare state machine (observation ``None``).
    """

    @property
    def name(self) -> str:
        """Short name for reports, as :func:`parse_policy` reads it (``"masked-random"``)."""
        ...

    def act(
        self,
        observation: npt.NDArray[np.float32] | None,
        mask: npt.NDArray[np.bool_] | None,
        rng: np.random.Generator,
    ) -> int:
        """The action to predict. ``mask`` is ``None`` when the env has no mask."""
        ...


@dataclass(frozen=True, slots=True)
class HoldPolicy:
    """HOLD on every step: the baseline every reward must make beatable."""

    name: str = "hold"

    def act(self, observation: Any, mask: Any, rng: np.random.Generator) -> int:
        return int(Action.HOLD)


@dataclass(frozen=True, slots=True)
class RandomPolicy:
    """Uniform over all actions, ignoring the mask (what epsilon-greedy explores with)."""

    n_actions: int = len(Action)
    name: str = "random"

    def act(self, observation: Any, mask: Any, rng: np.random.Generator) -> int:
        return int(rng.integers(self.n_actions))


@dataclass(frozen=True, slots=True)
class MaskedRandomPolicy:
    """Uniform over the actions the mask allows (all actions when there is no mask)."""

    n_actions: int = len(Action)
    name: str = "masked-random"

    def act(self, observation: Any, mask: npt.NDArray[np.bool_] | None, rng: np.random.Generator) -> int:
        if mask is None:
            return int(rng.integers(self.n_actions))
        valid = np.flatnonzero(mask)
        return int(valid[rng.integers(len(valid))])


@dataclass(frozen=True, slots=True)
class ConstantPolicy:
    """The same action on every step, valid or not (the seed's collapsed agent: ``constant:SELL_PARTIAL``)."""

    action: int

    @property
    def name(self) -> str:
        """``constant:ACTION``."""
        return f"constant:{_action_name(self.action)}"

    def act(self, observation: Any, mask: Any, rng: np.random.Generator) -> int:
        return self.action


@dataclass(frozen=True, slots=True)
class BuyAndNeverSellPolicy:
    """Open with ``buy`` as soon as the mask allows it, then HOLD to the end: never sells.

    With ``add=True`` it also adds whenever the mask allows ADD_POSITION (the seed's V6-V9
    ADD_POSITION collapse). It reads the position from the mask (a buy is allowed only
    when flat, an add only in a position), so it needs one.
    """

    buy: Action = Action.BUY_LARGE
    add: bool = False
    respects_mask: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.buy not in _BUYS:
            raise InvalidConfig(f"buy={self.buy!r}; expected one of {', '.join(a.name for a in _BUYS)}.")

    @property
    def name(self) -> str:
        """``buy-and-never-sell:BUY_SIZE``, with ``+ADD`` when it adds."""
        return f"buy-and-never-sell:{self.buy.name}" + ("+ADD" if self.add else "")

    def act(self, observation: Any, mask: npt.NDArray[np.bool_] | None, rng: np.random.Generator) -> int:
        if mask is None:
            raise InvalidConfig(
                f"{self.name} decides from the action mask and was given none: play it on an env "
                "with action_masks(), and pass the mask (the policy audit's use_masks=True)."
            )
        if mask[self.buy]:
            return int(self.buy)
        if self.add and mask[Action.ADD_POSITION]:
            return int(Action.ADD_POSITION)
        return int(Action.HOLD)


@dataclass(frozen=True, slots=True)
class EpsilonHoldPolicy:
    """HOLD, except with probability ``epsilon`` a uniformly random action (mask ignored)."""

    epsilon: float = 0.5

    def __post_init__(self) -> None:
        check_number("epsilon", self.epsilon, min_value=0.0, max_value=1.0)

    @property
    def name(self) -> str:
        """``epsilon-hold:EPSILON``."""
        return f"epsilon-hold:{self.epsilon:g}"

    def act(self, observation: Any, mask: Any, rng: np.random.Generator) -> int:
        if rng.random() < self.epsilon:
            return int(rng.integers(len(Action)))
        return int(Action.HOLD)


def _action_name(action: int) -> str:
    return Action(action).name if 0 <= action < len(Action) else str(action)


def parse_policy(spec: str) -> Policy:
    """Build a policy from its name, as :attr:`Policy.name` prints it and the command line takes it.

    ``random``, ``hold``, ``masked-random``, ``constant:ACTION``,
    ``buy-and-never-sell:BUY_SIZE`` (``+ADD`` to add whenever it can) or
    ``epsilon-hold:EPSILON``; ACTION is a name (``SELL_PARTIAL``) or an id (``4``).

    Raises:
        InvalidConfig: an unknown name or action (with the closest known one).

    Example:
        >>> parse_policy("constant:SELL_PARTIAL").act(None, None, None)
        4
        >>> parse_policy("buy-and-never-sell:BUY_SMALL+ADD").name
        'buy-and-never-sell:BUY_SMALL+ADD'
    """
    if spec == "random":
        return RandomPolicy()
    if spec == "hold":
        return HoldPolicy()
    if spec == "masked-random":
        return MaskedRandomPolicy()
    kind, sep, arg = spec.partition(":")
    if sep and kind == "constant":
        return ConstantPolicy(int(_parse_action(spec, arg.strip())))
    if sep and kind == "buy-and-never-sell":
        raw, plus, add = arg.strip().partition("+")
        buy = _parse_action(spec, raw)
        if buy not in _BUYS or (plus and add != "ADD"):
            raise InvalidConfig(
                f"policy={spec!r}; expected buy-and-never-sell:BUY_SIZE or buy-and-never-sell:BUY_SIZE+ADD "
                f"with BUY_SIZE one of {', '.join(a.name for a in _BUYS)}."
            )
        return BuyAndNeverSellPolicy(buy, add=bool(plus))
    if sep and kind == "epsilon-hold":
        try:
            epsilon = float(arg)
        except ValueError:
            raise InvalidConfig(f"policy={spec!r}: {arg!r} is not a number; expected e.g. epsilon-hold:0.5.") from None
        return EpsilonHoldPolicy(epsilon)
    raise InvalidConfig(
        f"policy={spec!r} is not a policy; expected one of {', '.join(POLICY_SPECS)}."
        f"{suggest(spec, ('random', 'hold', 'masked-random', 'constant:', 'buy-and-never-sell:', 'epsilon-hold:'))}"
    )


def _parse_action(spec: str, raw: str) -> Action:
    if raw.upper() in Action.__members__:
        return Action[raw.upper()]
    if raw.isdigit() and int(raw) < len(Action):
        return Action(int(raw))
    raise InvalidConfig(
        f"policy={spec!r}: {raw!r} is not an action; expected a name "
        f"({', '.join(Action.__members__)}) or an id 0..{len(Action) - 1}."
        f"{suggest(raw.upper(), Action.__members__)}"
    )


def run_episode(
    env: Any,
    policy: Policy,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    max_steps: int | None = None,
) -> Trace:
    """Play one episode of ``policy`` on ``env`` and return the env's trace.

    The policy's RNG is seeded from ``seed`` (independently of the env's), and the
    mask comes from ``env.action_masks()`` when the env has it. Stops at the end of
    the episode or after ``max_steps``.

    Example:
        >>> from tradeguard.env import TradingEnv
        >>> trace = run_episode(TradingEnv(scenario="v10"), parse_policy("hold"), seed=0, max_steps=5)
        >>> len(trace), trace.metrics().trades
        (5, 0)
    """
    rng = np.random.default_rng(None if seed is None else [seed, 0x7A11])

    def choose(t: int, observation: Any, mask: tuple[bool, ...] | None) -> int:
        return policy.act(observation, None if mask is None else np.array(mask, dtype=bool), rng)

    play_episode(env, choose, recorder=None, seed=seed, options=options, max_steps=max_steps)
    trace: Trace = getattr(env, "unwrapped", env).trace
    return trace
