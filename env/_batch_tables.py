"""The batch engine's tables: the rule table and the reward weights of every kind of env, as arrays.

Envs with the same (config, reward, market, scenario) are one :class:`EnvKind`, with a
prototype scalar :class:`TradingEnv` whose compiled rule table (:attr:`Machine.table`) and
shaper weights it keeps. :class:`BatchTables` lays the kinds' tables end to end, so that
one ``take`` looks up the verdict, executed action, effect, size, penalty or mask of every
env at once (index: ``kind * 8 + signature``, times ``N_ACTIONS`` plus the action), and
holds the per-env parameters as scalars when every env shares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tradeguard.env._actions import N_ACTIONS, Action, RejectReason
from tradeguard.env._config import PPM, EnvConfig, RewardConfig
from tradeguard.env._market import Market, MarketSpec
from tradeguard.env._rules import RULES, Effect
from tradeguard.env._scenarios import Scenario
from tradeguard.env._trading_env import TradingEnv
from tradeguard.errors import InvalidConfig

__all__ = [
    "BITS",
    "BUYS",
    "EFFECTS",
    "REASONS",
    "REASON_TEXT",
    "BatchTables",
    "EnvKind",
    "group_kinds",
]

_EFFECT_CODE = {Effect.NOTHING: 0, Effect.OPEN: 1, Effect.ADD: 1, Effect.REDUCE: 2, Effect.CLOSE: 3}
EFFECTS = np.array([_EFFECT_CODE[rule.effect] for rule in RULES], dtype=np.int64)
"""Each action's effect, executed: 0 nothing, 1 buy (open or add), 2 reduce, 3 close."""
REASONS: tuple[RejectReason, ...] = tuple(RejectReason)
_REASON_CODE = {reason: i + 1 for i, reason in enumerate(REASONS)}
REASON_TEXT: tuple[str | None, ...] = (None, *(reason.value for reason in REASONS))
"""The record's reason for each rejection code (0: not rejected)."""
BUYS = EFFECTS == 1
"""Whether each action, executed, buys (opens or adds)."""
BITS = np.array([1 << a for a in range(N_ACTIONS)], dtype=np.int64)
"""Each action's bit in :attr:`ShaperState.seen`."""


class EnvKind:
    """One distinct (config, reward, market, scenario): its prototype scalar env and its tables.

    Args:
        proto: The scalar env this kind's envs are copies of.

    Raises:
        InvalidConfig: the reward has custom components (Python functions the engine cannot
            vectorize).
    """

    def __init__(self, proto: TradingEnv) -> None:
        self.proto = proto
        cfg, rew = proto.config, proto.reward_config
        if rew.custom_components:
            raise InvalidConfig(
                f"the batch engine computes the built-in reward components only; this reward has custom "
                f"components ({', '.join(c.name for c in rew.custom_components)}), which are Python functions "
                "of one step. Step these envs with TradingEnv (or a DummyVecEnv of them) instead."
            )
        self.config = cfg
        self.length = cfg.episode_length
        self.cash = cfg.cash
        self.lot = cfg.lot_size
        self.fee_ppm = cfg.fee_ppm
        self.size_ppm = [cfg.size_ppm(a) for a in Action]
        table = proto.machine.table
        self.masks: tuple[tuple[bool, ...], ...] = tuple(entry[1] for entry in table)
        self.reasons = [
            [0 if r is None else _REASON_CODE[r] for r in entry[0]] for entry in table
        ]
        self.weights = proto.shaper.weights
        self.penalty = rew.failed_action_penalty
        self.curriculum_bits = proto.shaper.curriculum_bits
        self.min_share = rew.curriculum_min_share
        self.curriculum = rew.curriculum_weight * rew.curriculum_scale
        self.diversity = rew.diversity_bonus
        self.market = proto.market


def group_kinds(
    configs: Sequence[EnvConfig | None],
    rewards: Sequence[RewardConfig | None],
    markets: Sequence[Market | MarketSpec | None],
    scenarios: Sequence[str | Scenario | None],
) -> tuple[list[EnvKind], list[int]]:
    """The distinct kinds among the envs' arguments, and each env's kind.

    Markets and scenarios passed as objects are told apart by identity, the rest by value.

    Args:
        configs: Each env's config (``None``: the scenario's).
        rewards: Each env's reward (``None``: the scenario's).
        markets: Each env's market (``None``: the scenario's).
        scenarios: Each env's scenario.

    Returns:
        ``(kinds, env_kind)``: the kinds in order of first use, and each env's index into them.

    Raises:
        InvalidConfig: a bad argument (as :class:`TradingEnv` raises it), custom reward
            components, or envs with different ``window`` sizes.

    Example:
        >>> kinds, env_kind = group_kinds([None] * 3, [None] * 3, [None] * 3, ["v10", "v10.1", "v10"])
        >>> len(kinds), env_kind
        (2, [0, 1, 0])
    """
    kinds: list[EnvKind] = []
    index: dict[tuple[Any, ...], int] = {}
    env_kind: list[int] = []
    for cfg, rew, mkt, scn in zip(configs, rewards, markets, scenarios, strict=True):
        key = (
            cfg,
            rew,
            id(mkt) if isinstance(mkt, Market) else mkt,
            id(scn) if isinstance(scn, Scenario) else scn,
        )
        if key not in index:
            index[key] = len(kinds)
            kinds.append(EnvKind(TradingEnv(cfg, rew, mkt, scenario=scn)))
        env_kind.append(index[key])
    windows = sorted({k.config.window for k in kinds})
    if len(windows) > 1:
        raise InvalidConfig(
            f"the envs' configs have window sizes {windows}; a batch needs one observation "
            "shape. Give every config the same window (or build one batch per window)."
        )
    return kinds, env_kind


class BatchTables:
    """Every kind's rule and reward tables laid end to end, and the per-env parameters.

    A per-env parameter is a scalar when all envs share one kind, else an array indexed
    by env. ``kind8``, ``kind7`` and ``kind6`` (``None`` for one kind) are each env's
    offset into the tables by signature, by action and by rejection code.

    Args:
        kinds: The distinct kinds (see :func:`group_kinds`).
        env_kind: Each env's index into ``kinds``.

    Example:
        >>> kinds, env_kind = group_kinds([None] * 2, [None] * 2, [None] * 2, ["v10"] * 2)
        >>> tables = BatchTables(kinds, env_kind)
        >>> tables.window, tables.kind8 is None, tables.mask_tab.shape
        (10, True, (8, 7))
    """

    def __init__(self, kinds: list[EnvKind], env_kind: list[int]) -> None:
        n = len(env_kind)
        self.kinds = kinds
        self.env_kind = env_kind
        self.window = kinds[0].config.window
        self.kind_of = np.array(env_kind, dtype=np.int64)
        uniform = len(kinds) == 1

        def per_env(values: Sequence[Any], dtype: Any) -> Any:
            if uniform:
                return values[0]
            return np.array(values, dtype=dtype)[self.kind_of]

        self.lengths = np.array([kinds[k].length for k in env_kind], dtype=np.int64)
        self.cash0 = np.array([kinds[k].cash for k in env_kind], dtype=np.int64)
        self.lot = per_env([k.lot for k in kinds], np.int64)
        self.fee_ppm = per_env([k.fee_ppm for k in kinds], np.int64)
        self.lot_divisor = per_env([PPM + k.fee_ppm for k in kinds], np.int64)
        self.unit_lot = all(k.lot == 1 for k in kinds)
        self.kind8 = None if uniform else self.kind_of * 8
        self.kind7 = None if uniform else self.kind_of * N_ACTIONS
        self.zeros = np.zeros(n, dtype=np.int64)
        self.zeros.flags.writeable = False
        self.reason_tab = np.array([k.reasons for k in kinds], dtype=np.int8).reshape(-1)
        # What executes for each (kind, signature, predicted action), and its effect.
        self.exec_tab = np.where(
            self.reason_tab == 0, np.tile(np.arange(N_ACTIONS), len(kinds) * 8), 0
        ).astype(np.int8)
        self.effect_tab = EFFECTS.take(self.exec_tab).astype(np.int8)
        self.mask_tab = np.array([k.masks for k in kinds], dtype=np.bool_).reshape(-1, N_ACTIONS)
        # Sizes by executed action, with CLOSE's (0 in the config) as the whole position,
        # PPM: then one formula, min(max(held * size // PPM, 1), held), sizes every sell.
        self.size_tab = np.array(
            [
                [PPM if EFFECTS[a] == 3 else size for a, size in enumerate(k.size_ppm)]
                for k in kinds
            ],
            dtype=np.int64,
        ).reshape(-1)
        self.curr_tab = np.array(
            [[(k.curriculum_bits >> a) & 1 for a in range(N_ACTIONS)] for k in kinds],
            dtype=np.int64,
        ).reshape(-1)
        self.weights = [per_env([k.weights[j] for k in kinds], np.float64) for j in range(4)]
        self.kind6 = None if uniform else self.kind_of * (len(REASONS) + 1)
        self.penalty_tab = np.array(
            [[0.0] + [float(k.penalty)] * len(REASONS) for k in kinds], dtype=np.float64
        ).reshape(-1)
        self.min_share = per_env([float(k.min_share) for k in kinds], np.float64)
        self.has_curriculum = per_env([k.curriculum_bits != 0 for k in kinds], np.bool_)
        self.curriculum = per_env([float(k.curriculum) for k in kinds], np.float64)
        # RewardShaper pays ``diversity_bonus if diversity_bonus and ...``: a falsy -0.0 pays 0.0.
        self.diversity = per_env([float(k.diversity) if k.diversity else 0.0 for k in kinds], np.float64)
        self.any_curriculum = any(k.curriculum_bits for k in kinds)
        self.any_diversity = any(k.diversity for k in kinds)
        # Which components can be non-zero. A component that is zero (0.0 or -0.0) for
        # every env is left out of the reward's sum: total_reward's running total starts
        # at 0.0 + c0, so it is never -0.0, and adding a zero then leaves it unchanged.
        nonzero = [
            any(k.weights[0] for k in kinds),
            any(k.weights[1] for k in kinds),
            any(k.weights[2] for k in kinds),
            any(k.weights[3] for k in kinds),
            any(k.penalty for k in kinds),
            any(k.curriculum_bits and k.curriculum for k in kinds),
            self.any_diversity,
        ]
        self.summed = [j for j in range(7) if nonzero[j]]
        lmax = int(self.lengths.max())
        self.lmax = lmax
        # (L - t) / L for every t, when all envs share L (the int/int division of TradingEnv).
        self.remaining = (
            (lmax - np.arange(lmax + 1, dtype=np.int64)) / lmax
            if int(self.lengths.min()) == lmax
            else None
        )
        # As float32 (the observation's rounding of the float64 quotient), taken into place.
        self.remaining32 = None if self.remaining is None else self.remaining.astype(np.float32)

