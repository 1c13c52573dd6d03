from __future__ import annotations

from decimal import Decimal

import pytest

from tickstep.models import Fill, Market, Position, Side
from tickstep.portfolio import apply_fill, realized_of, unrealized_pnl

ETH = Market(exchange="paper", symbol="ETH/BTC", timeframe="5m")


def fill(side: Side, amount: str, price: str, fee: str) -> Fill:
    return Fill(
        trade_id="t",
        client_order_id="c",
        market=ETH,
        side=side,
        amount=Decimal(amount),
        price=Decimal(price),
        fee=Decimal(fee),
        fee_currency="BTC",
        timestamp=0,
    )


def test_round_trip_when_price_rises_then_realized_is_proceeds_minus_both_fees_and_cost() -> None:
    start = Position(market=ETH)
    bought = apply_fill(start, fill(Side.BUY, "2", "0.1", "0.0002"))
    assert bought.amount == Decimal("2")
    assert bought.average_price == Decimal("0.1001")  # (0.2 + 0.0002) / 2
    assert unrealized_pnl(bought, Decimal("0.11")) == Decimal("0.0198")
    sold = apply_fill(bought, fill(Side.SELL, "2", "0.11", "0.00022"))
    # proceeds 0.22 - fee 0.00022 - basis 0.2002
    assert realized_of(bought, sold) == Decimal("0.01958")
    assert sold.amount == 0
    assert sold.average_price is None


def test_partial_sell_keeps_average_and_realizes_only_the_sold_part() -> None:
    bought = apply_fill(Position(market=ETH), fill(Side.BUY, "4", "0.1", "0"))
    sold = apply_fill(bought, fill(Side.SELL, "1", "0.09", "0"))
    assert sold.amount == Decimal("3")
    assert sold.average_price == Decimal("0.1")
    assert sold.realized_pnl == Decimal("-0.01")


def test_sell_more_than_held_then_error_not_short() -> None:
    with pytest.raises(ValueError, match=r"fill\.amount"):
        apply_fill(Position(market=ETH), fill(Side.SELL, "1", "0.1", "0"))
