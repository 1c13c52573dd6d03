"""The kill switch in DynamoDB."""

from __future__ import annotations

from typing import Any

from tickstep.models import (
    TradingState,
    TradingStateRecord,
)
from tickstep.stores.dynamo import CONTROL_KEY, PK, _int, _n, _s, _str, condition_failed

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
        return TradingStateRecord(
            state=TradingState(item["state"]["S"]),
            reason=_str(item, "reason") or "",
            changed_at=_int(item, "changed_at") or 0,
            changed_by=_str(item, "changed_by") or "unknown",
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
                Item={
                    PK: _s(CONTROL_KEY),
                    "state": _s(record.state.value),
                    "reason": _s(record.reason),
                    "changed_at": _n(record.changed_at),
                    "changed_by": _s(record.changed_by),
                },
                **kwargs,
            )
        except condition_failed(self._client):
            return False
        return True
