"""Strategies: signals as a whole series (backtests) whose last element is the live signal."""

from tickstep.strategies.base import SignalSeries, Strategy, StrategyParams
from tickstep.strategies.registry import (
    STRATEGIES,
    ConfigError,
    MarketConfig,
    StrategyConfig,
    build_strategy,
    parse_param_assignments,
    register,
)

__all__ = [
    "STRATEGIES",
    "ConfigError",
    "MarketConfig",
    "SignalSeries",
    "Strategy",
    "StrategyConfig",
    "StrategyParams",
    "build_strategy",
    "parse_param_assignments",
    "register",
]
