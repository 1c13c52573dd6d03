"""Dashboard: what the web page reads, in one answer (``GET /api/dashboard``).

Trading state, and per market the last candle (its age, stale when older than two
timeframes), the last signal, the position and its realised and unrealised PnL; the equity
curve per quote currency and each market's candles with its fills; the recent orders with
their risk decision and the order workflow's execution; and, where the deployment provides
them, risk denials by reason, alarms in ALARM, dead-letter depths and the release.

Every amount leaves as a decimal string: the page shows it as it is, never through a float.
The equity curve is rebuilt backwards from today's balances and positions through the filled
orders of the ledger, valued at each candle's close (the figures the stores keep, no history
table of its own).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tickstep.models import Candle, Market, OrderStatus, Side
from tickstep.ports import (
    CandleRepository,
    ControlRepository,
    LedgerEntry,
    OrderRepository,
    PortfolioRepository,
    SignalRepository,
)

CHART_CANDLES = 288
"""Candles per market on the charts (a day of 5-minute candles)."""
RECENT_ORDERS = 50
STALE_AFTER_TIMEFRAMES = 2


@dataclass(frozen=True)
class Operations:
    """What only the deployment knows (None: not available there)."""

    denials: Callable[[], Mapping[str, int]] | None = None
    alarms: Callable[[], list[str]] | None = None
    dead_letters: Callable[[], Mapping[str, int]] | None = None
    release: Callable[[], Mapping[str, str]] | None = None
    execution_url: Callable[[LedgerEntry], str | None] | None = None


@dataclass(frozen=True)
class DashboardSources:
    markets: Sequence[Market]
    control: ControlRepository
    orders: OrderRepository
    portfolio: PortfolioRepository
    signals: SignalRepository | None
    candles: CandleRepository
    price: Callable[[Market], Decimal | None]
    """The mark price for unrealised PnL (None: the last stored close)."""
    operations: Operations


def overview(sources: DashboardSources, *, now_ms: int, mode: str) -> dict[str, Any]:
    ledger = sources.orders.by_status(list(OrderStatus))
    filled = [e for e in ledger if e.order is not None and e.order.filled > 0]
    candles = {m: sources.candles.latest(m, CHART_CANDLES) for m in sources.markets}
    positions = {p.market: p for p in sources.portfolio.positions()}
    balances = sources.portfolio.balances() or {}
    markets = []
    equity_now: dict[str, Decimal] = defaultdict(Decimal)
    for currency, balance in balances.items():
        equity_now[currency] += balance.total
    for market in sources.markets:
        row, value = _market_row(sources, market, candles[market], positions, now_ms)
        markets.append(row)
        equity_now[market.quote] += value
    ops = sources.operations
    quotes = {m.quote for m in sources.markets}
    return {
        "generated_at": now_ms,
        "mode": mode,
        "trading_state": sources.control.get().model_dump(mode="json"),
        "markets": markets,
        "balances": {c: str(b.total) for c, b in sorted(balances.items())},
        "equity": {q: str(v) for q, v in sorted(equity_now.items()) if q in quotes},
        "pnl": _pnl_totals(markets),
        "equity_curve": _equity_curves(sources.markets, candles, positions, balances, filled),
        "candles": {m.key: [_candle(c) for c in candles[m]] for m in sources.markets},
        "fills": {m.key: [_fill(e) for e in filled if e.market == m] for m in sources.markets},
        "orders": [_order(e, ops) for e in ledger[:RECENT_ORDERS]],
        "order_count": len(ledger),
        "fill_count": len(filled),
        "fees": str(sum((e.order.fee for e in filled if e.order), Decimal(0))),
        "risk_denials": dict(ops.denials()) if ops.denials else None,
        "alarms": ops.alarms() if ops.alarms else None,
        "dead_letters": dict(ops.dead_letters()) if ops.dead_letters else None,
        "release": dict(ops.release()) if ops.release else None,
    }


def _market_row(
    sources: DashboardSources,
    market: Market,
    candles: list[Candle],
    positions: Mapping[Market, Any],
    now_ms: int,
) -> tuple[dict[str, Any], Decimal]:
    last = candles[-1] if candles else None
    closed_at = last.timestamp + market.timeframe_ms if last else None
    age = now_ms - closed_at if closed_at is not None else None
    signals = sources.signals.latest(market, 1) if sources.signals else []
    position = positions.get(market)
    amount = position.amount if position else Decimal(0)
    price = sources.price(market) or (last.close if last else None)
    unrealised = (
        amount * (price - position.average_price)
        if position and position.average_price is not None and price is not None
        else Decimal(0)
    )
    row = {
        "market": market.key,
        "symbol": market.symbol,
        "timeframe": market.timeframe,
        "quote": market.quote,
        "last_candle_close": closed_at,
        "age_ms": age,
        "stale": age is None or age > STALE_AFTER_TIMEFRAMES * market.timeframe_ms,
        "last_signal": _signal(signals[0]) if signals else None,
        "position": str(amount),
        "average_price": str(position.average_price)
        if position and position.average_price
        else None,
        "price": str(price) if price is not None else None,
        "realized_pnl": str(position.realized_pnl if position else Decimal(0)),
        "unrealized_pnl": str(unrealised),
    }
    return row, amount * price if price is not None else Decimal(0)


def _pnl_totals(rows: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Realised and unrealised PnL per quote currency, summed exactly."""
    totals: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        total = totals.setdefault(row["quote"], {"realized": Decimal(0), "unrealized": Decimal(0)})
        total["realized"] += Decimal(row["realized_pnl"])
        total["unrealized"] += Decimal(row["unrealized_pnl"])
    return {q: {k: str(v) for k, v in t.items()} for q, t in sorted(totals.items())}


def _signal(signal: Any) -> dict[str, Any]:
    return {
        "action": signal.action.value,
        "reason": signal.reason,
        "candle_time": signal.candle_time,
        "close": str(signal.close),
        "indicators": {k: v for k, v in signal.indicators.items() if v is not None},
    }


def _candle(c: Candle) -> dict[str, Any]:
    return {
        "time": c.timestamp,
        "open": str(c.open),
        "high": str(c.high),
        "low": str(c.low),
        "close": str(c.close),
    }


def _fill(entry: LedgerEntry) -> dict[str, Any]:
    assert entry.order is not None
    return {
        "time": entry.candle_time,
        "side": entry.side.value,
        "amount": str(entry.order.filled),
        "price": str(entry.order.average),
    }


def _order(entry: LedgerEntry, ops: Operations) -> dict[str, Any]:
    order, decision = entry.order, entry.decision
    return {
        "intent_id": entry.intent_id,
        "market": entry.market.key,
        "side": entry.side.value,
        "status": entry.status.value,
        "candle_time": entry.candle_time,
        "amount": str(order.amount) if order else None,
        "filled": str(order.filled) if order else "0",
        "average": str(order.average) if order and order.average is not None else None,
        "fee": str(order.fee) if order else "0",
        "fee_currency": order.fee_currency if order else None,
        "error": entry.error,
        "decision": {
            "approved": decision.approved,
            "reasons": [r.value for r in decision.reasons],
            "detail": decision.detail,
        }
        if decision
        else None,
        "execution_url": ops.execution_url(entry) if ops.execution_url else None,
    }


def _equity_curves(
    markets: Sequence[Market],
    candles: Mapping[Market, list[Candle]],
    positions: Mapping[Market, Any],
    balances: Mapping[str, Any],
    filled: list[LedgerEntry],
) -> dict[str, list[dict[str, Any]]]:
    """Equity per quote currency at each candle close, walking back from now: before a fill,
    the position had its amount less and the quote balance its cost (and fee) more."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for quote in sorted({m.quote for m in markets}):
        group = [m for m in markets if m.quote == quote]
        times = sorted({c.timestamp for m in group for c in candles[m]})
        if not times or quote not in balances:
            continue
        closes = {m: {c.timestamp: c.close for c in candles[m]} for m in group}
        cash = Decimal(balances[quote].total)
        held = {m: positions[m].amount if m in positions else Decimal(0) for m in group}
        pending = sorted((e for e in filled if e.market in closes), key=lambda e: e.candle_time)
        last_close: dict[Market, Decimal] = {}
        points: list[dict[str, Any]] = []
        for t in reversed(times):
            while pending and pending[-1].candle_time > t:
                cash, held = _undo(pending.pop(), cash, held, quote)
            value = cash
            for m in group:
                price = closes[m].get(t) or last_close.get(m)
                if price is not None:
                    last_close[m] = price
                    value += held[m] * price
            points.append({"time": t, "value": str(value)})
        curves[quote] = points[::-1]
    return curves


def _undo(
    entry: LedgerEntry, cash: Decimal, held: dict[Market, Decimal], quote: str
) -> tuple[Decimal, dict[Market, Decimal]]:
    order = entry.order
    assert order is not None and order.average is not None
    cost = order.filled * order.average
    fee_in_quote = order.fee if order.fee_currency in (None, quote) else Decimal(0)
    fee_in_base = order.fee - fee_in_quote
    held = dict(held)
    if entry.side is Side.BUY:
        held[entry.market] -= order.filled - fee_in_base
        cash += cost + fee_in_quote
    else:
        held[entry.market] += order.filled + fee_in_base
        cash -= cost - fee_in_quote
    return cash, held
