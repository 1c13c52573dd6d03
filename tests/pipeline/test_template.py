"""template.yaml and the state machines: linted by the AWS tools, and held to the rules that
matter for a trading system (dead letters everywhere, the secret fenced in, auth on the API).

The tools come from .tools/ (``make tools``); a missing tool fails the test, it never skips.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline.conftest import render_asl
from tickstep.orders import DEFAULT_GRACE_MS
from tickstep.usecases.execute import TASK_ERRORS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
TOOLS_BIN = ROOT / ".tools" / "bin"
SECRET_ID = "ExchangeSecret"
SECRET_READERS = {"ExecuteFunction", "ReconcileFunction"}
EVENT_TYPES_WITH_TARGETS = {"Schedule", "ScheduleV2", "EventBridgeRule", "CloudWatchEvent"}
API_ROUTES = {
    ("GET", "/api/health"),
    ("GET", "/api/status"),
    ("GET", "/api/positions"),
    ("GET", "/api/orders"),
    ("GET", "/api/signals"),
    ("GET", "/api/dashboard"),
    ("POST", "/api/halt"),
    ("POST", "/api/reduce"),
    ("POST", "/api/resume"),
}


def tool(name: str) -> str:
    path = TOOLS_BIN / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: run `make tools` (the test command depends on it)")
    return str(path)


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = render_asl.load_template(TEMPLATE)
    return loaded


def resources_of(template: dict[str, Any], *types: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in types:
            yield logical_id, resource.get("Properties", {})


def references(node: Any) -> set[str]:
    """Logical ids a template fragment refers to (Ref, GetAtt, and ${X} inside Sub)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                found.add(str(value))
            elif key == "Fn::GetAtt":
                found.add(str(value[0]))
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
            found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def test_sam_validate_with_lint_passes() -> None:
    result = run_tool(tool("sam"), "validate", "--lint", "--template", str(TEMPLATE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_statelint_passes_on_every_state_machine_with_substitutions_filled(
    tmp_path: Path,
) -> None:
    rendered = render_asl.render_state_machines(TEMPLATE)
    assert set(rendered) == {"DecideStateMachine", "OrderStateMachine"}
    paths = []
    for logical_id, text in rendered.items():
        assert "${" not in text, f"{logical_id}: a placeholder was left unfilled"
        path = tmp_path / f"{logical_id}.asl.json"
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    result = run_tool(tool("statelint"), *paths)
    assert result.returncode == 0, result.stdout + result.stderr


def test_render_asl_rejects_a_placeholder_without_substitution(tmp_path: Path) -> None:
    state = {"Type": "Pass", "Result": "${Nope}", "End": True}
    (tmp_path / "sm.asl.json").write_text(json.dumps({"StartAt": "A", "States": {"A": state}}))
    (tmp_path / "template.yaml").write_text(
        "Resources:\n  Sm:\n    Type: AWS::Serverless::StateMachine\n"
        "    Properties:\n      DefinitionUri: sm.asl.json\n"
    )
    with pytest.raises(ValueError, match="Nope"):
        render_asl.render_state_machines(tmp_path / "template.yaml")


def test_every_queue_that_is_not_a_dead_letter_queue_has_a_redrive_policy(
    template: dict[str, Any],
) -> None:
    queues = dict(resources_of(template, "AWS::SQS::Queue"))
    dead_letter_queues = {
        queue_id
        for queue_id in queues
        if any(
            queue_id in references(props.get("RedrivePolicy", {}).get("deadLetterTargetArn"))
            for props in queues.values()
        )
    }
    for _, resource in template["Resources"].items():
        text = json.dumps(resource)
        dead_letter_queues |= {
            queue_id
            for queue_id in queues
            if re.search(rf'"(DeadLetterConfig|DeadLetterQueue)": \{{[^}}]*"{queue_id}"', text)
        }
    working_queues = set(queues) - dead_letter_queues
    assert "OrderQueue" in working_queues
    for queue_id in working_queues:
        redrive = queues[queue_id].get("RedrivePolicy")
        assert redrive, f"{queue_id} has no RedrivePolicy"
        target = references(redrive["deadLetterTargetArn"])
        assert target <= dead_letter_queues, f"{queue_id} redrives to {target}"
        if queues[queue_id].get("FifoQueue"):
            (dlq,) = target
            assert queues[dlq].get("FifoQueue"), f"{queue_id} is FIFO, its DLQ {dlq} is not"


def test_the_order_queue_is_fifo(template: dict[str, Any]) -> None:
    order_queue = template["Resources"]["OrderQueue"]["Properties"]
    assert order_queue["FifoQueue"] is True
    assert order_queue["ContentBasedDeduplication"] is False


def test_every_schedule_and_rule_target_has_a_dead_letter_queue(template: dict[str, Any]) -> None:
    targets = []
    for logical_id, props in resources_of(
        template, "AWS::Serverless::Function", "AWS::Serverless::StateMachine"
    ):
        for event_id, event in (props.get("Events") or {}).items():
            if event["Type"] in EVENT_TYPES_WITH_TARGETS:
                targets.append((f"{logical_id}.{event_id}", event["Properties"]))
    for logical_id, props in resources_of(template, "AWS::Events::Rule"):
        targets += [(f"{logical_id}.{t['Id']}", t) for t in props.get("Targets", [])]
    names = {name for name, _ in targets}
    assert {"IngestFunction.Schedule", "DecideStateMachine.CandlesClosed"} <= names
    for name, target in targets:
        assert target.get("DeadLetterConfig", {}).get("Arn"), f"{name} has no DeadLetterConfig"


def test_only_execute_and_reconcile_may_reference_the_exchange_secret(
    template: dict[str, Any],
) -> None:
    secret = template["Resources"][SECRET_ID]
    assert not {"SecretString", "GenerateSecretString"} & set(secret.get("Properties", {})), (
        "the secret's value is the operator's to set, never the template's"
    )
    referrers = {
        logical_id
        for logical_id, resource in template["Resources"].items()
        if SECRET_ID in references(resource)
    }
    # The two readers (their environment holds its ARN) and its own resource policy.
    expected = SECRET_READERS | {"ExchangeSecretPolicy"}
    assert referrers == expected, f"the secret is referenced by {sorted(referrers)}"
    # The readers' roles grant it by the ARN of its name (the KMS key names the roles, so a
    # !Ref from a role to the secret would be a cycle); Secrets Manager adds 6 characters.
    name_arn = f"secret:{secret['Properties']['Name']['Fn::Sub']}-??????"
    for logical_id in SECRET_READERS:
        policies = json.dumps(template["Resources"][logical_id]["Properties"]["Policies"])
        assert name_arn in policies, f"{logical_id} cannot read the secret"
    for logical_id, props in resources_of(template, "AWS::Serverless::Function"):
        if logical_id not in SECRET_READERS:
            assert "secretsmanager" not in json.dumps(props.get("Policies", [])).lower()
            assert "SecretsManager" not in json.dumps(props.get("Policies", []))


SECRET_NAME = re.compile(r"secret|password|passphrase|token|api_?key|private", re.IGNORECASE)
HIGH_ENTROPY = re.compile(r"^[A-Za-z0-9+/=_\-]{32,}$")


def test_no_function_environment_holds_a_secret_value(template: dict[str, Any]) -> None:
    global_env = template["Globals"]["Function"].get("Environment", {}).get("Variables", {})
    environments = {"Globals": global_env}
    for logical_id, props in resources_of(template, "AWS::Serverless::Function"):
        environments[logical_id] = props.get("Environment", {}).get("Variables", {})
    for owner, variables in environments.items():
        for name, value in variables.items():
            where = f"{owner}: {name}"
            if isinstance(value, str):
                assert not HIGH_ENTROPY.match(value), f"{where} looks like a credential"
                assert not SECRET_NAME.search(name) or value == "", f"{where} holds a literal"
            elif SECRET_NAME.search(name):
                assert name.endswith(("_ARN", "_NAME")), f"{where}: only the secret's id"
                assert references(value) <= {SECRET_ID}, f"{where} refers to {references(value)}"


def test_every_api_route_except_health_requires_a_cognito_token(template: dict[str, Any]) -> None:
    api = template["Resources"]["Api"]
    assert api["Type"] == "AWS::Serverless::HttpApi"
    auth = api["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "CognitoJwt"
    jwt = auth["Authorizers"]["CognitoJwt"]["JwtConfiguration"]
    assert jwt["audience"] == [{"Ref": "UserPoolClient"}]
    assert "${UserPool}" in jwt["issuer"]["Fn::Sub"]
    routes = {}
    for logical_id, props in resources_of(template, "AWS::Serverless::Function"):
        for event in (props.get("Events") or {}).values():
            if event["Type"] in ("HttpApi", "Api"):
                route = (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
                routes[route] = (logical_id, event["Properties"])
    assert set(routes) == API_ROUTES
    for route, (_, props) in routes.items():
        authorizer = props.get("Auth", {}).get("Authorizer", "CognitoJwt")
        expected = "NONE" if route == ("GET", "/api/health") else "CognitoJwt"
        assert authorizer == expected, f"{route}: authorizer {authorizer}"


def test_every_function_uses_its_folder_and_the_app_handler(template: dict[str, Any]) -> None:
    functions = dict(resources_of(template, "AWS::Serverless::Function"))
    # The deployment's own hooks (CodeDeploy's pre-traffic hook) live with the deployment.
    hooks = {k for k, p in functions.items() if str(p["CodeUri"]).startswith("deployment/hooks/")}
    assert hooks == {"PreTrafficHookFunction"}
    functions = {k: p for k, p in functions.items() if k not in hooks}
    names = {"ingest", "signal", "risk", "execute", "reconcile", "api"}
    assert {f"{name.capitalize()}Function" for name in names} == set(functions)
    assert template["Globals"]["Function"]["Handler"] == "app.handler"
    assert template["Globals"]["Function"]["Runtime"] == "python3.12"
    for logical_id, props in functions.items():
        assert props["CodeUri"] == f"functions/{logical_id.removesuffix('Function').lower()}/"


def test_only_the_exchange_functions_carry_ccxt_and_only_signal_carries_numpy(
    template: dict[str, Any],
) -> None:
    layers = {
        logical_id: references(props.get("Layers", []))
        for logical_id, props in resources_of(template, "AWS::Serverless::Function")
    }
    with_ccxt = {logical_id for logical_id, used in layers.items() if "ExchangeLayer" in used}
    with_numpy = {logical_id for logical_id, used in layers.items() if "NumpyLayer" in used}
    assert with_ccxt == {"IngestFunction", "ExecuteFunction", "ReconcileFunction"}
    assert with_numpy == {"SignalFunction"}


def _order_states() -> dict[str, Any]:
    text = render_asl.render_state_machines(TEMPLATE)["OrderStateMachine"]
    states: dict[str, Any] = json.loads(text)["States"]
    return states


def test_order_submission_retries_only_named_errors_and_catches_every_outcome() -> None:
    submit = _order_states()["SubmitOrder"]
    assert submit["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    retried = {name for retrier in submit["Retry"] for name in retrier["ErrorEquals"]}
    assert retried == {
        "OrderNotVisibleYet",
        "RetryableExchangeError",
        "TransientError",
    }  # never States.ALL
    jitter = {r["ErrorEquals"][0]: r["JitterStrategy"] for r in submit["Retry"]}
    # lookups keep a fixed schedule that outlasts the grace window; refusals back off jittered
    assert jitter == {
        "OrderNotVisibleYet": "NONE",
        "RetryableExchangeError": "FULL",
        "TransientError": "FULL",
    }
    visibility = next(r for r in submit["Retry"] if r["ErrorEquals"] == ["OrderNotVisibleYet"])
    waits = [
        min(visibility["IntervalSeconds"] * visibility["BackoffRate"] ** k, 30)
        for k in range(visibility["MaxAttempts"])
    ]
    assert sum(waits) * 1000 > DEFAULT_GRACE_MS
    catchers = {name: c["Next"] for c in submit["Catch"] for name in c["ErrorEquals"]}
    assert set(TASK_ERRORS) <= set(catchers)  # every answer of the execute function
    assert catchers["FatalExchangeError"] == catchers["AuthenticationFailed"] == "RecordRejected"
    assert catchers["AmbiguousOrderError"] == catchers["States.Timeout"] == "MarkUnknown"
    assert catchers["States.ALL"] == "MarkUnknown"
    assert "HeartbeatSeconds" in submit and "TimeoutSeconds" in submit


def test_decide_functions_retry_a_dynamodb_throttle_and_never_everything() -> None:
    """A function throttled past the SDK's retries makes its decision again (both are safe
    to repeat); it does not end in the dead-letter queue on the first throttle."""
    definition = json.loads((ROOT / "statemachines" / "decide.asl.json").read_text())
    per_market = definition["States"]["DecideEachMarket"]["ItemProcessor"]["States"]
    for name in ("ComputeSignal", "CheckRisk"):
        retried = {n for retrier in per_market[name]["Retry"] for n in retrier["ErrorEquals"]}
        assert "ThrottlingException" in retried, name
        assert "States.ALL" not in retried, name


def test_a_duplicate_intent_ends_visibly_at_already_recorded() -> None:
    record = _order_states()["RecordIntent"]
    assert record["Parameters"]["ConditionExpression"] == "attribute_not_exists(pk)"
    (catcher,) = record["Catch"]
    assert catcher["ErrorEquals"] == ["DynamoDB.ConditionalCheckFailedException"]
    assert _order_states()[catcher["Next"]]["Type"] == "Succeed"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
