"""What a Lambda function reads from its environment, in one place.

The domain never reads ``os.environ``: each handler calls :meth:`Settings.from_env` once, in
its ``build_dependencies``, and hands plain values to the stores and services. The variable
names are constants here (the names ``template.yaml`` sets) so the template, the handlers, the
tests and the offline runtime cannot drift apart by a typo.

Each function has its own class (:class:`IngestSettings` ... :class:`ApiSettings`) whose typed
fields are exactly the variables it reads, required or optional: a missing one fails the cold
start with the variable's name, and a test compares each class with the template.
(pydantic-settings would do the reading too, but costs its import, about 24 ms, on every cold
start; :meth:`Settings.from_env` is ten lines over the same pydantic model.)

The JSON variables stay strings and are parsed by the method that needs them:
:class:`tickstep.strategies.MarketConfig` imports the strategies (and numpy), which only the
signal function may pay for, so the others read markets through ``markets()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

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
    "ApiSettings",
    "ExecuteSettings",
    "IngestSettings",
    "MarketEntry",
    "Mode",
    "OrderPathSettings",
    "ReconcileSettings",
    "RiskSettings",
    "Settings",
    "SettingsError",
    "SignalSettings",
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

ENV_ORDER_STATE_MACHINE_ARN = "ORDER_STATE_MACHINE_ARN"
ENV_DEAD_LETTER_QUEUE_URLS = "DEAD_LETTER_QUEUE_URLS"
"""Comma-separated queue URLs (the template joins its dead-letter queues' Refs)."""
ENV_ALARM_NAME_PREFIX = "ALARM_NAME_PREFIX"
ENV_RELEASE_PARAMETER = "RELEASE_PARAMETER"
"""The SSM parameter whose value is the deployed release (deploy-backend.sh records it)."""
ENV_FUNCTION_VERSION = "AWS_LAMBDA_FUNCTION_VERSION"
"""Set by Lambda itself: the published version this container runs."""

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
    "order_state_machine_arn": ENV_ORDER_STATE_MACHINE_ARN,
    "dead_letter_queue_urls": ENV_DEAD_LETTER_QUEUE_URLS,
    "alarm_name_prefix": ENV_ALARM_NAME_PREFIX,
    "release_parameter": ENV_RELEASE_PARAMETER,
    "function_version": ENV_FUNCTION_VERSION,
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
T = TypeVar("T")


class Settings(BaseModel):
    """What every function reads: the trading mode. Each function's own class below adds the
    variables it uses as typed fields (required ones without a default), so a missing or empty
    variable fails the cold start with its name, and a handler reads ``settings.orders_table``
    as a ``str``, never a string key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode = Mode.PAPER

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        """Read this class's variables (:data:`ENV_VARS`); empty values count as absent."""
        values = {
            field: environ[ENV_VARS[field]]
            for field in cls.model_fields
            if environ.get(ENV_VARS[field])
        }
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(_env_problem(err) for err in exc.errors())
            raise SettingsError(f"invalid environment: {problems}") from exc

    @classmethod
    def variables(cls) -> set[str]:
        """The environment variables this function reads."""
        return {ENV_VARS[field] for field in cls.model_fields}


def _env_problem(err: Any) -> str:
    """One validation error in the variables' words: ``ORDERS_TABLE: not set ...``."""
    if err["type"] == "missing":
        return f"{ENV_VARS[str(err['loc'][0])]}: not set, and this function needs it"
    if err["loc"]:
        return f"{ENV_VARS.get(str(err['loc'][0]), err['loc'][0])}: {err['msg']}"
    return str(err["msg"]).removeprefix("Value error, ")


def _parse(variable: str, text: str, model: TypeAdapter[T]) -> T:
    """A JSON variable as ``model``; bad JSON or a bad value names the variable."""
    try:
        return model.validate_json(text)
    except ValidationError as exc:
        raise SettingsError(f"{variable}: {_problems(exc)}") from exc


class _Markets(Settings):
    markets_json: str

    def markets(self) -> list[MarketEntry]:
        """The configured markets, strategies unchecked (no numpy: ingest, reconcile)."""
        return _parse(ENV_MARKETS, self.markets_json, _MARKETS)


class _Paper(Settings):
    paper_json: str | None = None

    def paper_settings(self) -> PaperSettings:
        """Fees, slippage and starting balances of the paper account (defaults when unset)."""
        from tickstep.config import PaperSettings

        if not self.paper_json:
            return PaperSettings()
        return _parse(ENV_PAPER_SETTINGS, self.paper_json, TypeAdapter(PaperSettings))


class IngestSettings(_Markets):
    candles_table: Name
    event_bus_name: Name
    portfolio_table: Name
    """Where ingest caches each market's rules (precision, limits) for the order path."""


class SignalSettings(Settings):
    markets_json: str
    candles_table: Name
    portfolio_table: Name
    signals_table: Name | None = None

    def market_configs(self) -> list[MarketConfig]:
        """The configured markets with their strategies built and checked (imports numpy)."""
        from tickstep.strategies import MarketConfig

        return _parse(ENV_MARKETS, self.markets_json, TypeAdapter(list[MarketConfig]))


class RiskSettings(_Paper):
    risk_limits_json: str
    candles_table: Name
    portfolio_table: Name
    control_table: Name
    event_bus_name: Name
    idempotency_table: Name | None = None

    def risk_limits(self) -> RiskLimits:
        return _parse(ENV_RISK_LIMITS, self.risk_limits_json, TypeAdapter(RiskLimits))


class OrderPathSettings(_Markets, _Paper):
    """What execute and reconcile share: the ledger, the account, and the exchange (the paper
    account fills at the stored candles; sandbox and live read the exchange secret)."""

    orders_table: Name
    portfolio_table: Name
    candles_table: Name | None = None
    exchange_secret_arn: Name | None = None

    @model_validator(mode="after")
    def _exchange(self) -> Self:
        if self.mode is Mode.PAPER and not self.candles_table:
            raise ValueError(f"{ENV_CANDLES_TABLE}: paper trading fills at the stored candles")
        if self.mode is not Mode.PAPER and not self.exchange_secret_arn:
            raise ValueError(f"{ENV_EXCHANGE_SECRET_ARN}: {self.mode.value} trading needs it")
        return self


class ExecuteSettings(OrderPathSettings):
    control_table: Name
    event_bus_name: Name


class ReconcileSettings(OrderPathSettings):
    pass


class ApiSettings(_Markets):
    orders_table: Name
    portfolio_table: Name
    control_table: Name
    event_bus_name: Name
    candles_table: Name
    """Each market's last candle: its age (health, the dashboard) and the mark price."""
    signals_table: Name | None = None
    order_state_machine_arn: Name | None = None
    """For the link to each order's execution in the Step Functions console."""
    dead_letter_queue_urls: str = ""
    alarm_name_prefix: Name | None = None
    release_parameter: Name | None = None
    function_version: Name | None = None

    def queue_urls(self) -> list[str]:
        return [u for u in self.dead_letter_queue_urls.split(",") if u]


class MarketEntry(BaseModel):
    """A configured market as functions without numpy see it: the strategy stays raw."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    market: Market
    strategy: dict[str, Any]


_MARKETS = TypeAdapter(list[MarketEntry])


def _problems(exc: ValidationError) -> str:
    return validation_problems(exc)
