"""Signals in DynamoDB."""

from __future__ import annotations

from typing import Any

from tickstep.models import (
    Market,
    Signal,
)
from tickstep.stores.dynamo import PK, SK, TTL_ATTRIBUTE, _s, from_item, to_item


class SignalStore:
    """Signals by market (pk = market key, sk = candle time), for the API's ``/signals``."""

    def __init__(self, client: Any, table: str, *, retention_s: int = 7 * 86_400) -> None:
        self._client = client
        self._table = table
        self._retention_s = retention_s

    def put(self, signal: Signal) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=to_item(
                {
                    PK: signal.market.key,
                    SK: signal.candle_time,
                    "action": signal.action.value,
                    "signal": signal.model_dump_json(),
                    TTL_ATTRIBUTE: signal.candle_time // 1000 + self._retention_s,
                }
            ),
        )

    def latest(self, market: Market, n: int = 10) -> list[Signal]:
        """The latest ``n`` stored signals of ``market``, newest first."""
        page = self._client.query(
            TableName=self._table,
            KeyConditionExpression=f"{PK} = :pk",
            ExpressionAttributeValues={":pk": _s(market.key)},
            ScanIndexForward=False,
            Limit=n,
        )
        rows = (from_item(item) for item in page.get("Items", []))
        return [Signal.model_validate_json(row["signal"]) for row in rows]
