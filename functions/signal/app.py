"""Signal function: ComputeSignal of the decide workflow.

In: the ``CandleClosed`` JSON (the workflow passes the event's ``detail``).
Out: ``{"signal": Signal, "intent": OrderIntent | null}``; null for HOLD and for a SELL with
nothing held (the workflow's NoIntent).
Errors: a failure worth retrying (DynamoDB throttled past the SDK's retries, a 5xx, a timeout)
leaves as ``TransientError``, which ComputeSignal retries; malformed input as
``ValidationError`` or ``UnknownMarketError``, which it dead-letters (:mod:`tickstep.failures`).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tickstep.failures import name_transient_failures
from tickstep.models import CandleClosed, SignalAction
from tickstep.usecases.signal import SignalPorts, compute_signal
from tickstep.wiring import Dependencies, lambda_entry, make_tracer

logger = Logger()
tracer = make_tracer(os.environ)
metrics = Metrics()


Deps = SignalPorts


def build_dependencies() -> Deps:
    """The one place this function's clients are made (once per container)."""
    from tickstep.bootstrap import aws_client
    from tickstep.settings import SignalSettings
    from tickstep.stores import CandleStore, PortfolioStore, SignalStore

    settings = SignalSettings.from_env(os.environ)
    dynamodb = aws_client("dynamodb")
    return Deps(
        markets={m.market.key: m for m in settings.market_configs()},
        candles=CandleStore(dynamodb, settings.candles_table),
        portfolio=PortfolioStore(dynamodb, settings.portfolio_table),
        signals=SignalStore(dynamodb, settings.signals_table) if settings.signals_table else None,
    )


set_dependencies, dependencies = Dependencies(build_dependencies).accessors()


@lambda_entry(logger, tracer, metrics, smoke=dependencies, clear_state=True)
@name_transient_failures
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # pydantic directly: the Powertools Parser package loads every AWS event model (~60 ms of
    # cold start) and this input is our own model, not an AWS envelope.
    # The models' number types refuse what DynamoDB cannot store (a price of 1e308, 1e999999999).
    closed = CandleClosed.model_validate(event)
    logger.append_keys(market=closed.market.key, candle_time=closed.candle.timestamp)
    deps = dependencies()
    result = compute_signal(closed, deps)
    metrics.add_dimension(name="action", value=result.signal.action.value)
    metrics.add_metric(name="SignalsComputed", unit=MetricUnit.Count, value=1)
    # HOLD is most ticks: at INFO it would be most of the log bill (docs/decisions/0003).
    log = logger.debug if result.signal.action is SignalAction.HOLD else logger.info
    log(
        "signal computed",
        action=result.signal.action.value,
        reason=result.signal.reason,
        intent_id=result.intent.intent_id if result.intent else None,
    )
    return result.model_dump(mode="json")
