"""The named checks of a deployed stack: each passes or fails with its reason.

``validate`` is the full check after a deploy; ``health_checks`` is its read-only subset
(no invocation, nothing written), cheap enough to run every minute.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tickstep.operations.stack import (
    ALIAS,
    HEALTHY_STATUSES,
    Clients,
    Stack,
    function_alias,
    function_environment,
    state_machine_alias,
)

HOUR_MS = 3_600_000
API_TOKEN_ENV = "TICKSTEP_API_TOKEN"
"""A bearer token for the API's protected routes; without it, requests are SigV4-signed."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    reason: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.reason}"


@dataclass
class Context:
    clients: Clients
    stack: Stack
    now_ms: int
    http: Callable[[str, dict[str, str]], int]
    """GET url with headers -> status code (tests hand in their own server's)."""


def _attempt(name: str, check: Callable[[], tuple[bool, str]]) -> Check:
    try:
        ok, reason = check()
    except Exception as exc:  # a check that cannot read fails, naming why
        return Check(name, False, f"{type(exc).__name__}: {exc}"[:300])
    return Check(name, ok, reason)


def _each(
    kind: str, resources: Mapping[str, str], check: Callable[[str], tuple[bool, str]]
) -> Iterator[Check]:
    """``check`` of each resource (its name or ARN), named ``kind:<its logical id>``."""
    for logical, physical in resources.items():
        yield _attempt(f"{kind}:{logical}", functools.partial(check, physical))


def stack_status(ctx: Context) -> Iterator[Check]:
    status = ctx.stack.status
    yield Check("stack-status", status in HEALTHY_STATUSES, status)


def aliases(ctx: Context) -> Iterator[Check]:
    def check(name: str) -> tuple[bool, str]:
        alias = function_alias(ctx.clients, name)
        if alias is None:
            return False, f"no alias {ALIAS}"
        version = alias["FunctionVersion"]
        weights = alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})
        if version == "$LATEST":
            return False, f"{ALIAS} points at $LATEST, not a published version"
        shift = f" (canary: {weights})" if weights else ""
        return True, f"{ALIAS} -> version {version}{shift}"

    yield from _each("alias", ctx.stack.functions, check)


def smoke_invoke(lambda_client: Any, function: str, qualifier: str = ALIAS) -> str | None:
    """Invoke ``function:qualifier`` with the smoke event (:data:`tickstep.wiring.SMOKE_EVENT`:
    every handler builds its dependencies and answers, reading and writing nothing). None
    when it answered so; else why not."""
    from tickstep.wiring import SMOKE_EVENT

    answer = lambda_client.invoke(
        FunctionName=function, Qualifier=qualifier, Payload=json.dumps(SMOKE_EVENT)
    )
    payload = answer["Payload"].read().decode()
    if answer.get("FunctionError"):
        return f"{answer['FunctionError']}: {payload[:200]}"
    try:
        answered = json.loads(payload)
    except ValueError:
        answered = None
    if not isinstance(answered, dict) or answered.get("ok") is not True:
        return f"answered {payload[:200]!r}, not the smoke answer"
    return None


def smoke(ctx: Context) -> Iterator[Check]:
    def check(name: str) -> tuple[bool, str]:
        error = smoke_invoke(ctx.clients("lambda"), name)
        return error is None, error or f"{ALIAS} answered the smoke event"

    yield from _each("smoke", ctx.stack.functions, check)


_TARGETS = re.compile(r'"(?:FunctionName|StateMachineArn)"\s*:\s*"([^"]+)"')


def state_machine_aliases(ctx: Context) -> Iterator[Check]:
    sfn = ctx.clients("stepfunctions")

    def check(arn: str) -> tuple[bool, str]:
        alias = state_machine_alias(ctx.clients, arn)
        if alias is None:
            return False, f"no alias {ALIAS}"
        routes = alias["routingConfiguration"]
        version_arn = max(routes, key=lambda r: r["weight"])["stateMachineVersionArn"]
        definition = sfn.describe_state_machine(stateMachineArn=version_arn)["definition"]
        unqualified = [t for t in _TARGETS.findall(definition) if not t.endswith(f":{ALIAS}")]
        if unqualified:
            return False, f"calls {unqualified[0]} instead of its alias"
        return True, f"{ALIAS} -> version {version_arn.rsplit(':', 1)[-1]}"

    yield from _each("state-machine-alias", ctx.stack.state_machines, check)


def alarms(ctx: Context) -> Iterator[Check]:
    def check() -> tuple[bool, str]:
        cw = ctx.clients("cloudwatch")
        firing = [
            a["AlarmName"]
            for page in cw.get_paginator("describe_alarms").paginate(
                AlarmNamePrefix=f"{ctx.stack.name}-", StateValue="ALARM"
            )
            for a in page["MetricAlarms"]
            if a["StateValue"] == "ALARM"  # moto ignores StateValue beside a prefix
        ]
        return not firing, f"in ALARM: {', '.join(firing)}" if firing else "none in ALARM"

    yield _attempt("alarms", check)


def dead_letter_depths(clients: Clients, queues: dict[str, str]) -> dict[str, int]:
    sqs = clients("sqs")
    depths = {}
    for logical, url in queues.items():
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        depths[logical] = int(attrs["ApproximateNumberOfMessages"])
    return depths


def dead_letters(ctx: Context) -> Iterator[Check]:
    def check() -> tuple[bool, str]:
        depths = dead_letter_depths(ctx.clients, ctx.stack.dead_letter_queues)
        full = {k: v for k, v in depths.items() if v}
        return not full, f"messages waiting: {full}" if full else f"{len(depths)} queues empty"

    yield _attempt("dead-letters", check)


def _pipeline_environment(ctx: Context) -> dict[str, str]:
    """The deployed configuration, as the ingest function has it (tables, markets, mode)."""
    ingest = ctx.stack.functions.get("IngestFunction")
    if ingest is None:
        raise LookupError("the stack has no IngestFunction")
    return function_environment(ctx.clients, ingest)


def _markets(env: dict[str, str]) -> list[Any]:
    from tickstep.models import Market

    return [Market.model_validate(m["market"]) for m in json.loads(env["MARKETS"])]


def candles(ctx: Context) -> Iterator[Check]:
    def check() -> tuple[bool, str]:
        from tickstep.stores import CandleStore
        from tickstep.usecases.health import candle_age

        env = _pipeline_environment(ctx)
        store = CandleStore(ctx.clients("dynamodb"), env["CANDLES_TABLE"])
        ages = [candle_age(m, store.latest_timestamp(m), ctx.now_ms) for m in _markets(env)]
        stale = [f"{a['market']} ({a.get('reason') or str(a['age_ms']) + ' ms old'})" for a in ages]
        stale = [s for s, a in zip(stale, ages, strict=True) if not a["fresh"]]
        return not stale, f"stale: {', '.join(stale)}" if stale else f"{len(ages)} markets fresh"

    yield _attempt("candles", check)


def trading_state(ctx: Context) -> Iterator[Check]:
    def check() -> tuple[bool, str]:
        from tickstep.models import TradingState
        from tickstep.stores import ControlStore

        table = _pipeline_environment(ctx)["CONTROL_TABLE"]
        record = ControlStore(ctx.clients("dynamodb"), table).get()
        reason = f"{record.state.value} ({record.reason})" if record.reason else record.state.value
        return record.state is not TradingState.HALTED, reason

    yield _attempt("trading-state", check)


def recent_failures(ctx: Context) -> Iterator[Check]:
    sfn, cw = ctx.clients("stepfunctions"), ctx.clients("cloudwatch")
    since_ms = ctx.now_ms - HOUR_MS

    def check(arn: str) -> tuple[bool, str]:
        kind = sfn.describe_state_machine(stateMachineArn=arn).get("type", "STANDARD")
        if kind == "EXPRESS":  # Express executions cannot be listed: their metric
            points = cw.get_metric_statistics(
                Namespace="AWS/States",
                MetricName="ExecutionsFailed",
                Dimensions=[{"Name": "StateMachineArn", "Value": arn}],
                StartTime=since_ms / 1000,
                EndTime=ctx.now_ms / 1000,
                Period=3600,
                Statistics=["Sum"],
            )["Datapoints"]
            failed = int(sum(p["Sum"] for p in points))
        else:
            listed = sfn.list_executions(stateMachineArn=arn, statusFilter="FAILED")
            failed = sum(
                1
                for e in listed["executions"]
                if e.get("stopDate") and e["stopDate"].timestamp() * 1000 >= since_ms
            )
        return failed == 0, f"{failed} failed in the last hour"

    yield from _each("failed-executions", ctx.stack.state_machines, check)


def _signed_headers(ctx: Context, url: str) -> dict[str, str]:
    token = os.environ.get(API_TOKEN_ENV)
    if token:
        return {"Authorization": f"Bearer {token}"}
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method="GET", url=url)
    credentials = ctx.clients.session.get_credentials()
    SigV4Auth(credentials, "execute-api", ctx.clients.session.region_name).add_auth(request)
    return dict(request.headers.items())


def api(ctx: Context, *, authenticated: bool = True) -> Iterator[Check]:
    base = ctx.stack.outputs.get("ApiUrl", "").rstrip("/")

    def health() -> tuple[bool, str]:
        status = ctx.http(f"{base}/api/health", {})
        return status == 200, f"GET /api/health answered {status}"

    yield _attempt("api-health", health)
    if not authenticated:
        return

    def refuses() -> tuple[bool, str]:
        status = ctx.http(f"{base}/api/status", {})
        return status in (401, 403), f"unauthenticated GET /api/status answered {status}"

    def answers() -> tuple[bool, str]:
        url = f"{base}/api/status"
        status = ctx.http(url, _signed_headers(ctx, url))
        return status == 200, f"authenticated GET /api/status answered {status}"

    yield _attempt("api-refuses-unauthenticated", refuses)
    yield _attempt("api-answers-authenticated", answers)


def exchange_secret(ctx: Context) -> Iterator[Check]:
    def check() -> tuple[bool, str]:
        env = _pipeline_environment(ctx)
        mode = env.get("TRADING_MODE", "paper")
        if mode == "paper":
            return True, "paper mode needs no secret"
        execute = ctx.stack.functions.get("ExecuteFunction", "")
        arn = function_environment(ctx.clients, execute).get("EXCHANGE_SECRET_ARN", "")
        if not arn:
            return False, f"{mode} mode but the execute function names no secret"
        described = ctx.clients("secretsmanager").describe_secret(SecretId=arn)
        stages = described.get("VersionIdsToStages", {})
        has_value = any("AWSCURRENT" in s for s in stages.values())
        return has_value, "value set" if has_value else "no value: put-secret-value first"

    yield _attempt("exchange-secret", check)


def http_get(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def now_ms() -> int:
    return int(time.time() * 1000)


def validate(ctx: Context) -> list[Check]:
    return [
        *stack_status(ctx),
        *aliases(ctx),
        *smoke(ctx),
        *state_machine_aliases(ctx),
        *alarms(ctx),
        *dead_letters(ctx),
        *candles(ctx),
        *trading_state(ctx),
        *recent_failures(ctx),
        *api(ctx),
        *exchange_secret(ctx),
    ]


def health_checks(ctx: Context) -> list[Check]:
    """Read-only: nothing is invoked, nothing written."""
    return [
        *stack_status(ctx),
        *alarms(ctx),
        *dead_letters(ctx),
        *candles(ctx),
        *trading_state(ctx),
        *api(ctx, authenticated=False),
    ]
