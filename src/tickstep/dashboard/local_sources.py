"""What the offline runtime hands the API function for the dashboard: the replay's mark
price (on AWS the API values positions at the last stored close)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from tickstep.exchanges.errors import FatalExchangeError
from tickstep.models import Market

if TYPE_CHECKING:
    from tickstep.exchanges.replay import ReplayFeed


def feed_prices(feed: ReplayFeed) -> Callable[[Market], Decimal | None]:
    """The price the local report values positions at: the open of the candle in progress."""

    def price(market: Market) -> Decimal | None:
        try:
            return feed.price(market, feed.now_ms())
        except FatalExchangeError:  # no candle in progress: the API falls back to the last close
            return None

    return price
