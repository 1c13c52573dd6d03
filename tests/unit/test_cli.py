from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tickstep.cli import main


@pytest.fixture(scope="module")
def run_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    path = tmp_path_factory.mktemp("run") / "report.json"
    assert main(["run", "--report", str(path)]) == 0
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_run_when_sample_config_then_goes_through_buy_sell_hold_fills_and_denials(
    run_report: dict[str, object],
) -> None:
    markets = run_report["markets"]
    assert isinstance(markets, dict)
    assert set(markets) == {"paper:ETH/BTC:5m", "paper:LTC/BTC:5m", "paper:XMR/BTC:5m"}
    for key, stats in markets.items():
        assert stats["signals"]["HOLD"] > stats["signals"].get("BUY", 0), key
        assert stats["fills"] == stats["orders"] > 0, key
    decisions = run_report["decisions"]
    assert isinstance(decisions, dict)
    assert decisions["approved"] == sum(s["orders"] for s in markets.values())
    assert any(k.startswith("denied:") for k in decisions)


def test_run_when_finished_then_equity_change_equals_realized_plus_unrealized_pnl(
    run_report: dict[str, object],
) -> None:
    """The paper exchange's balances and the portfolio's fills-based PnL must agree exactly."""
    markets = run_report["markets"]
    assert isinstance(markets, dict)
    pnl = sum(
        (Decimal(s["realized_pnl"]) + Decimal(s["unrealized_pnl"]) for s in markets.values()),
        Decimal(0),
    )
    change = Decimal(str(run_report["end_equity"])) - Decimal(str(run_report["start_equity"]))
    # Exact but for the 28-digit division of average prices: far below one satoshi (1e-8).
    assert abs(change - pnl) < Decimal("1e-20")
    assert Decimal(str(run_report["pnl"])) == change


def test_run_when_config_has_unknown_strategy_then_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "markets": [
            {
                "market": {"exchange": "paper", "symbol": "ETH/BTC", "timeframe": "5m"},
                "strategy": {"name": "moon", "params": {}},
            }
        ],
        "limits": {},
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "moon" in err
    assert "limits" in err


def test_schemas_check_when_up_to_date_then_0_and_when_stale_then_1(tmp_path: Path) -> None:
    assert main(["schemas", "--out", str(tmp_path)]) == 0
    assert main(["schemas", "--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "Order.json").write_text("{}")
    assert main(["schemas", "--out", str(tmp_path), "--check"]) == 1
