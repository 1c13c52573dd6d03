"""The operator's HTTP API, apart from its routes: what a request may carry (each model
refuses unknown fields, and names the field it refuses), who made it (the IAM identity API
Gateway verified, never what the body says), and the JSON answers. Powertools' resolver and
the routes are in ``functions/api/app.py``. No numpy, no ccxt: the API function starts fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tickstep.models import OrderStatus, PlainText


class StateChangeRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Kept, logged and sent in the alarm e-mail: one line that shows what it says (no NUL,
    # CR/LF or bidi override such as U+202E).
    reason: PlainText = Field(min_length=1, max_length=400)


class OrdersQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: OrderStatus | None = None
    limit: int = Field(default=50, ge=1, le=200)


class SignalsQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(default=1, ge=1, le=50)


class _Http(BaseModel):
    method: str = Field(min_length=1, max_length=16)


class _Authorizer(BaseModel):
    iam: dict[str, Any] | None = None


class _RequestContext(BaseModel):
    http: _Http
    stage: str = Field(min_length=1, max_length=128)
    authorizer: _Authorizer | None = None


class HttpApiEvent(BaseModel):
    """What the resolver and :func:`_caller` read of an HTTP API (payload 2.0) event, checked
    before routing so a malformed event answers 422 naming the field, not a crash. Other
    fields are ignored: API Gateway adds fields over time."""

    raw_path: str = Field(alias="rawPath", min_length=1, max_length=8192)
    request_context: _RequestContext = Field(alias="requestContext")
    headers: dict[str, str] | None = None
    query_string_parameters: dict[str, str] | None = Field(
        default=None, alias="queryStringParameters"
    )
    cookies: list[str] | None = None
    body: str | None = None
    is_base64_encoded: bool = Field(default=False, alias="isBase64Encoded")


def invalid(exc: ValidationError | ValueError) -> Response[str]:
    if isinstance(exc, ValidationError):
        errors = [
            {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
            for err in exc.errors()
        ]
    else:
        errors = [{"field": "body", "message": str(exc)}]
    return Response(
        status_code=422,
        content_type=content_types.APPLICATION_JSON,
        body=to_json({"error": "invalid request", "errors": errors}),
    )


def to_json(data: Any) -> str:
    import json

    return json.dumps(data, separators=(",", ":"))


def ok(data: Any) -> Response[str]:
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=to_json(data)
    )


CALLER_FIELD = "requestContext.authorizer.iam"


def verified_caller(raw_event: Mapping[str, Any]) -> str | None:
    """Who called, as API Gateway's IAM authorizer verified it (an ARN, never a secret), for
    the audit trail; None when the request carries no verified identity."""
    context = raw_event.get("requestContext") or {}
    iam = (context.get("authorizer") or {}).get("iam") or {}
    for key in ("userArn", "callerId"):
        value = iam.get(key)
        if isinstance(value, str) and 0 < len(value) <= 2048 and value.isprintable():
            return value[:128]
    return None


def forbidden(field: str, message: str) -> Response[str]:
    return Response(
        status_code=403,
        content_type=content_types.APPLICATION_JSON,
        body=to_json({"error": "forbidden", "errors": [{"field": field, "message": message}]}),
    )
