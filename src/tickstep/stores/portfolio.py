"""The portfolio in DynamoDB: positions, fill cursors, account marks, balances, market rules
and the paper account's state."""

from __future__ import annotations

import json
import zlib
from decimal import Decimal
from typing import Any

from tickstep.models import (
    Balance,
    Fill,
    Market,
    MarketRules,
    Order,
    Position,
)
from tickstep.portfolio import FillCursor, apply_fill, fill_delta, realized_of
from tickstep.ports import AccountRecord, StaleWrite
from tickstep.stores.dynamo import (
    ACCOUNT_PK,
    DAY_MS,
    FILL_CURSOR_PK,
    HOUR_MS,
    PAPER_PK,
    PK,
    POSITION_PK,
    RULES_PK,
    SK,
    _dec,
    _int,
    _n,
    _query_all,
    _s,
    condition_failed,
    from_item,
)


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
        row = from_item(item)
        return Position(
            market=Market.model_validate_json(row["market"]),
            amount=row.get("amount") or Decimal(0),
            average_price=row.get("average_price"),
            realized_pnl=row.get("realized_pnl") or Decimal(0),
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
            except condition_failed(self._client):
                continue
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
            except condition_failed(self._client):
                pass  # the condition said no: nothing to do

    def record_loss(self, at_ms: int) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={PK: _s(ACCOUNT_PK), SK: _s("activity")},
                UpdateExpression="SET last_loss_ms = :t",
                ConditionExpression="attribute_not_exists(last_loss_ms) OR last_loss_ms < :t",
                ExpressionAttributeValues={":t": _n(at_ms)},
            )
        except condition_failed(self._client):
            pass  # the condition said no: nothing to do

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
            except condition_failed(self._client):
                pass  # the condition said no: nothing to do
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
        except condition_failed(self._client) as exc:
            raise StaleWrite("the paper account changed since it was read") from exc
        return version + 1
