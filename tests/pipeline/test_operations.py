"""The operator's commands end to end (``tickstep deploy|rollback|validate|health-checks``,
which deployment/scripts/*.sh and deployment/tests/health-checks.sh wrap) against AWS emulated
in-process (moto's ``mock_aws``: moto's server mode needs flask, which the lock does not
have): a stack built in it with CloudFormation, and the API answered by a local HTTP server.
Only ``make build`` and ``sam deploy`` are replaced, by a recording fake (a real executable,
run as a subprocess); the test then plays SAM's AutoPublishAlias part itself (``publish``):
a new version of every function and state machine, and the alias ``live`` moved to it.
The scripts themselves run as subprocesses for what needs no AWS (usage errors, ``--help``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest

from tickstep.models import Candle, Market, TradingState, TradingStateRecord
from tickstep.operations.checks import now_ms
from tickstep.stores import CandleStore, ControlStore

ROOT = Path(__file__).resolve().parents[2]
STACK = "tickstep-test"
REGION = "eu-west-1"
TOKEN = "test-token"
MARKET = Market(exchange="binance", symbol="ETH/BTC", timeframe="1m")
MARKETS = json.dumps(
    [{"market": MARKET.model_dump(mode="json"), "strategy": {"name": "sma_cross", "params": {}}}]
)
FUNCTIONS = ("IngestFunction", "ExecuteFunction", "ApiFunction")

FAKE_TOOL = """#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_LOG"
"""


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


ORDER_DEFINITION = {
    "StartAt": "Outcome",
    "States": {
        "Outcome": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.fail", "IsPresent": True, "Next": "Failed"}],
            "Default": "Done",
        },
        "Failed": {"Type": "Fail", "Error": "OrderOutcomeUnknown"},
        "Done": {"Type": "Succeed"},
    },
}


def _stack_template(api_url: str, role: str, order_arn: str) -> dict[str, Any]:
    env = {
        "MARKETS": MARKETS,
        "CANDLES_TABLE": {"Ref": "CandlesTable"},
        "CONTROL_TABLE": {"Ref": "ControlTable"},
        "TRADING_MODE": "paper",
    }
    resources: dict[str, Any] = {
        name: {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.12",
                "Handler": "app.handler",
                "Role": role,
                "Code": {"ZipFile": "def handler(event, context):\n    return event\n"},
                "Environment": {"Variables": env},
            },
        }
        for name in FUNCTIONS
    }
    for name in ("OrderDLQ", "DecideRuleDLQ"):
        resources[name] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    for name, sort in (("CandlesTable", "N"), ("ControlTable", None)):
        keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
        attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
        if sort:
            keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
            attrs.append({"AttributeName": "sk", "AttributeType": sort})
        resources[name] = {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": keys,
                "AttributeDefinitions": attrs,
            },
        }
    return {
        "Resources": resources,
        "Outputs": {
            "ApiUrl": {"Value": api_url},
            # moto's Step Functions interpreter cannot run a machine CloudFormation made
            "OrderStateMachineArn": {"Value": order_arn},
        },
    }


class _Api(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/api/health" or self.headers.get("Authorization") == f"Bearer {TOKEN}":
            status = 200
        else:
            status = 401
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    config = {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}
    with mock_aws(config=config):  # type: ignore[call-overload]
        yield boto3.session.Session(region_name=REGION)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory with the real samconfig.toml and the recording fakes."""
    shutil.copy(ROOT / "samconfig.toml", tmp_path / "samconfig.toml")
    fake = tmp_path / "fake-tool"
    fake.write_text(FAKE_TOOL)
    fake.chmod(0o755)
    return tmp_path


@pytest.fixture
def stack(aws: boto3.session.Session, api_url: str) -> dict[str, Any]:
    """A healthy stack: created, fresh candles, trading ACTIVE, empty dead-letter queues."""
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": "lambda.amazonaws.com"},
            }
        ]
    }
    role = aws.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(trust))
    order = aws.client("stepfunctions").create_state_machine(
        name="OrderStateMachine-ABC123",
        definition=json.dumps(ORDER_DEFINITION),
        roleArn=role["Role"]["Arn"],
    )["stateMachineArn"]
    cfn = aws.client("cloudformation")
    template = _stack_template(api_url, role["Role"]["Arn"], order)
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    }
    cw = aws.client("cloudwatch")
    cw.put_metric_alarm(
        AlarmName=f"{STACK}-ExecuteErrorsAlarm-ABC123",
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(
        AlarmName=f"{STACK}-ExecuteErrorsAlarm-ABC123", StateValue="OK", StateReason="test"
    )
    fresh_candle(aws, resources["CandlesTable"], now_ms())
    return {**resources, "OrderStateMachine": order}


def fresh_candle(aws: boto3.session.Session, table: str, at_ms: int) -> None:
    minute = 60_000
    opened = (at_ms // minute - 1) * minute
    candle = Candle(timestamp=opened, open=1, high=1, low=1, close=1, volume=1)
    CandleStore(aws.client("dynamodb"), table).put(MARKET, [candle])


def environ(project: Path) -> dict[str, str]:
    return {
        "TICKSTEP_ROOT": str(project),
        "TICKSTEP_SAM": str(project / "fake-tool"),
        "TICKSTEP_MAKE": str(project / "fake-tool"),
        "TICKSTEP_API_TOKEN": TOKEN,
        "FAKE_LOG": str(project / "fake.log"),
    }


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def run(project: Path, script: str, *args: str) -> Done:
    """``script``'s command, in this process (where moto is); what the script would print."""
    from tickstep.cli import main

    command = COMMANDS[script]
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, environ(project)),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = main([command, *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Done(code, out.getvalue(), err.getvalue())


def script(project: Path, path: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **environ(project),
        "TICKSTEP": str(Path(sys.executable).parent / "tickstep"),
    }
    return subprocess.run(
        [str(ROOT / path), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def publish(aws: boto3.session.Session) -> None:
    """What SAM's AutoPublishAlias does on a deploy: a version of every function and state
    machine of the stack, and the alias ``live`` moved to it."""
    cfn, lam, sfn = (aws.client(s) for s in ("cloudformation", "lambda", "stepfunctions"))
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    machines = [
        {"ResourceType": "AWS::StepFunctions::StateMachine", "PhysicalResourceId": o["OutputValue"]}
        for o in stack["Outputs"]
        if o["OutputKey"].endswith("StateMachineArn")
    ]
    for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"] + machines:
        pid = r["PhysicalResourceId"]
        if r["ResourceType"] == "AWS::Lambda::Function":
            # A new build: Lambda publishes no new version of unchanged code and configuration.
            build = len(lam.list_versions_by_function(FunctionName=pid)["Versions"])
            lam.update_function_configuration(FunctionName=pid, Description=f"build {build}")
            version = lam.publish_version(FunctionName=pid)["Version"]
            try:
                lam.update_alias(FunctionName=pid, Name="live", FunctionVersion=version)
            except lam.exceptions.ResourceNotFoundException:
                lam.create_alias(FunctionName=pid, Name="live", FunctionVersion=version)
        if r["ResourceType"] == "AWS::StepFunctions::StateMachine":
            definition = json.loads(sfn.describe_state_machine(stateMachineArn=pid)["definition"])
            definition["Comment"] = f"build {definition.get('Comment', '')}+"  # a new revision
            arn = sfn.update_state_machine(
                stateMachineArn=pid, definition=json.dumps(definition), publish=True
            )["stateMachineVersionArn"]
            routing = [{"stateMachineVersionArn": arn, "weight": 100}]
            found = sfn.list_state_machine_aliases(stateMachineArn=pid)["stateMachineAliases"]
            if found:
                sfn.update_state_machine_alias(
                    stateMachineAliasArn=found[0]["stateMachineAliasArn"],
                    routingConfiguration=routing,
                )
            else:
                sfn.create_state_machine_alias(name="live", routingConfiguration=routing)


def deploy(project: Path, aws: boto3.session.Session, *args: str) -> Done:
    publish(aws)
    return run(project, DEPLOY, "test", *args)


DEPLOY = "deployment/scripts/deploy-backend.sh"
ROLLBACK = "deployment/scripts/rollback-backend.sh"
VALIDATE = "deployment/scripts/validate-deployment.sh"
HEALTH = "deployment/tests/health-checks.sh"
COMMANDS = {DEPLOY: "deploy", ROLLBACK: "rollback", VALIDATE: "validate", HEALTH: "health-checks"}


def checks_of(done: Done) -> dict[str, bool]:
    return {c["name"]: c["ok"] for c in json.loads(done.stdout)["checks"]}


def aliases(aws: boto3.session.Session, stack: dict[str, Any]) -> dict[str, str]:
    lam = aws.client("lambda")
    return {
        f: lam.get_alias(FunctionName=stack[f], Name="live")["FunctionVersion"] for f in FUNCTIONS
    }


def test_deploy_builds_deploys_records_the_release_and_validates(
    stack: dict[str, Any], project: Path, aws: boto3.session.Session
) -> None:
    done = deploy(project, aws, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    calls = (project / "fake.log").read_text().splitlines()
    assert calls == ["build", "deploy --config-env test"]
    result = json.loads(done.stdout)
    assert all(c["ok"] for c in result["checks"])
    assert result["release"]["functions"] == dict.fromkeys(FUNCTIONS, "1")
    assert result["release"]["state_machines"]["OrderStateMachine"].endswith(":1")
    assert {"stack-status", "alarms", "dead-letters", "candles", "trading-state"} <= set(
        checks_of(done)
    )


def _alarm(aws: boto3.session.Session, stack: dict[str, Any]) -> None:
    aws.client("cloudwatch").set_alarm_state(
        AlarmName=f"{STACK}-ExecuteErrorsAlarm-ABC123", StateValue="ALARM", StateReason="test"
    )


def _dead_letter(aws: boto3.session.Session, stack: dict[str, Any]) -> None:
    aws.client("sqs").send_message(QueueUrl=stack["OrderDLQ"], MessageBody="{}")


def _stale(aws: boto3.session.Session, stack: dict[str, Any]) -> None:
    ddb = aws.client("dynamodb")
    for item in ddb.scan(TableName=stack["CandlesTable"])["Items"]:
        ddb.delete_item(TableName=stack["CandlesTable"], Key={"pk": item["pk"], "sk": item["sk"]})
    fresh_candle(aws, stack["CandlesTable"], now_ms() - 10 * 60_000)


def _halted(aws: boto3.session.Session, stack: dict[str, Any]) -> None:
    record = TradingStateRecord(
        state=TradingState.HALTED, reason="drill", changed_at=now_ms(), changed_by="test"
    )
    ControlStore(aws.client("dynamodb"), stack["ControlTable"]).set(record)


def _failed_execution(aws: boto3.session.Session, stack: dict[str, Any]) -> None:
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=stack["OrderStateMachine"], name="x", input='{"fail": 1}'
    )["executionArn"]
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the failing execution never ended"
        time.sleep(0.05)
    assert sfn.describe_execution(executionArn=arn)["status"] == "FAILED"


def _latest(aws: boto3.session.Session, stack: dict[str, Any]) -> None:
    lam = aws.client("lambda")
    lam.update_alias(FunctionName=stack["ExecuteFunction"], Name="live", FunctionVersion="$LATEST")


FAULTS = {
    "alarms": _alarm,
    "dead-letters": _dead_letter,
    "candles": _stale,
    "trading-state": _halted,
    "failed-executions:OrderStateMachine": _failed_execution,
    "alias:ExecuteFunction": _latest,
}


@pytest.mark.parametrize("check", sorted(FAULTS))
def test_validation_fails_naming_the_check_each_fault_breaks(
    check: str, stack: dict[str, Any], project: Path, aws: boto3.session.Session
) -> None:
    assert deploy(project, aws).returncode == 0
    FAULTS[check](aws, stack)
    done = run(project, VALIDATE, "test", "--json")
    assert done.returncode == 1
    failed = {name for name, ok in checks_of(done).items() if not ok}
    assert failed == {check}


@dataclass
class Invocations:
    """Every Lambda invocation moto sees; the functions in ``failing`` answer an error."""

    names: list[str]
    failing: set[str]


@pytest.fixture(autouse=True)
def invocations(monkeypatch: pytest.MonkeyPatch) -> Invocations:
    """moto's Lambda without Docker echoes each payload: here every function answers the smoke
    event as a tickstep handler does (tests/pipeline/test_function_settings.py runs the real
    handlers on it), and the functions in ``failing`` answer an error."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from tickstep.wiring import SMOKE_EVENT, smoke_answer

    seen = Invocations([], set())
    original = LambdaSimpleBackend.invoke

    def invoke(backend: Any, name: str, qualifier: Any, body: Any, *rest: Any) -> Any:
        seen.names.append(name)
        if name in seen.failing:
            rest[-1]["x-amz-function-error"] = "Unhandled"  # the response headers
            return b'{"errorType": "Runtime.ImportModuleError"}'
        if json.loads(body or "null") == SMOKE_EVENT:
            return json.dumps(smoke_answer({"AWS_LAMBDA_FUNCTION_VERSION": "1"})).encode()
        return original(backend, name, qualifier, body, *rest)

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    return seen


def test_validation_fails_when_a_smoke_invocation_errors(
    stack: dict[str, Any], project: Path, aws: boto3.session.Session, invocations: Invocations
) -> None:
    assert deploy(project, aws).returncode == 0
    invocations.failing.add(stack["ApiFunction"])
    done = run(project, VALIDATE, "test", "--json")
    assert done.returncode == 1
    assert {n for n, ok in checks_of(done).items() if not ok} == {"smoke:ApiFunction"}


def test_in_sandbox_mode_the_secret_must_have_a_value_which_is_never_read(
    stack: dict[str, Any], project: Path, aws: boto3.session.Session
) -> None:
    secrets, lam = aws.client("secretsmanager"), aws.client("lambda")
    arn = secrets.create_secret(Name=f"{STACK}/exchange")["ARN"]  # created empty, as the stack does
    for function, variable, value in (
        ("IngestFunction", "TRADING_MODE", "sandbox"),
        ("ExecuteFunction", "EXCHANGE_SECRET_ARN", arn),
    ):
        env = lam.get_function_configuration(FunctionName=stack[function])["Environment"]
        env["Variables"][variable] = value
        lam.update_function_configuration(FunctionName=stack[function], Environment=env)
    assert deploy(project, aws).returncode == 1
    done = run(project, VALIDATE, "test", "--json")
    assert {n for n, ok in checks_of(done).items() if not ok} == {"exchange-secret"}
    secrets.put_secret_value(SecretId=arn, SecretString='{"apiKey": "canary-key-4711"}')
    done = run(project, VALIDATE, "test", "--json")
    assert done.returncode == 0, done.stdout
    assert "canary-key-4711" not in done.stdout + done.stderr


def test_rollback_after_two_releases_moves_every_alias_back_and_nothing_else(
    stack: dict[str, Any], project: Path, aws: boto3.session.Session
) -> None:
    assert deploy(project, aws).returncode == 0
    first = aliases(aws, stack)
    assert deploy(project, aws).returncode == 0
    assert aliases(aws, stack) == dict.fromkeys(FUNCTIONS, "2")
    lam = aws.client("lambda")
    configs = {f: lam.get_function_configuration(FunctionName=stack[f]) for f in FUNCTIONS}
    done = run(project, ROLLBACK, "test", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert aliases(aws, stack) == first
    sfn = aws.client("stepfunctions")
    alias = sfn.list_state_machine_aliases(stateMachineArn=stack["OrderStateMachine"])
    routing = sfn.describe_state_machine_alias(
        stateMachineAliasArn=alias["stateMachineAliases"][0]["stateMachineAliasArn"]
    )["routingConfiguration"]
    assert [r["stateMachineVersionArn"].rsplit(":", 1)[1] for r in routing] == ["1"]
    after = {f: lam.get_function_configuration(FunctionName=stack[f]) for f in FUNCTIONS}
    assert {f: c["Environment"] for f, c in after.items()} == {
        f: c["Environment"] for f, c in configs.items()
    }
    assert {
        f: len(lam.list_versions_by_function(FunctionName=stack[f])["Versions"]) for f in FUNCTIONS
    } == dict.fromkeys(FUNCTIONS, 3)  # $LATEST, 1, 2: nothing published
    history = aws.client("ssm").get_parameter_history(Name=f"/tickstep/{STACK}/release")
    kinds = [json.loads(p["Value"])["kind"] for p in history["Parameters"]]
    assert kinds == ["deploy", "deploy", "rollback"]
    assert json.loads(done.stdout)["release"]["functions"] == first


def test_rollback_with_no_earlier_release_refuses_and_changes_nothing(
    stack: dict[str, Any], project: Path, aws: boto3.session.Session
) -> None:
    assert deploy(project, aws).returncode == 0
    before = aliases(aws, stack)
    done = run(project, ROLLBACK, "test")
    assert done.returncode == 1
    assert "refused, nothing changed" in done.stderr
    assert aliases(aws, stack) == before
    history = aws.client("ssm").get_parameter_history(Name=f"/tickstep/{STACK}/release")
    assert len(history["Parameters"]) == 1


def test_health_checks_pass_on_a_healthy_stack_and_invoke_nothing(
    stack: dict[str, Any], project: Path, aws: boto3.session.Session, invocations: Invocations
) -> None:
    assert deploy(project, aws).returncode == 0
    invocations.names.clear()
    done = run(project, HEALTH, "test")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  api-health" in done.stdout
    assert invocations.names == []


def test_production_refuses_an_empty_alarm_email_and_a_dirty_work_tree(
    project: Path, stack: dict[str, Any]
) -> None:
    done = run(project, DEPLOY, "production")
    assert done.returncode == 1
    assert "AlarmEmail" in done.stderr
    config = (project / "samconfig.toml").read_text()
    (project / "samconfig.toml").write_text(
        config.replace(
            '"TradingMode=live",', '"TradingMode=live",\n  "AlarmEmail=ops@example.com",'
        )
    )
    done = run(project, DEPLOY, "production")  # not a git work tree: cannot prove it clean
    assert done.returncode == 1
    assert "work tree" in done.stderr
    assert not (project / "fake.log").exists()


def test_an_unknown_environment_is_a_usage_error_listing_the_valid_names(project: Path) -> None:
    for path in (DEPLOY, ROLLBACK, VALIDATE, HEALTH):
        done = script(project, path, "staging")
        assert done.returncode == 2
        assert "'test', 'production'" in done.stderr
        assert script(project, path, "--help").returncode == 0
