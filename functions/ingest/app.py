"""Ingest function: on the schedule, publish every market's newly closed candles in one
``CandlesClosed`` event on the project bus (Source ``tickstep.ingest``), then store them.

In: the EventBridge scheduled event. Out: ``{"candles": stored, "events": CandleClosed items
published, "failures": {...}}``;
one market's failure is reported (and logged) without stopping the others.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tickstep.models import Market, MarketRules
from tickstep.usecases.ingest import IngestPorts, ingest
from tickstep.wiring import Dependencies, make_tracer, scheduled_entry

if TYPE_CHECKING:
    from tickstep.exchanges.port import CandleSource

logger = Logger()
tracer = make_tracer(os.environ)
metrics = Metrics()


Deps = IngestPorts


def build_dependencies(*, source: CandleSource | None = None) -> Deps:
    """The one place this function's clients are made (once per container); the offline
    runtime hands in its replay feed as ``source``."""
    from tickstep.aws import EventBus
    from tickstep.bootstrap import aws_client, candle_source
    from tickstep.settings import IngestSettings, Mode
    from tickstep.stores import CandleStore, PortfolioStore

    settings = IngestSettings.from_env(os.environ)
    dynamodb = aws_client("dynamodb")
    rules: Callable[[Market], MarketRules] | None = None
    if source is None:
        source, rules = candle_source(settings)
    elif settings.mode is Mode.PAPER:
        from tickstep.exchanges.paper import DEFAULT_RULES

        def rules(market: Market) -> MarketRules:
            return DEFAULT_RULES

    return Deps(
        markets=[m.market for m in settings.markets()],
        source=source,
        candles=CandleStore(dynamodb, settings.candles_table),
        publisher=EventBus(aws_client("events"), settings.event_bus_name),
        rules=rules,
        portfolio=PortfolioStore(dynamodb, settings.portfolio_table),
    )


set_dependencies, dependencies = Dependencies(build_dependencies).accessors()


@scheduled_entry(logger, tracer, metrics, smoke=dependencies)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = ingest(dependencies())
    metrics.add_metric(name="CandlesIngested", unit=MetricUnit.Count, value=report.candles)
    metrics.add_metric(name="IngestFailures", unit=MetricUnit.Count, value=len(report.failures))
    for market, error in report.failures.items():
        logger.error("market not ingested", market=market, error=error)
    logger.info("ingested", candles=report.candles, events=report.events)
    return {"candles": report.candles, "events": report.events, "failures": report.failures}
