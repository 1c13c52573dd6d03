"""The pure parts of operations: the health verdict, candle freshness, which release a
rollback goes to, and how samconfig.toml's environments are read."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tickstep.models import Market, TradingState, TradingStateRecord
from tickstep.operations.environments import load_environment
from tickstep.operations.hook import run_pre_traffic_hook
from tickstep.operations.releases import Release, RollbackRefusedError, rollback_target
from tickstep.usecases.health import candle_age, check_health
from tickstep.wiring import SMOKE_EVENT

ROOT = Path(__file__).resolve().parents[2]
MARKET = Market(exchange="binance", symbol="ETH/BTC", timeframe="1m")
MINUTE = 60_000
NOW = 1_800_000_000_000


class Control:
    def __init__(self, state: TradingState = TradingState.ACTIVE, fail: bool = False) -> None:
        self.state, self.fail = state, fail

    def get(self) -> TradingStateRecord:
        if self.fail:
            raise ConnectionError("table unreachable")
        return TradingStateRecord(state=self.state, reason="r", changed_at=1, changed_by="me")


class Candles:
    def __init__(self, latest: int | None) -> None:
        self.latest = latest

    def latest_timestamp(self, market: Market) -> int | None:
        return self.latest


def health(**kwargs: object) -> dict[str, object]:
    args: dict[str, object] = {
        "candles": Candles(NOW - 2 * MINUTE),
        "control": Control(),
        "dead_letter_depths": lambda: {"OrderDLQ": 0},
    }
    args.update(kwargs)
    result = check_health([MARKET], now_ms=NOW, **args)  # type: ignore[arg-type]
    return result.to_dict()


def test_a_healthy_stack_names_every_component() -> None:
    body = health()
    assert body["status"] == "ok"
    assert body["tables"] == {"control": "ok", "candles": "ok"}
    assert body["trading_state"] == {"state": "ACTIVE", "reason": "r"}
    assert body["dead_letters"] == {"OrderDLQ": 0}
    assert body["candles"] == [{"market": MARKET.key, "fresh": True, "age_ms": MINUTE}]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"control": Control(TradingState.HALTED)},
        {"candles": Candles(NOW - 10 * MINUTE)},
        {"candles": Candles(None)},
        {"dead_letter_depths": lambda: {"OrderDLQ": 1}},
    ],
)
def test_when_a_component_is_unhealthy_then_the_verdict_is(kwargs: dict[str, object]) -> None:
    assert health(**kwargs)["status"] == "unhealthy"


def test_when_a_table_cannot_be_read_then_it_is_named_and_the_rest_still_reported() -> None:
    body = health(control=Control(fail=True))
    assert body["status"] == "unhealthy"
    assert body["tables"] == {"control": "unreachable: ConnectionError", "candles": "ok"}
    assert body["dead_letters"] == {"OrderDLQ": 0}


def test_a_candle_is_fresh_for_two_timeframes_after_it_closed() -> None:
    closed = NOW - MINUTE  # the candle opened one timeframe earlier
    assert candle_age(MARKET, closed - 2 * MINUTE, NOW)["fresh"] is True
    assert candle_age(MARKET, closed - 2 * MINUTE - 1, NOW)["fresh"] is False


def release(rid: str, version: str) -> Release:
    return Release(
        id=rid,
        kind="deploy",
        commit="c" + rid,
        time="t",
        who="me",
        functions={"ExecuteFunction": version},
        state_machines={"OrderStateMachine": f"arn:sm:{version}"},
    )


def test_rollback_goes_to_the_latest_earlier_release_with_other_versions() -> None:
    history = [release("a", "1"), release("b", "2"), release("c", "2")]
    assert rollback_target(history, None).id == "a"
    assert rollback_target(history, "b").id == "b"


@pytest.mark.parametrize(
    ("history", "to"),
    [([], None), ([release("a", "1")], None), ([release("a", "1"), release("b", "1")], None)],
)
def test_rollback_refuses_with_no_earlier_release(history: list[Release], to: None) -> None:
    with pytest.raises(RollbackRefusedError):
        rollback_target(history, to)


def test_rollback_refuses_an_unknown_release_naming_the_known_ones() -> None:
    with pytest.raises(RollbackRefusedError, match="known: a, b"):
        rollback_target([release("a", "1"), release("b", "2")], "zzz")


def test_environments_are_read_from_samconfig_with_sams_quoting() -> None:
    production = load_environment(ROOT / "samconfig.toml", "production")
    assert (production.stack_name, production.trading_mode) == ("tickstep-prod", "live")
    assert production.parameters["Markets"].startswith('[{"market"')
    with pytest.raises(ValueError, match="one of test, production"):
        load_environment(ROOT / "samconfig.toml", "staging")


class _Lambda:
    """Answers invoke as Lambda does: a tickstep handler's smoke answer, or an error."""

    def __init__(self, answers: dict[str, tuple[str | None, dict[str, object]]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, object]] = []

    def invoke(self, FunctionName: str, Qualifier: str, Payload: str) -> dict[str, object]:  # noqa: N803
        self.calls.append((FunctionName, Qualifier, json.loads(Payload)))
        error, body = self.answers[FunctionName]
        answer: dict[str, object] = {"Payload": io.BytesIO(json.dumps(body).encode())}
        if error:
            answer["FunctionError"] = error
        return answer


class _CodeDeploy:
    def __init__(self) -> None:
        self.reported: list[dict[str, str]] = []

    def put_lifecycle_event_hook_execution_status(self, **kwargs: str) -> None:
        self.reported.append(kwargs)


HOOK_EVENT = {"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "h-1"}
OK = (None, {"tickstep": "smoke", "ok": True, "version": "8"})


@pytest.mark.parametrize(
    ("risk", "status"),
    [
        (OK, "Succeeded"),
        (("Unhandled", {"errorType": "SettingsError"}), "Failed"),  # cannot start
        ((None, {"tickstep": "smoke"}), "Failed"),  # answered, but not as a tickstep handler
    ],
    ids=["all-answer", "one-errors", "one-echoes"],
)
def test_pre_traffic_hook_smoke_tests_each_new_version_and_reports_once(
    risk: tuple[str | None, dict[str, object]], status: str
) -> None:
    lam = _Lambda({"arn:aws:lambda:eu-west-1:1:function:signal": OK, "risk": risk})
    codedeploy = _CodeDeploy()

    result = run_pre_traffic_hook(
        HOOK_EVENT,
        targets=["arn:aws:lambda:eu-west-1:1:function:signal:8", "risk:8"],
        lambda_client=lam,
        codedeploy=codedeploy,
    )

    assert result == status
    assert [(name, version) for name, version, _ in lam.calls] == [
        ("arn:aws:lambda:eu-west-1:1:function:signal", "8"),
        ("risk", "8"),
    ]
    assert all(payload == SMOKE_EVENT for _, _, payload in lam.calls)
    assert codedeploy.reported == [
        {"deploymentId": "d-1", "lifecycleEventHookExecutionId": "h-1", "status": status}
    ]
