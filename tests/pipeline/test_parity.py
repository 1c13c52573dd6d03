"""Parity: the same real candles through `tickstep local` (paper, no slippage) and through
`tickstep backtest` (same fee, same stake, the market's amount step) give the same trades."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from tickstep.candles import bundled_file
from tickstep.cli import main
from tickstep.config import load_config_dict
from tickstep.exchanges.paper import DEFAULT_RULES, PaperState
from tickstep.local.cloud import LocalCloud
from tickstep.local.runtime import LocalRun
from tickstep.models import Market, Side
from tickstep.stores import PortfolioStore

ROOT = Path(__file__).resolve().parents[2]
ETH = Market(exchange="paper", symbol="ETH/BTC", timeframe="5m")
FAST, SLOW = 3, 8
STAKE, FEE = "0.01", "0.001"
CANDLES = 160  # candle closes replayed
BACKFILL = 200  # LocalRun's default: its first tick is candle 200's close


def local_fills() -> list[dict[str, Any]]:
    config = load_config_dict(
        {
            "markets": [
                {
                    "market": ETH.model_dump(),
                    "strategy": {"name": "sma_cross", "params": {"fast": FAST, "slow": SLOW}},
                }
            ],
            "limits": {
                "max_notional_per_order": "1",
                "max_position_per_market": "10",
                "max_total_exposure": "10",
                "max_daily_loss": "0.99",
                "max_drawdown": "0.99",
                "cooldown_after_loss_ms": 0,
                "max_orders_per_hour": 1000,
                "price_band": "0.05",
                "sizing": {"kind": "fixed_quote", "quote_amount": STAKE},
            },
            "paper": {"fee_rate": FEE, "slippage": "0", "balances": {"BTC": "10"}},
        }
    )
    captured: list[dict[str, Any]] = []

    def capture(cloud: LocalCloud) -> None:
        state_json, _ = PortfolioStore(cloud.ddb, cloud.tables["PortfolioTable"]).paper_state()
        assert state_json is not None
        state = PaperState.model_validate_json(state_json)
        captured.extend(f.model_dump() for f in state.fills)

    run = LocalRun(
        ROOT, config, candles=CANDLES, out=io.StringIO(), backfill=BACKFILL, before_report=capture
    )
    report = run.run()
    assert report["orders"]["ledger_mismatches"] == 0
    assert report["non_terminal_executions"] == 0
    return captured


def backtest_trades(tmp_path: Path) -> list[dict[str, Any]]:
    """The backtest over the candles the local run saw: from `SLOW` before its first tick
    (the warm-up: so the first signal it may act on is the local run's first), to the candle
    in progress at its last tick (where that tick's order filled)."""
    lines = bundled_file("ETH-BTC_5m.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    first, last = BACKFILL - SLOW, BACKFILL + CANDLES  # candle indices, inclusive
    data = tmp_path / "ETH-BTC_5m.csv"
    data.write_text("\n".join([header, *rows[first : last + 1]]) + "\n")
    report = tmp_path / "backtest.json"
    code = main(
        [
            "backtest",
            "--data",
            str(data),
            "--strategy",
            "sma_cross",
            "--param",
            f"fast={FAST}",
            "--param",
            f"slow={SLOW}",
            "--stake",
            STAKE,
            "--fee",
            FEE,
            "--amount-step",
            str(DEFAULT_RULES.amount_step),
            "--json",
            str(report),
        ]
    )
    assert code == 0
    trades: list[dict[str, Any]] = json.loads(report.read_text())["trades"]
    return trades


def iso_ms(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def test_local_when_paper_without_slippage_then_same_trades_as_the_backtest(
    tmp_path: Path,
) -> None:
    fills = local_fills()
    trades = backtest_trades(tmp_path)

    # The local run's fills as round trips: each BUY opens, the next SELL closes it.
    buys = [f for f in fills if f["side"] is Side.BUY]
    sells = [f for f in fills if f["side"] is Side.SELL]
    closed = [t for t in trades if t["exit_reason"] != "force_exit"]
    forced = [t for t in trades if t["exit_reason"] == "force_exit"]
    assert len(closed) >= 3, "too few trades to prove anything: widen the window"
    assert len(sells) == len(closed)
    assert len(buys) == len(closed) + len(forced)  # a position still open at the end

    for trade, buy, sell in zip(closed, buys, sells, strict=False):
        assert buy["timestamp"] == iso_ms(trade["entry_time"])
        assert sell["timestamp"] == iso_ms(trade["exit_time"])
        assert buy["price"] == Decimal(trade["entry_price"])
        assert sell["price"] == Decimal(trade["exit_price"])
        assert buy["amount"] == sell["amount"] == Decimal(trade["amount"])
        assert buy["fee"] + sell["fee"] == Decimal(trade["fee"])
        pnl = (
            buy["amount"] * sell["price"]
            - sell["fee"]
            - (buy["amount"] * buy["price"] + buy["fee"])
        )
        assert pnl == Decimal(trade["pnl"])
    for trade, buy in zip(forced, buys[len(closed) :], strict=True):
        assert buy["timestamp"] == iso_ms(trade["entry_time"])
        assert buy["amount"] == Decimal(trade["amount"])
