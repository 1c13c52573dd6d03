"""The dashboard's read model (src/tickstep/usecases/dashboard.py) over small fakes: amounts
stay exact decimal strings, the equity curve walks back through the fills, a candle older than
two timeframes is stale, and what a deployment cannot tell is None, not zero."""

from __future__ import annotations

from decimal import Decimal

from tests.builders import PAPER_ETH_BTC as MARKET
from tickstep.models import (
    Balance,
    Candle,
    Market,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TradingState,
    TradingStateRecord,
)
from tickstep.ports import LedgerEntry
from tickstep.usecases.dashboard import DashboardSources, Operations, overview

T0 = 1_515_560_100_000
STEP = 300_000
INTENT = "a" * 32


class Fakes:
    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []

    def get(self) -> TradingStateRecord:
        return TradingStateRecord(
            state=TradingState.HALTED, reason="game day", changed_at=T0, changed_by="cognito:al"
        )

    def by_status(
        self, statuses: list[OrderStatus], *, limit: int | None = None
    ) -> list[LedgerEntry]:
        return [e for e in self.entries if e.status in statuses][:limit]

    def positions(self) -> list[Position]:
        return [Position(market=MARKET, amount=Decimal(2), average_price=Decimal("0.05"))]

    def balances(self) -> dict[str, Balance]:
        return {"BTC": Balance(currency="BTC", free=Decimal("0.8999"))}

    def latest(self, market: Market, n: int, *, until_ms: int | None = None) -> list[Candle]:
        closes = ["0.05", "0.06", "0.07"]
        return [
            Candle(
                timestamp=T0 + i * STEP,
                open=Decimal(c),
                high=Decimal(c),
                low=Decimal(c),
                close=Decimal(c),
                volume=Decimal(1),
            )
            for i, c in enumerate(closes)
        ]


def bought_two_at_t1() -> LedgerEntry:
    order = Order(
        intent_id=INTENT,
        client_order_id=INTENT,
        market=MARKET,
        side=Side.BUY,
        order_type=OrderType.MARKET,
        amount=Decimal(2),
        status=OrderStatus.FILLED,
        filled=Decimal(2),
        average=Decimal("0.05"),
        fee=Decimal("0.0001"),
        fee_currency="BTC",
        created_at=T0 + STEP,
        updated_at=T0 + STEP,
    )
    return LedgerEntry(
        intent_id=INTENT,
        status=OrderStatus.FILLED,
        market=MARKET,
        side=Side.BUY,
        order=order,
        candle_time=T0 + STEP,
    )


def sources(fakes: Fakes, operations: Operations | None = None) -> DashboardSources:
    return DashboardSources(
        markets=[MARKET],
        control=fakes,  # type: ignore[arg-type]
        orders=fakes,  # type: ignore[arg-type]
        portfolio=fakes,  # type: ignore[arg-type]
        signals=None,
        candles=fakes,  # type: ignore[arg-type]
        price=lambda _: None,
        operations=operations or Operations(),
    )


def test_overview_when_a_buy_filled_then_figures_are_exact_decimal_strings() -> None:
    fakes = Fakes()
    fakes.entries.append(bought_two_at_t1())

    board = overview(sources(fakes), now_ms=T0 + 3 * STEP, mode="paper")

    (row,) = board["markets"]
    assert row["position"] == "2"
    assert row["unrealized_pnl"] == "0.04"  # 2 x (0.07 - 0.05), at the last close
    assert row["stale"] is False
    assert board["equity"] == {"BTC": "1.0399"}
    assert board["pnl"] == {"BTC": {"realized": "0", "unrealized": "0.04"}}
    curve = [p["value"] for p in board["equity_curve"]["BTC"]]
    assert all(isinstance(v, str) for v in curve)
    assert [Decimal(v) for v in curve] == [Decimal("1"), Decimal("1.0199"), Decimal("1.0399")]
    assert board["fills"][MARKET.key] == [
        {"time": T0 + STEP, "side": "buy", "amount": "2", "price": "0.05"}
    ]
    assert (board["order_count"], board["fill_count"], board["fees"]) == (1, 1, "0.0001")
    assert board["trading_state"]["state"] == "HALTED"


def test_overview_when_the_last_candle_is_older_than_two_timeframes_then_stale() -> None:
    board = overview(sources(Fakes()), now_ms=T0 + 3 * STEP + 2 * STEP + 1, mode="paper")

    assert board["markets"][0]["stale"] is True
    assert board["markets"][0]["age_ms"] == 2 * STEP + 1


def test_overview_when_the_deployment_cannot_tell_then_none_not_zero() -> None:
    board = overview(sources(Fakes()), now_ms=T0, mode="paper")
    assert (board["risk_denials"], board["alarms"], board["dead_letters"]) == (None, None, None)

    told = Operations(
        denials=lambda: {"TRADING_HALTED": 3},
        alarms=lambda: ["stack-ExecuteErrors-1"],
        dead_letters=lambda: {"OrderDLQ": 0},
        execution_url=lambda e: f"https://console/{e.intent_id}",
    )
    fakes = Fakes()
    fakes.entries.append(bought_two_at_t1())
    board = overview(sources(fakes, told), now_ms=T0, mode="paper")
    assert board["risk_denials"] == {"TRADING_HALTED": 3}
    assert board["alarms"] == ["stack-ExecuteErrors-1"]
    assert board["orders"][0]["execution_url"] == f"https://console/{INTENT}"
