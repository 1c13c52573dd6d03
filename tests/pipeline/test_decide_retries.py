"""The decide workflow's real ASL in moto: a dependency failing for now is retried and the tick
is decided; only malformed input is dead-lettered (tickstep.failures, decide.asl.json)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from tests.pipeline.conftest import (
    SDK_ATTEMPTS,
    busy_config,
    decide_history,
    first_writes,
    replay,
)
from tickstep.config import load_config_dict
from tickstep.local.cloud import LocalCloud
from tickstep.local.faults import FaultInjector


def decide_failures(cloud: LocalCloud) -> list[dict[str, str]]:
    """Every failed Lambda task of every decide execution: the error and the errorMessage."""
    failures = []
    for event in decide_history(cloud):
        if event["type"] == "TaskFailed":
            details = event["taskFailedEventDetails"]
            cause = details.get("cause", "")
            with contextlib.suppress(ValueError):
                cause = json.loads(cause).get("errorMessage", cause)
            failures.append({"error": details["error"], "cause": cause})
    return failures


def replay_with_faults(faults: FaultInjector) -> dict[str, Any]:
    """A short busy replay up to the first intent under ``faults``, with every failed decide
    task collected in ``task_failures``."""
    failures: list[dict[str, str]] = []
    report = replay(
        load_config_dict(busy_config()),
        60,
        lambda cloud: failures.extend(decide_failures(cloud)),
        faults=faults,
        stop_after_intents=1,
        retry_time_scale=0.02,
    )
    report["task_failures"] = failures
    return report


@pytest.fixture(scope="module")
def throttled_run() -> dict[str, Any]:
    """A short replay in which the first signal write and the first idempotency record write
    are throttled through all of the SDK's attempts, and every tick also brings a malformed
    CandlesClosed."""
    faults = FaultInjector(
        {"ddb-throttle": 1.0, "malformed-event": 1.0},
        seed=5,
        ddb_throttle_only=first_writes(
            {
                ("PutItem", "SignalsTable"): SDK_ATTEMPTS,
                ("PutItem", "IdempotencyTable"): SDK_ATTEMPTS,
            }
        ),
    )
    return replay_with_faults(faults)


def test_decide_when_the_idempotency_write_is_throttled_past_the_sdk_then_retried_and_decided(
    throttled_run: dict[str, Any],
) -> None:
    """The issue's dead letter: Powertools wraps the throttle in
    IdempotencyPersistenceLayerError; the risk function raises it as TransientError, which
    CheckRisk retries, and the intent is decided and ordered."""
    risk = [f for f in throttled_run["task_failures"] if "Idempotency" in f["cause"]]
    assert risk, throttled_run["task_failures"]
    assert {f["error"] for f in risk} == {"TransientError"}
    assert risk[0]["cause"].startswith("IdempotencyPersistenceLayerError")
    assert throttled_run["risk_decisions"].get("approved", 0) >= 1
    assert throttled_run["orders"]["intents"] >= 1
    assert throttled_run["signals"].get("OrderStarted", 0) >= 1


def test_decide_when_the_signal_write_is_throttled_past_the_sdk_then_retried_and_decided(
    throttled_run: dict[str, Any],
) -> None:
    signal = [f for f in throttled_run["task_failures"] if f["cause"].startswith("Throttling")]
    assert [f["error"] for f in signal] == ["TransientError"]
    assert throttled_run["faults_injected"]["ddb-throttle"] == 2 * SDK_ATTEMPTS


def test_decide_when_an_event_is_malformed_then_still_dead_lettered_with_its_reason(
    throttled_run: dict[str, Any],
) -> None:
    """Every dead letter is malformed input, named by its reason; none was a valid tick."""
    malformed = throttled_run["faults_injected"]["malformed-event"]
    reasons = throttled_run["dead_letter_reasons"]
    assert malformed >= 1
    assert set(reasons) == {"DecideRuleDLQ"}
    assert set(reasons["DecideRuleDLQ"]) <= {"ValidationError", "UnknownMarketError"}
    assert sum(reasons["DecideRuleDLQ"].values()) == malformed
    assert set(throttled_run["dead_letters_valid"].values()) == {0}
    assert throttled_run["valid_dead_letter_details"] == []
    # Malformed input is not retried: it fails once and goes to the dead-letter queue.
    malformed_failures = [
        f
        for f in throttled_run["task_failures"]
        if f["error"] in ("ValidationError", "UnknownMarketError")
    ]
    assert len(malformed_failures) == malformed
    assert throttled_run["non_terminal_executions"] == 0


def test_decide_when_the_decision_is_made_but_not_saved_then_waits_out_its_record_and_decides() -> (
    None
):
    """The decision is made, then saving it is throttled out: Powertools leaves the intent's
    record "in progress" until the risk function's timeout. CheckRisk retries the
    TransientError; if the record has not expired yet (the SDK's jittered back-off decides),
    it waits out IdempotencyAlreadyInProgressError (its own Retry, whose waits outlast the
    timeout); either way the intent is decided again, not dead-lettered."""
    faults = FaultInjector(
        {"ddb-throttle": 1.0},
        ddb_throttle_only=first_writes({("UpdateItem", "IdempotencyTable"): SDK_ATTEMPTS}),
    )
    report = replay_with_faults(faults)
    failures = report["task_failures"]

    errors = [f["error"] for f in failures]
    assert errors[0] == "TransientError", failures
    assert failures[0]["cause"].startswith("IdempotencyPersistenceLayerError: Failed to update")
    assert set(errors) <= {"TransientError", "IdempotencyAlreadyInProgressError"}
    assert errors.count("TransientError") == 1
    assert report["signals"].get("OrderStarted", 0) >= 1
    assert sum(report["dead_letters"].values()) == 0
    assert report["non_terminal_executions"] == 0
