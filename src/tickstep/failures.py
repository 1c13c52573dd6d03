"""Which failures are worth trying again: the one table that sorts every exception the decide
and order paths' handlers can raise into retryable, malformed input, or a bug.

Step Functions decides on an error *name* (a Lambda's ``errorType``, the exception's class
name), and the names a throttled DynamoDB request surfaces under depend on who wrapped it:
``ThrottlingException`` from botocore, ``ClientError`` for a code botocore does not model,
``IdempotencyPersistenceLayerError`` once Powertools Idempotency has wrapped it,
``ReadTimeoutError`` for a lost connection. So the handlers do not let those names through:
:func:`name_transient_failures` turns every retryable one into :class:`TransientError`, the
one name the state machines' Retry lists (with back-off and full jitter), and lets a
permanent one through under its own name, which the workflow catches and dead-letters as the
reason. A single delivery's deadline is the workflow's (decide.asl.json says how long it
retries, and why that is shorter than a tick stays fresh).

========================================================  ===========  =====================
exception                                                 kind         Step Functions sees
========================================================  ===========  =====================
:class:`TransientError`                                   retryable    TransientError
botocore ``ClientError`` with a throttling code           retryable    TransientError
(:data:`RETRYABLE_CODES`) or an HTTP status of 5xx
botocore ``ClientError``, any other code (AccessDenied,   bug          its class name
ValidationException, ResourceNotFound...)
botocore ``ConnectionError`` / ``HTTPClientError``        retryable    TransientError
(endpoint unreachable, connect or read timeout, reset)
Powertools ``IdempotencyPersistenceLayerError``           retryable    TransientError
(what wraps a failed read or write of the idempotency     (a wrapped ClientError
record), ``IdempotencyInconsistentStateError``,           is judged by its code)
``IdempotencyItemAlreadyExistsError``
Powertools ``IdempotencyAlreadyInProgressError``          retryable    its class name: its
(another delivery of the intent holds the record)                      own Retry waits out
                                                                       the record's expiry
:class:`tickstep.ports.StaleWrite` (a conditional write   retryable    TransientError
lost to another writer: read again, decide again)
pydantic ``ValidationError``                              malformed    ValidationError
:class:`tickstep.messages.UnknownMarketError`             malformed    UnknownMarketError
anything else (a bug, a misconfiguration)                 bug          its class name
========================================================  ===========  =====================

Malformed input can never be processed: it is dead-lettered with its reason, and that is the
only dead letter an operator should ever see (:data:`MALFORMED_INPUT_ERRORS`, what the drill
accepts). A bug is not retried either (retrying a bug for minutes makes it no less a bug): it
is dead-lettered under its own name, and the drill fails on it.

The exchange's errors (:mod:`tickstep.exchanges.errors`) are not in this table: the execute
function answers the order workflow's task with their names, which order.asl.json retries or
catches itself. An error the execute function cannot answer with (DynamoDB down past the
SDK's retries) fails the queue record, and SQS delivering it again is that path's retry: the
execute function looks an order up before it ever sends it again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from typing import ParamSpec, TypeVar

__all__ = [
    "MALFORMED_INPUT_ERRORS",
    "RETRYABLE_CODES",
    "Kind",
    "TransientError",
    "classify",
    "name_transient_failures",
]

P = ParamSpec("P")
R = TypeVar("R")


class TransientError(Exception):
    """A failure that trying again later may cure: the name the state machines retry.

    ``cause`` is the class name of what happened (``ThrottlingException``,
    ``IdempotencyPersistenceLayerError``...), and leads the message, which is all Step
    Functions keeps besides the name.
    """

    def __init__(self, cause: str, detail: str = "") -> None:
        self.cause = cause
        self.detail = detail
        super().__init__(f"{cause}: {detail}" if detail else cause)

    def __reduce__(self) -> tuple[type[TransientError], tuple[str, str]]:
        return (type(self), (self.cause, self.detail))


class Kind(StrEnum):
    RETRYABLE = "retryable"
    """Throttling, a 5xx, a timeout, a lost race: the same request may pass later."""
    MALFORMED = "malformed"
    """Input that can never be processed: dead-letter it with its reason."""
    BUG = "bug"
    """Not the input's fault and not transient: dead-lettered under its own name, alarmed."""


RETRYABLE_CODES = frozenset(
    {
        # throttling, as DynamoDB, Lambda, EventBridge, SQS and Step Functions name it
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        # the service's own fault, or a conflict that a second attempt does not meet
        "InternalServerError",
        "InternalServerErrorException",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionConflictException",
        "TransactionInProgressException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
"""botocore ``ClientError`` codes that mean "not now" (an HTTP status of 5xx does too)."""


MALFORMED_INPUT_ERRORS = frozenset({"ValidationError", "UnknownMarketError"})
"""The error names (dead-letter reasons) of malformed input: every other reason is a bug."""


def classify(exc: BaseException) -> Kind:
    """Which kind of failure ``exc`` is (see the module's table)."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from pydantic import ValidationError

    from tickstep.messages import UnknownMarketError
    from tickstep.ports import StaleWrite

    if isinstance(exc, (TransientError, StaleWrite, BotoConnectionError, HTTPClientError)):
        return Kind.RETRYABLE
    if isinstance(exc, (ValidationError, UnknownMarketError)):
        return Kind.MALFORMED
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if error.get("Code") in RETRYABLE_CODES or int(status or 0) >= 500:
            return Kind.RETRYABLE
        return Kind.BUG
    if _is_idempotency_retryable(exc):
        # A wrapped ClientError is judged by its code: an AccessDenied stays a bug.
        cause = exc.__cause__
        if isinstance(cause, ClientError) and classify(cause) is not Kind.RETRYABLE:
            return Kind.BUG
        return Kind.RETRYABLE
    return Kind.BUG


def _is_idempotency_retryable(exc: BaseException) -> bool:
    module = type(exc).__module__
    if not module.startswith("aws_lambda_powertools.utilities.idempotency"):
        return False  # not imported unless it is one: the signal function never loads it
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyInconsistentStateError,
        IdempotencyItemAlreadyExistsError,
        IdempotencyPersistenceLayerError,
    )

    return isinstance(
        exc,
        (
            IdempotencyPersistenceLayerError,
            IdempotencyInconsistentStateError,
            IdempotencyItemAlreadyExistsError,
            IdempotencyAlreadyInProgressError,
        ),
    )


KEEP_THEIR_NAME = frozenset({"IdempotencyAlreadyInProgressError"})
"""Retryable failures the workflow retries under their own name: waiting for another delivery
of the same intent to finish (or for its abandoned record to expire) is not backing off a
throttled service, and has its own Retry in decide.asl.json."""


def name_transient_failures(handler: Callable[P, R]) -> Callable[P, R]:
    """A Lambda handler whose retryable failures reach Step Functions as
    :class:`TransientError`; every other exception goes through under its own name."""

    @functools.wraps(handler)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return handler(*args, **kwargs)
        except TransientError:
            raise
        except Exception as exc:
            name = type(exc).__name__
            if name in KEEP_THEIR_NAME or classify(exc) is not Kind.RETRYABLE:
                raise
            raise TransientError(name, str(exc)[:900]) from exc

    return wrapped
