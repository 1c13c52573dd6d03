"""The AWS side of the offline runtime: the template's resources in moto, in-process.

``LocalCloud`` reads ``template.yaml``, creates its tables, queues, event bus, rules and state
machines (the real ``statemachines/*.asl.json`` with their substitutions) in moto, and routes
what moto cannot run itself:

* Lambda invocations (moto without Docker only echoes them) go to the real handler modules
  in ``functions/<name>/app.py``, with that function's environment from the template;
* EventBridge rule targets that moto does not deliver (Step Functions, Lambda) are delivered
  by the rules' own patterns, with the target's dead-letter queue on failure;
* the order queue is consumed by the execute handler, as its SQS event source would be.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from tickstep.local import moto_patches
from tickstep.local.faults import FaultInjector, stable_key
from tickstep.local.recorder import SdkTime, calls_made_by, sdk_time, timing_sdk_calls
from tickstep.local.records import (
    Delivery,
    FunctionSpec,
    InvocationStats,
    LambdaContext,
    dead_letter_targets,
    sqs_record,
)
from tickstep.local.template import (
    ACCOUNT,
    REGION,
    Resolver,
    TemplateError,
    load_template,
    parameter_values,
)

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class LocalRuntimeError(RuntimeError):
    """The offline runtime cannot go on (a moto hook moved, a poll passed its deadline...)."""


class LocalCloud:
    """The stack of ``template.yaml`` running in moto in this process (a context manager)."""

    def __init__(
        self,
        root: Path,
        parameters: Mapping[str, Any] | None = None,
        *,
        environment_overrides: Mapping[str, str] | None = None,
        faults: FaultInjector | None = None,
    ) -> None:
        self.root = root
        self.template = load_template(root / "template.yaml")
        self.parameters = parameter_values(self.template, parameters or {})
        self.environment_overrides = dict(environment_overrides or {})
        self.resolver = Resolver(self.template, self.parameters)
        self.resolver.attributes = self._attribute
        self.functions: dict[str, FunctionSpec] = {}
        self.state_machines: dict[str, str] = {}  # logical id -> ARN
        self.queues: dict[str, str] = {}  # logical id -> URL
        self.tables: dict[str, str] = {}
        self.stats: dict[str, InvocationStats] = defaultdict(InvocationStats)
        self.pending: list[Delivery] = []
        self.deliveries_failed = 0
        self._modules: dict[str, ModuleType] = {}
        self._invoke_lock = threading.RLock()
        self._pending_lock = threading.Lock()
        self.progress = threading.Event()
        """Set when something the runtime waits for happens: an execution ended, a queue got a
        message, a rule matched an event (``settle`` waits on it rather than on a timer)."""
        self._stack = contextlib.ExitStack()
        self.faults = faults
        """Faults to inject at delivery (duplicates, Lambda retries, DynamoDB throttles)."""
        self.retry_time_scale = 1.0
        """Retry intervals in the state machines run this much faster (the drill's speed)."""
        self.log_stream: TextIO | None = None
        """Where the functions' stdout (Powertools logs and metrics) goes; None: stdout."""
        self.before_invoke: Callable[[str, ModuleType], None] | None = None
        """Called with (function logical id, handler module) before each invocation: where the
        runtime hands its own collaborators (replay feed, paper exchange) to a handler."""

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> LocalCloud:
        from moto import mock_aws

        self._stack.enter_context(_patched_environ(CREDENTIALS))
        self._stack.enter_context(mock_aws(config=MOTO_CONFIG))  # type: ignore[call-overload]
        self._stack.enter_context(self._route_lambda_invocations())
        self._stack.enter_context(self._deliver_unsupported_targets())
        self._stack.enter_context(moto_patches.fix_moto_sfn_service_integrations())
        self._stack.enter_context(moto_patches.fix_moto_early_task_token_answer())
        self._stack.enter_context(moto_patches.fix_moto_execution_status_before_start())
        self._stack.enter_context(moto_patches.reuse_moto_sfn_service_clients())
        self._stack.enter_context(moto_patches.speed_patches(self.progress.set))
        self._stack.enter_context(timing_sdk_calls())  # for the modelled Lambda durations
        self._stack.enter_context(moto_patches.scaled_retry_sleep(lambda: self.retry_time_scale))
        import boto3

        boto3.setup_default_session(region_name=REGION)  # what the handlers' clients use
        if self.faults is not None and self.faults.probabilities.get("ddb-throttle"):
            from tickstep.local.faults import throttle_dynamodb

            default = boto3._get_default_session()._session
            emitter = default.get_component("event_emitter")
            emitter.register_first("before-send.dynamodb", throttle_dynamodb(self.faults))
            self._stack.enter_context(moto_patches.moto_skips_throttled_requests())

        self.session = boto3.session.Session(region_name=REGION)
        self.ddb = self.session.client("dynamodb")
        self.sqs = self.session.client("sqs")
        self.sfn = self.session.client("stepfunctions")
        self.events = self.session.client("events")
        self._build()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    # -- building the stack ---------------------------------------------------------------

    def _resources(self, *types: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.template["Resources"].items():
            if resource["Type"] not in types:
                continue
            condition = resource.get("Condition")
            if condition is not None and not self.resolver.condition(condition):
                continue
            yield logical_id, resource

    def _build(self) -> None:
        for logical_id, _ in self._resources("AWS::Serverless::LayerVersion"):
            self.resolver.refs[logical_id] = self._arn("lambda", f"layer:{logical_id}:1")
        for logical_id, _ in self._resources("AWS::Logs::LogGroup"):
            self.resolver.refs[logical_id] = logical_id
        for logical_id, res in self._resources("AWS::Events::EventBus"):
            name = self.resolver.resolve(res["Properties"]["Name"])
            self.events.create_event_bus(Name=name)
            self.resolver.refs[logical_id] = name
        queues = sorted(  # dead-letter queues first: the others' redrive policies name them
            self._resources("AWS::SQS::Queue"),
            key=lambda item: "RedrivePolicy" in item[1].get("Properties", {}),
        )
        for logical_id, res in queues:
            self._create_queue(logical_id, res.get("Properties", {}))
        for logical_id, res in self._resources("AWS::DynamoDB::Table"):
            self._create_table(logical_id, res["Properties"])
        for logical_id, res in self._resources("AWS::SecretsManager::Secret"):
            name = self.resolver.resolve(res["Properties"]["Name"])
            arn = self.session.client("secretsmanager").create_secret(Name=name)["ARN"]
            self.resolver.refs[logical_id] = arn
        for logical_id, _ in self._resources("AWS::Serverless::Function"):
            self.resolver.refs[logical_id] = logical_id
            # AutoPublishAlias: the state machines call the alias (the handler either way).
            arn = self._arn("lambda", f"function:{logical_id}")
            self.resolver.refs[f"{logical_id}.Alias"] = f"{arn}:live"
            self.resolver.refs[f"{logical_id}.Version"] = f"{arn}:1"
        for logical_id, res in self._resources("AWS::Serverless::StateMachine"):
            self.state_machines[logical_id] = self._arn("states", f"stateMachine:{logical_id}")
            self.resolver.refs[logical_id] = self.state_machines[logical_id]
            alias = res["Properties"].get("AutoPublishAlias")
            if alias:  # moto 5.2.5 cannot start an execution through an alias: the machine
                self.resolver.refs[f"{logical_id}Alias{alias}"] = self.state_machines[logical_id]
        for logical_id, res in self._resources("AWS::Serverless::Function"):
            self.functions[logical_id] = self._function_spec(logical_id, res["Properties"])
        for logical_id, res in self._resources("AWS::Serverless::StateMachine"):
            self._create_state_machine(logical_id, res["Properties"])

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"

    def _attribute(self, logical_id: str, attribute: str) -> Any:
        resource = self.template["Resources"].get(logical_id)
        if resource is None:
            # SAM-generated resources (e.g. <Function><Event> rules): a stable stand-in.
            return self._arn("events", f"rule/{logical_id}")
        kind = resource["Type"]
        if kind == "AWS::SQS::Queue":
            url = self.queues[logical_id]
            name = url.rsplit("/", 1)[1]
            values = {"Arn": self._arn("sqs", name), "QueueName": name, "QueueUrl": url}
            return values[attribute]
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return self._arn("dynamodb", f"table/{self.tables[logical_id]}")
        if kind == "AWS::Serverless::Function" and attribute == "Arn":
            return self._arn("lambda", f"function:{logical_id}")
        if kind == "AWS::Serverless::StateMachine":
            return {"Arn": self.state_machines[logical_id], "Name": logical_id}[attribute]
        if kind == "AWS::Events::EventBus" and attribute in ("Arn", "Name"):
            name = self.resolver.refs[logical_id]
            return name if attribute == "Name" else self._arn("events", f"event-bus/{name}")
        if kind == "AWS::Logs::LogGroup" and attribute == "Arn":
            return self._arn("logs", f"log-group:{logical_id}:*")
        if kind == "AWS::SecretsManager::Secret" and attribute == "Arn":
            return self.resolver.refs[logical_id]
        raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} is not supported offline")

    def _create_queue(self, logical_id: str, props: dict[str, Any]) -> None:
        fifo = bool(props.get("FifoQueue"))
        name = logical_id + (".fifo" if fifo else "")
        attributes: dict[str, str] = {}
        if fifo:
            attributes["FifoQueue"] = "true"
            attributes["ContentBasedDeduplication"] = str(
                bool(props.get("ContentBasedDeduplication"))
            ).lower()
        if "VisibilityTimeout" in props:
            attributes["VisibilityTimeout"] = str(props["VisibilityTimeout"])
        redrive = props.get("RedrivePolicy")
        if redrive is not None:
            resolved = self.resolver.resolve(redrive)
            attributes["RedrivePolicy"] = json.dumps(resolved)
        url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self.queues[logical_id] = url
        self.resolver.refs[logical_id] = url

    def _create_table(self, logical_id: str, props: dict[str, Any]) -> None:
        kwargs: dict[str, Any] = {
            "TableName": logical_id,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        self.ddb.create_table(**kwargs)
        self.tables[logical_id] = logical_id
        self.resolver.refs[logical_id] = logical_id

    def _function_spec(self, logical_id: str, props: dict[str, Any]) -> FunctionSpec:
        globals_ = self.template.get("Globals", {}).get("Function", {})
        env = dict(self.resolver.resolve(globals_.get("Environment", {}).get("Variables", {})))
        env.update(self.resolver.resolve(props.get("Environment", {}).get("Variables", {})))
        env = {k: ("" if v is None else str(v)) for k, v in env.items()}
        env.update(self.environment_overrides)
        env["AWS_LAMBDA_FUNCTION_NAME"] = logical_id
        handler = props.get("Handler", globals_.get("Handler", "app.handler"))
        return FunctionSpec(
            logical_id=logical_id,
            name=logical_id,
            arn=self._arn("lambda", f"function:{logical_id}"),
            code_dir=self.root / str(props["CodeUri"]),
            handler=str(handler),
            environment=env,
            memory_mb=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
            timeout_s=int(props.get("Timeout", globals_.get("Timeout", 3))),
            events=props.get("Events", {}),
        )

    def _create_state_machine(self, logical_id: str, props: dict[str, Any]) -> None:
        text = (self.root / props["DefinitionUri"]).read_text()
        substitutions = self.resolver.resolve(props.get("DefinitionSubstitutions", {}))
        for key, value in substitutions.items():
            text = text.replace("${" + key + "}", str(value))
        if "${" in text:
            start = text.index("${")
            raise TemplateError(f"{props['DefinitionUri']}: unfilled {text[start : start + 40]}")
        self.sfn.create_state_machine(
            name=logical_id,
            definition=text,
            roleArn=self._arn("iam", f"role/{logical_id}Role").replace(f":{REGION}:", "::"),
            type=props.get("Type", "STANDARD"),
        )
        for event_id, event in props.get("Events", {}).items():
            if event["Type"] != "EventBridgeRule":
                raise TemplateError(f"{logical_id}.Events.{event_id}: {event['Type']} offline")
            p = self.resolver.resolve(event["Properties"])
            bus = p.get("EventBusName", "default")
            rule = f"{logical_id}{event_id}"
            self.events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(p["Pattern"]))
            target: dict[str, Any] = {
                "Id": f"{logical_id}Target",
                "Arn": self.state_machines[logical_id],
                "RoleArn": self._arn("iam", f"role/{rule}Role").replace(f":{REGION}:", "::"),
            }
            if "DeadLetterConfig" in p:
                target["DeadLetterConfig"] = {"Arn": p["DeadLetterConfig"]["Arn"]}
            self.events.put_targets(Rule=rule, EventBusName=bus, Targets=[target])

    # -- Lambda ---------------------------------------------------------------------------

    def handler_module(self, logical_id: str) -> ModuleType:
        """Import ``functions/<name>/app.py`` once, under its own name and environment."""
        module = self._modules.get(logical_id)
        if module is None:
            spec_ = self.functions[logical_id]
            module_file, _ = spec_.handler.rsplit(".", 1)
            path = spec_.code_dir / f"{module_file}.py"
            name = f"tickstep_fn_{logical_id}"
            loader_spec = importlib.util.spec_from_file_location(name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise LocalRuntimeError(f"{logical_id}: cannot import {path}")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module  # dataclasses and pickling look modules up by name
            with _patched_environ(spec_.environment):
                loader_spec.loader.exec_module(module)
            self._modules[logical_id] = module
        return module

    def release(self) -> None:
        """A deploy: each function's next invocation starts a new container (a new version)."""
        with self._invoke_lock:
            for logical_id in list(self._modules):
                sys.modules.pop(self._modules.pop(logical_id).__name__, None)

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Invoke a function's real handler in-process (one at a time, like a reserved
        concurrency of 1, so each runs with its own environment variables)."""
        spec_ = self.functions[logical_id]
        logs = (
            contextlib.redirect_stdout(self.log_stream)
            if self.log_stream is not None
            else contextlib.nullcontext()
        )
        with (
            self._invoke_lock,
            _patched_environ(spec_.environment),
            logs,
            calls_made_by(logical_id),  # tickstep.local.recorder: whose AWS calls these are
        ):
            module = self.handler_module(logical_id)
            if self.before_invoke is not None:
                self.before_invoke(logical_id, module)
            handler = getattr(module, spec_.handler.rsplit(".", 1)[1])
            context = LambdaContext(spec_.name, spec_.memory_mb, spec_.arn)
            started = time.perf_counter()
            try:
                with sdk_time() as sdk:
                    result = handler(event, context)
            except Exception:
                self.stats[logical_id].errors += 1
                raise
            finally:
                self._record_duration(logical_id, (time.perf_counter() - started) * 1000, sdk)
            if self.faults is not None and self.faults.roll(
                "lambda-retry", stable_key(logical_id, event)
            ):
                # The caller never saw the answer (a timeout, a lost response) and invokes
                # again with the same event; what the first call did must not happen twice.
                context = LambdaContext(spec_.name, spec_.memory_mb, spec_.arn)
                try:
                    handler(json.loads(json.dumps(event)), context)
                except Exception:
                    self.stats[logical_id].errors += 1
            return result

    def _record_duration(self, logical_id: str, local_ms: float, sdk: SdkTime) -> None:
        from tickstep.cost import modelled_duration_ms

        stats = self.stats[logical_id]
        stats.durations_ms.append(local_ms)
        stats.modelled_ms.append(modelled_duration_ms(local_ms, sdk.seconds * 1000, sdk.calls))

    def invoke_scheduled(self, logical_id: str, event: Any) -> Any:
        """Invoke as the function's EventBridge schedule would: a failure is retried as its
        RetryPolicy says, then the event goes to its DeadLetterConfig queue with the error;
        ``None`` when it ended there."""
        schedule: dict[str, Any] = next(
            (
                e["Properties"]
                for e in self.functions[logical_id].events.values()
                if e["Type"] == "Schedule"
            ),
            {},
        )
        schedule = self.resolver.resolve(schedule)
        attempts = 1 + int(schedule.get("RetryPolicy", {}).get("MaximumRetryAttempts", 185))
        for attempt in range(1, attempts + 1):
            try:
                return self.invoke(logical_id, event)
            except Exception as exc:
                traceback.print_exc(file=self.log_stream or sys.stderr)
                if attempt < attempts:
                    continue
                dlq = schedule.get("DeadLetterConfig", {}).get("Arn")
                if dlq is None:
                    raise
                self.sqs.send_message(
                    QueueUrl=self.queue_url_for_arn(dlq),
                    MessageBody=json.dumps(event),
                    MessageAttributes={
                        "ERROR_CODE": {"DataType": "String", "StringValue": type(exc).__name__},
                        "ERROR_MESSAGE": {"DataType": "String", "StringValue": str(exc)[:256]},
                    },
                )
        return None

    @contextlib.contextmanager
    def _route_lambda_invocations(self) -> Iterator[None]:
        try:
            from moto.awslambda_simple.models import LambdaSimpleBackend
        except ImportError as exc:  # pragma: no cover - guarded by a test on the pinned moto
            raise LocalRuntimeError("moto.awslambda_simple moved: pin moto==5.2.5") from exc
        original = LambdaSimpleBackend.invoke
        cloud = self

        def invoke(  # noqa: PLR0917 -- moto's signature
            backend: Any,
            function_name: str,
            qualifier: Any,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> bytes:
            # A name, name:qualifier, or an ARN with or without the alias/version qualifier.
            parts = function_name.split(":")
            logical_id = parts[6] if function_name.startswith("arn:") else parts[0]
            if logical_id not in cloud.functions:
                raise LocalRuntimeError(f"invoke: no function {function_name} in template.yaml")
            payload = json.loads(body) if body else {}
            try:
                result = cloud.invoke(logical_id, payload)
            except Exception as exc:  # the Lambda service reports any handler exception
                traceback.print_exc(file=cloud.log_stream or sys.stderr)  # and logs it
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(
                    {"errorType": type(exc).__name__, "errorMessage": str(exc)[:1000]}
                ).encode()
            return json.dumps(result).encode()

        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]

    # -- EventBridge ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _deliver_unsupported_targets(self) -> Iterator[None]:
        from moto.events.models import Rule

        original = Rule.send_to_targets
        cloud = self

        def send_to_targets(rule: Any, event: Any, transform_input: bool = True) -> None:
            if not rule.event_pattern.matches_event(event):
                return
            ours = [t for t in rule.targets if t["Arn"].split(":")[2] in ("states", "lambda")]
            others = [t for t in rule.targets if t not in ours]
            with cloud._pending_lock:
                cloud.pending.extend(
                    Delivery(rule.name, t, json.loads(json.dumps(event))) for t in ours
                )
            if ours:
                cloud.progress.set()
            if others:
                saved = rule.targets
                rule.targets = others
                try:
                    original(rule, event, transform_input)
                finally:
                    rule.targets = saved

        Rule.send_to_targets = send_to_targets  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            Rule.send_to_targets = original  # type: ignore[method-assign]

    def deliver_pending(self, name_for: Callable[[Delivery], str]) -> int:
        """Start the executions (or invocations) that rules matched; a failed delivery goes
        to the target's dead-letter queue, as EventBridge would after its retries."""
        with self._pending_lock:
            batch, self.pending = self.pending, []
        if self.faults is not None:
            faults = self.faults
            batch += [
                d
                for d in batch
                if faults.roll("duplicate-delivery", stable_key(d.rule, d.event.get("detail")))
            ]
        for delivery in batch:
            arn = delivery.target["Arn"]
            try:
                if ":states:" in arn:
                    self.sfn.start_execution(
                        stateMachineArn=arn,
                        name=name_for(delivery),
                        input=json.dumps(delivery.event),
                    )
                else:
                    self.invoke(arn.rsplit(":", 1)[-1], delivery.event)
            except Exception as exc:
                self.deliveries_failed += 1
                dlq = delivery.target.get("DeadLetterConfig", {}).get("Arn")
                if dlq is None:
                    raise
                self.sqs.send_message(
                    QueueUrl=self.queue_url_for_arn(dlq),
                    MessageBody=json.dumps(delivery.event),
                    MessageAttributes={
                        "ERROR_CODE": {"DataType": "String", "StringValue": type(exc).__name__},
                        "ERROR_MESSAGE": {"DataType": "String", "StringValue": str(exc)[:256]},
                        "RULE_ARN": {"DataType": "String", "StringValue": delivery.rule},
                    },
                )
        return len(batch)

    def queue_url_for_arn(self, arn: str) -> str:
        name = arn.rsplit(":", 1)[-1]
        for url in self.queues.values():
            if url.rsplit("/", 1)[-1] == name:
                return url
        raise LocalRuntimeError(f"no queue {arn}")

    # -- SQS event sources ----------------------------------------------------------------

    def sqs_sources(self) -> list[tuple[str, str, int]]:
        """(function, queue URL, batch size) for every SQS event source in the template."""
        out = []
        for fn in self.functions.values():
            for event in fn.events.values():
                if event["Type"] == "SQS":
                    props = self.resolver.resolve(event["Properties"])
                    out.append(
                        (
                            fn.logical_id,
                            self.queue_url_for_arn(props["Queue"]),
                            int(props.get("BatchSize", 10)),
                        )
                    )
        return out

    def poll_sqs_sources(self) -> int:
        """Deliver visible messages to their functions the way Lambda's event source mapping
        does: a batch, partial failures left on the queue for redelivery (and the DLQ)."""
        delivered = 0
        for logical_id, url, batch_size in self.sqs_sources():
            response = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(batch_size, 10),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                continue
            event = {"Records": [sqs_record(m, url) for m in messages]}
            try:
                result = self.invoke(logical_id, event)
                failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            except Exception:
                # As Lambda does: the error goes to the function's log, the batch back to
                # the queue (and after maxReceiveCount to its dead-letter queue).
                traceback.print_exc(file=self.log_stream or sys.stderr)
                failed = {m["MessageId"] for m in messages}
            for m in messages:
                if m["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                else:
                    self.sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
            delivered += len(messages)
        return delivered

    # -- Step Functions -------------------------------------------------------------------

    def dead_letter_queues(self) -> list[str]:
        """Queues that some queue, rule or function names as its dead-letter target."""
        named = set(dead_letter_targets(self.template["Resources"]))
        return [q for q in self.queues if q in named]


@contextlib.contextmanager
def _patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
