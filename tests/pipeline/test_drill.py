"""A small fault drill through the CLI: every fault on, nothing duplicated, nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickstep.cli import main
from tickstep.local.faults import FAULTS, FaultSpecError, parse_fault_spec

HIGH = dict.fromkeys(FAULTS, 0.3) | {
    "ddb-throttle": 0.05,  # per DynamoDB request: hundreds of them
    "malformed-event": 0.5,  # per tick: a dozen ticks, so that some surely happen
}


def test_drill_when_every_fault_is_on_then_no_duplicate_no_mismatch_nothing_left(
    tmp_path: Path,
) -> None:
    report_path = tmp_path / "drill.json"
    spec = ",".join(f"{name}={p}" for name, p in HIGH.items())

    code = main(
        [
            "drill",
            "--faults",
            spec,
            "--seed",
            "11",
            "--intents",
            "10",
            "--max-candles",
            "300",
            "--report",
            str(report_path),
            "--log",
            str(tmp_path / "lambda.log"),
        ]
    )

    report = json.loads(report_path.read_text())
    orders = report["orders"]
    assert code == 0
    assert orders["intents"] >= 10
    assert orders["intents_with_multiple_exchange_orders"] == 0
    assert orders["ledger_mismatches"] == 0, orders["mismatch_details"]
    assert report["non_terminal_executions"] == 0
    injected = report["faults_injected"]
    assert injected.get("lambda-retry", 0) > 0
    assert injected.get("ddb-throttle", 0) > 0
    # Every malformed event is in the decide dead-letter queue, with the reason it failed.
    malformed = injected.get("malformed-event", 0)
    reasons = report["dead_letter_reasons"].get("DecideRuleDLQ", {})
    assert malformed > 0
    assert reasons.get("ValidationError", 0) + reasons.get("UnknownMarketError", 0) >= malformed
    assert report["dead_letters"]["OrderDLQ"] == 0


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
