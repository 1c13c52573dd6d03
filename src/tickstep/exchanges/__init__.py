"""Exchanges behind one port: the ccxt adapter, the paper exchange and the replay feed.

Importing this package never imports ccxt (the ccxt adapter loads it only when used), so the
signal and risk functions do not pay its import cost; nor numpy (the replay feed, which needs
it, loads on first use), so the execute and reconcile functions can ship without it.
"""

from __future__ import annotations

from typing import Any

from tickstep.exchanges.ccxt_adapter import CcxtExchange, build_ccxt_client, translate_ccxt_error
from tickstep.exchanges.errors import (
    AmbiguousOrderError,
    AuthenticationFailed,
    ExchangeError,
    FatalExchangeError,
    OrderNotVisibleYet,
    RetryableExchangeError,
)
from tickstep.exchanges.paper import PaperExchange, PaperState, PriceSource
from tickstep.exchanges.port import CandleSource, ExchangePort, is_external, order_identity


def __getattr__(name: str) -> Any:
    if name in ("ReplayFeed", "SimClock"):
        from tickstep.exchanges import replay

        return getattr(replay, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AmbiguousOrderError",
    "AuthenticationFailed",
    "CandleSource",
    "CcxtExchange",
    "ExchangeError",
    "ExchangePort",
    "FatalExchangeError",
    "OrderNotVisibleYet",
    "PaperExchange",
    "PaperState",
    "PriceSource",
    "ReplayFeed",
    "RetryableExchangeError",
    "SimClock",
    "build_ccxt_client",
    "is_external",
    "order_identity",
    "translate_ccxt_error",
]
