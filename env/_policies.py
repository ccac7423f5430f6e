"""Reference policies and the episode runner used by ``tradeguard run`` and the audits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from tradeguard._episode import play_episode
from tradeguard._validation import suggest
from tradeguard.env._actions import Action
from tradeguard.errors import InvalidConfig
from tradeguard.trace import Trace

__all__ = [
    "POLICY_SPECS",
    "ConstantPolicy",
    "HoldPolicy",
    "MaskedRandomPolicy",
    "Policy",
    "RandomPolicy",
    "parse_policy",
    "run_episode",
]

POLICY_SPECS = ("random", "hold", "masked-random", "constant:ACTION")


@runtime_checkable
class Policy(Protocol):
    """Anything that picks an action from an observation and the current action mask."""

    @property
    def name(self) -> str:
        """Short name for reports (``"masked-random"``)."""
        ...

    def act(
        self,
        observation: npt.NDArray[np.float32],
        mask: npt.NDArray[np.bool_] | None,
        rng: np.random.Generator,
    ) -> int:
        """The action to predict. ``mask`` is ``None`` when the env has no mask."""
        ...


@dataclass(frozen=True)
class HoldPolicy:
    """Always HOLD."""

    name: str = "hold"

    def act(self, observation: Any, mask: Any, rng: np.random.Generator) -> int:
        return int(Action.HOLD)


@dataclass(frozen=True)
class RandomPolicy:
    """Uniform over all actions, ignoring the mask (what epsilon-greedy explores with)."""

    n_actions: int = len(Action)
    name: str = "random"

    def act(self, observation: Any, mask: Any, rng: np.random.Generator) -> int:
        return int(rng.integers(self.n_actions))


@dataclass(frozen=True)
class MaskedRandomPolicy:
    """Uniform over the actions the mask allows (all actions when there is no mask)."""

    n_actions: int = len(Action)
    name: str = "masked-random"

    def act(self, observation: Any, mask: npt.NDArray[np.bool_] | None, rng: np.random.Generator) -> int:
        if mask is None:
            return int(rng.integers(self.n_actions))
        valid = np.flatnonzero(mask)
        return int(valid[rng.integers(len(valid))])


@dataclass(frozen=True)
class ConstantPolicy:
    """Always the same action, valid or not (the seed's collapsed agent: ``constant:SELL_PARTIAL``)."""

    action: int
    name: str = "constant"

    def act(self, observation: Any, mask: Any, rng: np.random.Generator) -> int:
        return self.action


def parse_policy(spec: str) -> Policy:
    """Build a policy from its command-line spelling.

    ``random``, ``hold``, ``masked-random``, or ``constant:ACTION`` where ACTION is a
    name (``SELL_PARTIAL``) or an id (``4``).

    Example:
        >>> parse_policy("constant:SELL_PARTIAL").act(None, None, None)
        4
    """
    if spec == "random":
        return RandomPolicy()
    if spec == "hold":
        return HoldPolicy()
    if spec == "masked-random":
        return MaskedRandomPolicy()
    if spec.startswith("constant:"):
        raw = spec.split(":", 1)[1].strip()
        if raw.upper() in Action.__members__:
            action = Action[raw.upper()]
        elif raw.isdigit() and int(raw) < len(Action):
            action = Action(int(raw))
        else:
            raise InvalidConfig(
                f"policy={spec!r}: {raw!r} is not an action; expected a name "
                f"({', '.join(Action.__members__)}) or an id 0..{len(Action) - 1}."
                f"{suggest(raw.upper(), Action.__members__)}"
            )
        return ConstantPolicy(int(action), name=f"constant:{action.name}")
    raise InvalidConfig(
        f"policy={spec!r} is not a policy; expected one of {', '.join(POLICY_SPECS)}."
        f"{suggest(spec, ('random', 'hold', 'masked-random', 'constant:'))}"
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
