"""Where moto 5.2.5 differs from AWS, and the fixes the offline runtime applies for the length
of a :class:`tickstep.local.cloud.LocalCloud`.

moto is pinned (``moto[all]==5.2.5`` in pyproject.toml) because these patch its internals:
its Step Functions interpreter (which comes from LocalStack) and its botocore stubber. Each
context manager says what AWS does, what moto 5.2.5 does instead, and restores moto on exit.
``tests/pipeline/test_local_runtime.py`` fails loudly when a hook moves, so a moto upgrade
shows which patch to revisit:

* :func:`fix_moto_sfn_service_integrations`: ``states:startExecution`` and ``aws-sdk:*`` tasks
  (moto leaves the parameters un-normalised: ``KeyError: 'StateMachineArn'``).
* :func:`fix_moto_execution_status_before_start`: an execution being started lists as
  RUNNING (moto had no status for it: ``AttributeError`` from another thread).
* :func:`fix_moto_early_task_token_answer`: a task token answered before moto waits on its
  heartbeat is not lost (moto waited the whole heartbeat).
* :func:`reuse_moto_sfn_service_clients`: one boto3 client per service, not one per task
  (speed only; the service keeps its connections too).
* :func:`moto_skips_throttled_requests`: a request the drill throttled is not carried out.
* :func:`scaled_retry_sleep`: the drill runs retry intervals faster than real time.
* :func:`fast_dynamodb_responses`: DynamoDB answers are written with ``json.dumps`` (speed
  only: moto's serializer walks each answer's shape, a third of an offline run's time).
* :func:`parse_each_state_machine_once`: an execution reuses its definition's parsed program
  (speed only: moto parsed the ASL again for every execution, a fifth of a run's CPU).
* :func:`query_one_partition`: a table Query reads its partition, not the whole table sorted
  (speed only: moto sorted every item of the table for each Query).
* :func:`parse_each_json_path_once`: the interpreter parses each JSONPath once, not at every
  use (speed only: jsonpath_ng builds its parser for every parse).
* :func:`cache_response_method_names`: moto lists a response class's methods once, not per
  request (speed only).
* :func:`notify_progress`: a callback when an execution ends or a queue gets a message, so
  the runtime waits on that instead of polling on a timer.

The Lambda and EventBridge routing (moto without Docker only echoes an invocation, and does
not deliver to Step Functions or Lambda targets) lives on ``LocalCloud`` itself, as it
dispatches to the stack's own handlers.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from unittest import mock

MOTO_VERSION = "5.2.5"
"""The moto release these patches are written against (pyproject.toml pins it)."""


class MotoMovedError(RuntimeError):
    """A patched moto internal is not where this module expects it: moto is not 5.2.5."""


@contextlib.contextmanager
def scaled_retry_sleep(scale: Callable[[], float]) -> Iterator[None]:
    """Let the drill run retry intervals faster than real time (moto and botocore sleep them
    for real); 1.0 leaves them as they are."""
    from types import SimpleNamespace

    import botocore.endpoint
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    # The state machines' Retry intervals, and the AWS SDK's own retry back-off (a throttled
    # DynamoDB request sleeps up to seconds before it is sent again).
    scaled = SimpleNamespace(sleep=lambda seconds: time.sleep(seconds * scale()))
    with _wrapped([(retrier_decl, "time"), (botocore.endpoint, "time")], lambda _: scaled):
        yield


@contextlib.contextmanager
def moto_skips_throttled_requests() -> Iterator[None]:
    """moto's ``before-send`` handler answers (and carries out) every request, even one the
    drill has already answered with a throttle: skip those, as DynamoDB does not apply a
    throttled request."""
    from moto.core.botocore_stubber import BotocoreStubber

    from tickstep.local.faults import THROTTLED

    cls: Any = BotocoreStubber
    original = cls.__call__

    def call(stubber: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if getattr(request, THROTTLED, False):
            return None
        return original(stubber, event_name, request, **kwargs)

    with mock.patch.object(cls, "__call__", call):
        yield


@contextlib.contextmanager
def fix_moto_sfn_service_integrations() -> Iterator[None]:
    """Make moto 5.2.5 run ``states:startExecution`` (and ``aws-sdk:*``) tasks.

    Its ``StateTaskService._normalise_parameters``/``_normalise_response`` are empty stubs,
    so PascalCase ASL parameters reach botocore unconverted (``KeyError: 'StateMachineArn'``).
    This restores what LocalStack, where moto's ASL parser comes from, does. See
    docs/decisions/0002-sam-template-and-state-machines.md; a test fails if the hook moves.
    """
    import botocore.session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service as sts,
    )

    models = botocore.session.get_session()

    @functools.cache  # a service model is read-only: build each operation's once
    def operation_model(service: str, name: str) -> Any:
        return models.get_service_model(service).operation_model(name)

    def operation(task: Any, boto_service_name: Any, service_action_name: Any) -> Any:
        service = task._get_boto_service_name(boto_service_name)
        action = service_action_name or task.resource.api_action
        snake = sts.camel_to_snake_case(action)  # type: ignore[attr-defined]
        return operation_model(service, "".join(part.title() for part in snake.split("_")))

    def normalise_parameters(
        task: Any, parameters: Any, boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        shape = operation(task, boto_service_name, service_action_name).input_shape
        task._to_boto_request(parameters, shape)

    def normalise_response(
        task: Any, response: Any, boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        shape = operation(task, boto_service_name, service_action_name).output_shape
        task._from_boto_response(response, shape)

    cls: Any = sts.StateTaskService
    saved = (cls._normalise_parameters, cls._normalise_response)
    cls._normalise_parameters = normalise_parameters
    cls._normalise_response = normalise_response
    try:
        yield
    finally:
        cls._normalise_parameters, cls._normalise_response = saved


@contextlib.contextmanager
def fix_moto_execution_status_before_start() -> Iterator[None]:
    """Make moto 5.2.5 list an execution that is being started as RUNNING.

    moto adds an execution to its backend before it starts it, with no status in between:
    ListExecutions from another thread at that moment raised ``AttributeError`` (a drill
    died of it). On AWS, StartExecution is atomic and the execution is RUNNING.
    """
    from moto.stepfunctions.parser.backend.execution import Execution

    def status(execution: Any) -> str:
        if execution.exec_status is None:
            return "RUNNING"
        return str(execution.exec_status.value)

    with mock.patch.object(Execution, "status", property(status)):
        yield


@contextlib.contextmanager
def reuse_moto_sfn_service_clients() -> Iterator[None]:
    """moto's Step Functions interpreter makes a new boto3 client for every service task it
    runs (7% of a drill's CPU); reuse one per region and service, as the service would keep
    its connections. Clients are thread-safe; they still go through the default session,
    so the drill's DynamoDB throttles reach the workflows' own DynamoDB tasks too."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_dynamodb,
        state_task_service_events,
        state_task_service_sfn,
        state_task_service_sqs,
    )
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    clients: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        with lock:
            client = clients.get((region, service))
            if client is None:
                client = clients[region, service] = original(region, service, state_credentials)
            return client

    users: list[Any] = [
        lambda_eval_utils,  # the ones the template's workflows use
        state_task_service_dynamodb,
        state_task_service_events,
        state_task_service_sfn,
        state_task_service_sqs,
    ]
    if any(module.boto_client_for is not original for module in users):
        raise MotoMovedError("moto's boto_client_for moved: pin moto==5.2.5")
    for module in users:
        module.boto_client_for = boto_client_for
    try:
        yield
    finally:
        for module in users:
            module.boto_client_for = original


@contextlib.contextmanager
def fix_moto_early_task_token_answer() -> Iterator[None]:
    """Make moto 5.2.5 see a task token answered before it starts waiting on the heartbeat.

    A ``.waitForTaskToken`` task with ``HeartbeatSeconds`` sends its message, then creates
    the heartbeat endpoint it waits on. An answer (SendTaskSuccess/Failure) that arrives in
    between sets the outcome but notifies no heartbeat endpoint (there is none yet, or the
    previous attempt's), so the execution waits the whole heartbeat (600 s) with its answer
    in hand. Step Functions does not lose it; here the execute function answers within
    milliseconds of the message, so it happened about once in 15 orders. The wait now starts
    woken when an answer is there, and an answer is consumed by the wait that returns it
    (retries reuse the task's callback endpoint, so a stale answer must not wake the next).
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_task,
    )

    cls: Any = callback_task.StateTaskServiceCallback
    original = cls._wait_for_task_token_heartbeat

    def wait(task: Any, env: Any, callback_endpoint: Any, heartbeat_endpoint: Any) -> Any:
        if callback_endpoint.get_outcome() is not None:
            heartbeat_endpoint.notify()
        outcome = original(task, env, callback_endpoint, heartbeat_endpoint)
        callback_endpoint._outcome = None
        return outcome

    with mock.patch.object(cls, "_wait_for_task_token_heartbeat", wait):
        yield


@contextlib.contextmanager
def speed_patches(progress: Callable[[], None]) -> Iterator[None]:
    """The patches that only make a run faster (each changes no answer, which
    tests/pipeline/test_moto_patches.py shows); ``progress``: :func:`notify_progress`."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(fast_dynamodb_responses())
        stack.enter_context(parse_each_state_machine_once())
        stack.enter_context(parse_each_json_path_once())
        stack.enter_context(query_one_partition())
        stack.enter_context(cache_response_method_names())
        stack.enter_context(notify_progress(progress))
        yield


DYNAMODB_JSON = {"Content-Type": "application/x-amz-json-1.0"}


@contextlib.contextmanager
def fast_dynamodb_responses() -> Iterator[None]:
    """Write moto's DynamoDB answers with ``json.dumps`` instead of its shape-walking serializer.

    AWS's DynamoDB speaks plain JSON, and moto 5.2.5 already builds each answer as the JSON's
    dict (items in DynamoDB's typed form, numbers as strings), then walks it against the
    operation's output shape to write it: a third of a ``tickstep local`` run's time. Here an
    answer that ``json.dumps`` can write is written so; one it cannot (a table description
    with timestamps) goes through moto's serializer as before. Speed only: a test compares
    both writers' JSON for every DynamoDB answer of a local run.
    """
    import json

    from moto.core.responses import ActionResult

    try:
        original = ActionResult.execute_result
    except AttributeError as exc:
        raise MotoMovedError("moto.core.responses.ActionResult.execute_result") from exc

    def execute_result(self: Any, context: Any) -> Any:
        if context.service_model.service_name != "dynamodb":
            return original(self, context)
        try:
            body = json.dumps(self.result)
        except TypeError:  # datetimes, bytes: moto's serializer knows their wire form
            return original(self, context)
        return 200, dict(DYNAMODB_JSON), body

    ActionResult.execute_result = execute_result  # type: ignore[method-assign]
    try:
        yield
    finally:
        ActionResult.execute_result = original  # type: ignore[method-assign]


@contextlib.contextmanager
def parse_each_state_machine_once() -> Iterator[None]:
    """Parse a state machine's definition once, not once per execution.

    moto 5.2.5 parses the ASL with ANTLR at the start of every execution (a fifth of a
    ``tickstep local`` run's CPU). The parsed program is already shared: an inline Map runs
    its iterations concurrently on one parsed item processor, each with its own
    ``Environment``; what an evaluation changes lives in that environment (retry counters in
    ``env.heap`` under each component's ``heap_key``). So executions of one definition share
    its program too. The one thing a component sets lazily is its ``heap_key``: made under a
    lock here, so two threads never give one component two keys. Speed only: a test compares
    every execution's history of a replay with and without it.
    """
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    worker: Any = ExecutionWorker
    component: Any = EvalComponent
    original_entrypoint = worker._get_evaluation_entrypoint
    original_key = component.heap_key
    if not isinstance(original_key, property) or original_key.fget is None:
        raise MotoMovedError("moto's EvalComponent.heap_key moved: pin moto==5.2.5")
    make_key = original_key.fget
    programs: dict[str, Any] = {}
    parsing, keying = threading.Lock(), threading.Lock()

    def entrypoint(execution_worker: Any) -> Any:
        definition = execution_worker._evaluation_details.state_machine_details.definition
        with parsing:
            program = programs.get(definition)
            if program is None:
                program = programs[definition] = AmazonStateLanguageParser.parse(definition)[0]
        return program

    def heap_key(self: Any) -> str:
        with keying:
            return str(make_key(self))

    worker._get_evaluation_entrypoint = entrypoint
    component.heap_key = property(heap_key)
    try:
        yield
    finally:
        worker._get_evaluation_entrypoint = original_entrypoint
        component.heap_key = original_key


@contextlib.contextmanager
def query_one_partition() -> Iterator[None]:
    """Let a table Query (not an index's) look at its own partition only.

    moto 5.2.5's ``Table.query`` sorts every item of the table (all markets' candles) by key,
    then keeps the partition's: each signal's candle read compared every candle stored. It now
    gets the partition's items, which it sorts and filters as before; a Query on an index,
    or on a table without a sort key, goes through unchanged. Speed only: a test compares the
    answers of every Query of a replay with moto's own.
    """
    import inspect

    from moto.dynamodb.models.table import Table

    cls: Any = Table
    original = cls.query
    signature = inspect.signature(original)
    if "index_name" not in signature.parameters:
        raise MotoMovedError("moto's Table.query moved: pin moto==5.2.5")

    def query(table: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(table, *args, **kwargs)
        hash_key = bound.arguments.get("hash_key")
        if bound.arguments.get("index_name") or hash_key is None or not table.range_key_attr:
            return original(table, *args, **kwargs)
        return original(_Partition(table, hash_key), *args, **kwargs)

    cls.query = query
    try:
        yield
    finally:
        cls.query = original


class _Partition:
    """A moto ``Table`` whose ``all_items()`` are one partition's (see query_one_partition)."""

    def __init__(self, table: Any, hash_key: Any) -> None:
        self._table = table
        self._items = list(table.items.get(hash_key, {}).values())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def all_items(self) -> list[Any]:
        return self._items


@contextlib.contextmanager
def parse_each_json_path_once() -> Iterator[None]:
    """Parse each JSONPath the interpreter evaluates once.

    moto 5.2.5's Step Functions interpreter parses a state's paths (``$.detail.candles``,
    ``ResultPath``) every time it evaluates them, and jsonpath_ng builds its lexer and parser
    tables for every parse (0.25 ms each). A parsed path is a tree the evaluation only reads
    (``find``, ``update_or_create`` return new data), so each path string keeps its parse.
    Speed only: a test compares every execution of a replay with and without it.
    """
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    with _wrapped([(json_path, "parse"), (result_path, "parse")], functools.lru_cache(4096)):
        yield


@contextlib.contextmanager
def cache_response_method_names() -> Iterator[None]:
    """moto 5.2.5 lists a response class's methods with ``inspect.getmembers`` on every request
    (to check the action is one); classes do not change, so list each once. Speed only."""
    from moto.core import responses

    with _wrapped([(responses, "method_names_from_class")], functools.cache):
        yield


@contextlib.contextmanager
def notify_progress(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` after an execution ends and after a queue gets a message (moto 5.2.5's
    execution-terminated callback and SQS backend), so ``settle`` waits for those instead of
    polling on a timer. It only wakes a waiter: the waiter still reads moto's state."""
    from moto.sqs.models import SQSBackend
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    hooks: list[tuple[Any, str]] = [
        (BaseExecutionWorkerCommunication, "terminated"),
        (SQSBackend, "send_message"),
        (SQSBackend, "send_message_batch"),
        (SQSBackend, "change_message_visibility"),
    ]

    def notifying(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return original(*args, **kwargs)
            finally:
                callback()

        return call

    with _wrapped(hooks, notifying):
        yield


@contextlib.contextmanager
def _wrapped(attributes: Sequence[tuple[Any, str]], wrap: Callable[[Any], Any]) -> Iterator[None]:
    """Each ``(owner, name)`` attribute replaced by ``wrap(original)``, until the block ends."""
    saved = [getattr(owner, name) for owner, name in attributes]
    for (owner, name), original in zip(attributes, saved, strict=True):
        setattr(owner, name, wrap(original))
    try:
        yield
    finally:
        for (owner, name), original in zip(attributes, saved, strict=True):
            setattr(owner, name, original)
