"""Execute function: the order queue's consumer (the order workflow's SubmitOrder).

In: SQS records whose body is ``{task_token, intent, decision, execution, attempt}``.
Out: for each record, SendTaskSuccess ``{"order": Order}`` or SendTaskFailure with ``error``
one of RetryableExchangeError, AmbiguousOrderError, FatalExchangeError, AuthenticationFailed
and a cause without secrets. The function returns the batch's partial failures: a record fails
(and SQS redelivers it) only when the answer could not be given, e.g. DynamoDB was down.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import SqsModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from tickstep.bootstrap import Session
from tickstep.failures import Kind, classify
from tickstep.messages import ExecuteCommand, task_token_of
from tickstep.models import Market, validation_problems
from tickstep.orders import DEFAULT_GRACE_MS
from tickstep.ports import (
    ControlRepository,
    OrderRepository,
    PortfolioRepository,
    Publisher,
    TaskAnswers,
)
from tickstep.redaction import redact
from tickstep.usecases.execute import run_execute
from tickstep.wiring import Dependencies, lambda_entry, make_tracer

if TYPE_CHECKING:
    pass

logger = Logger()
tracer = make_tracer(os.environ)
metrics = Metrics()
processor = SqsFifoPartialProcessor()


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


def build_dependencies(
    *, prices: Any = None, clock: Callable[[], int] | None = None, dynamodb: Any = None
) -> Deps:
    """The one place this function's clients are made (once per container); the exchange is
    the paper account or ccxt, as :func:`tickstep.bootstrap.exchange_sessions` chooses. The
    offline runtime hands in its replay feed as ``prices`` and its clock."""
    from tickstep.aws import EventBus, TaskTokens
    from tickstep.bootstrap import aws_client, exchange_sessions, wall_clock_ms
    from tickstep.settings import ExecuteSettings
    from tickstep.stores import ControlStore, OrderStore, PortfolioStore

    settings = ExecuteSettings.from_env(os.environ)
    dynamodb = dynamodb or aws_client("dynamodb")
    now = clock or wall_clock_ms
    portfolio = PortfolioStore(dynamodb, settings.portfolio_table)
    return Deps(
        orders=OrderStore(dynamodb, settings.orders_table),
        portfolio=portfolio,
        control=ControlStore(dynamodb, settings.control_table),
        publisher=EventBus(aws_client("events"), settings.event_bus_name),
        tasks=TaskTokens(aws_client("stepfunctions")),
        open_exchange=exchange_sessions(
            settings, portfolio, dynamodb=dynamodb, prices=prices, clock=now
        ),
        clock=now,
    )


set_dependencies, dependencies = Dependencies(build_dependencies).accessors()


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
    secrets: Sequence[str] = ()
    try:
        session = deps.open_exchange(intent.market)
        secrets = session.secrets
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
            secrets=secrets,
        )
    except Exception as exc:
        if classify(exc) is not Kind.RETRYABLE:
            raise
        # DynamoDB or another AWS dependency failed for now: SubmitOrder retries TransientError
        # with back-off and jitter, and the next attempt looks the order up before it would
        # ever send it again. If the answer cannot be given either, SQS delivers the message
        # again (the raise).
        cause = redact(f"{type(exc).__name__}: {exc}", secrets)[:1000]
        answered = deps.tasks.fail(command.task_token, "TransientError", cause)
        metrics.add_metric(name="OrderErrors", unit=MetricUnit.Count, value=1)
        logger.warning(
            "order path failed for now", error="TransientError", cause=cause, answered=answered
        )
        return
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


@lambda_entry(logger, tracer, metrics, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parse(event=event, model=SqsModel)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
