"""A small fault drill through the CLI: every fault on, nothing duplicated, nothing lost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tickstep.cli import main
from tickstep.local.cloud import LocalCloud
from tickstep.local.faults import (
    FAULTS,
    FaultInjector,
    FaultSpecError,
    parse_fault_spec,
    stable_key,
)

HIGH = dict.fromkeys(FAULTS, 0.3) | {
    "ddb-throttle": 0.05,  # per DynamoDB request: hundreds of them
    "malformed-event": 0.5,  # per tick: a dozen ticks, so that some surely happen
}


def run_drill(
    tmp_path: Path,
    faults: str,
    *,
    seed: int,
    intents: int,
    max_candles: int,
    more: tuple[str, ...] = (),
) -> tuple[int, dict[str, Any]]:
    """``tickstep drill`` through the CLI, writing its report and Lambda log in ``tmp_path``:
    the exit code and the report."""
    report_path = tmp_path / "drill.json"
    options = ["--seed", str(seed), "--intents", str(intents), "--max-candles", str(max_candles)]
    files = ["--report", str(report_path), "--log", str(tmp_path / "lambda.log")]
    code = main(["drill", "--faults", faults, *options, *more, *files])
    return code, json.loads(report_path.read_text())


def test_drill_when_every_fault_is_on_then_no_duplicate_no_mismatch_nothing_left(
    tmp_path: Path,
) -> None:
    spec = ",".join(f"{name}={p}" for name, p in HIGH.items())

    code, report = run_drill(tmp_path, spec, seed=11, intents=10, max_candles=300)

    orders = report["orders"]
    assert code == 0, {
        "orders": orders,
        "non_terminal_executions": report["non_terminal_executions"],
        "executions": report.get("executions"),
    }
    assert orders["intents"] >= 10
    assert orders["intents_with_multiple_exchange_orders"] == 0
    assert orders["ledger_mismatches"] == 0, orders["mismatch_details"]
    assert report["non_terminal_executions"] == 0
    injected = report["faults_injected"]
    assert injected.get("lambda-retry", 0) > 0
    assert injected.get("ddb-throttle", 0) > 0
    assert injected.get("release", 0) > 0  # deploys while orders were in flight
    # Every malformed event is in the decide dead-letter queue, with the reason it failed.
    malformed = injected.get("malformed-event", 0)
    reasons = report["dead_letter_reasons"].get("DecideRuleDLQ", {})
    assert malformed > 0
    assert reasons.get("ValidationError", 0) + reasons.get("UnknownMarketError", 0) >= malformed
    assert set(reasons) <= {"ValidationError", "UnknownMarketError"}  # and nothing else failed
    assert report["dead_letters"]["OrderDLQ"] == 0


def test_ddb_throttle_when_a_request_is_throttled_then_dynamodb_did_not_apply_it() -> None:
    """A throttled write is not carried out (the SDK sends it again); moto's own handler must
    not apply it behind the throttle, or a retried conditional write fails against itself."""
    import boto3
    from botocore.exceptions import ClientError

    root = Path(__file__).resolve().parents[2]
    faults = FaultInjector({"ddb-throttle": 1.0}, seed=1)
    with LocalCloud(root, {"TradingMode": "paper"}, faults=faults) as cloud:
        table = cloud.tables["IdempotencyTable"]
        handler_client = boto3.client("dynamodb")  # what the functions use: throttled
        with pytest.raises(ClientError, match="ThrottlingException"):
            handler_client.put_item(TableName=table, Item={"id": {"S": "k"}})
        attempts = faults.injected["ddb-throttle"]
        item = cloud.ddb.get_item(TableName=table, Key={"id": {"S": "k"}})
    assert attempts > 1  # the SDK retried the throttle
    assert "Item" not in item


def test_fault_rolls_when_keyed_then_the_same_per_seed_whatever_the_order() -> None:
    """Handlers roll from the Step Functions interpreter's threads, in no fixed order: a
    keyed roll depends on the seed, the fault, the key and its count, not on who came first."""
    keys = [f"ts{i:030x}" for i in range(200)] * 3  # each order looked at three times

    def rolls(order: list[str], seed: int) -> dict[tuple[str, int], bool]:
        faults = FaultInjector({"rate-limit": 0.3}, seed=seed)
        seen: dict[str, int] = {}
        out = {}
        for key in order:
            seen[key] = seen.get(key, 0) + 1
            out[key, seen[key]] = faults.roll("rate-limit", key)
        return out

    forwards = rolls(keys, seed=42)
    assert rolls(list(reversed(keys)), seed=42) == forwards
    assert rolls(keys, seed=43) != forwards
    assert 0.2 < sum(forwards.values()) / len(forwards) < 0.4
    assert stable_key("Risk", {"task_token": "a", "x": 1}) == stable_key(
        "Risk", {"task_token": "b", "x": 1}
    )
    assert stable_key("Risk", {"x": 1}) != stable_key("Risk", {"x": 2})


def test_fault_spec_when_unknown_or_out_of_range_then_clear_error() -> None:
    assert parse_fault_spec("rate-limit=0.5, partial-fill=1") == {
        "rate-limit": 0.5,
        "partial-fill": 1.0,
    }
    with pytest.raises(FaultSpecError, match="unknown fault"):
        parse_fault_spec("gremlins=0.1")
    with pytest.raises(FaultSpecError, match=r"\[0, 1\]"):
        parse_fault_spec("rate-limit=2")
    with pytest.raises(FaultSpecError, match="NAME=PROBABILITY"):
        parse_fault_spec("rate-limit")
    assert main(["drill", "--faults", "gremlins=0.1"]) == 2


def test_drill_when_the_order_path_runs_far_ahead_of_the_tick_then_reconcile_still_settles(
    tmp_path: Path,
) -> None:
    """The order path's clock runs on while workflows retry (1 / scale of real time), so a
    send can be recorded minutes after the candle close, more so on a busy machine. Every
    send is lost here, so each order ends unknown; reconcile must run past the grace window
    of the latest send, not of the candle close, or it leaves them unknown (a ledger
    mismatch, seen under load). At this scale a tenth of a second is 200 s of order time."""
    code, report = run_drill(
        tmp_path,
        "timeout-before-accept=1.0",
        seed=3,
        intents=2,
        max_candles=300,
        more=("--retry-time-scale", "0.0005"),
    )
    orders = report["orders"]
    assert orders["intents"] >= 2
    assert report["faults_injected"].get("timeout-before-accept", 0) > 0
    assert orders["ledger_mismatches"] == 0, orders["mismatch_details"]
    assert orders["by_status"].get("unknown", 0) == 0, orders["by_status"]
    assert code == 0


def test_drill_when_a_valid_event_is_dead_lettered_then_exits_1_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only malformed input may be dead-lettered. With DynamoDB throttling every request,
    ingest's scheduled events outlast their retries and land in its dead-letter queue: valid
    events lost, so the drill fails (it passed before, with nothing duplicated or stuck), and
    the report and the summary say which queue holds them and why."""
    code, report = run_drill(tmp_path, "ddb-throttle=1.0", seed=1, intents=1, max_candles=2)
    assert report["orders"]["intents_with_multiple_exchange_orders"] == 0
    assert report["orders"]["ledger_mismatches"] == 0
    assert report["non_terminal_executions"] == 0
    valid = report["dead_letters_valid"]
    assert valid["IngestScheduleDLQ"] == report["dead_letters"]["IngestScheduleDLQ"] > 0
    assert report["dead_letter_reasons"]["IngestScheduleDLQ"] == {
        "ThrottlingException": valid["IngestScheduleDLQ"]
    }
    assert report["valid_dead_letter_details"][0]["queue"] in valid
    assert "valid events dead-lettered" in capsys.readouterr().out
    assert code == 1


def test_drill_report_when_only_malformed_input_is_dead_lettered_then_none_counts_as_valid() -> (
    None
):
    from tickstep.local.report import DeadLetter

    assert not DeadLetter("ValidationError", "").valid
    assert not DeadLetter("UnknownMarketError", "").valid
    for reason in ("TransientError", "IdempotencyPersistenceLayerError", "no reason", "States.ALL"):
        assert DeadLetter(reason, "").valid, reason


def test_drill_when_every_order_in_flight_sees_a_release_then_exactly_once_and_ledger_hold(
    tmp_path: Path,
) -> None:
    """Issue 12: a deploy during trading. Each time execute takes orders in flight, every
    function moves to a new version (a new container: fresh import, dependencies built anew)
    for every later invocation, with sends lost and deliveries repeated around it."""
    spec = "release=1.0,timeout-after-accept=0.4,duplicate-delivery=0.3,lambda-retry=0.3"

    code, report = run_drill(tmp_path, spec, seed=5, intents=8, max_candles=300)

    orders = report["orders"]
    assert code == 0, orders
    # A deploy at every execute invocation (one a batch of order messages).
    assert report["faults_injected"]["release"] >= 3
    assert orders["intents"] >= 8
    # Every new container got the runtime's collaborators: each tick was ingested from the
    # replay and decided (a function left to build its own would reach for the network).
    assert report["executions"]["DecideStateMachine"] == {"SUCCEEDED": report["ticks"]}
    assert orders["intents_with_multiple_exchange_orders"] == 0
    assert orders["ledger_mismatches"] == 0, orders["mismatch_details"]
    assert report["non_terminal_executions"] == 0


def test_release_when_a_deploy_happens_then_each_function_starts_a_new_container() -> None:
    from tests.pipeline.conftest import busy_config, replay
    from tickstep.config import TradingConfig

    seen: list[bool] = []

    def deploy(cloud: LocalCloud) -> None:
        before = cloud.handler_module("SignalFunction")
        cloud.release()
        after = cloud.handler_module("SignalFunction")
        seen.append(after is not before)  # a fresh import: its dependencies are built anew

    replay(TradingConfig.model_validate(busy_config()), 3, deploy)

    assert seen == [True]


def test_drill_when_a_candle_close_is_never_decided_then_exits_1_and_counts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decision lost without any error (here ingest leaves one market out of the last tick,
    so nothing ever publishes that close) fails the drill: every close replayed must end in a
    decision."""
    import dataclasses

    from tickstep.usecases import ingest as ingest_module

    real = ingest_module.ingest
    runs: list[int] = []

    def forgetful(ports: Any, **options: Any) -> Any:
        runs.append(1)
        if len(runs) == 10:  # the last tick: nothing later catches the close up
            ports = dataclasses.replace(ports, markets=ports.markets[1:])
        return real(ports, **options)

    monkeypatch.setattr(ingest_module, "ingest", forgetful)

    code, report = run_drill(tmp_path, "rate-limit=0.1", seed=1, intents=10_000, max_candles=10)

    assert len(runs) == 10
    assert report["candle_closes"] == 10 * 3
    assert report["undecided_candle_closes"] == 1
    assert code == 1


def _execution_times(cloud: LocalCloud, machine: str) -> list[tuple[Any, Any]]:
    """(startDate, stopDate) of each execution of ``machine`` (ListExecutions)."""
    pages = cloud.sfn.get_paginator("list_executions").paginate(
        stateMachineArn=cloud.state_machines[machine]
    )
    return [(e["startDate"], e.get("stopDate")) for page in pages for e in page["executions"]]


@pytest.mark.parametrize("across", [True, False], ids=["drill", "make-run"])
def test_replay_when_orders_go_across_closes_then_a_close_is_decided_while_one_is_in_flight(
    across: bool,
) -> None:
    """The drill lets the next candle close replay once the decisions are made, with orders
    still retrying (as on AWS, where a close never waits for the last one's orders); make run
    waits for every execution at each close. Every order here is hidden for a while after it
    is placed, so its workflow retries (in flight) until the exchange shows it."""
    from tests.pipeline.conftest import busy_config, replay
    from tickstep.config import TradingConfig

    seen: dict[str, list[tuple[Any, Any]]] = {}

    def keep(cloud: LocalCloud) -> None:
        seen["orders"] = _execution_times(cloud, "OrderStateMachine")
        seen["decisions"] = _execution_times(cloud, "DecideStateMachine")

    report = replay(
        TradingConfig.model_validate(busy_config()),
        40,
        keep,
        faults=FaultInjector({"not-found-after-accept": 1.0}, seed=2),
        retry_time_scale=0.005,
        orders_across_closes=across,
    )

    orders = report["orders"]
    assert orders["intents"] > 0 and report["faults_injected"]["not-found-after-accept"] > 0
    overlapped = [
        (begin, end)
        for begin, end in seen["orders"]
        if any(begin < decided < end for decided, _ in seen["decisions"])
    ]
    assert bool(overlapped) is across
    assert (orders["intents_with_multiple_exchange_orders"], orders["ledger_mismatches"]) == (0, 0)
    assert report["non_terminal_executions"] == 0
    assert report["undecided_candle_closes"] == 0
