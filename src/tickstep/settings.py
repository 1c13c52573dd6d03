"""What a Lambda function reads from its environment, in one place.

The domain never reads ``os.environ``: each handler calls :meth:`Settings.from_env` once, in
its ``build_dependencies``, and hands plain values to the stores and services. The variable
names are constants here (the names ``template.yaml`` sets) so the template, the handlers, the
tests and the offline runtime cannot drift apart by a typo.

The JSON variables stay strings in :class:`Settings` and are parsed by the function that needs
them: :class:`tickstep.strategies.MarketConfig` imports the strategies (and numpy), which only
the signal function may pay for, so the others read markets through :meth:`Settings.markets`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tickstep.models import Market, validation_problems
from tickstep.risk import RiskLimits

if TYPE_CHECKING:
    from tickstep.config import PaperSettings
    from tickstep.strategies import MarketConfig

__all__ = [
    "ENV_CANDLES_TABLE",
    "ENV_CONTROL_TABLE",
    "ENV_EVENT_BUS_NAME",
    "ENV_EXCHANGE_SECRET_ARN",
    "ENV_IDEMPOTENCY_TABLE",
    "ENV_MARKETS",
    "ENV_MODE",
    "ENV_ORDERS_TABLE",
    "ENV_PAPER_SETTINGS",
    "ENV_PORTFOLIO_TABLE",
    "ENV_RISK_LIMITS",
    "ENV_SIGNALS_TABLE",
    "ENV_VARS",
    "MarketEntry",
    "Mode",
    "Settings",
    "SettingsError",
]

ENV_MODE = "TRADING_MODE"
ENV_MARKETS = "MARKETS"
"""JSON list of :class:`tickstep.strategies.MarketConfig`."""
ENV_RISK_LIMITS = "RISK_LIMITS"
"""JSON of :class:`tickstep.risk.RiskLimits` (the risk function only)."""
ENV_PAPER_SETTINGS = "PAPER_SETTINGS"
"""Optional JSON of :class:`tickstep.config.PaperSettings` (fees, slippage, start balances)."""
ENV_CANDLES_TABLE = "CANDLES_TABLE"
ENV_SIGNALS_TABLE = "SIGNALS_TABLE"
ENV_ORDERS_TABLE = "ORDERS_TABLE"
ENV_PORTFOLIO_TABLE = "PORTFOLIO_TABLE"
ENV_CONTROL_TABLE = "CONTROL_TABLE"
ENV_IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE"
ENV_EVENT_BUS_NAME = "EVENT_BUS_NAME"
ENV_EXCHANGE_SECRET_ARN = "EXCHANGE_SECRET_ARN"
"""The secret's name or ARN, never its value: only execute and reconcile may read it."""

ENV_VARS: dict[str, str] = {
    "mode": ENV_MODE,
    "markets_json": ENV_MARKETS,
    "risk_limits_json": ENV_RISK_LIMITS,
    "paper_json": ENV_PAPER_SETTINGS,
    "candles_table": ENV_CANDLES_TABLE,
    "signals_table": ENV_SIGNALS_TABLE,
    "orders_table": ENV_ORDERS_TABLE,
    "portfolio_table": ENV_PORTFOLIO_TABLE,
    "control_table": ENV_CONTROL_TABLE,
    "idempotency_table": ENV_IDEMPOTENCY_TABLE,
    "event_bus_name": ENV_EVENT_BUS_NAME,
    "exchange_secret_arn": ENV_EXCHANGE_SECRET_ARN,
}
"""Settings field -> environment variable."""


class SettingsError(ValueError):
    """The environment cannot run this function; the message names the variable."""


class Mode(StrEnum):
    """``paper`` fills against market data in DynamoDB; ``sandbox`` and ``live`` use ccxt."""

    PAPER = "paper"
    SANDBOX = "sandbox"
    LIVE = "live"


Name = Annotated[str, Field(min_length=1, max_length=2048)]


class Settings(BaseModel):
    """One function's environment. Fields a function does not use may be absent; the
    ``require_*`` accessors fail with the variable's name when one it does use is missing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode = Mode.PAPER
    markets_json: str | None = None
    risk_limits_json: str | None = None
    paper_json: str | None = None
    candles_table: Name | None = None
    signals_table: Name | None = None
    orders_table: Name | None = None
    portfolio_table: Name | None = None
    control_table: Name | None = None
    idempotency_table: Name | None = None
    event_bus_name: Name | None = None
    exchange_secret_arn: Name | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read the variables of :data:`ENV_VARS`; empty values count as absent."""
        values = {field: environ[var] for field, var in ENV_VARS.items() if environ.get(var)}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_VARS.get(str(err['loc'][0]), err['loc'][0])}: {err['msg']}"
                for err in exc.errors()
            )
            raise SettingsError(f"invalid environment: {problems}") from exc

    def require(self, field: str) -> str:
        value = getattr(self, field)
        if not value:
            raise SettingsError(f"{ENV_VARS[field]}: not set, and this function needs it")
        return str(value)

    def _json(self, field: str) -> Any:
        try:
            return json.loads(self.require(field))
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{ENV_VARS[field]}: not valid JSON: {exc}") from exc

    def markets(self) -> list[MarketEntry]:
        """The configured markets, strategies unchecked (no numpy: ingest, reconcile)."""
        try:
            return _MARKETS.validate_python(self._json("markets_json"))
        except ValidationError as exc:
            raise SettingsError(f"{ENV_MARKETS}: {_problems(exc)}") from exc

    def market_configs(self) -> list[MarketConfig]:
        """The configured markets with their strategies built and checked (imports numpy)."""
        from tickstep.strategies import MarketConfig

        try:
            return TypeAdapter(list[MarketConfig]).validate_python(self._json("markets_json"))
        except ValidationError as exc:
            raise SettingsError(f"{ENV_MARKETS}: {_problems(exc)}") from exc

    def risk_limits(self) -> RiskLimits:
        try:
            return RiskLimits.model_validate(self._json("risk_limits_json"))
        except ValidationError as exc:
            raise SettingsError(f"{ENV_RISK_LIMITS}: {_problems(exc)}") from exc

    def paper_settings(self) -> PaperSettings:
        """Fees, slippage and starting balances of the paper account (defaults when unset)."""
        from tickstep.config import PaperSettings

        if not self.paper_json:
            return PaperSettings()
        try:
            return PaperSettings.model_validate(self._json("paper_json"))
        except ValidationError as exc:
            raise SettingsError(f"{ENV_PAPER_SETTINGS}: {_problems(exc)}") from exc


class MarketEntry(BaseModel):
    """A configured market as functions without numpy see it: the strategy stays raw."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    market: Market
    strategy: dict[str, Any]


_MARKETS = TypeAdapter(list[MarketEntry])


def _problems(exc: ValidationError) -> str:
    return validation_problems(exc)
