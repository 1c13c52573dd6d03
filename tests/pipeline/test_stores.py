"""The DynamoDB stores and the task tokens, on moto: the library does the paging, the error
classes and the retries; the stores do what the library cannot (unprocessed batch items)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from tests.builders import BINANCE_ETH_BTC as MARKET
from tests.pipeline.conftest import Aws
from tickstep.aws import TaskTokens
from tickstep.memory import MemoryDenials
from tickstep.models import Candle, Order, OrderStatus, OrderType, Side
from tickstep.ports import StaleWrite
from tickstep.stores import CandleStore, DenialStore, OrderStore
from tickstep.stores.candles import BACKOFF_BASE_S, BACKOFF_CAP_S, UNPROCESSED_ATTEMPTS

T0 = 1_732_622_100_000


def candles(n: int) -> list[Candle]:
    price = Decimal("0.035")
    return [
        Candle(
            timestamp=T0 + i * MARKET.timeframe_ms,
            open=price,
            high=price,
            low=price,
            close=price,
            volume=Decimal(i),
        )
        for i in range(n)
    ]


class Unprocessing:
    """A DynamoDB client that writes only the first ``keep`` requests of the first ``times``
    batch writes and hands the rest back as UnprocessedItems, as a throttled partition does."""

    def __init__(self, client: Any, *, times: int, keep: int = 5) -> None:
        self._client, self._times, self._keep = client, times, keep
        self.calls = 0

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        if self.calls > self._times:
            return dict(self._client.batch_write_item(RequestItems=RequestItems))
        (table, requests), *_ = RequestItems.items()
        if self._keep:
            self._client.batch_write_item(RequestItems={table: requests[: self._keep]})
        rest = requests[self._keep :]
        return {"UnprocessedItems": {table: rest} if rest else {}}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_candles_when_dynamodb_leaves_items_unprocessed_then_backs_off_and_writes_them_all(
    aws: Aws,
) -> None:
    waits: list[float] = []
    client = Unprocessing(aws.dynamodb, times=3)
    store = CandleStore(client, aws.tables["CANDLES_TABLE"], sleep=waits.append)

    store.put(MARKET, candles(20))

    assert [c.volume for c in store.latest(MARKET, 50)] == [Decimal(i) for i in range(20)]
    assert client.calls == 4
    assert len(waits) == 3  # before each retry, none before the first write
    for attempt, wait in enumerate(waits, start=1):
        assert 0 <= wait <= min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)


def test_candles_when_dynamodb_never_takes_them_then_stale_write_after_every_attempt(
    aws: Aws,
) -> None:
    waits: list[float] = []
    client = Unprocessing(aws.dynamodb, times=10**6, keep=0)
    store = CandleStore(client, aws.tables["CANDLES_TABLE"], sleep=waits.append)

    with pytest.raises(StaleWrite, match="unwritten"):
        store.put(MARKET, candles(3))
    assert client.calls == UNPROCESSED_ATTEMPTS
    assert len(waits) == UNPROCESSED_ATTEMPTS - 1


def put_intent(aws: Aws, intent_id: str, status: str, candle_time: int) -> None:
    """A ledger item as the order workflow's RecordIntent writes it (the fields read here)."""
    aws.dynamodb.put_item(
        TableName=aws.tables["ORDERS_TABLE"],
        Item={
            "pk": {"S": intent_id},
            "status": {"S": status},
            "market": {"S": MARKET.key},
            "side": {"S": "buy"},
            "candle_time": {"N": str(candle_time)},
        },
    )


def test_orders_by_status_when_more_than_a_page_then_every_one_and_the_limit_holds(
    aws: Aws,
) -> None:
    for i in range(120):
        put_intent(aws, f"ts{i:030d}", "unknown", T0 + i)
    store = OrderStore(aws.dynamodb, aws.tables["ORDERS_TABLE"])
    paging = aws.dynamodb.get_paginator("query")
    # Small pages, as a large table gives: the paginator, not a loop of ours, follows them.
    pages = list(
        paging.paginate(
            TableName=aws.tables["ORDERS_TABLE"],
            IndexName="by_status",
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "unknown"}},
            PaginationConfig={"PageSize": 50},
        )
    )
    assert len(pages) >= 3

    every = store.by_status([OrderStatus.UNKNOWN])
    newest = store.by_status([OrderStatus.UNKNOWN], limit=7)

    assert len(every) == 120
    assert [e.candle_time for e in newest] == [T0 + i for i in range(119, 112, -1)]


def filled(intent_id: str) -> Order:
    return Order(
        intent_id=intent_id,
        client_order_id=intent_id,
        exchange_order_id="1",
        market=MARKET,
        side=Side.BUY,
        order_type=OrderType.MARKET,
        amount=Decimal("0.1"),
        filled=Decimal("0.1"),
        average=Decimal("0.035"),
        status=OrderStatus.FILLED,
        created_at=T0,
        updated_at=T0,
    )


def test_ledger_when_its_condition_is_refused_then_stale_write_and_a_throttle_is_not_one(
    aws: Aws,
) -> None:
    intent_id = "ts" + "0" * 30
    put_intent(aws, intent_id, "new", T0)
    store = OrderStore(aws.dynamodb, aws.tables["ORDERS_TABLE"])
    store.record(intent_id, OrderStatus.NEW, filled(intent_id), T0)
    # Not new any more: DynamoDB refuses the condition, and boto3's modeled class says so.
    with pytest.raises(StaleWrite, match="no longer new"):
        store.record(intent_id, OrderStatus.NEW, filled(intent_id), T0)

    with Stubber(aws.dynamodb) as stub:
        stub.add_client_error(
            "update_item", service_error_code="ProvisionedThroughputExceededException"
        )
        with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
            store.mark_sent(intent_id, T0)  # a conditional update, throttled


def test_task_tokens_when_the_token_is_unknown_then_not_taken_and_other_errors_raise(
    aws: Aws,
) -> None:
    tokens = TaskTokens(aws.stepfunctions)
    assert tokens.succeed("no-such-token", {"order": None}) is False
    with Stubber(aws.stepfunctions) as stub:
        stub.add_client_error("send_task_failure", service_error_code="ThrottlingException")
        with pytest.raises(ClientError, match="Throttling"):
            tokens.fail("a-token", "FatalExchangeError", json.dumps({"why": "test"}))


def test_denial_counts_add_per_reason_and_day_and_sum_over_a_window(aws: Aws) -> None:
    store = DenialStore(aws.dynamodb, aws.tables["CONTROL_TABLE"])
    memory = MemoryDenials()
    denials = [
        (100, ["PRICE_BAND", "MAX_NOTIONAL"]),
        (100, ["PRICE_BAND", "PRICE_BAND"]),  # one denial names a reason once
        (101, ["TRADING_HALTED"]),
        (90, ["MAX_EXPOSURE"]),  # outside the window below
        (102, []),  # nothing to count
    ]
    for day, reasons in denials:
        store.count(day, reasons)
        memory.count(day, reasons)

    expected = {"MAX_NOTIONAL": 1, "PRICE_BAND": 2, "TRADING_HALTED": 1}
    assert store.since(95, 102) == memory.since(95, 102) == expected
    assert store.since(101, 101) == memory.since(101, 101) == {"TRADING_HALTED": 1}
    assert store.since(0, 102)["MAX_EXPOSURE"] == 1
    assert store.since(103, 110) == {}
