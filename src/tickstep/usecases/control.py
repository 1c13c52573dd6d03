"""Control: the kill switch (ACTIVE, REDUCING, HALTED) and the status an operator reads."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tickstep.messages import EVENT_TRADING_STATE_CHANGED, SOURCE_CONTROL, TradingStateChange
from tickstep.models import (
    TradingState,
    TradingStateRecord,
)
from tickstep.orders import OPEN_LEDGER_STATUSES
from tickstep.ports import ControlRepository, OrderRepository, PortfolioRepository, Publisher


def status(
    control: ControlRepository, orders: OrderRepository, portfolio: PortfolioRepository
) -> dict[str, Any]:
    """The operator's one-look summary: trading state, open orders by status, positions."""
    by_status = Counter(e.status.value for e in orders.by_status(OPEN_LEDGER_STATUSES))
    held = [p for p in portfolio.positions() if p.amount > 0]
    return {
        "trading_state": control.get().model_dump(mode="json"),
        "open_orders": dict(by_status),
        "positions_held": len(held),
    }


def set_trading_state(
    state: TradingState,
    *,
    reason: str,
    who: str,
    now_ms: int,
    control: ControlRepository,
    publisher: Publisher,
) -> TradingStateRecord:
    """The kill switch: write the state, and publish the change (also when re-set, so every
    operator action is on the bus)."""
    previous = control.get()
    record = TradingStateRecord(state=state, reason=reason, changed_at=now_ms, changed_by=who)
    record_state_change(record, previous.state, control, publisher, SOURCE_CONTROL)
    return record


def record_state_change(
    record: TradingStateRecord,
    previous: TradingState,
    control: ControlRepository,
    publisher: Publisher,
    source: str,
    *,
    unless: TradingState | None = None,
) -> bool:
    """Write the trading state and put the change on the bus; ``unless`` skips both when the
    state already is that (so an automatic halt is announced once)."""
    if not control.set(record, unless=unless):
        return False
    change = TradingStateChange(previous=previous, current=record)
    publisher.publish(source, EVENT_TRADING_STATE_CHANGED, [change.model_dump(mode="json")])
    return True
