"""The operator's kill switch from a workstation: ``tickstep halt|resume|status --stack NAME``.

The same change as the API's ``POST /halt`` and ``POST /resume``: the stack's ControlTable and
EventBus are found by their logical ids (CloudFormation ``DescribeStackResource``), the caller is
named by STS ``GetCallerIdentity`` (an ARN, for the audit trail), and
:func:`tickstep.usecases.control.set_trading_state` writes the state and publishes
``TradingStateChanged`` (the bus's archive and subscribers see every change).

Every function takes its boto3 clients (moto- or stub-backed in tests); only :func:`connect`
imports boto3. AWS failures come out as :class:`OperatorError` with a sentence an operator can
act on (stack not found, no permission, no credentials), never a traceback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from tickstep.models import PlainText, TradingState, TradingStateRecord

__all__ = [
    "CONTROL_TABLE_ID",
    "EVENT_BUS_ID",
    "Clients",
    "OperatorError",
    "StackResources",
    "caller_arn",
    "change_trading_state",
    "connect",
    "describe_aws_error",
    "describe_record",
    "find_stack",
    "trading_state",
]

CONTROL_TABLE_ID = "ControlTable"
"""Logical ids in template.yaml."""
EVENT_BUS_ID = "EventBus"
REASON_MAX = 500
WHO_MAX = 128

_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "UnauthorizedOperation",
        "UnauthorizedException",
    }
)
_BAD_CREDENTIALS = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }
)


class OperatorError(Exception):
    """What went wrong, said for the operator (the CLI prints it and exits 2)."""


@dataclass(frozen=True)
class Clients:
    """The boto3 clients the kill switch needs, all in one account and region."""

    cloudformation: Any
    sts: Any
    dynamodb: Any
    events: Any


@dataclass(frozen=True)
class StackResources:
    """A deployed tickstep stack's kill-switch resources, by physical name."""

    stack: str
    control_table: str
    event_bus: str


def connect(*, region: str | None = None, profile: str | None = None) -> Clients:
    """Clients from the usual AWS configuration (environment, profile, SSO), ``region`` and
    ``profile`` overriding it."""
    try:
        import boto3
    except ImportError as exc:
        raise OperatorError("the AWS commands need boto3: pip install 'tickstep[aws]'") from exc
    try:
        session = boto3.Session(region_name=region, profile_name=profile)
        if session.region_name is None:
            raise OperatorError(
                "no AWS region: pass --region or set AWS_REGION (or a region in the profile)"
            )
        return Clients(
            cloudformation=session.client("cloudformation"),
            sts=session.client("sts"),
            dynamodb=session.client("dynamodb"),
            events=session.client("events"),
        )
    except OperatorError:
        raise
    except Exception as exc:
        raise OperatorError(describe_aws_error(exc, "opening an AWS session")) from exc


def describe_aws_error(exc: Exception, doing: str) -> str:
    """One sentence for an AWS failure while ``doing`` something."""
    name = type(exc).__name__
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")).strip()
        if code in _DENIED:
            return f"no permission for {doing}: {message or code}"
        if code in _BAD_CREDENTIALS:
            return f"AWS rejected the credentials while {doing} ({code}): log in again"
        if code == "ResourceNotFoundException":
            return f"not found while {doing}: {message or code}"
        return f"{doing} failed: {code}: {message}".rstrip(": ")
    if name == "NoCredentialsError":
        return f"no AWS credentials for {doing}: set AWS_PROFILE, or run `aws sso login`"
    if name == "NoRegionError":
        return "no AWS region: pass --region or set AWS_REGION"
    if name == "ProfileNotFound":
        return f"{exc} (check --profile or AWS_PROFILE)"
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
        return f"cannot reach AWS while {doing}: {exc}"
    return f"{doing} failed: {name}: {exc}"


def _physical_id(cloudformation: Any, stack: str, logical_id: str) -> str:
    doing = f"cloudformation:DescribeStackResource on {stack}/{logical_id}"
    try:
        detail = cloudformation.describe_stack_resource(
            StackName=stack, LogicalResourceId=logical_id
        )["StackResourceDetail"]
    except Exception as exc:
        response = getattr(exc, "response", None)
        error = (response or {}).get("Error", {}) if isinstance(response, dict) else {}
        message = str(error.get("Message", ""))
        if error.get("Code") == "ValidationError" and "does not exist" in message:
            if message.startswith("Stack"):
                raise OperatorError(f"stack {stack!r} not found (wrong name or region?)") from exc
            raise OperatorError(
                f"stack {stack!r} has no {logical_id}: is it a tickstep stack?"
            ) from exc
        raise OperatorError(describe_aws_error(exc, doing)) from exc
    physical = detail.get("PhysicalResourceId")
    if not physical:
        status = detail.get("ResourceStatus", "unknown")
        raise OperatorError(f"stack {stack!r}: {logical_id} has no physical name yet ({status})")
    return str(physical)


def find_stack(cloudformation: Any, stack: str) -> StackResources:
    """The stack's ControlTable and EventBus names (a missing stack or resource is an
    :class:`OperatorError` saying so)."""
    return StackResources(
        stack=stack,
        control_table=_physical_id(cloudformation, stack, CONTROL_TABLE_ID),
        event_bus=_physical_id(cloudformation, stack, EVENT_BUS_ID),
    )


def caller_arn(sts: Any) -> str:
    """Who is calling (``GetCallerIdentity``'s ARN), as the state record's ``changed_by``."""
    try:
        arn = sts.get_caller_identity()["Arn"]
    except Exception as exc:
        raise OperatorError(describe_aws_error(exc, "sts:GetCallerIdentity")) from exc
    return str(arn)[:WHO_MAX]


class _Announcer:
    """The stack's EventBus, saying clearly that the state was written when publishing fails
    (the state is set; the bus and its archive did not hear of it)."""

    def __init__(self, client: Any, bus_name: str) -> None:
        from tickstep.aws import EventBus

        self._bus = EventBus(client, bus_name)

    def publish(self, source: str, detail_type: str, details: Any) -> None:
        try:
            self._bus.publish(source, detail_type, details)
        except Exception as exc:
            raise OperatorError(
                f"the trading state was written, but {detail_type} was not published on "
                f"{self._bus.bus_name} ({describe_aws_error(exc, 'events:PutEvents')}): "
                "the change is not on the bus or in its archive"
            ) from exc


def change_trading_state(
    state: TradingState,
    *,
    stack: str,
    reason: str,
    clients: Clients,
    now_ms: int | None = None,
) -> TradingStateRecord:
    """Set the stack's trading state as ``who`` = the caller, and publish the change,
    exactly as the API's ``/halt`` and ``/resume`` do."""
    from tickstep.stores import ControlStore
    from tickstep.usecases.control import set_trading_state

    reason = reason.strip()
    if not reason:
        raise OperatorError("--reason: say why (it is kept with the state and sent in the alarm)")
    if len(reason) > REASON_MAX:
        raise OperatorError(f"--reason: at most {REASON_MAX} characters, got {len(reason)}")
    try:  # the same rule as the API's /halt: one line, and what it shows is what it says
        TypeAdapter(PlainText).validate_python(reason)
    except ValidationError as exc:
        raise OperatorError(f"--reason: {exc.errors()[0]['msg']}") from None
    resources = find_stack(clients.cloudformation, stack)
    who = caller_arn(clients.sts)
    table = resources.control_table
    try:
        return set_trading_state(
            state,
            reason=reason,
            who=who,
            now_ms=time.time_ns() // 1_000_000 if now_ms is None else now_ms,
            control=ControlStore(clients.dynamodb, table),
            publisher=_Announcer(clients.events, resources.event_bus),
        )
    except OperatorError:
        raise
    except Exception as exc:
        raise OperatorError(
            describe_aws_error(exc, f"dynamodb:GetItem/PutItem on {table}")
        ) from exc


def trading_state(stack: str, *, clients: Clients) -> TradingStateRecord:
    """The stack's current trading state (ACTIVE when nobody ever set it)."""
    from tickstep.stores import ControlStore

    table = find_stack(clients.cloudformation, stack).control_table
    try:
        return ControlStore(clients.dynamodb, table).get()
    except Exception as exc:
        raise OperatorError(describe_aws_error(exc, f"dynamodb:GetItem on {table}")) from exc


def describe_record(record: TradingStateRecord) -> str:
    """``HALTED since 2026-01-01T00:00:00Z by arn:...: reason``."""
    if record.changed_at:
        when = datetime.fromtimestamp(record.changed_at / 1000, tz=UTC)
        since = f" since {when.isoformat(timespec='seconds').replace('+00:00', 'Z')}"
    else:
        since = ""
    return f"{record.state.value}{since} by {record.changed_by}: {record.reason}"
