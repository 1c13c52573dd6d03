"""The pure parts of operations: the health verdict, candle freshness, which release a
rollback goes to, and how samconfig.toml's environments are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickstep.models import Market, TradingState, TradingStateRecord
from tickstep.operations.environments import load_environment
from tickstep.operations.releases import Release, RollbackRefusedError, rollback_target
from tickstep.usecases.health import candle_age, check_health

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
