"""AWS in moto for the handler tests: the template's tables, a bus whose events land in a queue
the tests read, and each function's ``app`` module loaded from ``functions/<name>/app.py``.

Credentials, region and Powertools settings come from here (never the developer's AWS
config); every function's dependencies are rebuilt inside each test's mock.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

if TYPE_CHECKING:
    from tickstep.config import TradingConfig
    from tickstep.local.cloud import LocalCloud

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("ingest", "signal", "risk", "execute", "reconcile", "api")
REGION = "eu-west-1"
MARKETS = (
    '[{"market":{"exchange":"binance","symbol":"ETH/BTC","timeframe":"5m"},'
    '"strategy":{"name":"sma_cross","params":{"fast":2,"slow":3}}}]'
)
RISK_LIMITS = (
    '{"max_notional_per_order":"0.01","max_position_per_market":"0.05",'
    '"max_total_exposure":"0.2","max_daily_loss":"0.01","max_drawdown":"0.2",'
    '"cooldown_after_loss_ms":900000,"max_orders_per_hour":12,"price_band":"0.05",'
    '"sizing":{"kind":"fixed_quote","quote_amount":"0.005"}}'
)
TABLES: dict[str, tuple[list[tuple[str, str, str]], list[dict[str, Any]]]] = {
    # env var: ([(attribute, type, key type)], global secondary indexes) as in template.yaml
    "CANDLES_TABLE": ([("pk", "S", "HASH"), ("sk", "N", "RANGE")], []),
    "SIGNALS_TABLE": ([("pk", "S", "HASH"), ("sk", "N", "RANGE")], []),
    "ORDERS_TABLE": (
        [("pk", "S", "HASH")],
        [
            {
                "IndexName": "by_status",
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "candle_time", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    ),
    "PORTFOLIO_TABLE": ([("pk", "S", "HASH"), ("sk", "S", "RANGE")], []),
    "CONTROL_TABLE": ([("pk", "S", "HASH")], []),
    "IDEMPOTENCY_TABLE": ([("id", "S", "HASH")], []),
}


@dataclass
class Aws:
    """The mocked account: clients, table names and the queue that receives every bus event."""

    dynamodb: Any
    events: Any
    sqs: Any
    stepfunctions: Any
    secrets: Any
    tables: dict[str, str]
    bus_name: str
    bus_queue_url: str

    def bus_events(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        """Every event published so far (moto delivers to the queue synchronously)."""
        found = []
        while True:
            page = self.sqs.receive_message(
                QueueUrl=self.bus_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            messages = page.get("Messages", [])
            if not messages:
                break
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.bus_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return [e for e in found if detail_type is None or e["detail-type"] == detail_type]

    def items(self, env_var: str) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName=self.tables[env_var]).get("Items", []))


def _create_table(
    client: Any, name: str, keys: list[tuple[str, str, str]], gsis: list[Any]
) -> None:
    attributes = {(a, t) for a, t, _ in keys}
    for index in gsis:
        for key in index["KeySchema"]:
            attributes.add(
                (key["AttributeName"], "N" if key["AttributeName"] == "candle_time" else "S")
            )
    kwargs: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": t} for a, t in sorted(attributes)
        ],
        "KeySchema": [{"AttributeName": a, "KeyType": k} for a, _, k in keys],
    }
    if gsis:
        kwargs["GlobalSecondaryIndexes"] = gsis
    client.create_table(**kwargs)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Aws]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "POWERTOOLS_SERVICE_NAME": "tickstep",
        "POWERTOOLS_METRICS_NAMESPACE": "tickstep",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "TRADING_MODE": "paper",
        "MARKETS": MARKETS,
        "RISK_LIMITS": RISK_LIMITS,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("EXCHANGE_SECRET_ARN", raising=False)
    with mock_aws(
        config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    ):
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        tables = {}
        for env_var, (keys, gsis) in TABLES.items():
            name = f"tickstep-{env_var.lower().replace('_table', '')}"
            _create_table(dynamodb, name, keys, gsis)
            tables[env_var] = name
            monkeypatch.setenv(env_var, name)
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        bus = events.create_event_bus(Name="tickstep-bus")["EventBusArn"].split("/")[-1]
        queue_url = sqs.create_queue(QueueName="bus-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name="everything",
            EventBusName=bus,
            EventPattern=json.dumps({"source": [{"prefix": "tickstep"}]}),
        )
        events.put_targets(
            Rule="everything", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}]
        )
        monkeypatch.setenv("EVENT_BUS_NAME", bus)
        yield Aws(
            dynamodb=dynamodb,
            events=events,
            sqs=sqs,
            stepfunctions=boto3.client("stepfunctions", region_name=REGION),
            secrets=boto3.client("secretsmanager", region_name=REGION),
            tables=tables,
            bus_name=bus,
            bus_queue_url=queue_url,
        )
    for module in _loaded.values():
        module.set_dependencies(None)


_loaded: dict[str, ModuleType] = {}


def load_module(name: str, path: Path) -> ModuleType:
    """A Python file that is not in a package (a function's app.py, a tool) as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


render_asl = load_module("render_asl", ROOT / "tools" / "render_asl.py")


def load_function(name: str) -> ModuleType:
    """``functions/<name>/app.py`` as its own module (every function's file is app.py)."""
    if name not in _loaded:
        path = ROOT / "functions" / name / "app.py"
        _loaded[name] = load_module(f"tickstep_function_{name}", path)
    module = _loaded[name]
    module.set_dependencies(None)
    return module


@pytest.fixture
def function(aws: Aws) -> Callable[[str], ModuleType]:
    return load_function


def sample_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "events" / f"{name}.json").read_text())
    return data


@dataclass
class FakeContext:
    """What Powertools reads from the Lambda context."""

    function_name: str = "tickstep-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:tickstep-test"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 15_000


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()


# -- the template's roles -----------------------------------------------------------------------

ROLE_OWNERS = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
"""The resource types SAM makes a role for, from their ``Policies``."""


def listed(value: Any) -> list[Any]:
    """A policy field that may hold one item or a list of them, as a list."""
    return value if isinstance(value, list) else [value]


def role_owners(template: Mapping[str, Any]) -> list[str]:
    return sorted(i for i, r in template["Resources"].items() if r["Type"] in ROLE_OWNERS)


def role_policies(template: Mapping[str, Any], owner: str) -> Iterator[dict[str, Any]]:
    """Each entry of the ``Policies`` of a function or state machine, in any parameter set
    (both sides of an ``Fn::If``): an inline ``{"Statement": ...}`` or a SAM policy template
    (``{name: arguments}``)."""
    pending = list(template["Resources"][owner]["Properties"].get("Policies", []))
    while pending:
        policy = pending.pop()
        assert isinstance(policy, dict), f"{owner}: teach this test what {policy!r} grants"
        if "Fn::If" in policy:
            pending += [b for b in policy["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"}]
        else:
            yield policy


# -- `tickstep local` runs ----------------------------------------------------------------------

BUSY_LIMITS: dict[str, Any] = {
    "max_notional_per_order": "0.05",
    "max_position_per_market": "0.1",
    "max_total_exposure": "0.25",
    "max_daily_loss": "0.05",
    "max_drawdown": "0.2",
    "cooldown_after_loss_ms": 0,
    "max_orders_per_hour": 2,
    "price_band": "0.05",
    "sizing": {"kind": "fixed_quote", "quote_amount": "0.02"},
}


def paper_config(
    strategy: dict[str, Any],
    symbols: Iterable[str] = ("ETH/BTC",),
    *,
    slippage: str = "0",
    **limits: Any,
) -> dict[str, Any]:
    """A configuration over bundled 5m paper markets: ``strategy`` on each symbol, the
    ``BUSY_LIMITS`` with ``limits`` changed, 1 BTC to start and a 0.1% fee."""
    return {
        "markets": [
            {
                "market": {"exchange": "paper", "symbol": symbol, "timeframe": "5m"},
                "strategy": strategy,
            }
            for symbol in symbols
        ],
        "limits": {**BUSY_LIMITS, **limits},
        "paper": {"fee_rate": "0.001", "slippage": slippage, "balances": {"BTC": "1"}},
    }


def busy_config() -> dict[str, Any]:
    """A fast crossover so a short replay buys, sells and hits a risk limit."""
    return paper_config({"name": "sma_cross", "params": {"fast": 2, "slow": 5}})


def replay(
    config: TradingConfig,
    candles: int,
    before_report: Callable[[LocalCloud], None],
    **options: Any,
) -> dict[str, Any]:
    """``tickstep local`` over the first ``candles`` bundled closes; ``before_report`` runs on
    the cloud after the replay, before the report (what it starts is settled first)."""
    from tickstep.local.runtime import LocalRun  # moto's Step Functions, for these runs only

    return LocalRun(
        ROOT, config, candles=candles, out=io.StringIO(), before_report=before_report, **options
    ).run()


# -- a ccxt client without the network ----------------------------------------------------------


class CcxtWithoutMarkets:
    """The market calls of a fake ccxt client: no markets to load; amounts and prices go out
    as the adapter gives them."""

    precisionMode = 4  # noqa: N815 -- ccxt's attribute (TICK_SIZE)

    def load_markets(self) -> dict[str, Any]:
        return {}

    def amount_to_precision(self, symbol: str, amount: str) -> str:
        return amount

    def price_to_precision(self, symbol: str, price: str) -> str:
        return price


SDK_ATTEMPTS = 6
"""tickstep.bootstrap.RETRIES: every attempt the SDK makes inside one invocation."""


def first_writes(counts: dict[tuple[str, str], int]) -> Callable[[str, dict[str, Any]], bool]:
    """Throttle the first ``n`` requests of each (operation, table): all the SDK's attempts
    of one call, so the failure reaches the handler (and the workflow) once."""
    seen: Counter[tuple[str, str]] = Counter()

    def only(operation: str, body: dict[str, Any]) -> bool:
        key = (operation, str(body.get("TableName")))
        if key not in counts:
            return False
        seen[key] += 1
        return seen[key] <= counts[key]

    return only


def decide_history(cloud: LocalCloud) -> Iterator[dict[str, Any]]:
    """Every history event of every decide execution, execution by execution."""
    arn = cloud.state_machines["DecideStateMachine"]
    for page in cloud.sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
        for execution in page["executions"]:
            yield from cloud.sfn.get_execution_history(
                executionArn=execution["executionArn"], maxResults=1000
            )["events"]
