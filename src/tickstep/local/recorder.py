"""Which AWS API calls each function and state machine of the offline stack makes.

``tests/pipeline/test_iam_least_privilege.py`` compares what is recorded here with the
policies of ``template.yaml``: every permission the code needs is granted, and nothing else.

While a :func:`recording` is open, every botocore session made (the boto3 default session
``LocalCloud`` sets up, which the handlers' ``boto3.client(...)`` use, and the sessions
Powertools Parameters and moto's Step Functions interpreter make for themselves) reports each
API call on botocore's ``provide-client-params`` event, with the parameters as the caller
passed them. A call is attributed to:

* the function being invoked: ``LocalCloud.invoke`` wraps the handler in :func:`calls_made_by`
  (a context variable, so each thread has its own);
* else the state machine whose task makes it: moto's interpreter runs each task in a thread of
  its own, with its ``Environment`` (named ``env``) on the stack; its context object names the
  state machine, which ``LocalCloud`` creates under its logical id;
* else nobody: the runtime itself (creating the stack, delivering events, polling queues).

Each call becomes one :class:`Call` per IAM action and resource it needs: a
``TransactWriteItems`` needs ``PutItem``, ``UpdateItem``, ``DeleteItem`` or
``ConditionCheckItem`` on each item's table, a Lambda ``Invoke`` needs ``InvokeFunction``, a
``Query`` on an index needs the index. Resources are physical (a table name, a queue URL, a bus
name, an ARN); :meth:`CallRecorder.permissions` maps them to the template's logical ids.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

UNKNOWN = "?"
"""The resource of a call this module does not know how to read: the test shows it."""

_caller: ContextVar[str | None] = ContextVar("tickstep_local_caller", default=None)

_ACTIONS = {("lambda", "Invoke"): "InvokeFunction"}
"""API operations whose IAM action has another name."""
_IAM_PREFIXES = {"monitoring": "cloudwatch"}
"""Services whose IAM prefix is not their signing name."""
_TRANSACT_ITEMS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
_TASK_TOKEN_OPERATIONS = ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat")


@dataclass(frozen=True, order=True)
class Call:
    """One permission a call needed: who, the API operation, the IAM action and what on."""

    caller: str
    service: str
    operation: str
    action: str
    resource: str


@contextlib.contextmanager
def calls_made_by(logical_id: str) -> Iterator[None]:
    """Attribute the AWS calls made in this block (in this thread) to ``logical_id``."""
    token = _caller.set(logical_id)
    try:
        yield
    finally:
        _caller.reset(token)


@contextlib.contextmanager
def runtime_calls() -> Iterator[None]:
    """The offline runtime's own calls inside an invocation (what it hands a function that
    AWS would not have, as the dashboard's risk denials): not the function's."""
    token = _caller.set(None)
    try:
        yield
    finally:
        _caller.reset(token)


@dataclass
class SdkTime:
    """The AWS SDK calls one invocation made, and the time spent inside them (moto's, here):
    what :mod:`tickstep.cost` replaces with each call's latency on AWS."""

    seconds: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    """``service:Operation`` -> calls (``dynamodb:Query``; SDK retries are inside a call)."""
    _depth: int = 0


_sdk_time: ContextVar[SdkTime | None] = ContextVar("tickstep_local_sdk_time", default=None)


@contextlib.contextmanager
def sdk_time() -> Iterator[SdkTime]:
    """Time the AWS SDK calls made in this block, in this thread (an invocation)."""
    spent = SdkTime()
    token = _sdk_time.set(spent)
    try:
        yield spent
    finally:
        _sdk_time.reset(token)


@contextlib.contextmanager
def timing_sdk_calls() -> Iterator[None]:
    """While open, every botocore API call made inside a :func:`sdk_time` block adds its time
    and its name to that block's :class:`SdkTime` (the outermost call only)."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def call(client: Any, operation_name: str, api_params: Any) -> Any:
        spent = _sdk_time.get()
        if spent is None or spent._depth:
            return original(client, operation_name, api_params)
        spent._depth += 1
        started = perf_counter()
        try:
            return original(client, operation_name, api_params)
        finally:
            spent._depth -= 1
            spent.seconds += perf_counter() - started
            spent.calls[f"{client.meta.service_model.service_name}:{operation_name}"] += 1

    BaseClient._make_api_call = call
    try:
        yield
    finally:
        BaseClient._make_api_call = original


class CallRecorder:
    """The calls seen, by caller; thread-safe (state machines run in threads)."""

    def __init__(self) -> None:
        self.calls: Counter[Call] = Counter()
        self.unattributed = 0
        """Calls no function or state machine made (the runtime's own)."""
        self.active = True
        """False once its :func:`recording` ended: sessions made during it live on."""
        self._lock = threading.Lock()

    def __call__(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        if not self.active:
            return
        caller = _caller.get() or _state_machine_on_stack()
        if caller is None:
            with self._lock:
                self.unattributed += 1
            return
        service = str(model.service_model.signing_name)
        operation = str(model.name)
        found = [
            Call(
                caller,
                service,
                operation,
                f"{_IAM_PREFIXES.get(service, service)}:{action}",
                resource,
            )
            for action, resource in _needs(service, operation, params)
        ]
        with self._lock:
            self.calls.update(found)

    def permissions(self, refs: Mapping[str, Any]) -> dict[str, set[tuple[str, str]]]:
        """``{caller: {(action, resource)}}``, resources named by logical id where ``refs``
        (logical id -> physical name, URL or ARN, as ``LocalCloud.resolver.refs``) knows them:
        ``OrdersTable``, ``OrdersTable/index/by_status``; ``*`` stays ``*``."""
        index: dict[str, str] = {}
        for logical, physical in refs.items():
            # A resource's own id, not SAM's Fn.Alias/Fn.Version nor a machine's alias stand-in
            # (offline the same ARN as the machine): they name the resource they belong to.
            if "." not in logical:
                index.setdefault(str(physical), logical)
        out: dict[str, set[tuple[str, str]]] = {}
        with self._lock:
            calls = list(self.calls)
        for call in calls:
            out.setdefault(call.caller, set()).add((call.action, _logical(call.resource, index)))
        return out


@contextlib.contextmanager
def recording() -> Iterator[CallRecorder]:
    """Record the calls of every botocore session made inside the block (open it before
    ``LocalCloud``, which makes the default session the handlers use)."""
    from botocore import handlers

    recorder = CallRecorder()
    entry = ("provide-client-params", recorder)
    handlers.BUILTIN_HANDLERS.append(entry)
    try:
        yield recorder
    finally:
        recorder.active = False
        handlers.BUILTIN_HANDLERS.remove(entry)


def _needs(service: str, operation: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(IAM action without its prefix, physical resource) for one call."""
    action = _ACTIONS.get((service, operation), operation)
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            return [
                (_TRANSACT_ITEMS[kind], str(body.get("TableName", UNKNOWN)))
                for item in params.get("TransactItems", [])
                for kind, body in item.items()
            ]
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return [(action, str(table)) for table in params.get("RequestItems", {})]
        table = str(params.get("TableName", UNKNOWN))
        index = params.get("IndexName")
        return [(action, f"{table}/index/{index}" if index else table)]
    if service == "events" and operation == "PutEvents":
        return [(action, str(e.get("EventBusName", "default"))) for e in params.get("Entries", [])]
    if service == "states" and operation in _TASK_TOKEN_OPERATIONS:
        return [(action, "*")]  # no resource-level permissions: the token is the capability
    if service == "monitoring" and operation == "DescribeAlarms":
        return [(action, "*")]  # no resource-level permissions for DescribeAlarms
    if service == "codedeploy" and operation == "PutLifecycleEventHookExecutionStatus":
        return [(action, "*")]  # names no resource: the hook's execution id is the capability
    key = {
        "states": ("stateMachineArn", "executionArn"),
        "sqs": ("QueueUrl", "QueueName"),
        "lambda": ("FunctionName",),
        "secretsmanager": ("SecretId",),
        "events": ("EventBusName", "Name"),
        "ssm": ("Name",),
    }.get(service, ())
    resource = next((str(params[k]) for k in key if k in params), UNKNOWN)
    return [(action, resource)]


def _logical(resource: str, index: Mapping[str, str]) -> str:
    table, sep, name = resource.partition("/index/")
    if sep and table in index:
        return f"{index[table]}/index/{name}"
    candidates = [resource, resource.rsplit(":", 1)[-1], resource.rsplit("/", 1)[-1]]
    if ":function:" in resource:  # a version or alias: its function (arn:...:function:f:live)
        candidates.append(resource.split(":function:", 1)[1].split(":", 1)[0])
    for candidate in candidates:
        if candidate in index:
            return index[candidate]
    return resource


def _state_machine_on_stack() -> str | None:
    """The state machine whose interpreter thread makes this call (moto 5.2.5's ASL
    ``Environment``, named ``env`` in the task's frames), or None."""
    frame = sys._getframe(2)
    while frame is not None:
        env = frame.f_locals.get("env")
        if env is not None:
            try:
                data = env.states.context_object.context_object_data
                return str(data["StateMachine"]["Name"])
            except (AttributeError, KeyError, TypeError):
                pass
        frame = frame.f_back  # type: ignore[assignment]
    return None
