"""A canary exchange secret never leaves the execute and reconcile functions.

The secret in moto's Secrets Manager holds canary values; ccxt is replaced by a fake built with
them (no network) that either fills orders or fails authentication with the key and secret in
its message, as some exchanges echo a signed request. Everything the functions put out is
collected: every log line (the Powertools JSON on stdout, the stdlib records at INFO, the
runtime's level), every AWS API call's parameters (DynamoDB writes, events, SendTaskSuccess
and SendTaskFailure), every bus event, every item of every table, the order workflow's
history, and the handlers' return values. No piece of a canary of 8 characters or more may
appear in any of it. A rotated secret is used once Powertools' cache (5 minutes) has expired,
by the same handler, without rebuilding it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import ccxt
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters import base as parameters_base

from tests.pipeline.conftest import Aws, FakeContext, sample_event
from tests.pipeline.test_handlers import (
    MARKET,
    RecordingTasks,
    record_intent,
    sample_close_ms,
    sqs_event,
    start_order_workflow,
    wait_for_end,
    wait_for_message,
)
from tickstep.exchanges import ccxt_adapter
from tickstep.services import redact

Loader = Callable[[str], ModuleType]
CANARY = {
    "apiKey": "CANARY-KEY-8f3a6d21c9b04e7f-a5d2e91b7c3f4a60",
    "secret": "CANARY-SECRET-2b7e4c19d8a3f650-93c1e7a4b2d8f516",
}
ROTATED = {
    "apiKey": "CANARY-KEY-ROTATED-41d9e7a2c6b3f805-7e2a",
    "secret": "CANARY-SECRET-ROTATED-c3f8a1d6e9b2740d-55b1",
}
WINDOW = 8
"""The shortest piece of a canary that counts as a leak."""


def leaks(texts: list[str], secrets: dict[str, str]) -> list[str]:
    """The texts holding any ``WINDOW``-character piece of a secret value."""
    pieces = {
        value[i : i + WINDOW] for value in secrets.values() for i in range(len(value) - WINDOW + 1)
    }
    return [t for t in texts if any(p in t for p in pieces)]


# -- a ccxt client that never touches the network ----------------------------------------------


@dataclass
class FakeCcxt:
    """The ccxt calls CcxtExchange makes; ``fail`` makes every private call fail auth."""

    api_key: str
    secret: str
    fail: bool = False
    padding: int = 0
    precisionMode: int = 4  # noqa: N815 -- ccxt's attribute
    orders: list[dict[str, Any]] = field(default_factory=list)

    def milliseconds(self) -> int:
        return sample_close_ms()

    def _private(self, path: str) -> None:
        if self.fail:
            # What ccxt raises with an exchange that echoes the signed request; ``padding``
            # puts the key across the adapter's 300-character cut.
            raise ccxt.AuthenticationError(
                "binance " + "x" * self.padding + f"GET https://testnet.binance.vision/api/v3/"
                f"{path}?apiKey={self.api_key}&secret={self.secret} "
                '{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}'
            )

    def load_markets(self) -> dict[str, Any]:
        return {}

    def amount_to_precision(self, symbol: str, amount: str) -> str:
        return amount

    def price_to_precision(self, symbol: str, price: str) -> str:
        return price

    def fetch_open_orders(self, symbol: str) -> list[dict[str, Any]]:
        self._private("openOrders")
        return []

    def fetch_closed_orders(self, symbol: str, since: int | None = None) -> list[dict[str, Any]]:
        self._private("allOrders")
        return [o for o in self.orders if o["status"] == "closed"]

    def create_order(  # noqa: PLR0917 -- ccxt's signature
        self,
        symbol: str,
        order_type: str,
        side: str,
        amount: str,
        price: str | None,
        params: dict[str, Any],
    ) -> dict[str, Any]:
        self._private("order")
        order = {
            "id": str(len(self.orders) + 1),
            "clientOrderId": params["clientOrderId"],
            "symbol": symbol,
            "type": order_type,
            "side": side,
            "amount": amount,
            "filled": amount,
            "average": "0.03527",
            "status": "closed",
            "timestamp": self.milliseconds(),
        }
        self.orders.append(order)
        return order

    def fetch_balance(self) -> dict[str, Any]:
        self._private("account")
        return {"free": {"BTC": "0.995", "ETH": "0.141"}, "used": {}}


@dataclass
class Exchange:
    """Builds the fakes in place of ccxt and keeps each one."""

    fail: bool = False
    padding: int = 0
    built: list[FakeCcxt] = field(default_factory=list)

    def build(
        self,
        exchange_id: str,
        *,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        sandbox: bool = False,
    ) -> FakeCcxt:
        assert exchange_id == "binance" and sandbox
        client = FakeCcxt(str(api_key), str(secret), fail=self.fail, padding=self.padding)
        self.built.append(client)
        return client


# -- what the functions put out ------------------------------------------------------------------


@dataclass
class Outputs:
    aws: Aws
    capsys: pytest.CaptureFixture[str]
    caplog: pytest.LogCaptureFixture
    log_stream: io.StringIO
    api_calls: list[str] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)
    workflow: list[str] = field(default_factory=list)

    def everything(self) -> list[str]:
        captured = self.capsys.readouterr()
        items = [json.dumps(i) for table in self.aws.tables for i in self.aws.items(table)]
        events = [json.dumps(e) for e in self.aws.bus_events()]
        logs = [
            self.log_stream.getvalue(),
            captured.out,
            captured.err,
            *(r.getMessage() + json.dumps(r.__dict__, default=str) for r in self.caplog.records),
        ]
        return [*logs, *self.api_calls, *items, *events, *self.returned, *self.workflow]


@pytest.fixture
def outputs(
    aws: Aws,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Outputs]:
    caplog.set_level("INFO")
    collected = Outputs(aws, capsys, caplog, io.StringIO())

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        collected.api_calls.append(f"{service}.{model.name} {json.dumps(params, default=str)}")

    # Clients made from here on (the functions' own) report every call's parameters.
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("provide-client-params", record, unique_id="canary")
    yield collected
    session.events.unregister("provide-client-params", unique_id="canary")


@pytest.fixture
def exchange(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Exchange:
    """Sandbox mode with the canary secret in Secrets Manager and ccxt faked."""
    arn = aws.secrets.create_secret(Name="tickstep/exchange", SecretString=json.dumps(CANARY))[
        "ARN"
    ]
    monkeypatch.setenv("TRADING_MODE", "sandbox")
    monkeypatch.setenv("EXCHANGE_SECRET_ARN", arn)
    parameters.clear_caches()  # a provider from an earlier test holds another moto's secret
    fake = Exchange()
    monkeypatch.setattr(ccxt_adapter, "build_ccxt_client", fake.build)
    return fake


@dataclass
class Rig:
    aws: Aws
    function: Loader
    context: FakeContext
    exchange: Exchange
    outputs: Outputs
    monkeypatch: pytest.MonkeyPatch

    def app(self, name: str) -> Any:
        """The function, built now, its Powertools log lines going to ``outputs`` (the
        logger keeps the stdout of whichever test first loaded the module)."""
        app = self.function(name)
        self.monkeypatch.setattr(app.logger.registered_handler, "stream", self.outputs.log_stream)
        now = sample_close_ms()
        app.set_dependencies(app.build_dependencies(clock=lambda: now))
        return app


@pytest.fixture
def rig(
    aws: Aws,
    function: Loader,
    exchange: Exchange,
    outputs: Outputs,
    monkeypatch: pytest.MonkeyPatch,
) -> Rig:
    return Rig(aws, function, FakeContext(), exchange, outputs, monkeypatch)


def order_body(intent_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(sample_event("execute")["Records"][0]["body"])
    if intent_id:
        body["intent"]["intent_id"] = body["decision"]["intent_id"] = intent_id
    return body


def test_redact_when_a_cut_message_ends_with_part_of_a_secret_then_removes_that_part() -> None:
    key = CANARY["apiKey"]

    assert redact(f"apiKey={key}&x", [key]) == "apiKey=***&x"
    assert redact(f"apiKey={key[:12]}", [key]) == "apiKey=***"
    assert redact("nothing secret", [key, ""]) == "nothing secret"


# -- execute ---------------------------------------------------------------------------------


def test_the_cut_case_cuts_the_key() -> None:
    """With padding 217 the adapter's 300-character cut falls inside the key."""
    error = FakeCcxt(CANARY["apiKey"], CANARY["secret"], fail=True, padding=217)
    with pytest.raises(ccxt.AuthenticationError) as raised:
        error.fetch_open_orders("ETH/BTC")
    detail = ccxt_adapter.translate_ccxt_error(raised.value).detail

    assert CANARY["apiKey"][:15] in detail
    assert CANARY["apiKey"][:16] not in detail


@pytest.mark.parametrize("padding", [0, 217], ids=["whole-key", "key-cut-at-300"])
def test_execute_when_the_exchange_echoes_the_key_in_an_auth_error_then_it_is_nowhere(
    rig: Rig, padding: int
) -> None:
    aws, outputs = rig.aws, rig.outputs
    rig.exchange.fail = True
    rig.exchange.padding = padding
    body = order_body()
    record_intent(aws, body)
    execution, queue_url = start_order_workflow(aws, body)
    message = wait_for_message(aws, queue_url)
    app = rig.app("execute")

    outputs.returned.append(json.dumps(app.handler(sqs_event(message), rig.context)))

    ended = wait_for_end(aws, execution)
    outputs.workflow.append(json.dumps(ended, default=str))
    history = aws.stepfunctions.get_execution_history(executionArn=execution)["events"]
    outputs.workflow.append(json.dumps(history, default=str))
    # The canary was in play: the client had it, and the failure was the auth error.
    assert [c.api_key for c in rig.exchange.built] == [CANARY["apiKey"]]
    assert ended["status"] == "FAILED"
    assert ended["error"] == "AuthenticationFailed"  # moto drops the cause: read the call
    failures = [c for c in outputs.api_calls if c.startswith("stepfunctions.SendTaskFailure ")]
    assert len(failures) == 1
    assert "authentication: AuthenticationError: binance" in failures[0]
    assert "***" in failures[0]
    control = aws.items("CONTROL_TABLE")
    assert [i["state"]["S"] for i in control] == ["HALTED"]
    assert '"message":"order not placed"' in outputs.log_stream.getvalue()
    everything = outputs.everything()
    assert leaks(everything, CANARY) == []


def test_execute_when_the_order_fills_then_the_key_is_nowhere_and_a_rotated_key_is_used(
    rig: Rig,
) -> None:
    aws, outputs = rig.aws, rig.outputs
    app = rig.app("execute")
    tasks = RecordingTasks()
    app.set_dependencies(
        type(app.dependencies())(**{**app.dependencies().__dict__, "tasks": tasks})
    )
    handler_deps = app.dependencies()
    bodies = [order_body(f"ts{n:030d}") for n in (1, 2, 3)]
    for body in bodies:
        record_intent(aws, body)

    outputs.returned.append(json.dumps(app.handler(sqs_event(bodies[0]), rig.context)))
    aws.secrets.put_secret_value(SecretId="tickstep/exchange", SecretString=json.dumps(ROTATED))
    outputs.returned.append(json.dumps(app.handler(sqs_event(bodies[1]), rig.context)))
    cached = [c.api_key for c in rig.exchange.built]

    later = datetime.now() + timedelta(seconds=301)  # past get_secret's max_age=300

    class Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return later

    rig.monkeypatch.setattr(parameters_base, "datetime", Later)
    outputs.returned.append(json.dumps(app.handler(sqs_event(bodies[2]), rig.context)))

    assert cached == [CANARY["apiKey"]]  # within the cache's age: the old key still
    assert [c.api_key for c in rig.exchange.built] == [CANARY["apiKey"], ROTATED["apiKey"]]
    assert [len(c.orders) for c in rig.exchange.built] == [2, 1]
    assert app.dependencies() is handler_deps  # the same container, not rebuilt
    assert [answer for answer, _ in tasks.answers] == ["success"] * 3
    outputs.returned += [json.dumps(output) for _, output in tasks.answers]
    assert outputs.log_stream.getvalue().count('"message":"order recorded"') == 3
    everything = outputs.everything()
    assert leaks(everything, CANARY) == []
    assert leaks(everything, ROTATED) == []


# -- reconcile -------------------------------------------------------------------------------


def test_reconcile_when_every_exchange_call_fails_auth_echoing_the_key_then_it_is_nowhere(
    rig: Rig,
) -> None:
    aws, outputs = rig.aws, rig.outputs
    rig.exchange.fail = True
    body = order_body()
    record_intent(aws, body)
    aws.dynamodb.update_item(
        TableName=aws.tables["ORDERS_TABLE"],
        Key={"pk": {"S": body["intent"]["intent_id"]}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "submitted"}},
    )
    app = rig.app("reconcile")

    report = app.handler(sample_event("reconcile"), rig.context)

    outputs.returned.append(json.dumps(report))
    assert [c.api_key for c in rig.exchange.built] == [CANARY["apiKey"]]
    assert set(report["errors"]) == {body["intent"]["intent_id"], MARKET.key, "balances"}
    assert all("***" in e for e in report["errors"].values())
    assert outputs.log_stream.getvalue().count('"message":"not reconciled"') == 3
    everything = outputs.everything()
    assert leaks(everything, CANARY) == []
