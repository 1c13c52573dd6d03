"""What the dashboard reads besides the stores, on AWS: the deployment's alarms in ALARM,
its dead-letter queues' depths, the release it runs, and each order's execution in the Step
Functions console. Every adapter takes its boto3 client (moto-backed in tests)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tickstep.models import Market
from tickstep.ports import LedgerEntry
from tickstep.usecases.dashboard import Operations

if TYPE_CHECKING:
    from tickstep.settings import ApiSettings


def alarms_in_alarm(cloudwatch: Any, prefix: str | None) -> Callable[[], list[str]]:
    def alarms() -> list[str]:
        kwargs: dict[str, Any] = {"StateValue": "ALARM"}
        if prefix:
            kwargs["AlarmNamePrefix"] = prefix
        names: list[str] = []
        for page in cloudwatch.get_paginator("describe_alarms").paginate(**kwargs):
            names += [a["AlarmName"] for a in page.get("MetricAlarms", [])]
            names += [a["AlarmName"] for a in page.get("CompositeAlarms", [])]
        return sorted(names)

    return alarms


def dead_letter_depths(sqs: Any, urls: list[str]) -> Callable[[], dict[str, int]]:
    def depths() -> dict[str, int]:
        found: dict[str, int] = {}
        for url in urls:
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            found[url.rsplit("/", 1)[-1]] = int(attributes["ApproximateNumberOfMessages"])
        return found

    return depths


def execution_name(entry: LedgerEntry) -> str:
    """The order workflow's execution name, as the decide workflow's NameOrderExecution
    state makes it (the short form when the long one passes 80 characters)."""
    market = entry.market
    base, quote = market.symbol.split("/")
    tail = f"{entry.candle_time}-{entry.side.value}-{entry.intent_id}"
    name = f"{market.exchange}-{base}-{quote}-{market.timeframe}-{tail}"
    return name if len(name) <= 80 else tail


def console_url(state_machine_arn: str) -> Callable[[LedgerEntry], str | None]:
    """The order's execution in the Step Functions console, in the stack's own region."""
    _, _, _, region, account, _, machine = state_machine_arn.split(":", 6)
    prefix = f"arn:aws:states:{region}:{account}:execution:{machine}:"

    def url(entry: LedgerEntry) -> str | None:
        if entry.intent is None:  # adopted by reconcile: no workflow ran it
            return None
        arn = prefix + execution_name(entry)
        return (
            f"https://{region}.console.aws.amazon.com/states/home?region={region}"
            f"#/v2/executions/details/{arn}"
        )

    return url


def operations(settings: ApiSettings, cloudwatch: Any, sqs: Any, ssm: Any) -> Operations:
    return Operations(
        alarms=alarms_in_alarm(cloudwatch, settings.alarm_name_prefix),
        dead_letters=dead_letter_depths(sqs, settings.queue_urls()),
        release=deployed_release(ssm, settings.release_parameter, settings.function_version),
        execution_url=console_url(settings.order_state_machine_arn)
        if settings.order_state_machine_arn
        else None,
    )


def deployed_release(
    ssm: Any, parameter: str | None, api_version: str | None
) -> Callable[[], dict[str, str]]:
    """The release deploy-backend.sh or rollback-backend.sh recorded last (its id, kind,
    commit, time, who, and the version each function's alias runs), and the version this API
    function runs. No release recorded yet (a stack deployed by hand) shows as such."""

    def release() -> dict[str, str]:
        shown = {"api": api_version} if api_version else {}
        if parameter is None:
            return shown
        try:
            value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            return {**shown, "release": "none recorded"}
        recorded = json.loads(value)
        shown |= {k: str(recorded[k]) for k in ("id", "kind", "commit", "time", "who")}
        functions = recorded.get("functions", {})
        shown |= {name.removesuffix("Function"): str(v) for name, v in sorted(functions.items())}
        return shown

    return release


def last_close_price(_: Market) -> Decimal | None:
    """On AWS the mark price is the last stored close (the API never calls an exchange)."""
    return None
