"""Choosing strategies by configuration: an unknown name or parameter fails at load time."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tickstep.models import Market, validation_problems
from tickstep.strategies.base import Strategy
from tickstep.strategies.builtin import BbandsBreakout, MacdTrend, RsiReversion, SmaCross
from tickstep.strategies.errors import ConfigError

__all__ = [
    "STRATEGIES",
    "ConfigError",
    "MarketConfig",
    "StrategyConfig",
    "build_strategy",
    "parse_param_assignments",
    "register",
]


class StrategyRegistry(Mapping[str, type[Strategy[Any]]]):
    """Strategy classes by name. A strategy named with a ``module:Class`` path is imported
    the first time it is looked up: ``ml`` brings the model-file schema and the feature code
    (~12 ms), which the functions that never trade it should not pay at cold start."""

    def __init__(self, classes: list[type[Strategy[Any]]], lazy: dict[str, str]) -> None:
        self._classes = {cls.name: cls for cls in classes}
        self._lazy = dict(lazy)

    def __getitem__(self, name: str) -> type[Strategy[Any]]:
        if name not in self._classes and name in self._lazy:
            module, _, attribute = self._lazy[name].partition(":")
            cls: type[Strategy[Any]] = getattr(importlib.import_module(module), attribute)
            self._classes[name] = cls
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._classes, *self._lazy]))

    def __len__(self) -> int:
        return len(set(self._classes) | set(self._lazy))

    def add(self, cls: type[Strategy[Any]]) -> None:
        self._classes[cls.name] = cls
        self._lazy.pop(cls.name, None)


STRATEGIES = StrategyRegistry(
    [SmaCross, RsiReversion, MacdTrend, BbandsBreakout],
    lazy={"ml": "tickstep.strategies.ml:MlStrategy"},
)


def register(cls: type[Strategy[Any]]) -> type[Strategy[Any]]:
    """Add a strategy class to the registry (usable as a decorator)."""
    if cls.name in STRATEGIES and STRATEGIES[cls.name] is not cls:
        raise ConfigError(f"strategy {cls.name!r} is already registered")
    STRATEGIES.add(cls)
    return cls


class StrategyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)


class MarketConfig(BaseModel):
    """One configured market and the strategy that trades it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    market: Market
    strategy: StrategyConfig

    @model_validator(mode="after")
    def _strategy_builds(self) -> MarketConfig:
        build_strategy(self.strategy)  # an unknown strategy or parameter fails at load time
        return self


def build_strategy(config: StrategyConfig) -> Strategy[Any]:
    """Instantiate a configured strategy, or raise :class:`ConfigError` naming the problem."""
    cls = STRATEGIES.get(config.name)
    if cls is None:
        known = ", ".join(sorted(STRATEGIES))
        raise ConfigError(f"unknown strategy {config.name!r}; known strategies: {known}")
    try:
        params = cls.params_type.model_validate(config.params)
    except ValidationError as exc:
        problems = validation_problems(exc, "params")
        raise ConfigError(f"strategy {config.name!r} parameters: {problems}") from exc
    return cls(params)


def parse_param_assignments(pairs: list[str]) -> dict[str, Any]:
    """``["fast=10", "nbdev=2.5"]`` to a dict; values are JSON numbers/booleans or strings."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {pair!r}: expected NAME=VALUE")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params
