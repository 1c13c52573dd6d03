"""The kill switch in DynamoDB."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tickstep.models import (
    TradingState,
    TradingStateRecord,
)
from tickstep.stores.dynamo import (
    CONTROL_KEY,
    PK,
    _s,
    condition_failed,
    from_item,
    to_item,
)

DEFAULT_TRADING_STATE = TradingStateRecord(
    state=TradingState.ACTIVE, reason="default: never set", changed_at=0, changed_by="default"
)


class ControlStore:
    """The trading state (one item); ACTIVE when nobody ever set it."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def get(self) -> TradingStateRecord:
        item = self._client.get_item(
            TableName=self._table, Key={PK: _s(CONTROL_KEY)}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return DEFAULT_TRADING_STATE
        row = from_item(item)
        return TradingStateRecord(
            state=TradingState(row["state"]),
            reason=row.get("reason") or "",
            changed_at=int(row.get("changed_at") or 0),
            changed_by=row.get("changed_by") or "unknown",
        )

    def set(self, record: TradingStateRecord, *, unless: TradingState | None = None) -> bool:
        """Write the state; with ``unless``, only if the current state is not that one (so
        two risk decisions tripping the same limit halt once). False if skipped."""
        kwargs: dict[str, Any] = {}
        if unless is not None:
            kwargs = {
                "ConditionExpression": "attribute_not_exists(#state) OR #state <> :unless",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {":unless": _s(unless.value)},
            }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_item(
                    {
                        PK: CONTROL_KEY,
                        "state": record.state.value,
                        "reason": record.reason,
                        "changed_at": record.changed_at,
                        "changed_by": record.changed_by,
                    }
                ),
                **kwargs,
            )
        except condition_failed(self._client):
            return False
        return True


DENIALS_KEY = "denials#{day}"
"""One item a UTC day (``day``: days since the epoch): a number attribute per reason code."""


class DenialStore:
    """:class:`~tickstep.ports.DenialCounts` in the control table; risk is its only writer."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def count(self, day: int, reasons: Sequence[str]) -> None:
        """Add one to each reason of one denial (an atomic ADD: concurrent deciders agree)."""
        if not reasons:
            return
        names = {f"#r{i}": reason for i, reason in enumerate(sorted(set(reasons)))}
        self._client.update_item(
            TableName=self._table,
            Key={PK: _s(DENIALS_KEY.format(day=day))},
            UpdateExpression="ADD " + ", ".join(f"{name} :one" for name in names),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    def since(self, day: int, today: int) -> dict[str, int]:
        """Denials by reason from ``day`` to ``today``, both included (at most 100 days)."""
        keys = [{PK: _s(DENIALS_KEY.format(day=d))} for d in range(max(day, today - 99), today + 1)]
        totals: dict[str, int] = {}
        request: dict[str, Any] = {self._table: {"Keys": keys}}
        while request:
            answer = self._client.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(self._table, []):
                for reason, value in from_item(item).items():
                    if reason != PK:
                        totals[reason] = totals.get(reason, 0) + int(value)
            request = answer.get("UnprocessedKeys") or {}
        return dict(sorted(totals.items()))
