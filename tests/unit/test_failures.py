"""The one table of which failures are retried (tickstep.failures), row by row."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyInconsistentStateError,
    IdempotencyItemAlreadyExistsError,
    IdempotencyPersistenceLayerError,
)
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from pydantic import ValidationError

from tickstep.failures import (
    MALFORMED_INPUT_ERRORS,
    Kind,
    TransientError,
    classify,
    name_transient_failures,
)
from tickstep.messages import UnknownMarketError
from tickstep.models import CandleClosed
from tickstep.ports import StaleWrite


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutItem",
    )


def wrapped(error: Exception) -> IdempotencyPersistenceLayerError:
    """As Powertools raises it: ``raise IdempotencyPersistenceLayerError(...) from exc``."""
    try:
        try:
            raise error
        except Exception as exc:
            raise IdempotencyPersistenceLayerError("Failed to save", exc) from exc
    except IdempotencyPersistenceLayerError as outer:
        return outer


def validation_error() -> ValidationError:
    try:
        CandleClosed.model_validate({"market": "nope"})
    except ValidationError as exc:
        return exc
    raise AssertionError("validated")


@pytest.mark.parametrize(
    "error",
    [
        client_error("ThrottlingException"),
        client_error("ProvisionedThroughputExceededException"),
        client_error("RequestLimitExceeded"),
        client_error("TooManyRequestsException", 429),
        client_error("InternalServerError", 500),
        client_error("SomethingNew", 503),
        EndpointConnectionError(endpoint_url="https://dynamodb"),
        ConnectTimeoutError(endpoint_url="https://dynamodb"),
        ReadTimeoutError(endpoint_url="https://dynamodb"),
        wrapped(client_error("ThrottlingException")),
        wrapped(RuntimeError("connection reset")),
        IdempotencyInconsistentStateError("changed"),
        IdempotencyItemAlreadyExistsError("exists"),
        IdempotencyAlreadyInProgressError("in progress"),
        StaleWrite("lost a race"),
        TransientError("ThrottlingException", "again"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_classify_when_a_dependency_fails_for_now_then_retryable(error: Exception) -> None:
    assert classify(error) is Kind.RETRYABLE


def test_classify_when_the_input_can_never_be_processed_then_malformed() -> None:
    for error in (validation_error(), UnknownMarketError("market: x is not configured")):
        assert classify(error) is Kind.MALFORMED
        assert type(error).__name__ in MALFORMED_INPUT_ERRORS


@pytest.mark.parametrize(
    "error",
    [
        client_error("AccessDeniedException"),
        client_error("ValidationException"),
        client_error("ResourceNotFoundException"),
        wrapped(client_error("AccessDeniedException")),
        KeyError("intent"),
        LookupError("rules: none cached"),
    ],
    ids=lambda e: f"{type(e).__name__}-{e}"[:40],
)
def test_classify_when_neither_transient_nor_the_inputs_fault_then_a_bug(error: Exception) -> None:
    assert classify(error) is Kind.BUG


def raising(error: Exception) -> Any:
    @name_transient_failures
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        raise error

    with pytest.raises(Exception) as caught:
        handler({}, None)
    return caught.value


def test_handler_when_a_retryable_failure_escapes_then_step_functions_sees_transient_error() -> (
    None
):
    """The name is what the workflow's Retry matches (a Lambda's errorType is the class
    name); the cause's own name leads the message, which is all Step Functions keeps."""
    raised = raising(wrapped(client_error("ThrottlingException")))
    assert type(raised).__name__ == "TransientError"
    assert str(raised).startswith("IdempotencyPersistenceLayerError: Failed to save")
    assert isinstance(raised.__cause__, IdempotencyPersistenceLayerError)


def test_handler_when_malformed_a_bug_or_waiting_then_the_name_is_kept() -> None:
    for error in (
        validation_error(),
        UnknownMarketError("x"),
        KeyError("x"),
        IdempotencyAlreadyInProgressError("another delivery decides"),
    ):
        assert raising(error) is error
