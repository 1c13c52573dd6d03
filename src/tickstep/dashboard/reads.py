"""What the API function builds and reads: its dependencies (made once per container, from
its environment and boto3 clients) and the answers of its GET routes, so the handler only
routes, validates and serialises."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response

from tickstep.http_api import CALLER_FIELD, forbidden, verified_caller
from tickstep.models import Market, OrderStatus, TradingState, TradingStateRecord
from tickstep.ports import DenialCounts, Publisher
from tickstep.usecases.control import set_trading_state
from tickstep.usecases.control import status as control_status
from tickstep.usecases.dashboard import DashboardSources, overview

if TYPE_CHECKING:
    from tickstep.settings import ApiSettings


@dataclass(frozen=True)
class ApiDeps(DashboardSources):
    """The dashboard's sources, with what the other routes need besides."""

    publisher: Publisher
    clock: Callable[[], int]
    mode: str
    denials: DenialCounts


DENIAL_DAYS = 7
"""The dashboard's risk denials cover this many UTC days, today included."""


def build(
    settings: ApiSettings,
    aws_client: Callable[[str], Any],
    publisher: Publisher,
    *,
    prices: Callable[[Market], Decimal | None] | None = None,
) -> ApiDeps:
    """``prices``: the offline runtime's mark price (the replay's). Risk denials by reason are
    the risk function's counts for the last :data:`DENIAL_DAYS` UTC days."""
    from tickstep.bootstrap import LazyClient, wall_clock_ms
    from tickstep.dashboard.sources import last_close_price, operations
    from tickstep.stores import (
        CandleStore,
        ControlStore,
        DenialStore,
        OrderStore,
        PortfolioStore,
        SignalStore,
    )

    dynamodb = aws_client("dynamodb")
    cloudwatch, sqs, ssm = (LazyClient(s, aws_client) for s in ("cloudwatch", "sqs", "ssm"))
    ops = operations(settings, cloudwatch, sqs, ssm)

    return ApiDeps(
        markets=[m.market for m in settings.markets()],
        control=ControlStore(dynamodb, settings.control_table),
        orders=OrderStore(dynamodb, settings.orders_table),
        portfolio=PortfolioStore(dynamodb, settings.portfolio_table),
        signals=SignalStore(dynamodb, settings.signals_table) if settings.signals_table else None,
        candles=CandleStore(dynamodb, settings.candles_table),
        publisher=publisher,
        clock=wall_clock_ms,
        mode=settings.mode.value,
        price=prices or last_close_price,
        operations=ops,
        denials=DenialStore(dynamodb, settings.control_table),
    )


def status(deps: ApiDeps) -> dict[str, Any]:
    return {"mode": deps.mode, **control_status(deps.control, deps.orders, deps.portfolio)}


def positions(deps: ApiDeps) -> dict[str, Any]:
    balances = deps.portfolio.balances() or {}
    return {
        "positions": [p.model_dump(mode="json") for p in deps.portfolio.positions()],
        "balances": {k: v.model_dump(mode="json") for k, v in balances.items()},
    }


def orders(deps: ApiDeps, status: OrderStatus | None, limit: int) -> dict[str, Any]:
    statuses = [status] if status else list(OrderStatus)
    entries = deps.orders.by_status(statuses, limit=limit)
    return {"orders": [e.model_dump(mode="json") for e in entries]}


def signals(deps: ApiDeps, limit: int) -> dict[str, Any]:
    found = {
        m.key: [s.model_dump(mode="json") for s in deps.signals.latest(m, limit)]
        if deps.signals
        else []
        for m in deps.markets
    }
    return {"signals": found}


def change_state(
    deps: ApiDeps, state: TradingState, reason: str, raw_event: Mapping[str, Any]
) -> TradingStateRecord | Response[str]:
    """The kill switch for a verified operator; a 403 naming what is missing otherwise."""
    caller = verified_caller(raw_event)
    if caller is None:
        return forbidden(CALLER_FIELD, "no verified caller identity: the route needs a JWT")
    if not caller.operator:
        return forbidden("cognito:groups", "halt, reduce and resume need the operators group")
    return set_trading_state(
        state,
        reason=reason,
        who=caller.name,
        now_ms=deps.clock(),
        control=deps.control,
        publisher=deps.publisher,
    )


def dashboard(deps: ApiDeps) -> dict[str, Any]:
    now = deps.clock()
    today = now // 86_400_000
    first = today - DENIAL_DAYS + 1
    operations = replace(deps.operations, denials=lambda: deps.denials.since(first, today))
    board = overview(replace(deps, operations=operations), now_ms=now, mode=deps.mode)
    return {**board, "risk_denials_days": DENIAL_DAYS}


def health(deps: ApiDeps) -> Response[str]:
    """``GET /api/health``: 200 or 503, each component named (:mod:`tickstep.usecases.health`);
    no secret, no position."""
    from tickstep.http_api import to_json
    from tickstep.usecases.health import check_health

    result = check_health(
        deps.markets,
        candles=deps.candles,
        control=deps.control,
        dead_letter_depths=deps.operations.dead_letters or dict,
        now_ms=deps.clock(),
    )
    body = to_json(result.to_dict())
    return Response(200 if result.healthy else 503, "application/json", body)
