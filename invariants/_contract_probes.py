"""Env-contract checks that probe the env beyond one episode: seeding, episode length, what
the observation shows; and the table of every env-contract check (scope ``env``).

Each check takes an env factory, the actions to play, and a seed, like those of
:mod:`tradeguard.invariants._contract`, and returns every violation it finds. What they
need declared (an episode length, the position in the record) they read from the trace
header the adapter writes; without it the gate reports them ``not-applicable``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tradeguard.invariants._accounting import worth_nothing
from tradeguard.invariants._adapter import TraceAdapter
from tradeguard.invariants._contract import (
    EnvFactory,
    MaskedPlan,
    _same,
    _short,
    check_action_range_enforced,
    check_observation_in_space,
    check_replay_determinism,
    check_returned_data_not_reused,
    check_step_after_end_refused,
    record_episode,
)
from tradeguard.invariants._isolation import (
    fresh_global_rngs,
    global_rngs,
    global_rngs_changed,
    set_global_rngs,
)
from tradeguard.invariants._model import Violation
from tradeguard.invariants._spaces import idle_action
from tradeguard.trace import StepRecord, TraceMeta

__all__ = [
    "CONTRACT_CHECKS",
    "SAMPLES",
    "check_env_contract",
    "check_episode_length_as_configured",
    "check_position_observable",
    "check_seeding_honored",
]

SAMPLES = 32
"""Actions sampled from the action space to compare two of its random streams. Two streams of
a space with at least two members agree by chance with probability at most 2**-32."""


def _samples(space: Any, n: int = SAMPLES) -> list[Any]:
    return [space.sample() for _ in range(n)]


def _same_samples(a: list[Any], b: list[Any]) -> bool:
    return all(bool(np.array_equal(np.asarray(x), np.asarray(y))) for x, y in zip(a, b, strict=True))


def _sampled_after_reset(
    make_env: EnvFactory, *, space_seed: int, seed: int | None, options: dict[str, Any] | None
) -> tuple[list[Any], Any]:
    """A fresh env whose action space is seeded with ``space_seed``, reset with ``seed``: what its
    action space samples next, and the env."""
    env = make_env()
    env.action_space.seed(space_seed)
    env.reset(seed=seed, options=options)
    return _samples(env.action_space), env


def _own_generator_state(env: Any) -> Any:
    """The state of the env's own generator (gymnasium's ``self.np_random``), or ``None``."""
    try:
        rng = getattr(getattr(env, "unwrapped", env), "np_random", None)
        state = rng.bit_generator.state if rng is not None else None
    except Exception:  # no gymnasium generator, or one that cannot be read: nothing to compare
        return None
    return state


def check_seeding_honored(
    make_env: EnvFactory, actions: Sequence[Any] | MaskedPlan, *, seed: int, options: dict[str, Any] | None = None,
    adapter: TraceAdapter | None = None,
) -> list[Violation]:
    """``reset(seed=s)`` seeds the env alone, reproducibly; an unseeded reset reseeds nothing to a constant.

    Four probes:

    1. An episode (reset with ``seed``, then ``actions``) changes neither numpy's global
       generator nor Python's ``random`` module: the env neither draws from nor reseeds them
       (under the gate, the env's private copies of them).
    2. Two fresh envs whose action spaces are seeded alike, reset with the same seed, sample
       the same actions: a reset that reseeds the action space does so from the seed.
    3. Two fresh envs whose action spaces are seeded differently, reset with ``seed=None``,
       sample different actions: ``reset(seed=None)`` does not reseed the action space to a
       constant (gymnasium's own reset leaves the action space alone; seed it with
       ``action_space.seed``).
    4. Two fresh envs reset with ``seed=None`` have different ``self.np_random`` states: an
       unseeded reset draws fresh entropy, never a constant seed.

    Probes 2 and 3 are skipped for an action space whose samples cannot differ (one member).
    """
    out: list[Violation] = []

    def found(message: str) -> None:
        out.append(Violation(invariant="seeding-honored", step=None, message=message, seed=seed))

    env = make_env()
    # From a state the env did not choose (an env that reseeds on every reset would otherwise be
    # found in the state it left last time), put back afterwards.
    saved, fresh = global_rngs(env), fresh_global_rngs(seed + 7919)
    set_global_rngs(env, fresh)
    try:
        episode = record_episode(env, actions, seed=seed, options=options, adapter=adapter)
        changed = global_rngs_changed(fresh, global_rngs(env))
    finally:
        set_global_rngs(env, saved)
    if changed:
        found(f"reset(seed={seed}) and {len(episode.trace)} steps changed {' and '.join(changed)}: the env draws "
              "from or reseeds the program's global generator instead of its own self.np_random, so "
              "reset(seed=...) cannot make its episodes reproducible and it disturbs the program that runs it")
    if episode.error is not None:
        return out  # a crash is valid-steps-do-not-raise's finding
    k1, k2 = 2 * seed + 1, 2 * seed + 2
    space = copy.deepcopy(env.action_space)
    space.seed(k1)
    first = _samples(space)
    space.seed(k2)
    if _same_samples(first, _samples(space)):
        return out  # the space has one member: its samples cannot tell
    a, _ = _sampled_after_reset(make_env, space_seed=k1, seed=seed, options=options)
    b, _ = _sampled_after_reset(make_env, space_seed=k1, seed=seed, options=options)
    if not _same_samples(a, b):
        found(f"two fresh envs, their action spaces seeded alike and reset with seed={seed}, sampled different "
              f"actions ({_short(a[0])} vs {_short(b[0])} first): reset() reseeds the action space from something "
              "the seed does not control, so action_space.sample() cannot be reproduced")
    u1, env1 = _sampled_after_reset(make_env, space_seed=k1, seed=None, options=options)
    u2, env2 = _sampled_after_reset(make_env, space_seed=k2, seed=None, options=options)
    if _same_samples(u1, u2):
        found(f"two fresh envs, their action spaces seeded differently ({k1} and {k2}) and reset with seed=None, "
              f"sampled the same {SAMPLES} actions: reset(seed=None) reseeds the action space to a constant, so "
              "every 'random' episode samples the same actions. Leave the action space alone on an unseeded reset")
    s1, s2 = _own_generator_state(env1), _own_generator_state(env2)
    if s1 is not None and s2 is not None and s1 == s2:
        found("two fresh envs reset with seed=None have the same self.np_random state: reset(seed=None) seeds the "
              "env's own generator with a constant, so every unseeded episode is the same. Call "
              "super().reset(seed=seed) and pass the seed through as given")
    return out


def check_episode_length_as_configured(
    make_env: EnvFactory, actions: Sequence[Any] | MaskedPlan, *, seed: int, options: dict[str, Any] | None = None,
    adapter: TraceAdapter | None = None, max_steps: int = 100_000,
) -> list[Violation]:
    """Play ``actions``, then a neutral action, until the episode ends: it must end after exactly
    the steps the trace header declares (``TraceMeta.episode_length``), or earlier on ruin (the
    equity after the last step at or below zero, when the header declares ``ends_on_ruin``).

    Not checked when the header declares no length, or one past ``max_steps``.
    """
    env = make_env()
    first = record_episode(env, [], seed=seed, options=options, adapter=adapter)
    want = first.trace.meta.episode_length
    if first.error is not None or want is None or want > max_steps:
        return []
    idle = idle_action(env.action_space)
    plan: Sequence[Any] | MaskedPlan
    if isinstance(actions, MaskedPlan):
        plan = MaskedPlan((*actions.choices, *(0,) * (want + 1)), actions.n_actions)
    else:
        plan = [*actions, *[idle] * (want + 1)]
    ep = record_episode(make_env(), plan, seed=seed, options=options, adapter=adapter)
    if ep.error is not None:
        return []  # a crash is valid-steps-do-not-raise's finding
    n = len(ep.trace)
    meta = ep.trace.meta
    if ep.ended and n == want:
        return []
    if ep.ended and n < want and _ruined(ep.trace.records[-1], meta):
        return []
    if not ep.ended:
        what = f"was still running after {n} steps"
    else:
        short = want - n
        what = (f"ended after {n} steps ({short} step{'s' * (short != 1)} short)" if n < want
                else f"ended after {n} steps, {n - want} past it")
    return [Violation(
        invariant="episode-length-as-configured", step=min(n, want) - 1, seed=seed,
        message=f"the env's settings declare episodes of {want} steps (TraceMeta.episode_length); this episode "
        f"{what}, with no ruin to end it early. An off-by-one in the end-of-episode test?",
    )]


def _ruined(last: StepRecord, meta: TraceMeta) -> bool:
    return meta.ends_on_ruin and "equity_after" in meta.supplies and last.equity_after <= 0


def _positions(r: StepRecord, meta: TraceMeta) -> tuple[Any, ...]:
    if "legs" in meta.supplies and r.legs is not None:
        return tuple(leg.position_after for leg in r.legs)
    return (r.position_after,)


def _sides(r: StepRecord, meta: TraceMeta) -> tuple[int, ...]:
    """Each instrument's side after the step: -1 short, 0 flat, 1 long.

    On a float ledger a position is flat when it is worth nothing at the price it is marked to
    (:func:`worth_nothing`: a weight of 1e-45 that buys 1e-40 units of a 10,000.00 account is no
    position an agent could act on), as the accounting invariants judge zero; without prices to
    value it, within the precision of the position itself. Exact ledgers compare with 0.
    """
    supplied = meta.supplies
    legs = r.legs if "legs" in supplied and r.legs is not None else None
    priced = legs is not None or {"price", "next_price"} <= supplied
    out = []
    for i, position in enumerate(_positions(r, meta)):
        if meta.exact:
            flat = position == 0
        elif priced:
            flat = worth_nothing(position, legs[i].next_price if legs is not None else r.next_price, r, meta)
        else:
            flat = abs(position) <= meta.precision.tolerance(position)
        out.append(0 if flat else int(position > 0) - int(position < 0))
    return tuple(out)


def check_position_observable(
    make_env: EnvFactory, actions: Sequence[Any] | MaskedPlan, *, seed: int, options: dict[str, Any] | None = None,
    adapter: TraceAdapter | None = None,
) -> list[Violation]:
    """Play ``actions`` and, on a fresh env with the same seed and market, only the neutral action:
    at any step where the two hold a different side of some instrument (flat, long or short),
    their observations must differ.

    Both states are reachable and share everything the seed and the market decide; an
    observation that is the same for both does not show the agent its own position. A warning
    (``Invariant.severity``): an env may hide the position on purpose and declare
    ``TraceMeta.hides_position``.
    """
    env = make_env()
    a = record_episode(env, actions, seed=seed, options=options, adapter=adapter)
    meta = a.trace.meta
    if a.error is not None or meta.hides_position or not {"position_after", "legs"} & meta.supplies:
        return []
    idle = idle_action(env.action_space)
    b = record_episode(make_env(), [idle] * len(a.trace), seed=seed, options=options, adapter=adapter)
    if b.error is not None:
        return []
    for i, (ra, rb) in enumerate(zip(a.trace.records, b.trace.records, strict=False)):
        pa, pb = _positions(ra, meta), _positions(rb, meta)
        # The side, not the size: flat, long or short is what an agent must see to know which
        # actions it may take (a short of 9.97 or 9.99 units, after different fees, is the same
        # state to an env that shows its position as a fraction of value).
        differ = len(pa) != len(pb) or _sides(ra, meta) != _sides(rb, meta)
        if differ and _same(a.observations[i + 1], b.observations[i + 1]):
            shown = "/".join(meta.units(x) for x in pa), "/".join(meta.units(x) for x in pb)
            seen = " ".join(_short(a.observations[i + 1]).split())
            return [Violation(
                invariant="position-observable", step=ra.t, seed=seed,
                message=f"after step {ra.t} the episode holds {shown[0]} units and the same episode played with "
                f"{_idle_name(idle, meta)} only "
                f"holds {shown[1]}, yet both observations are identical ({seen}): the "
                "agent cannot see its own position. If the env hides it on purpose, declare "
                "TraceMeta(hides_position=True)",
            )]
    return []


def _idle_name(idle: Any, meta: TraceMeta) -> str:
    return meta.action_name(int(idle)) if isinstance(idle, (int, np.integer)) else f"the neutral action {_short(idle)}"


CONTRACT_CHECKS: dict[str, Callable[..., list[Violation]]] = {
    "replay-determinism": check_replay_determinism,
    "returned-data-not-reused": check_returned_data_not_reused,
    "observation-in-space": check_observation_in_space,
    "action-range-enforced": check_action_range_enforced,
    "step-after-end-refused": check_step_after_end_refused,
    "seeding-honored": check_seeding_honored,
    "episode-length-as-configured": check_episode_length_as_configured,
    "position-observable": check_position_observable,
}
"""Every env-contract check by invariant id (``valid-steps-do-not-raise`` is the gate's own)."""


def check_env_contract(
    make_env: EnvFactory,
    actions: Sequence[Any] | MaskedPlan,
    *,
    seed: int,
    options: dict[str, Any] | None = None,
    adapter: TraceAdapter | None = None,
    only: Sequence[str] | None = None,
) -> list[Violation]:
    """Run every env-contract check (or those in ``only``) and return all violations."""
    out: list[Violation] = []
    for name, check in CONTRACT_CHECKS.items():
        if only is None or name in only:
            out.extend(check(make_env, actions, seed=seed, options=options, adapter=adapter))
    return out
