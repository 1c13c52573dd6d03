"""Candles in DynamoDB."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from tickstep.models import (
    Candle,
    Market,
)
from tickstep.ports import StaleWrite
from tickstep.stores.dynamo import (
    PK,
    SK,
    TTL_ATTRIBUTE,
    _n,
    _s,
    condition_failed,
    from_item,
    to_item,
)

PUBLISHED_PREFIX = "PUBLISHED#"
"""Partition key prefix of each market's publish cursor (then the market key)."""
UNPROCESSED_ATTEMPTS = 8
"""Batch writes of what DynamoDB left unprocessed (a throttled partition), in all."""
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 2.0
"""Between them, a random wait up to ``BACKOFF_BASE_S * 2**attempt``, at most ``BACKOFF_CAP_S``
(AWS's advice for UnprocessedItems: back off exponentially, or the retries throttle too)."""


class CandleStore:
    """Closed candles by market (pk = market key, sk = open time), expiring after a while.

    Retention is at least ``min_retention_s`` and at least 1000 candles, so a 1d strategy's
    warmup is never cut by the TTL.
    """

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        min_retention_s: int = 14 * 86_400,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table
        self._min_retention_s = min_retention_s
        self._sleep = sleep

    def _item(self, market: Market, candle: Candle) -> dict[str, Any]:
        close_s = (candle.timestamp + market.timeframe_ms) // 1000
        keep_s = max(self._min_retention_s, 1000 * market.timeframe_ms // 1000)
        return to_item(
            {
                PK: market.key,
                SK: candle.timestamp,
                "o": candle.open,
                "h": candle.high,
                "l": candle.low,
                "c": candle.close,
                "v": candle.volume,
                TTL_ATTRIBUTE: close_s + keep_s,
            }
        )

    def put(self, market: Market, candles: Sequence[Candle]) -> None:
        """Store (or overwrite with the same values) candles; 25 per batch request."""
        for start in range(0, len(candles), 25):
            requests = [
                {"PutRequest": {"Item": self._item(market, c)}} for c in candles[start : start + 25]
            ]
            pending: dict[str, Any] = {self._table: requests}
            for attempt in range(UNPROCESSED_ATTEMPTS):
                if attempt:  # what DynamoDB left unprocessed, after a back-off with full jitter
                    self._sleep(random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)))
                response = self._client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
            if pending:
                raise StaleWrite(f"{market.key}: DynamoDB left candles unwritten after retries")

    def latest(self, market: Market, n: int, *, until_ms: int | None = None) -> list[Candle]:
        """The latest ``n`` candles opened at or before ``until_ms``, oldest first."""
        if n <= 0:
            return []
        condition = f"{PK} = :pk"
        values: dict[str, Any] = {":pk": _s(market.key)}
        if until_ms is not None:
            condition += f" AND {SK} <= :until"
            values[":until"] = _n(until_ms)
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        while len(items) < n:
            page = self._client.query(**kwargs, Limit=n - len(items))
            items.extend(page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [self._candle(item) for item in reversed(items)]

    def latest_timestamp(self, market: Market) -> int | None:
        latest = self.latest(market, 1)
        return latest[0].timestamp if latest else None

    # How far ingest has published: one item per market beside its candles (its own
    # partition, so the candles' queries never see it).

    @staticmethod
    def _cursor_key(market: Market) -> dict[str, Any]:
        return {PK: _s(f"{PUBLISHED_PREFIX}{market.key}"), SK: _n(0)}

    def published_through(self, market: Market) -> int | None:
        """The open time of the last candle ingest published for ``market`` (None: never)."""
        item = self._client.get_item(
            TableName=self._table, Key=self._cursor_key(market), ConsistentRead=True
        ).get("Item")
        return None if item is None else int(item["through"]["N"])

    def mark_published(self, market: Market, through_ms: int) -> None:
        """Move the cursor forward to ``through_ms``; never back (a slow, late run)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._cursor_key(market),
                UpdateExpression="SET through = :t",
                ConditionExpression="attribute_not_exists(through) OR through < :t",
                ExpressionAttributeValues={":t": _n(through_ms)},
            )
        except condition_failed(self._client):
            pass  # already there or further

    @staticmethod
    def _candle(item: dict[str, Any]) -> Candle:
        row = from_item(item)
        return Candle(
            timestamp=int(row[SK]),
            open=row["o"],
            high=row["h"],
            low=row["l"],
            close=row["c"],
            volume=row["v"],
        )
