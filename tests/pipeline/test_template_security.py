"""The template's own policies, evaluated: who may page, publish on the bus, call the API, read
the exchange secret (issue 10).

A small evaluator of IAM policy documents stands in for AWS: Allow and Deny statements,
wildcards in actions and resources, principals of resource policies, and the condition
operators the template uses (String/Arn Equals, Like, NotEquals, ``Null``, and the
``ForAllValues``/``ForAnyValue`` set prefixes for multivalued keys such as EventBridge's
``events:source`` and ``events:detail-type``). Anything else it meets fails the test instead
of being guessed. Intrinsics resolve to well-formed stand-ins for one account and region.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline.conftest import ROLE_OWNERS, listed, render_asl, role_owners, role_policies
from tickstep.messages import (
    EVENT_CANDLES_CLOSED,
    EVENT_TRADING_STATE_CHANGED,
    SOURCE_CONTROL,
    SOURCE_INGEST,
    SOURCE_RISK,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
REGION = "eu-west-1"
STACK = "tickstep-test"
API_ID = "a1b2c3d4e5"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"
ADMIN_ARN = f"arn:aws:iam::{ACCOUNT}:role/Administrator"
ARN_SHAPES = {
    "AWS::Events::EventBus": "arn:aws:events:{region}:{account}:event-bus/{name}",
    "AWS::Events::Rule": "arn:aws:events:{region}:{account}:rule/{name}",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/{name}",
    "AWS::SecretsManager::Secret": "arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf",
}
# What each SAM policy template the roles use may grant, as a statement wider than the real
# one: none of them may reach EventBridge, the API or the secret unless listed here.
SAM_POLICY_TEMPLATES: dict[str, dict[str, Any]] = {
    name: {"Effect": "Allow", "Action": action, "Resource": "*"}
    for name, action in {
        "DynamoDBCrudPolicy": "dynamodb:*",
        "DynamoDBReadPolicy": "dynamodb:*",
        "DynamoDBWritePolicy": "dynamodb:*",
        "SQSSendMessagePolicy": "sqs:*",
        "LambdaInvokePolicy": "lambda:*",
        "StepFunctionsExecutionPolicy": "states:*",
        "AWSSecretsManagerGetSecretValuePolicy": "secretsmanager:GetSecretValue",
        "EventBridgePutEventsPolicy": "events:PutEvents",
    }.items()
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = render_asl.load_template(TEMPLATE)
    return loaded


# -- intrinsics -------------------------------------------------------------------------------


def resolve(template: dict[str, Any], node: Any) -> Any:
    """``node`` with Ref, GetAtt and Sub replaced by the values they take once deployed."""
    if isinstance(node, list):
        return [resolve(template, item) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        return ref(template, node["Ref"])
    if set(node) == {"Fn::GetAtt"}:
        logical_id, attribute = node["Fn::GetAtt"]
        assert attribute == "Arn", f"no stand-in for {logical_id}.{attribute}"
        return arn_of(template, logical_id)
    if set(node) == {"Fn::Sub"}:
        text, variables = (
            (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
        )

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(resolve(template, variables[name]))
            if "." in name:
                return str(resolve(template, {"Fn::GetAtt": name.split(".", 1)}))
            return str(ref(template, name))

        return re.sub(r"\$\{([^}!]+)\}", fill, text)
    return {key: resolve(template, value) for key, value in node.items()}


def ref(template: dict[str, Any], name: str) -> str:
    pseudo = {
        "AWS::AccountId": ACCOUNT,
        "AWS::Region": REGION,
        "AWS::Partition": "aws",
        "AWS::StackName": STACK,
        "AWS::URLSuffix": "amazonaws.com",
    }
    if name in pseudo:
        return pseudo[name]
    resource_type = template["Resources"][name]["Type"]
    if resource_type == "AWS::SNS::Topic":
        return f"arn:aws:sns:{REGION}:{ACCOUNT}:{STACK}-{name}-1A2B3C"
    if resource_type == "AWS::Serverless::HttpApi":
        return API_ID
    if resource_type in ("AWS::SecretsManager::Secret", "AWS::IAM::ManagedPolicy"):
        return arn_of(template, name)
    return f"{STACK}-{name}"


def arn_of(template: dict[str, Any], logical_id: str) -> str:
    """An ARN for a resource of the template, or for a role SAM generates (``<Id>Role``)."""
    if logical_id not in template["Resources"]:
        owner = logical_id.removesuffix("Role")
        assert template["Resources"][owner]["Type"] in ROLE_OWNERS, logical_id
        return role_arn(owner)
    resource = template["Resources"][logical_id]
    named = "Name" in resource.get("Properties", {})
    name = resolve(template, resource["Properties"]["Name"]) if named else f"{STACK}-{logical_id}"
    shape = ARN_SHAPES.get(resource["Type"], "arn:aws:unknown:{region}:{account}:{name}")
    return shape.format(region=REGION, account=ACCOUNT, name=name)


def role_arn(owner: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{STACK}-{owner}Role-0A1B2C3D4E5F"


# -- the evaluator ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    principal: tuple[str, str] = ("AWS", ADMIN_ARN)  # ("AWS" | "Service", identifier)


def wildcard(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in str(pattern))
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags) is not None


def arn_like(pattern: str, value: str) -> bool:
    """ArnEquals/ArnLike: each of the six colon-separated parts matched on its own."""
    parts, values = str(pattern).split(":", 5), value.split(":", 5)
    if len(parts) != 6 or len(values) != 6:
        return False
    return all(wildcard(p, v) for p, v in zip(parts, values, strict=True))


OPERATORS = {
    "StringEquals": lambda pattern, value: pattern == value,
    "StringLike": wildcard,
    "ArnEquals": arn_like,
    "ArnLike": arn_like,
}


def condition_holds(operator: str, key: str, expected: Any, request: Request) -> bool:
    present = {k.lower(): v for k, v in request.context.items()}
    values = present.get(key.lower())
    if operator == "Null":
        return (values is None) == (str(expected).lower() == "true")
    set_prefix, _, name = operator.rpartition(":")
    negated = "Not" in name
    match = OPERATORS[name.replace("Not", "")]
    allowed = [str(e) for e in listed(expected)]

    def one(value: str) -> bool:
        return any(match(pattern, value) for pattern in allowed)

    if set_prefix == "ForAllValues":
        assert not negated, operator
        return values is None or all(one(v) for v in values)
    if set_prefix == "ForAnyValue":
        assert not negated, operator
        return values is not None and any(one(v) for v in values)
    assert set_prefix == "", f"unknown set operator {operator}"
    if values is None:
        return negated
    assert len(values) == 1, f"{key} has several values: {operator} needs a set operator"
    return one(values[0]) != negated


def statement_matches(statement: Mapping[str, Any], request: Request) -> bool:
    assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement), statement
    if not any(
        wildcard(a, request.action, case_sensitive=False) for a in listed(statement["Action"])
    ):
        return False
    if not any(wildcard(r, request.resource) for r in listed(statement.get("Resource", "*"))):
        return False
    if "Principal" in statement:
        principal = statement["Principal"]
        kind, identifier = request.principal
        named = [] if principal == "*" else listed(principal.get(kind, []))
        if principal != "*" and "*" not in named and identifier not in named:
            return False
    return all(
        condition_holds(operator, key, expected, request)
        for operator, keys in statement.get("Condition", {}).items()
        for key, expected in keys.items()
    )


def allows(statements: Iterable[Mapping[str, Any]], request: Request) -> bool:
    """Allowed when an Allow statement matches and no Deny statement does."""
    matched = [s["Effect"] for s in statements if statement_matches(s, request)]
    return "Allow" in matched and "Deny" not in matched


def role_statements(template: dict[str, Any], owner: str) -> list[dict[str, Any]]:
    """Every statement of the role SAM makes for a function or state machine: inline ones as
    written, each SAM policy template as the wider statement above, both sides of an Fn::If."""
    statements: list[dict[str, Any]] = []
    for policy in role_policies(template, owner):
        if "Statement" in policy:
            statements += resolve(template, listed(policy["Statement"]))
        else:
            (name,) = policy
            assert name in SAM_POLICY_TEMPLATES, f"{owner}: teach this test what {name} grants"
            statements.append(SAM_POLICY_TEMPLATES[name])
    return statements


def policy_statements(template: dict[str, Any], logical_id: str, key: str) -> list[dict[str, Any]]:
    document = resolve(template, template["Resources"][logical_id]["Properties"][key])
    return listed(document["Statement"])


# -- 1. alarms reach the alarm topic ----------------------------------------------------------


def alarm_topics(template: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            props = resource["Properties"]
            for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
                for action in props.get(key, []):
                    yield logical_id, resolve(template, action)


def topic_policy(template: dict[str, Any], topic_arn: str) -> list[dict[str, Any]]:
    policies = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::SNS::TopicPolicy"
        and topic_arn in resolve(template, resource["Properties"]["Topics"])
    ]
    assert len(policies) == 1, f"{topic_arn}: topic policies {policies}"
    return policy_statements(template, policies[0], "PolicyDocument")


def alarm_publish(topic: str, alarm_arn: str, source_account: str = ACCOUNT) -> Request:
    return Request(
        action="sns:Publish",
        resource=topic,
        principal=("Service", "cloudwatch.amazonaws.com"),
        context={"aws:SourceArn": (alarm_arn,), "aws:SourceAccount": (source_account,)},
    )


def alarm_arn(name: str, *, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{STACK}-{name}-XYZ123"


def test_every_alarm_action_topic_admits_the_alarms_of_this_account(
    template: dict[str, Any],
) -> None:
    actions = list(alarm_topics(template))
    alarms = {alarm for alarm, _ in actions}
    assert {"TradingHaltedAlarm", "LedgerDriftAlarm", "OrderDLQAlarm", "NoIngestionAlarm"} <= alarms
    for alarm, topic in actions:
        statements = topic_policy(template, topic)
        assert allows(statements, alarm_publish(topic, alarm_arn(alarm))), alarm


def test_the_alarm_topic_refuses_alarms_of_other_accounts_and_regions(
    template: dict[str, Any],
) -> None:
    for alarm, topic in alarm_topics(template):
        statements = topic_policy(template, topic)
        elsewhere = alarm_arn(alarm, account=OTHER_ACCOUNT)
        assert not allows(statements, alarm_publish(topic, elsewhere, OTHER_ACCOUNT)), alarm
        assert not allows(statements, alarm_publish(topic, alarm_arn(alarm), OTHER_ACCOUNT))
        in_other_region = alarm_arn(alarm, region="us-east-1")
        assert not allows(statements, alarm_publish(topic, in_other_region)), alarm
        no_source = Request("sns:Publish", topic, principal=("Service", "cloudwatch.amazonaws.com"))
        assert not allows(statements, no_source), alarm
        anyone = Request(
            "sns:Publish", topic, principal=("AWS", f"arn:aws:iam::{OTHER_ACCOUNT}:root")
        )
        assert not allows(statements, anyone), alarm


def test_the_alarm_topic_policy_names_every_principal_and_every_source(
    template: dict[str, Any],
) -> None:
    (_, topic), *_ = alarm_topics(template)
    for statement in topic_policy(template, topic):
        assert statement["Principal"] not in ("*", {"AWS": "*"}), statement
        assert statement["Principal"].keys() == {"Service"}, statement
        keys = {key for keys in statement["Condition"].values() for key in keys}
        assert {"aws:SourceArn", "aws:SourceAccount"} <= keys, statement["Sid"]


def test_only_the_trading_state_rule_reaches_the_alarm_topic_through_eventbridge(
    template: dict[str, Any],
) -> None:
    (_, topic), *_ = alarm_topics(template)
    statements = topic_policy(template, topic)

    def from_rule(rule_arn: str, account: str = ACCOUNT) -> Request:
        return Request(
            "sns:Publish",
            topic,
            principal=("Service", "events.amazonaws.com"),
            context={"aws:SourceArn": (rule_arn,), "aws:SourceAccount": (account,)},
        )

    rule = arn_of(template, "TradingStateChangedRule")
    assert allows(statements, from_rule(rule))
    assert not allows(statements, from_rule(rule.replace("TradingStateChanged", "Other")))
    assert not allows(statements, from_rule(rule, OTHER_ACCOUNT))


# -- 3. no role can forge another's events ----------------------------------------------------


def order_workflow_events() -> set[tuple[str, str]]:
    """(source, detail-type) of every ``events:putEvents`` state of the order workflow."""
    states = json.loads((ROOT / "statemachines" / "order.asl.json").read_text())["States"]
    return {
        (entry["Source"], entry["DetailType"])
        for state in states.values()
        if state.get("Resource") == "arn:aws:states:::events:putEvents"
        for entry in state["Parameters"]["Entries"]
    }


# What each function's code publishes (tickstep.messages, tickstep.usecases): ingest its
# candles; risk a halt on a loss limit; execute a halt on an authentication error (set as the
# control source); the API the operator's halt and resume. Reconcile, signal and decide
# publish nothing.
PUBLISHERS: dict[str, set[tuple[str, str]]] = {
    "IngestFunction": {(SOURCE_INGEST, EVENT_CANDLES_CLOSED)},
    "RiskFunction": {(SOURCE_RISK, EVENT_TRADING_STATE_CHANGED)},
    "ExecuteFunction": {(SOURCE_CONTROL, EVENT_TRADING_STATE_CHANGED)},
    "ApiFunction": {(SOURCE_CONTROL, EVENT_TRADING_STATE_CHANGED)},
    "OrderStateMachine": order_workflow_events(),
}
FORGED_SOURCES = ("tickstep.signal", "tickstep.reconcile", "tickstep.api", "aws.events")
FORGED_TYPES = ("CandleClosed", "OrderApproved", "Anything")


def put_events(template: dict[str, Any], *entries: tuple[str | None, str | None]) -> Request:
    """One PutEvents call on the stack's bus: every entry's source and detail-type."""
    context = {
        key: tuple(v for v in values if v is not None)
        for key, values in (
            ("events:source", [source for source, _ in entries]),
            ("events:detail-type", [detail_type for _, detail_type in entries]),
        )
    }
    return Request(
        "events:PutEvents",
        arn_of(template, "EventBus"),
        {k: v for k, v in context.items() if v},
    )


def test_code_that_publishes_is_exactly_the_functions_listed_as_publishers() -> None:
    """The table above against the handlers: a function that builds an EventBus publishes."""
    with_a_bus = {
        f"{app.parent.name.capitalize()}Function"
        for app in (ROOT / "functions").glob("*/app.py")
        if "EventBus(" in app.read_text(encoding="utf-8")
    }
    assert with_a_bus == {owner for owner in PUBLISHERS if owner.endswith("Function")}
    assert {detail for _, detail in PUBLISHERS["OrderStateMachine"]} == {
        "OrderSubmitted",
        "OrderFilled",
        "OrderRejected",
        "OrderFailed",
    }


def test_each_role_may_publish_exactly_the_events_its_code_publishes(
    template: dict[str, Any],
) -> None:
    pairs = set().union(*PUBLISHERS.values())
    sources = {s for s, _ in pairs} | set(FORGED_SOURCES)
    detail_types = {d for _, d in pairs} | set(FORGED_TYPES)
    owners = role_owners(template)
    assert set(PUBLISHERS) <= set(owners)
    for owner in owners:
        statements = role_statements(template, owner)
        allowed = {
            pair
            for pair in product(sources, detail_types)
            if allows(statements, put_events(template, pair))
        }
        assert allowed == PUBLISHERS.get(owner, set()), owner


def test_the_signal_role_cannot_publish_a_candle_as_ingest(template: dict[str, Any]) -> None:
    candle = put_events(template, (SOURCE_INGEST, EVENT_CANDLES_CLOSED))
    assert not allows(role_statements(template, "SignalFunction"), candle)
    for owner in role_owners(template):
        expected = owner == "IngestFunction"
        assert allows(role_statements(template, owner), candle) is expected, owner


def test_a_batch_with_one_forged_entry_is_refused_whole(template: dict[str, Any]) -> None:
    ingest = role_statements(template, "IngestFunction")
    own = (SOURCE_INGEST, EVENT_CANDLES_CLOSED)
    assert allows(ingest, put_events(template, own, own))
    assert not allows(ingest, put_events(template, own, (SOURCE_CONTROL, "TradingStateChanged")))
    orders = role_statements(template, "OrderStateMachine")
    filled, failed = ("tickstep.orders", "OrderFilled"), ("tickstep.orders", "OrderFailed")
    assert allows(orders, put_events(template, filled, failed))
    assert not allows(orders, put_events(template, filled, (SOURCE_INGEST, EVENT_CANDLES_CLOSED)))


def test_an_entry_without_a_source_or_detail_type_is_refused(template: dict[str, Any]) -> None:
    """ForAllValues holds for a key the request lacks: the Null conditions close that gap."""
    ingest = role_statements(template, "IngestFunction")
    assert not allows(ingest, put_events(template, (None, EVENT_CANDLES_CLOSED)))
    assert not allows(ingest, put_events(template, (SOURCE_INGEST, None)))


def test_the_evaluator_allows_a_forgery_under_an_unconditioned_putevents_grant(
    template: dict[str, Any],
) -> None:
    """What the roles had before issue 10: the evaluator is not refusing everything."""
    unconditioned = [SAM_POLICY_TEMPLATES["EventBridgePutEventsPolicy"]]
    assert allows(unconditioned, put_events(template, (SOURCE_INGEST, EVENT_CANDLES_CLOSED)))
    without_null = [
        {**s, "Condition": {k: v for k, v in s["Condition"].items() if k != "Null"}}
        for s in role_statements(template, "IngestFunction")
        if s.get("Action") == "events:PutEvents"
    ]
    assert allows(without_null, put_events(template, (None, None)))


# -- 4. people: sign-in, the dashboard's bucket and distribution -----------------------------


def test_people_are_added_by_an_administrator_into_viewers_or_operators(
    template: dict[str, Any],
) -> None:
    pool = template["Resources"]["UserPool"]["Properties"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    groups = {
        r["Properties"]["GroupName"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Cognito::UserPoolGroup"
    }
    assert groups == {"viewers", "operators"}
    client = template["Resources"]["UserPoolClient"]["Properties"]
    assert client["AllowedOAuthFlows"] == ["code"]  # with PKCE: a public client, no secret
    assert client["GenerateSecret"] is False
    assert "implicit" not in client["AllowedOAuthFlows"]


def test_the_frontend_bucket_is_private_and_read_only_by_the_distribution(
    template: dict[str, Any],
) -> None:
    bucket = template["Resources"]["FrontendBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    statements = template["Resources"]["FrontendBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    allowed = [s for s in statements if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in allowed] == [{"Service": "cloudfront.amazonaws.com"}]
    assert allowed[0]["Action"] == "s3:GetObject"
    assert (
        "${FrontendDistribution}"
        in allowed[0]["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    )


def test_the_distribution_serves_the_page_and_routes_api_to_the_http_api_with_headers(
    template: dict[str, Any],
) -> None:
    config = template["Resources"]["FrontendDistribution"]["Properties"]["DistributionConfig"]
    origins = {o["Id"]: o for o in config["Origins"]}
    assert origins["frontend"]["OriginAccessControlId"] == {
        "Fn::GetAtt": ["FrontendOriginAccessControl", "Id"]
    }
    assert "${Api}" in origins["api"]["DomainName"]["Fn::Sub"]
    (api,) = config["CacheBehaviors"]
    assert (api["PathPattern"], api["TargetOriginId"]) == ("/api/*", "api")
    for behaviour in (config["DefaultCacheBehavior"], api):
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "FrontendHeadersPolicy"}
    headers = template["Resources"]["FrontendHeadersPolicy"]["Properties"][
        "ResponseHeadersPolicyConfig"
    ]["SecurityHeadersConfig"]
    csp = headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self';" in csp
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000


# -- 6. the exchange secret: its resource policy and its key ----------------------------------

READERS = ("ExecuteFunction", "ReconcileFunction")
OTHERS = ("IngestFunction", "SignalFunction", "RiskFunction", "ApiFunction")
EVERYTHING = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]  # AdministratorAccess


def get_secret(template: dict[str, Any], principal: str) -> Request:
    return Request(
        "secretsmanager:GetSecretValue",
        arn_of(template, "ExchangeSecret"),
        {"aws:PrincipalArn": (principal,)},
        principal=("AWS", principal),
    )


def test_only_execute_and_reconcile_may_read_the_secret_whatever_else_is_granted(
    template: dict[str, Any],
) -> None:
    """IAM and the resource policy together: an explicit Deny beats AdministratorAccess."""
    resource_policy = policy_statements(template, "ExchangeSecretPolicy", "ResourcePolicy")
    for owner in READERS:
        request = get_secret(template, role_arn(owner))
        assert allows(role_statements(template, owner) + resource_policy, request), owner
    for principal in [role_arn(o) for o in OTHERS] + [ADMIN_ARN, ROOT_ARN]:
        request = get_secret(template, principal)
        assert not allows(EVERYTHING + resource_policy, request), principal


def kms_allows(
    key_policy: list[dict[str, Any]], identity: list[dict[str, Any]], request: Request
) -> bool:
    """KMS: the key policy allows the principal itself, or allows the account (root), which
    hands the decision to the principal's IAM policies."""
    as_account = Request(request.action, request.resource, request.context, ("AWS", ROOT_ARN))
    delegated = allows(key_policy, as_account) and allows(identity, request)
    return allows(key_policy, request) or delegated


def test_the_secret_key_decrypts_only_for_execute_and_reconcile_through_secrets_manager(
    template: dict[str, Any],
) -> None:
    key = template["Resources"]["ExchangeSecretKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    secret = template["Resources"]["ExchangeSecret"]["Properties"]
    assert resolve(template, secret["KmsKeyId"]) == arn_of(template, "ExchangeSecretKey")
    key_policy = policy_statements(template, "ExchangeSecretKey", "KeyPolicy")
    key_arn, secret_arn = arn_of(template, "ExchangeSecretKey"), arn_of(template, "ExchangeSecret")

    def kms(action: str, principal: str, *, via: bool = True, secret: str = secret_arn) -> Request:
        """What Secrets Manager asks KMS on the caller's behalf (``via``), or a direct call."""
        context = {"aws:PrincipalArn": (principal,), "kms:EncryptionContext:SecretARN": (secret,)}
        if via:
            context["kms:ViaService"] = (f"secretsmanager.{REGION}.amazonaws.com",)
        return Request(action, key_arn, context, ("AWS", principal))

    for owner in READERS:
        role, identity = role_arn(owner), role_statements(template, owner)
        assert kms_allows(key_policy, identity, kms("kms:Decrypt", role)), owner
        assert not kms_allows(key_policy, identity, kms("kms:Decrypt", role, via=False)), owner
        elsewhere = secret_arn.replace("/exchange-", "/other-")
        assert not kms_allows(key_policy, identity, kms("kms:Decrypt", role, secret=elsewhere))
    for principal in [role_arn(o) for o in OTHERS] + [ADMIN_ARN]:
        assert not kms_allows(key_policy, EVERYTHING, kms("kms:Decrypt", principal)), principal
        assert not kms_allows(key_policy, EVERYTHING, kms("kms:CreateGrant", principal))
        assert not kms_allows(key_policy, EVERYTHING, kms("kms:ReEncryptFrom", principal))
    # The operator stores the value (a new data key, through Secrets Manager only) and
    # administers the key through IAM.
    assert kms_allows(key_policy, EVERYTHING, kms("kms:GenerateDataKey", ADMIN_ARN))
    assert not kms_allows(key_policy, EVERYTHING, kms("kms:GenerateDataKey", ADMIN_ARN, via=False))
    assert kms_allows(key_policy, EVERYTHING, kms("kms:PutKeyPolicy", ADMIN_ARN, via=False))
    for statement in key_policy:
        assert statement["Principal"] == {"AWS": ROOT_ARN}, statement["Sid"]


def test_risk_may_query_the_candles_it_checks_prices_against(template: dict[str, Any]) -> None:
    """Risk reads the latest stored candle itself (CandleStore.latest, a Query) rather than
    trusting the event's price; its role must name that table, not only a SAM template."""
    written = [s for s in role_statements(template, "RiskFunction") if s.get("Resource") != "*"]
    assert allows(written, Request("dynamodb:Query", arn_of(template, "CandlesTable")))
    assert not allows(written, Request("dynamodb:PutItem", arn_of(template, "CandlesTable")))
