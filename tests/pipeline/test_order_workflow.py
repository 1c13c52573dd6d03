"""The order workflow's real ASL in moto, with faults at the exchange: Retry and Catch paths."""

from __future__ import annotations

import dataclasses
import io
import json
import time
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.pipeline.conftest import SDK_ATTEMPTS, first_writes
from tickstep.candles import bundled_series
from tickstep.exchanges.errors import (
    AmbiguousOrderError,
    FatalExchangeError,
    RetryableExchangeError,
)
from tickstep.exchanges.paper import PaperState
from tickstep.exchanges.replay import ReplayFeed, SimClock
from tickstep.local.cloud import LocalCloud, LocalRuntimeError
from tickstep.local.faults import FaultInjector
from tickstep.local.runtime import TickClock, settle
from tickstep.models import Market, OrderIntent, OrderStatus, ReasonCode, RiskDecision, Side
from tickstep.orders import can_transition, new_intent
from tickstep.stores import PortfolioStore

ROOT = Path(__file__).resolve().parents[2]
ETH = Market(exchange="paper", symbol="ETH/BTC", timeframe="5m")
MARKETS = [{"market": ETH.model_dump(), "strategy": {"name": "sma_cross", "params": {}}}]


@dataclasses.dataclass
class Fault:
    """One fault at one exchange method: raised on its first call only."""

    method: str
    error: Exception
    after: bool
    """True: the exchange does it, then the answer is lost (a timeout after accept)."""
    raised: int = 0


class FaultyExchange:
    """An exchange (each execute invocation opens its own) that shares one :class:`Fault`."""

    def __init__(self, inner: Any, fault: Fault) -> None:
        self._inner, self._fault = inner, fault

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name != self._fault.method:
            return attribute

        def faulty(*args: Any, **kwargs: Any) -> Any:
            if self._fault.raised:
                return attribute(*args, **kwargs)
            self._fault.raised += 1
            if self._fault.after:
                attribute(*args, **kwargs)
            raise self._fault.error

        return faulty


RETRY_SCALE = 0.02
"""Retry intervals run 50x faster; the execute function's clock runs 50x faster with them."""


def start_approved_order(cloud: LocalCloud) -> tuple[OrderIntent, dict[str, Any]]:
    """Start the order workflow for a buy that risk approved (as the decide workflow does)."""
    series = bundled_series([ETH])
    intent = new_intent(
        strategy="sma_cross",
        market=ETH,
        candle_time=int(series[ETH].timestamp[300]),
        side=Side.BUY,
        reference_price=str(series[ETH].close[300]),
    )
    decision = RiskDecision(
        intent_id=intent.intent_id,
        approved=True,
        amount=Decimal("0.1"),
        reasons=(ReasonCode.APPROVED,),
    )
    execution = cloud.sfn.start_execution(
        stateMachineArn=cloud.state_machines["OrderStateMachine"],
        name=intent.intent_id,
        input=json.dumps(
            {"intent": intent.model_dump(mode="json"), "decision": decision.model_dump(mode="json")}
        ),
    )
    return intent, execution


class LostAnswers:
    """The execute function's task answers, lost on the way: the workflow never hears them."""

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        return True

    def fail(self, token: str, error: str, cause: str) -> bool:
        return True


def run_one_order(
    fault: Fault | None,
    *,
    clock_runs: bool = True,
    root: Path = ROOT,
    answers_lost: bool = False,
    faults: FaultInjector | None = None,
) -> dict[str, Any]:
    """Start one order execution for an approved intent and let the stack finish it."""
    series = bundled_series([ETH])
    now = int(series[ETH].timestamp[300]) + ETH.timeframe_ms
    clock = SimClock(now)
    feed = ReplayFeed(series, clock)
    order_clock = TickClock(clock, RETRY_SCALE)
    order_now = order_clock.now_ms if clock_runs else clock.now_ms
    parameters = {"TradingMode": "paper", "Markets": json.dumps(MARKETS)}
    cloud_ = LocalCloud(root, parameters, faults=faults)
    cloud_.retry_time_scale = RETRY_SCALE
    with cloud_ as cloud:
        injected: list[str] = []

        def inject(logical_id: str, module: ModuleType) -> None:
            if logical_id != "ExecuteFunction" or injected:
                return
            injected.append(logical_id)
            deps = module.build_dependencies(prices=feed, clock=order_now)
            if fault is not None:
                open_paper = deps.open_exchange

                def open_exchange(market: Market) -> Any:
                    session = open_paper(market)
                    return dataclasses.replace(
                        session, exchange=FaultyExchange(session.exchange, fault)
                    )

                deps = dataclasses.replace(deps, open_exchange=open_exchange)
            if answers_lost:
                deps = dataclasses.replace(deps, tasks=LostAnswers())
            module.set_dependencies(deps)

        cloud.before_invoke = inject
        intent, execution = start_approved_order(cloud)
        settle(cloud, timeout_s=90)
        arn = execution["executionArn"]
        described = cloud.sfn.describe_execution(executionArn=arn)
        history = cloud.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        ledger = cloud.ddb.get_item(
            TableName=cloud.tables["OrdersTable"], Key={"pk": {"S": intent.intent_id}}
        )["Item"]
        state_json, _ = PortfolioStore(cloud.ddb, cloud.tables["PortfolioTable"]).paper_state()
        paper = PaperState.model_validate_json(state_json) if state_json else PaperState()
    states = [
        e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("Entered")
    ]
    return {
        "status": described["status"],
        "states": states,
        "ledger_status": ledger["status"]["S"],
        "faults": fault.raised if fault else 0,
        "exchange_orders": [o.client_order_id for o in paper.orders.values()],
        "intent_id": intent.intent_id,
        "task_failures": sum(1 for e in history if e["type"] == "TaskFailed"),
        "task_errors": [
            e["taskFailedEventDetails"]["error"] for e in history if e["type"] == "TaskFailed"
        ],
    }


def test_order_when_exchange_is_fine_then_submit_and_publish_filled() -> None:
    result = run_one_order(None)
    assert result["status"] == "SUCCEEDED"
    assert result["states"] == ["RecordIntent", "SubmitOrder", "OrderOutcome", "PublishOrderFilled"]
    assert result["ledger_status"] == "filled"
    assert result["exchange_orders"] == [result["intent_id"]]


def test_order_when_the_task_times_out_after_execute_recorded_filled_then_it_stays_filled(
    tmp_path: Path,
) -> None:
    """The ledger has one owner for each transition: MarkUnknown may only move a new order.
    Here execute fills the order and records it, its answer is lost, and SubmitOrder's
    heartbeat runs out (2 s instead of 600 s: the only change to the real ASL). The order
    stays filled and the workflow publishes OrderFilled from the ledger."""
    result = run_one_order(None, root=stack_with_heartbeat(tmp_path, seconds=2), answers_lost=True)
    assert result["ledger_status"] == "filled"
    # MarkUnknown's condition refused once, and was not retried (it never will pass).
    assert result["task_errors"] == ["DynamoDB.ConditionalCheckFailedException"]
    assert result["states"] == [
        "RecordIntent",
        "SubmitOrder",
        "MarkUnknown",
        "ReadLedger",
        "LedgerOutcome",
        "OrderFromLedger",
        "OrderOutcome",
        "PublishOrderFilled",
    ]
    assert result["status"] == "SUCCEEDED"
    assert result["exchange_orders"] == [result["intent_id"]]


def stack_with_heartbeat(tmp_path: Path, seconds: int) -> Path:
    """This repository's stack, but SubmitOrder's heartbeat is ``seconds``."""
    for name in ("template.yaml", "functions", "src", "layers", "events"):
        if (ROOT / name).exists():
            (tmp_path / name).symlink_to(ROOT / name)
    machines = tmp_path / "statemachines"
    machines.mkdir()
    for asl in (ROOT / "statemachines").glob("*.asl.json"):
        definition = json.loads(asl.read_text())
        if asl.name == "order.asl.json":
            definition["States"]["SubmitOrder"]["HeartbeatSeconds"] = seconds
        (machines / asl.name).write_text(json.dumps(definition))
    return tmp_path


def test_ledger_writes_of_the_order_workflow_when_read_then_they_leave_only_allowed_statuses() -> (
    None
):
    """The workflow's own status updates obey the one transition table (orders.py)."""
    states = json.loads((ROOT / "statemachines" / "order.asl.json").read_text())["States"]
    for name, target in (("MarkUnknown", OrderStatus.UNKNOWN), ("RecordRejected", "rejected")):
        parameters = states[name]["Parameters"]
        values = parameters["ExpressionAttributeValues"]
        assert values[":status"] == {"S": OrderStatus(target).value}
        condition = parameters["ConditionExpression"]
        named = {v["S"] for k, v in values.items() if k != ":status" and k in condition}
        allowed = {s.value for s in OrderStatus if can_transition(s, OrderStatus(target))}
        assert named == allowed, name
        catch = states[name]["Catch"]
        assert catch[0]["ErrorEquals"] == ["DynamoDB.ConditionalCheckFailedException"]
        assert catch[0]["Next"] == "ReadLedger"
        # A refused condition is permanent: no retrier may match it (States.TaskFailed would).
        for retrier in states[name]["Retry"]:
            assert not {"States.ALL", "States.TaskFailed"} & set(retrier["ErrorEquals"]), name
            assert "DynamoDB.ConditionalCheckFailedException" not in retrier["ErrorEquals"]


def test_order_when_a_lookup_fails_transiently_then_retried_and_filled() -> None:
    fault = Fault("fetch_order_by_client_id", RetryableExchangeError("reset", code="net"), False)
    result = run_one_order(fault)
    assert result["faults"] == 1
    assert result["status"] == "SUCCEEDED"
    # One SubmitOrder state whose task failed once and was retried by the ASL's Retry.
    assert result["task_failures"] == 1
    assert result["states"][-1] == "PublishOrderFilled"
    assert result["exchange_orders"] == [result["intent_id"]]


def test_order_when_the_ledger_write_is_throttled_past_the_sdk_then_retried_and_placed_once() -> (
    None
):
    """Execute's first ledger write (marking the intent sent, before any send) is throttled
    through all of the SDK's attempts: it answers TransientError, SubmitOrder retries it with
    back-off, and the next attempt places the order, once; nothing is dead-lettered."""
    faults = FaultInjector(
        {"ddb-throttle": 1.0},
        ddb_throttle_only=first_writes({("UpdateItem", "OrdersTable"): SDK_ATTEMPTS}),
    )
    result = run_one_order(None, faults=faults)
    assert result["task_errors"] == ["TransientError"]
    assert result["states"] == ["RecordIntent", "SubmitOrder", "OrderOutcome", "PublishOrderFilled"]
    assert result["status"] == "SUCCEEDED"
    assert result["ledger_status"] == "filled"
    assert result["exchange_orders"] == [result["intent_id"]]


def test_order_when_recording_the_intent_is_throttled_then_retried_and_filled_once() -> None:
    """A transient DynamoDB error on the workflow's own ledger write (RecordIntent: Step
    Functions' DynamoDB integration does not retry it by itself) is retried by the state's
    Retry, with back-off and jitter; the order is recorded once and placed once."""
    throttled: list[str] = []

    def first_intent_write(operation: str, body: dict[str, Any]) -> bool:
        if operation != "PutItem" or body.get("TableName") != "OrdersTable" or throttled:
            return False
        throttled.append(operation)
        return True

    faults = FaultInjector({"ddb-throttle": 1.0}, ddb_throttle_only=first_intent_write)
    result = run_one_order(None, faults=faults)
    assert faults.injected["ddb-throttle"] == 1
    assert result["task_errors"] == ["DynamoDB.ThrottlingException"]
    assert result["status"] == "SUCCEEDED"
    assert result["states"] == ["RecordIntent", "SubmitOrder", "OrderOutcome", "PublishOrderFilled"]
    assert result["ledger_status"] == "filled"
    assert result["exchange_orders"] == [result["intent_id"]]


def test_order_when_exchange_rejects_then_caught_recorded_rejected_and_published() -> None:
    fault = Fault("create_order", FatalExchangeError("no funds", code="insufficient"), False)
    result = run_one_order(fault)
    assert result["status"] == "SUCCEEDED"
    assert result["states"][-2:] == ["RecordRejected", "PublishOrderRejected"]
    assert result["ledger_status"] == "rejected"
    assert result["exchange_orders"] == []


def test_order_when_timeout_after_accept_then_found_by_client_id_and_filled_once() -> None:
    fault = Fault("create_order", AmbiguousOrderError("timed out", code="timeout"), True)
    result = run_one_order(fault)
    assert result["faults"] == 1
    assert result["status"] == "SUCCEEDED"
    assert result["states"][-1] == "PublishOrderFilled"
    assert result["ledger_status"] == "filled"
    assert result["exchange_orders"] == [result["intent_id"]]  # placed once, never re-sent


def test_order_when_timeout_before_accept_then_looked_up_past_the_grace_window_and_sent_once() -> (
    None
):
    """The exchange never got the order: the execute function looks it up (Retry) until the
    grace window has passed, and only then, the exchange having shown it has no such order,
    sends it again, once."""
    fault = Fault("create_order", AmbiguousOrderError("timed out", code="timeout"), False)
    result = run_one_order(fault)
    assert result["status"] == "SUCCEEDED"
    # looked again (lookups only, the un-jittered Retry) before sending again
    assert len(result["task_errors"]) >= 2
    assert set(result["task_errors"]) == {"OrderNotVisibleYet"}
    assert result["states"][-1] == "PublishOrderFilled"
    assert result["exchange_orders"] == [result["intent_id"]]


def test_order_when_rate_limited_then_sent_again_on_the_next_attempt_and_filled_once() -> None:
    """A 429 proves nothing was placed: the jittered Retry sends again at once, with no
    grace window to wait out (no OrderNotVisibleYet lookups in between)."""
    fault = Fault("create_order", RetryableExchangeError("429", code="rate_limited"), False)
    result = run_one_order(fault)
    assert result["status"] == "SUCCEEDED"
    assert result["task_errors"] == ["RetryableExchangeError"]
    assert result["states"][-1] == "PublishOrderFilled"
    assert result["exchange_orders"] == [result["intent_id"]]


def test_order_when_time_stands_still_then_never_resent_and_left_unknown_for_reconcile() -> None:
    """If nothing proves the exchange lacks the order (the grace window never passes), the
    workflow does not guess: it ends in its failure path and the intent waits for reconcile."""
    fault = Fault("create_order", AmbiguousOrderError("timed out", code="timeout"), False)
    result = run_one_order(fault, clock_runs=False)
    assert result["status"] == "FAILED"
    assert result["states"][-3:] == ["MarkUnknown", "PublishOrderFailed", "OrderOutcomeUnknown"]
    assert result["ledger_status"] == "unknown"
    assert result["exchange_orders"] == []


def test_order_when_the_task_token_is_answered_before_the_heartbeat_wait_then_not_lost() -> None:
    """The execute function can answer SubmitOrder's token before moto has set up the
    heartbeat it waits on (one order in ~15 hung for the 600 s heartbeat). Inside the local
    stack, an answer already given ends the wait at once, and only once."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sqs,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackEndpoint,
        CallbackOutcomeSuccess,
        HeartbeatTimedOut,
    )

    class Env:
        def is_running(self) -> bool:
            return True

    sqs_task = state_task_service_sqs.StateTaskServiceSqs  # SubmitOrder's kind of task
    task = sqs_task.__new__(sqs_task)
    endpoint = CallbackEndpoint("token")

    def answered_first_then_waited() -> Any:
        endpoint.notify(CallbackOutcomeSuccess("token", "{}"))
        heartbeat = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=1)
        return task._wait_for_task_token_heartbeat(Env(), endpoint, heartbeat)

    def waited_again() -> Any:  # the next attempt, nobody has answered it yet
        heartbeat = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=1)
        return task._wait_for_task_token_heartbeat(Env(), endpoint, heartbeat)

    # moto on its own: the answer is there, yet the wait runs out its heartbeat.
    assert isinstance(answered_first_then_waited(), HeartbeatTimedOut)
    with LocalCloud(ROOT, {"TradingMode": "paper", "Markets": json.dumps(MARKETS)}):
        assert isinstance(answered_first_then_waited(), CallbackOutcomeSuccess)
        assert isinstance(waited_again(), HeartbeatTimedOut)  # a stale answer wakes nobody


def test_settle_when_an_order_waits_forever_then_fails_naming_the_state_it_waits_in() -> None:
    """The offline runtime does not hang on a stuck workflow: it names where it is stuck."""

    def execute_is_down(logical_id: str, module: ModuleType) -> None:
        if logical_id == "ExecuteFunction":
            raise RuntimeError("execute function down")

    with LocalCloud(ROOT, {"TradingMode": "paper", "Markets": json.dumps(MARKETS)}) as cloud:
        cloud.log_stream = io.StringIO()
        cloud.before_invoke = execute_is_down
        intent, execution = start_approved_order(cloud)
        # The workflow's own pace decides when it gets there (a loaded machine is slow): wait
        # for the state, then give settle a deadline the order can no longer meet.
        wait_until_entered(cloud, execution["executionArn"], "SubmitOrder")
        with pytest.raises(LocalRuntimeError, match=rf"{intent.intent_id} at SubmitOrder"):
            settle(cloud, timeout_s=2)


def wait_until_entered(cloud: LocalCloud, execution_arn: str, state: str) -> None:
    """Poll the execution's history until it has entered ``state``; fail past a deadline."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        history = cloud.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)
        if any(
            e.get("stateEnteredEventDetails", {}).get("name") == state for e in history["events"]
        ):
            return
        time.sleep(0.05)
    raise AssertionError(f"{execution_arn} never entered {state}")
