"""template.yaml as operations needs it (issue 11): every function and state machine behind
an alias, the order path shifted gradually in production with automatic rollback, the alarms
and saved queries on-call uses, and environments that say what they are.

Part of it is checked on SAM's own transform (samtranslator from .tools/, the code
``sam deploy`` runs), so what is asserted is what CloudFormation would receive.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline.conftest import render_asl

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
TOOLS_PYTHON = ROOT / ".tools" / "bin" / "python"
ORDER_PATH = ("SignalFunction", "RiskFunction", "ExecuteFunction")
TRANSFORM = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        return {}

def s3(node):
    if isinstance(node, dict):
        return {k: ("s3://bucket/key" if k in ("CodeUri", "DefinitionUri", "ContentUri")
                    and isinstance(v, str) else s3(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [s3(v) for v in node]
    return node

template = s3(yaml_parse(open(sys.argv[1]).read()))
json.dump(transform(template, json.loads(sys.argv[2]), NoManagedPolicies()), sys.stdout)
"""


def transformed(parameters: dict[str, str]) -> dict[str, Any]:
    if not os.access(TOOLS_PYTHON, os.X_OK):
        pytest.fail(f"{TOOLS_PYTHON} is missing: run `make tools`")
    done = subprocess.run(
        [str(TOOLS_PYTHON), "-c", TRANSFORM, str(TEMPLATE), json.dumps(parameters)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": "eu-west-1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    resources: dict[str, Any] = json.loads(done.stdout)["Resources"]
    return resources


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = render_asl.load_template(TEMPLATE)
    return loaded


@pytest.fixture(scope="module")
def deployed() -> dict[str, Any]:
    return transformed({"Environment": "production"})


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: r for k, r in resources.items() if r["Type"] == kind}


def test_every_function_publishes_a_version_behind_the_live_alias(
    template: dict[str, Any], deployed: dict[str, Any]
) -> None:
    functions = of_type(template["Resources"], "AWS::Serverless::Function")
    aliases = of_type(deployed, "AWS::Lambda::Alias")
    assert {f"{name}Aliaslive" for name in functions} == set(aliases)
    for name in functions:
        assert aliases[f"{name}Aliaslive"]["Properties"]["Name"] == "live"


def test_every_event_source_and_state_machine_calls_an_alias_never_latest(
    deployed: dict[str, Any],
) -> None:
    """Schedules, the order queue and the API invoke the alias; the decide workflow calls the
    functions' and the order workflow's aliases, and its rule starts its own alias."""
    permissions = of_type(deployed, "AWS::Lambda::Permission")
    assert permissions and all(
        p["Properties"]["FunctionName"] == {"Ref": p["Properties"]["FunctionName"]["Ref"]}
        and p["Properties"]["FunctionName"]["Ref"].endswith("Aliaslive")
        for p in permissions.values()
    )
    mapping = deployed["ExecuteFunctionOrderQueue"]["Properties"]["FunctionName"]
    assert mapping == {"Ref": "ExecuteFunctionAliaslive"}
    for rule in ("IngestFunctionSchedule", "ReconcileFunctionSchedule"):
        assert deployed[rule]["Properties"]["Targets"][0]["Arn"] == {
            "Ref": rule.replace("Schedule", "Aliaslive")
        }
    assert deployed["DecideStateMachineCandlesClosed"]["Properties"]["Targets"][0]["Arn"] == {
        "Ref": "DecideStateMachineAliaslive"
    }
    substitutions = deployed["DecideStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert substitutions["SignalFunctionArn"] == {"Ref": "SignalFunctionAliaslive"}
    assert substitutions["RiskFunctionArn"] == {"Ref": "RiskFunctionAliaslive"}
    assert substitutions["OrderStateMachineArn"] == {"Ref": "OrderStateMachineAliaslive"}


def test_both_state_machines_are_versioned_and_aliased(deployed: dict[str, Any]) -> None:
    versions = of_type(deployed, "AWS::StepFunctions::StateMachineVersion")
    aliases = of_type(deployed, "AWS::StepFunctions::StateMachineAlias")
    assert set(versions) == {"DecideStateMachineVersion", "OrderStateMachineVersion"}
    assert set(aliases) == {"DecideStateMachineAliaslive", "OrderStateMachineAliaslive"}


def _alarm_on(template: dict[str, Any], alarm: str, metric: str, function: str) -> bool:
    props = template["Resources"][alarm]["Properties"]
    return (
        (props["Namespace"], props["MetricName"]) == ("AWS/Lambda", metric)
        and props["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
        and props["Threshold"] == 0
    )


@pytest.mark.parametrize("function", ORDER_PATH)
def test_production_shifts_the_order_path_gradually_gated_on_its_alarms_and_a_hook(
    function: str, template: dict[str, Any], deployed: dict[str, Any]
) -> None:
    preference = template["Resources"][function]["Properties"]["DeploymentPreference"]
    assert preference["Type"] == {
        "Fn::If": ["IsProduction", "Canary10Percent5Minutes", "AllAtOnce"]
    }
    errors, throttles = (a["Ref"] for a in preference["Alarms"])
    assert _alarm_on(template, errors, "Errors", function)
    assert _alarm_on(template, throttles, "Throttles", function)
    assert preference["Hooks"] == {"PreTraffic": {"Ref": "PreTrafficHookFunction"}}
    group = deployed[f"{function}DeploymentGroup"]["Properties"]
    alarms = {a["Name"]["Ref"] for a in group["AlarmConfiguration"]["Alarms"]}
    assert alarms == {errors, throttles}
    assert group["AutoRollbackConfiguration"]["Enabled"] is True
    update = deployed[f"{function}Aliaslive"]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    assert update["BeforeAllowTrafficHook"] == {"Ref": "PreTrafficHookFunction"}
    hook_targets = template["Resources"]["PreTrafficHookFunction"]["Properties"]["Environment"]
    assert {"Ref": f"{function}.Version"} in hook_targets["Variables"]["HOOK_TARGETS"]["Fn::Join"][
        1
    ]


def test_only_the_order_path_has_a_deployment_preference(template: dict[str, Any]) -> None:
    functions = of_type(template["Resources"], "AWS::Serverless::Function")
    with_preference = {k for k, r in functions.items() if "DeploymentPreference" in r["Properties"]}
    assert with_preference == set(ORDER_PATH)


def test_the_hook_may_be_invoked_by_codedeploy(template: dict[str, Any]) -> None:
    """SAM's CodeDeploy role may only invoke functions named CodeDeployHook_*."""
    name = template["Resources"]["PreTrafficHookFunction"]["Properties"]["FunctionName"]
    assert name["Fn::Sub"].startswith("CodeDeployHook_")


def test_every_function_but_the_api_has_an_errors_and_a_throttles_alarm(
    template: dict[str, Any],
) -> None:
    alarms = of_type(template["Resources"], "AWS::CloudWatch::Alarm")
    for function in ("Ingest", "Signal", "Risk", "Execute", "Reconcile"):
        for metric in ("Errors", "Throttles"):
            name = f"{function}{metric}Alarm"
            assert name in alarms and _alarm_on(template, name, metric, f"{function}Function")
    api = {
        a: r["Properties"]
        for a, r in alarms.items()
        if r["Properties"]["Namespace"] == "AWS/ApiGateway"
    }
    assert {p["MetricName"] for p in api.values()} == {"5xx", "Latency"}
    assert {p.get("ExtendedStatistic") for p in api.values()} == {None, "p95"}


def test_a_single_market_failing_to_ingest_and_reconcile_errors_alarm(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    ingest = resources["IngestFailuresAlarm"]["Properties"]
    assert (ingest["MetricName"], ingest["Threshold"], ingest["ComparisonOperator"]) == (
        "IngestFailures",
        0,
        "GreaterThanThreshold",
    )
    source = (ROOT / "functions" / "ingest" / "app.py").read_text()
    assert 'name="IngestFailures"' in source  # the metric the alarm watches is emitted
    metric_filter = resources["ReconcileErrorsMetricFilter"]["Properties"]
    assert metric_filter["LogGroupName"] == {"Ref": "ReconcileLogGroup"}
    assert '"not reconciled"' in metric_filter["FilterPattern"]
    assert '"not reconciled"' in (ROOT / "functions" / "reconcile" / "app.py").read_text()
    transformation = metric_filter["MetricTransformations"][0]
    alarm = resources["ReconcileItemErrorsAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        transformation["MetricNamespace"],
        transformation["MetricName"],
    )


def test_the_trading_halted_alarm_keeps_its_state_while_no_datapoint_arrives(
    template: dict[str, Any],
) -> None:
    """The metric comes only when risk or the API reads or sets the state: with missing data
    ignored the alarm stays in ALARM until a 0 arrives, instead of going OK (and e-mailing
    OK) a minute after the halt."""
    props = template["Resources"]["TradingHaltedAlarm"]["Properties"]
    assert props["TreatMissingData"] == "ignore"
    assert (props["Threshold"], props["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    risk = (ROOT / "functions" / "risk" / "app.py").read_text()
    assert 'name="TradingHalted", unit=MetricUnit.Count, value=1 if halted else 0' in risk


QUERIES = {
    "ErrorsByFunctionQuery": ("errors-by-function", ('level = "ERROR"', "by @log")),
    "IntentTraceQuery": ("one-intent", ("intent_id",)),
    "MarketDidNotTradeQuery": ("why-no-trade", ("market", "candle_time")),
    "SlowestInvocationsQuery": ("slowest-invocations", ('@type = "REPORT"', "sort @duration desc")),
}


def test_the_saved_queries_name_real_log_groups(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    queries = of_type(resources, "AWS::Logs::QueryDefinition")
    assert set(queries) == set(QUERIES)
    for logical, (name, fragments) in QUERIES.items():
        props = queries[logical]["Properties"]
        assert props["Name"] == {"Fn::Sub": f"${{AWS::StackName}}/{name}"}
        for group in props["LogGroupNames"]:
            assert resources[group["Ref"]]["Type"] == "AWS::Logs::LogGroup"
        for fragment in fragments:
            assert fragment in props["QueryString"]


def test_the_api_access_log_carries_integration_status_latency_and_error(
    template: dict[str, Any],
) -> None:
    fmt = json.loads(template["Resources"]["Api"]["Properties"]["AccessLogSettings"]["Format"])
    assert fmt["integrationStatus"] == "$context.integrationStatus"
    assert fmt["latencyMs"] == "$context.responseLatency"
    assert fmt["integrationError"] == "$context.integration.error"


def load_environment_stack(env: str) -> str:
    from tickstep.operations.environments import load_environment

    return load_environment(ROOT / "samconfig.toml", env).stack_name


def _samconfig() -> dict[str, dict[str, str]]:
    from tickstep.operations.environments import load_environment

    return {
        env: load_environment(ROOT / "samconfig.toml", env).parameters
        for env in ("test", "production")
    }


def test_each_environment_says_what_it_is_and_production_sets_markets_and_limits() -> None:
    config = _samconfig()
    assert config["test"]["Environment"] == "test"
    assert config["production"]["Environment"] == "production"
    assert config["test"]["TradingMode"] == "sandbox"
    assert config["production"]["TradingMode"] == "live"
    for parameters in config.values():
        assert parameters["EnableTracing"] == "true"
    assert json.loads(config["production"]["Markets"])
    assert json.loads(config["production"]["RiskLimits"])["max_notional_per_order"]
    runbook = (ROOT / "docs" / "RUNBOOK.md").read_text()
    for name, values in config.items():
        stack = load_environment_stack(name)
        row = f"| `{name}` | `{stack}` | {values['TradingMode']} |"
        assert row in runbook
