"""``GET /api/health`` through the real API handler over the offline stack (moto, the
template's tables, queues and environment): 200 only when every component is healthy, 503
naming the one that is not; unauthenticated, so it shows no secret, position or order."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tickstep.local.cloud import LocalCloud
from tickstep.models import Candle, Market, TradingState, TradingStateRecord
from tickstep.stores import CandleStore, ControlStore

ROOT = Path(__file__).resolve().parents[2]


def health_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / "api.json").read_text())
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /api/health"
    event["rawPath"] = "/api/health"
    event["requestContext"]["http"].update(method="GET", path="/api/health")
    event["requestContext"].pop("authorizer", None)  # the route is unauthenticated
    return event


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(ROOT) as running:
        yield running


def markets(cloud: LocalCloud) -> list[Market]:
    entries = json.loads(cloud.functions["ApiFunction"].environment["MARKETS"])
    return [Market.model_validate(e["market"]) for e in entries]


def freshen(cloud: LocalCloud) -> None:
    store = CandleStore(cloud.ddb, cloud.tables["CandlesTable"])
    now = int(time.time() * 1000)
    for market in markets(cloud):
        opened = (now // market.timeframe_ms - 1) * market.timeframe_ms
        store.put(market, [Candle(timestamp=opened, open=1, high=1, low=1, close=1, volume=1)])


def set_state(cloud: LocalCloud, state: TradingState) -> None:
    record = TradingStateRecord(state=state, reason="drill", changed_at=1, changed_by="test")
    ControlStore(cloud.ddb, cloud.tables["ControlTable"]).set(record)


def ask(cloud: LocalCloud) -> tuple[int, dict[str, Any]]:
    response = cloud.invoke("ApiFunction", health_event())
    return int(response["statusCode"]), json.loads(response["body"])


def test_health_names_every_component_and_answers_by_the_worst(cloud: LocalCloud) -> None:
    status, body = ask(cloud)
    assert status == 503  # no candle stored yet
    assert [c["reason"] for c in body["candles"]] == ["no candle"] * len(markets(cloud))

    freshen(cloud)
    status, body = ask(cloud)
    assert status == 200, body
    assert body["status"] == "ok"
    assert body["tables"] == {"control": "ok", "candles": "ok"}
    assert body["trading_state"]["state"] == "ACTIVE"
    queues = {url.rsplit("/", 1)[1] for k, url in cloud.queues.items() if k.endswith("DLQ")}
    assert set(body["dead_letters"]) == queues
    assert not any(body["dead_letters"].values())
    assert not {"positions", "balances", "orders", "secret"} & set(body)

    set_state(cloud, TradingState.HALTED)
    status, body = ask(cloud)
    assert (status, body["trading_state"]["state"]) == (503, "HALTED")
    set_state(cloud, TradingState.ACTIVE)

    cloud.sqs.send_message(QueueUrl=cloud.queues["FunctionAsyncDLQ"], MessageBody="{}")
    status, body = ask(cloud)
    assert status == 503
    assert sum(body["dead_letters"].values()) == 1
