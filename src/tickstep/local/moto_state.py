"""What the offline runtime reads from moto's backends directly, rather than through the API.

Each answers as the API call it stands for would, without moto serialising (and botocore
parsing) what the runtime reads over and over: the runtime polls for running executions while
they run, the report reads every execution's history, the drill counts intents after every
tick. Going through the API took a sixth of a drill's CPU and held the GIL the executions need.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tickstep.local.template import ACCOUNT, REGION


def running_executions(state_machine_arns: Iterable[str]) -> list[str]:
    """ListExecutions(statusFilter=RUNNING) over these state machines: execution ARNs."""
    from moto.stepfunctions.responses import get_backend

    backend = get_backend(ACCOUNT, REGION)
    return [
        execution.execution_arn
        for arn in state_machine_arns
        for execution in list(backend.describe_state_machine(arn).executions)
        if execution.status == "RUNNING"
    ]


def execution_history(execution_arn: str) -> list[dict[str, Any]]:
    """GetExecutionHistory's events, oldest first, all of them (no 1,000-event page)."""
    from moto.stepfunctions.responses import get_backend

    history = get_backend(ACCOUNT, REGION).get_execution_history(execution_arn)
    return list(history["events"])


def item_count(table: str) -> int:
    """Scan(Select=COUNT) of a table: moto's Scan deep-copies every item to count them."""
    from moto.dynamodb.models import dynamodb_backends

    return len(dynamodb_backends[ACCOUNT][REGION].get_table(table))
