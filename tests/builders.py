"""Stubs and oracles more than one test file needs (the fixtures live in the conftests)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, NamedTuple
from urllib.parse import quote, quote_plus

from tickstep.models import Market

PAPER_ETH_BTC = Market(exchange="paper", symbol="ETH/BTC", timeframe="5m")
"""The market most tests trade: the bundled ETH/BTC 5-minute candles, on the paper exchange."""
BINANCE_ETH_BTC = Market(exchange="binance", symbol="ETH/BTC", timeframe="5m")
"""The same market as a real exchange lists it: what the ccxt adapter and the stack see."""


class FixedPrices:
    """A paper exchange's price source: one price for every market, and a clock; a test moves
    either by setting ``current`` or ``now``."""

    def __init__(self, price: str, now: int) -> None:
        self.current = Decimal(price)
        self.now = now

    def price(self, market: Market, now_ms: int) -> Decimal:
        return self.current

    def now_ms(self) -> int:
        return self.now


class CcxtOrderCall(NamedTuple):
    """The arguments of ccxt's ``create_order`` as CcxtExchange passes them, by position: a
    fake client takes ``*args`` into this, so a call of another shape fails the test."""

    symbol: str
    type: str
    side: str
    amount: str
    price: str | None
    params: dict[str, Any]


def spellings(value: str) -> list[str]:
    """How a request may carry ``value``: as is, URL-encoded (either hex case, ``+`` for a
    space) and JSON-escaped (ASCII-only or not). Written apart from ``tickstep.redaction``, so
    that a test of the redaction checks it against another reading of the same rules."""
    encoded = [
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    ]
    return [*encoded, *(form.lower() for form in encoded if "%" in form)]


def secret_pieces(values: Iterable[str], window: int) -> set[str]:
    """Every ``window``-character piece of any spelling of the values: a text holding one has
    leaked a secret."""
    return {
        form[i : i + window]
        for value in values
        for form in spellings(value)
        for i in range(len(form) - window + 1)
    }
