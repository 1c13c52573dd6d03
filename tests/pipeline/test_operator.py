"""``tickstep halt|resume|status --stack NAME`` against a CloudFormation stack in moto.

The stack holds the template's ControlTable and EventBus (found by logical id, as in a deployed
stack); a rule on its bus copies every event to the fixture's queue, so the tests read what the
alarm and the archive would see. Failures (no stack, no permission) exit 2 with a sentence.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import boto3
import botocore.exceptions
import moto.events.models
import pytest
from botocore.stub import Stubber

from tests.pipeline.conftest import REGION, Aws, FakeContext, sample_event
from tests.pipeline.test_handlers import risk_app, sample_close_ms
from tickstep import operator
from tickstep.cli import main
from tickstep.models import ReasonCode, TradingState
from tickstep.stores import ControlStore

Loader = Callable[[str], ModuleType]
STACK = "tickstep-game-day"
CALLER = "arn:aws:sts::123456789012:user/moto"  # moto's GetCallerIdentity
STACK_TEMPLATE = {
    "Resources": {
        "ControlTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            },
        },
        "EventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": f"{STACK}-bus"}},
    }
}


@pytest.fixture
def stack(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[operator.StackResources]:
    """The stack in moto; the risk function is pointed at its control table."""
    # moto gives an AWS::Events::EventBus no PhysicalResourceId; CloudFormation's is the name.
    monkeypatch.setattr(
        moto.events.models.EventBus,
        "physical_resource_id",
        property(lambda bus: bus.name),
        raising=False,
    )
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(STACK_TEMPLATE))
    found = operator.find_stack(cloudformation, STACK)
    queue_arn = aws.sqs.get_queue_attributes(
        QueueUrl=aws.bus_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    aws.events.put_rule(
        Name="kill-switch",
        EventBusName=found.event_bus,
        EventPattern=json.dumps({"source": [{"prefix": "tickstep"}]}),
    )
    aws.events.put_targets(
        Rule="kill-switch",
        EventBusName=found.event_bus,
        Targets=[{"Id": "queue", "Arn": queue_arn}],
    )
    monkeypatch.setenv("CONTROL_TABLE", found.control_table)
    monkeypatch.setenv("EVENT_BUS_NAME", found.event_bus)
    yield found


def control_item(aws: Aws, table: str) -> dict[str, str]:
    item = aws.dynamodb.get_item(TableName=table, Key={"pk": {"S": "trading_state"}})["Item"]
    return {k: next(iter(v.values())) for k, v in item.items()}


def test_find_stack_when_deployed_then_names_its_control_table_and_bus(
    stack: operator.StackResources,
) -> None:
    assert stack.control_table.startswith(f"{STACK}-ControlTable-")
    assert stack.event_bus == f"{STACK}-bus"


def test_halt_then_resume_when_run_by_the_operator_then_written_published_and_risk_obeys(
    aws: Aws,
    stack: operator.StackResources,
    function: Loader,
    context: FakeContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["halt", "--stack", STACK, "--reason", "exchange incident", "--region", REGION])

    assert code == 0
    assert f"{STACK}: HALTED since " in capsys.readouterr().out
    item = control_item(aws, stack.control_table)
    assert (item["state"], item["reason"], item["changed_by"]) == (
        "HALTED",
        "exchange incident",
        CALLER,
    )
    halted = aws.bus_events("TradingStateChanged")
    assert [(e["source"], e["detail"]["previous"]) for e in halted] == [
        ("tickstep.control", "ACTIVE")
    ]
    assert halted[0]["detail"]["current"] == {
        "state": "HALTED",
        "reason": "exchange incident",
        "changed_at": int(item["changed_at"]),
        "changed_by": CALLER,
    }

    decision = risk_app(function, sample_close_ms()).handler(sample_event("risk"), context)
    assert decision["decision"]["approved"] is False
    assert decision["decision"]["reasons"] == [ReasonCode.TRADING_HALTED.value]
    capsys.readouterr()  # the risk function's log lines

    assert main(["resume", "--stack", STACK, "--reason", "incident over", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["state"], printed["changed_by"]) == ("ACTIVE", CALLER)
    record = ControlStore(aws.dynamodb, stack.control_table).get()
    assert (record.state, record.reason) == (TradingState.ACTIVE, "incident over")
    resumed = aws.bus_events("TradingStateChanged")
    assert [(e["detail"]["previous"], e["detail"]["current"]["state"]) for e in resumed] == [
        ("HALTED", "ACTIVE")
    ]
    assert main(["status", "--stack", STACK]) == 0
    assert f"{STACK}: ACTIVE since " in capsys.readouterr().out


def test_status_when_never_set_then_active_by_default(
    stack: operator.StackResources, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--stack", STACK, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "ACTIVE"


def test_halt_when_the_stack_does_not_exist_then_says_so_and_exits_2(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["halt", "--stack", "no-such-stack", "--reason", "x"])

    assert code == 2
    err = capsys.readouterr().err
    assert err == "tickstep halt: stack 'no-such-stack' not found (wrong name or region?)\n"
    assert aws.bus_events() == []


def test_halt_when_the_stack_is_not_a_tickstep_stack_then_names_the_missing_resource(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="other",
        TemplateBody=json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}),
    )

    assert main(["halt", "--stack", "other", "--reason", "x"]) == 2
    assert "stack 'other' has no ControlTable: is it a tickstep stack?" in capsys.readouterr().err


def test_halt_when_the_reason_is_blank_then_exits_2_and_changes_nothing(
    aws: Aws, stack: operator.StackResources, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["halt", "--stack", STACK, "--reason", "  "]) == 2
    assert "--reason: say why" in capsys.readouterr().err
    assert aws.dynamodb.scan(TableName=stack.control_table)["Items"] == []
    assert aws.bus_events() == []


@pytest.mark.parametrize("reason", ["a\x00b", "looks fine\u202e", "two\r\nlines", "a\u2028b"])
def test_halt_when_the_reason_hides_characters_then_exits_2_and_changes_nothing(
    aws: Aws, stack: operator.StackResources, capsys: pytest.CaptureFixture[str], reason: str
) -> None:
    assert main(["halt", "--stack", STACK, "--reason", reason]) == 2
    assert "--reason: Text must not contain control" in capsys.readouterr().err
    assert aws.dynamodb.scan(TableName=stack.control_table)["Items"] == []
    assert aws.bus_events() == []


def _with_stubbed(monkeypatch: pytest.MonkeyPatch, **stubbed: Any) -> dict[str, Stubber]:
    """``operator.connect`` returning real (moto) clients, some behind a botocore Stubber."""
    real = operator.connect
    stubbers: dict[str, Stubber] = {}

    def connect(*, region: str | None = None, profile: str | None = None) -> operator.Clients:
        clients = real(region=region, profile=profile)
        replaced = {}
        for name, add in stubbed.items():
            client = getattr(clients, name)
            stubber = Stubber(client)
            add(stubber)
            stubber.activate()
            stubbers[name] = stubber
            replaced[name] = client
        return operator.Clients(**{**clients.__dict__, **replaced})

    monkeypatch.setattr(operator, "connect", connect)
    return stubbers


def test_halt_when_the_caller_may_not_read_the_stack_then_says_no_permission_and_exits_2(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    denied = (
        "User: arn:aws:iam::123456789012:user/intern is not authorized to perform: "
        "cloudformation:DescribeStackResource"
    )
    _with_stubbed(
        monkeypatch,
        cloudformation=lambda s: s.add_client_error(
            "describe_stack_resource",
            service_error_code="AccessDenied",
            service_message=denied,
            http_status_code=403,
        ),
    )

    assert main(["halt", "--stack", STACK, "--reason", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"tickstep halt: no permission for cloudformation:DescribeStackResource on "
        f"{STACK}/ControlTable: User: "
    )
    assert "Traceback" not in err


def test_halt_when_publishing_is_denied_then_says_the_state_was_written_but_not_announced(
    aws: Aws,
    stack: operator.StackResources,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _with_stubbed(
        monkeypatch,
        events=lambda s: s.add_client_error(
            "put_events", service_error_code="AccessDeniedException", http_status_code=400
        ),
    )

    assert main(["halt", "--stack", STACK, "--reason", "drill"]) == 2
    err = capsys.readouterr().err
    assert "the trading state was written, but TradingStateChanged was not published" in err
    assert "no permission for events:PutEvents" in err
    assert control_item(aws, stack.control_table)["state"] == "HALTED"


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (botocore.exceptions.NoCredentialsError(), "no AWS credentials for"),
        (botocore.exceptions.NoRegionError(), "no AWS region: pass --region"),
        (
            botocore.exceptions.EndpointConnectionError(endpoint_url="https://sts"),
            "cannot reach AWS while",
        ),
        (
            botocore.exceptions.ClientError(
                {"Error": {"Code": "ExpiredToken", "Message": "expired"}}, "GetCallerIdentity"
            ),
            "AWS rejected the credentials",
        ),
    ],
)
def test_describe_aws_error_when_credentials_or_network_fail_then_one_clear_sentence(
    error: Exception, says: str
) -> None:
    assert says in operator.describe_aws_error(error, "sts:GetCallerIdentity")


def test_halt_when_no_region_is_configured_then_exits_2(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")

    assert main(["halt", "--stack", STACK, "--reason", "x"]) == 2
    assert "no AWS region: pass --region" in capsys.readouterr().err
