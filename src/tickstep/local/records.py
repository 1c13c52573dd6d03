"""The records the offline runtime passes around: a function as the template declares it, the
Lambda context its handler gets, the SQS event records and the EventBridge deliveries it makes
itself, and where the template's dead-letter queues are."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tickstep.local.template import ACCOUNT, REGION


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    memory_mb: int
    timeout_s: int
    events: dict[str, Any]


@dataclass
class LambdaContext:
    """What Powertools reads from a Lambda context object."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class InvocationStats:
    durations_ms: list[float] = field(default_factory=list)
    """Each invocation's duration here (its compute, and moto answering its AWS calls)."""
    modelled_ms: list[float] = field(default_factory=list)
    """The same invocations on Lambda: the duration without the time spent inside AWS SDK
    calls, plus each call's published latency (tickstep.cost.modelled_duration_ms)."""
    errors: int = 0


@dataclass
class Delivery:
    rule: str
    target: dict[str, Any]
    event: dict[str, Any]


_DLQ_KEYS = {"deadLetterTargetArn", "DeadLetterConfig", "DeadLetterQueue"}


def dead_letter_targets(node: Any, under_dlq_key: bool = False) -> Iterator[str]:
    """Logical ids that ``Fn::GetAtt`` points at under a dead-letter setting, anywhere."""
    if isinstance(node, dict):
        getatt = node.get("Fn::GetAtt")
        if under_dlq_key and isinstance(getatt, list) and getatt:
            yield str(getatt[0])
        for key, value in node.items():
            yield from dead_letter_targets(value, under_dlq_key or key in _DLQ_KEYS)
    elif isinstance(node, list):
        for value in node:
            yield from dead_letter_targets(value, under_dlq_key)


def sqs_record(message: dict[str, Any], url: str) -> dict[str, Any]:
    name = url.rsplit("/", 1)[-1]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
        "awsRegion": REGION,
    }
