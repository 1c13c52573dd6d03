"""Bundled candles served by a clock, as if the market were live: the offline exchange feed.

A candle is visible only once its close time (open time + timeframe) has passed on the clock,
and the price at a moment is the open of the candle in progress then. So an order placed when
candle ``i`` closes fills at candle ``i + 1``'s open — the backtest's next-open rule — and no
test or replay can see a price from the future.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import numpy as np

from tickstep.candles import CandleArrays
from tickstep.exchanges.errors import FatalExchangeError
from tickstep.models import Candle, Market

__all__ = ["ReplayFeed", "SimClock"]


class SimClock:
    """A settable clock in epoch milliseconds, shared by the feed and whoever drives it."""

    def __init__(self, now_ms: int = 0) -> None:
        self._now = now_ms

    def now_ms(self) -> int:
        return self._now

    def set(self, now_ms: int) -> None:
        self._now = now_ms

    def advance(self, ms: int) -> int:
        """Move forward by ``ms`` (never back: use :meth:`set` to rewind on purpose)."""
        if ms < 0:
            raise ValueError("advance: ms must be >= 0")
        self._now += ms
        return self._now


class ReplayFeed:
    """Candles of several markets by the clock: a candle source and a price source in one."""

    def __init__(self, series: Mapping[Market, CandleArrays], clock: SimClock) -> None:
        self._series = dict(series)
        self._clock = clock

    @property
    def clock(self) -> SimClock:
        return self._clock

    def now_ms(self) -> int:
        return self._clock.now_ms()

    def _arrays(self, market: Market) -> CandleArrays:
        arrays = self._series.get(market)
        if arrays is None:
            known = ", ".join(m.key for m in self._series) or "none"
            raise FatalExchangeError(
                f"no replay data for {market.key}; have {known}", code="bad_symbol"
            )
        return arrays

    def closed_candles(
        self, market: Market, since_ms: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        """Candles closed by now, open time ``>= since_ms``: the first ``limit`` of them from
        ``since_ms``, or the latest ``limit`` without it (as ccxt's ``fetch_ohlcv`` does)."""
        arrays = self._arrays(market)
        latest_open = self.now_ms() - market.timeframe_ms  # closed iff open + length <= now
        end = int(np.searchsorted(arrays.timestamp, latest_open, side="right"))
        start = 0 if since_ms is None else int(np.searchsorted(arrays.timestamp, since_ms))
        if limit is not None:
            if limit < 0:
                raise ValueError("limit must be >= 0")
            if since_ms is None:
                start = max(start, end - limit)
            else:
                end = min(end, start + limit)
        return [arrays.candle(i) for i in range(start, end)]

    def fetch_ohlcv(
        self, market: Market, since_ms: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        return self.closed_candles(market, since_ms, limit)

    def price(self, market: Market, now_ms: int) -> Decimal:
        """Open of the candle in progress at ``now_ms``; there must be one (no gaps, no
        extrapolation past either end of the data)."""
        arrays = self._arrays(market)
        i = int(np.searchsorted(arrays.timestamp, now_ms, side="right")) - 1
        if i < 0 or now_ms >= int(arrays.timestamp[i]) + market.timeframe_ms:
            first = int(arrays.timestamp[0]) if len(arrays) else None
            last = int(arrays.timestamp[-1]) + market.timeframe_ms if len(arrays) else None
            raise FatalExchangeError(
                f"no {market.key} candle in progress at {now_ms} (data covers {first}..{last})",
                code="no_price",
            )
        return Decimal(repr(float(arrays.open[i])))
