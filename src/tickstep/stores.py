"""DynamoDB adapters: candles, signals, the order ledger, the portfolio, the kill switch.

Each store takes a low-level boto3 DynamoDB client (a moto- or stub-backed one in tests) and
never imports boto3 itself. Numbers cross as DynamoDB ``N`` strings written from ``Decimal`` and
read back with ``Decimal(str)``, so money stays exact; whole models that nobody queries by field
are stored as pydantic JSON in an ``S`` attribute. Every write that could race or be repeated is
conditional, so a redelivery changes nothing and a stale writer fails instead of overwriting.

Also here, because they are the same kind of thing (AWS clients behind a small interface):
:class:`EventBus` (EventBridge ``put_events``) and :class:`TaskTokens` (Step Functions task
tokens).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tickstep.models import (
    Balance,
    Candle,
    Fill,
    Market,
    MarketRules,
    Order,
    OrderIntent,
    OrderStatus,
    Position,
    RiskDecision,
    Side,
    Signal,
    TradingState,
    TradingStateRecord,
)
from tickstep.orders import can_transition
from tickstep.portfolio import apply_fill, realized_of

__all__ = [
    "ACCOUNT_PK",
    "BY_STATUS_INDEX",
    "CONTROL_KEY",
    "EVENT_SOURCE_CONTROL",
    "HOUR_MS",
    "PK",
    "SK",
    "AccountRecord",
    "CandleStore",
    "ControlStore",
    "EventBus",
    "FillCursor",
    "InvalidTransition",
    "LedgerEntry",
    "OrderStore",
    "PortfolioStore",
    "SignalStore",
    "StaleWrite",
    "TaskTokens",
    "fill_delta",
]

# -- key layout (the one place it is written down; template.yaml declares the same) ---------
PK = "pk"
"""Partition key of every table (Orders: the intent id, written by the order workflow)."""
SK = "sk"
"""Sort key: N (open time ms) in candles and signals; S (the item kind's id) in portfolio."""
TTL_ATTRIBUTE = "expires_at"
"""Epoch seconds; DynamoDB deletes candles and signals after it."""
BY_STATUS_INDEX = "by_status"
"""Orders GSI: hash ``status``, range ``candle_time``."""
CONTROL_KEY = "trading_state"
"""The control table's one item: the kill switch."""
POSITION_PK = "POSITION"  # sk = market key
FILL_CURSOR_PK = "FILLED"  # sk = client order id: how much of that order is in the position
ACCOUNT_PK = "ACCOUNT"  # sk = "equity" | "activity" | "balances"
PAPER_PK = "PAPER"  # sk = "state"
RULES_PK = "RULES"  # sk = market key
EVENT_SOURCE_CONTROL = "tickstep.control"
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


class StaleWrite(Exception):  # noqa: N818 -- reads as what happened
    """A conditional write lost to another writer (or a repeat): re-read and decide again."""


class InvalidTransition(ValueError):  # noqa: N818
    """The ledger's order cannot move from its status to the requested one."""


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _is_condition_failure(exc: Exception) -> bool:
    return _code(exc) in ("ConditionalCheckFailedException", "TransactionCanceledException")


def _n(value: Decimal | int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _dec(item: dict[str, Any], name: str) -> Decimal | None:
    attr = item.get(name)
    return None if attr is None or "N" not in attr else Decimal(attr["N"])


def _int(item: dict[str, Any], name: str) -> int | None:
    value = _dec(item, name)
    return None if value is None else int(value)


def _str(item: dict[str, Any], name: str) -> str | None:
    attr = item.get(name)
    return None if attr is None or "S" not in attr else str(attr["S"])


def _iso(ms: int) -> str:
    """The timestamp format the order workflow writes (``$$.State.EnteredTime``)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _query_all(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    while True:
        page = client.query(**kwargs)
        yield from page.get("Items", [])
        last = page.get("LastEvaluatedKey")
        if not last or "Limit" in kwargs:
            return
        kwargs["ExclusiveStartKey"] = last


# -- candles ----------------------------------------------------------------------------------


class CandleStore:
    """Closed candles by market (pk = market key, sk = open time), expiring after a while.

    Retention is at least ``min_retention_s`` and at least 1000 candles, so a 1d strategy's
    warmup is never cut by the TTL.
    """

    def __init__(self, client: Any, table: str, *, min_retention_s: int = 14 * 86_400) -> None:
        self._client = client
        self._table = table
        self._min_retention_s = min_retention_s

    def _item(self, market: Market, candle: Candle) -> dict[str, Any]:
        close_s = (candle.timestamp + market.timeframe_ms) // 1000
        keep_s = max(self._min_retention_s, 1000 * market.timeframe_ms // 1000)
        return {
            PK: _s(market.key),
            SK: _n(candle.timestamp),
            "o": _n(candle.open),
            "h": _n(candle.high),
            "l": _n(candle.low),
            "c": _n(candle.close),
            "v": _n(candle.volume),
            TTL_ATTRIBUTE: _n(close_s + keep_s),
        }

    def put(self, market: Market, candles: Sequence[Candle]) -> None:
        """Store (or overwrite with the same values) candles; 25 per batch request."""
        for start in range(0, len(candles), 25):
            requests = [
                {"PutRequest": {"Item": self._item(market, c)}} for c in candles[start : start + 25]
            ]
            pending: dict[str, Any] = {self._table: requests}
            for _ in range(8):
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

    @staticmethod
    def _candle(item: dict[str, Any]) -> Candle:
        return Candle(
            timestamp=int(item[SK]["N"]),
            open=Decimal(item["o"]["N"]),
            high=Decimal(item["h"]["N"]),
            low=Decimal(item["l"]["N"]),
            close=Decimal(item["c"]["N"]),
            volume=Decimal(item["v"]["N"]),
        )


# -- signals ----------------------------------------------------------------------------------


class SignalStore:
    """Signals by market (pk = market key, sk = candle time), for the API's ``/signals``."""

    def __init__(self, client: Any, table: str, *, retention_s: int = 7 * 86_400) -> None:
        self._client = client
        self._table = table
        self._retention_s = retention_s

    def put(self, signal: Signal) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                PK: _s(signal.market.key),
                SK: _n(signal.candle_time),
                "action": _s(signal.action.value),
                "signal": _s(signal.model_dump_json()),
                TTL_ATTRIBUTE: _n(signal.candle_time // 1000 + self._retention_s),
            },
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
        return [Signal.model_validate_json(item["signal"]["S"]) for item in page.get("Items", [])]


# -- the order ledger -------------------------------------------------------------------------


class LedgerEntry(BaseModel):
    """One ledger item: the intent the order workflow recorded, and what became of it.

    External orders (adopted by reconcile) have no intent or decision, only an order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    intent_id: str
    status: OrderStatus
    market: Market
    side: Side
    intent: OrderIntent | None = None
    decision: RiskDecision | None = None
    order: Order | None = None
    error: str | None = None
    sent_at: int | None = Field(default=None, description="ms when execute first sent it")
    candle_time: int = 0

    @property
    def client_order_id(self) -> str:
        return self.order.client_order_id if self.order else self.intent_id


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
        intent_json = _str(item, "intent")
        decision_json = _str(item, "decision")
        order_json = _str(item, "order")
        intent = OrderIntent.model_validate_json(intent_json) if intent_json else None
        order = Order.model_validate_json(order_json) if order_json else None
        market_key = _str(item, "market")
        market = (
            intent.market
            if intent
            else order.market
            if order
            else _market_from_key(market_key or "")
        )
        return LedgerEntry(
            intent_id=item[PK]["S"],
            status=OrderStatus(item["status"]["S"]),
            market=market,
            side=Side(_str(item, "side") or (order.side if order else Side.BUY)),
            intent=intent,
            decision=RiskDecision.model_validate_json(decision_json) if decision_json else None,
            order=order,
            error=_str(item, "error"),
            sent_at=_int(item, "sent_at"),
            candle_time=_int(item, "candle_time") or 0,
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
            self._client.update_item(
                TableName=self._table,
                Key={PK: _s(intent_id)},
                UpdateExpression="SET sent_at = :now",
                ConditionExpression="attribute_exists(pk) AND #status IN (:new, :unknown)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":now": _n(now_ms),
                    ":new": _s(OrderStatus.NEW.value),
                    ":unknown": _s(OrderStatus.UNKNOWN.value),
                },
            )
        except Exception as exc:
            if _is_condition_failure(exc):
                raise StaleWrite(f"{intent_id}: not in the ledger as new or unknown") from exc
            raise

    def unmark_sent(self, intent_id: str, sent_at: int) -> None:
        """Take back :meth:`mark_sent` of ``sent_at`` when the exchange refused that send
        outright (nothing can appear); a later mark or a status change is left alone."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={PK: _s(intent_id)},
                UpdateExpression="REMOVE sent_at",
                ConditionExpression="sent_at = :sent AND #status IN (:new, :unknown)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":sent": _n(sent_at),
                    ":new": _s(OrderStatus.NEW.value),
                    ":unknown": _s(OrderStatus.UNKNOWN.value),
                },
            )
        except Exception as exc:
            if not _is_condition_failure(exc):
                raise

    def record(
        self, intent_id: str, expected: OrderStatus, order: Order, now_ms: int
    ) -> LedgerEntry:
        """Move the order from ``expected`` to ``order.status`` and keep the exchange's view.

        The same terminal status again is a no-op (a redelivery); anything
        :func:`can_transition` refuses raises :class:`InvalidTransition`.
        """
        if expected == order.status and not can_transition(expected, order.status):
            current = self.get(intent_id)
            if current is None:
                raise StaleWrite(f"{intent_id}: not in the ledger")
            return current
        if not can_transition(expected, order.status):
            raise InvalidTransition(
                f"{intent_id}: {expected.value} -> {order.status.value} is not allowed"
            )
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={PK: _s(intent_id)},
                UpdateExpression="SET #status = :status, #order = :order, updated_at = :now",
                ConditionExpression="#status = :expected",
                ExpressionAttributeNames={"#status": "status", "#order": "order"},
                ExpressionAttributeValues={
                    ":status": _s(order.status.value),
                    ":order": _s(order.model_dump_json()),
                    ":now": _s(_iso(now_ms)),
                    ":expected": _s(expected.value),
                },
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if _is_condition_failure(exc):
                raise StaleWrite(f"{intent_id}: no longer {expected.value}") from exc
            raise
        return self._entry(response["Attributes"])

    def settle(
        self, intent_id: str, expected: OrderStatus, status: OrderStatus, error: str, now_ms: int
    ) -> None:
        """Move an order with no exchange order (e.g. unknown, proved absent -> failed)."""
        if not can_transition(expected, status):
            raise InvalidTransition(f"{intent_id}: {expected.value} -> {status.value}")
        try:
            self._client.update_item(
                TableName=self._table,
                Key={PK: _s(intent_id)},
                UpdateExpression="SET #status = :status, #error = :error, updated_at = :now",
                ConditionExpression="#status = :expected",
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues={
                    ":status": _s(status.value),
                    ":error": _s(error[:1000]),
                    ":now": _s(_iso(now_ms)),
                    ":expected": _s(expected.value),
                },
            )
        except Exception as exc:
            if _is_condition_failure(exc):
                raise StaleWrite(f"{intent_id}: no longer {expected.value}") from exc
            raise

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
        except Exception as exc:
            if _is_condition_failure(exc):
                return False
            raise
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
            if limit is not None:
                kwargs["Limit"] = limit
            entries.extend(self._entry(item) for item in _query_all(self._client, **kwargs))
        entries.sort(key=lambda e: e.candle_time, reverse=True)
        return entries[:limit] if limit is not None else entries


# -- the portfolio ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillCursor:
    """How much of one order is already in its position (filled base, cost and fee)."""

    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)


def fill_delta(order: Order, cursor: FillCursor) -> tuple[Fill, FillCursor] | None:
    """The part of ``order`` not yet applied, as one fill, and the cursor after it.

    Ccxt reports an order's cumulative ``filled``, ``average`` and ``fee`` rather than its
    trades, so applying the difference to what was applied before is what makes a repeated or
    partial report idempotent: the same report twice gives no second fill.
    """
    if order.filled <= cursor.filled or order.average is None:
        return None
    amount = order.filled - cursor.filled
    cost = order.filled * order.average
    fee = max(order.fee - cursor.fee, Decimal(0))
    price = (cost - cursor.cost) / amount
    if price <= 0:
        price = order.average
    fill = Fill(
        trade_id=f"{order.client_order_id}:{order.filled}",
        client_order_id=order.client_order_id,
        market=order.market,
        side=order.side,
        amount=amount,
        price=price,
        fee=fee,
        fee_currency=order.fee_currency or order.market.quote,
        timestamp=order.updated_at,
    )
    return fill, FillCursor(filled=order.filled, cost=cost, fee=max(order.fee, cursor.fee))


class AccountRecord(BaseModel):
    """The account-wide figures risk needs besides positions and balances."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    peak_equity: Decimal | None = None
    day: int | None = None
    day_start_equity: Decimal | None = None
    last_losing_trade_ms: int | None = None
    order_times_ms: tuple[int, ...] = ()


class PortfolioStore:
    """Positions, fill cursors, account marks, balances, market rules and the paper account.

    pk/sk: ``POSITION/<market>``, ``FILLED/<clientOrderId>``, ``ACCOUNT/equity|activity|
    balances``, ``RULES/<market>``, ``PAPER/state``.
    """

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table, Key={PK: _s(pk), SK: _s(sk)}, ConsistentRead=True
        ).get("Item")
        return item if isinstance(item, dict) else None

    # positions

    @staticmethod
    def _position(item: dict[str, Any]) -> Position:
        return Position(
            market=Market.model_validate_json(item["market"]["S"]),
            amount=_dec(item, "amount") or Decimal(0),
            average_price=_dec(item, "average_price"),
            realized_pnl=_dec(item, "realized_pnl") or Decimal(0),
        )

    def position(self, market: Market) -> Position:
        item = self._get(POSITION_PK, market.key)
        return Position(market=market) if item is None else self._position(item)

    def positions(self) -> list[Position]:
        items = _query_all(
            self._client,
            TableName=self._table,
            KeyConditionExpression=f"{PK} = :pk",
            ExpressionAttributeValues={":pk": _s(POSITION_PK)},
        )
        return [self._position(item) for item in items]

    def apply_order_fills(self, order: Order, *, attempts: int = 5) -> list[Fill]:
        """Apply the part of ``order`` not yet in its position, exactly once.

        One transaction moves the order's fill cursor (conditioned on its old value) and the
        position (conditioned on its version), so a repeat or a concurrent writer applies
        nothing twice. Returns the fill applied (empty when there was nothing new).
        """
        for _ in range(attempts):
            cursor_item = self._get(FILL_CURSOR_PK, order.client_order_id)
            cursor = FillCursor(
                filled=_dec(cursor_item or {}, "filled") or Decimal(0),
                cost=_dec(cursor_item or {}, "cost") or Decimal(0),
                fee=_dec(cursor_item or {}, "fee") or Decimal(0),
            )
            delta = fill_delta(order, cursor)
            if delta is None:
                return []
            fill, new_cursor = delta
            position_item = self._get(POSITION_PK, order.market.key)
            before = (
                Position(market=order.market)
                if position_item is None
                else self._position(position_item)
            )
            version = _int(position_item or {}, "version") or 0
            after = apply_fill(before, fill)
            position = {
                PK: _s(POSITION_PK),
                SK: _s(order.market.key),
                "market": _s(order.market.model_dump_json()),
                "amount": _n(after.amount),
                "realized_pnl": _n(after.realized_pnl),
                "version": _n(version + 1),
            }
            if after.average_price is not None:
                position["average_price"] = _n(after.average_price)
            cursor_condition = (
                "attribute_not_exists(pk)" if cursor_item is None else "filled = :prev"
            )
            cursor_values: dict[str, Any] = {
                ":filled": _n(new_cursor.filled),
                ":cost": _n(new_cursor.cost),
                ":fee": _n(new_cursor.fee),
            }
            if cursor_item is not None:
                cursor_values[":prev"] = _n(cursor.filled)
            try:
                self._client.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": self._table,
                                "Key": {PK: _s(FILL_CURSOR_PK), SK: _s(order.client_order_id)},
                                "UpdateExpression": "SET filled = :filled, cost = :cost, "
                                "fee = :fee",
                                "ConditionExpression": cursor_condition,
                                "ExpressionAttributeValues": cursor_values,
                            }
                        },
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": position,
                                "ConditionExpression": "attribute_not_exists(pk)"
                                if position_item is None
                                else "version = :v",
                                **(
                                    {}
                                    if position_item is None
                                    else {"ExpressionAttributeValues": {":v": _n(version)}}
                                ),
                            }
                        },
                    ]
                )
            except Exception as exc:
                if _is_condition_failure(exc):
                    continue
                raise
            if realized_of(before, after) < 0:
                self.record_loss(fill.timestamp)
            return [fill]
        raise StaleWrite(f"{order.client_order_id}: position kept changing; fill not applied")

    # account

    def account(self) -> AccountRecord:
        equity = self._get(ACCOUNT_PK, "equity") or {}
        activity = self._get(ACCOUNT_PK, "activity") or {}
        times = activity.get("order_times", {}).get("L", [])
        return AccountRecord(
            peak_equity=_dec(equity, "peak"),
            day=_int(equity, "day"),
            day_start_equity=_dec(equity, "day_start"),
            last_losing_trade_ms=_int(activity, "last_loss_ms"),
            order_times_ms=tuple(int(t["N"]) for t in times),
        )

    def mark_equity(self, equity: Decimal, now_ms: int) -> None:
        """Raise the peak if ``equity`` is above it; start a new day's mark at the first
        observation of a UTC day. Both conditional, so marks never move backwards."""
        day = now_ms // DAY_MS
        key = {PK: _s(ACCOUNT_PK), SK: _s("equity")}
        for update, condition, values in (
            (
                "SET peak = :e",
                "attribute_not_exists(peak) OR peak < :e",
                {":e": _n(equity)},
            ),
            (
                "SET #day = :d, day_start = :e",
                "attribute_not_exists(#day) OR #day < :d",
                {":e": _n(equity), ":d": _n(day)},
            ),
        ):
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    **({"ExpressionAttributeNames": {"#day": "day"}} if "#day" in update else {}),
                )
            except Exception as exc:
                if not _is_condition_failure(exc):
                    raise

    def record_loss(self, at_ms: int) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={PK: _s(ACCOUNT_PK), SK: _s("activity")},
                UpdateExpression="SET last_loss_ms = :t",
                ConditionExpression="attribute_not_exists(last_loss_ms) OR last_loss_ms < :t",
                ExpressionAttributeValues={":t": _n(at_ms)},
            )
        except Exception as exc:
            if not _is_condition_failure(exc):
                raise

    def record_order_placed(self, at_ms: int) -> None:
        """Keep the last hour's order times (risk's orders-per-hour guard)."""
        for _ in range(5):
            activity = self._get(ACCOUNT_PK, "activity") or {}
            old = [int(t["N"]) for t in activity.get("order_times", {}).get("L", [])]
            if at_ms in old:
                return
            kept = [t for t in old if t > at_ms - HOUR_MS] + [at_ms]
            present = "order_times" in activity
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key={PK: _s(ACCOUNT_PK), SK: _s("activity")},
                    UpdateExpression="SET order_times = :new",
                    ConditionExpression="order_times = :old"
                    if present
                    else "attribute_not_exists(order_times)",
                    ExpressionAttributeValues={
                        ":new": {"L": [_n(t) for t in sorted(kept)]},
                        **({":old": activity["order_times"]} if present else {}),
                    },
                )
                return
            except Exception as exc:
                if not _is_condition_failure(exc):
                    raise
        raise StaleWrite("order times kept changing")

    # balances

    def balances(self) -> dict[str, Balance] | None:
        """The last balances snapshot (paper state or the exchange), or None if never taken."""
        item = self._get(ACCOUNT_PK, "balances")
        if item is None:
            return None
        raw = json.loads(item["balances"]["S"])
        return {code: Balance.model_validate(value) for code, value in raw.items()}

    def put_balances(self, balances: dict[str, Balance], now_ms: int) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                PK: _s(ACCOUNT_PK),
                SK: _s("balances"),
                "balances": _s(
                    json.dumps({k: v.model_dump(mode="json") for k, v in balances.items()})
                ),
                "at": _n(now_ms),
            },
        )

    # market rules

    def rules(self, market: Market) -> MarketRules | None:
        item = self._get(RULES_PK, market.key)
        return None if item is None else MarketRules.model_validate_json(item["rules"]["S"])

    def put_rules(self, market: Market, rules: MarketRules) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={PK: _s(RULES_PK), SK: _s(market.key), "rules": _s(rules.model_dump_json())},
        )

    # the paper account

    def paper_state(self) -> tuple[str | None, int]:
        """The paper account's ``PaperState`` JSON (None before the first order) and its
        version, for :meth:`save_paper_state`'s optimistic check."""
        item = self._get(PAPER_PK, "state")
        if item is None:
            return None, 0
        return zlib.decompress(item["state"]["B"]).decode(), _int(item, "version") or 0

    def save_paper_state(self, state_json: str, version: int) -> int:
        """Write the state if nobody wrote since ``version`` was read; the new version.

        Compressed: every order and fill stays in the state (they are the paper exchange's
        truth), and JSON of a few thousand orders would pass DynamoDB's 400 KB item limit."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    PK: _s(PAPER_PK),
                    SK: _s("state"),
                    "state": {"B": zlib.compress(state_json.encode())},
                    "version": _n(version + 1),
                },
                ConditionExpression="attribute_not_exists(pk)" if version == 0 else "version = :v",
                **({} if version == 0 else {"ExpressionAttributeValues": {":v": _n(version)}}),
            )
        except Exception as exc:
            if _is_condition_failure(exc):
                raise StaleWrite("the paper account changed since it was read") from exc
            raise
        return version + 1


# -- the kill switch --------------------------------------------------------------------------


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
        except Exception as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True


# -- events and task tokens -------------------------------------------------------------------


@dataclass
class EventBus:
    """Publishes domain events on the project's bus; fails loudly on a rejected entry."""

    client: Any
    bus_name: str
    published: list[dict[str, Any]] = field(default_factory=list, repr=False)

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


_SETTLED_TOKEN_CODES = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")


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

    @staticmethod
    def _answer(call: Any, **kwargs: Any) -> bool:
        try:
            call(**kwargs)
        except Exception as exc:
            if _code(exc) in _SETTLED_TOKEN_CODES:
                return False
            raise
        return True
