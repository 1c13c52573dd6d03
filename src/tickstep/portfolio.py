"""Positions and PnL from fills: the same arithmetic for paper runs, the ledger and backtests.

Long-only spot: a buy adds to the position at a cost basis that includes its fee; a sell
realises ``proceeds - fee - basis`` for the amount sold. All in the quote currency, exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from tickstep.models import (
    Balance,
    Fill,
    Order,
    Position,
    Side,
)

if TYPE_CHECKING:
    from tickstep.exchanges.port import ExchangePort
    from tickstep.ports import PortfolioRepository


def apply_fill(position: Position, fill: Fill) -> Position:
    """The position after ``fill``; a sell larger than the position is an error, not a short."""
    if fill.market != position.market:
        raise ValueError(f"fill.market: {fill.market.key} is not {position.market.key}")
    held = position.amount
    basis = held * (position.average_price or Decimal(0))
    if fill.side is Side.BUY:
        amount = held + fill.amount
        average = (basis + fill.cost + fill.fee) / amount
        return position.model_copy(update={"amount": amount, "average_price": average})
    if fill.amount > held:
        raise ValueError(f"fill.amount: selling {fill.amount} but only {held} is held")
    sold_basis = fill.amount * (position.average_price or Decimal(0))
    realized = fill.cost - fill.fee - sold_basis
    amount = held - fill.amount
    return position.model_copy(
        update={
            "amount": amount,
            "average_price": position.average_price if amount > 0 else None,
            "realized_pnl": position.realized_pnl + realized,
        }
    )


def realized_of(before: Position, after: Position) -> Decimal:
    """PnL a fill realised (negative for a losing trade), for cooldown and daily-loss tracking."""
    return after.realized_pnl - before.realized_pnl


def unrealized_pnl(position: Position, price: Decimal) -> Decimal:
    if position.amount == 0 or position.average_price is None:
        return Decimal(0)
    return position.amount * (price - position.average_price)


def equity_of(
    quote: str,
    balances: Mapping[str, Balance],
    positions: Iterable[Position],
    prices: Mapping[str, Decimal],
) -> tuple[Decimal, Decimal]:
    """(equity, exposure) in ``quote``: its balance plus every ``quote`` position, valued at
    ``prices`` by market key, else at cost."""
    exposure = Decimal(0)
    for p in positions:
        if p.market.quote != quote or p.amount <= 0:
            continue
        price = prices.get(p.market.key, p.average_price or Decimal(0))
        exposure += p.amount * price
    cash = balances.get(quote)
    return (cash.total if cash else Decimal(0)) + exposure, exposure


def settle_account(
    portfolio: PortfolioRepository, exchange: ExchangePort, order: Order, now_ms: int
) -> None:
    """Apply the order's new fills to its position, then refresh balances and equity marks."""
    if not portfolio.apply_order_fills(order):
        return
    balances = exchange.fetch_balance()
    portfolio.put_balances(balances, now_ms)
    prices = {order.market.key: order.average} if order.average else {}
    equity, _ = equity_of(order.market.quote, balances, portfolio.positions(), prices)
    portfolio.mark_equity(equity, now_ms)


@dataclass(frozen=True, slots=True)
class FillCursor:
    """How much of one order is already in its position (filled base, cost and fee)."""

    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)


def fill_delta(order: Order, cursor: FillCursor) -> tuple[Fill, FillCursor] | None:
    """The part of ``order`` not yet applied, as one fill, and the cursor after it.

    Ccxt reports an order's cumulative ``filled``, ``average`` and ``fee`` rather than its
    trades, so applying the difference to what was applied before is what makes a repeated or
    partial report idempotent: the same report twice gives no second fill.
    """
    if order.filled <= cursor.filled or order.average is None:
        return None
    amount = order.filled - cursor.filled
    cost = order.filled * order.average
    fee = max(order.fee - cursor.fee, Decimal(0))
    price = (cost - cursor.cost) / amount
    if price <= 0:
        price = order.average
    fill = Fill(
        trade_id=f"{order.client_order_id}:{order.filled}",
        client_order_id=order.client_order_id,
        market=order.market,
        side=order.side,
        amount=amount,
        price=price,
        fee=fee,
        fee_currency=order.fee_currency or order.market.quote,
        timestamp=order.updated_at,
    )
    return fill, FillCursor(filled=order.filled, cost=cost, fee=max(order.fee, cursor.fee))
