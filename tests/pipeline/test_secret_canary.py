"""A canary exchange secret never leaves the execute and reconcile functions.

The secret in moto's Secrets Manager holds canary values; ccxt is replaced by a fake built with
them (no network) that either fills orders or fails authentication with the key and secret in
its message, as some exchanges echo a signed request (with ``encoded``: the key, secret and
password also URL-encoded and JSON-escaped, as a query string and a JSON body carry them).
Everything the functions put out is collected: every log line (the Powertools JSON on stdout,
the stdlib records at INFO with their formatted tracebacks, the runtime's level), every AWS API
call's parameters (DynamoDB writes, events, SendTaskSuccess and SendTaskFailure), every bus
event, every item of every table, the order workflow's history, the handlers' return values,
the exception a handler raises (what the Lambda runtime logs and returns as ``errorMessage``:
its text, ``repr`` and traceback, every exception chained to it and every one a
``BatchProcessingError`` holds), and the trace metadata Powertools' Tracer records. No piece
of 8 characters or more of a canary, in any spelling, may appear in any of it. A rotated
secret is used once Powertools' cache (5 minutes) has expired, by the same handler, without
rebuilding it.
"""

from __future__ import annotations

import importlib.util
import inspect
import io
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any
from urllib.parse import quote, quote_plus

import boto3
import ccxt
import pytest
from aws_lambda_powertools import Tracer
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters import base as parameters_base
from botocore.exceptions import ClientError

from tests.builders import CcxtOrderCall, secret_pieces
from tests.pipeline.conftest import ROOT, Aws, CcxtWithoutMarkets, FakeContext, sample_event
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
from tickstep.exchanges.ccxt_adapter import build_ccxt_client
from tickstep.redaction import redact

Loader = Callable[[str], ModuleType]
CANARY = {
    "apiKey": "CANARY-KEY-8f3a6d21c9b04e7f-a5d2e91b7c3f4a60",
    "secret": "CANARY-SECRET-2b7e4c19d8a3f650-93c1e7a4b2d8f516",
}
ROTATED = {
    "apiKey": "CANARY-KEY-ROTATED-41d9e7a2c6b3f805-7e2a",
    "secret": "CANARY-SECRET-ROTATED-c3f8a1d6e9b2740d-55b1",
}
SPECIAL = {
    "apiKey": "CANARY-KEY-e5c1+7f3a/9b2d=04c8-d6e1",
    "secret": 'CANARY-SECRET-4a9f+c2e7/1d5b=836f "b0e4\\a7d2" \u00fc3c9',
    "password": "CANARY-PASS-93d1&f6b4?2ae8#c07e",
}
"""Values whose URL-encoded and JSON-escaped spellings differ from the value itself."""
WINDOW = 8
"""The shortest piece of a canary that counts as a leak."""


def leaks(texts: list[str], secrets: dict[str, str]) -> list[str]:
    """The texts holding any ``WINDOW``-character piece of a secret value, in any spelling."""
    pieces = secret_pieces(secrets.values(), WINDOW)
    return [t for t in texts if any(p in t for p in pieces)]


def echoed_request(path: str, key: str, secret: str, password: str | None) -> str:
    """What an exchange's error says when it echoes the signed request: the credentials in a
    URL-encoded query string (``+`` for a space, then lower-case hex), in a JSON body, and
    as they are."""
    credentials = {"apiKey": key, "secret": secret, "password": password or ""}
    return (
        f"binance POST https://testnet.binance.vision/api/v3/{path}?apiKey={quote_plus(key)}"
        f"&secret={quote(secret, safe='')}&password={quote(password or '', safe='').lower()} "
        f"body={json.dumps(credentials)} utf8={json.dumps(credentials, ensure_ascii=False)} "
        f"signed with {key}:{secret}:{password} "
        '{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}'
    )


def throttled(operation: str) -> ClientError:
    """What boto3 raises when a DynamoDB table throttles."""
    return ClientError(
        {
            "Error": {
                "Code": "ProvisionedThroughputExceededException",
                "Message": "The level of configured provisioned throughput was exceeded",
            }
        },
        operation,
    )


def exception_texts(error: BaseException) -> list[str]:
    """Everything the Lambda runtime, a log line or a trace can show of ``error``: its text,
    ``repr``, arguments and traceback, for it and every exception chained to it or held by a
    ``BatchProcessingError``, recursively."""
    texts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts += [
            str(current),
            repr(current),
            repr(current.args),
            "".join(traceback.format_exception(current)),
            json.dumps(vars(current), default=repr),
        ]
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += [e for _, e, _ in getattr(current, "child_exceptions", []) if e is not None]
    return texts


def chain_of(error: BaseException) -> list[BaseException]:
    """``error`` and what it chains and holds, depth first."""
    found: list[BaseException] = []
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop(0)
        found.append(current)
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += [e for _, e, _ in getattr(current, "child_exceptions", []) if e is not None]
    return found


# -- a ccxt client that never touches the network ----------------------------------------------


@dataclass
class Faults:
    """How a fake ccxt client answers its private calls: ``fail`` makes each fail auth (with
    ``failing``, only calls to those paths, with ``error``); ``encoded`` echoes the
    credentials in every spelling (:func:`echoed_request`); ``padding`` shifts the echo."""

    fail: bool = False
    padding: int = 0
    encoded: bool = False
    failing: frozenset[str] | None = None
    error: type[ccxt.BaseError] = ccxt.AuthenticationError


@dataclass
class FakeCcxt(CcxtWithoutMarkets):
    """The ccxt calls CcxtExchange makes, failing as its ``faults`` say."""

    api_key: str
    secret: str
    password: str | None = None
    faults: Faults = field(default_factory=Faults)
    orders: list[dict[str, Any]] = field(default_factory=list)

    @property
    def apiKey(self) -> str:
        return self.api_key

    def milliseconds(self) -> int:
        return sample_close_ms()

    def _private(self, path: str) -> None:
        faults = self.faults
        if not faults.fail or (faults.failing is not None and path not in faults.failing):
            return
        if faults.encoded:
            raise faults.error(echoed_request(path, self.api_key, self.secret, self.password))
        # What ccxt raises with an exchange that echoes the signed request; ``padding`` puts
        # the key across the adapter's 300-character cut.
        raise faults.error(
            "binance " + "x" * faults.padding + f"GET https://testnet.binance.vision/api/v3/"
            f"{path}?apiKey={self.api_key}&secret={self.secret} "
            '{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}'
        )

    def fetch_open_orders(self, symbol: str) -> list[dict[str, Any]]:
        self._private("openOrders")
        return []

    def fetch_closed_orders(self, symbol: str, since: int | None = None) -> list[dict[str, Any]]:
        self._private("allOrders")
        return [o for o in self.orders if o["status"] == "closed"]

    def create_order(self, *args: Any) -> dict[str, Any]:
        call = CcxtOrderCall(*args)
        self._private("order")
        order = {
            "id": str(len(self.orders) + 1),
            "clientOrderId": call.params["clientOrderId"],
            "symbol": call.symbol,
            "type": call.type,
            "side": call.side,
            "amount": call.amount,
            "filled": call.amount,
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
class Exchange(Faults):
    """Builds the fakes in place of ccxt, each failing as this is set when it is called, and
    keeps each one."""

    built: list[FakeCcxt] = field(default_factory=list)

    def build(self, *args: Any, **kwargs: Any) -> FakeCcxt:
        """Takes exactly what ``build_ccxt_client`` takes: its signature checks the call."""
        call = inspect.signature(build_ccxt_client).bind(*args, **kwargs)
        call.apply_defaults()
        given = call.arguments
        assert given["exchange_id"] == "binance" and given["sandbox"]
        client = FakeCcxt(str(given["api_key"]), str(given["secret"]), given["password"], self)
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
    raised: list[str] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)

    def everything(self) -> list[str]:
        captured = self.capsys.readouterr()
        items = [json.dumps(i) for table in self.aws.tables for i in self.aws.items(table)]
        events = [json.dumps(e) for e in self.aws.bus_events()]
        formatter = logging.Formatter()
        logs = [
            self.log_stream.getvalue(),
            captured.out,
            captured.err,
            *(r.getMessage() + json.dumps(r.__dict__, default=str) for r in self.caplog.records),
            *(formatter.format(r) for r in self.caplog.records),  # tracebacks, chains included
        ]
        return [
            *logs,
            *self.api_calls,
            *items,
            *events,
            *self.returned,
            *self.workflow,
            *self.raised,
            *self.traces,
        ]


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
def secret_values() -> dict[str, str]:
    """The exchange secret's JSON; a test parametrizes ``secret_values`` for another."""
    return CANARY


@pytest.fixture
def exchange(aws: Aws, monkeypatch: pytest.MonkeyPatch, secret_values: dict[str, str]) -> Exchange:
    """Sandbox mode with the canary secret in Secrets Manager and ccxt faked."""
    arn = aws.secrets.create_secret(
        Name="tickstep/exchange", SecretString=json.dumps(secret_values)
    )["ARN"]
    monkeypatch.setenv("TRADING_MODE", "sandbox")
    monkeypatch.setenv("EXCHANGE_SECRET_ARN", arn)
    parameters.clear_caches()  # a provider from an earlier test holds another moto's secret
    fake = Exchange()
    monkeypatch.setattr(ccxt_adapter, "build_ccxt_client", fake.build)
    return fake


@dataclass
class TraceRecorder:
    """A Powertools Tracer provider that keeps what the Tracer records (subsegments,
    annotations, metadata: the handler's response, the exception it raised) instead of
    sending it to X-Ray."""

    records: list[tuple[str, str, Any]] = field(default_factory=list)

    @contextmanager
    def in_subsegment(self, name: str | None = None, **_: Any) -> Iterator[TraceRecorder]:
        self.records.append(("subsegment", str(name), None))
        yield self

    def put_annotation(self, key: str, value: Any) -> None:
        self.records.append(("annotation", key, value))

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        self.records.append(("metadata", key, value))

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        self.records.append(("exception", type(exception).__name__, exception))

    def patch(self, modules: Any = None) -> None:
        return None

    def patch_all(self) -> None:
        return None

    def errors(self) -> list[str]:
        """The metadata keys holding an exception, e.g. ``handler error``."""
        return [
            key.rsplit(".", 1)[-1]
            for kind, key, value in self.records
            if isinstance(value, BaseException)
        ]

    def texts(self) -> list[str]:
        texts: list[str] = []
        for kind, key, value in self.records:
            if isinstance(value, BaseException):
                texts += exception_texts(value)
            else:
                texts.append(f"{kind} {key} {json.dumps(value, default=repr)}")
        return texts


@pytest.fixture
def trace(monkeypatch: pytest.MonkeyPatch) -> Iterator[TraceRecorder]:
    """Tracing on (as ``EnableTracing`` deploys it), into a recorder; the Tracer's shared
    configuration is reset afterwards."""
    recorder = TraceRecorder()
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(ROOT))  # in Lambda: the Tracer stays on
    Tracer._reset_config()
    Tracer(provider=recorder, auto_patch=False)  # type: ignore[arg-type]
    yield recorder
    Tracer._reset_config()


class Throttled:
    """A store whose ``method`` fails as a throttled DynamoDB table would; the rest of it
    is the store's."""

    def __init__(self, store: Any, method: str, operation: str) -> None:
        self._store = store
        self._method = method
        self._operation = operation

    def __getattr__(self, name: str) -> Any:
        if name != self._method:
            return getattr(self._store, name)

        def fail(*args: Any, **kwargs: Any) -> Any:
            raise throttled(self._operation)

        return fail


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
        return self._built(self.function(name))

    def traced_app(self, name: str) -> Any:
        """The function loaded anew with tracing on (needs the ``trace`` fixture): its
        decorators are applied at import, so the cached module has none."""
        spec = importlib.util.spec_from_file_location(
            f"tickstep_function_{name}_traced", ROOT / "functions" / name / "app.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        self.monkeypatch.setitem(sys.modules, spec.name, module)
        spec.loader.exec_module(module)
        assert type(module.tracer) is Tracer
        return self._built(module)

    def _built(self, app: Any) -> Any:
        self.monkeypatch.setattr(app.logger.registered_handler, "stream", self.outputs.log_stream)
        now = sample_close_ms()
        app.set_dependencies(app.build_dependencies(clock=lambda: now))
        return app

    def with_store(self, app: Any, store: str, method: str, operation: str) -> Any:
        """``app``'s dependencies with ``store.method`` throttled; returns the healthy ones."""
        healthy = app.dependencies()
        failing = Throttled(getattr(healthy, store), method, operation)
        app.set_dependencies(type(healthy)(**{**healthy.__dict__, store: failing}))
        return healthy


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


def record_submitted(aws: Aws, body: dict[str, Any]) -> None:
    """The ledger holds the order as sent and not yet settled: what reconcile asks about."""
    record_intent(aws, body)
    aws.dynamodb.update_item(
        TableName=aws.tables["ORDERS_TABLE"],
        Key={"pk": {"S": body["intent"]["intent_id"]}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "submitted"}},
    )


def test_redact_when_a_cut_message_ends_with_part_of_a_secret_then_removes_that_part() -> None:
    key = CANARY["apiKey"]

    assert redact(f"apiKey={key}&x", [key]) == "apiKey=***&x"
    assert redact(f"apiKey={key[:12]}", [key]) == "apiKey=***"
    assert redact("nothing secret", [key, ""]) == "nothing secret"


# -- execute ---------------------------------------------------------------------------------


def test_the_cut_case_cuts_the_key() -> None:
    """With padding 217 the adapter's 300-character cut falls inside the key."""
    error = FakeCcxt(CANARY["apiKey"], CANARY["secret"], faults=Faults(fail=True, padding=217))
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
    record_submitted(aws, body)
    app = rig.app("reconcile")

    report = app.handler(sample_event("reconcile"), rig.context)

    outputs.returned.append(json.dumps(report))
    assert [c.api_key for c in rig.exchange.built] == [CANARY["apiKey"]]
    assert set(report["errors"]) == {body["intent"]["intent_id"], MARKET.key, "balances"}
    assert all("***" in e for e in report["errors"].values())
    assert outputs.log_stream.getvalue().count('"message":"not reconciled"') == 3
    everything = outputs.everything()
    assert leaks(everything, CANARY) == []


# -- a store fails while an exchange error echoing every spelling is handled (issue 10) -------


@dataclass(frozen=True)
class StoreFailure:
    """An exchange error, then a store failing (past the SDK's retries) while it is handled:
    the execute function answers the task TransientError, which the order workflow retries."""

    error: type[ccxt.BaseError]
    failing: frozenset[str] | None
    store: str
    method: str
    operation: str


STORE_FAILURES = {
    # An authentication error halts trading: the control table throttles on the halt.
    "auth-then-halt-throttled": StoreFailure(
        ccxt.AuthenticationError, None, "control", "get", "GetItem"
    ),
    # A rate-limited send is unmarked so the next attempt may send at once: that throttles.
    "rate-limit-then-unmark-throttled": StoreFailure(
        ccxt.RateLimitExceeded, frozenset({"order"}), "orders", "unmark_sent", "UpdateItem"
    ),
}


@pytest.mark.parametrize("secret_values", [SPECIAL])
@pytest.mark.parametrize("case", list(STORE_FAILURES.values()), ids=list(STORE_FAILURES))
def test_execute_when_a_store_fails_handling_an_echoing_exchange_error_then_no_spelling_leaks(
    rig: Rig, trace: TraceRecorder, case: StoreFailure
) -> None:
    aws, outputs = rig.aws, rig.outputs
    rig.exchange.fail = rig.exchange.encoded = True
    rig.exchange.error, rig.exchange.failing = case.error, case.failing
    body = order_body()
    record_intent(aws, body)
    execution, queue_url = start_order_workflow(aws, body)
    message = wait_for_message(aws, queue_url)
    app = rig.traced_app("execute")
    rig.with_store(app, case.store, case.method, case.operation)

    outputs.returned.append(json.dumps(app.handler(sqs_event(message), rig.context)))

    ended = wait_for_end(aws, execution)
    history = aws.stepfunctions.get_execution_history(executionArn=execution)["events"]
    outputs.workflow += [json.dumps(ended, default=str), json.dumps(history, default=str)]
    outputs.traces += trace.texts()
    assert [c.password for c in rig.exchange.built] == [SPECIAL["password"]]  # in play
    # The store's failure is the answer, named for the workflow's Retry; the exchange's echo
    # of the key is in none of it.
    assert ended["error"] == "TransientError"
    failures = [c for c in outputs.api_calls if c.startswith("stepfunctions.SendTaskFailure ")]
    assert len(failures) == 1
    assert '"error": "TransientError"' in failures[0]
    assert "ProvisionedThroughputExceededException" in failures[0]
    everything = outputs.everything()
    assert leaks(everything, SPECIAL) == []


def test_the_echo_holds_every_credential_in_every_spelling() -> None:
    """What the rig's exchange says holds each value as is, URL-encoded and JSON-escaped: a
    redaction that missed any spelling would fail the canary tests."""
    echo = echoed_request("order", SPECIAL["apiKey"], SPECIAL["secret"], SPECIAL["password"])

    for value in SPECIAL.values():
        assert value in echo
        url = (quote(value, safe=""), quote(value, safe="").lower(), quote_plus(value))
        assert any(form in echo for form in url if form != value)
        assert json.dumps(value)[1:-1] in echo
    assert leaks([echo], SPECIAL) == [echo]


@pytest.mark.parametrize("secret_values", [SPECIAL])
def test_reconcile_when_the_exchange_echoes_every_spelling_and_a_store_fails_then_none_leaks(
    rig: Rig, trace: TraceRecorder
) -> None:
    """Lookups fail echoing the credentials (reported, redacted); the balance arrives but the
    portfolio table throttles on it, so the handler fails: with nothing of ccxt in what it
    raises. Run again once the table recovers: the report."""
    aws, outputs = rig.aws, rig.outputs
    rig.exchange.fail = rig.exchange.encoded = True
    rig.exchange.failing = frozenset({"openOrders", "allOrders"})
    body = order_body()
    record_submitted(aws, body)
    app = rig.traced_app("reconcile")
    healthy = rig.with_store(app, "portfolio", "put_balances", "PutItem")

    with pytest.raises(ClientError) as raised:
        app.handler(sample_event("reconcile"), rig.context)

    outputs.raised += exception_texts(raised.value)
    assert not any(isinstance(e, ccxt.BaseError) for e in chain_of(raised.value))
    app.set_dependencies(healthy)
    report = app.handler(sample_event("reconcile"), rig.context)
    outputs.returned.append(json.dumps(report))
    outputs.traces += trace.texts()
    assert trace.errors() == ["handler error"]
    assert set(report["errors"]) == {body["intent"]["intent_id"], MARKET.key}
    assert all("apiKey=***&secret=***&password=***" in e for e in report["errors"].values())
    everything = outputs.everything()
    assert leaks(everything, SPECIAL) == []
