"""Execute: place one approved intent exactly once, record the exchange's answer in the
ledger, and answer the order workflow's task.

:func:`submit_order` is the whole of the execute function's work on one order message (the
handler adds the message's parsing, logs and metrics); ``tickstep run`` calls it too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from tickstep.failures import Kind, classify
from tickstep.messages import ExecuteCommand
from tickstep.models import (
    Market,
    Order,
    OrderStatus,
    TradingState,
)
from tickstep.orders import DEFAULT_GRACE_MS, TERMINAL
from tickstep.portfolio import settle_account
from tickstep.ports import (
    ControlRepository,
    Desk,
    ExchangeSession,
    InvalidTransition,
    OrderRepository,
    PortfolioRepository,
    Publisher,
    StaleWrite,
    TaskAnswers,
)
from tickstep.redaction import redact
from tickstep.usecases.control import set_trading_state

if TYPE_CHECKING:
    pass


def execute_order(command: ExecuteCommand, desk: Desk) -> Order:
    """Place the intent at most once and record what the exchange says.

    Look the order up by clientOrderId first and send only when the exchange does not have
    it, and never within the desk's ``grace_ms`` of an earlier send (exchanges can report a
    fresh order as not found for a while). The session's ``commit`` persists the exchange's
    side (the paper account) before the ledger and the position change. Raises only the
    domain's exchange errors.
    """
    from tickstep.exchanges.errors import (
        AmbiguousOrderError,
        FatalExchangeError,
        OrderNotVisibleYet,
        RetryableExchangeError,
    )
    from tickstep.exchanges.port import OrderRequest

    exchange, orders, portfolio, now_ms = (
        desk.session.exchange,
        desk.orders,
        desk.portfolio,
        desk.now_ms,
    )
    intent = command.intent
    entry = orders.get(intent.intent_id)
    if entry is None:
        raise FatalExchangeError(f"{intent.intent_id} is not in the ledger", code="not_recorded")
    if entry.status in TERMINAL:
        if entry.order is not None:
            return entry.order
        raise FatalExchangeError(f"already {entry.status.value}", code="already_settled")
    order = exchange.fetch_order_by_client_id(intent.market, intent.client_order_id)
    if order is None:
        if entry.sent_at is not None and now_ms - entry.sent_at < desk.grace_ms:
            raise OrderNotVisibleYet(f"sent at {entry.sent_at}, not visible yet")
        if entry.status not in (OrderStatus.NEW, OrderStatus.UNKNOWN):
            raise AmbiguousOrderError(
                f"ledger says {entry.status.value}, exchange has no such order",
                code="ledger_mismatch",
            )
        try:
            orders.mark_sent(intent.intent_id, now_ms)
        except StaleWrite as exc:
            raise AmbiguousOrderError(str(exc), code="ledger_mismatch") from exc
        assert command.decision.amount is not None  # an approval always has one
        try:
            request = OrderRequest(
                intent.market,
                intent.side,
                intent.order_type,
                command.decision.amount,
                client_order_id=intent.client_order_id,
                price=command.decision.price,
                cost=command.decision.quote_amount,
            )
            order = exchange.create_order(request)
        except AmbiguousOrderError:
            order = exchange.fetch_order_by_client_id(intent.market, intent.client_order_id)
            if order is None:
                raise OrderNotVisibleYet(
                    "outcome unknown and not visible yet; looking again before any resend"
                ) from None
        except RetryableExchangeError:
            # Refused before it was processed (a rate limit: the adapters map nothing else
            # to retryable on a send), so no order can appear: the next attempt may send at
            # once instead of waiting out the grace window.
            orders.unmark_sent(intent.intent_id, now_ms)
            raise
        desk.session.commit()
        portfolio.record_order_placed(now_ms)
    try:
        orders.record(intent.intent_id, entry.status, order, now_ms)
    except StaleWrite:
        current = orders.get(intent.intent_id)
        if current is None or current.status != order.status:
            raise AmbiguousOrderError(
                "the ledger changed while the order was recorded", code="ledger_conflict"
            ) from None
    except InvalidTransition as exc:
        raise AmbiguousOrderError(str(exc), code="ledger_conflict") from exc
    settle_account(portfolio, exchange, order, now_ms)
    return order


TASK_ERRORS = (
    "AuthenticationFailed",
    "FatalExchangeError",
    "AmbiguousOrderError",
    "OrderNotVisibleYet",
    "RetryableExchangeError",
    "TransientError",
)
"""The ``error`` names the order workflow's Retry and Catch know, most specific first."""


@dataclass(frozen=True)
class ExecuteOutcome:
    """Either the order (SendTaskSuccess) or an error name and cause (SendTaskFailure)."""

    order: Order | None = None
    error: str | None = None
    cause: str | None = None


def task_error_name(exc: Exception) -> str:
    """The workflow's error name for an exchange error (a base ExchangeError is ambiguous:
    nothing says the order was not placed)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return next((name for name in TASK_ERRORS if name in names), "AmbiguousOrderError")


def run_execute(
    command: ExecuteCommand, desk: Desk, *, control: ControlRepository, publisher: Publisher
) -> ExecuteOutcome:
    """:func:`execute_order`, with its exchange errors turned into the task's answer (no
    secret of the session in its cause); an authentication failure also halts trading (a
    person must look at the keys)."""
    from tickstep.exchanges.errors import AuthenticationFailed, ExchangeError

    try:
        order = execute_order(command, desk)
    except ExchangeError as exc:
        failure: ExchangeError = exc
    else:
        return ExecuteOutcome(order=order)
    # Outside the except block: an error of the halt below (a throttled control table) must
    # not carry the exchange error as its __context__ into the batch's failure text.
    cause = redact(f"{failure.code}: {failure.detail}", desk.session.secrets)[:1000]
    if isinstance(failure, AuthenticationFailed):
        set_trading_state(
            TradingState.HALTED,
            reason=f"execute: authentication failed: {cause}"[:500],
            who="execute",
            now_ms=desk.now_ms,
            control=control,
            publisher=publisher,
            once=True,
        )
    return ExecuteOutcome(error=task_error_name(failure), cause=cause)


@dataclass(frozen=True)
class OrderPath:
    """What execute works with: the ledger, the account, the trading state, the bus, the
    workflow's task answers, and the exchange (paper or ccxt, opened per market)."""

    orders: OrderRepository
    portfolio: PortfolioRepository
    control: ControlRepository
    publisher: Publisher
    tasks: TaskAnswers
    open_exchange: Callable[[Market], ExchangeSession]
    clock: Callable[[], int]
    grace_ms: int = DEFAULT_GRACE_MS


class Answer(StrEnum):
    """How the task was answered: the order, an exchange error, or a failure for now."""

    PLACED = "placed"
    NOT_PLACED = "not_placed"
    TRANSIENT = "transient"


@dataclass(frozen=True)
class Submitted:
    answer: Answer
    answered: bool
    """Whether the workflow took the answer (False: the task had already been answered)."""
    order: Order | None = None
    error: str | None = None
    cause: str | None = None


def submit_order(command: ExecuteCommand, path: OrderPath) -> Submitted:
    """Place the command's intent (:func:`run_execute`) and answer its task: SendTaskSuccess
    with the order, or SendTaskFailure with the workflow's error name.

    A failure of DynamoDB or another AWS dependency worth retrying is answered as
    ``TransientError``, which SubmitOrder retries with back-off (the next attempt looks the
    order up before it would ever send it again); anything else is raised, and if the answer
    itself cannot be given the caller must let the message be delivered again.
    """
    secrets: Sequence[str] = ()
    try:
        session = path.open_exchange(command.intent.market)
        secrets = session.secrets
        desk = Desk(session, path.orders, path.portfolio, path.clock(), path.grace_ms)
        outcome = run_execute(command, desk, control=path.control, publisher=path.publisher)
    except Exception as exc:
        if classify(exc) is not Kind.RETRYABLE:
            raise
        cause = redact(f"{type(exc).__name__}: {exc}", secrets)[:1000]
        answered = path.tasks.fail(command.task_token, "TransientError", cause)
        return Submitted(Answer.TRANSIENT, answered, error="TransientError", cause=cause)
    if outcome.order is not None:
        output = {"order": outcome.order.model_dump(mode="json")}
        answered = path.tasks.succeed(command.task_token, output)
        return Submitted(Answer.PLACED, answered, order=outcome.order)
    assert outcome.error is not None
    answered = path.tasks.fail(command.task_token, outcome.error, outcome.cause or "")
    return Submitted(Answer.NOT_PLACED, answered, error=outcome.error, cause=outcome.cause)
