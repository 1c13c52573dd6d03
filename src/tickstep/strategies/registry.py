"""Choosing strategies by configuration: an unknown name or parameter fails at load time."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tickstep.models import Market, validation_problems
from tickstep.strategies.base import Strategy
from tickstep.strategies.builtin import BbandsBreakout, MacdTrend, RsiReversion, SmaCross


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names what is wrong."""


STRATEGIES: dict[str, type[Strategy[Any]]] = {
    cls.name: cls for cls in (SmaCross, RsiReversion, MacdTrend, BbandsBreakout)
}


def register(cls: type[Strategy[Any]]) -> type[Strategy[Any]]:
    """Add a strategy class to the registry (usable as a decorator)."""
    if cls.name in STRATEGIES and STRATEGIES[cls.name] is not cls:
        raise ConfigError(f"strategy {cls.name!r} is already registered")
    STRATEGIES[cls.name] = cls
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
