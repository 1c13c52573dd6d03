"""API function: the dashboard's and operators' HTTP API, every route under ``/api``
(API Gateway HTTP API; a Cognito JWT on all but ``/api/health``; CloudFront serves the page and
routes ``/api/*`` here, one origin).

GET /api/health, /status, /positions, /orders[?status=&limit=], /signals[?limit=], /dashboard;
POST /api/halt, /reduce and /resume with ``{"reason": "..."}`` (the kill switch: only the
``operators`` group, recorded as changed by the Cognito user API Gateway verified, never by
what the body says). Powertools validates every request: a bad body or query answers 422
naming the field, and changes nothing. No numpy, no ccxt: this function must start fast.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field, ValidationError

from tickstep.http_api import (
    CALLER_FIELD,
    HttpApiEvent,
    StateChangeRequest,
    forbidden,
    invalid,
    ok,
    validation_failed,
    verified_caller,
)
from tickstep.models import OrderStatus, TradingState
from tickstep.dashboard import reads
from tickstep.dashboard.reads import ApiDeps
from tickstep.usecases.control import set_trading_state
from tickstep.wiring import Dependencies, lambda_entry, make_tracer

logger = Logger()
tracer = make_tracer(os.environ)
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True)


def build_dependencies(**local: Any) -> ApiDeps:
    """The one place this function's clients are made (once per container); ``local``: the
    offline runtime's mark prices and risk denials (tickstep.local)."""
    from tickstep.bootstrap import aws_client

    return reads.build(os.environ, aws_client, **local)


set_dependencies, dependencies = Dependencies(build_dependencies).accessors()


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[str]:
    return validation_failed(exc.errors())


@app.get("/api/health")
def health() -> Response[str]:
    return ok({"status": "ok"})


@app.get("/api/status")
def get_status() -> Response[str]:
    return ok(reads.status(dependencies()))


@app.get("/api/positions")
def get_positions() -> Response[str]:
    return ok(reads.positions(dependencies()))


@app.get("/api/orders")
def get_orders(
    status: Annotated[OrderStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response[str]:
    return ok(reads.orders(dependencies(), status, limit))


@app.get("/api/signals")
def get_signals(limit: Annotated[int, Query(ge=1, le=50)] = 1) -> Response[str]:
    return ok(reads.signals(dependencies(), limit))


@app.get("/api/dashboard")
def get_dashboard() -> Response[str]:
    return ok(reads.dashboard(dependencies()))


def _change_state(state: TradingState, request: StateChangeRequest) -> Response[str]:
    caller = verified_caller(app.current_event.raw_event)
    if caller is None:
        return forbidden(CALLER_FIELD, "no verified caller identity: the route needs a JWT")
    if not caller.operator:
        return forbidden("cognito:groups", "halt, reduce and resume need the operators group")
    deps = dependencies()
    record = set_trading_state(
        state,
        reason=request.reason,
        who=caller.name,
        now_ms=deps.clock(),
        control=deps.control,
        publisher=deps.publisher,
    )
    metrics.add_metric(
        name="TradingHalted", unit=MetricUnit.Count, value=int(state is TradingState.HALTED)
    )
    logger.warning("trading state set", state=state.value, by=record.changed_by)
    return ok(record.model_dump(mode="json"))


Body = Annotated[StateChangeRequest, Field()]


@app.post("/api/halt")
def halt(request: Body) -> Response[str]:
    return _change_state(TradingState.HALTED, request)


@app.post("/api/reduce")
def reduce(request: Body) -> Response[str]:
    return _change_state(TradingState.REDUCING, request)


@app.post("/api/resume")
def resume(request: Body) -> Response[str]:
    return _change_state(TradingState.ACTIVE, request)


@lambda_entry(logger, tracer, metrics, correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        HttpApiEvent.model_validate(event)
    except ValidationError as exc:
        refused = invalid(exc)
        return {
            "statusCode": refused.status_code,
            "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "body": refused.body,
            "isBase64Encoded": False,
        }
    return app.resolve(event, context)
