"""Every handler with its ``events/<name>.json`` sample and with malformed events, against moto.

A malformed event must fail with a validation error naming the field and leave no trace: no
item written, no event published, no order placed.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from pydantic import ValidationError

from tests.builders import BINANCE_ETH_BTC as MARKET
from tests.builders import FixedPrices
from tests.pipeline.conftest import REGION, Aws, FakeContext, sample_event
from tickstep.models import (
    Candle,
    CandleClosed,
    CandlesClosed,
    Market,
    OrderStatus,
    TradingState,
    TradingStateRecord,
)
from tickstep.stores import CandleStore, ControlStore, PortfolioStore

Loader = Callable[[str], ModuleType]
DEADLINE_S = 120  # generous: a deadline only costs time when the test fails anyway


class ListSource:
    def __init__(self, candles: list[Candle]) -> None:
        self.candles = candles

    def fetch_ohlcv(
        self, market: Market, since_ms: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        rows = [c for c in self.candles if since_ms is None or c.timestamp >= since_ms]
        return rows[-limit:] if limit and since_ms is None else rows


def candles_ending_with(last: Candle, closes: list[str]) -> list[Candle]:
    step = MARKET.timeframe_ms
    start = last.timestamp - len(closes) * step
    rows = []
    for i, close in enumerate(closes):
        price = Decimal(close)
        rows.append(
            Candle(
                timestamp=start + i * step,
                open=price,
                high=price,
                low=price,
                close=price,
                volume=Decimal(1),
            )
        )
    return rows


def store_history_crossing_up(aws: Aws) -> CandleClosed:
    """Stores the candles before the signal sample's, falling so that its candle turns the fast
    average up through the slow one; returns the sample as an event."""
    event = CandleClosed.model_validate(sample_event("signal"))
    falling = ["0.036"] * 5 + ["0.035", "0.034", "0.033"]
    CandleStore(aws.dynamodb, aws.tables["CANDLES_TABLE"]).put(
        MARKET, candles_ending_with(event.candle, falling)
    )
    return event


def record_intent(aws: Aws, body: dict[str, Any]) -> None:
    """What the order workflow's RecordIntent writes (statemachines/order.asl.json)."""
    intent = body["intent"]
    market = intent["market"]
    aws.dynamodb.put_item(
        TableName=aws.tables["ORDERS_TABLE"],
        Item={
            "pk": {"S": intent["intent_id"]},
            "status": {"S": "new"},
            "market": {"S": f"{market['exchange']}:{market['symbol']}:{market['timeframe']}"},
            "strategy": {"S": intent["strategy"]},
            "side": {"S": intent["side"]},
            "candle_time": {"N": str(intent["candle_time"])},
            "intent": {"S": json.dumps(intent)},
            "decision": {"S": json.dumps(body["decision"])},
            "execution": {"S": "arn:aws:states:eu-west-1:123456789012:execution:order:x"},
            "recorded_at": {"S": "2024-11-26T12:15:01.000Z"},
        },
        ConditionExpression="attribute_not_exists(pk)",
    )


def ledger_status(aws: Aws, intent_id: str) -> str:
    item = aws.dynamodb.get_item(
        TableName=aws.tables["ORDERS_TABLE"], Key={"pk": {"S": intent_id}}
    )["Item"]
    return str(item["status"]["S"])


# -- ingest -----------------------------------------------------------------------------------


def test_ingest_sample_when_candles_are_new_then_stores_them_and_publishes_candles_closed(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    app = function("ingest")
    signal_sample = CandleClosed.model_validate(sample_event("signal"))
    rows = [*candles_ending_with(signal_sample.candle, ["0.035"] * 4), signal_sample.candle]
    app.set_dependencies(app.build_dependencies(source=ListSource(rows)))

    result = app.handler(sample_event("ingest"), context)

    assert result == {"candles": 5, "events": 1, "failures": {}}
    store = CandleStore(aws.dynamodb, aws.tables["CANDLES_TABLE"])
    assert store.latest(MARKET, 10) == rows
    assert store.published_through(MARKET) == signal_sample.candle.timestamp
    published = aws.bus_events("CandlesClosed")
    assert [e["source"] for e in published] == ["tickstep.ingest"]
    assert CandlesClosed.model_validate(published[0]["detail"]).candles == (signal_sample,)
    assert len(aws.items("PORTFOLIO_TABLE")) == 1  # the market's rules, cached for risk


def test_ingest_when_the_event_has_no_detail_type_then_names_it_and_writes_nothing(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    app = function("ingest")
    app.set_dependencies(app.build_dependencies(source=ListSource([])))
    event = sample_event("ingest")
    del event["detail-type"]

    with pytest.raises(ValidationError, match="detail-type"):
        app.handler(event, context)
    assert aws.items("CANDLES_TABLE") == []
    assert aws.bus_events() == []


# -- signal -----------------------------------------------------------------------------------


def test_signal_sample_when_no_history_then_holds_and_writes_no_candle(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    """Ingest is the candles' only writer: signal computes on the event's candle when it is
    not stored, and leaves the table as it found it."""
    result = function("signal").handler(sample_event("signal"), context)

    assert result["signal"]["action"] == "HOLD"
    assert result["intent"] is None
    assert result["signal"]["close"] == sample_event("signal")["candle"]["close"]
    assert CandleStore(aws.dynamodb, aws.tables["CANDLES_TABLE"]).latest(MARKET, 10) == []


def test_signal_when_the_fast_average_crosses_up_then_returns_a_buy_intent(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    event = store_history_crossing_up(aws)

    result = function("signal").handler(sample_event("signal"), context)

    assert result["signal"]["action"] == "BUY"
    assert result["intent"]["side"] == "buy"
    assert result["intent"]["candle_time"] == event.candle.timestamp
    assert result["intent"]["reference_price"] == "0.03527"
    stored = aws.dynamodb.scan(TableName=aws.tables["SIGNALS_TABLE"])["Items"]
    assert [i["action"]["S"] for i in stored] == ["BUY"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e["candle"].update(high="0.0001"), "high/low"),
        (lambda e: e["market"].update(symbol="ETHBTC"), "market.symbol"),
        (lambda e: e.pop("candle"), "candle"),
        (lambda e: e["candle"].update(close="NaN"), "candle.close"),
        # Issue 10: these crashed with decimal.Overflow or were stored as prices.
        (lambda e: e["candle"].update(high="1e999999999"), "candle.high"),
        (lambda e: e["candle"].update(volume="1e999999999"), "candle.volume"),
        (lambda e: e["candle"].update(low="1e-999999999"), "candle.low"),
        (lambda e: e["candle"].update(high="1e30"), "candle.high"),
        (lambda e: e["candle"].update(volume="0." + "1" * 39), "candle.volume"),
        (lambda e: e["candle"].update(timestamp=10**30), "candle.timestamp"),
    ],
)
def test_signal_when_the_event_is_malformed_then_names_the_field_and_stores_nothing(
    aws: Aws, function: Loader, context: FakeContext, mutate: Any, field: str
) -> None:
    event = sample_event("signal")
    mutate(event)

    with pytest.raises(ValidationError) as raised:
        function("signal").handler(event, context)
    assert field in str(raised.value)
    assert aws.items("CANDLES_TABLE") == []


# -- risk -------------------------------------------------------------------------------------


def risk_app(function: Loader, now_ms: int, *, stored: bool = True) -> ModuleType:
    """The risk function at ``now_ms``; ``stored``: with the sample's candle in the candles
    table, as ingestion (or signal) stored it before the decide workflow called risk."""
    app = function("risk")
    deps = app.build_dependencies()
    if stored:
        deps.candles.put(MARKET, [CandleClosed.model_validate(sample_event("signal")).candle])
    app.set_dependencies(type(deps)(**{**deps.__dict__, "clock": lambda: now_ms}))
    return app


def sample_close_ms() -> int:
    event = sample_event("risk")
    return int(event["intent"]["candle_time"]) + MARKET.timeframe_ms + 1_000


def test_risk_sample_when_account_is_fresh_then_approves_the_sized_order(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    result = risk_app(function, sample_close_ms()).handler(sample_event("risk"), context)

    assert result["intent"] == sample_event("risk")["intent"]
    assert result["decision"]["approved"] is True
    assert result["decision"]["amount"] == "0.141"
    assert aws.bus_events() == []


def test_risk_when_daily_loss_is_reached_then_halts_and_publishes_trading_state_changed(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    now = sample_close_ms()
    PortfolioStore(aws.dynamodb, aws.tables["PORTFOLIO_TABLE"]).mark_equity(Decimal(2), now)

    result = risk_app(function, now).handler(sample_event("risk"), context)

    assert result["decision"]["approved"] is False
    assert "MAX_DAILY_LOSS" in result["decision"]["reasons"]
    control = ControlStore(aws.dynamodb, aws.tables["CONTROL_TABLE"]).get()
    assert control.state is TradingState.HALTED
    changed = aws.bus_events("TradingStateChanged")
    assert [e["detail"]["current"]["state"] for e in changed] == ["HALTED"]


def test_risk_when_the_same_intent_is_delivered_again_then_the_first_decision_stands(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    """A redelivered intent must not be decided anew: the account may have changed since, and
    a different decision would start the order workflow with another input."""
    app = risk_app(function, sample_close_ms())
    first = app.handler(sample_event("risk"), context)
    ControlStore(aws.dynamodb, aws.tables["CONTROL_TABLE"]).set(
        TradingStateRecord(
            state=TradingState.HALTED, reason="operator", changed_at=1, changed_by="test"
        )
    )

    again = app.handler(sample_event("risk"), context)

    assert first["decision"]["approved"] is True
    assert again == first
    assert len(aws.items("IDEMPOTENCY_TABLE")) == 1


def forged_risk_event(price: str) -> dict[str, Any]:
    """A decide workflow started by a forged candle: the signal's close and the intent's
    reference price agree with each other, not with the market."""
    event = sample_event("risk")
    event["signal"]["close"] = price
    event["intent"]["reference_price"] = price
    return event


def test_risk_when_the_event_carries_a_wild_price_then_denies_against_the_stored_candle(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    """Issue 10: a reference price of 1e-12 sizes 5e9 ETH for 0.005 BTC; the stored close
    (0.03527) shows the price for what it is."""
    app = risk_app(function, sample_close_ms())

    result = app.handler(forged_risk_event("1E-12"), context)

    decision = result["decision"]
    assert decision["approved"] is False
    assert decision["amount"] is None
    assert "PRICE_BAND" in decision["reasons"]
    assert (
        "reference price 0.000000000001 is 100.00% from the last stored close 0.03527"
        in (decision["detail"])
    )
    # A denial, not a halt: the trading state is untouched, the denial's reasons are counted.
    day = sample_close_ms() // 86_400_000
    counted = {"pk": {"S": f"denials#{day}"}}
    counted |= {reason: {"N": "1"} for reason in decision["reasons"]}
    assert aws.items("CONTROL_TABLE") == [counted]
    assert aws.bus_events() == []


def test_risk_denial_when_the_intent_is_delivered_again_then_counted_once_and_shown(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    """Risk decides each intent once (Idempotency): a redelivery gets the first decision and
    counts nothing more. The dashboard shows the last days' denials by reason."""
    app = risk_app(function, sample_close_ms())
    event = forged_risk_event("1E-12")

    first = app.handler(event, context)
    again = app.handler(event, context)

    assert again == first
    api = function("api")
    deps = api.build_dependencies()
    api.set_dependencies(type(deps)(**{**deps.__dict__, "clock": sample_close_ms}))
    board = json.loads(api.handler(api_event("GET", "/dashboard"), context)["body"])
    assert board["risk_denials"] == dict.fromkeys(first["decision"]["reasons"], 1)
    assert board["risk_denials_days"] == 7  # what the page's card says it covers


def test_risk_when_no_candle_is_stored_for_the_intent_then_denies_no_market_data(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    result = risk_app(function, sample_close_ms(), stored=False).handler(
        sample_event("risk"), context
    )

    assert result["decision"]["approved"] is False
    assert result["decision"]["reasons"] == ["NO_MARKET_DATA"]
    assert result["decision"]["detail"] == (
        "no stored candle of binance:ETH/BTC:5m at 1732623000000 (latest stored: none)"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("intent.reference_price", "1e999999999"),
        ("signal.close", "1e999999999"),
        ("intent.reference_price", "1e30"),
        ("signal.close", "1e30"),
        ("intent.reference_price", "1e-999999999"),
        ("signal.candle_time", 10**30),
        ("intent.candle_time", 10**30),
        ("intent.limit_price", "0." + "1" * 40),
    ],
)
def test_risk_when_a_number_cannot_be_stored_then_names_the_field_and_writes_nothing(
    aws: Aws, function: Loader, context: FakeContext, field: str, value: Any
) -> None:
    app = risk_app(function, sample_close_ms())
    before = aws.items("CANDLES_TABLE")
    event = sample_event("risk")
    section, key = field.split(".")
    event[section][key] = value

    with pytest.raises(ValidationError) as raised:
        app.handler(event, context)

    assert field in {".".join(map(str, e["loc"])) for e in raised.value.errors()}
    assert aws.items("CANDLES_TABLE") == before
    assert aws.items("CONTROL_TABLE") == []
    assert aws.items("IDEMPOTENCY_TABLE") == []
    assert aws.bus_events() == []


def test_risk_when_intent_is_for_another_market_then_names_the_field_and_writes_nothing(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    event = sample_event("risk")
    event["intent"]["market"]["symbol"] = "LTC/BTC"

    with pytest.raises(ValidationError, match=r"intent\.market"):
        risk_app(function, sample_close_ms()).handler(event, context)
    assert aws.items("CONTROL_TABLE") == []
    assert aws.bus_events() == []


# -- execute ----------------------------------------------------------------------------------


def execute_app(function: Loader, aws: Aws, now_ms: int) -> ModuleType:
    app = function("execute")
    app.set_dependencies(
        app.build_dependencies(prices=FixedPrices("0.03527", now_ms), clock=lambda: now_ms)
    )
    return app


def sqs_event(body: dict[str, Any] | str) -> dict[str, Any]:
    event = sample_event("execute")
    event["Records"][0]["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


class RecordingTasks:
    def __init__(self) -> None:
        self.answers: list[tuple[str, Any]] = []

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        self.answers.append(("success", output))
        return True

    def fail(self, token: str, error: str, cause: str) -> bool:
        self.answers.append((error, cause))
        return True


def paper_orders(aws: Aws) -> int:
    item = aws.dynamodb.get_item(
        TableName=aws.tables["PORTFOLIO_TABLE"],
        Key={"pk": {"S": "PAPER"}, "sk": {"S": "state"}},
    ).get("Item")
    if item is None:
        return 0
    return len(json.loads(zlib.decompress(item["state"]["B"]))["orders"])


def start_order_workflow(aws: Aws, body: dict[str, Any]) -> tuple[str, str]:
    """A one-state workflow that sends the intent to a FIFO queue and waits for its token."""
    queue_url = aws.sqs.create_queue(QueueName="orders.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"
    ]
    definition = {
        "StartAt": "SubmitOrder",
        "States": {
            "SubmitOrder": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {
                    "QueueUrl": queue_url,
                    "MessageGroupId": "binance",
                    "MessageDeduplicationId.$": "$.intent.intent_id",
                    "MessageBody": {
                        "task_token.$": "$$.Task.Token",
                        "intent.$": "$.intent",
                        "decision.$": "$.decision",
                        "execution.$": "$$.Execution.Id",
                        "attempt": 0,
                    },
                },
                "End": True,
            }
        },
    }
    machine = aws.stepfunctions.create_state_machine(
        name="order",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/order",
    )["stateMachineArn"]
    execution = aws.stepfunctions.start_execution(
        stateMachineArn=machine,
        name=body["intent"]["intent_id"],
        input=json.dumps({"intent": body["intent"], "decision": body["decision"]}),
    )["executionArn"]
    return execution, queue_url


def wait_for_message(aws: Aws, queue_url: str) -> str:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        messages = aws.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0).get("Messages")
        if messages:
            return str(messages[0]["Body"])
        time.sleep(0.05)
    raise AssertionError("the workflow never sent the order message")


def wait_for_end(aws: Aws, execution: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        described: dict[str, Any] = aws.stepfunctions.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError("the order workflow is still running after the deadline")


def test_execute_sample_when_paper_then_fills_once_and_answers_the_task_token(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    body = json.loads(sample_event("execute")["Records"][0]["body"])
    record_intent(aws, body)
    execution, queue_url = start_order_workflow(aws, body)
    message = wait_for_message(aws, queue_url)
    app = execute_app(function, aws, sample_close_ms())

    first = app.handler(sqs_event(message), context)
    second = app.handler(sqs_event(message), context)  # SQS redelivers the same message

    assert first == second == {"batchItemFailures": []}
    ended = wait_for_end(aws, execution)
    assert ended["status"] == "SUCCEEDED"
    order = json.loads(ended["output"])["order"]
    assert (order["status"], order["filled"]) == ("filled", "0.141")
    assert order["client_order_id"] == body["intent"]["intent_id"]
    assert ledger_status(aws, body["intent"]["intent_id"]) == "filled"
    assert paper_orders(aws) == 1
    position = PortfolioStore(aws.dynamodb, aws.tables["PORTFOLIO_TABLE"]).position(MARKET)
    assert position.amount == Decimal("0.141")


def test_execute_when_the_exchange_refuses_the_amount_then_fails_the_task_as_fatal(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    body = json.loads(sample_event("execute")["Records"][0]["body"])
    body["decision"]["amount"] = "0.0001"
    record_intent(aws, body)
    app = execute_app(function, aws, sample_close_ms())
    tasks = RecordingTasks()
    app.set_dependencies(
        type(app.dependencies())(**{**app.dependencies().__dict__, "tasks": tasks})
    )

    result = app.handler(sqs_event(body), context)

    assert result == {"batchItemFailures": []}
    assert [a[0] for a in tasks.answers] == ["FatalExchangeError"]
    assert paper_orders(aws) == 0
    assert PortfolioStore(aws.dynamodb, aws.tables["PORTFOLIO_TABLE"]).position(MARKET).amount == 0


def test_execute_when_the_body_is_invalid_but_has_a_token_then_fails_the_task_naming_the_field(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    body = json.loads(sample_event("execute")["Records"][0]["body"])
    record_intent(aws, body)
    body["decision"]["approved"] = False
    app = execute_app(function, aws, sample_close_ms())
    tasks = RecordingTasks()
    app.set_dependencies(
        type(app.dependencies())(**{**app.dependencies().__dict__, "tasks": tasks})
    )

    app.handler(sqs_event(body), context)

    assert len(tasks.answers) == 1
    error, cause = tasks.answers[0]
    assert error == "FatalExchangeError"
    assert "decision" in cause
    assert paper_orders(aws) == 0
    assert ledger_status(aws, body["intent"]["intent_id"]) == "new"


DEEP = "[" * 5000 + "]" * 5000
"""JSON nested 5,000 deep: ``json.loads`` raises RecursionError on it."""


def recording_execute_app(function: Loader, aws: Aws) -> tuple[ModuleType, RecordingTasks]:
    app = execute_app(function, aws, sample_close_ms())
    tasks = RecordingTasks()
    app.set_dependencies(
        type(app.dependencies())(**{**app.dependencies().__dict__, "tasks": tasks})
    )
    return app, tasks


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("decision.amount", "1e999999999"),
        ("decision.amount", "1e27"),
        ("decision.quote_amount", "-1e999999999"),
        ("intent.reference_price", "1e-999999999"),
        ("intent.candle_time", 10**30),
        ("attempt", 10**30),
    ],
)
def test_execute_when_a_number_cannot_be_stored_then_fails_the_task_naming_the_field(
    aws: Aws, function: Loader, context: FakeContext, field: str, value: Any
) -> None:
    """Issue 10: ``decimal.Overflow`` used to fail the record, so the task was never answered
    and the message went to the dead-letter queue."""
    body = json.loads(sample_event("execute")["Records"][0]["body"])
    record_intent(aws, body)
    app, tasks = recording_execute_app(function, aws)
    node = body
    *parents, last = field.split(".")
    for key in parents:
        node = node[key]
    node[last] = value

    result = app.handler(sqs_event(body), context)

    assert result == {"batchItemFailures": []}
    assert len(tasks.answers) == 1
    error, cause = tasks.answers[0]
    assert error == "FatalExchangeError"
    assert cause.startswith(f"invalid order message: {field}: ")
    assert paper_orders(aws) == 0
    assert ledger_status(aws, body["intent"]["intent_id"]) == "new"


@pytest.mark.parametrize(
    "where", ["intent", "decision.amount", "zz_extra"], ids=["field", "leaf", "extra"]
)
def test_execute_when_the_body_is_nested_5000_deep_then_still_answers_the_task(
    aws: Aws, function: Loader, context: FakeContext, where: str
) -> None:
    body = json.loads(sample_event("execute")["Records"][0]["body"])
    record_intent(aws, body)
    intent_id = body["intent"]["intent_id"]
    app, tasks = recording_execute_app(function, aws)
    node = body
    *parents, last = where.split(".")
    for key in parents:
        node = node[key]
    node[last] = "__DEEP__"
    text = json.dumps(body).replace('"__DEEP__"', DEEP)

    result = app.handler(sqs_event(text), context)

    assert result == {"batchItemFailures": []}
    assert [error for error, _ in tasks.answers] == ["FatalExchangeError"]
    assert tasks.answers[0][1].startswith("invalid order message: body: Invalid JSON: recursion")
    assert paper_orders(aws) == 0
    assert ledger_status(aws, intent_id) == "new"


def test_execute_when_a_deep_body_has_no_token_then_the_record_fails_as_invalid(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    app, tasks = recording_execute_app(function, aws)

    with pytest.raises(BatchProcessingError) as raised:
        app.handler(sqs_event(DEEP), context)

    assert [type(e) for _, e, _ in raised.value.child_exceptions] == [ValidationError]
    assert tasks.answers == []
    assert paper_orders(aws) == 0


def test_execute_when_the_body_is_not_json_then_the_record_fails_and_nothing_is_placed(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    app = execute_app(function, aws, sample_close_ms())
    tasks = RecordingTasks()
    app.set_dependencies(
        type(app.dependencies())(**{**app.dependencies().__dict__, "tasks": tasks})
    )

    with pytest.raises(Exception, match="All records failed"):
        app.handler(sqs_event("{not json"), context)
    assert tasks.answers == []
    assert paper_orders(aws) == 0


def test_execute_when_the_event_is_not_an_sqs_batch_then_names_the_field(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    with pytest.raises(ValidationError, match="Records"):
        execute_app(function, aws, sample_close_ms()).handler({"records": []}, context)


def test_execute_in_sandbox_mode_reads_the_secret_through_parameters_and_redacts_it(
    aws: Aws, function: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "CANARY-7f3e9c1d-never-log-me"
    arn = aws.secrets.create_secret(
        Name="tickstep/exchange",
        SecretString=json.dumps({"apiKey": "key-123456", "secret": canary}),
    )["ARN"]
    monkeypatch.setenv("TRADING_MODE", "sandbox")
    monkeypatch.setenv("EXCHANGE_SECRET_ARN", arn)
    app = function("execute")

    session = app.build_dependencies().open_exchange(MARKET)

    assert canary in session.secrets
    assert session.exchange.client.secret == canary
    assert session.exchange.client.urls["api"] == session.exchange.client.urls["test"]


# -- reconcile --------------------------------------------------------------------------------


def test_reconcile_sample_when_an_unknown_order_never_reached_the_exchange_then_fails_it(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    body = json.loads(sample_event("execute")["Records"][0]["body"])
    record_intent(aws, body)
    intent_id = body["intent"]["intent_id"]
    aws.dynamodb.update_item(
        TableName=aws.tables["ORDERS_TABLE"],
        Key={"pk": {"S": intent_id}},
        UpdateExpression="SET #s = :u, sent_at = :t",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":u": {"S": "unknown"}, ":t": {"N": "0"}},
    )
    now = sample_close_ms()
    app = function("reconcile")
    app.set_dependencies(
        app.build_dependencies(prices=FixedPrices("0.03527", now), clock=lambda: now)
    )

    report = app.handler(sample_event("reconcile"), context)

    assert (report["checked"], report["settled"], report["drift"]) == (1, 1, 1)
    assert ledger_status(aws, intent_id) == OrderStatus.FAILED.value


def test_reconcile_when_the_event_is_not_a_schedule_event_then_names_the_field(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    event = sample_event("reconcile")
    event["time"] = "yesterday"

    with pytest.raises(ValidationError, match="time"):
        function("reconcile").handler(event, context)


# -- api --------------------------------------------------------------------------------------


def api_event(
    method: str, path: str, body: Any = None, query: str = "", groups: str = "[operators]"
) -> dict[str, Any]:
    """An HTTP API event for ``/api<path>``, from a Cognito user in ``groups``."""
    path = path if path.startswith("/api/") else f"/api{path}"
    event = sample_event("api")
    event["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:groups"] = groups
    event["routeKey"] = f"{method} {path}"
    event["rawPath"] = path
    event["rawQueryString"] = query
    event["requestContext"]["http"].update(method=method, path=path)
    event["requestContext"]["routeKey"] = f"{method} {path}"
    if query:
        event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&"))
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def test_api_sample_status_when_nothing_was_set_then_trading_is_active(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    response = function("api").handler(sample_event("api"), context)

    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["trading_state"]["state"] == "ACTIVE"
    assert body["mode"] == "paper"


def test_api_when_halted_then_state_is_halted_by_the_caller_and_the_change_is_published(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    app = function("api")

    response = app.handler(api_event("POST", "/halt", {"reason": "game day"}), context)

    assert response["statusCode"] == 200
    record = ControlStore(aws.dynamodb, aws.tables["CONTROL_TABLE"]).get()
    assert record.state is TradingState.HALTED
    assert record.changed_by == "cognito:operator"
    changed = aws.bus_events("TradingStateChanged")
    assert [(e["detail"]["previous"], e["detail"]["current"]["state"]) for e in changed] == [
        ("ACTIVE", "HALTED")
    ]
    resumed = app.handler(api_event("POST", "/resume", {"reason": "done"}), context)
    assert json.loads(resumed["body"])["state"] == "ACTIVE"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "reason"),
        ({"reason": ""}, "reason"),
        ({"reason": "x", "force": True}, "force"),
        ({"reason": "x", "changed_by": "arn:aws:iam::1:root"}, "changed_by"),
        ({"reason": "stop\u0000now"}, "reason"),
        ({"reason": "all good \u202eyad emag"}, "reason"),
        ({"reason": "game day\r\nstate: ACTIVE"}, "reason"),
        ({"reason": "game day\u2028state: ACTIVE"}, "reason"),
        ({"reason": "x", "note": "__DEEP__"}, "body"),
        ("__DEEP__", "body"),
        ({"reason": "1e999999999"}, None),
    ],
    ids=[
        "empty",
        "blank",
        "extra",
        "who-from-body",
        "nul",
        "bidi-override",
        "crlf",
        "line-separator",
        "deep-field",
        "deep-body",
        "number-text-is-fine",
    ],
)
def test_api_halt_when_the_body_is_invalid_then_422_names_the_field_and_nothing_changes(
    aws: Aws, function: Loader, context: FakeContext, body: Any, field: str | None
) -> None:
    text = json.dumps(body).replace('"__DEEP__"', DEEP)

    response = function("api").handler(api_event("POST", "/halt", text), context)

    if field is None:  # a reason that only looks like a number is a reason
        assert response["statusCode"] == 200
        return
    assert response["statusCode"] == 422
    assert field in [e["field"] for e in json.loads(response["body"])["errors"]]
    assert aws.items("CONTROL_TABLE") == []
    assert aws.bus_events() == []


def test_api_halt_when_the_reason_hides_characters_then_the_message_says_which(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    response = function("api").handler(
        api_event("POST", "/halt", {"reason": "ok\u202etxt.exe"}), context
    )

    errors = json.loads(response["body"])["errors"]
    assert errors == [
        {
            "field": "reason",
            "message": "Text must not contain control, format or line separator characters "
            "(U+202E at 2)",
        }
    ]


@pytest.mark.parametrize(
    "authorizer",
    [None, {}, {"jwt": None}, {"jwt": {"claims": {"sub": ""}}}, {"iam": {"userArn": "x"}}],
    ids=["no-authorizer", "empty", "jwt-null", "blank-sub", "not-jwt"],
)
def test_api_halt_without_a_verified_jwt_identity_then_403_and_nothing_changes(
    aws: Aws, function: Loader, context: FakeContext, authorizer: Any
) -> None:
    """The audit trail names who API Gateway verified; a request without one (a route
    deployed without the JWT authorizer by mistake) changes nothing rather than writing "api"."""
    event = api_event("POST", "/halt", {"reason": "game day"})
    if authorizer is None:
        del event["requestContext"]["authorizer"]
    else:
        event["requestContext"]["authorizer"] = authorizer

    response = function("api").handler(event, context)

    assert response["statusCode"] == 403
    assert json.loads(response["body"])["errors"][0]["field"] == (
        "requestContext.authorizer.jwt.claims"
    )
    assert aws.items("CONTROL_TABLE") == []
    assert aws.bus_events() == []


@pytest.mark.parametrize("route", ["/halt", "/reduce", "/resume"])
@pytest.mark.parametrize("groups", ["[viewers]", "", "[operatorsx viewers]"])
def test_api_state_change_when_the_caller_is_not_an_operator_then_403_and_nothing_changes(
    aws: Aws, function: Loader, context: FakeContext, route: str, groups: str
) -> None:
    event = api_event("POST", route, {"reason": "game day"}, groups=groups)

    response = function("api").handler(event, context)

    assert response["statusCode"] == 403
    assert json.loads(response["body"])["errors"][0]["field"] == "cognito:groups"
    assert aws.items("CONTROL_TABLE") == []
    assert aws.bus_events() == []


def test_api_reduce_when_an_operator_asks_then_trading_is_reducing(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    event = api_event("POST", "/reduce", {"reason": "too much risk"}, groups="[viewers operators]")

    response = function("api").handler(event, context)

    assert response["statusCode"] == 200
    assert ControlStore(aws.dynamodb, aws.tables["CONTROL_TABLE"]).get().state is (
        TradingState.REDUCING
    )


def test_api_viewer_may_read_the_dashboard_and_amounts_are_decimal_strings(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    body = json.loads(sample_event("execute")["Records"][0]["body"])
    record_intent(aws, body)

    response = function("api").handler(api_event("GET", "/dashboard", groups="[viewers]"), context)

    assert response["statusCode"] == 200
    board = json.loads(response["body"])
    assert board["trading_state"]["state"] == "ACTIVE"
    assert board["order_count"] == 1
    assert [o["intent_id"] for o in board["orders"]] == [body["intent"]["intent_id"]]
    assert all(isinstance(m["position"], str) for m in board["markets"])


def test_api_halt_records_the_verified_user_and_ignores_identity_headers(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    event = api_event("POST", "/halt", {"reason": "game day"})
    event["headers"]["x-amz-user"] = "someone-else"
    event["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:username"] = "alice"

    response = function("api").handler(event, context)

    assert response["statusCode"] == 200
    record = ControlStore(aws.dynamodb, aws.tables["CONTROL_TABLE"]).get()
    assert record.changed_by == "cognito:alice"


def test_api_orders_when_status_is_unknown_then_422_names_status(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    response = function("api").handler(api_event("GET", "/orders", query="status=lost"), context)

    assert response["statusCode"] == 422
    assert json.loads(response["body"])["errors"][0]["field"] == "status"


def test_api_orders_and_positions_when_an_order_was_recorded_then_list_it(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    body = json.loads(sample_event("execute")["Records"][0]["body"])
    record_intent(aws, body)
    app = function("api")

    orders = json.loads(
        app.handler(api_event("GET", "/orders", query="status=new"), context)["body"]
    )
    positions = app.handler(api_event("GET", "/positions"), context)
    health = app.handler(api_event("GET", "/health"), context)

    assert [o["intent_id"] for o in orders["orders"]] == [body["intent"]["intent_id"]]
    assert json.loads(positions["body"]) == {"positions": [], "balances": {}}
    # Reachable, but no candle stored yet: not healthy, and the body says why, per market.
    assert health["statusCode"] == 503
    checked = json.loads(health["body"])
    assert checked["status"] == "unhealthy"
    assert "no candle" in json.dumps(checked)
    assert "intent_id" not in health["body"]  # health shows no order or position


def test_api_signals_when_a_buy_was_computed_then_lists_it_for_its_market(
    aws: Aws, function: Loader, context: FakeContext
) -> None:
    event = CandleClosed.model_validate(sample_event("signal"))
    history = candles_ending_with(event.candle, ["0.036"] * 5 + ["0.035", "0.034", "0.033"])
    CandleStore(aws.dynamodb, aws.tables["CANDLES_TABLE"]).put(MARKET, history)
    function("signal").handler(sample_event("signal"), context)

    response = function("api").handler(api_event("GET", "/signals"), context)

    signals = json.loads(response["body"])["signals"][MARKET.key]
    assert [s["action"] for s in signals] == ["BUY"]


def test_region_is_the_fixture_region_not_the_developer_config(aws: Aws) -> None:
    assert aws.dynamodb.meta.region_name == REGION


# -- one retry policy for every AWS client ------------------------------------------------------


@pytest.mark.parametrize("name", ["api", "execute", "ingest", "reconcile", "risk", "signal"])
def test_every_handler_when_it_builds_its_clients_then_each_has_the_one_retry_policy(
    aws: Aws, function: Loader, name: str
) -> None:
    """Throttles, 5xx and dropped connections are retried with back-off and jitter inside the
    function, by the SDK, the same way everywhere (tickstep.bootstrap.RETRIES)."""
    from tickstep.bootstrap import RETRIES, TIMEOUTS

    app = function(name)
    deps = app.build_dependencies(source=ListSource([])) if name == "ingest" else None
    deps = deps or app.build_dependencies()
    clients = [
        client
        for value in vars(deps).values()
        for client in (getattr(value, "_client", None), getattr(value, "client", None))
        if client is not None and hasattr(client, "meta")
    ]
    services = {c.meta.service_model.service_name for c in clients}
    assert "dynamodb" in services
    if name in ("api", "execute", "ingest", "risk"):
        assert "events" in services  # they publish
    for client in clients:
        config = client.meta.config
        assert config.retries["mode"] == RETRIES["mode"]
        assert config.retries["total_max_attempts"] == RETRIES["total_max_attempts"]
        assert config.connect_timeout == TIMEOUTS["connect_timeout"]
        assert config.read_timeout == TIMEOUTS["read_timeout"]


def test_api_dashboard_shows_the_release_deploy_backend_recorded(
    aws: Aws, function: Loader, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from tickstep.operations.releases import Release, record
    from tickstep.operations.stack import Clients

    monkeypatch.setenv("RELEASE_PARAMETER", "/tickstep/tickstep-test/release")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "12")
    api = function("api")

    before = json.loads(api.handler(api_event("GET", "/dashboard"), context)["body"])
    release = Release(
        id="20261127T120000Z-deploy",
        kind="deploy",
        commit="abc1234",
        time="2026-11-27T12:00:00Z",
        who="arn:aws:iam::123456789012:user/operator",
        functions={"RiskFunction": "7", "ApiFunction": "12"},
    )
    record(Clients(boto3.Session(region_name=REGION)), "tickstep-test", release)
    after = json.loads(api.handler(api_event("GET", "/dashboard"), context)["body"])

    assert before["release"] == {"api": "12", "release": "none recorded"}
    assert after["release"] == {
        "api": "12",
        "id": "20261127T120000Z-deploy",
        "kind": "deploy",
        "commit": "abc1234",
        "time": "2026-11-27T12:00:00Z",
        "who": "arn:aws:iam::123456789012:user/operator",
        "Api": "12",
        "Risk": "7",
    }
