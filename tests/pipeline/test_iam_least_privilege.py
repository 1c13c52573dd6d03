"""IAM from the code: each function and state machine is granted exactly the AWS actions its
code calls, on exactly the resources it calls them on (issue 9).

Nothing here is a hand-written list of calls. ``tickstep.local.recorder`` records every AWS
API call the real handlers and the real state machines make while the pipeline runs offline
(``tickstep local`` over the bundled candles, a drill with every fault on, and the paths a
clean run does not reach: the API's routes, the kill switch, risk's automatic halt, a decision
that raises, an order the ledger already settled, reconcile adopting and settling orders, and
sandbox mode reading the exchange secret). Each call becomes the IAM action it needs and the
template resource it names. The template's ``Policies`` are read as SAM deploys them: inline
statements as written, SAM policy templates expanded to their actions (SAM's
``policy_templates.json``), both sides of an ``Fn::If``. The two sets must be equal: a grant no
code uses is extra, a call without a grant is missing. The few grants no call of our code can
show are listed in ``NOT_CALLED_BY_THE_CODE``, with the reason.

What this does not cover: the policies SAM adds by itself and not through ``Policies``
(AWSLambdaBasicExecutionRole for the logs, X-Ray write access with ``Tracing: Active``, the SQS
event source's receive/delete for execute, ``sqs:SendMessage`` on a function's
``DeadLetterQueue``), and conditions (``tests/pipeline/test_template_security.py`` evaluates
those: who may publish which event, who may read the secret).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

import ccxt
import pytest
from aws_lambda_powertools.utilities import parameters

from tests.pipeline.conftest import (
    ROOT,
    CcxtWithoutMarkets,
    busy_config,
    listed,
    replay,
    role_owners,
    role_policies,
)
from tests.pipeline.test_drill import HIGH
from tickstep.config import drill_config, load_config_dict
from tickstep.exchanges import ccxt_adapter
from tickstep.local.cloud import LocalCloud
from tickstep.local.faults import FaultInjector
from tickstep.local.recorder import CallRecorder, calls_made_by, recording
from tickstep.local.runtime import settle
from tickstep.local.template import PSEUDO, load_template
from tickstep.models import CandleClosed
from tickstep.stores import CandleStore, PortfolioStore

DEADLINE_S = 60.0

Permission = tuple[str, str]
"""(IAM action, resource): a logical id (``OrdersTable``, ``OrdersTable/index/*``), ``*``, or
an ARN pattern of the template with its ``${AWS::...}`` left in."""

# What SAM expands each policy template to (samtranslator/policy_templates_data/
# policy_templates.json; the SAM docs' "AWS SAM policy templates" list the same), and the
# parameter naming the resource. DynamoDB templates grant the table and its indexes.
SAM_POLICY_TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "DynamoDBCrudPolicy": (
        "TableName",
        (
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
            "dynamodb:PutItem",
            "dynamodb:Scan",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:BatchGetItem",
            "dynamodb:DescribeTable",
            "dynamodb:ConditionCheckItem",
        ),
    ),
    "DynamoDBReadPolicy": (
        "TableName",
        (
            "dynamodb:GetItem",
            "dynamodb:Scan",
            "dynamodb:Query",
            "dynamodb:BatchGetItem",
            "dynamodb:DescribeTable",
        ),
    ),
    "DynamoDBWritePolicy": (
        "TableName",
        ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"),
    ),
    "SQSSendMessagePolicy": ("QueueName", ("sqs:SendMessage*",)),
    "LambdaInvokePolicy": ("FunctionName", ("lambda:InvokeFunction",)),
    "StepFunctionsExecutionPolicy": ("StateMachineName", ("states:StartExecution",)),
    "AWSSecretsManagerGetSecretValuePolicy": ("SecretArn", ("secretsmanager:GetSecretValue",)),
    "EventBridgePutEventsPolicy": ("EventBusName", ("events:PutEvents",)),
}

LOCAL_STACK = str(PSEUDO["AWS::StackName"])
KMS_KEYS = "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"
LOG_DELIVERY = (
    "CreateLogDelivery",
    "GetLogDelivery",
    "UpdateLogDelivery",
    "DeleteLogDelivery",
    "ListLogDeliveries",
    "PutResourcePolicy",
    "DescribeResourcePolicies",
    "DescribeLogGroups",
)
NOT_CALLED_BY_THE_CODE: dict[str, set[Permission]] = {
    # GetSecretValue on a secret under a customer-managed key: Secrets Manager asks KMS to
    # decrypt as the caller (the grant's kms:ViaService condition); no code of ours calls KMS.
    "ExecuteFunction": {("kms:Decrypt", KMS_KEYS)},
    "ReconcileFunction": {("kms:Decrypt", KMS_KEYS)},
    # Step Functions itself sets up the delivery of an execution's logs (Logging: Level ERROR)
    # with the role; no state calls CloudWatch Logs. Resource "*": these have no resource types.
    "DecideStateMachine": {(f"logs:{a}", "*") for a in LOG_DELIVERY},
    "OrderStateMachine": {(f"logs:{a}", "*") for a in LOG_DELIVERY},
}
# StartOrder starts the order workflow's alias; moto 5.2.5 cannot start an execution through an
# alias, so the offline stack starts the machine itself and the alias grant is never recorded.
NOT_CALLED_BY_THE_CODE["DecideStateMachine"] |= {
    ("states:StartExecution", "${OrderStateMachine}:live")
}


# -- what the template grants ---------------------------------------------------------------


def resource_name(template: Mapping[str, Any], node: Any) -> str:
    """A policy resource as this test names it: ``!GetAtt X.Arn``, ``!Ref X`` and the ARN
    pattern of a named secret give ``X``; ``!Sub ${X.Arn}/index/*`` gives ``X/index/*``."""
    if isinstance(node, str):
        return node
    if set(node) == {"Ref"}:
        return str(node["Ref"])
    if set(node) == {"Fn::GetAtt"}:
        return str(node["Fn::GetAtt"][0])
    if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
        text = str(node["Fn::Sub"])
        for logical_id, resource in template["Resources"].items():
            text = text.replace("${" + logical_id + ".Arn}", logical_id)
            if text == f"{logical_id}:*":  # its versions and aliases: the recorder names them so
                return str(logical_id)
            if resource["Type"] == "AWS::SecretsManager::Secret":
                name = resource["Properties"]["Name"]
                name = name["Fn::Sub"] if isinstance(name, dict) else name
                arn = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
                if text == f"{arn}:secret:{name}-??????":  # the 6 characters AWS appends
                    return str(logical_id)
        ssm = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
        if text.startswith(ssm):  # a parameter: named as the code names it
            return text.removeprefix(ssm).replace("${AWS::StackName}", LOCAL_STACK)
        return text
    raise AssertionError(f"teach this test to name the resource {node!r}")


def granted(template: Mapping[str, Any], owner: str) -> set[Permission]:
    """Every (action, resource) the ``Policies`` of a function or state machine grant, in any
    parameter set (both sides of an ``Fn::If``)."""
    found: set[Permission] = set()
    for policy in role_policies(template, owner):
        if "Statement" in policy:
            for statement in listed(policy["Statement"]):
                assert statement["Effect"] == "Allow", (owner, statement)
                assert not {"NotAction", "NotResource"} & set(statement), (owner, statement)
                found |= {
                    (action, resource_name(template, resource))
                    for action in listed(statement["Action"])
                    for resource in listed(statement["Resource"])
                }
        else:
            ((name, arguments),) = policy.items()
            assert name in SAM_POLICY_TEMPLATES, f"{owner}: teach this test what {name} grants"
            parameter, actions = SAM_POLICY_TEMPLATES[name]
            target = resource_name(template, arguments[parameter])
            resources = [target, f"{target}/index/*"] if name.startswith("DynamoDB") else [target]
            found |= {(action, resource) for action in actions for resource in resources}
    return found


# -- what the code calls ----------------------------------------------------------------------


@dataclass
class Used:
    """The permissions the recorded calls needed, by function or state machine."""

    by_owner: dict[str, set[Permission]] = field(default_factory=dict)

    def add(self, recorder: CallRecorder, cloud: LocalCloud) -> None:
        for owner, permissions in recorder.permissions(cloud.resolver.refs).items():
            self.by_owner.setdefault(owner, set()).update(
                (action, _any_index(resource)) for action, resource in permissions
            )


def _any_index(resource: str) -> str:
    """``OrdersTable/index/by_status`` as the grant names it: ``OrdersTable/index/*``."""
    table, sep, _ = resource.partition("/index/")
    return f"{table}/index/*" if sep else resource


def api_event(method: str, path: str, body: Any = None, query: str = "") -> dict[str, Any]:
    """The sample event (``events/api.json``, a Cognito user in operators) for a route."""
    event: dict[str, Any] = json.loads((ROOT / "events" / "api.json").read_text())
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["rawPath"] = path
    event["rawQueryString"] = query
    event["requestContext"]["http"].update(method=method, path=path)
    if query:
        event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&"))
    if body is not None:
        event["body"] = json.dumps(body)
    return event


def call_every_route(cloud: LocalCloud) -> None:
    """The operator's API over the run's ledger: every route, then the kill switch."""
    for method, path, body, query in (
        ("GET", "/api/health", None, ""),
        ("GET", "/api/status", None, ""),
        ("GET", "/api/positions", None, ""),
        ("GET", "/api/orders", None, ""),
        ("GET", "/api/orders", None, "status=filled&limit=5"),
        ("GET", "/api/signals", None, "limit=5"),
        ("GET", "/api/dashboard", None, ""),
        ("POST", "/api/halt", {"reason": "least-privilege drill"}, ""),
        ("POST", "/api/reduce", {"reason": "least-privilege drill"}, ""),
        ("POST", "/api/resume", {"reason": "least-privilege drill over"}, ""),
    ):
        response = cloud.invoke("ApiFunction", api_event(method, path, body, query))
        # The health check answers 503 over replayed (old) candles: it read every component.
        allowed = (200, 503) if path == "/api/health" else (200,)
        assert response["statusCode"] in allowed, (method, path, response)


def scheduled_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / "reconcile.json").read_text())
    return event


def order_input(intent_id: str) -> dict[str, Any]:
    """An approved intent as the decide workflow starts the order workflow with it."""
    record = json.loads((ROOT / "events" / "execute.json").read_text())["Records"][0]
    body = json.loads(record["body"])
    body["intent"]["intent_id"] = body["decision"]["intent_id"] = intent_id
    return {"intent": body["intent"], "decision": body["decision"]}


def start_order(cloud: LocalCloud, intent_id: str) -> str:
    """Start the order workflow and wait until RecordIntent has put the intent in the ledger
    (its message then waits in the order queue until ``settle`` delivers it)."""
    arn: str = cloud.sfn.start_execution(
        stateMachineArn=cloud.state_machines["OrderStateMachine"],
        name=f"order-{intent_id}",
        input=json.dumps(order_input(intent_id)),
    )["executionArn"]
    deadline = time.monotonic() + DEADLINE_S
    while "Item" not in cloud.ddb.get_item(TableName="OrdersTable", Key={"pk": {"S": intent_id}}):
        assert time.monotonic() < deadline, f"{intent_id} never reached the ledger"
        time.sleep(0.02)
    return arn


def set_ledger_status(cloud: LocalCloud, intent_id: str, status: str) -> None:
    """What another writer did meanwhile (reconcile, a former attempt): not a recorded call."""
    cloud.ddb.update_item(
        TableName="OrdersTable",
        Key={"pk": {"S": intent_id}},
        UpdateExpression="SET #s = :s, sent_at = :t",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": status}, ":t": {"N": "0"}},
    )


def execution_status(cloud: LocalCloud, arn: str) -> str:
    return str(cloud.sfn.describe_execution(executionArn=arn)["status"])


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Book:
    """The exchange account behind every fake ccxt client (reconcile builds one per run)."""

    closed: list[dict[str, Any]] = field(default_factory=list)
    """Orders the exchange reports as done."""
    refuse: type[ccxt.BaseError] = ccxt.AuthenticationError
    """What every order sent is refused with."""


@dataclass
class FakeCcxt(CcxtWithoutMarkets):
    """The ccxt calls the adapter makes, without the network: one order placed by hand rests
    on the book; the ``book``'s closed orders; every order sent is refused."""

    apiKey: str  # noqa: N815 -- ccxt's attribute
    secret: str
    book: Book
    has: dict[str, Any] = field(default_factory=dict)

    def milliseconds(self) -> int:
        return now_ms()

    def create_order(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise self.book.refuse("binance {'code': -2015, 'msg': 'Invalid API-key'}")

    def fetch_open_orders(self, symbol: str) -> list[dict[str, Any]]:
        external = {"id": "9001", "clientOrderId": "placed-by-hand", "symbol": symbol}
        return [
            external
            | {"type": "limit", "side": "buy", "amount": "0.1", "filled": "0", "price": "0.03"}
            | {"status": "open", "timestamp": now_ms()}
        ]

    def fetch_closed_orders(self, symbol: str, since: int | None = None) -> list[dict[str, Any]]:
        return list(self.book.closed)

    def fetch_balance(self) -> dict[str, Any]:
        return {"free": {"BTC": "0.995", "ETH": "0.141"}, "used": {}}


def forget_secrets() -> None:
    """Drop Powertools Parameters' providers and cached values: the next GetSecretValue is a
    call, from a session made while recording."""
    parameters.clear_caches()  # type: ignore[no-untyped-call]


def closed_order(intent_id: str) -> dict[str, Any]:
    """The exchange's side of an order the ledger lost track of: filled."""
    return {
        "id": "7001",
        "clientOrderId": intent_id,
        "symbol": "ETH/BTC",
        "type": "market",
        "side": "buy",
        "amount": "0.141",
        "filled": "0.141",
        "average": "0.03527",
        "status": "closed",
        "timestamp": now_ms(),
    }


# The paths, each in its own stack; every run ends with no execution left running.


def replay_and_call_the_api(used: Used) -> None:
    """``tickstep local``: ingest, signal, risk (approvals, denials), the order workflow,
    execute, reconcile; then every API route and the kill switch over its ledger."""

    def after(cloud: LocalCloud) -> None:
        call_every_route(cloud)
        used.add(recorder, cloud)

    with recording() as recorder:
        report = replay(load_config_dict(busy_config()), 40, after)
    assert report["orders"]["by_status"].get("filled", 0) >= 2, report["orders"]


def drill(used: Used) -> None:
    """Every fault on: redeliveries, throttles, malformed events (the decide dead-letter
    queue), timeouts and lost answers (MarkUnknown, SendTaskFailure, reconcile settling)."""

    def after(cloud: LocalCloud) -> None:
        used.add(recorder, cloud)

    with recording() as recorder:
        report = replay(
            drill_config(),
            300,
            after,
            faults=FaultInjector(HIGH, seed=11),
            stop_after_intents=10,
            retry_time_scale=0.05,
        )
    assert report["faults_injected"].get("malformed-event", 0) > 0, report["faults_injected"]
    assert report["non_terminal_executions"] == 0


def paper_as_deployed(used: Used) -> None:
    """Paper mode with the dependencies each handler builds for itself, as in AWS (the
    replay's feed and clock are not handed in): the signal reads the candle ingest stored
    before it published it, execute fills at the latest stored close, risk pulls the kill
    switch on a daily loss, and an order the ledger settled meanwhile ends in ReadLedger."""
    with recording() as recorder, LocalCloud(ROOT, {"TradingMode": "paper"}) as cloud:
        signal_event = json.loads((ROOT / "events" / "signal.json").read_text())
        closed = CandleClosed.model_validate(signal_event)
        CandleStore(cloud.ddb, "CandlesTable").put(closed.market, [closed.candle])  # as ingest
        cloud.invoke("SignalFunction", signal_event)

        PortfolioStore(cloud.ddb, "PortfolioTable").mark_equity(Decimal(2), now_ms())
        risk_event = json.loads((ROOT / "events" / "risk.json").read_text())
        decision = cloud.invoke("RiskFunction", risk_event)["decision"]
        assert decision["new_trading_state"] == "HALTED", decision

        filled = start_order(cloud, "ts" + "1" * 30)
        settled_meanwhile = "ts" + "2" * 30
        settled = start_order(cloud, settled_meanwhile)
        set_ledger_status(cloud, settled_meanwhile, "failed")
        settle(cloud, DEADLINE_S)
        assert execution_status(cloud, filled) == "SUCCEEDED"
        assert execution_status(cloud, settled) == "SUCCEEDED"
        used.add(recorder, cloud)


def sandbox_with_the_secret(used: Used) -> None:
    """Sandbox mode: execute and reconcile read the exchange secret (ccxt faked). Risk raises
    without cached rules (Powertools deletes its in-progress record); reconcile settles an
    order the ledger lost track of and adopts one placed by hand; a refused key halts."""
    lost, refused = "ts" + "3" * 30, "ts" + "4" * 30
    book = Book(closed=[closed_order(lost)])

    def build(exchange_id: str, **credentials: Any) -> FakeCcxt:
        assert credentials.get("sandbox") and credentials.get("api_key") == "key"
        return FakeCcxt(str(credentials["api_key"]), str(credentials["secret"]), book)

    forget_secrets()  # a provider from another test holds another session
    with (
        pytest.MonkeyPatch.context() as patch,
        recording() as recorder,
        LocalCloud(ROOT, {"TradingMode": "sandbox"}) as cloud,
    ):
        patch.setattr(ccxt_adapter, "build_ccxt_client", build)
        cloud.session.client("secretsmanager").put_secret_value(
            SecretId=cloud.resolver.refs["ExchangeSecret"],
            SecretString=json.dumps({"apiKey": "key", "secret": "not-a-secret"}),
        )
        risk_event = json.loads((ROOT / "events" / "risk.json").read_text())
        with pytest.raises(LookupError, match="none cached yet"):
            cloud.invoke("RiskFunction", risk_event)

        lost_execution = start_order(cloud, lost)
        set_ledger_status(cloud, lost, "unknown")
        refused_execution = start_order(cloud, refused)
        report = cloud.invoke_scheduled("ReconcileFunction", scheduled_event())
        assert report is not None and (report["settled"], report["adopted"]) == (1, 1), report
        forget_secrets()  # execute runs apart from reconcile in AWS: no shared cache
        settle(cloud, DEADLINE_S)
        assert execution_status(cloud, lost_execution) == "SUCCEEDED"
        assert execution_status(cloud, refused_execution) == "SUCCEEDED"
        state = cloud.ddb.get_item(TableName="ControlTable", Key={"pk": {"S": "trading_state"}})
        assert state["Item"]["state"]["S"] == "HALTED", state
        used.add(recorder, cloud)
    forget_secrets()


def the_pre_traffic_hook(used: Used) -> None:
    """CodeDeploy's pre-traffic hook invokes the order path's new versions and reports back
    (moto knows no hook execution: the report is refused, after the call was recorded)."""
    event = {"DeploymentId": "d-TEST", "LifecycleEventHookExecutionId": "hook-execution"}
    with recording() as recorder, LocalCloud(ROOT) as cloud:
        with pytest.raises(NotImplementedError, match="put_lifecycle_event_hook_execution_status"):
            cloud.invoke("PreTrafficHookFunction", event)
        used.add(recorder, cloud)


@pytest.fixture(scope="module")
def used() -> dict[str, set[Permission]]:
    found = Used()
    replay_and_call_the_api(found)
    drill(found)
    paper_as_deployed(found)
    sandbox_with_the_secret(found)
    the_pre_traffic_hook(found)
    return found.by_owner


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


# -- the tests --------------------------------------------------------------------------------


def test_every_role_made_calls_and_every_caller_has_a_role(
    used: dict[str, set[Permission]], template: dict[str, Any]
) -> None:
    """Each function and state machine was driven (else its grants could not be checked),
    and nothing else made calls (an unknown caller would be a recorder bug)."""
    assert set(used) == set(role_owners(template))


@pytest.mark.parametrize("owner", role_owners(load_template(ROOT / "template.yaml")))
def test_each_role_grants_exactly_the_calls_its_code_makes(
    owner: str, used: dict[str, set[Permission]], template: dict[str, Any]
) -> None:
    """Missing: a call no grant covers (a grant's wildcard counts, as IAM counts it). Extra:
    a grant that is not literally a call, so a wildcard (``sqs:SendMessage*``) is extra too."""
    needed = used.get(owner, set()) | NOT_CALLED_BY_THE_CODE.get(owner, set())
    grants = granted(template, owner)
    missing = {
        (action, resource)
        for action, resource in needed
        if not any(fnmatchcase(action, a) and resource == r for a, r in grants)
    }
    assert not missing, f"{owner}: called but not granted {sorted(missing)}"
    assert not grants - needed, f"{owner}: granted but never called {sorted(grants - needed)}"


def test_the_allowances_are_only_what_no_call_shows(used: dict[str, set[Permission]]) -> None:
    """An allowance the recorder sees is not needed on the list: keep the list short."""
    for owner, allowed in NOT_CALLED_BY_THE_CODE.items():
        assert not allowed & used.get(owner, set()), owner


def test_a_grant_wider_than_the_calls_fails_the_comparison(
    used: dict[str, set[Permission]], template: dict[str, Any]
) -> None:
    """Not vacuous: the policies issue 9 found (CRUD on tables a function barely uses, the
    idempotency table for functions without idempotency) are caught, and so is a grant
    taken away."""
    wider = copy.deepcopy(template)
    policies = wider["Resources"]["IngestFunction"]["Properties"]["Policies"]
    policies.append({"DynamoDBCrudPolicy": {"TableName": {"Ref": "IdempotencyTable"}}})
    extra = granted(wider, "IngestFunction") - used["IngestFunction"]
    assert ("dynamodb:PutItem", "IdempotencyTable") in extra
    narrower = copy.deepcopy(template)
    api = narrower["Resources"]["ApiFunction"]["Properties"]
    api["Policies"] = [p for p in api["Policies"] if "PutEvents" not in json.dumps(p)]
    assert ("events:PutEvents", "EventBus") in used["ApiFunction"] - granted(
        narrower, "ApiFunction"
    )


def test_the_sam_policy_templates_expand_as_sam_expands_them() -> None:
    """The expansion above against SAM's own definitions, where the SAM CLI is installed."""
    found = sorted(
        ROOT.glob(".tools/lib/python*/site-packages/samtranslator/policy_templates_data")
    )
    if not found:
        pytest.skip("no SAM CLI in .tools (make validate installs it)")
    sam = json.loads((found[-1] / "policy_templates.json").read_text())["Templates"]
    for name, (parameter, actions) in SAM_POLICY_TEMPLATES.items():
        assert parameter in sam[name]["Parameters"], name
        statements = sam[name]["Definition"]["Statement"]
        assert sorted(a for s in statements for a in listed(s["Action"])) == sorted(actions), name


def test_the_recorder_names_each_permission_a_call_needs_and_who_made_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A transaction needs its items' actions, a Query on an index needs the index, and a
    call made outside any function (the runtime's own) is nobody's."""
    import boto3
    from moto import mock_aws

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    key = {"AttributeName": "pk", "KeyType": "HASH"}
    with mock_aws(), recording() as recorder:
        client = boto3.session.Session(region_name="eu-west-1").client("dynamodb")
        client.create_table(
            TableName="tickstep-orders",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[key],
            BillingMode="PAY_PER_REQUEST",
            GlobalSecondaryIndexes=[
                {"IndexName": "by_pk", "KeySchema": [key], "Projection": {"ProjectionType": "ALL"}}
            ],
        )
        update = {
            "TableName": "tickstep-orders",
            "Key": {"pk": {"S": "a"}},
            "UpdateExpression": "SET n = :n",
            "ExpressionAttributeValues": {":n": {"N": "1"}},
        }
        with calls_made_by("ExecuteFunction"):
            client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "tickstep-orders", "Item": {"pk": {"S": "b"}}}},
                    {"Update": update},
                ]
            )
            client.query(
                TableName="tickstep-orders",
                IndexName="by_pk",
                KeyConditionExpression="pk = :a",
                ExpressionAttributeValues={":a": {"S": "a"}},
            )
    assert recorder.permissions({"OrdersTable": "tickstep-orders"}) == {
        "ExecuteFunction": {
            ("dynamodb:PutItem", "OrdersTable"),
            ("dynamodb:UpdateItem", "OrdersTable"),
            ("dynamodb:Query", "OrdersTable/index/by_pk"),
        }
    }
    assert recorder.unattributed == 1  # create_table
