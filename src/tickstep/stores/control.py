"""The kill switch in DynamoDB."""

from __future__ import annotations

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
