"""Execute function: the order queue's consumer (the order workflow's SubmitOrder).

In: SQS records whose body is ``{task_token, intent, decision, execution, attempt}``.
Out: for each record, SendTaskSuccess ``{"order": Order}`` or SendTaskFailure with ``error``
one of RetryableExchangeError, AmbiguousOrderError, FatalExchangeError, AuthenticationFailed
and a cause without secrets. The function returns the batch's partial failures: a record fails
(and SQS redelivers it) only when the answer could not be given, e.g. DynamoDB was down.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import SqsModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from tickstep.messages import ExecuteCommand, task_token_of
from tickstep.models import validation_problems
from tickstep.usecases.execute import Answer, OrderPath, submit_order
from tickstep.wiring import Dependencies, lambda_entry, make_tracer

logger = Logger()
tracer = make_tracer(os.environ)
metrics = Metrics()
processor = SqsFifoPartialProcessor()
Deps = OrderPath


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


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    deps = dependencies()
    try:
        # The models refuse numbers out of range (an amount of 1e27 or 1e999999999) and pydantic
        # refuses JSON nested deeper than 200: a validation error either way, never a crash.
        command = ExecuteCommand.model_validate_json(record.body)
    except ValidationError as exc:
        problems = validation_problems(exc, "body")[:1000]
        token = task_token_of(record.body)
        logger.error("invalid order message", errors=problems, answered=token is not None)
        if token is None:
            raise
        deps.tasks.fail(token, "FatalExchangeError", f"invalid order message: {problems}")
        return
    logger.append_keys(intent_id=command.intent.intent_id, execution=command.execution)
    # A failure that cannot be answered raises: SQS delivers the message again.
    done = submit_order(command, deps)
    if done.answer is Answer.PLACED:
        assert done.order is not None
        metrics.add_metric(name="OrdersPlaced", unit=MetricUnit.Count, value=1)
        logger.info(
            "order recorded",
            status=done.order.status.value,
            filled=str(done.order.filled),
            answered=done.answered,
        )
        return
    if done.error == "AuthenticationFailed":
        metrics.add_metric(name="TradingHalted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="OrderErrors", unit=MetricUnit.Count, value=1)
    message = "order path failed for now" if done.answer is Answer.TRANSIENT else "order not placed"
    logger.warning(message, error=done.error, cause=done.cause, answered=done.answered)


@lambda_entry(logger, tracer, metrics, smoke=dependencies, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parse(event=event, model=SqsModel)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
