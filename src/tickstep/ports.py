"""The ports: what the use cases need from storage and the bus, as small protocols, with the
types that cross them. :mod:`tickstep.stores` implements them over DynamoDB,
:mod:`tickstep.aws` the bus and the task tokens; the unit tests and ``tickstep run`` use
in-memory ones."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

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
    Side,
    Signal,
    TradingState,
    TradingStateRecord,
)
from tickstep.orders import DEFAULT_GRACE_MS

if TYPE_CHECKING:
    from tickstep.exchanges.port import ExchangePort


class CandleRepository(Protocol):
    """Closed candles by market, written by ingest alone, with how far ingest has published
    them (the candles after that are stored but not yet announced)."""

    def put(self, market: Market, candles: Sequence[Candle]) -> None: ...
    def latest(self, market: Market, n: int, *, until_ms: int | None = None) -> list[Candle]: ...
    def latest_timestamp(self, market: Market) -> int | None: ...
    def published_through(self, market: Market) -> int | None: ...
    def mark_published(self, market: Market, through_ms: int) -> None: ...


class SignalRepository(Protocol):
    def put(self, signal: Signal) -> None: ...
    def latest(self, market: Market, n: int = 10) -> list[Signal]: ...


class OrderRepository(Protocol):
    def get(self, intent_id: str) -> LedgerEntry | None: ...
    def mark_sent(self, intent_id: str, now_ms: int) -> None: ...
    def unmark_sent(self, intent_id: str, sent_at: int) -> None: ...
    def record(
        self, intent_id: str, expected: OrderStatus, order: Order, now_ms: int
    ) -> LedgerEntry: ...
    def settle(
        self, intent_id: str, expected: OrderStatus, status: OrderStatus, error: str, now_ms: int
    ) -> None: ...
    def adopt(self, order: Order, now_ms: int) -> bool: ...
    def by_status(
        self, statuses: Iterable[OrderStatus], *, limit: int | None = None
    ) -> list[LedgerEntry]: ...


class Positions(Protocol):
    """Each market's position, moved only by an order's fills (each fill once)."""

    def position(self, market: Market) -> Position: ...
    def positions(self) -> list[Position]: ...
    def apply_order_fills(self, order: Order) -> list[Fill]: ...


class Account(Protocol):
    """The account's balances and what the risk guards remember (equity marks, order times)."""

    def account(self) -> AccountRecord: ...
    def mark_equity(self, equity: Decimal, now_ms: int) -> None: ...
    def record_order_placed(self, at_ms: int) -> None: ...
    def balances(self) -> dict[str, Balance] | None: ...
    def put_balances(self, balances: dict[str, Balance], now_ms: int) -> None: ...


class RulesCache(Protocol):
    """Each market's precision and limits as ingest last read them from the exchange."""

    def rules(self, market: Market) -> MarketRules | None: ...
    def put_rules(self, market: Market, rules: MarketRules) -> None: ...


class PaperStateStore(Protocol):
    """The paper exchange's own state (its orders and balances), versioned."""

    def paper_state(self) -> tuple[str | None, int]: ...
    def save_paper_state(self, state_json: str, version: int) -> int: ...


class PortfolioRepository(Positions, Account, RulesCache, PaperStateStore, Protocol):
    """The portfolio table: one adapter for the four ports above. Each use case asks for the
    ones it uses (signal: positions; ingest: the rules cache; the paper exchange: its state)."""


class ControlRepository(Protocol):
    def get(self) -> TradingStateRecord: ...
    def set(self, record: TradingStateRecord, *, unless: TradingState | None = None) -> bool: ...


class DenialCounts(Protocol):
    """How many intents risk denied, by reason code and UTC day (what the dashboard shows:
    AWS keeps no history of the Express decide workflow that made the decisions)."""

    def count(self, day: int, reasons: Sequence[str]) -> None: ...
    def since(self, day: int, today: int) -> dict[str, int]: ...


class Publisher(Protocol):
    def publish(self, source: str, detail_type: str, details: Sequence[dict[str, Any]]) -> None: ...


class StaleWrite(Exception):  # noqa: N818 -- reads as what happened
    """A conditional write lost to another writer (or a repeat): re-read and decide again."""


class InvalidTransition(ValueError):  # noqa: N818
    """The ledger's order cannot move from its status to the requested one."""


class LedgerEntry(BaseModel):
    """One ledger item: the intent the order workflow recorded, and what became of it.

    External orders (adopted by reconcile) have no intent or decision, only an order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    intent_id: str
    status: OrderStatus
    market: Market
    side: Side
    intent: OrderIntent | None = None
    decision: RiskDecision | None = None
    order: Order | None = None
    error: str | None = None
    sent_at: int | None = Field(default=None, description="ms when execute first sent it")
    candle_time: int = 0

    @property
    def client_order_id(self) -> str:
        return self.order.client_order_id if self.order else self.intent_id


class AccountRecord(BaseModel):
    """The account-wide figures risk needs besides positions and balances."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    peak_equity: Decimal | None = None
    day: int | None = None
    day_start_equity: Decimal | None = None
    last_losing_trade_ms: int | None = None
    order_times_ms: tuple[int, ...] = ()


class TaskAnswers(Protocol):
    """Answers the order workflow's ``waitForTaskToken`` task (:class:`tickstep.aws.TaskTokens`);
    each returns whether the workflow took the answer."""

    def succeed(self, token: str, output: dict[str, Any]) -> bool: ...

    def fail(self, token: str, error: str, cause: str) -> bool: ...


@dataclass(frozen=True)
class ExchangeSession:
    """An exchange for one order or one reconcile run (:func:`tickstep.bootstrap.exchange_sessions`
    opens it): ``commit`` persists its side (the paper account's state); ``secrets`` are values
    to keep out of every cause and log line."""

    exchange: ExchangePort
    commit: Callable[[], None] = lambda: None
    secrets: Sequence[str] = ()


@dataclass(frozen=True)
class Desk:
    """The order path as one execute or reconcile run sees it: an exchange session, the ledger,
    the account and the time; ``grace_ms``: how long an order sent may stay invisible on the
    exchange before its absence means it was never placed."""

    session: ExchangeSession
    orders: OrderRepository
    portfolio: PortfolioRepository
    now_ms: int
    grace_ms: int = DEFAULT_GRACE_MS
