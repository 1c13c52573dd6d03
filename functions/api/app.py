"""API function: the operator's HTTP API (API Gateway HTTP API, IAM auth on all but /health).

GET /health, /status, /positions, /orders[?status=&limit=], /signals[?limit=];
POST /halt and /resume with ``{"reason": "..."}`` (the kill switch: sets the trading state and
publishes ``TradingStateChanged``, recorded as changed by the caller's IAM identity that API
Gateway verified, never by anything the body says). A bad body or query answers 422 naming
the field, and changes nothing. No numpy, no ccxt: this function must start fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from tickstep.http_api import (
    CALLER_FIELD,
    HttpApiEvent,
    OrdersQuery,
    SignalsQuery,
    StateChangeRequest,
    forbidden,
    invalid,
    ok,
    verified_caller,
)
from tickstep.models import Market, OrderStatus, TradingState
from tickstep.ports import (
    ControlRepository,
    OrderRepository,
    PortfolioRepository,
    Publisher,
    SignalRepository,
)
from tickstep.usecases.control import set_trading_state, status
from tickstep.wiring import Dependencies, lambda_entry, make_tracer

logger = Logger()
tracer = make_tracer(os.environ)
metrics = Metrics()
app = APIGatewayHttpResolver()


@dataclass(frozen=True)
class Deps:
    markets: list[Market]
    control: ControlRepository
    orders: OrderRepository
    portfolio: PortfolioRepository
    signals: SignalRepository | None
    publisher: Publisher
    clock: Callable[[], int]
    mode: str


def build_dependencies() -> Deps:
    """The one place this function's clients are made (once per container)."""
    from tickstep.aws import EventBus
    from tickstep.bootstrap import aws_client, wall_clock_ms
    from tickstep.settings import ApiSettings
    from tickstep.stores import ControlStore, OrderStore, PortfolioStore, SignalStore

    settings = ApiSettings.from_env(os.environ)
    dynamodb = aws_client("dynamodb")
    return Deps(
        markets=[m.market for m in settings.markets()],
        control=ControlStore(dynamodb, settings.control_table),
        orders=OrderStore(dynamodb, settings.orders_table),
        portfolio=PortfolioStore(dynamodb, settings.portfolio_table),
        signals=SignalStore(dynamodb, settings.signals_table) if settings.signals_table else None,
        publisher=EventBus(aws_client("events"), settings.event_bus_name),
        clock=wall_clock_ms,
        mode=settings.mode.value,
    )


set_dependencies, dependencies = Dependencies(build_dependencies).accessors()


@app.get("/health")
def health() -> Response[str]:
    return ok({"status": "ok"})


@app.get("/status")
def get_status() -> Response[str]:
    deps = dependencies()
    return ok({"mode": deps.mode, **status(deps.control, deps.orders, deps.portfolio)})


@app.get("/positions")
def get_positions() -> Response[str]:
    deps = dependencies()
    balances = deps.portfolio.balances() or {}
    return ok(
        {
            "positions": [p.model_dump(mode="json") for p in deps.portfolio.positions()],
            "balances": {k: v.model_dump(mode="json") for k, v in balances.items()},
        }
    )


@app.get("/orders")
def get_orders() -> Response[str]:
    try:
        query = OrdersQuery.model_validate(app.current_event.query_string_parameters or {})
    except ValidationError as exc:
        return invalid(exc)
    statuses = [query.status] if query.status else list(OrderStatus)
    entries = dependencies().orders.by_status(statuses, limit=query.limit)
    return ok({"orders": [e.model_dump(mode="json") for e in entries]})


@app.get("/signals")
def get_signals() -> Response[str]:
    try:
        query = SignalsQuery.model_validate(app.current_event.query_string_parameters or {})
    except ValidationError as exc:
        return invalid(exc)
    deps = dependencies()
    signals = deps.signals
    found = {
        m.key: [s.model_dump(mode="json") for s in signals.latest(m, query.limit)]
        if signals
        else []
        for m in deps.markets
    }
    return ok({"signals": found})


def _change_state(state: TradingState) -> Response[str]:
    who = verified_caller(app.current_event.raw_event)
    if who is None:
        return forbidden(CALLER_FIELD, "no verified caller identity: the route needs IAM auth")
    try:
        # pydantic's own JSON parser: a body nested 5,000 deep is "recursion limit exceeded",
        # a 422, where json.loads would raise RecursionError (a 500).
        body = app.current_event.decoded_body
        request = (
            StateChangeRequest.model_validate_json(body)
            if body
            else StateChangeRequest.model_validate({})
        )
    except (ValidationError, ValueError) as exc:
        return invalid(exc)
    deps = dependencies()
    record = set_trading_state(
        state,
        reason=request.reason,
        who=who,
        now_ms=deps.clock(),
        control=deps.control,
        publisher=deps.publisher,
    )
    metrics.add_metric(
        name="TradingHalted", unit=MetricUnit.Count, value=int(state is TradingState.HALTED)
    )
    logger.warning("trading state set", state=state.value, by=record.changed_by)
    return ok(record.model_dump(mode="json"))


@app.post("/halt")
def halt() -> Response[str]:
    return _change_state(TradingState.HALTED)


@app.post("/resume")
def resume() -> Response[str]:
    return _change_state(TradingState.ACTIVE)


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
