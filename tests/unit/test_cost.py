"""The cost model's monitoring and tracing lines (issue 11), priced from the real template."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tickstep.cost import (
    AWS_CALL_LATENCY_MS,
    DEFAULT_CALL_LATENCY_MS,
    MONITORING,
    Fixed,
    PerTick,
    Scheduled,
    estimate,
    fixed_from_template,
    modelled_duration_ms,
    per_tick_from_report,
)
from tickstep.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
REPORT = {"lambda": {"IngestFunction": {"p50_ms": 900}, "ReconcileFunction": {"p50_ms": 1200}}}


def per_tick(orders_per_decision: float = 0.01) -> PerTick:
    functions = ("SignalFunction", "RiskFunction", "ExecuteFunction")
    return PerTick(
        lambda_invocations={
            "SignalFunction": 1.0,
            "RiskFunction": 0.1,
            "ExecuteFunction": orders_per_decision,
        },
        lambda_duration_ms=dict.fromkeys(functions, 50.0),
        lambda_memory_mb=dict.fromkeys(functions, 512),
        decide_duration_ms=60.0,
        standard_transitions=0.04,
        order_events=orders_per_decision,
        sqs_requests=0.03,
        dynamodb_writes=1.1,
        dynamodb_reads=2.1,
    )


def test_every_alarm_and_each_log_metric_filter_of_the_template_is_priced() -> None:
    template = load_template(ROOT / "template.yaml")
    resources = template["Resources"].values()
    alarms = sum(1 for r in resources if r["Type"] == "AWS::CloudWatch::Alarm")
    filters = sum(1 for r in resources if r["Type"] == "AWS::Logs::MetricFilter")
    fixed = fixed_from_template(template, REPORT)
    assert (fixed.alarms, fixed.custom_metrics, fixed.dashboards) == (alarms, 10 + filters, 1)
    listed = estimate(per_tick(), fixed, markets=20, timeframe="1m")
    expected = Decimal("0.10") * alarms + Decimal("0.30") * (10 + filters) + Decimal("3.00")
    assert listed.breakdown[MONITORING] == expected
    free = estimate(per_tick(), fixed, markets=20, timeframe="1m", free_tier=True)
    beyond = Decimal("0.10") * (alarms - 10) + Decimal("0.30") * filters
    assert free.breakdown[MONITORING] == beyond


def test_tracing_prices_one_trace_per_traced_invocation_beyond_the_free_tier() -> None:
    fixed = Fixed(ingest=Scheduled(43_200, 1500.0), reconcile=Scheduled(2_880, 2000.0))
    ticks = 43_200 * 20
    orders = 0.01 * ticks
    traces = 43_200 + 2_880 + 2 * orders
    listed = estimate(per_tick(), fixed, markets=20, timeframe="1m")
    assert listed.breakdown["xray"] == Decimal(repr(traces)) * Decimal("5.00") / 1_000_000
    free = estimate(per_tick(), fixed, markets=20, timeframe="1m", free_tier=True)
    assert free.breakdown["xray"] == 0  # under 100,000 traces a month
    busy = estimate(per_tick(0.2), fixed, markets=20, timeframe="1m", free_tier=True)
    assert busy.breakdown["xray"] > 0
    untraced = Fixed(traced=False)
    assert estimate(per_tick(), untraced, markets=20, timeframe="1m").breakdown["xray"] == 0


def test_modelled_duration_replaces_the_time_in_aws_calls_with_their_published_latency() -> None:
    calls = {"dynamodb:Query": 2, "events:PutEvents": 1, "kinesis:PutRecord": 1}
    modelled = modelled_duration_ms(40.0, 25.0, calls)
    latency = 2 * AWS_CALL_LATENCY_MS["dynamodb"] + AWS_CALL_LATENCY_MS["events"]
    assert modelled == 15.0 + latency + DEFAULT_CALL_LATENCY_MS
    assert modelled_duration_ms(5.0, 5.0, {}) == 0.0  # no compute, no call
    assert AWS_CALL_LATENCY_MS["dynamodb"] < 10.0 + 1e-9  # "single-digit milliseconds"


def _report(signal: dict[str, float]) -> dict[str, object]:
    return {
        "lambda": {
            "SignalFunction": {"invocations": 100, **signal},
            "RiskFunction": {"invocations": 5, "p50_ms": 10.0, "p50_modelled_ms": 60.0},
        },
        "orders": {"intents": 2},
        "state_transitions": {"OrderStateMachine": 8},
    }


def test_per_tick_prices_the_modelled_duration_and_keeps_the_local_one_beside_it() -> None:
    modelled = per_tick_from_report(_report({"p50_ms": 8.0, "p50_modelled_ms": 12.0}), {})
    assert modelled.lambda_duration_ms == {"SignalFunction": 12.0, "RiskFunction": 60.0}
    assert modelled.lambda_duration_local_ms == {"SignalFunction": 8.0, "RiskFunction": 10.0}
    older = per_tick_from_report(_report({"p50_ms": 8.0}), {})  # a report before the model
    assert older.lambda_duration_ms["SignalFunction"] == 8.0
    fast = estimate(
        per_tick_from_report(_report({"p50_ms": 8.0}), {}), Fixed(), markets=20, timeframe="1m"
    )
    slow = estimate(modelled, Fixed(), markets=20, timeframe="1m")
    assert slow.breakdown["lambda"] > fast.breakdown["lambda"]
