"""The replay feed: bundled candles revealed by a clock, priced by the next-open rule."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickstep.candles import CandleArrays, bundled_file, load_csv, market_from_filename
from tickstep.exchanges import CandleSource, FatalExchangeError, ReplayFeed, SimClock
from tickstep.models import Market

ETH_BTC_FILE = bundled_file("ETH-BTC_5m.csv")
MARKET = market_from_filename(ETH_BTC_FILE)
ARRAYS = load_csv(ETH_BTC_FILE)
FIVE_MIN = 300_000
FIRST = int(ARRAYS.timestamp[0])
LAST_CLOSE = int(ARRAYS.timestamp[-1]) + FIVE_MIN


def feed_at(now_ms: int, series: dict[Market, CandleArrays] | None = None) -> ReplayFeed:
    return ReplayFeed(series or {MARKET: ARRAYS}, SimClock(now_ms))


def test_no_candle_is_visible_before_the_first_one_closes() -> None:
    assert feed_at(FIRST + FIVE_MIN - 1).closed_candles(MARKET) == []


def test_a_candle_becomes_visible_exactly_at_its_close_time() -> None:
    candles = feed_at(FIRST + FIVE_MIN).closed_candles(MARKET)
    assert [c.timestamp for c in candles] == [FIRST]
    assert candles[0].open == Decimal("0.0984")


@settings(max_examples=60, deadline=None)
@given(now=st.integers(min_value=FIRST - FIVE_MIN, max_value=LAST_CLOSE + FIVE_MIN))
def test_replay_returns_every_closed_candle_and_never_an_unclosed_one(now: int) -> None:
    candles = feed_at(now).closed_candles(MARKET)
    expected = int(np.sum(ARRAYS.timestamp + FIVE_MIN <= now))
    assert len(candles) == expected
    assert all(c.timestamp + FIVE_MIN <= now for c in candles)


def test_without_since_limit_gives_the_latest_closed_candles() -> None:
    now = FIRST + 10 * FIVE_MIN + 1
    candles = feed_at(now).fetch_ohlcv(MARKET, limit=3)
    assert [c.timestamp for c in candles] == [int(t) for t in ARRAYS.timestamp[7:10]]


def test_with_since_limit_gives_the_first_closed_candles_from_since() -> None:
    now = FIRST + 10 * FIVE_MIN
    candles = feed_at(now).fetch_ohlcv(MARKET, since_ms=FIRST + 2 * FIVE_MIN, limit=2)
    assert [c.timestamp for c in candles] == [int(t) for t in ARRAYS.timestamp[2:4]]


def test_since_in_the_future_gives_no_candles() -> None:
    assert feed_at(FIRST + 10 * FIVE_MIN).fetch_ohlcv(MARKET, since_ms=LAST_CLOSE) == []


def test_price_at_a_candle_close_is_the_next_candles_open() -> None:
    close_of_first = FIRST + FIVE_MIN
    feed = feed_at(close_of_first)
    assert feed.price(MARKET, feed.now_ms()) == Decimal(repr(float(ARRAYS.open[1])))
    assert feed.price(MARKET, close_of_first) == Decimal("0.09946999")


def test_price_within_a_candle_is_that_candles_open() -> None:
    assert feed_at(0).price(MARKET, FIRST + FIVE_MIN - 1) == Decimal("0.0984")


@pytest.mark.parametrize("now", [FIRST - 1, LAST_CLOSE, LAST_CLOSE + 10 * FIVE_MIN])
def test_price_outside_the_data_raises_no_price(now: int) -> None:
    with pytest.raises(FatalExchangeError) as caught:
        feed_at(now).price(MARKET, now)
    assert caught.value.code == "no_price"
    assert MARKET.key in str(caught.value)


def test_price_in_a_gap_of_the_data_raises_no_price() -> None:
    path = bundled_file("XMR-BTC_5m.csv")
    market, arrays = market_from_filename(path), load_csv(path)
    gap = int(np.flatnonzero(np.diff(arrays.timestamp) > FIVE_MIN)[0])
    inside_gap = int(arrays.timestamp[gap]) + FIVE_MIN
    with pytest.raises(FatalExchangeError) as caught:
        feed_at(inside_gap, {market: arrays}).price(market, inside_gap)
    assert caught.value.code == "no_price"


def test_unknown_market_is_bad_symbol() -> None:
    other = Market(exchange="paper", symbol="DOGE/BTC", timeframe="5m")
    with pytest.raises(FatalExchangeError) as caught:
        feed_at(LAST_CLOSE).fetch_ohlcv(other)
    assert caught.value.code == "bad_symbol"


def test_same_symbol_on_another_timeframe_is_another_market() -> None:
    one_minute = Market(exchange="paper", symbol="ETH/BTC", timeframe="1m")
    with pytest.raises(FatalExchangeError):
        feed_at(LAST_CLOSE).price(one_minute, FIRST)


def test_advancing_the_clock_reveals_the_next_candle() -> None:
    feed = feed_at(FIRST + FIVE_MIN)
    assert len(feed.closed_candles(MARKET)) == 1
    assert feed.clock.advance(FIVE_MIN) == FIRST + 2 * FIVE_MIN
    assert len(feed.closed_candles(MARKET)) == 2


def test_clock_refuses_to_advance_backwards() -> None:
    with pytest.raises(ValueError, match="advance"):
        SimClock(10).advance(-1)


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        feed_at(LAST_CLOSE).closed_candles(MARKET, limit=-1)


def test_replay_feed_is_a_candle_source() -> None:
    assert isinstance(feed_at(0), CandleSource)
