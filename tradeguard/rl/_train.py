"""Training PPO / MaskablePPO on ``TradingEnv``, saving with metadata, and loading back.

stable-baselines3, sb3-contrib and torch are imported inside the functions (the ``rl``
extra), never when ``tradeguard.rl`` is imported.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tradeguard import __version__
from tradeguard._validation import check_int, check_number, suggest, unwritable_ancestor
from tradeguard.errors import InvalidConfig
from tradeguard.limits import MAX_LEARNING_RATE, MAX_N_STEPS
from tradeguard.rl._exploration import Exploration, parse_exploration

__all__ = [
    "ALGORITHMS",
    "TrainResult",
    "load",
    "load_metadata",
    "make_env",
    "metadata_path",
    "parse_ent_coef",
    "require_rl",
    "train",
]

ALGORITHMS: tuple[str, ...] = ("ppo", "maskable-ppo")
"""Algorithms ``train`` knows: stable-baselines3 ``PPO`` and sb3-contrib ``MaskablePPO``."""

METADATA_FORMAT = "tradeguard-model/1"
_CLASS_NAMES = {"ppo": "PPO", "maskable-ppo": "MaskablePPO"}


def require_rl() -> None:
    """Import the ``rl`` extra, or raise :class:`InvalidConfig` saying how to install it."""
    try:
        import sb3_contrib  # noqa: F401
        import stable_baselines3  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise InvalidConfig(
            f"training and loading models need the 'rl' extra ({exc.name} is not installed): "
            "pip install 'tradeguard[rl]' (install the CPU build of torch first, see the README)."
        ) from None


def _sb3_class(algo: str) -> Any:
    require_rl()
    if algo == "ppo":
        from stable_baselines3 import PPO

        return PPO
    from sb3_contrib import MaskablePPO

    return MaskablePPO


def _check_algo(algo: str) -> str:
    if algo not in ALGORITHMS:
        raise InvalidConfig(
            f"algo={algo!r} is not supported; expected one of {', '.join(ALGORITHMS)}."
            f"{suggest(str(algo), ALGORITHMS)}"
        )
    return algo


def parse_ent_coef(spec: str | float | tuple[float, float]) -> tuple[float, float]:
    """Read an entropy coefficient ``START`` or a linear schedule ``START:END``.

    Example:
        >>> parse_ent_coef("0.5:0.01")
        (0.5, 0.01)
        >>> parse_ent_coef(0.01)
        (0.01, 0.01)
    """
    if isinstance(spec, tuple):
        values = list(spec)
    elif isinstance(spec, (int, float)) and not isinstance(spec, bool):
        values = [float(spec)]
    else:
        try:
            values = [float(p) for p in str(spec).split(":")]
        except ValueError:
            values = []
    if len(values) not in (1, 2):
        raise InvalidConfig(
            f"ent_coef={spec!r}; expected a number START or a schedule START:END, e.g. 0.01 or "
            "0.5:0.01 (the seed's V10.2)."
        )
    start = check_number("ent_coef START", values[0], min_value=0.0, max_value=100.0)
    end = check_number("ent_coef END", values[-1], min_value=0.0, max_value=100.0)
    return start, end


def _scenario(scenario: Any, episode_length: int | None) -> Any:
    from tradeguard.env import Scenario, load_scenario

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(str(scenario or "default"))
    if episode_length is not None:
        check_int("episode_length", episode_length, min_value=1)
        sc = dataclasses.replace(sc, env=dataclasses.replace(sc.env, episode_length=episode_length))
    return sc


def _scenario_dict(sc: Any) -> dict[str, Any]:
    market = {k: getattr(sc.market, k) for k in sc.market.__slots__}
    return {
        "name": sc.name,
        "description": sc.description,
        "env": sc.env.to_dict(),
        "reward": sc.reward.to_dict(),
        "market": market,
        "training": {"exploration": sc.exploration},
    }


def make_env(
    scenario: Any = None,
    *,
    exploration: str | Exploration | None = None,
    decay_steps: int = 50_000,
    seed: int | None = None,
    episode_length: int | None = None,
) -> Any:
    """The env ``train`` trains on: a ``TradingEnv``, wrapped in :class:`EpsilonGreedy` if asked.

    Args:
        scenario: Scenario name, file or :class:`~tradeguard.env.Scenario` (default ``"default"``).
        exploration: ``"none"``, ``"epsilon-greedy:START:END"`` or an :class:`Exploration`;
            ``None`` uses the scenario's recorded exploration (``v10``: epsilon-greedy 0.5 -> 0.01).
        decay_steps: Steps over which epsilon decays.
        seed: Seed of the epsilon-greedy RNG.
        episode_length: Override the scenario's episode length.

    Example:
        >>> type(make_env("v10")).__name__, type(make_env("v10", exploration="none")).__name__
        ('EpsilonGreedy', 'TradingEnv')
    """
    from tradeguard.env import TradingEnv
    from tradeguard.rl._exploration import EpsilonGreedy

    sc = _scenario(scenario, episode_length)
    exp = _exploration(exploration, sc)
    env: Any = TradingEnv(scenario=sc)
    if exp.kind == "epsilon-greedy":
        env = EpsilonGreedy(env, start=exp.start, end=exp.end, decay_steps=decay_steps, seed=seed)
    return env


def _exploration(exploration: str | Exploration | None, sc: Any) -> Exploration:
    if isinstance(exploration, Exploration):
        return exploration
    return parse_exploration(sc.exploration if exploration is None else exploration)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        model: The trained model (``PPO`` or ``MaskablePPO``).
        path: The saved zip, or ``None`` when ``out`` was not given.
        metadata: What was saved next to the zip (algorithm, scenario, settings, versions).
        steps_done: Env steps actually trained.
        stopped_early: True when the :class:`InvariantCallback` stopped the run.
        stop_reason: Its message, or ``None``.
        wall_time: Seconds spent in ``learn``.
        callback: The :class:`InvariantCallback` (its ``history`` has every window's
            distributions), or ``None`` when it was switched off.
        checkpoints: Paths of the checkpoints written.
    """

    model: Any
    path: Path | None
    metadata: dict[str, Any]
    steps_done: int
    stopped_early: bool
    stop_reason: str | None
    wall_time: float
    callback: Any
    checkpoints: tuple[str, ...] = ()


def _plain_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in kwargs.items():
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            out[k] = repr(v)
    return out


PPO_N_STEPS, PPO_BATCH_SIZE = 2048, 64
"""stable-baselines3's PPO defaults, what ``train`` checks when they are not given."""


def check_rollout(
    n_steps: int,
    batch_size: int,
    learning_rate: Any = None,
    *,
    names: tuple[str, str, str] = ("n_steps", "batch_size", "learning_rate"),
) -> None:
    """PPO's rollout settings, checked before stable-baselines3 sees them.

    Its own errors on these are tracebacks (``n_steps=0``, ``batch_size=1``) or worse
    (``n_steps=10**12`` allocates the rollout buffer). ``names`` are what the messages
    call them (the CLI passes its options). A callable ``learning_rate`` (a schedule) is
    left to stable-baselines3.

    Raises:
        InvalidConfig: a value out of range, with the range and how to fix it.
    """
    n_name, b_name, lr_name = names
    check_int(n_name, n_steps, min_value=2, max_value=MAX_N_STEPS)
    check_int(
        b_name,
        batch_size,
        min_value=2,
        max_value=n_steps,
        hint=f"A minibatch is drawn from one rollout of {n_name} ({n_steps}): give at most that, or raise {n_name}.",
    )
    if learning_rate is not None and not callable(learning_rate):
        check_number(lr_name, learning_rate, min_value=0.0, min_exclusive=True, max_value=MAX_LEARNING_RATE)


def check_out_path(out: str | Path, *, checkpoints: bool = False, option: str = "out") -> Path:
    """Where ``train`` saves the model (``PATH``, without ``.zip``), checked before any training.

    The directory ``PATH`` is saved in (created if missing) must be creatable and
    writable: its nearest existing part a writable directory. ``PATH.zip`` must not be a
    directory, nor ``PATH_checkpoints`` a file when ``checkpoints`` are saved. ``option``
    names ``out`` in the messages as the caller's user typed it (``--out``).

    Raises:
        InvalidConfig: the model could not be saved there, with why and how to fix it.
    """
    import os

    given = os.fspath(out)
    if not str(given).strip():
        raise InvalidConfig(f"{option} {given!r} is empty; expected a path to save the model at, e.g. runs/m1.")
    base = Path(given)
    if base.suffix == ".zip":
        base = base.with_suffix("")
    existing, why = unwritable_ancestor(base.absolute().parent)
    if why is not None:
        fix = (
            f"Expected PATH in a directory (created if missing), e.g. {option} runs/{base.name}."
            if not existing.is_dir()
            else "Give a path in a directory you can write to."
        )
        raise InvalidConfig(f"{option} {given!r}: cannot save the model there: {str(existing)!r} {why}. {fix}")
    zip_path = Path(f"{base}.zip")
    if zip_path.is_dir():
        raise InvalidConfig(
            f"{option} {given!r}: the model is saved as {str(zip_path)!r}, which is a directory. "
            "Give another PATH, or move the directory away."
        )
    ckpt = base.parent / f"{base.name}_checkpoints"
    if checkpoints and ckpt.exists() and not ckpt.is_dir():
        raise InvalidConfig(
            f"{option} {given!r}: checkpoints are saved into {str(ckpt)!r}, which is a file. Give another "
            "PATH, move the file away, or save no checkpoints."
        )
    return base


def train(
    *,
    algo: str = "maskable-ppo",
    scenario: Any = None,
    steps: int = 100_000,
    seed: int = 0,
    exploration: str | Exploration | None = None,
    exploration_fraction: float = 0.5,
    ent_coef: str | float | tuple[float, float] = 0.0,
    out: str | Path | None = None,
    checkpoint_every: int | None = None,
    progress_bar: bool | None = None,
    invariant_callback: Any = True,
    callbacks: Sequence[Any] = (),
    episode_length: int | None = None,
    tensorboard_log: str | Path | None = None,
    torch_threads: int | None = None,
    verbose: int = 0,
    **algo_kwargs: Any,
) -> TrainResult:
    """Train PPO or MaskablePPO on a tradeguard scenario, watching invariants and collapse.

    Args:
        algo: ``"ppo"`` (stable-baselines3) or ``"maskable-ppo"`` (sb3-contrib; reads
            ``env.action_masks()`` at every step).
        scenario: Scenario name, file or :class:`~tradeguard.env.Scenario` (default ``"default"``).
        steps: Total env steps, >= 1.
        seed: Seeds the algorithm (SB3 seeds Python's, numpy's and torch's global RNGs),
            the env and the exploration.
        exploration: ``"none"`` or ``"epsilon-greedy:START:END"``; ``None`` uses the
            scenario's (``v10`` records the seed's epsilon-greedy 0.5 -> 0.01). See
            :class:`EpsilonGreedy` for why it is the wrong tool here.
        exploration_fraction: Share of ``steps`` over which epsilon decays, in (0, 1].
        ent_coef: Entropy coefficient ``START`` or linear schedule ``"START:END"`` / ``(START, END)``.
        out: Where to save the model (``PATH.zip`` plus ``PATH.tradeguard.json``
            metadata); ``None`` saves nothing.
        checkpoint_every: Save a checkpoint (with metadata) every this many steps into
            ``PATH_checkpoints/``; ``None`` or 0: none. Needs ``out``.
        progress_bar: SB3's tqdm/rich progress bar; ``None``: only when stderr is a terminal.
        invariant_callback: ``True`` attaches an :class:`InvariantCallback` (stops a
            collapsing run), ``False`` none, or pass your own instance.
        callbacks: More SB3 callbacks.
        episode_length: Override the scenario's episode length.
        tensorboard_log: Directory for TensorBoard logs (needs the ``tensorboard`` package).
        torch_threads: Call ``torch.set_num_threads`` first (1 is fastest for these small
            networks); ``None`` leaves torch alone.
        verbose: SB3 verbosity (0 quiet, 1 training logs).
        **algo_kwargs: Passed to the algorithm: ``n_steps``, ``batch_size``, ``n_epochs``,
            ``learning_rate``, ``gamma``, ``policy_kwargs``, ...

    Returns:
        A :class:`TrainResult`; ``result.stopped_early`` tells whether the callback stopped it.

    Raises:
        InvalidConfig: a bad argument, or the ``rl`` extra is not installed.

    Example:
        >>> r = train(algo="maskable-ppo", scenario="v10", exploration="none", steps=256,
        ...           n_steps=128, batch_size=64, episode_length=50)  # doctest: +SKIP
        >>> r.steps_done  # doctest: +SKIP
        256
    """
    _check_algo(algo)
    check_int("steps", steps, min_value=1)
    check_int("seed", seed, min_value=0, max_value=2**32 - 1)  # SB3's set_random_seed: np.random.seed
    check_number("exploration_fraction", exploration_fraction, min_value=0.0, max_value=1.0, min_exclusive=True)
    ent_start, ent_end = parse_ent_coef(ent_coef)
    check_rollout(
        algo_kwargs.get("n_steps", PPO_N_STEPS),
        algo_kwargs.get("batch_size", PPO_BATCH_SIZE),
        algo_kwargs.get("learning_rate"),
    )
    if checkpoint_every:
        check_int("checkpoint_every", checkpoint_every, min_value=1)
        if out is None:
            raise InvalidConfig("checkpoint_every needs out=PATH: checkpoints are saved next to the model.")
    if out is not None:
        check_out_path(out, checkpoints=bool(checkpoint_every))
    cls = _sb3_class(algo)
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from tradeguard.rl._callback import (
        EntCoefSchedule,
        InvariantCallback,
        MetadataCheckpointCallback,
    )

    inv_cb: Any = None
    if invariant_callback is True:
        inv_cb = InvariantCallback(verbose=0)
    elif isinstance(invariant_callback, BaseCallback):
        inv_cb = invariant_callback
    elif invariant_callback not in (False, None):
        raise InvalidConfig(
            f"invariant_callback={invariant_callback!r}; expected True, False or an InvariantCallback."
        )
    if torch_threads is not None:
        torch.set_num_threads(check_int("torch_threads", torch_threads, min_value=1))
    if tensorboard_log is not None:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise InvalidConfig(
                "tensorboard_log needs the tensorboard package: pip install tensorboard."
            ) from None

    sc = _scenario(scenario, episode_length)
    exp = _exploration(exploration, sc)
    decay = max(1, round(exploration_fraction * steps))
    env = make_env(sc, exploration=exp, decay_steps=decay, seed=seed)

    base = Path(out) if out is not None else None
    if base is not None and base.suffix == ".zip":
        base = base.with_suffix("")
    metadata: dict[str, Any] = {
        "format": METADATA_FORMAT,
        "algo": algo,
        "sb3_class": _CLASS_NAMES[algo],
        "scenario": _scenario_dict(sc),
        "steps": steps,
        "seed": seed,
        "exploration": str(exp),
        "exploration_fraction": exploration_fraction,
        "ent_coef": [ent_start, ent_end],
        "algo_kwargs": _plain_kwargs(algo_kwargs),
        "versions": _versions(),
    }

    model = cls(
        "MlpPolicy",
        env,
        seed=seed,
        ent_coef=ent_start,
        device="cpu",
        verbose=verbose,
        tensorboard_log=None if tensorboard_log is None else str(tensorboard_log),
        **algo_kwargs,
    )
    cbs: list[BaseCallback] = []
    if inv_cb is not None:
        cbs.append(inv_cb)
    if ent_start != ent_end:
        cbs.append(EntCoefSchedule(ent_start, ent_end))
    checkpoint_cb = None
    if checkpoint_every and base is not None:
        checkpoint_cb = MetadataCheckpointCallback(
            save_freq=checkpoint_every,
            save_path=str(base.parent / f"{base.name}_checkpoints"),
            metadata=metadata,
            name_prefix=base.name,
        )
        cbs.append(checkpoint_cb)
    cbs.extend(callbacks)
    show = sys.stderr.isatty() if progress_bar is None else bool(progress_bar)

    started = time.perf_counter()
    model.learn(total_timesteps=steps, callback=cbs, progress_bar=show)
    wall = time.perf_counter() - started

    stopped = bool(getattr(inv_cb, "stopped", False))
    reason = getattr(inv_cb, "stop_reason", None)
    metadata.update(
        steps_done=int(model.num_timesteps),
        stopped_early=stopped,
        stop_reason=reason,
        wall_time_s=round(wall, 3),
    )
    path = None
    if base is not None:
        base.parent.mkdir(parents=True, exist_ok=True)
        path = Path(f"{base}.zip")
        model.save(str(path))
        metadata_path(path).write_text(json.dumps(metadata, indent=2, default=str))
    return TrainResult(
        model=model,
        path=path,
        metadata=metadata,
        steps_done=int(model.num_timesteps),
        stopped_early=stopped,
        stop_reason=reason,
        wall_time=wall,
        callback=inv_cb,
        checkpoints=tuple(checkpoint_cb.saved) if checkpoint_cb is not None else (),
    )


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"tradeguard": __version__}
    for dist in ("stable-baselines3", "sb3-contrib", "torch", "gymnasium"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _zip_path(path: str | Path) -> Path:
    p = Path(path)
    if p.suffix != ".zip":
        p = Path(f"{p}.zip")
    return p


def metadata_path(path: str | Path) -> Path:
    """Where the metadata of the model at ``path`` lives: ``PATH.tradeguard.json`` beside ``PATH.zip``."""
    z = _zip_path(path)
    return z.with_name(z.name[: -len(".zip")] + ".tradeguard.json")


def load_metadata(path: str | Path) -> dict[str, Any] | None:
    """The metadata saved next to the model at ``path``, or ``None`` if there is none.

    Raises:
        InvalidConfig: the metadata file exists but is not valid JSON.
    """
    meta = metadata_path(path)
    if not meta.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(meta.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidConfig(f"{meta}: not valid JSON ({exc}); delete it or re-save the model.") from None
    return data


def _algo_from_zip(path: Path) -> str | None:
    """Guess PPO vs MaskablePPO from the policy class recorded inside an SB3 zip."""
    try:
        with zipfile.ZipFile(path) as zf:
            data = json.loads(zf.read("data"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
    policy = data.get("policy_class", {})
    module = str(policy.get("__module__", "")) if isinstance(policy, dict) else ""
    if "maskable" in module:
        return "maskable-ppo"
    if module.startswith("stable_baselines3"):
        return "ppo"
    return None


def _check_sb3_archive(z: Path) -> None:
    """Refuse a file that is not a stable-baselines3 model archive (a zip with a ``data`` member)."""
    expected = (
        "expected a stable-baselines3 model archive: a zip holding 'data', 'policy.pth', ..., as "
        "tradeguard train --out PATH or model.save() writes it"
    )
    if not zipfile.is_zipfile(z):
        raise InvalidConfig(f"{z} is not a stable-baselines3 model archive: it is not a zip file; {expected}.")
    try:
        with zipfile.ZipFile(z) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise InvalidConfig(f"{z} is not a stable-baselines3 model archive: cannot read it as a zip ({exc}); {expected}.") from None
    if "data" not in names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "") if names else "nothing"
        raise InvalidConfig(
            f"{z} is not a stable-baselines3 model archive: the zip has no 'data' member (it holds {shown}); "
            f"{expected}."
        )


def load(path: str | Path, *, env: Any = None) -> Any:
    """Load a model saved by :func:`train` (or any SB3 PPO / MaskablePPO zip).

    The algorithm comes from the metadata next to the zip (``PATH.tradeguard.json``);
    without metadata, from the policy class recorded in the zip.

    Args:
        path: ``PATH`` or ``PATH.zip``.
        env: Env to attach (optional; needed only to continue training).

    Returns:
        The ``PPO`` or ``MaskablePPO`` model, on CPU.

    Raises:
        InvalidConfig: no such file, not an SB3 PPO/MaskablePPO zip, or the ``rl`` extra
            is missing.
    """
    z = _zip_path(path)
    if not z.is_file():
        raise InvalidConfig(
            f"no model at {str(z)!r} (looked for the zip written by tradeguard train --out "
            f"{Path(path).with_suffix('') if Path(path).suffix == '.zip' else path})."
        )
    meta = load_metadata(z)
    _check_sb3_archive(z)
    algo = meta.get("algo") if meta else None
    if algo is None:
        algo = _algo_from_zip(z)
    if algo not in ALGORITHMS:
        raise InvalidConfig(
            f"{z}: cannot tell which algorithm saved it (metadata algo={algo!r}); tradeguard loads "
            f"{', '.join(ALGORITHMS)} models. Load it with its own class' .load()."
        )
    cls = _sb3_class(str(algo))
    return cls.load(str(z), env=env, device="cpu")
