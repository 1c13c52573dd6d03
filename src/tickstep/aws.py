"""The AWS services that are not storage, behind the ports' small interfaces: the event bus
(EventBridge ``put_events``) and the order workflow's task tokens (Step Functions)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class EventBus:
    """Publishes domain events on the project's bus; fails loudly on a rejected entry."""

    client: Any
    bus_name: str

    def publish(self, source: str, detail_type: str, details: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(details), 10):
            entries = [
                {
                    "EventBusName": self.bus_name,
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, separators=(",", ":")),
                }
                for detail in details[start : start + 10]
            ]
            response = self.client.put_events(Entries=entries)
            if response.get("FailedEntryCount"):
                failed = [e for e in response.get("Entries", []) if e.get("ErrorCode")]
                raise RuntimeError(f"put_events rejected {len(failed)} {detail_type}: {failed[:1]}")


class TaskTokens:
    """Answers the order workflow's ``waitForTaskToken`` task.

    A token already answered or timed out (a redelivered message) is not an error: the
    workflow has moved on, and the ledger already holds the outcome. Both methods return
    whether the workflow took the answer.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        return self._answer(
            self._client.send_task_success, taskToken=token, output=json.dumps(output)
        )

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._answer(
            self._client.send_task_failure, taskToken=token, error=error[:256], cause=cause[:32768]
        )

    def _answer(self, call: Any, **kwargs: Any) -> bool:
        errors = self._client.exceptions
        try:
            call(**kwargs)
        except (errors.TaskTimedOut, errors.InvalidToken, errors.TaskDoesNotExist):
            return False  # answered or timed out already: the workflow has moved on
        return True
