"""The messages and records that cross a boundary in tickstep.

Every model is frozen and rejects unknown fields, so a typo in an event or a configuration is an
error that names the field, never a silently ignored value. Prices, amounts and balances are
``Decimal``; pydantic serialises them to JSON as strings, which keeps them exact on the wire.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "DECIMAL_LIMIT",
    "DYNAMODB_NUMBER_DIGITS",
    "DYNAMODB_NUMBER_MIN",
    "EPOCH_MS_MAX",
    "Amount",
    "Balance",
    "Candle",
    "CandleClosed",
    "CandlesClosed",
    "Fill",
    "Market",
    "MarketRules",
    "Money",
    "Order",
    "OrderIntent",
    "OrderStatus",
    "OrderType",
    "PlainText",
    "Position",
    "PositiveDecimal",
    "Price",
    "ReasonCode",
    "RiskDecision",
    "Side",
    "Signal",
    "SignalAction",
    "TradingState",
    "TradingStateRecord",
    "timeframe_ms",
    "validation_problems",
]


def validation_problems(exc: ValidationError, root: str = "value") -> str:
    """``field.path: message; ...`` for every error, so a message names each bad field
    (``root`` names the whole input when the error is not about one field)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or root}: {err['msg']}" for err in exc.errors()
    )


class Model(BaseModel):
    """Base of every tickstep model: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


DYNAMODB_NUMBER_DIGITS = 38
"""Significant digits a DynamoDB number holds."""
DYNAMODB_NUMBER_MIN = Decimal("1E-130")
"""The smallest magnitude of a DynamoDB number other than 0."""
DECIMAL_LIMIT = Decimal("1E+18")
"""Every decimal is below this in magnitude: a quantity divided by a step as fine as 1E-10
stays within the default decimal context's 28 digits (``amount % step`` raises
``InvalidOperation`` beyond it), and no price, amount or balance comes near it."""
EPOCH_MS_MAX = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the last instant a date can show (and well inside int64)."""


def _significant_digits(value: Decimal) -> int:
    """Digits without leading and trailing zeros, read from the tuple: ``normalize()`` would
    apply the context and raise ``Overflow`` on an exponent like ``1e999999999``."""
    text = "".join(map(str, value.as_tuple().digits)).strip("0")
    return len(text)


def _storable(value: Decimal) -> Decimal:
    """What bounds alone cannot say about a DynamoDB number (no context arithmetic here)."""
    if value.is_zero():
        return value
    if value.copy_abs() < DYNAMODB_NUMBER_MIN:
        raise PydanticCustomError(
            "storable_number", "Number too small to store: its magnitude must be at least 1E-130"
        )
    if _significant_digits(value) > DYNAMODB_NUMBER_DIGITS:
        raise PydanticCustomError(
            "storable_number", "Number has more than 38 significant digits: it cannot be stored"
        )
    return value


Storable = AfterValidator(_storable)
"""The last check of every decimal that crosses a boundary; with the bounds of the types
below, a number that validates can be stored in DynamoDB and computed with, so a hostile
``1e999999999`` or ``1e30`` is a validation error naming its field, never a crash later."""

Money = Annotated[
    Decimal, Field(gt=-DECIMAL_LIMIT, lt=DECIMAL_LIMIT, allow_inf_nan=False), Storable
]
"""Any exact quantity of money (may be negative: PnL, realised losses)."""
Price = Annotated[Decimal, Field(gt=0, lt=DECIMAL_LIMIT, allow_inf_nan=False), Storable]
PositiveDecimal = Price
"""A positive quantity that is not a price (a step, a fill's amount)."""
Amount = Annotated[Decimal, Field(ge=0, lt=DECIMAL_LIMIT, allow_inf_nan=False), Storable]
EpochMs = Annotated[
    int, Field(ge=0, le=EPOCH_MS_MAX, description="milliseconds since the Unix epoch, UTC")
]

_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Control and format characters (NUL, CR/LF, bidi overrides such as U+202E, zero-width
marks), lone surrogates, and line and paragraph separators."""


def _plain_text(value: str) -> str:
    for index, char in enumerate(value):
        if unicodedata.category(char) in _HIDDEN_CATEGORIES:
            raise PydanticCustomError(
                "plain_text",
                "Text must not contain control, format or line separator characters "
                "(U+{code} at {index})",
                {"code": f"{ord(char):04X}", "index": index},
            )
    return value


PlainText = Annotated[str, AfterValidator(_plain_text)]
"""Text a person typed that is kept and shown to others (a log line, an alarm e-mail): one
line, and what it shows is what it says."""

_TIMEFRAME_RE = re.compile(r"^([1-9][0-9]*)([mhdw])$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def timeframe_ms(timeframe: str) -> int:
    """Length of a ccxt timeframe string (``1m``, ``5m``, ``1h``, ``1d``, ``1w``) in ms."""
    match = _TIMEFRAME_RE.match(timeframe)
    if match is None:
        raise ValueError(f"unknown timeframe {timeframe!r}: expected e.g. 1m, 5m, 1h, 1d, 1w")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


Timeframe = Annotated[str, Field(pattern=_TIMEFRAME_RE.pattern, examples=["1m", "5m", "1h"])]
Symbol = Annotated[
    str, Field(pattern=r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$", examples=["ETH/BTC", "BTC/USDT"])
]
ExchangeId = Annotated[str, Field(pattern=r"^[a-z0-9]{2,32}$", examples=["binance", "paper"])]


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class SignalAction(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


class TradingState(StrEnum):
    """ACTIVE trades; REDUCING only lets orders shrink a position; HALTED places nothing new."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    NEW = "new"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    FAILED = "failed"
    UNKNOWN = "unknown"


class ReasonCode(StrEnum):
    """Why risk denied an order (or, for APPROVED, that every guard passed)."""

    APPROVED = "APPROVED"
    TRADING_HALTED = "TRADING_HALTED"
    REDUCE_ONLY = "REDUCE_ONLY"
    MAX_NOTIONAL = "MAX_NOTIONAL"
    MAX_POSITION = "MAX_POSITION"
    MAX_EXPOSURE = "MAX_EXPOSURE"
    MAX_DAILY_LOSS = "MAX_DAILY_LOSS"
    MAX_DRAWDOWN = "MAX_DRAWDOWN"
    COOLDOWN = "COOLDOWN"
    MAX_ORDERS_PER_HOUR = "MAX_ORDERS_PER_HOUR"
    STALE_DATA = "STALE_DATA"
    PRICE_BAND = "PRICE_BAND"
    BELOW_MIN_AMOUNT = "BELOW_MIN_AMOUNT"
    ABOVE_MAX_AMOUNT = "ABOVE_MAX_AMOUNT"
    BELOW_MIN_NOTIONAL = "BELOW_MIN_NOTIONAL"
    ABOVE_MAX_NOTIONAL = "ABOVE_MAX_NOTIONAL"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    NO_POSITION = "NO_POSITION"
    NO_MARKET_DATA = "NO_MARKET_DATA"
    """No stored candle of the market at the intent's candle time: nothing to check it with."""


class Market(Model):
    """One tradable series: an exchange, a unified ccxt symbol and a candle timeframe."""

    exchange: ExchangeId
    symbol: Symbol
    timeframe: Timeframe

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1]

    @property
    def timeframe_ms(self) -> int:
        return timeframe_ms(self.timeframe)

    @property
    def key(self) -> str:
        """Stable text key, e.g. ``binance:ETH/BTC:5m`` (table keys, log fields)."""
        return f"{self.exchange}:{self.symbol}:{self.timeframe}"

    @property
    def label(self) -> str:
        """How reports and charts name it, e.g. ``ETH/BTC 5m``."""
        return f"{self.symbol} {self.timeframe}"


class Candle(Model):
    """One OHLCV candle; ``timestamp`` is its open time, as in ccxt's ``fetch_ohlcv``."""

    timestamp: EpochMs
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Amount

    @model_validator(mode="after")
    def _range_is_consistent(self) -> Self:
        if self.low > min(self.open, self.close) or self.high < max(self.open, self.close):
            raise ValueError("high/low: low <= open, close <= high must hold")
        return self


class CandleClosed(Model):
    """Published on the bus by ingestion when a candle of ``market`` has closed."""

    market: Market
    candle: Candle

    @property
    def close_time(self) -> int:
        return self.candle.timestamp + self.market.timeframe_ms


class CandlesClosed(Model):
    """What ingestion publishes each run: every market's newly closed candles in one event, so
    the decide workflow runs once per tick (a Map over the markets), not once per market."""

    candles: tuple[CandleClosed, ...] = Field(min_length=1, max_length=500)


class Signal(Model):
    """A strategy's verdict on one closed candle, with the indicator values it used."""

    market: Market
    strategy: str = Field(min_length=1, max_length=64)
    candle_time: EpochMs
    action: SignalAction
    strength: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    reason: str = Field(max_length=500)
    indicators: dict[str, float | None] = Field(default_factory=dict)
    close: Price


class OrderIntent(Model):
    """What a strategy wants to trade, before risk sizes it.

    ``intent_id`` is derived from (strategy, market, candle time, side) by
    :func:`tickstep.orders.intent_id`, so every redelivery of the same candle maps to the same
    intent, the same conditional write and the same exchange ``clientOrderId``.
    """

    intent_id: str = Field(pattern=r"^[a-z0-9]{32}$")
    strategy: str = Field(min_length=1, max_length=64)
    market: Market
    candle_time: EpochMs
    side: Side
    order_type: OrderType = OrderType.MARKET
    reference_price: Price
    limit_price: Price | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _limit_price_matches_type(self) -> Self:
        if (self.order_type is OrderType.LIMIT) != (self.limit_price is not None):
            raise ValueError("limit_price: required for limit orders and only for them")
        return self

    @property
    def client_order_id(self) -> str:
        return self.intent_id


class RiskDecision(Model):
    """Approve (with the sized amount) or deny (with every reason) one order intent."""

    intent_id: str = Field(pattern=r"^[a-z0-9]{32}$")
    approved: bool
    amount: Amount | None = None
    price: Price | None = None
    quote_amount: Amount | None = Field(
        default=None,
        description=(
            "a market BUY's budget in the quote currency: the exchange is asked to spend it, "
            "so the amount is the budget / the fill price, truncated to the amount step "
            "(amount is that estimated at the reference price, what the limits checked)"
        ),
    )
    reasons: tuple[ReasonCode, ...]
    detail: str = ""
    new_trading_state: TradingState | None = None

    @model_validator(mode="after")
    def _shape_matches_verdict(self) -> Self:
        if self.quote_amount is not None and (not self.approved or self.quote_amount <= 0):
            raise ValueError("quote_amount: only an approval carries one, and it is positive")
        if self.approved:
            if self.amount is None or self.amount <= 0:
                raise ValueError("amount: an approval needs a positive amount")
            if self.reasons != (ReasonCode.APPROVED,):
                raise ValueError("reasons: an approval carries exactly (APPROVED,)")
        else:
            if not self.reasons or ReasonCode.APPROVED in self.reasons:
                raise ValueError("reasons: a denial names at least one reason, not APPROVED")
            if self.amount is not None:
                raise ValueError("amount: a denial carries no amount")
        return self


class Order(Model):
    """An order as the ledger knows it (and as the exchange reported it, once sent)."""

    intent_id: str = Field(pattern=r"^[a-z0-9]{32}$")
    client_order_id: str = Field(min_length=1, max_length=36)
    exchange_order_id: str | None = None
    market: Market
    side: Side
    order_type: OrderType
    amount: Amount
    price: Price | None = None
    status: OrderStatus
    filled: Amount = Decimal(0)
    average: Price | None = None
    fee: Amount = Decimal(0)
    fee_currency: str | None = None
    created_at: EpochMs
    updated_at: EpochMs

    @model_validator(mode="after")
    def _filled_within_amount(self) -> Self:
        if self.filled > self.amount:
            raise ValueError("filled: cannot exceed amount")
        return self

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled


class Fill(Model):
    """One execution (trade) of an order."""

    trade_id: str = Field(min_length=1)
    client_order_id: str = Field(min_length=1, max_length=36)
    market: Market
    side: Side
    amount: PositiveDecimal
    price: Price
    fee: Amount
    fee_currency: str
    timestamp: EpochMs

    @property
    def cost(self) -> Decimal:
        return self.amount * self.price


class Position(Model):
    """A long-only spot position in one market (amount in the base currency)."""

    market: Market
    amount: Amount = Decimal(0)
    average_price: Price | None = None
    realized_pnl: Money = Decimal(0)


class Balance(Model):
    currency: str = Field(pattern=r"^[A-Z0-9]{1,20}$")
    free: Amount
    used: Amount = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.free + self.used


class TradingStateRecord(Model):
    """The kill switch: the current trading state and why it was set."""

    state: TradingState
    reason: str = Field(max_length=500)
    changed_at: EpochMs
    changed_by: str = Field(min_length=1, max_length=128)


class MarketRules(Model):
    """A market's precision and limits, as ccxt's market structure gives them.

    ``amount_step`` and ``price_step`` are tick sizes (ccxt's TICK_SIZE precision mode); use
    :meth:`from_ccxt` to read a ccxt market in any precision mode.
    """

    amount_step: PositiveDecimal
    price_step: PositiveDecimal
    min_amount: Amount = Decimal(0)
    max_amount: Amount | None = None
    min_cost: Amount = Decimal(0)
    max_cost: Amount | None = None

    @classmethod
    def from_ccxt(cls, market: dict[str, Any], *, precision_mode: int = 4) -> MarketRules:
        """Read ccxt's ``precision``/``limits``; ``precision_mode`` 4 is TICK_SIZE, 2 DECIMALS."""

        def step(value: Any) -> Decimal:
            if value is None:
                raise ValueError("precision: the market gives no precision")
            if precision_mode == 4:
                return Decimal(str(value))
            return Decimal(1).scaleb(-int(value))

        def optional(value: Any) -> Decimal | None:
            return None if value is None else Decimal(str(value))

        limits = market.get("limits") or {}
        amount_limits = limits.get("amount") or {}
        cost_limits = limits.get("cost") or {}
        precision = market.get("precision") or {}
        return cls(
            amount_step=step(precision.get("amount")),
            price_step=step(precision.get("price")),
            min_amount=optional(amount_limits.get("min")) or Decimal(0),
            max_amount=optional(amount_limits.get("max")),
            min_cost=optional(cost_limits.get("min")) or Decimal(0),
            max_cost=optional(cost_limits.get("max")),
        )

    def amount_to_precision(self, amount: Decimal) -> Decimal:
        """Truncate toward zero to the amount step (never buy more than was sized)."""
        steps = (amount / self.amount_step).to_integral_value(rounding=ROUND_DOWN)
        return (steps * self.amount_step).normalize() + Decimal(0)

    def price_to_precision(self, price: Decimal) -> Decimal:
        steps = (price / self.price_step).to_integral_value(rounding=ROUND_HALF_EVEN)
        return (steps * self.price_step).normalize() + Decimal(0)
