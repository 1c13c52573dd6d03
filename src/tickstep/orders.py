"""Order intents: the deterministic id every redelivery of the same decision maps to."""

from __future__ import annotations

import hashlib

from tickstep.models import (
    Market,
    OrderIntent,
    OrderStatus,
    OrderType,
    Side,
)

INTENT_ID_LENGTH = 32
"""32 lowercase alphanumerics: within every major exchange's clientOrderId rules
(Binance ``[.A-Z:/a-z0-9_-]{1,36}``, OKX alphanumeric up to 32, Bybit up to 36)."""


def intent_id(strategy: str, market: Market, candle_time: int, side: Side) -> str:
    """Derive the intent id (also the exchange ``clientOrderId``) from what makes it unique.

    The same strategy, market, candle and side always give the same id, so a duplicated
    ``CandleClosed`` can never become a second order; anything else gives another id.
    """
    key = "\x1f".join((strategy, market.key, str(int(candle_time)), side.value))
    digest = hashlib.sha256(key.encode()).hexdigest()
    return "ts" + digest[: INTENT_ID_LENGTH - 2]


def new_intent(
    *,
    strategy: str,
    market: Market,
    candle_time: int,
    side: Side,
    reference_price: object,
    order_type: OrderType = OrderType.MARKET,
    limit_price: object = None,
    confidence: float | None = None,
) -> OrderIntent:
    """Build an :class:`OrderIntent` with its derived id (inputs are validated by the model)."""
    return OrderIntent.model_validate(
        {
            "intent_id": intent_id(strategy, market, candle_time, side),
            "strategy": strategy,
            "market": market,
            "candle_time": candle_time,
            "side": side,
            "order_type": order_type,
            "reference_price": reference_price,
            "limit_price": limit_price,
            "confidence": confidence,
        }
    )


ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset(
        {
            OrderStatus.SUBMITTED,
            OrderStatus.REJECTED,
            OrderStatus.FAILED,
            OrderStatus.UNKNOWN,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
        }
    ),
    OrderStatus.UNKNOWN: frozenset(
        {
            OrderStatus.SUBMITTED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
            OrderStatus.FAILED,
            OrderStatus.NEW,
        }
    ),
    OrderStatus.SUBMITTED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED}
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.FAILED: frozenset(),
}
"""Where an order may go next. Terminal states go nowhere; UNKNOWN (outcome of an ambiguous
send) may resolve to anything, including NEW when the exchange proves it never had the order."""


def can_transition(current: OrderStatus, new: OrderStatus) -> bool:
    return new in ALLOWED_TRANSITIONS[current]


def is_repeat(intent_id: str, expected: OrderStatus, new: OrderStatus) -> bool:
    """What every ledger adapter checks before it moves an order from ``expected`` to ``new``:
    True for the same terminal status again (a redelivery: a no-op); InvalidTransition for a
    move :func:`can_transition` refuses."""
    from tickstep.ports import InvalidTransition

    if expected == new and not can_transition(expected, new):
        return True
    if not can_transition(expected, new):
        raise InvalidTransition(f"{intent_id}: {expected.value} -> {new.value} is not allowed")
    return False


OPEN_LEDGER_STATUSES = (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNKNOWN)


TERMINAL = frozenset(s for s in OrderStatus if not can_transition(s, OrderStatus.FILLED)) - {
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.SUBMITTED,
}


DEFAULT_GRACE_MS = 60_000
"""How long an order sent but not found is given to appear before it may be sent again."""
