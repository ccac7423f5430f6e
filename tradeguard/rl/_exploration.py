"""Epsilon-greedy exploration as an action wrapper: the seed's V10, kept so it can be reproduced.

Why it is the wrong tool for a trading env (and any env whose valid actions depend on
the state): see :class:`EpsilonGreedy` and ``docs/policies.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np

from tradeguard._validation import check_int, check_number
from tradeguard.errors import InvalidConfig

__all__ = ["EXPLORATION_SPECS", "EpsilonGreedy", "Exploration", "parse_exploration"]

EXPLORATION_SPECS = ("none", "epsilon-greedy:START:END")


@dataclass(frozen=True, slots=True, kw_only=True)
class Exploration:
    """An exploration setting, as written on the command line and in scenario files.

    Attributes:
        kind: ``"none"`` (the algorithm's own exploration only) or ``"epsilon-greedy"``.
        start: Epsilon at the first step, in [0, 1].
        end: Epsilon once the decay is over, in [0, 1].

    Example:
        >>> str(parse_exploration("epsilon-greedy:0.5:0.01"))
        'epsilon-greedy:0.5:0.01'
    """

    kind: Literal["none", "epsilon-greedy"] = "none"
    start: float = 0.0
    end: float = 0.0

    def __str__(self) -> str:
        if self.kind == "none":
            return "none"
        return f"epsilon-greedy:{self.start:g}:{self.end:g}"


def parse_exploration(spec: str) -> Exploration:
    """Read ``"none"`` or ``"epsilon-greedy:START:END"`` (epsilon decaying from START to END).

    Raises:
        InvalidConfig: anything else, or an epsilon outside [0, 1].

    Example:
        >>> parse_exploration("epsilon-greedy:0.5:0.01").start
        0.5
    """
    text = str(spec).strip()
    if text in ("", "none"):
        return Exploration()
    head, _, rest = text.partition(":")
    if head == "epsilon-greedy":
        parts = rest.split(":")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) == 2:
            start = check_number("epsilon START", values[0], min_value=0.0, max_value=1.0)
            end = check_number("epsilon END", values[1], min_value=0.0, max_value=1.0)
            return Exploration(kind="epsilon-greedy", start=start, end=end)
    raise InvalidConfig(
        f"exploration={spec!r} is not an exploration; expected 'none' or "
        "'epsilon-greedy:START:END' with START and END in [0, 1], e.g. 'epsilon-greedy:0.5:0.01' "
        "(the seed's V10)."
    )


class EpsilonGreedy(gym.Wrapper[Any, Any, Any, Any]):
    """Replace the agent's action by a uniformly random one with probability epsilon.

    Epsilon decays linearly from ``start`` to ``end`` over ``decay_steps`` env steps
    (counted across episodes), then stays at ``end``: the seed's V10 ran 0.5 -> 0.01
    over the first half of 100k steps. The random action is drawn from *all* actions,
    from the wrapper's own RNG (seeded by ``seed`` and re-seeded by ``reset(seed=...)``),
    so the env's market RNG is untouched. ``info["exploration"]`` says what happened:
    ``{"epsilon", "replaced", "policy_action"}``.

    **The wrong tool for action-dependent envs.** Epsilon-greedy assumes any action is
    valid at any time (true of Atari buttons). In a trading env SELL needs a position and
    ADD needs a profitable one, so most random actions are rejected: with no position,
    4 of 7 actions are invalid. Three things then go wrong at once:

    1. The random actions rarely form a valid BUY ... SELL sequence, so exploration
       mostly explores *rejections*, and the failed-action penalty dominates what the
       agent learns (with -0.05 a rejection is "almost free": the seed's V10 converged
       to 100% SELL_PARTIAL, every one rejected).
    2. For an on-policy algorithm (PPO), the rollout stores the *policy's* action but the
       env executed the *random* one: the reward is credited to an action that was not
       taken, and the likelihood ratio is computed for the wrong action. The gradient is
       biased in proportion to epsilon.
    3. The agent's own entropy bonus already explores; epsilon adds uniform noise on top,
       so the logged action distribution mixes the policy with the noise and hides a
       collapse until epsilon has decayed.

    Use action masking instead (sb3-contrib ``MaskablePPO`` reads ``env.action_masks()``):
    the policy samples only valid actions, needs no penalty, and explores sequences.

    Args:
        env: The env to wrap (its action space must be ``Discrete``).
        start: Epsilon at the first step, in [0, 1].
        end: Epsilon after ``decay_steps`` steps, in [0, 1].
        decay_steps: Steps over which epsilon decays linearly, >= 1.
        seed: Seed of the wrapper's RNG.

    Raises:
        InvalidConfig: a bad epsilon or ``decay_steps``, or a non-Discrete action space.

    Example:
        >>> from tradeguard.env import TradingEnv
        >>> env = EpsilonGreedy(TradingEnv(scenario="v10"), start=1.0, end=0.0, decay_steps=10, seed=0)
        >>> _ = env.reset(seed=0)
        >>> _, _, _, _, info = env.step(0)
        >>> info["exploration"]["epsilon"], info["exploration"]["policy_action"]
        (1.0, 0)
        >>> env.epsilon
        0.9
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        *,
        start: float = 0.5,
        end: float = 0.01,
        decay_steps: int = 50_000,
        seed: int | None = None,
    ) -> None:
        super().__init__(env)
        self.start = check_number("start", start, min_value=0.0, max_value=1.0)
        self.end = check_number("end", end, min_value=0.0, max_value=1.0)
        self.decay_steps = check_int("decay_steps", decay_steps, min_value=1)
        space = env.action_space
        if not isinstance(space, gym.spaces.Discrete):
            raise InvalidConfig(
                f"EpsilonGreedy needs a Discrete action space; the env has {space!r}."
            )
        self._n = int(space.n)
        self._start_id = int(space.start)
        self._rng = np.random.default_rng(seed)
        self.steps = 0
        """Env steps taken through this wrapper (the schedule's clock)."""

    @property
    def epsilon(self) -> float:
        """Epsilon for the next step."""
        if self.steps >= self.decay_steps:
            return self.end
        return self.start + (self.end - self.start) * (self.steps / self.decay_steps)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the env; a ``seed`` also re-seeds the wrapper's RNG (not the schedule)."""
        if seed is not None:
            self._rng = np.random.default_rng([seed, 0xE95])
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step with the agent's action or, with probability epsilon, a random one."""
        eps = self.epsilon
        replaced = bool(self._rng.random() < eps)
        chosen = self._start_id + int(self._rng.integers(self._n)) if replaced else action
        self.steps += 1
        obs, reward, terminated, truncated, info = self.env.step(chosen)
        info = dict(info)
        info["exploration"] = {
            "epsilon": eps,
            "replaced": replaced,
            "policy_action": _plain(action),
        }
        return obs, reward, terminated, truncated, info


def _plain(action: Any) -> Any:
    arr = np.asarray(action)
    return arr.item() if arr.size == 1 else action
