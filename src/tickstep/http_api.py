"""The HTTP API, apart from its routes: what a request may carry (each model refuses unknown
fields, and names the field it refuses), who made it (the Cognito user API Gateway's JWT
authorizer verified, and their groups, never what the body says), and the JSON answers.
Powertools' resolver and the routes are in ``functions/api/app.py``. No numpy, no ccxt: the
API function starts fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import from_json

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
    jwt: dict[str, Any] | None = None


class _RequestContext(BaseModel):
    http: _Http
    stage: str = Field(min_length=1, max_length=128)
    authorizer: _Authorizer | None = None


class HttpApiEvent(BaseModel):
    """What the resolver and :func:`verified_caller` read of an HTTP API (payload 2.0)
    event, checked before routing so a malformed event answers 422 naming the field, not a
    crash. Other fields are ignored: API Gateway adds fields over time."""

    raw_path: str = Field(alias="rawPath", min_length=1, max_length=8192)
    request_context: _RequestContext = Field(alias="requestContext")
    headers: dict[str, str] | None = None
    query_string_parameters: dict[str, str] | None = Field(
        default=None, alias="queryStringParameters"
    )
    cookies: list[str] | None = None
    body: str | None = None
    is_base64_encoded: bool = Field(default=False, alias="isBase64Encoded")

    @field_validator("body")
    @classmethod
    def _json_or_nothing(cls, body: str | None) -> str | None:
        """pydantic's own JSON parser: a body nested 5,000 deep is "recursion limit
        exceeded", a 422, where the resolver's json.loads would raise RecursionError (a 500)."""
        if body:
            from_json(body)
        return body


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


def refusal(exc: ValidationError) -> dict[str, Any]:
    """A malformed event's 422 as the Lambda answer itself (it never reached the resolver)."""
    refused = invalid(exc)
    return {
        "statusCode": refused.status_code,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": refused.body,
        "isBase64Encoded": False,
    }


def to_json(data: Any) -> str:
    import json

    return json.dumps(data, separators=(",", ":"))


def ok(data: Any) -> Response[str]:
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=to_json(data)
    )


def validation_failed(errors: Sequence[Any]) -> Response[str]:
    """Powertools' request validation errors in this API's shape: each field without the
    ``body``/``query`` prefix (``reason``, ``status``), and its message."""
    shaped = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if loc[:1] in (["body"], ["query"]) and len(loc) > 1:
            loc = loc[1:]
        shaped.append({"field": ".".join(loc) or "body", "message": str(err.get("msg", ""))})
    return Response(
        status_code=422,
        content_type=content_types.APPLICATION_JSON,
        body=to_json({"error": "invalid request", "errors": shaped}),
    )


CALLER_FIELD = "requestContext.authorizer.jwt.claims"
OPERATORS = "operators"
"""The Cognito group whose members may halt, reduce and resume (``viewers`` only look)."""


@dataclass(frozen=True)
class Caller:
    name: str
    """``cognito:<username>``: who changed the trading state, for the audit trail."""
    groups: frozenset[str]

    @property
    def operator(self) -> bool:
        return OPERATORS in self.groups


def verified_caller(raw_event: Mapping[str, Any]) -> Caller | None:
    """Who called, as API Gateway's JWT authorizer verified the Cognito token (a user name,
    never a secret), and their groups; None when the request carries no verified identity."""
    context = raw_event.get("requestContext") or {}
    claims = ((context.get("authorizer") or {}).get("jwt") or {}).get("claims") or {}
    for key in ("cognito:username", "username", "sub"):
        value = claims.get(key)
        if isinstance(value, str) and 0 < len(value) <= 2048 and value.isprintable():
            return Caller(f"cognito:{value}"[:128], _groups(claims.get("cognito:groups")))
    return None


def _groups(claim: Any) -> frozenset[str]:
    """HTTP APIs pass a list claim as text (``[operators viewers]``); tests pass a list."""
    if isinstance(claim, list):
        return frozenset(str(g) for g in claim)
    if isinstance(claim, str):
        return frozenset(claim.strip("[]").replace(",", " ").split())
    return frozenset()


def forbidden(field: str, message: str) -> Response[str]:
    return Response(
        status_code=403,
        content_type=content_types.APPLICATION_JSON,
        body=to_json({"error": "forbidden", "errors": [{"field": field, "message": message}]}),
    )
