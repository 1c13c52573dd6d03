"""In-memory adapters of every port (:mod:`tickstep.ports`), for ``tickstep run`` and the unit
tests: the same use cases run over these as over the DynamoDB stores, so they keep the stores'
semantics where a decision depends on them. The ledger writes only along
:func:`tickstep.orders.can_transition`, conditional on the status it expects (``StaleWrite``,
``InvalidTransition``); fills reach positions through :func:`tickstep.portfolio.fill_delta`
exactly once per order report; the paper account's state is saved with a version check; the
kill switch is "ACTIVE, never set" until someone sets it. No boto3, and money stays ``Decimal``.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from tickstep.models import (
    Balance,
    Candle,
    Fill,
    Market,
    MarketRules,
    Order,
    OrderIntent,
    OrderStatus,
    Position,
    RiskDecision,
    Signal,
    TradingState,
    TradingStateRecord,
)
from tickstep.orders import can_transition, is_repeat
from tickstep.portfolio import FillCursor, apply_fill, fill_delta, realized_of
from tickstep.ports import AccountRecord, InvalidTransition, LedgerEntry, StaleWrite

__all__ = [
    "DEFAULT_TRADING_STATE",
    "MemoryBus",
    "MemoryCandles",
    "MemoryControl",
    "MemoryOrders",
    "MemoryPortfolio",
    "MemorySignals",
    "MemoryTaskAnswers",
]

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

DEFAULT_TRADING_STATE = TradingStateRecord(
    state=TradingState.ACTIVE, reason="default: never set", changed_at=0, changed_by="default"
)
"""What the kill switch reads before anybody set it (the same record as the control store's;
a unit test keeps the two equal)."""


class MemoryCandles:
    """:class:`~tickstep.ports.CandleRepository`: candles by market and open time, kept sorted
    so a strategy's window is a slice (``tickstep run`` reads one every candle close)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[int, Candle]] = {}
        self._times: dict[str, list[int]] = {}
        self.puts = 0
        """Calls of :meth:`put` (a test checks a refused event stores nothing)."""
        self.published: dict[str, int] = {}

    def put(self, market: Market, candles: Sequence[Candle]) -> None:
        """Store (or overwrite) candles."""
        self.puts += 1
        rows = self.rows.setdefault(market.key, {})
        times = self._times.setdefault(market.key, [])
        for candle in candles:
            if candle.timestamp not in rows:
                bisect.insort(times, candle.timestamp)
            rows[candle.timestamp] = candle

    def latest(self, market: Market, n: int, *, until_ms: int | None = None) -> list[Candle]:
        """The latest ``n`` candles opened at or before ``until_ms``, oldest first."""
        if n <= 0:
            return []
        times = self._times.get(market.key, [])
        end = len(times) if until_ms is None else bisect.bisect_right(times, until_ms)
        rows = self.rows[market.key] if times else {}
        return [rows[t] for t in times[max(0, end - n) : end]]

    def latest_timestamp(self, market: Market) -> int | None:
        times = self._times.get(market.key)
        return times[-1] if times else None

    def published_through(self, market: Market) -> int | None:
        return self.published.get(market.key)

    def mark_published(self, market: Market, through_ms: int) -> None:
        """Forward only, as the store's conditional update."""
        self.published[market.key] = max(through_ms, self.published.get(market.key, through_ms))


class MemorySignals:
    """:class:`~tickstep.ports.SignalRepository`: one signal per market and candle time."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[int, Signal]] = {}

    def put(self, signal: Signal) -> None:
        self.rows.setdefault(signal.market.key, {})[signal.candle_time] = signal

    def latest(self, market: Market, n: int = 10) -> list[Signal]:
        """The latest ``n`` stored signals of ``market``, newest first."""
        rows = self.rows.get(market.key, {})
        return [rows[t] for t in sorted(rows, reverse=True)[: max(n, 0)]]

    def all(self) -> list[Signal]:
        """Every stored signal, by candle time then market."""
        return sorted(
            (s for rows in self.rows.values() for s in rows.values()),
            key=lambda s: (s.candle_time, s.market.key),
        )


class MemoryOrders:
    """:class:`~tickstep.ports.OrderRepository`: the ledger, by intent id, with the order
    store's conditions (:class:`tickstep.stores.OrderStore`)."""

    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}

    def record_intent(self, intent: OrderIntent, decision: RiskDecision) -> bool:
        """What the order workflow's RecordIntent writes: a new intent, once (False for a
        duplicate, which the workflow ends at AlreadyRecorded)."""
        if intent.intent_id in self.entries:
            return False
        self.entries[intent.intent_id] = LedgerEntry(
            intent_id=intent.intent_id,
            status=OrderStatus.NEW,
            market=intent.market,
            side=intent.side,
            intent=intent,
            decision=decision,
            candle_time=intent.candle_time,
        )
        return True

    def get(self, intent_id: str) -> LedgerEntry | None:
        return self.entries.get(intent_id)

    def mark_sent(self, intent_id: str, now_ms: int) -> None:
        entry = self.entries.get(intent_id)
        if entry is None or entry.status not in (OrderStatus.NEW, OrderStatus.UNKNOWN):
            raise StaleWrite(f"{intent_id}: not in the ledger as new or unknown")
        self.entries[intent_id] = entry.model_copy(update={"sent_at": now_ms})

    def unmark_sent(self, intent_id: str, sent_at: int) -> None:
        entry = self.entries.get(intent_id)
        if (
            entry is not None
            and entry.sent_at == sent_at
            and entry.status in (OrderStatus.NEW, OrderStatus.UNKNOWN)
        ):
            self.entries[intent_id] = entry.model_copy(update={"sent_at": None})

    def record(
        self, intent_id: str, expected: OrderStatus, order: Order, now_ms: int
    ) -> LedgerEntry:
        """Move the order from ``expected`` to ``order.status``; the same terminal status
        again is a no-op, anything :func:`can_transition` refuses is InvalidTransition."""
        current = self.entries.get(intent_id)
        if is_repeat(intent_id, expected, order.status):
            if current is None:
                raise StaleWrite(f"{intent_id}: not in the ledger")
            return current
        if current is None or current.status != expected:
            raise StaleWrite(f"{intent_id}: no longer {expected.value}")
        entry = current.model_copy(update={"status": order.status, "order": order})
        self.entries[intent_id] = entry
        return entry

    def settle(
        self, intent_id: str, expected: OrderStatus, status: OrderStatus, error: str, now_ms: int
    ) -> None:
        if not can_transition(expected, status):
            raise InvalidTransition(f"{intent_id}: {expected.value} -> {status.value}")
        current = self.entries.get(intent_id)
        if current is None or current.status != expected:
            raise StaleWrite(f"{intent_id}: no longer {expected.value}")
        self.entries[intent_id] = current.model_copy(
            update={"status": status, "error": error[:1000]}
        )

    def adopt(self, order: Order, now_ms: int) -> bool:
        if order.intent_id in self.entries:
            return False
        self.entries[order.intent_id] = LedgerEntry(
            intent_id=order.intent_id,
            status=order.status,
            market=order.market,
            side=order.side,
            order=order,
            candle_time=order.created_at,
        )
        return True

    def by_status(
        self, statuses: Iterable[OrderStatus], *, limit: int | None = None
    ) -> list[LedgerEntry]:
        """Orders in any of ``statuses``, newest candle first."""
        wanted = set(statuses)
        found = [e for e in self.entries.values() if e.status in wanted]
        found.sort(key=lambda e: e.candle_time, reverse=True)
        return found[:limit] if limit is not None else found


class MemoryPortfolio:
    """:class:`~tickstep.ports.PortfolioRepository`: positions and fill cursors, the account's
    marks, balances, market rules and the paper account's state, with the portfolio store's
    rules (:class:`tickstep.stores.PortfolioStore`)."""

    def __init__(self) -> None:
        self.positions_by_market: dict[str, Position] = {}
        self.cursors: dict[str, FillCursor] = {}
        self.account_record = AccountRecord()
        self._balances: dict[str, Balance] | None = None
        self._rules: dict[str, MarketRules] = {}
        self._paper: tuple[str | None, int] = (None, 0)

    # positions

    def position(self, market: Market) -> Position:
        return self.positions_by_market.get(market.key, Position(market=market))

    def positions(self) -> list[Position]:
        return list(self.positions_by_market.values())

    def set_position(self, position: Position) -> None:
        """Put a position in place (tests: an account that already holds something)."""
        self.positions_by_market[position.market.key] = position

    def apply_order_fills(self, order: Order) -> list[Fill]:
        """Apply the part of ``order`` not yet in its position, exactly once; a losing fill
        is the account's latest loss (risk's cooldown)."""
        delta = fill_delta(order, self.cursors.get(order.client_order_id, FillCursor()))
        if delta is None:
            return []
        fill, cursor = delta
        before = self.position(order.market)
        after = apply_fill(before, fill)
        self.cursors[order.client_order_id] = cursor
        self.set_position(after)
        if realized_of(before, after) < 0:
            last = self.account_record.last_losing_trade_ms
            if last is None or last < fill.timestamp:
                self._update_account(last_losing_trade_ms=fill.timestamp)
        return [fill]

    # the account

    def account(self) -> AccountRecord:
        return self.account_record

    def _update_account(self, **values: Any) -> None:
        self.account_record = self.account_record.model_copy(update=values)

    def mark_equity(self, equity: Decimal, now_ms: int) -> None:
        """Raise the peak if ``equity`` is above it; start a new day's mark at the first
        observation of a UTC day. Marks never move backwards."""
        record = self.account_record
        if record.peak_equity is None or record.peak_equity < equity:
            self._update_account(peak_equity=equity)
        day = now_ms // DAY_MS
        if record.day is None or record.day < day:
            self._update_account(day=day, day_start_equity=equity)

    def record_order_placed(self, at_ms: int) -> None:
        """Keep the last hour's order times (risk's orders-per-hour guard); a time already
        kept is a repeat."""
        old = self.account_record.order_times_ms
        if at_ms in old:
            return
        kept = sorted([t for t in old if t > at_ms - HOUR_MS] + [at_ms])
        self._update_account(order_times_ms=tuple(kept))

    # balances

    def balances(self) -> dict[str, Balance] | None:
        return None if self._balances is None else dict(self._balances)

    def put_balances(self, balances: dict[str, Balance], now_ms: int) -> None:
        self._balances = dict(balances)

    # market rules

    def rules(self, market: Market) -> MarketRules | None:
        return self._rules.get(market.key)

    def put_rules(self, market: Market, rules: MarketRules) -> None:
        self._rules[market.key] = rules

    # the paper account

    def paper_state(self) -> tuple[str | None, int]:
        return self._paper

    def save_paper_state(self, state_json: str, version: int) -> int:
        """Write the state if nobody wrote since ``version`` was read; the new version."""
        if version != self._paper[1]:
            raise StaleWrite("the paper account changed since it was read")
        self._paper = (state_json, version + 1)
        return version + 1


class MemoryDenials:
    """:class:`~tickstep.ports.DenialCounts`: denials by reason, by day."""

    def __init__(self) -> None:
        self.days: dict[int, Counter[str]] = {}

    def count(self, day: int, reasons: Sequence[str]) -> None:
        self.days.setdefault(day, Counter()).update(set(reasons))

    def since(self, day: int, today: int) -> dict[str, int]:
        total: Counter[str] = Counter()
        for d, counts in self.days.items():
            if day <= d <= today:
                total.update(counts)
        return dict(sorted(total.items()))


class MemoryControl:
    """:class:`~tickstep.ports.ControlRepository`: the trading state, ACTIVE until set."""

    def __init__(self) -> None:
        self.stored: TradingStateRecord | None = None

    def get(self) -> TradingStateRecord:
        return DEFAULT_TRADING_STATE if self.stored is None else self.stored

    def set(self, record: TradingStateRecord, *, unless: TradingState | None = None) -> bool:
        """Write the state; with ``unless``, only if the state stored is not that one."""
        if unless is not None and self.stored is not None and self.stored.state is unless:
            return False
        self.stored = record
        return True


class MemoryBus:
    """:class:`~tickstep.ports.Publisher`: keeps what was published, in order, as
    ``(source, detail_type, detail)``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, source: str, detail_type: str, details: Sequence[dict[str, Any]]) -> None:
        self.events.extend((source, detail_type, dict(d)) for d in details)


class MemoryTaskAnswers:
    """:class:`~tickstep.ports.TaskAnswers`: the order workflow's task tokens. A token is
    answered once; a second answer is not taken (False), as Step Functions refuses it."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[str, dict[str, Any]]] = {}
        """By token: ``("success", output)`` or ``("failure", {"error": ..., "cause": ...})``."""

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        return self._answer(token, ("success", dict(output)))

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._answer(token, ("failure", {"error": error[:256], "cause": cause[:32768]}))

    def _answer(self, token: str, answer: tuple[str, dict[str, Any]]) -> bool:
        if token in self.answers:
            return False
        self.answers[token] = answer
        return True
