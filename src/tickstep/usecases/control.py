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
from tickstep.ports import ControlRepository, OrderRepository, Positions, Publisher


def status(
    control: ControlRepository, orders: OrderRepository, portfolio: Positions
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
    source: str = SOURCE_CONTROL,
    once: bool = False,
) -> TradingStateRecord:
    """The kill switch: write the state, and publish the change from ``source``. An operator's
    change is written and published also when re-set, so every action is on the bus; with
    ``once`` (risk's and execute's automatic halts) a state that already is ``state`` is
    neither written nor published again, so a halt is announced once."""
    previous = control.get()
    record = TradingStateRecord(state=state, reason=reason, changed_at=now_ms, changed_by=who)
    if control.set(record, unless=state if once else None):
        change = TradingStateChange(previous=previous.state, current=record)
        publisher.publish(source, EVENT_TRADING_STATE_CHANGED, [change.model_dump(mode="json")])
    return record
