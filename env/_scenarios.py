"""Named scenarios: the seed's reward-shaper versions as plain TOML files shipped with the package.

A scenario file has up to four tables, each optional: ``[env]`` (:class:`EnvConfig`
fields), ``[reward]`` (:class:`RewardConfig` fields), ``[market]`` (:class:`MarketSpec`
fields) and ``[training]`` (``exploration``, for example ``"epsilon-greedy:0.5:0.01"``),
plus top-level ``name`` and ``description``. ``tradeguard run --config FILE`` reads the
same format; copy a shipped file to start your own.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tradeguard._validation import suggest
from tradeguard.env._config import EnvConfig, RewardConfig
from tradeguard.env._market import MarketSpec
from tradeguard.errors import InvalidConfig

__all__ = ["Scenario", "load_scenario", "scenario_names"]

_TABLES = ("name", "description", "env", "reward", "market", "training")


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A named, complete setting of the env: machine, reward shaper, market, exploration.

    Attributes:
        name: Scenario name (``v10``) or the file it came from.
        description: What the scenario reproduces, in a sentence or two.
        env: The trading machine's configuration.
        reward: The reward shaper's weights.
        market: How episodes' price paths are generated.
        exploration: The exploration the seed trained with, as recorded (``"none"`` or
            ``"epsilon-greedy:START:END"``); used by training, not by the env.
    """

    name: str = "custom"
    description: str = ""
    env: EnvConfig = field(default_factory=EnvConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    market: MarketSpec = field(default_factory=MarketSpec)
    exploration: str = "none"

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str) -> Scenario:
        """Build from a parsed TOML/JSON document, refusing unknown tables and fields."""
        for key in data:
            if key not in _TABLES:
                raise InvalidConfig(
                    f"{where}: unknown table or key {key!r}; expected {', '.join(_TABLES)}."
                    f"{suggest(key, _TABLES)}"
                )
        training = dict(data.get("training", {}))
        exploration = training.pop("exploration", "none")
        if training:
            raise InvalidConfig(f"{where}: unknown [training] keys {sorted(training)}; expected exploration.")
        market = dict(data.get("market", {}))
        fields = [f.name for f in dataclasses.fields(MarketSpec)]
        for key in market:
            if key not in fields:
                raise InvalidConfig(
                    f"unknown MarketSpec field {key!r} in {where} [market]; expected one of "
                    f"{', '.join(fields)}.{suggest(key, fields)}"
                )
        try:
            market_spec = MarketSpec(**market)
        except InvalidConfig as exc:
            raise InvalidConfig(f"{where} [market]: {exc}") from None
        return cls(
            name=str(data.get("name", where)),
            description=str(data.get("description", "")),
            env=EnvConfig.from_dict(data.get("env", {}), where=f"{where} [env]"),
            reward=RewardConfig.from_dict(data.get("reward", {}), where=f"{where} [reward]"),
            market=market_spec,
            exploration=str(exploration),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        """Read a scenario TOML (or JSON, by its ``.json`` suffix) file."""
        path = Path(path)
        if not path.is_file():
            raise InvalidConfig(f"config file {str(path)!r} does not exist.")
        text = path.read_text()
        try:
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise InvalidConfig(f"{path}: not valid {path.suffix[1:] or 'TOML'}: {exc}") from None
        data.setdefault("name", str(path))
        return cls.from_dict(data, where=str(path))

    def changes(self) -> dict[str, dict[str, Any]]:
        """The fields that differ from the defaults, per table (what a replay needs)."""
        out: dict[str, dict[str, Any]] = {}
        for table, value, default in (
            ("env", self.env.to_dict(), EnvConfig().to_dict()),
            ("reward", self.reward.to_dict(), RewardConfig().to_dict()),
        ):
            diff = {k: v for k, v in value.items() if default[k] != v}
            if diff:
                out[table] = diff
        market = {k: getattr(self.market, k) for k in self.market.__slots__}
        base = MarketSpec()
        mdiff = {k: v for k, v in market.items() if getattr(base, k) != v}
        if mdiff:
            out["market"] = mdiff
        return out


@functools.cache
def _shipped(name: str) -> Scenario:
    resource = resources.files("tradeguard.env").joinpath("scenarios", f"{name}.toml")
    data = tomllib.loads(resource.read_text())
    data.setdefault("name", name)
    return Scenario.from_dict(data, where=f"scenario {name!r}")


@functools.cache
def scenario_names() -> tuple[str, ...]:
    """Names of the scenarios shipped with tradeguard."""
    folder = resources.files("tradeguard.env").joinpath("scenarios")
    return tuple(sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml")))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name (``"v10"``) or a scenario file by path.

    Raises:
        InvalidConfig: unknown name (with the closest one), missing file, or a bad field.

    Example:
        >>> load_scenario("v10").reward.failed_action_penalty
        -0.05
    """
    text = str(name_or_path)
    if text in scenario_names():
        return _shipped(text)
    if text.endswith((".toml", ".json")) or Path(text).is_file():
        return Scenario.from_file(text)
    names = scenario_names()
    raise InvalidConfig(
        f"scenario={text!r} is neither a shipped scenario ({', '.join(names)}) nor a file."
        f"{suggest(text, names)}"
    )
