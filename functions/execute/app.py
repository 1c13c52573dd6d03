"""Execute function: the order queue's consumer (the order workflow's SubmitOrder).

In: SQS records whose body is ``{task_token, intent, decision, execution, attempt}``.
Out: for each record, SendTaskSuccess ``{"order": Order}`` or SendTaskFailure with ``error``
one of RetryableExchangeError, AmbiguousOrderError, FatalExchangeError, AuthenticationFailed
and a cause without secrets. The function returns the batch's partial failures: a record fails
(and SQS redelivers it) only when the answer could not be given, e.g. DynamoDB was down.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import SqsModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from tickstep.messages import ExecuteCommand, task_token_of
from tickstep.models import Market, validation_problems
from tickstep.orders import DEFAULT_GRACE_MS
from tickstep.ports import ControlRepository, OrderRepository, PortfolioRepository, Publisher
from tickstep.usecases.execute import run_execute
from tickstep.wiring import Dependencies, make_tracer

if TYPE_CHECKING:
    from tickstep.exchanges.port import ExchangePort

logger = Logger()
tracer = make_tracer(os.environ)
metrics = Metrics()
processor = SqsFifoPartialProcessor()


@dataclass(frozen=True)
class Session:
    """An exchange for one message: ``commit`` persists its side (the paper account);
    ``secrets`` are values to keep out of every cause and log line."""

    exchange: ExchangePort
    commit: Callable[[], None]
    secrets: Sequence[str] = ()


class TaskAnswers(Protocol):
    """What the execute function needs from Step Functions (tickstep.aws.TaskTokens)."""

    def succeed(self, token: str, output: dict[str, Any]) -> bool: ...

    def fail(self, token: str, error: str, cause: str) -> bool: ...


@dataclass(frozen=True)
class Deps:
    orders: OrderRepository
    portfolio: PortfolioRepository
    control: ControlRepository
    publisher: Publisher
    tasks: TaskAnswers
    open_exchange: Callable[[Market], Session]
    clock: Callable[[], int]
    grace_ms: int = DEFAULT_GRACE_MS


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def build_dependencies(
    *, prices: Any = None, clock: Callable[[], int] | None = None, dynamodb: Any = None
) -> Deps:
    """The one place this function's clients are made (once per container).

    Paper mode: the paper account lives in the portfolio table and fills at ``prices`` (the
    offline runtime hands in its replay feed; in AWS, the latest stored candle's close).
    Sandbox and live: ccxt with the exchange secret, read through Powertools Parameters and
    cached for 5 minutes, so a rotated secret is used within that without a redeploy.
    """
    import boto3

    from tickstep.aws import EventBus, TaskTokens
    from tickstep.settings import Mode, Settings
    from tickstep.stores import CandleStore, ControlStore, OrderStore, PortfolioStore

    settings = Settings.from_env(os.environ)
    dynamodb = dynamodb or boto3.client("dynamodb")
    now = clock or wall_clock_ms
    portfolio = PortfolioStore(dynamodb, settings.require("portfolio_table"))

    if settings.mode is Mode.PAPER:
        from tickstep.exchanges.paper import DEFAULT_RULES
        from tickstep.paper_account import PaperAccount, StoredCandlePrices

        paper = settings.paper_settings()
        markets = [m.market for m in settings.markets()]
        source = prices or StoredCandlePrices(
            CandleStore(dynamodb, settings.require("candles_table")), now
        )

        def open_paper(market: Market) -> Session:
            account = PaperAccount(
                portfolio,
                source,
                paper,
                lambda m: portfolio.rules(m) or DEFAULT_RULES,
                markets,
            )
            return Session(account.open(), account.commit)

        open_exchange: Callable[[Market], Session] = open_paper
    else:
        open_exchange = _ccxt_sessions(settings.require("exchange_secret_arn"), settings.mode)

    return Deps(
        orders=OrderStore(dynamodb, settings.require("orders_table")),
        portfolio=portfolio,
        control=ControlStore(dynamodb, settings.require("control_table")),
        publisher=EventBus(boto3.client("events"), settings.require("event_bus_name")),
        tasks=TaskTokens(boto3.client("stepfunctions")),
        open_exchange=open_exchange,
        clock=now,
    )


def _ccxt_sessions(secret_name: str, mode: str) -> Callable[[Market], Session]:
    """ccxt clients by exchange and key, rebuilt when the (cached) secret changes."""
    from aws_lambda_powertools.utilities.parameters import get_secret

    from tickstep.exchanges.ccxt_adapter import CcxtExchange, build_ccxt_client

    clients: dict[tuple[str, str], CcxtExchange] = {}

    def open_exchange(market: Market) -> Session:
        secret = get_secret(secret_name, max_age=300, transform="json")
        if not isinstance(secret, dict) or not secret.get("apiKey"):
            from tickstep.exchanges.errors import AuthenticationFailed

            raise AuthenticationFailed("the exchange secret has no apiKey", code="no_secret")
        values = tuple(str(v) for v in secret.values() if v)
        # The whole secret is the key: a rotated secret or password behind the same apiKey
        # gets a new client too.
        key = (market.exchange, json.dumps(secret, sort_keys=True, default=str))
        if key not in clients:
            clients.clear()
            clients[key] = CcxtExchange(
                build_ccxt_client(
                    market.exchange,
                    api_key=secret.get("apiKey"),
                    secret=secret.get("secret"),
                    password=secret.get("password"),
                    sandbox=mode == "sandbox",
                ),
                secrets=values,
            )
        return Session(clients[key], lambda: None, values)

    return open_exchange


_deps: Dependencies[Deps] = Dependencies(build_dependencies)
set_dependencies = _deps.set
dependencies = _deps.get


def _fields(exc: ValidationError) -> str:
    return validation_problems(exc, "body")[:1000]


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    deps = dependencies()
    try:
        # The models refuse numbers out of range (an amount of 1e27 or 1e999999999) and pydantic
        # refuses JSON nested deeper than 200: a validation error either way, never a crash.
        command = ExecuteCommand.model_validate_json(record.body)
    except ValidationError as exc:
        token = task_token_of(record.body)
        logger.error("invalid order message", errors=_fields(exc), answered=token is not None)
        if token is None:
            raise
        deps.tasks.fail(token, "FatalExchangeError", f"invalid order message: {_fields(exc)}")
        return
    intent = command.intent
    logger.append_keys(intent_id=intent.intent_id, execution=command.execution)
    session = deps.open_exchange(intent.market)
    outcome = run_execute(
        command,
        exchange=session.exchange,
        orders=deps.orders,
        portfolio=deps.portfolio,
        control=deps.control,
        publisher=deps.publisher,
        now_ms=deps.clock(),
        commit=session.commit,
        grace_ms=deps.grace_ms,
        secrets=session.secrets,
    )
    if outcome.order is not None:
        answered = deps.tasks.succeed(
            command.task_token, {"order": outcome.order.model_dump(mode="json")}
        )
        metrics.add_metric(name="OrdersPlaced", unit=MetricUnit.Count, value=1)
        logger.info(
            "order recorded",
            status=outcome.order.status.value,
            filled=str(outcome.order.filled),
            answered=answered,
        )
        return
    assert outcome.error is not None
    answered = deps.tasks.fail(command.task_token, outcome.error, outcome.cause or "")
    if outcome.error == "AuthenticationFailed":
        metrics.add_metric(name="TradingHalted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="OrderErrors", unit=MetricUnit.Count, value=1)
    logger.warning("order not placed", error=outcome.error, cause=outcome.cause, answered=answered)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parse(event=event, model=SqsModel)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
