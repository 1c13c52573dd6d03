"""What an operator configures: markets with their strategies, risk limits, paper settings.

One JSON document (a file for the CLI, template parameters for AWS), validated at load time:
an unknown strategy, parameter or field is a :class:`ConfigError` naming it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tickstep.models import validation_problems
from tickstep.risk import FixedQuoteSizing, RiskLimits
from tickstep.strategies import ConfigError, MarketConfig


class PaperSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    fee_rate: Annotated[Decimal, Field(ge=0, lt=1)] = Decimal("0.001")
    slippage: Annotated[Decimal, Field(ge=0, lt=1)] = Decimal("0.0005")
    balances: dict[str, Annotated[Decimal, Field(ge=0)]] = Field(
        default_factory=lambda: {"BTC": Decimal("1")}
    )


class TradingConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    markets: tuple[MarketConfig, ...] = Field(min_length=1)
    limits: RiskLimits
    paper: PaperSettings = PaperSettings()

    @model_validator(mode="after")
    def _markets_unique(self) -> TradingConfig:
        keys = [m.market.key for m in self.markets]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"markets: configured twice: {', '.join(duplicates)}")
        return self


DEFAULT_LIMITS = RiskLimits(
    max_notional_per_order=Decimal("0.05"),
    max_position_per_market=Decimal("0.03"),
    max_total_exposure=Decimal("0.25"),
    max_daily_loss=Decimal("0.05"),
    max_drawdown=Decimal("0.2"),
    cooldown_after_loss_ms=60 * 60_000,
    max_orders_per_hour=6,
    price_band=Decimal("0.05"),
    sizing=FixedQuoteSizing(quote_amount=Decimal("0.02")),
)


def default_config() -> TradingConfig:
    """The bundled sample: three BTC-quoted markets, three strategies, paper trading."""
    return load_config_dict(
        {
            "markets": [
                {
                    "market": {"exchange": "paper", "symbol": "ETH/BTC", "timeframe": "5m"},
                    "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 30}},
                },
                {
                    "market": {"exchange": "paper", "symbol": "LTC/BTC", "timeframe": "5m"},
                    "strategy": {"name": "rsi_reversion", "params": {"period": 14}},
                },
                {
                    "market": {"exchange": "paper", "symbol": "XMR/BTC", "timeframe": "5m"},
                    "strategy": {"name": "bbands_breakout", "params": {"period": 20}},
                },
            ],
            "limits": DEFAULT_LIMITS.model_dump(mode="json"),
        }
    )


def load_config_dict(data: Any) -> TradingConfig:
    try:
        return TradingConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {validation_problems(exc, 'config')}") from exc


def load_config(path: str | Path) -> TradingConfig:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
    return load_config_dict(data)


def drill_config() -> TradingConfig:
    """A high-turnover configuration for fault drills: a fast crossover on every bundled
    BTC market, limits wide enough that almost every signal becomes an order."""
    markets = [
        {
            "market": {"exchange": "paper", "symbol": symbol, "timeframe": "5m"},
            "strategy": {"name": "sma_cross", "params": {"fast": 2, "slow": 3}},
        }
        for symbol in ("ETH/BTC", "LTC/BTC", "XMR/BTC")
    ]
    limits = DEFAULT_LIMITS.model_copy(
        update={
            "max_notional_per_order": Decimal("1"),
            "max_position_per_market": Decimal("1"),
            "max_total_exposure": Decimal("10"),
            "max_daily_loss": Decimal("1"),
            "max_drawdown": Decimal("0.9"),
            "cooldown_after_loss_ms": 0,
            "max_orders_per_hour": 1000,
            "sizing": FixedQuoteSizing(quote_amount=Decimal("0.002")),
        }
    )
    return load_config_dict(
        {
            "markets": markets,
            "limits": limits.model_dump(mode="json"),
            "paper": {"fee_rate": "0.001", "slippage": "0", "balances": {"BTC": "10"}},
        }
    )
