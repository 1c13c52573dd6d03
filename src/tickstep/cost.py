"""What tickstep costs on AWS per month, from counts a local run measured and list prices.

The offline runtime counts, per candle tick, the Lambda invocations and their durations, the
state transitions of each workflow and the events and messages sent. This module scales those
to ``markets`` markets on a ``timeframe`` for a 30-day month and prices them.

Prices: AWS public list prices, region us-east-1 (N. Virginia), on-demand, x86_64, as
published on the services' pricing pages and written down here on 2026-11-26. They are
list prices without the free tier; ``free_tier=True`` subtracts the always-free monthly
allowances (Lambda 1M requests and 400,000 GB-s, SQS 1M requests, Step Functions 4,000
Standard transitions, CloudWatch 10 alarms, 10 metrics, 5 GB of logs and 3 dashboards, X-Ray
100,000 traces recorded).

Monitoring (issue 11): every alarm of the template is priced ($0.10 each, standard resolution,
one metric each); custom metrics are the functions' own (:data:`FUNCTION_METRICS`) plus one per
log metric filter; X-Ray records one trace per traced invocation off the per-market path
(ingest, reconcile, execute, and the order workflow), since test and production trace
(``EnableTracing=true`` in samconfig.toml) and signal, risk and the decide workflow do not.

Lambda durations are what each function would bill on Lambda, not what it took here, where
every AWS call is answered by moto in-process (and waits for the GIL behind the Step
Functions interpreter's threads). The offline runtime times each invocation and the AWS SDK
calls inside it (tickstep.local.recorder.sdk_time); the modelled duration is the invocation's
own compute (its duration less the time inside SDK calls) plus, for each call, the latency
the service publishes (:data:`AWS_CALL_LATENCY_MS`). Both figures are in the local report
(``p50_ms``, ``p50_modelled_ms``) and docs/decisions/0003-cost.md compares them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tickstep.models import timeframe_ms

REGION = "us-east-1"
PRICES_AS_OF = "2026-11-26"
MONTH_MS = 30 * 86_400_000

PRICES: dict[str, Decimal] = {
    "lambda_request": Decimal("0.20") / 1_000_000,
    "lambda_gb_second": Decimal("0.0000166667"),
    "sfn_standard_transition": Decimal("0.025") / 1000,
    "sfn_express_request": Decimal("1.00") / 1_000_000,
    "sfn_express_gb_second": Decimal("0.00001667"),
    "eventbridge_custom_event": Decimal("1.00") / 1_000_000,
    "eventbridge_archive_gb": Decimal("0.10"),
    "sqs_fifo_request": Decimal("0.50") / 1_000_000,
    "sqs_standard_request": Decimal("0.40") / 1_000_000,
    "dynamodb_write_unit": Decimal("0.625") / 1_000_000,
    "dynamodb_read_unit": Decimal("0.125") / 1_000_000,
    "dynamodb_gb_month": Decimal("0.25"),
    "secret_month": Decimal("0.40"),
    "secret_api_call": Decimal("0.05") / 10_000,
    "logs_ingest_gb": Decimal("0.50"),
    "logs_storage_gb_month": Decimal("0.03"),
    "alarm_month": Decimal("0.10"),
    "custom_metric_month": Decimal("0.30"),
    "dashboard_month": Decimal("3.00"),
    "xray_trace_recorded": Decimal("5.00") / 1_000_000,
}

AWS_CALL_LATENCY_MS: dict[str, float] = {
    "dynamodb": 10.0,
    "sqs": 20.0,
    "events": 20.0,
    "stepfunctions": 20.0,
    "secretsmanager": 20.0,
}
"""Latency of one API call from a Lambda function in the same region, by service, for the
modelled durations. DynamoDB publishes "single-digit millisecond" latency: modelled at the top
of that, 10 ms. SQS publishes typical SendMessage, ReceiveMessage and DeleteMessage latencies
"in the tens or low hundreds of milliseconds" (Amazon SQS FAQs): 20 ms. EventBridge
PutEvents, Step Functions (SendTask*) and Secrets Manager publish no per-call figure: 20 ms,
as SQS. A service not listed: :data:`DEFAULT_CALL_LATENCY_MS`."""
DEFAULT_CALL_LATENCY_MS = 20.0


def modelled_duration_ms(local_ms: float, sdk_ms: float, calls: dict[str, int]) -> float:
    """An invocation's duration on Lambda: what it took here (``local_ms``) without the time
    spent inside AWS SDK calls (``sdk_ms``, moto's), plus each call's published latency.
    ``calls``: ``service:Operation`` -> count (tickstep.local.recorder.SdkTime.calls)."""
    latency = sum(
        AWS_CALL_LATENCY_MS.get(call.split(":", 1)[0], DEFAULT_CALL_LATENCY_MS) * n
        for call, n in calls.items()
    )
    return max(0.0, local_ms - sdk_ms) + latency


FREE_TIER = {
    "lambda_requests": 1_000_000,
    "lambda_gb_seconds": 400_000,
    "sqs_requests": 1_000_000,
    "sfn_standard_transitions": 4_000,
    "alarms": 10,
    "custom_metrics": 10,
    "logs_gb": 5,
    "dashboards": 3,
    "xray_traces": 100_000,
}
FUNCTION_METRICS = 10
"""The custom metrics the functions emit through Powertools (tickstep namespace)."""


MONITORING = "cloudwatch_alarms_metrics_dashboards"
PLATFORM_LOG_BYTES = 350
"""What Lambda itself logs per invocation (START, END and REPORT lines), beyond the handler."""
MAP_CONCURRENCY = 10
"""The decide workflow's Map MaxConcurrency (statemachines/decide.asl.json)."""
CANDLES_PER_EVENT = 100
"""Markets per CandlesClosed event (tickstep.messages.CANDLES_PER_EVENT)."""
SQS_POLLS_PER_MONTH = 5 * 3 * 43_200
"""Lambda's SQS event source keeps about 5 pollers long-polling (20 s): 15 requests a minute."""


@dataclass(frozen=True)
class PerTick:
    """What deciding one market's closed candle costs, measured by a local run.

    The decide workflow runs once per tick for all markets (a Map), and ingestion publishes
    one event per tick: those scale with ticks, not markets, and :func:`estimate` adds them.
    """

    lambda_invocations: dict[str, float]
    """Function -> invocations per market decision (ingest is per schedule, not per market)."""
    lambda_duration_ms: dict[str, float]
    """Function -> median duration in ms on Lambda (modelled; Lambda bills per 1 ms)."""
    lambda_memory_mb: dict[str, int]
    decide_duration_ms: float
    """Time one market's iteration keeps the Express workflow running."""
    standard_transitions: float
    order_events: float
    """Outcome events per market decision (OrderFilled and the like)."""
    sqs_requests: float
    dynamodb_writes: float
    dynamodb_reads: float
    log_bytes: float = 600.0
    lambda_duration_local_ms: dict[str, float] = field(default_factory=dict)
    """Function -> median duration in ms measured here (moto answering the AWS calls), shown
    beside the modelled one; not priced."""


@dataclass(frozen=True)
class Scheduled:
    """A function run on a schedule, whatever the number of markets (ingest, reconcile)."""

    invocations_per_month: float
    duration_ms: float
    memory_mb: int = 512

    @property
    def gb_seconds(self) -> float:
        return self.invocations_per_month * self.duration_ms / 1000 * self.memory_mb / 1024


@dataclass(frozen=True)
class Fixed:
    """Monthly items that do not grow with ticks, from the template."""

    secrets: int = 0
    alarms: int = 0
    custom_metrics: int = 0
    dashboards: int = 0
    ingest: Scheduled = Scheduled(43_200, 1500.0)  # every minute
    reconcile: Scheduled = Scheduled(2_880, 2000.0)  # every 15 minutes
    secret_calls_per_month: float = 2 * 30 * 24 * 12
    """Execute and reconcile each refetch the cached secret at most every 5 minutes."""
    traced: bool = True
    """X-Ray on (test and production); the traced invocations are counted in estimate."""


@dataclass
class Estimate:
    markets: int
    timeframe: str
    ticks_per_month: float
    breakdown: dict[str, Decimal] = field(default_factory=dict)
    assumptions: dict[str, Any] = field(default_factory=dict)

    @property
    def monthly_usd(self) -> Decimal:
        return sum(self.breakdown.values(), Decimal(0)).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )

    @property
    def services_usd(self) -> Decimal:
        """Without the monitoring (alarms, custom metrics, dashboard): the services the
        pipeline runs on (Lambda, Step Functions, EventBridge, SQS, DynamoDB, Secrets
        Manager, CloudWatch Logs)."""
        return sum((v for k, v in self.breakdown.items() if k != MONITORING), Decimal(0)).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "monthly_usd": float(self.monthly_usd),
            "monthly_usd_services": float(self.services_usd),
            "markets": self.markets,
            "timeframe": self.timeframe,
            "ticks_per_month": self.ticks_per_month,
            "region": REGION,
            "prices_as_of": PRICES_AS_OF,
            "breakdown": {
                k: float(v.quantize(Decimal("0.0001"))) for k, v in self.breakdown.items()
            },
            "assumptions": self.assumptions,
        }


def _d(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def estimate(
    per_tick: PerTick, fixed: Fixed, *, markets: int, timeframe: str, free_tier: bool = False
) -> Estimate:
    """Scale per-market-tick counts to a month of ``markets`` markets and price them."""
    if markets < 1:
        raise ValueError("markets: at least 1")
    runs = MONTH_MS / timeframe_ms(timeframe)
    ticks = runs * markets
    p = PRICES
    requests = sum(per_tick.lambda_invocations.values()) * ticks
    gb_s = sum(
        per_tick.lambda_invocations[f]
        * ticks
        * max(per_tick.lambda_duration_ms[f], 1)
        / 1000
        * per_tick.lambda_memory_mb[f]
        / 1024
        for f in per_tick.lambda_invocations
    )
    scheduled_runs = fixed.ingest.invocations_per_month + fixed.reconcile.invocations_per_month
    requests += scheduled_runs
    gb_s += fixed.ingest.gb_seconds + fixed.reconcile.gb_seconds
    transitions = per_tick.standard_transitions * ticks
    sqs = per_tick.sqs_requests * ticks + SQS_POLLS_PER_MONTH
    log_gb = per_tick.log_bytes * ticks / 1e9
    alarms, metrics, dashboards = fixed.alarms, fixed.custom_metrics, fixed.dashboards
    traces = 0.0
    if fixed.traced:  # ingest, reconcile, execute and the order workflow: one trace each
        orders = per_tick.lambda_invocations.get("ExecuteFunction", 0.0) * ticks
        traces = scheduled_runs
        traces += 2 * orders
    if free_tier:
        requests = max(0.0, requests - FREE_TIER["lambda_requests"])
        gb_s = max(0.0, gb_s - FREE_TIER["lambda_gb_seconds"])
        transitions = max(0.0, transitions - FREE_TIER["sfn_standard_transitions"])
        sqs = max(0.0, sqs - FREE_TIER["sqs_requests"])
        log_gb = max(0.0, log_gb - FREE_TIER["logs_gb"])
        alarms = max(0, alarms - FREE_TIER["alarms"])
        metrics = max(0, metrics - FREE_TIER["custom_metrics"])
        dashboards = max(0, dashboards - FREE_TIER["dashboards"])
        traces = max(0.0, traces - FREE_TIER["xray_traces"])
    # One Express execution per tick; its Map decides up to MAP_CONCURRENCY markets at once.
    waves = -(-markets // MAP_CONCURRENCY)
    run_ms = max(100.0, per_tick.decide_duration_ms * waves)
    express_gb_s = runs * run_ms / 1000 * 64 / 1024  # billed at 64 MB, in 100 ms steps
    events = runs * -(-markets // CANDLES_PER_EVENT) + per_tick.order_events * ticks
    breakdown = {
        "lambda": _d(requests) * p["lambda_request"] + _d(gb_s) * p["lambda_gb_second"],
        "step_functions_express": _d(runs) * p["sfn_express_request"]
        + _d(express_gb_s) * p["sfn_express_gb_second"],
        "step_functions_standard": _d(transitions) * p["sfn_standard_transition"],
        "eventbridge": _d(events) * p["eventbridge_custom_event"],
        "sqs": _d(sqs) * p["sqs_fifo_request"],
        "dynamodb": _d(per_tick.dynamodb_writes * ticks) * p["dynamodb_write_unit"]
        + _d(per_tick.dynamodb_reads * ticks) * p["dynamodb_read_unit"],
        "secrets_manager": fixed.secrets * p["secret_month"]
        + (_d(fixed.secret_calls_per_month) * p["secret_api_call"] if fixed.secrets else 0),
        "cloudwatch_logs": _d(log_gb) * p["logs_ingest_gb"],
        "xray": _d(traces) * p["xray_trace_recorded"],
        MONITORING: alarms * p["alarm_month"]
        + metrics * p["custom_metric_month"]
        + dashboards * p["dashboard_month"],
    }
    return Estimate(
        markets=markets,
        timeframe=timeframe,
        ticks_per_month=ticks,
        breakdown=breakdown,
        assumptions={
            "free_tier": free_tier,
            "month_days": 30,
            "per_market_tick": per_tick.__dict__,
            "fixed": asdict(fixed),
        },
    )


def per_tick_from_report(report: dict[str, Any], memory_mb: dict[str, int]) -> PerTick:
    """Per-market-decision counts from a ``tickstep local --report`` document."""
    lam = report["lambda"]
    decisions = lam.get("SignalFunction", {}).get("invocations", 0)
    if decisions == 0:
        raise ValueError("report: no signal invocations, nothing to scale")
    per_decision = ("SignalFunction", "RiskFunction", "ExecuteFunction")
    invocations = {f: lam[f]["invocations"] / decisions for f in per_decision if f in lam}
    durations = {f: _billed_ms(lam[f]) for f in invocations}
    orders = report["orders"]["intents"] / decisions
    invocations_all = sum(f["invocations"] for f in lam.values())
    log_bytes = (
        float(report.get("lambda_log_bytes", 0)) + PLATFORM_LOG_BYTES * invocations_all
    ) / decisions
    return PerTick(
        lambda_invocations=invocations,
        lambda_duration_ms=durations,
        lambda_memory_mb={f: memory_mb.get(f, 256) for f in invocations},
        decide_duration_ms=sum(
            durations[f] * invocations[f] for f in durations if f != "ExecuteFunction"
        ),
        standard_transitions=report["state_transitions"].get("OrderStateMachine", 0) / decisions,
        order_events=orders,  # one outcome event per order
        sqs_requests=3.0 * orders,  # send, receive, delete
        dynamodb_writes=1.0 + 8.0 * orders,
        dynamodb_reads=2.0 + 10.0 * orders,
        log_bytes=log_bytes,
        lambda_duration_local_ms={f: float(lam[f]["p50_ms"]) for f in invocations},
    )


def _billed_ms(stats: dict[str, Any], default: float | None = None) -> float:
    """A function's median duration on Lambda from a local report: the modelled one (a report
    older than the model has only the local one)."""
    if not stats and default is not None:
        return default
    return float(stats.get("p50_modelled_ms", stats["p50_ms"]))


def _measured(default: Scheduled, stats: dict[str, Any]) -> Scheduled:
    """The scheduled function with its duration from a local report, if it ran there."""
    return replace(default, duration_ms=_billed_ms(stats, default.duration_ms))


def fixed_from_template(template: dict[str, Any], report: dict[str, Any]) -> Fixed:
    resources = template["Resources"].values()
    lam = report["lambda"]
    return Fixed(
        secrets=0,  # paper mode creates no secret; add 1 for sandbox or live ($0.40)
        alarms=sum(1 for r in resources if r["Type"] == "AWS::CloudWatch::Alarm"),
        custom_metrics=FUNCTION_METRICS
        + sum(1 for r in resources if r["Type"] == "AWS::Logs::MetricFilter"),
        dashboards=sum(1 for r in resources if r["Type"] == "AWS::CloudWatch::Dashboard"),
        ingest=_measured(Fixed.ingest, lam.get("IngestFunction", {})),
        reconcile=_measured(Fixed.reconcile, lam.get("ReconcileFunction", {})),
    )
