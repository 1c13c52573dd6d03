"""Reconcile: bring the ledger and the portfolio to what the exchange says."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tickstep.models import (
    Market,
    OrderStatus,
    Side,
)
from tickstep.orders import DEFAULT_GRACE_MS, OPEN_LEDGER_STATUSES
from tickstep.portfolio import settle_account
from tickstep.ports import (
    Desk,
    ExchangeSession,
    InvalidTransition,
    OrderRepository,
    PortfolioRepository,
    StaleWrite,
)
from tickstep.redaction import redact

if TYPE_CHECKING:
    pass


@dataclass
class ReconcileReport:
    checked: int = 0
    settled: int = 0
    adopted: int = 0
    pending: int = 0
    drift: int = 0
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReconcilePorts:
    """What the reconcile function works with (its handler's dependencies, ``tickstep run``'s)."""

    markets: Sequence[Market]
    orders: OrderRepository
    portfolio: PortfolioRepository
    open_exchange: Callable[[], ExchangeSession]
    """The stack's one exchange account (the paper account holds every market)."""
    clock: Callable[[], int]
    grace_ms: int = DEFAULT_GRACE_MS


def reconcile_account(ports: ReconcilePorts) -> ReconcileReport:
    """One scheduled run: open the account and :func:`reconcile` it. An exchange error may echo
    a signed request, key included: the report's errors carry no secret of the session."""
    session = ports.open_exchange()
    desk = Desk(session, ports.orders, ports.portfolio, ports.clock(), ports.grace_ms)
    report = reconcile(ports.markets, desk)
    report.errors = {k: redact(v, session.secrets) for k, v in report.errors.items()}
    return report


def reconcile(markets: Sequence[Market], desk: Desk) -> ReconcileReport:
    """Bring the ledger to what the exchange says, along allowed transitions only.

    An order left unknown that the exchange still does not have once the grace window has
    passed was never placed: it fails. Orders the pipeline did not place are adopted. Every
    difference found counts as drift (the alarm's metric).
    """
    from tickstep.exchanges.errors import ExchangeError
    from tickstep.exchanges.port import is_external

    exchange, orders, portfolio, now_ms = (
        desk.session.exchange,
        desk.orders,
        desk.portfolio,
        desk.now_ms,
    )
    report = ReconcileReport()
    # In the order they were decided (a buy before the sell that closes it, on one candle):
    # a sell's fills applied before the buy it sells would find nothing held.
    open_entries = sorted(
        orders.by_status(OPEN_LEDGER_STATUSES),
        key=lambda e: (e.candle_time, e.side is not Side.BUY, e.intent_id),
    )
    for entry in open_entries:
        report.checked += 1
        try:
            found = exchange.fetch_order_by_client_id(entry.market, entry.client_order_id)
            if found is None:
                if entry.status is OrderStatus.UNKNOWN:
                    if entry.sent_at is not None and now_ms - entry.sent_at < desk.grace_ms:
                        report.pending += 1
                        continue
                    orders.settle(
                        entry.intent_id,
                        entry.status,
                        OrderStatus.FAILED,
                        "reconcile: the exchange has no such order after the grace window",
                        now_ms,
                    )
                    report.settled += 1
                report.drift += 1
                continue
            previous = entry.order
            changed = found.status != entry.status or (
                previous is None or previous.filled != found.filled
            )
            if changed:
                orders.record(entry.intent_id, entry.status, found, now_ms)
                report.settled += 1
                report.drift += 1
            settle_account(portfolio, exchange, found, now_ms)
        except (ExchangeError, StaleWrite, InvalidTransition, ValueError) as exc:
            # One order that cannot be settled (ValueError: its fills do not fit the
            # position) is reported as drift; the others are still reconciled.
            report.errors[entry.intent_id] = f"{type(exc).__name__}: {exc}"[:300]
            report.drift += 1
    for market in markets:
        try:
            for order in exchange.fetch_open_orders(market):
                if is_external(order) and orders.adopt(order, now_ms):
                    report.adopted += 1
                    report.drift += 1
        except ExchangeError as exc:
            report.errors[market.key] = f"{type(exc).__name__}: {exc}"[:300]
    try:
        portfolio.put_balances(exchange.fetch_balance(), now_ms)
    except ExchangeError as exc:
        report.errors["balances"] = f"{type(exc).__name__}: {exc}"[:300]
    desk.session.commit()
    return report
