"""The ccxt adapter against a fake ccxt client (and a real ccxt.binance with canned HTTP)."""

from __future__ import annotations

import json
import socket
import traceback
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote, quote_plus

import ccxt
import pytest

from tests.builders import BINANCE_ETH_BTC as MARKET
from tests.builders import CcxtOrderCall, secret_pieces
from tickstep.exchanges import (
    AmbiguousOrderError,
    AuthenticationFailed,
    CcxtExchange,
    ExchangeError,
    ExchangePort,
    FatalExchangeError,
    RetryableExchangeError,
    is_external,
    translate_ccxt_error,
)
from tickstep.exchanges.ccxt_adapter import ERROR_TABLE
from tickstep.exchanges.port import OrderRequest
from tickstep.models import MarketRules, OrderStatus, OrderType, Side
from tickstep.orders import intent_id

NOW = 1_700_000_000_000
FIVE_MIN = 300_000
CID = intent_id("sma", MARKET, NOW - FIVE_MIN, Side.BUY)

CCXT_MARKET: dict[str, Any] = {
    "id": "ETHBTC",
    "symbol": "ETH/BTC",
    "base": "ETH",
    "quote": "BTC",
    "baseId": "ETH",
    "quoteId": "BTC",
    "type": "spot",
    "spot": True,
    "margin": False,
    "swap": False,
    "future": False,
    "option": False,
    "contract": False,
    "linear": None,
    "inverse": None,
    "contractSize": None,
    "active": True,
    "precision": {"amount": 0.0001, "price": 0.00001},
    "limits": {"amount": {"min": 0.0001, "max": 9000}, "cost": {"min": 0.0001}, "price": {}},
    "info": {"orderTypes": ["LIMIT", "MARKET"]},
}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a unit test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield


@pytest.fixture(scope="module")
def binance() -> ccxt.binance:
    """A real ccxt.binance with its markets set from a dict: ccxt's own precision helpers."""
    client = ccxt.binance({"apiKey": "key", "secret": "secret"})
    client.set_markets([CCXT_MARKET])
    return client


class FakeCcxt:
    """The slice of a ccxt client the adapter uses; raises real ccxt errors on request."""

    precisionMode = 4  # noqa: N815 -- ccxt's attribute name

    def __init__(self, binance: ccxt.binance) -> None:
        self._precision = binance
        self.markets: dict[str, Any] = binance.markets
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.errors: dict[str, Exception] = {}
        self.ohlcv: list[list[Any]] = []
        self.open_orders: list[dict[str, Any]] = []
        self.closed_orders: list[dict[str, Any]] = []
        self.balance: dict[str, Any] = {}
        self.order_response: dict[str, Any] = {"id": "1", "status": "open", "filled": 0.0}
        self.has: dict[str, Any] = {}

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if name in self.errors:
            raise self.errors[name]

    def milliseconds(self) -> int:
        return NOW

    def load_markets(self, reload: bool = False) -> dict[str, Any]:
        self._call("load_markets")
        return self.markets

    def amount_to_precision(self, symbol: str, amount: str) -> str:
        self._call("amount_to_precision", symbol, amount)
        return str(self._precision.amount_to_precision(symbol, amount))

    def price_to_precision(self, symbol: str, price: str) -> str:
        self._call("price_to_precision", symbol, price)
        return str(self._precision.price_to_precision(symbol, price))

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None, limit: int | None
    ) -> list[list[Any]]:
        self._call("fetch_ohlcv", symbol, timeframe, since, limit)
        return self.ohlcv

    def create_order(self, *args: Any) -> dict[str, Any]:
        self._call("create_order", *CcxtOrderCall(*args))
        return self.order_response

    def cost_to_precision(self, symbol: str, cost: str) -> str:
        self._call("cost_to_precision", symbol, cost)
        return str(self._precision.cost_to_precision(symbol, cost))

    def create_market_buy_order_with_cost(
        self, symbol: str, cost: float, params: dict[str, Any]
    ) -> dict[str, Any]:
        self._call("create_market_buy_order_with_cost", symbol, cost, params)
        return self.order_response

    def fetch_order(self, id: str, symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        self._call("fetch_order", id, symbol, params)
        return self.order_response

    def fetch_open_orders(self, symbol: str) -> list[dict[str, Any]]:
        self._call("fetch_open_orders", symbol)
        return self.open_orders

    def fetch_closed_orders(self, symbol: str, since: int | None) -> list[dict[str, Any]]:
        self._call("fetch_closed_orders", symbol, since)
        return self.closed_orders

    def fetch_balance(self) -> dict[str, Any]:
        self._call("fetch_balance")
        return self.balance


@pytest.fixture
def fake(binance: ccxt.binance) -> FakeCcxt:
    return FakeCcxt(binance)


@pytest.fixture
def exchange(fake: FakeCcxt) -> CcxtExchange:
    return CcxtExchange(fake)


def ccxt_order(**fields: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": "77",
        "clientOrderId": CID,
        "timestamp": NOW - 1000,
        "status": "open",
        "symbol": "ETH/BTC",
        "type": "limit",
        "side": "buy",
        "price": 0.05,
        "amount": 0.5,
        "filled": 0.0,
        "average": None,
        "cost": 0.0,
        "fee": None,
        "fees": [],
    }
    order.update(fields)
    return order


# -- error translation ---------------------------------------------------------------------

Auth, Fatal = AuthenticationFailed, FatalExchangeError
Retry, Ambiguous = RetryableExchangeError, AmbiguousOrderError
TRANSLATIONS = [
    # (ccxt error, domain error on a read, on order creation, code), written apart from
    # ERROR_TABLE: an order that may have reached the exchange is ambiguous, never retried.
    (ccxt.AccountSuspended, Auth, Auth, "account_suspended"),
    (ccxt.AccountNotEnabled, Auth, Auth, "permission_denied"),
    (ccxt.PermissionDenied, Auth, Auth, "permission_denied"),
    (ccxt.AuthenticationError, Auth, Auth, "authentication"),
    (ccxt.InsufficientFunds, Fatal, Fatal, "insufficient_funds"),
    (ccxt.DuplicateOrderId, Fatal, Ambiguous, "duplicate_client_order_id"),
    (ccxt.OrderNotFound, Fatal, Fatal, "order_not_found"),
    (ccxt.OrderImmediatelyFillable, Fatal, Fatal, "invalid_order"),
    (ccxt.InvalidOrder, Fatal, Fatal, "invalid_order"),
    (ccxt.BadSymbol, Fatal, Fatal, "bad_symbol"),
    (ccxt.BadRequest, Fatal, Fatal, "bad_request"),
    (ccxt.NotSupported, Fatal, Fatal, "not_supported"),
    (ccxt.MarketClosed, Fatal, Fatal, "exchange_error"),
    (ccxt.ArgumentsRequired, Fatal, Fatal, "exchange_error"),
    (ccxt.ExchangeError, Fatal, Fatal, "exchange_error"),
    (ccxt.RateLimitExceeded, Retry, Retry, "rate_limited"),
    (ccxt.DDoSProtection, Retry, Ambiguous, "ddos_protection"),
    (ccxt.OnMaintenance, Retry, Ambiguous, "on_maintenance"),
    (ccxt.ExchangeNotAvailable, Retry, Ambiguous, "exchange_not_available"),
    (ccxt.RequestTimeout, Retry, Ambiguous, "request_timeout"),
    (ccxt.InvalidNonce, Retry, Ambiguous, "network_error"),
    (ccxt.NetworkError, Retry, Ambiguous, "network_error"),
    (ccxt.NullResponse, Retry, Ambiguous, "operation_failed"),
    (ccxt.BadResponse, Retry, Ambiguous, "operation_failed"),
    (ccxt.OperationFailed, Retry, Ambiguous, "operation_failed"),
    (ccxt.BaseError, Fatal, Ambiguous, "unknown"),
]
CALLS: dict[str, tuple[str, str, Callable[[CcxtExchange], object]]] = {
    # the ccxt method that fails, what its error says, the adapter call that reaches it
    "read": ("fetch_balance", "binance GET /api/v3/account 500", lambda ex: ex.fetch_balance()),
    "create": (
        "create_order",
        "binance POST /api/v3/order",
        lambda ex: ex.create_order(
            OrderRequest(
                MARKET, Side.BUY, OrderType.MARKET, Decimal("0.1"), price=None, client_order_id=CID
            )
        ),
    ),
}
TRANSLATION_CASES = [
    *((error, "read", on_read, code) for error, on_read, _, code in TRANSLATIONS),
    *((error, "create", on_create, code) for error, _, on_create, code in TRANSLATIONS),
]


@pytest.mark.parametrize(("ccxt_error", "call", "domain", "code"), TRANSLATION_CASES)
def test_ccxt_error_translates_by_class_to_domain_error(
    fake: FakeCcxt, ccxt_error: type[Exception], call: str, domain: type, code: str
) -> None:
    method, text, make_call = CALLS[call]
    fake.errors[method] = ccxt_error(text)
    with pytest.raises(ExchangeError) as caught:
        make_call(CcxtExchange(fake))
    assert type(caught.value) is domain
    assert caught.value.code == code
    assert str(caught.value).startswith(f"{code}: ")
    assert f"{ccxt_error.__name__}: {text}" in str(caught.value)
    # The ccxt exception is not kept: its text may hold credentials (issue 10).
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_every_error_table_row_is_a_real_ccxt_class_listed_after_its_subclasses() -> None:
    names = [row[0] for row in ERROR_TABLE]
    for i, name in enumerate(names):
        cls = getattr(ccxt, name)
        for later in names[i + 1 :]:
            assert not issubclass(getattr(ccxt, later), cls), f"{later} is shadowed by {name}"
    assert names[-1] == "BaseError"


def test_translation_ignores_the_message_text() -> None:
    error = translate_ccxt_error(ccxt.NetworkError("Account has insufficient balance"))
    assert type(error) is RetryableExchangeError


def test_translating_a_non_ccxt_exception_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        translate_ccxt_error(ValueError("nope"))


# -- credentials in ccxt errors (issue 10) ---------------------------------------------------

CREDENTIALS = {
    "apiKey": "UNITKEY-4e1f+9a7c/2b6d=83f0-c5e2",
    "secret": 'UNITSECRET-7d2a+e5b1/94c8=0f6a "3b9e\\d7c4" \u00fc21',
    "password": "UNITPASS-b83e&41c9?d7f2#a6e0",
}


def leaked(text: str, window: int = 8) -> list[str]:
    """The ``window``-character pieces of any spelling of a credential found in ``text``."""
    return sorted(p for p in secret_pieces(CREDENTIALS.values(), window) if p in text)


def echoing_request() -> str:
    """What an exchange error may say: the signed request with every credential, spelled
    every way."""
    key, secret, password = CREDENTIALS["apiKey"], CREDENTIALS["secret"], CREDENTIALS["password"]
    return (
        f"binance GET https://api.binance.com/api/v3/account?apiKey={quote_plus(key)}"
        f"&secret={quote(secret, safe='')}&password={quote(password, safe='').lower()} "
        + json.dumps({"apiKey": key, "secret": secret, "password": password})
        + f" {json.dumps({'echo': secret}, ensure_ascii=False)} plain {key} {secret} {password}"
    )


def rendered(error: BaseException) -> str:
    """Everything a log line, a Lambda errorMessage or a trace could show of ``error``."""
    return "\n".join(
        [str(error), repr(error), "".join(traceback.format_exception(error)), str(error.args)]
    )


@pytest.fixture
def signed(binance: ccxt.binance, monkeypatch: pytest.MonkeyPatch) -> ccxt.binance:
    """A real ccxt.binance holding the credentials, whose every request fails authentication
    echoing them."""
    client = ccxt.binance(dict(CREDENTIALS))
    client.set_markets([CCXT_MARKET])

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ccxt.AuthenticationError(echoing_request())

    monkeypatch.setattr(client, "fetch", refuse)
    return client


def test_echoing_request_holds_every_credential_in_every_spelling() -> None:
    text = echoing_request()

    for value in CREDENTIALS.values():
        assert value in text
        url_encoded = (quote(value, safe=""), quote(value, safe="").lower(), quote_plus(value))
        assert any(form in text for form in url_encoded)
        assert json.dumps(value)[1:-1] in text


@pytest.mark.parametrize(
    "call",
    [
        lambda ex: ex.fetch_balance(),
        lambda ex: ex.fetch_open_orders(MARKET),
        lambda ex: ex.fetch_closed_orders(MARKET, 0),
        lambda ex: ex.fetch_order_by_client_id(MARKET, CID),
        lambda ex: ex.create_order(
            OrderRequest(
                MARKET, Side.BUY, OrderType.MARKET, Decimal("0.1"), price=None, client_order_id=CID
            )
        ),
    ],
    ids=["balance", "open", "closed", "lookup", "create"],
)
def test_auth_error_echoing_the_credentials_when_translated_then_no_spelling_is_kept(
    signed: ccxt.binance, call: Any
) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        call(CcxtExchange(signed))

    error = caught.value
    assert error.__cause__ is None
    assert error.__context__ is None
    assert error.detail.startswith("AuthenticationError: binance GET https://api.binance.com")
    assert "apiKey=***&secret=***&password=***" in error.detail
    assert leaked(rendered(error)) == []


def test_translation_when_a_credential_straddles_the_cut_then_no_part_of_it_is_kept() -> None:
    key = CREDENTIALS["apiKey"]
    text = "binance " + "x" * 280 + f"apiKey={key}&more"

    error = translate_ccxt_error(ccxt.AuthenticationError(text), secrets=[key])

    assert "apiKey=***&m" in error.detail  # redacted, then cut to 300
    assert leaked(rendered(error), window=5) == []


def test_a_store_failing_while_the_translated_error_is_handled_then_its_chain_has_no_key(
    signed: ccxt.binance,
) -> None:
    """What issue 10 reproduced: a DynamoDB throttle inside ``except ExchangeError`` chains
    the translated error, which must not chain the ccxt one."""

    def halt_after(exchange: CcxtExchange) -> None:
        try:
            exchange.fetch_balance()
        except ExchangeError:
            raise RuntimeError("ProvisionedThroughputExceededException") from None

    with pytest.raises(RuntimeError) as caught:
        halt_after(CcxtExchange(signed))

    chain: list[BaseException] = []
    link: BaseException | None = caught.value
    while link is not None:
        chain.append(link)
        link = link.__cause__ or link.__context__
    assert [type(e) for e in chain] == [RuntimeError, AuthenticationFailed]
    assert leaked("\n".join(rendered(e) for e in chain)) == []


def test_secrets_handed_to_the_adapter_are_redacted_too(fake: FakeCcxt) -> None:
    fake.errors["fetch_balance"] = ccxt.ExchangeError(f"binance echo {quote('sk live 123')}")

    with pytest.raises(FatalExchangeError) as caught:
        CcxtExchange(fake, secrets=["sk live 123"]).fetch_balance()

    assert str(caught.value) == "exchange_error: ExchangeError: binance echo ***"


@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("load_markets", lambda ex: ex.market_rules("ETH/BTC")),
        ("fetch_ohlcv", lambda ex: ex.fetch_ohlcv(MARKET)),
        ("fetch_open_orders", lambda ex: ex.fetch_open_orders(MARKET)),
        ("fetch_closed_orders", lambda ex: ex.fetch_closed_orders(MARKET, 0)),
        ("fetch_open_orders", lambda ex: ex.fetch_order_by_client_id(MARKET, CID)),
        ("fetch_balance", lambda ex: ex.fetch_balance()),
    ],
)
def test_network_error_on_any_read_is_retryable(
    exchange: CcxtExchange, fake: FakeCcxt, method: str, call: Any
) -> None:
    fake.errors[method] = ccxt.NetworkError("connection reset")
    with pytest.raises(RetryableExchangeError):
        call(exchange)


def test_network_error_before_the_send_is_retryable_not_ambiguous(
    exchange: CcxtExchange, fake: FakeCcxt
) -> None:
    fake.errors["load_markets"] = ccxt.RequestTimeout("markets")
    with pytest.raises(RetryableExchangeError):
        exchange.create_order(
            OrderRequest(
                MARKET, Side.BUY, OrderType.MARKET, Decimal("0.1"), price=None, client_order_id=CID
            )
        )
    assert "create_order" not in [name for name, _ in fake.calls]


def test_amount_below_precision_is_fatal_and_never_sent(
    exchange: CcxtExchange, fake: FakeCcxt
) -> None:
    with pytest.raises(FatalExchangeError) as caught:
        exchange.create_order(
            OrderRequest(
                MARKET,
                Side.BUY,
                OrderType.MARKET,
                Decimal("0.00001"),
                price=None,
                client_order_id=CID,
            )
        )
    assert caught.value.code == "invalid_order"
    assert "create_order" not in [name for name, _ in fake.calls]


def test_unreadable_response_after_a_successful_send_is_ambiguous(
    exchange: CcxtExchange, fake: FakeCcxt
) -> None:
    fake.order_response = {"id": "9", "status": "open", "filled": "not a number", "amount": -1}
    with pytest.raises(AmbiguousOrderError) as caught:
        exchange.create_order(
            OrderRequest(
                MARKET, Side.BUY, OrderType.MARKET, Decimal("0.1"), price=None, client_order_id=CID
            )
        )
    assert caught.value.code == "unreadable_response"


# -- orders ----------------------------------------------------------------------------------


def test_create_order_sends_precise_strings_and_the_client_order_id(
    exchange: CcxtExchange, fake: FakeCcxt
) -> None:
    order = exchange.create_order(
        OrderRequest(
            MARKET,
            Side.BUY,
            OrderType.LIMIT,
            Decimal("0.123456"),
            price=Decimal("0.0500049"),
            client_order_id=CID,
        )
    )
    sent = next(args for name, args in fake.calls if name == "create_order")
    assert sent == ("ETH/BTC", "limit", "buy", "0.1234", "0.05", {"clientOrderId": CID})
    assert order.amount == Decimal("0.1234")
    assert order.price == Decimal("0.05")
    assert order.intent_id == CID
    assert order.client_order_id == CID
    assert order.exchange_order_id == "1"
    assert order.status is OrderStatus.SUBMITTED


def test_limit_order_without_price_is_refused_before_sending(
    exchange: CcxtExchange, fake: FakeCcxt
) -> None:
    with pytest.raises(FatalExchangeError):
        exchange.create_order(
            OrderRequest(
                MARKET, Side.BUY, OrderType.LIMIT, Decimal("0.1"), price=None, client_order_id=CID
            )
        )
    assert fake.calls == []


def test_create_order_through_real_ccxt_binance_sends_new_client_order_id(
    binance: ccxt.binance, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests: list[tuple[str, str, str]] = []

    def canned(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        requests.append((method, url, body))
        return {
            "symbol": "ETHBTC",
            "orderId": 42,
            "clientOrderId": CID,
            "transactTime": NOW,
            "price": "0.0",
            "origQty": "0.1234",
            "executedQty": "0.1234",
            "cummulativeQuoteQty": "0.00617",
            "status": "FILLED",
            "type": "MARKET",
            "side": "BUY",
            "fills": [
                {
                    "price": "0.05",
                    "qty": "0.1234",
                    "commission": "0.00000617",
                    "commissionAsset": "BTC",
                    "tradeId": 1,
                },
            ],
        }

    monkeypatch.setattr(binance, "fetch", canned)
    order = CcxtExchange(binance, clock=lambda: NOW).create_order(
        OrderRequest(
            MARKET,
            Side.BUY,
            OrderType.MARKET,
            Decimal("0.12345678"),
            price=None,
            client_order_id=CID,
        )
    )
    [(method, _url, body)] = requests
    assert method == "POST"
    assert f"newClientOrderId={CID}" in body
    assert "quantity=0.1234&" in body
    assert order.status is OrderStatus.FILLED
    assert order.filled == Decimal("0.1234")
    assert order.average == Decimal("0.05")
    assert order.fee == Decimal("0.00000617")
    assert order.fee_currency == "BTC"


def test_request_timeout_from_real_ccxt_binance_on_create_is_ambiguous(
    binance: ccxt.binance, monkeypatch: pytest.MonkeyPatch
) -> None:
    def timeout(*args: Any, **kwargs: Any) -> Any:
        raise ccxt.RequestTimeout("binance POST https://api.binance.com/api/v3/order")

    monkeypatch.setattr(binance, "fetch", timeout)
    with pytest.raises(AmbiguousOrderError):
        CcxtExchange(binance).create_order(
            OrderRequest(
                MARKET, Side.BUY, OrderType.MARKET, Decimal("0.1"), price=None, client_order_id=CID
            )
        )


@pytest.mark.parametrize(
    ("status", "filled", "expected"),
    [
        ("open", 0.0, OrderStatus.SUBMITTED),
        ("open", 0.2, OrderStatus.PARTIALLY_FILLED),
        ("closed", 0.5, OrderStatus.FILLED),
        ("closed", None, OrderStatus.FILLED),
        ("canceled", 0.0, OrderStatus.CANCELLED),
        ("canceled", 0.2, OrderStatus.CANCELLED),
        ("expired", 0.0, OrderStatus.CANCELLED),
        ("rejected", 0.0, OrderStatus.REJECTED),
        (None, 0.0, OrderStatus.SUBMITTED),
        (None, 0.5, OrderStatus.FILLED),
        ("something_new", 0.0, OrderStatus.UNKNOWN),
    ],
)
def test_ccxt_order_status_and_fill_map_to_order_status(
    exchange: CcxtExchange,
    fake: FakeCcxt,
    status: str | None,
    filled: float | None,
    expected: OrderStatus,
) -> None:
    fake.open_orders = [ccxt_order(status=status, filled=filled)]
    [order] = exchange.fetch_open_orders(MARKET)
    assert order.status is expected


def test_closed_order_without_filled_counts_as_completely_filled(
    exchange: CcxtExchange, fake: FakeCcxt
) -> None:
    fake.closed_orders = [ccxt_order(status="closed", filled=None, cost=0.025)]
    [order] = exchange.fetch_closed_orders(MARKET, NOW - 10_000)
    assert order.filled == Decimal("0.5")
    assert order.average == Decimal("0.05")
    assert fake.calls[-1] == ("fetch_closed_orders", ("ETH/BTC", NOW - 10_000))


def test_order_numbers_parse_exactly_as_decimals(exchange: CcxtExchange, fake: FakeCcxt) -> None:
    fake.open_orders = [
        ccxt_order(
            price=5.29e-05,
            amount=0.3,
            filled=0.1,
            average=5.28e-05,
            fee={"cost": 1e-08, "currency": "BTC"},
            lastTradeTimestamp=NOW,
        )
    ]
    [order] = exchange.fetch_open_orders(MARKET)
    assert order.price == Decimal("0.0000529")
    assert order.amount == Decimal("0.3")
    assert order.filled == Decimal("0.1")
    assert order.average == Decimal("0.0000528")
    assert (order.fee, order.fee_currency) == (Decimal("1e-08"), "BTC")
    assert (order.created_at, order.updated_at) == (NOW - 1000, NOW)


def test_fees_in_one_currency_are_summed_and_a_rebate_records_zero(
    exchange: CcxtExchange, fake: FakeCcxt
) -> None:
    fees = [{"cost": 0.1, "currency": "BTC"}, {"cost": 0.2, "currency": "BTC"}]
    rebate = [{"cost": -0.1, "currency": "BTC"}]
    fake.open_orders = [ccxt_order(fees=fees), ccxt_order(id="78", fees=rebate)]
    summed, rebated = exchange.fetch_open_orders(MARKET)
    assert summed.fee == Decimal("0.3")
    assert rebated.fee == Decimal(0)


def test_order_placed_outside_the_pipeline_is_external_with_a_stable_id(
    exchange: CcxtExchange, fake: FakeCcxt
) -> None:
    fake.open_orders = [ccxt_order(clientOrderId="web_pCCGp9AIHjziKLlpGpXI")]
    [first] = exchange.fetch_open_orders(MARKET)
    [again] = exchange.fetch_open_orders(MARKET)
    assert is_external(first)
    assert first.intent_id.startswith("ex")
    assert first.intent_id == again.intent_id
    assert first.client_order_id == "web_pCCGp9AIHjziKLlpGpXI"


def test_order_with_our_client_order_id_is_not_external(
    exchange: CcxtExchange, fake: FakeCcxt
) -> None:
    fake.open_orders = [ccxt_order()]
    [order] = exchange.fetch_open_orders(MARKET)
    assert not is_external(order)
    assert order.intent_id == CID


def test_lookup_by_client_id_finds_an_open_order_first(
    exchange: CcxtExchange, fake: FakeCcxt
) -> None:
    fake.open_orders = [ccxt_order(id="1", clientOrderId="other"), ccxt_order(id="2")]
    order = exchange.fetch_order_by_client_id(MARKET, CID)
    assert order is not None
    assert order.exchange_order_id == "2"
    assert "fetch_closed_orders" not in [name for name, _ in fake.calls]


def test_lookup_by_client_id_falls_back_to_recent_closed_orders(
    exchange: CcxtExchange, fake: FakeCcxt
) -> None:
    fake.closed_orders = [ccxt_order(id="3", status="closed", filled=0.5)]
    order = exchange.fetch_order_by_client_id(MARKET, CID)
    assert order is not None
    assert order.status is OrderStatus.FILLED
    assert ("fetch_closed_orders", ("ETH/BTC", NOW - 86_400_000)) in fake.calls


def test_lookup_by_client_id_returns_none_when_the_exchange_has_no_such_order(
    exchange: CcxtExchange, fake: FakeCcxt
) -> None:
    fake.open_orders = [ccxt_order(clientOrderId="other")]
    assert exchange.fetch_order_by_client_id(MARKET, CID) is None


def test_lookup_by_fetch_order_passes_the_client_order_id(fake: FakeCcxt) -> None:
    fake.order_response = ccxt_order(id="5", status="closed", filled=0.5)
    order = CcxtExchange(fake, lookup_by_fetch_order=True).fetch_order_by_client_id(MARKET, CID)
    assert order is not None
    assert order.exchange_order_id == "5"
    assert fake.calls == [("fetch_order", (CID, "ETH/BTC", {"clientOrderId": CID}))]


def test_lookup_by_fetch_order_turns_order_not_found_into_none(fake: FakeCcxt) -> None:
    fake.errors["fetch_order"] = ccxt.OrderNotFound("binance -2013 Order does not exist")
    exchange = CcxtExchange(fake, lookup_by_fetch_order=True)
    assert exchange.fetch_order_by_client_id(MARKET, CID) is None


# -- candles, markets, balances --------------------------------------------------------------


def test_fetch_ohlcv_parses_decimals_and_drops_the_forming_candle(
    exchange: CcxtExchange, fake: FakeCcxt
) -> None:
    closed_at_now = NOW - FIVE_MIN
    fake.ohlcv = [
        [closed_at_now - FIVE_MIN, 0.05, 0.051, 0.049, 0.0505, 12.5],
        [closed_at_now, 5.29e-05, 5.3e-05, 5.2e-05, 5.25e-05, None],
        [closed_at_now + FIVE_MIN, 0.05, 0.05, 0.05, 0.05, 1.0],  # forming
    ]
    candles = exchange.fetch_ohlcv(MARKET, since_ms=0, limit=3)
    assert [c.timestamp for c in candles] == [closed_at_now - FIVE_MIN, closed_at_now]
    assert candles[1].open == Decimal("0.0000529")
    assert candles[1].volume == Decimal(0)
    assert fake.calls == [("fetch_ohlcv", ("ETH/BTC", "5m", 0, 3))]


def test_market_rules_read_ccxt_precision_and_limits(exchange: CcxtExchange) -> None:
    assert exchange.market_rules("ETH/BTC") == MarketRules(
        amount_step=Decimal("0.0001"),
        price_step=Decimal("0.00001"),
        min_amount=Decimal("0.0001"),
        max_amount=Decimal(9000),
        min_cost=Decimal("0.0001"),
    )


def test_market_rules_of_an_unlisted_symbol_is_bad_symbol(exchange: CcxtExchange) -> None:
    with pytest.raises(FatalExchangeError) as caught:
        exchange.market_rules("DOGE/BTC")
    assert caught.value.code == "bad_symbol"


def test_fetch_balance_keeps_free_and_used_per_currency(
    exchange: CcxtExchange, fake: FakeCcxt
) -> None:
    fake.balance = {
        "info": {},
        "free": {"BTC": 0.1, "ETH": 2.0, "LDeth.2": 1.0},
        "used": {"BTC": 0.05, "ETH": None},
        "total": {"BTC": 0.15, "ETH": 2.0},
    }
    balances = exchange.fetch_balance()
    assert set(balances) == {"BTC", "ETH"}
    assert balances["BTC"].free == Decimal("0.1")
    assert balances["BTC"].total == Decimal("0.15")
    assert balances["ETH"].used == Decimal(0)


def test_adapter_satisfies_the_exchange_port(exchange: CcxtExchange) -> None:
    assert isinstance(exchange, ExchangePort)


@pytest.mark.parametrize("has_cost_orders", [True, False])
def test_market_buy_with_a_cost_when_the_exchange_takes_costs_then_spends_it_else_sends_amount(
    fake: FakeCcxt, exchange: CcxtExchange, has_cost_orders: bool
) -> None:
    fake.has["createMarketBuyOrderWithCost"] = has_cost_orders
    exchange.create_order(
        OrderRequest(
            MARKET,
            Side.BUY,
            OrderType.MARKET,
            Decimal("0.1234"),
            price=None,
            client_order_id=CID,
            cost=Decimal("0.002"),
        )
    )
    sent = [(name, args) for name, args in fake.calls if name.startswith("create_")]
    if has_cost_orders:
        assert sent == [
            ("create_market_buy_order_with_cost", ("ETH/BTC", 0.002, {"clientOrderId": CID}))
        ]
    else:
        assert sent == [
            ("create_order", ("ETH/BTC", "market", "buy", "0.1234", None, {"clientOrderId": CID}))
        ]
