"""API function: the dashboard's and operators' HTTP API under ``/api`` (a Cognito JWT on
all but ``/api/health``; CloudFront routes ``/api/*`` here beside the page).

GET /api/health, /status, /positions, /orders[?status=&limit=], /signals[?limit=], /dashboard;
POST /api/halt, /reduce, /resume with ``{"reason": "..."}``: only the ``operators`` group,
recorded as changed by the verified Cognito user. Powertools validates each request: a bad
body or query answers 422 naming the field, and changes nothing. No numpy, no ccxt.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from tickstep.dashboard import reads
from tickstep.dashboard.reads import ApiDeps
from tickstep.http_api import HttpApiEvent, StateChangeRequest, ok, refusal, validation_failed
from tickstep.models import OrderStatus, TradingState
from tickstep.wiring import Dependencies, lambda_entry, make_tracer

logger = Logger()
tracer = make_tracer(os.environ)
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True)


def build_dependencies(**local: Any) -> ApiDeps:
    """The one place this function's clients are made (once per container); ``local``: the
    offline runtime's mark prices and risk denials (tickstep.local)."""
    from tickstep.aws import EventBus
    from tickstep.bootstrap import LazyClient, aws_client
    from tickstep.settings import ApiSettings

    settings = ApiSettings.from_env(os.environ)
    publisher = EventBus(LazyClient("events"), settings.event_bus_name)  # the kill switch only
    return reads.build(settings, aws_client, publisher, **local)


set_dependencies, dependencies = Dependencies(build_dependencies).accessors()


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def _invalid_request(exc: RequestValidationError) -> Response[str]:
    return validation_failed(exc.errors())


@app.get("/api/health")
def health() -> Response[str]:
    """200 or 503, each component named (usecases/health.py); no secret, no position."""
    return reads.health(dependencies())


def _read_route(path: str, read: Any) -> None:
    @app.get(path)
    def get() -> Response[str]:
        return ok(read(dependencies()))


for _path, _read in (
    ("/api/status", reads.status),
    ("/api/positions", reads.positions),
    ("/api/dashboard", reads.dashboard),
):
    _read_route(_path, _read)


@app.get("/api/orders")
def get_orders(
    status: Annotated[OrderStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response[str]:
    return ok(reads.orders(dependencies(), status, limit))


@app.get("/api/signals")
def get_signals(limit: Annotated[int, Query(ge=1, le=50)] = 1) -> Response[str]:
    return ok(reads.signals(dependencies(), limit))


def change_state(state: TradingState, request: StateChangeRequest) -> Response[str]:
    raw = app.current_event.raw_event
    record = reads.change_state(dependencies(), state, request.reason, raw)
    if isinstance(record, Response):  # refused: no verified user, or not an operator
        return record
    metrics.add_metric(
        name="TradingHalted", unit=MetricUnit.Count, value=int(state is TradingState.HALTED)
    )
    logger.warning("trading state set", state=state.value, by=record.changed_by)
    return ok(record.model_dump(mode="json"))


Reason = Annotated[StateChangeRequest, Body()]


def _kill_switch_route(path: str, state: TradingState) -> None:
    @app.post(path)
    def kill_switch(request: Reason) -> Response[str]:
        return change_state(state, request)


for _path, _state in (
    ("/api/halt", TradingState.HALTED),
    ("/api/reduce", TradingState.REDUCING),
    ("/api/resume", TradingState.ACTIVE),
):
    _kill_switch_route(_path, _state)


@lambda_entry(
    logger,
    tracer,
    metrics,
    smoke=dependencies,
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP,
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        HttpApiEvent.model_validate(event)
    except ValidationError as exc:
        return refusal(exc)
    return app.resolve(event, context)
