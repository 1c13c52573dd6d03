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
from tickstep.ports import CandleRepository, PortfolioRepository, Publisher

if TYPE_CHECKING:
    from tickstep.exchanges.port import CandleSource


@dataclass
class IngestReport:
    candles: int = 0
    events: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def ingest(
    markets: Sequence[Market],
    *,
    source: CandleSource,
    candles: CandleRepository,
    publisher: Publisher,
    backfill: int = 200,
    rules: Callable[[Market], MarketRules] | None = None,
    portfolio: PortfolioRepository | None = None,
    cached_rules: set[str] | None = None,
) -> IngestReport:
    """Publish each market's newly closed candles, then store them.

    One ``CandlesClosed`` event carries every market's new candles (up to
    ``CANDLES_PER_EVENT`` each), so the decide workflow runs once per tick, not once per market.
    A market seen for the first time gets ``backfill`` candles (a strategy's warmup) but only
    its newest is published: older ones would only be stale decisions. Publishing comes first:
    if it fails nothing is stored and the retried run fetches the same candles again (a
    candle published twice is harmless, the intent id makes it one order; one stored but never
    published would be a decision lost). One market's failure is reported and the others go
    on. With ``rules`` and ``portfolio``, each market's rules are cached once per
    ``cached_rules`` set (per cold start) for the risk function.
    """
    from tickstep.exchanges.errors import ExchangeError

    report = IngestReport()
    fetched_ok: list[tuple[Market, list[Candle]]] = []
    closed: list[CandleClosed] = []
    for market in markets:
        try:
            last = candles.latest_timestamp(market)
            if last is None:
                new = source.fetch_ohlcv(market, None, backfill)
                publish = new[-1:]
            else:
                fetched = source.fetch_ohlcv(market, last + market.timeframe_ms, 1000)
                new = [c for c in fetched if c.timestamp > last]
                publish = new
            closed += [CandleClosed(market=market, candle=c) for c in publish]
            fetched_ok.append((market, new))
        except (ExchangeError, ValueError) as exc:
            report.failures[market.key] = f"{type(exc).__name__}: {exc}"[:300]
    batches = [
        CandlesClosed(candles=tuple(closed[i : i + CANDLES_PER_EVENT])).model_dump(mode="json")
        for i in range(0, len(closed), CANDLES_PER_EVENT)
    ]
    if batches:
        publisher.publish(SOURCE_INGEST, EVENT_CANDLES_CLOSED, batches)
    report.events = len(closed)
    for market, new in fetched_ok:
        if new:
            candles.put(market, new)
            report.candles += len(new)
        if rules is None or portfolio is None or cached_rules is None:
            continue
        if market.key not in cached_rules:
            try:
                portfolio.put_rules(market, rules(market))
                cached_rules.add(market.key)
            except Exception as exc:  # a cache: risk falls back, ingestion goes on
                report.failures[f"rules:{market.key}"] = f"{type(exc).__name__}: {exc}"[:300]
    return report
