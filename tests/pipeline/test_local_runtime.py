"""The whole pipeline offline: template.yaml in moto, the real ASL and handlers."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline.conftest import ROOT, busy_config, replay
from tickstep.config import load_config_dict
from tickstep.local.cloud import LocalCloud


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    redelivered: dict[str, Any] = {}

    def redeliver_an_ordered_candle(cloud: LocalCloud) -> None:
        """Publish again a CandlesClosed that led to an order: at-least-once delivery."""
        executions = cloud.sfn.list_executions(
            stateMachineArn=cloud.state_machines["OrderStateMachine"]
        )["executions"]
        first = cloud.sfn.describe_execution(executionArn=executions[-1]["executionArn"])
        intent = json.loads(first["input"])["intent"]
        history = cloud.sfn.list_executions(
            stateMachineArn=cloud.state_machines["DecideStateMachine"]
        )["executions"]
        for execution in history:
            event = json.loads(
                cloud.sfn.describe_execution(executionArn=execution["executionArn"])["input"]
            )
            times = [c["candle"]["timestamp"] for c in event["detail"]["candles"]]
            if intent["candle_time"] in times:
                cloud.events.put_events(
                    Entries=[
                        {
                            "Source": event["source"],
                            "DetailType": event["detail-type"],
                            "Detail": json.dumps(event["detail"]),
                            "EventBusName": cloud.resolver.refs["EventBus"],
                        }
                    ]
                )
                redelivered["intent_id"] = intent["intent_id"]
                return
        raise AssertionError("no decide execution for the ordered candle")

    report = replay(load_config_dict(busy_config()), 40, redeliver_an_ordered_candle)
    report["redelivered"] = redelivered
    return report


def test_local_run_when_replaying_then_every_execution_succeeds_and_none_is_left(
    run: dict[str, Any],
) -> None:
    assert run["non_terminal_executions"] == 0
    for machine, by_status in run["executions"].items():
        assert set(by_status) == {"SUCCEEDED"}, (machine, by_status)
    assert run["executions"]["OrderStateMachine"]["SUCCEEDED"] > 0


def test_local_run_goes_through_hold_buy_sell_fills_and_a_risk_denial(
    run: dict[str, Any],
) -> None:
    assert run["signals"]["Hold"] > 0
    assert run["signals"]["OrderStarted"] > 0
    assert any(k.startswith("denied:") for k in run["risk_decisions"]), run["risk_decisions"]
    assert run["orders"]["by_status"].get("filled", 0) >= 2
    assert run["fills"] == run["orders"]["exchange_orders"]
    assert Decimal(run["fees"]) > 0


def test_local_run_when_a_candle_is_delivered_twice_then_one_exchange_order(
    run: dict[str, Any],
) -> None:
    assert run["redelivered"].get("intent_id")
    orders = run["orders"]
    assert orders["intents_with_multiple_exchange_orders"] == 0
    assert orders["exchange_orders"] == orders["intents"]
    assert orders["ledger_mismatches"] == 0, orders["mismatch_details"]
    # The redelivered candle ran the decide workflow a second time (41 for 40 candles); risk
    # or the order workflow's named start stopped it, so no second order workflow ran.
    assert sum(run["signals"].values()) == 41
    assert run["executions"]["OrderStateMachine"]["SUCCEEDED"] == orders["intents"]


def test_local_run_report_has_the_documented_fields(run: dict[str, Any]) -> None:
    for key in (
        "executions",
        "non_terminal_executions",
        "orders",
        "dead_letters",
        "lambda",
        "state_transitions",
        "pnl",
    ):
        assert key in run
    assert set(run["dead_letters"]) >= {"OrderDLQ", "DecideRuleDLQ"}
    assert sum(run["dead_letters"].values()) == 0
    assert run["lambda"]["SignalFunction"]["invocations"] >= 40
    assert run["state_transitions"]["DecideStateMachine"] > 0


def test_local_run_models_each_function_on_lambda_with_its_calls_published_latency(
    run: dict[str, Any],
) -> None:
    """Every invocation's duration is also modelled on Lambda: its own compute plus the
    published latency of each AWS call it made (here, moto answered them in-process)."""
    from tickstep.cost import AWS_CALL_LATENCY_MS

    for name, stats in run["lambda"].items():
        assert stats["p50_modelled_ms"] > 0, name
    # Signal reads its candles (a Query) and perhaps writes the signal: at least one call.
    assert run["lambda"]["SignalFunction"]["p50_modelled_ms"] >= AWS_CALL_LATENCY_MS["dynamodb"]
    # Ingest writes candles, moves its cursor and publishes: several calls each time.
    ingest = run["lambda"]["IngestFunction"]
    assert ingest["p50_modelled_ms"] >= 3 * AWS_CALL_LATENCY_MS["dynamodb"]


def test_sdk_time_when_calls_are_made_inside_then_counts_them_and_their_time() -> None:
    from tickstep.local.recorder import sdk_time

    with LocalCloud(ROOT, {"TradingMode": "paper"}) as cloud:
        table = next(iter(cloud.tables.values()))
        cloud.ddb.describe_table(TableName=table)  # outside any invocation: not counted
        with sdk_time() as spent:
            cloud.ddb.describe_table(TableName=table)
            cloud.ddb.scan(TableName=table)
            cloud.sqs.list_queues()
        assert dict(spent.calls) == {
            "dynamodb:DescribeTable": 1,
            "dynamodb:Scan": 1,
            "sqs:ListQueues": 1,
        }
        assert spent.seconds > 0


def test_moto_hooks_the_runtime_patches_are_where_it_expects() -> None:
    """Pinned moto 5.2.5: fail loudly if the Lambda or Step Functions hooks move."""
    from importlib.metadata import version

    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.events.models import Rule
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service,
    )

    from tickstep.local import moto_patches

    assert version("moto") == moto_patches.MOTO_VERSION  # the release the patches are for
    assert callable(LambdaSimpleBackend.invoke)
    assert callable(Rule.send_to_targets)
    assert hasattr(state_task_service.StateTaskService, "_normalise_parameters")


def test_moto_execution_when_listed_before_its_worker_starts_then_running() -> None:
    """moto adds an execution, then starts it; ListExecutions in between must not crash."""
    from moto.stepfunctions.parser.backend.execution import Execution

    being_started: Any = Execution.__new__(Execution)
    being_started.exec_status = None
    with pytest.raises(AttributeError):
        _ = being_started.status
    with LocalCloud(ROOT, {"TradingMode": "paper"}):
        assert being_started.status == "RUNNING"


def test_cost_cli_when_given_a_measured_report_then_prices_it_and_scales_with_markets(
    run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tickstep.cli import main

    path = tmp_path / "report.json"
    path.write_text(json.dumps(run))
    estimates = {}
    for markets in (1, 20):
        assert (
            main(
                [
                    "cost",
                    "--markets",
                    str(markets),
                    "--timeframe",
                    "1m",
                    "--report",
                    str(path),
                    "--json",
                ]
            )
            == 0
        )
        estimates[markets] = json.loads(capsys.readouterr().out)
    small, large = estimates[1], estimates[20]
    assert large["ticks_per_month"] == 20 * small["ticks_per_month"] == 20 * 43_200
    assert large["monthly_usd"] > small["monthly_usd"] > 0
    # Per-market work grows with markets; the decide workflow and the ingest event are one per
    # tick whatever the number of markets (a Map over them, one CandlesClosed).
    assert large["breakdown"]["lambda"] > small["breakdown"]["lambda"]
    express, events = "step_functions_express", "eventbridge"
    assert large["breakdown"][express] <= 2 * small["breakdown"][express]
    assert large["breakdown"][events] < 20 * small["breakdown"][events]
    assert large["monthly_usd_with_free_tier"] < large["monthly_usd"]
    assert round(sum(large["breakdown"].values()), 2) == pytest.approx(
        large["monthly_usd"], abs=0.02
    )


def test_local_cli_when_run_then_exits_0_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tickstep.cli import main

    report_path = tmp_path / "local.json"
    code = main(
        ["local", "--candles", "3", "--report", str(report_path), "--log", str(tmp_path / "l")]
    )
    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["ticks"] == 3
    assert report["executions"]["DecideStateMachine"] == {"SUCCEEDED": 3}  # one per tick
    assert sum(report["signals"].values()) == 9  # three markets decided in each
    assert "executions by state machine and status" in capsys.readouterr().out


def test_decide_when_one_market_fails_then_the_others_are_decided_and_the_execution_fails() -> None:
    """Fault isolation in the real ASL: a market the signal function rejects (not configured)
    ends in MarketFailed; the configured market in the same event is still decided."""

    def publish_a_mixed_tick(cloud: LocalCloud) -> None:
        good = json.loads((ROOT / "events" / "signal.json").read_text())
        good["market"]["exchange"] = "paper"  # the configured market of busy_config()
        unknown = {**good, "market": {**good["market"], "symbol": "DOGE/BTC"}}
        cloud.events.put_events(
            Entries=[
                {
                    "Source": "tickstep.ingest",
                    "DetailType": "CandlesClosed",
                    "Detail": json.dumps({"candles": [good, unknown]}),
                    "EventBusName": cloud.resolver.refs["EventBus"],
                }
            ]
        )

    report = replay(load_config_dict(busy_config()), 1, publish_a_mixed_tick)

    assert report["executions"]["DecideStateMachine"] == {"SUCCEEDED": 1, "FAILED": 1}
    assert report["signals"]["MarketFailed"] == 1
    # The market that failed is in the decide dead-letter queue with its error.
    assert report["dead_letters"]["DecideRuleDLQ"] == 1
    assert report["dead_letter_reasons"]["DecideRuleDLQ"] == {"UnknownMarketError": 1}
    assert sum(report["signals"].values()) == 3  # the replayed tick, and both markets here
    assert report["non_terminal_executions"] == 0
