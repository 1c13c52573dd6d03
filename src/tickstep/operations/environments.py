"""The deployable environments, as ``samconfig.toml`` describes them."""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

ENVIRONMENTS = ("test", "production")


@dataclass(frozen=True)
class Environment:
    name: str
    stack_name: str
    region: str
    parameters: dict[str, str]

    @property
    def trading_mode(self) -> str:
        return self.parameters.get("TradingMode", "paper")


def load_environment(samconfig: Path, name: str) -> Environment:
    """``[name]`` of samconfig.toml: stack, region and the deploy's parameter overrides."""
    if name not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {name!r}: one of {', '.join(ENVIRONMENTS)}")
    config = tomllib.loads(samconfig.read_text())[name]
    glob = config["global"]["parameters"]
    overrides = config["deploy"]["parameters"].get("parameter_overrides", [])
    # SAM's own quoting: Key=value, Key="value", Key='{"json": "value"}'.
    items = shlex.split(overrides if isinstance(overrides, str) else " ".join(overrides))
    parameters = {}
    for item in items:
        key, _, value = item.partition("=")
        parameters[key] = value
    return Environment(name, glob["stack_name"], glob["region"], parameters)
