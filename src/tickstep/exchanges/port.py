"""The exchange surface the pipeline uses, whatever is behind it (ccxt, paper, replay).

Every method raises only :mod:`tickstep.exchanges.errors`; every number is a ``Decimal``.

Orders come back as :class:`tickstep.models.Order`. Ours carry ``intent_id == client_order_id``
(the id :func:`tickstep.orders.intent_id` derived). Orders the pipeline did not place — typed in
a web UI, or by another bot on the same account — are *external*: their ``intent_id`` is a
stable synthetic ``ex…`` id derived from the market and the exchange's order id, so they fit the
same model and reconcile can see them, and :func:`is_external` tells them apart.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import KW_ONLY, dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from tickstep.models import Balance, Candle, Market, MarketRules, Order, OrderType, Side

__all__ = [
    "EXTERNAL_PREFIX",
    "INTENT_ID_RE",
    "CandleSource",
    "ExchangePort",
    "is_external",
    "order_identity",
]

INTENT_ID_RE = re.compile(r"^ts[0-9a-f]{30}$")
"""What :func:`tickstep.orders.intent_id` produces: only such a clientOrderId is ours."""

EXTERNAL_PREFIX = "ex"
_CLIENT_ORDER_ID_MAX = 36


def order_identity(
    market: Market, client_order_id: str | None, exchange_order_id: str | None
) -> tuple[str, str]:
    """``(intent_id, client_order_id)`` for an order an exchange reported.

    Ours keep their intent id. An external order gets ``ex`` + 30 hex of a hash of the market and
    its exchange id (or its clientOrderId when the exchange gave no id), so the same order always
    maps to the same synthetic id; it keeps its own clientOrderId when the model can hold it.
    """
    if client_order_id is not None and INTENT_ID_RE.match(client_order_id):
        return client_order_id, client_order_id
    key = exchange_order_id or client_order_id
    if not key:
        raise ValueError("an order needs an exchange id or a clientOrderId to be identified")
    digest = hashlib.sha256(f"{market.key}\x1f{key}".encode()).hexdigest()
    synthetic = EXTERNAL_PREFIX + digest[:30]
    if client_order_id and len(client_order_id) <= _CLIENT_ORDER_ID_MAX:
        return synthetic, client_order_id
    return synthetic, synthetic


def is_external(order: Order) -> bool:
    """True for an order the pipeline did not place (see :func:`order_identity`)."""
    return INTENT_ID_RE.match(order.intent_id) is None


@dataclass(frozen=True)
class OrderRequest:
    """One order to place, tagged with ``client_order_id``; ``price`` only for limit orders.

    ``cost`` (market buys only): spend this much quote; the amount bought is cost / fill price
    within the market's precision, and ``amount`` is only the estimate, sent as the amount to
    an exchange that cannot take a cost.
    """

    market: Market
    side: Side
    order_type: OrderType
    amount: Decimal
    _: KW_ONLY
    client_order_id: str
    price: Decimal | None = None
    cost: Decimal | None = None


@runtime_checkable
class CandleSource(Protocol):
    """Where ingestion reads closed candles: the ccxt adapter or the replay feed."""

    def fetch_ohlcv(
        self, market: Market, since_ms: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        """Closed candles of ``market``, oldest first, open time ``>= since_ms``.

        Without ``since_ms``, the latest ones. Never the candle still forming.
        """
        ...


@runtime_checkable
class ExchangePort(CandleSource, Protocol):
    """What the pipeline needs from an exchange account, and nothing else."""

    def market_rules(self, symbol: str) -> MarketRules:
        """Precision and limits of ``symbol``; FatalExchangeError(bad_symbol) if unknown."""
        ...

    def create_order(self, request: OrderRequest) -> Order:
        """Place the order (:class:`OrderRequest`) once."""
        ...

    def fetch_order_by_client_id(self, market: Market, client_order_id: str) -> Order | None:
        """The order with this clientOrderId, open or closed, or None if the exchange has none."""
        ...

    def fetch_open_orders(self, market: Market) -> list[Order]: ...

    def fetch_closed_orders(self, market: Market, since_ms: int | None = None) -> list[Order]:
        """Filled, cancelled, expired or rejected orders created at or after ``since_ms``."""
        ...

    def fetch_balance(self) -> dict[str, Balance]:
        """Balances by currency code."""
        ...
