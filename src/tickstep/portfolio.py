"""Positions and PnL from fills: the same arithmetic for paper runs, the ledger and backtests.

Long-only spot: a buy adds to the position at a cost basis that includes its fee; a sell
realises ``proceeds - fee - basis`` for the amount sold. All in the quote currency, exact.
"""

from __future__ import annotations

from decimal import Decimal

from tickstep.models import Fill, Position, Side


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
