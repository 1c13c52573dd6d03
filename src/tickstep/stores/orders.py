"""The order ledger in DynamoDB."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tickstep.models import (
    Market,
    Order,
    OrderIntent,
    OrderStatus,
    RiskDecision,
    Side,
)
from tickstep.orders import can_transition, is_repeat
from tickstep.ports import InvalidTransition, LedgerEntry, StaleWrite
from tickstep.stores.dynamo import (
    BY_STATUS_INDEX,
    PK,
    _iso,
    _n,
    _query_all,
    _s,
    condition_failed,
    from_item,
)


def _market_from_key(key: str) -> Market:
    exchange, symbol, timeframe = key.split(":")
    return Market(exchange=exchange, symbol=symbol, timeframe=timeframe)


class OrderStore:
    """The ledger (pk = intent id). The order workflow's RecordIntent creates each item; this
    store reads it and moves it only along :func:`tickstep.orders.can_transition`, with the
    current status as the write's condition."""

    def __init__(self, client: Any, table: str, *, status_index: str = BY_STATUS_INDEX) -> None:
        self._client = client
        self._table = table
        self._index = status_index

    @staticmethod
    def _entry(item: dict[str, Any]) -> LedgerEntry:
        row = from_item(item)
        intent_json, decision_json, order_json = (
            row.get(k) for k in ("intent", "decision", "order")
        )
        intent = OrderIntent.model_validate_json(intent_json) if intent_json else None
        order = Order.model_validate_json(order_json) if order_json else None
        market = (
            intent.market
            if intent
            else order.market
            if order
            else _market_from_key(row.get("market") or "")
        )
        return LedgerEntry(
            intent_id=row[PK],
            status=OrderStatus(row["status"]),
            market=market,
            side=Side(row.get("side") or (order.side if order else Side.BUY)),
            intent=intent,
            decision=RiskDecision.model_validate_json(decision_json) if decision_json else None,
            order=order,
            error=row.get("error"),
            sent_at=int(row["sent_at"]) if "sent_at" in row else None,
            candle_time=int(row.get("candle_time") or 0),
        )

    def get(self, intent_id: str) -> LedgerEntry | None:
        item = self._client.get_item(
            TableName=self._table, Key={PK: _s(intent_id)}, ConsistentRead=True
        ).get("Item")
        return None if item is None else self._entry(item)

    def mark_sent(self, intent_id: str, now_ms: int) -> None:
        """Note, before each send, that an order may now exist on the exchange: a later attempt
        that cannot find it must wait out the exchange's lag instead of sending again."""
        try:
            self._update_new_or_unknown(
                intent_id, "SET sent_at = :now", "attribute_exists(pk)", {":now": _n(now_ms)}
            )
        except condition_failed(self._client) as exc:
            raise StaleWrite(f"{intent_id}: not in the ledger as new or unknown") from exc

    def unmark_sent(self, intent_id: str, sent_at: int) -> None:
        """Take back :meth:`mark_sent` of ``sent_at`` when the exchange refused that send
        outright (nothing can appear); a later mark or a status change is left alone."""
        try:
            self._update_new_or_unknown(
                intent_id, "REMOVE sent_at", "sent_at = :sent", {":sent": _n(sent_at)}
            )
        except condition_failed(self._client):
            pass  # the condition said no: nothing to do

    def _update_new_or_unknown(
        self, intent_id: str, update: str, condition: str, values: dict[str, Any]
    ) -> None:
        """``update`` the item if ``condition`` holds and it is still new or unknown (nothing
        the exchange answered has been recorded)."""
        self._client.update_item(
            TableName=self._table,
            Key={PK: _s(intent_id)},
            UpdateExpression=update,
            ConditionExpression=f"{condition} AND #status IN (:new, :unknown)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                **values,
                ":new": _s(OrderStatus.NEW.value),
                ":unknown": _s(OrderStatus.UNKNOWN.value),
            },
        )

    def record(
        self, intent_id: str, expected: OrderStatus, order: Order, now_ms: int
    ) -> LedgerEntry:
        """Move the order from ``expected`` to ``order.status`` and keep the exchange's view.

        The same terminal status again is a no-op (a redelivery); anything
        :func:`can_transition` refuses raises :class:`InvalidTransition`.
        """
        if is_repeat(intent_id, expected, order.status):
            current = self.get(intent_id)
            if current is None:
                raise StaleWrite(f"{intent_id}: not in the ledger")
            return current
        moved = self._move(
            intent_id, expected, order.status, ("order", order.model_dump_json()), now_ms
        )
        return self._entry(moved)

    def settle(
        self, intent_id: str, expected: OrderStatus, status: OrderStatus, error: str, now_ms: int
    ) -> None:
        """Move an order with no exchange order (e.g. unknown, proved absent -> failed)."""
        if not can_transition(expected, status):
            raise InvalidTransition(f"{intent_id}: {expected.value} -> {status.value}")
        self._move(intent_id, expected, status, ("error", error[:1000]), now_ms)

    def _move(
        self,
        intent_id: str,
        expected: OrderStatus,
        status: OrderStatus,
        field: tuple[str, str],
        now_ms: int,
    ) -> dict[str, Any]:
        """Set ``status`` and one more ``(name, text)`` field if the item is still ``expected``
        (:class:`StaleWrite` if not); the item as it is now."""
        name, text = field
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={PK: _s(intent_id)},
                UpdateExpression=f"SET #status = :status, #{name} = :{name}, updated_at = :now",
                ConditionExpression="#status = :expected",
                ExpressionAttributeNames={"#status": "status", f"#{name}": name},
                ExpressionAttributeValues={
                    ":status": _s(status.value),
                    f":{name}": _s(text),
                    ":now": _s(_iso(now_ms)),
                    ":expected": _s(expected.value),
                },
                ReturnValues="ALL_NEW",
            )
        except condition_failed(self._client) as exc:
            raise StaleWrite(f"{intent_id}: no longer {expected.value}") from exc
        attributes: dict[str, Any] = response["Attributes"]
        return attributes

    def adopt(self, order: Order, now_ms: int) -> bool:
        """Record an order the pipeline did not place (once); False if already known."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    PK: _s(order.intent_id),
                    "status": _s(order.status.value),
                    "market": _s(order.market.key),
                    "side": _s(order.side.value),
                    "strategy": _s("external"),
                    "candle_time": _n(order.created_at),
                    "order": _s(order.model_dump_json()),
                    "recorded_at": _s(_iso(now_ms)),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except condition_failed(self._client):
            return False
        return True

    def by_status(
        self, statuses: Iterable[OrderStatus], *, limit: int | None = None
    ) -> list[LedgerEntry]:
        """Orders in any of ``statuses``, newest candle first (through the status index)."""
        entries: list[LedgerEntry] = []
        for status in statuses:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": self._index,
                "KeyConditionExpression": "#status = :status",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":status": _s(status.value)},
                "ScanIndexForward": False,
            }
            items = _query_all(self._client, limit=limit, **kwargs)
            entries.extend(self._entry(item) for item in items)
        entries.sort(key=lambda e: e.candle_time, reverse=True)
        return entries[:limit] if limit is not None else entries
