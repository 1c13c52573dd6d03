"""Ingest: store each market's newly closed candles and publish them on the bus."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tickstep.messages import CANDLES_PER_EVENT, EVENT_CANDLES_CLOSED, SOURCE_INGEST
from tickstep.models import (
    Candle,
    CandleClosed,
    CandlesClosed,
    Market,
    MarketRules,
)
from tickstep.ports import CandleRepository, Publisher, RulesCache, StaleWrite

if TYPE_CHECKING:
    from tickstep.exchanges.port import CandleSource


MAX_REPUBLISHED = 1000
"""Candles an earlier run stored but could not publish that a later run still publishes (as
many as one fetch brings); older ones would only be stale decisions."""


@dataclass
class IngestReport:
    candles: int = 0
    events: int = 0
    failures: dict[str, str] = field(default_factory=dict)


@dataclass
class IngestPorts:
    """What the ingest function works with (its handler's dependencies, ``tickstep run``'s)."""

    markets: Sequence[Market]
    source: CandleSource
    candles: CandleRepository
    publisher: Publisher
    rules: Callable[[Market], MarketRules] | None = None
    """Each market's rules (precision, limits), cached in ``portfolio`` for the order path."""
    portfolio: RulesCache | None = None
    cached_rules: set[str] = field(default_factory=set)
    """Markets whose rules this container has cached already (once per cold start)."""


def ingest(ports: IngestPorts, *, backfill: int = 200) -> IngestReport:
    """Store each market's newly closed candles, then publish what is stored and not yet
    published, then move each market's publish cursor.

    One ``CandlesClosed`` event carries every market's new candles (up to
    ``CANDLES_PER_EVENT`` each), so the decide workflow runs once per tick, not once per market.
    A market seen for the first time gets ``backfill`` candles (a strategy's warmup) but only
    its newest is published: older ones would only be stale decisions. Ingest is the candles'
    only writer, and stores before it publishes, so every candle an event names is stored
    when the signal and risk functions read it. The cursor moves only after the event is on
    the bus: if publishing fails, the next run publishes those candles (a candle published
    twice is harmless, the intent id makes it one order; one never published would be a
    decision lost). One market's failure is reported and the others go on. With ``rules``
    and ``portfolio``, each market's rules are cached once per ``cached_rules`` set (per cold
    start) for the risk function.
    """
    markets, source, candles = ports.markets, ports.source, ports.candles
    from tickstep.exchanges.errors import ExchangeError

    report = IngestReport()
    closed: list[CandleClosed] = []
    through: dict[Market, int] = {}
    for market in markets:
        try:
            last = candles.latest_timestamp(market)
            if last is None:
                new = source.fetch_ohlcv(market, None, backfill)
                published = new[-1].timestamp - 1 if new else None
            else:
                fetched = source.fetch_ohlcv(market, last + market.timeframe_ms, 1000)
                new = [c for c in fetched if c.timestamp > last]
                published = candles.published_through(market)
                # No cursor yet (a stack from before it): everything stored was published.
                published = last if published is None else published
            if new:
                candles.put(market, new)
                report.candles += len(new)
            if published is not None:
                unpublished = _stored_after(candles, market, published, new, last)
                closed += [CandleClosed(market=market, candle=c) for c in unpublished]
                if unpublished:
                    through[market] = unpublished[-1].timestamp
        except (ExchangeError, ValueError, StaleWrite) as exc:
            report.failures[market.key] = f"{type(exc).__name__}: {exc}"[:300]
    batches = [
        CandlesClosed(candles=tuple(closed[i : i + CANDLES_PER_EVENT])).model_dump(mode="json")
        for i in range(0, len(closed), CANDLES_PER_EVENT)
    ]
    if batches:
        ports.publisher.publish(SOURCE_INGEST, EVENT_CANDLES_CLOSED, batches)
    report.events = len(closed)
    for market, time_ms in through.items():
        candles.mark_published(market, time_ms)
    for market in markets:
        if ports.rules is None or ports.portfolio is None:
            break
        if market.key not in ports.cached_rules and market.key not in report.failures:
            try:
                ports.portfolio.put_rules(market, ports.rules(market))
                ports.cached_rules.add(market.key)
            except Exception as exc:  # a cache: risk falls back, ingestion goes on
                report.failures[f"rules:{market.key}"] = f"{type(exc).__name__}: {exc}"[:300]
    return report


def _stored_after(
    candles: CandleRepository,
    market: Market,
    published: int,
    new: Sequence[Candle],
    last: int | None,
) -> list[Candle]:
    """The stored candles opened after ``published``, oldest first: this run's new ones, and
    before them any that an earlier run stored but failed to publish."""
    if last is None or published >= last:
        return [c for c in new if c.timestamp > published]
    missed = min((last - published) // market.timeframe_ms, MAX_REPUBLISHED)
    earlier = candles.latest(market, missed + 1, until_ms=last)
    return [c for c in earlier if c.timestamp > published] + list(new)
