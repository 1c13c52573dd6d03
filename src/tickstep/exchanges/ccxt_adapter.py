"""The exchange port over a ccxt client: unified API only, errors translated by class.

ccxt costs 0.4-2.6 s to import, so this module imports it only inside functions: importing
:mod:`tickstep.exchanges` stays cheap, and by the time a method runs the client exists, so ccxt
is already loaded. Numbers cross into ccxt as the strings its own precision helpers return and
come back as ``Decimal(str(x))``.

A ccxt exception's text may echo the signed request, credentials included, so a translated
error keeps only that text redacted (every credential of the client, in any encoding: see
:mod:`tickstep.redaction`) and never the ccxt exception itself: it is raised with no
``__cause__`` and no ``__context__``, so no traceback, ``repr`` or failure message built from
it later (Powertools' ``BatchProcessingError`` prints every chained exception) can show a key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from tickstep.exchanges.errors import (
    AmbiguousOrderError,
    AuthenticationFailed,
    ExchangeError,
    FatalExchangeError,
    RetryableExchangeError,
)
from tickstep.exchanges.port import OrderRequest, order_identity
from tickstep.models import (
    Balance,
    Candle,
    Market,
    MarketRules,
    Order,
    OrderStatus,
    OrderType,
    Side,
)
from tickstep.redaction import redact

__all__ = [
    "CREDENTIALS",
    "ERROR_TABLE",
    "CcxtExchange",
    "build_ccxt_client",
    "translate_ccxt_error",
]

T = TypeVar("T")

_Domain = type[ExchangeError]

ERROR_TABLE: tuple[tuple[str, str, _Domain, _Domain], ...] = (
    # (ccxt class, code, on a read, on order creation). First isinstance match wins, so every
    # subclass comes before its parent (ccxt/base/errors.py).
    ("AccountSuspended", "account_suspended", AuthenticationFailed, AuthenticationFailed),
    ("PermissionDenied", "permission_denied", AuthenticationFailed, AuthenticationFailed),
    ("AuthenticationError", "authentication", AuthenticationFailed, AuthenticationFailed),
    ("InsufficientFunds", "insufficient_funds", FatalExchangeError, FatalExchangeError),
    # The exchange already holds an order with this clientOrderId: the earlier send worked.
    ("DuplicateOrderId", "duplicate_client_order_id", FatalExchangeError, AmbiguousOrderError),
    ("OrderNotFound", "order_not_found", FatalExchangeError, FatalExchangeError),
    ("InvalidOrder", "invalid_order", FatalExchangeError, FatalExchangeError),
    ("BadSymbol", "bad_symbol", FatalExchangeError, FatalExchangeError),
    ("BadRequest", "bad_request", FatalExchangeError, FatalExchangeError),
    ("NotSupported", "not_supported", FatalExchangeError, FatalExchangeError),
    ("ExchangeError", "exchange_error", FatalExchangeError, FatalExchangeError),
    # 429: the exchange refused before handling the request, so even an order can be retried.
    ("RateLimitExceeded", "rate_limited", RetryableExchangeError, RetryableExchangeError),
    ("DDoSProtection", "ddos_protection", RetryableExchangeError, AmbiguousOrderError),
    ("OnMaintenance", "on_maintenance", RetryableExchangeError, AmbiguousOrderError),
    ("ExchangeNotAvailable", "exchange_not_available", RetryableExchangeError, AmbiguousOrderError),
    ("RequestTimeout", "request_timeout", RetryableExchangeError, AmbiguousOrderError),
    ("NetworkError", "network_error", RetryableExchangeError, AmbiguousOrderError),
    # BadResponse, NullResponse, CancelPending: the request may have been handled.
    ("OperationFailed", "operation_failed", RetryableExchangeError, AmbiguousOrderError),
    ("BaseError", "unknown", FatalExchangeError, AmbiguousOrderError),
)
"""ccxt exception class -> domain error, for reads and for order creation."""

CREDENTIALS = ("apiKey", "secret", "password", "uid", "login", "twofa", "privateKey", "token")
"""The ccxt client attributes that hold credentials (ccxt's ``requiredCredentials`` keys)."""
_MESSAGE_MAX = 300
_CURRENCY_RE = re.compile(r"^[A-Z0-9]{1,20}$")
_TICK_SIZE = 4
_DECIMAL_PLACES = 2


def translate_ccxt_error(
    exc: Exception, *, creating: bool = False, secrets: Iterable[str | None] = ()
) -> ExchangeError:
    """The domain error for a ccxt exception, chosen by its class, never by its text; the
    text kept is redacted of ``secrets`` before it is cut, so no piece of one survives."""
    import ccxt

    for name, code, on_read, on_create in ERROR_TABLE:
        if isinstance(exc, getattr(ccxt, name)):
            domain = on_create if creating else on_read
            text = redact(str(exc), secrets)[:_MESSAGE_MAX]
            return domain(f"{type(exc).__name__}: {text}", code=code)
    raise TypeError(f"not a ccxt error: {type(exc).__name__}")


def build_ccxt_client(
    exchange_id: str,
    *,
    api_key: str | None = None,
    secret: str | None = None,
    password: str | None = None,
    sandbox: bool = False,
) -> Any:
    """A rate-limited ccxt client; public endpoints only when no key is given."""
    import ccxt

    if exchange_id not in ccxt.exchanges:
        raise ValueError(f"unknown ccxt exchange {exchange_id!r}")
    config: dict[str, Any] = {"enableRateLimit": True}
    for key, value in (("apiKey", api_key), ("secret", secret), ("password", password)):
        if value is not None:
            config[key] = value
    client = getattr(ccxt, exchange_id)(config)
    if sandbox:
        client.set_sandbox_mode(True)
    return client


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _price(value: Any) -> Decimal:
    number = _dec(value)
    if number is None:
        raise FatalExchangeError(f"expected a number, got {value!r}", code="bad_response")
    return number


def _required(value: Side | None, name: str) -> Side:
    if value is None:
        raise FatalExchangeError(f"the exchange gave no {name}", code="bad_response")
    return value


def _positive(value: Any) -> Decimal | None:
    number = _dec(value)
    return number if number is not None and number > 0 else None


def _status(raw_status: Any, filled: Decimal, amount: Decimal) -> OrderStatus:
    """ccxt's open/closed/canceled/expired/rejected (plus what was filled) as our status.

    No status means the exchange only acknowledged the order (some return just an id).
    """
    if raw_status is None and amount > 0 and filled >= amount:
        return OrderStatus.FILLED
    if raw_status in ("open", None):
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.SUBMITTED
    return {
        "closed": OrderStatus.FILLED,
        "canceled": OrderStatus.CANCELLED,
        "cancelled": OrderStatus.CANCELLED,
        "expired": OrderStatus.CANCELLED,
        "rejected": OrderStatus.REJECTED,
    }.get(str(raw_status), OrderStatus.UNKNOWN)


def _fee(raw: dict[str, Any]) -> tuple[Decimal, str | None]:
    """One fee per order: the model holds one currency, so a multi-currency order keeps the
    first (reconcile trusts balances, not fees). A rebate (negative fee) is recorded as 0."""
    fees = [raw["fee"]] if raw.get("fee") else list(raw.get("fees") or [])
    for fee in fees:
        cost = _dec(fee.get("cost"))
        if cost is not None:
            currency = fee.get("currency")
            same = [_dec(f.get("cost")) for f in fees if f.get("currency") == currency]
            total = sum((c for c in same if c is not None), Decimal(0))
            return max(total, Decimal(0)), currency
    return Decimal(0), None


def parse_ccxt_order(
    raw: dict[str, Any],
    market: Market,
    *,
    now_ms: int,
    side: Side | None = None,
    order_type: OrderType | None = None,
    amount: Decimal | None = None,
    price: Decimal | None = None,
    client_order_id: str | None = None,
) -> Order:
    """A ccxt unified order as an :class:`Order`; keyword values fill what the exchange omits."""
    exchange_order_id = None if raw.get("id") is None else str(raw["id"])
    intent_id, cid = order_identity(
        market, raw.get("clientOrderId") or client_order_id, exchange_order_id
    )
    raw_type = raw.get("type")
    if raw_type is None:
        kind = order_type or (OrderType.MARKET if raw.get("price") is None else OrderType.LIMIT)
    else:
        kind = OrderType.MARKET if raw_type == "market" else OrderType.LIMIT
    raw_filled = _dec(raw.get("filled"))
    size = _dec(raw.get("amount")) or amount or raw_filled or Decimal(0)
    if raw_filled is None and raw.get("status") == "closed":
        raw_filled = size  # ccxt: closed means completely filled
    filled = min(raw_filled or Decimal(0), size)
    average = _positive(raw.get("average"))
    cost = _positive(raw.get("cost"))
    if average is None and cost is not None and filled > 0:
        average = cost / filled
    fee, fee_currency = _fee(raw)
    created = raw.get("timestamp") or now_ms
    updated = raw.get("lastUpdateTimestamp") or raw.get("lastTradeTimestamp") or created
    return Order(
        intent_id=intent_id,
        client_order_id=cid,
        exchange_order_id=exchange_order_id,
        market=market,
        side=Side(raw["side"]) if raw.get("side") else _required(side, "side"),
        order_type=kind,
        amount=size,
        price=(_positive(raw.get("price")) or price) if kind is OrderType.LIMIT else None,
        status=_status(raw.get("status"), filled, size),
        filled=filled,
        average=average,
        fee=fee,
        fee_currency=fee_currency,
        created_at=int(created),
        updated_at=max(int(updated), int(created)),
    )


class CcxtExchange:
    """:class:`~tickstep.exchanges.port.ExchangePort` over an already-built ccxt client.

    ``clock`` (ms) decides which candle is still forming; it defaults to the client's clock.
    ``lookup_by_fetch_order`` makes clientOrderId lookups one ``fetch_order`` call with
    ``params={"clientOrderId": ...}`` — only for exchanges that support it (Binance does);
    otherwise open orders, then closed orders of the last ``closed_lookback_ms``, are scanned.
    ``secrets`` are redacted from every error, besides the client's own :data:`CREDENTIALS`.
    """

    def __init__(
        self,
        client: Any,
        *,
        clock: Callable[[], int] | None = None,
        lookup_by_fetch_order: bool = False,
        closed_lookback_ms: int = 86_400_000,
        secrets: Sequence[str] = (),
    ) -> None:
        self._client = client
        self._clock: Callable[[], int] = clock or client.milliseconds
        self._lookup_by_fetch_order = lookup_by_fetch_order
        self._closed_lookback_ms = closed_lookback_ms
        self._secrets = tuple(secrets)

    @property
    def client(self) -> Any:
        return self._client

    def _credentials(self) -> list[str]:
        found = [getattr(self._client, name, None) for name in CREDENTIALS]
        return [*self._secrets, *(value for value in found if isinstance(value, str))]

    def _call(self, call: Callable[[], T], *, creating: bool = False) -> T:
        """``call()``, a ccxt error raised as its domain error with nothing chained."""
        import ccxt

        try:
            return call()
        except ccxt.BaseError as exc:
            error = translate_ccxt_error(exc, creating=creating, secrets=self._credentials())
        # Raised here, after the except block, so that Python does not set the ccxt
        # exception as the error's __context__ (``raise ... from None`` only hides it).
        raise error

    def _order(self, raw: dict[str, Any], market: Market) -> Order:
        return parse_ccxt_order(raw, market, now_ms=self._clock())

    def market_rules(self, symbol: str) -> MarketRules:
        markets = self._call(self._client.load_markets)  # ccxt caches: one request per client
        raw = (markets or {}).get(symbol)
        if raw is None:
            raise FatalExchangeError(f"{symbol} is not listed", code="bad_symbol")
        mode = self._client.precisionMode
        if mode not in (_TICK_SIZE, _DECIMAL_PLACES):
            raise FatalExchangeError(
                f"precision mode {mode} is not supported", code="not_supported"
            )
        try:
            return MarketRules.from_ccxt(raw, precision_mode=mode)
        except ValueError as exc:
            raise FatalExchangeError(f"{symbol}: {exc}", code="bad_market") from exc

    def fetch_ohlcv(
        self, market: Market, since_ms: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        """Closed candles only: the last row is usually still forming and is dropped, so up to
        one fewer than ``limit`` may come back."""
        rows = self._call(
            lambda: self._client.fetch_ohlcv(market.symbol, market.timeframe, since_ms, limit)
        )
        now = self._clock()
        length = market.timeframe_ms
        candles = []
        for timestamp, open_, high, low, close, volume in rows:
            if int(timestamp) + length > now:
                continue
            candles.append(
                Candle(
                    timestamp=int(timestamp),
                    open=_price(open_),
                    high=_price(high),
                    low=_price(low),
                    close=_price(close),
                    volume=_dec(volume) or Decimal(0),
                )
            )
        return candles

    def create_order(self, request: OrderRequest) -> Order:
        """Round with the exchange's own precision, then send once with ``clientOrderId``.

        A market buy with a ``cost`` goes as ``create_market_buy_order_with_cost`` where the
        exchange has it (ccxt's ``has``); elsewhere the ``amount`` sized at the reference
        price is sent. Errors before the send are reads (nothing was placed); errors of the
        send follow the creation column of :data:`ERROR_TABLE`; a response that cannot be
        read is ambiguous.
        """
        if (request.order_type is OrderType.LIMIT) != (request.price is not None):
            raise FatalExchangeError("price: required for limit orders only", code="invalid_order")
        symbol = request.market.symbol

        def to_precision() -> tuple[str, str | None, str | None]:
            self._client.load_markets()
            amount_text = self._client.amount_to_precision(symbol, str(request.amount))
            price_text = (
                None
                if request.price is None
                else self._client.price_to_precision(symbol, str(request.price))
            )
            by_cost = (
                request.cost is not None
                and request.side is Side.BUY
                and request.order_type is OrderType.MARKET
                and bool(self._client.has.get("createMarketBuyOrderWithCost"))
            )
            cost_text = (
                self._client.cost_to_precision(symbol, str(request.cost)) if by_cost else None
            )
            return amount_text, price_text, cost_text

        def send() -> dict[str, Any]:
            params = {"clientOrderId": request.client_order_id}
            if cost_text is not None:
                sent: dict[str, Any] = self._client.create_market_buy_order_with_cost(
                    symbol, float(cost_text), params
                )
            else:
                sent = self._client.create_order(
                    symbol,
                    request.order_type.value,
                    request.side.value,
                    amount_text,
                    price_text,
                    params,
                )
            return sent

        amount_text, price_text, cost_text = self._call(to_precision)
        raw = self._call(send, creating=True)
        try:
            return parse_ccxt_order(
                raw,
                request.market,
                now_ms=self._clock(),
                side=request.side,
                order_type=request.order_type,
                amount=Decimal(amount_text),
                price=None if price_text is None else Decimal(price_text),
                client_order_id=request.client_order_id,
            )
        except Exception as exc:
            unreadable = AmbiguousOrderError(
                redact(f"order accepted, response unreadable: {exc}", self._credentials())[
                    :_MESSAGE_MAX
                ],
                code="unreadable_response",
            )
        raise unreadable

    def fetch_order_by_client_id(self, market: Market, client_order_id: str) -> Order | None:
        if self._lookup_by_fetch_order:
            import ccxt

            def fetch_order() -> dict[str, Any] | None:
                try:
                    found: dict[str, Any] = self._client.fetch_order(
                        client_order_id, market.symbol, {"clientOrderId": client_order_id}
                    )
                except ccxt.OrderNotFound:
                    return None
                return found

            raw = self._call(fetch_order)
            return None if raw is None else self._order(raw, market)
        for raw in self._call(lambda: self._client.fetch_open_orders(market.symbol)):
            if raw.get("clientOrderId") == client_order_id:
                return self._order(raw, market)
        since = self._clock() - self._closed_lookback_ms
        for raw in self._call(lambda: self._client.fetch_closed_orders(market.symbol, since)):
            if raw.get("clientOrderId") == client_order_id:
                return self._order(raw, market)
        return None

    def fetch_open_orders(self, market: Market) -> list[Order]:
        rows = self._call(lambda: self._client.fetch_open_orders(market.symbol))
        return [self._order(raw, market) for raw in rows]

    def fetch_closed_orders(self, market: Market, since_ms: int | None = None) -> list[Order]:
        rows = self._call(lambda: self._client.fetch_closed_orders(market.symbol, since_ms))
        return [self._order(raw, market) for raw in rows]

    def fetch_balance(self) -> dict[str, Balance]:
        """Balances by currency; codes the model cannot hold (lowercase, dots) are left out,
        as the pipeline trades none of them."""
        raw = self._call(self._client.fetch_balance)
        free: dict[str, Any] = raw.get("free") or {}
        used: dict[str, Any] = raw.get("used") or {}
        balances = {}
        for currency in sorted(set(free) | set(used)):
            if not _CURRENCY_RE.match(currency):
                continue
            balances[currency] = Balance(
                currency=currency,
                free=_dec(free.get(currency)) or Decimal(0),
                used=_dec(used.get(currency)) or Decimal(0),
            )
        return balances


class CcxtCandles:
    """Ingest's candle source: public ccxt endpoints, one client per exchange (no keys: ingest
    never trades)."""

    def __init__(self, sandbox: bool) -> None:
        self._sandbox = sandbox
        self._exchanges: dict[str, CcxtExchange] = {}

    def _exchange(self, market: Market) -> CcxtExchange:
        if market.exchange not in self._exchanges:
            client = build_ccxt_client(market.exchange, sandbox=self._sandbox)
            self._exchanges[market.exchange] = CcxtExchange(client)
        return self._exchanges[market.exchange]

    def fetch_ohlcv(
        self, market: Market, since_ms: int | None = None, limit: int | None = None
    ) -> list[Any]:
        return list(self._exchange(market).fetch_ohlcv(market, since_ms, limit))

    def market_rules(self, market: Market) -> MarketRules:
        rules: MarketRules = self._exchange(market).market_rules(market.symbol)
        return rules
