"""``tickstep local`` trading with the ``ml`` strategy and the bundled model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline.conftest import paper_config
from tickstep.cli import main
from tickstep.local import runtime
from tickstep.local.cloud import LocalCloud
from tickstep.models import Market, OrderIntent, Side, Signal, SignalAction
from tickstep.stores import SignalStore

CANDLES = 60
MARKETS = ("ETH/BTC", "LTC/BTC", "XMR/BTC")


def ml_config() -> dict[str, Any]:
    """The bundled BTC markets on the bundled model, its own thresholds (0.55 / 0.45)."""
    return paper_config(
        {"name": "ml", "params": {}}, MARKETS, max_orders_per_hour=6, size_by_confidence=True
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``main(["local", ...])``, keeping the ledger's intents and the stored signals."""
    tmp = tmp_path_factory.mktemp("ml-local")
    config_path, report_path = tmp / "config.json", tmp / "report.json"
    config_path.write_text(json.dumps(ml_config()))
    seen: dict[str, Any] = {}
    build_report = runtime.build_report

    def keeping_the_tables(cloud: LocalCloud, *args: Any) -> dict[str, Any]:
        ledger = cloud.functions["ExecuteFunction"].environment["ORDERS_TABLE"]
        items = cloud.ddb.scan(TableName=ledger)["Items"]
        seen["intents"] = [
            OrderIntent.model_validate_json(i["intent"]["S"]) for i in items if "intent" in i
        ]
        store = SignalStore(
            cloud.ddb, cloud.functions["SignalFunction"].environment["SIGNALS_TABLE"]
        )
        seen["signals"] = [
            s
            for symbol in MARKETS
            for s in store.latest(Market(exchange="paper", symbol=symbol, timeframe="5m"), 1000)
        ]
        return build_report(cloud, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runtime, "build_report", keeping_the_tables)
        code = main(
            [
                "local",
                "--config",
                str(config_path),
                "--candles",
                str(CANDLES),
                "--report",
                str(report_path),
                "--log",
                str(tmp / "lambda.log"),
            ]
        )
    report: dict[str, Any] = json.loads(report_path.read_text())
    report["exit_code"] = code
    report["seen"] = seen
    return report


def test_local_when_markets_trade_ml_then_the_run_succeeds_and_the_ledger_agrees(
    run: dict[str, Any],
) -> None:
    assert run["exit_code"] == 0
    assert run["executions"]["DecideStateMachine"] == {"SUCCEEDED": CANDLES}
    assert run["non_terminal_executions"] == 0
    assert run["orders"]["ledger_mismatches"] == 0, run["orders"]["mismatch_details"]
    assert run["lambda"]["SignalFunction"]["errors"] == 0
    assert sum(run["dead_letters"].values()) == 0


def test_local_when_markets_trade_ml_then_the_decide_workflow_acts_on_its_signals(
    run: dict[str, Any],
) -> None:
    outcomes = run["signals"]
    assert sum(outcomes.values()) == CANDLES * len(MARKETS)
    assert outcomes.get("OrderStarted", 0) > 0  # BUYs (and SELLs of what was bought)
    assert outcomes.get("Hold", 0) > 0
    assert run["orders"]["intents"] > 0
    assert run["orders"]["by_status"].get("filled", 0) > 0
    signals = run["seen"]["signals"]
    assert signals and {s.strategy for s in signals} == {"ml"}
    assert {s.action for s in signals} >= {SignalAction.BUY, SignalAction.SELL}


def test_local_when_ml_makes_an_intent_then_its_confidence_is_the_signal_strength(
    run: dict[str, Any],
) -> None:
    intents: list[OrderIntent] = run["seen"]["intents"]
    signals: dict[tuple[str, int], Signal] = {
        (s.market.key, s.candle_time): s for s in run["seen"]["signals"]
    }
    assert intents
    for intent in intents:
        assert intent.strategy == "ml"
        signal = signals[(intent.market.key, intent.candle_time)]
        assert signal.action.value == intent.side.value.upper()
        assert intent.confidence == signal.strength
        p_up = signal.indicators["p_up"]
        assert p_up is not None
        # The confidence is the model's probability of the side taken.
        if intent.side is Side.BUY:
            assert intent.confidence == p_up > 0.55
        else:
            assert intent.confidence == 1 - p_up and p_up < 0.45


def test_local_report_file_was_written(run: dict[str, Any]) -> None:
    assert Path(run["lambda_log"]).is_file()
