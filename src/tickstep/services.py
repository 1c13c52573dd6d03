"""The use cases the Lambda handlers call, one per pipeline step, over ports and stores.

Pure orchestration: no boto3, no environment, no clock read (``now_ms`` is passed in), so the
handlers, the offline runtime and the unit tests (with in-memory fakes) run the same code.
The stores are described by the small protocols below; :mod:`tickstep.stores` implements them
over DynamoDB. Strategies (numpy) are imported inside :func:`compute_signal` only, and the paper
exchange inside :class:`PaperAccount`, so the API function imports neither. Nothing here
imports :mod:`tickstep.exchanges` at module scope either: its package imports the replay feed,
hence numpy.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, Self

from pydantic import Field, model_validator

from tickstep.models import (
    Balance,
    Candle,
    CandleClosed,
    CandlesClosed,
    Fill,
    Market,
    MarketRules,
    Model,
    Order,
    OrderIntent,
    OrderStatus,
    Position,
    RiskDecision,
    Side,
    Signal,
    SignalAction,
    TradingState,
    TradingStateRecord,
)
from tickstep.orders import can_transition, new_intent
from tickstep.redaction import redact

if TYPE_CHECKING:
    from tickstep.config import PaperSettings
    from tickstep.exchanges.paper import PaperExchange, PriceSource
    from tickstep.exchanges.port import CandleSource, ExchangePort
    from tickstep.risk import RiskLimits
    from tickstep.stores import AccountRecord, LedgerEntry
    from tickstep.strategies import MarketConfig

__all__ = [
    "CANDLES_PER_EVENT",
    "EVENT_CANDLES_CLOSED",
    "EVENT_TRADING_STATE_CHANGED",
    "SOURCE_CONTROL",
    "SOURCE_INGEST",
    "ExecuteCommand",
    "IngestReport",
    "PaperAccount",
    "ReconcileReport",
    "RiskInput",
    "RiskOutput",
    "SignalOutput",
    "StoredCandlePrices",
    "TradingStateChange",
    "UnknownMarketError",
    "check_risk",
    "compute_signal",
    "equity_of",
    "execute_order",
    "ingest",
    "reconcile",
    "redact",
    "set_trading_state",
    "status",
    "task_token_of",
]

SOURCE_INGEST = "tickstep.ingest"
SOURCE_RISK = "tickstep.risk"
SOURCE_CONTROL = "tickstep.control"
EVENT_CANDLES_CLOSED = "CandlesClosed"
CANDLES_PER_EVENT = 100
"""CandleClosed items per event: ~0.5 kB each, well inside EventBridge's 256 kB entry."""
EVENT_TRADING_STATE_CHANGED = "TradingStateChanged"
OPEN_LEDGER_STATUSES = (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNKNOWN)
TERMINAL = frozenset(s for s in OrderStatus if not can_transition(s, OrderStatus.FILLED)) - {
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.SUBMITTED,
}
DEFAULT_GRACE_MS = 60_000
"""How long an order sent but not found is given to appear before it may be sent again."""


class UnknownMarketError(ValueError):
    """An event names a market that is not configured."""


# -- ports ------------------------------------------------------------------------------------


class CandleRepository(Protocol):
    def put(self, market: Market, candles: Sequence[Candle]) -> None: ...
    def latest(self, market: Market, n: int, *, until_ms: int | None = None) -> list[Candle]: ...
    def latest_timestamp(self, market: Market) -> int | None: ...


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


class PortfolioRepository(Protocol):
    def position(self, market: Market) -> Position: ...
    def positions(self) -> list[Position]: ...
    def apply_order_fills(self, order: Order) -> list[Fill]: ...
    def account(self) -> AccountRecord: ...
    def mark_equity(self, equity: Decimal, now_ms: int) -> None: ...
    def record_order_placed(self, at_ms: int) -> None: ...
    def balances(self) -> dict[str, Balance] | None: ...
    def put_balances(self, balances: dict[str, Balance], now_ms: int) -> None: ...
    def rules(self, market: Market) -> MarketRules | None: ...
    def put_rules(self, market: Market, rules: MarketRules) -> None: ...
    def paper_state(self) -> tuple[str | None, int]: ...
    def save_paper_state(self, state_json: str, version: int) -> int: ...


class ControlRepository(Protocol):
    def get(self) -> TradingStateRecord: ...
    def set(self, record: TradingStateRecord, *, unless: TradingState | None = None) -> bool: ...


class Publisher(Protocol):
    def publish(self, source: str, detail_type: str, details: Sequence[dict[str, Any]]) -> None: ...


# -- messages ---------------------------------------------------------------------------------


class SignalOutput(Model):
    """What the signal function returns to the decide workflow (``intent`` null: no order)."""

    signal: Signal
    intent: OrderIntent | None


class RiskInput(Model):
    """What the decide workflow's CheckRisk passes: the signal and the intent it produced."""

    signal: Signal
    intent: OrderIntent

    @model_validator(mode="after")
    def _intent_matches_signal(self) -> Self:
        if self.intent.market != self.signal.market:
            raise ValueError("intent.market: differs from signal.market")
        if self.intent.candle_time != self.signal.candle_time:
            raise ValueError("intent.candle_time: differs from signal.candle_time")
        return self


class RiskOutput(Model):
    intent: OrderIntent
    decision: RiskDecision


class ExecuteCommand(Model):
    """The order queue's message body, as the order workflow's SubmitOrder sends it."""

    task_token: str = Field(min_length=1, max_length=4096)
    intent: OrderIntent
    decision: RiskDecision
    execution: str = Field(min_length=1, max_length=2048)
    attempt: int = Field(ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _decision_approves_intent(self) -> Self:
        if self.decision.intent_id != self.intent.intent_id:
            raise ValueError("decision.intent_id: differs from intent.intent_id")
        if not self.decision.approved:
            raise ValueError("decision.approved: only an approved intent is executed")
        return self


_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_JSON = json.JSONDecoder()


def _after_space(body: str, at: int) -> int:
    match = _JSON_SPACE.match(body, at)
    return match.end() if match else at


def task_token_of(body: str) -> str | None:
    """The ``task_token`` of an order message that is otherwise invalid, so its workflow hears
    now instead of waiting out its timeout. Only the top-level object is read, and the values
    nested in it are skipped without recursion: a body nested 5,000 deep still gives its token
    (``json.loads`` raises ``RecursionError`` on it, pydantic stops at depth 200)."""
    token = None
    try:
        at = _after_space(body, 0)
        if body[at : at + 1] != "{":
            return None
        at += 1
        while body[(at := _after_space(body, at)) : at + 1] == '"':
            key, at = _JSON.raw_decode(body, at)  # a string: no recursion
            at = _after_space(body, at)
            if body[at : at + 1] != ":":
                return None
            at = _after_space(body, at + 1)
            if body[at : at + 1] == '"':
                value, at = _JSON.raw_decode(body, at)
                if key == "task_token" and isinstance(value, str):
                    token = value
            else:
                at = _skip_json_value(body, at)
            at = _after_space(body, at)
            if body[at : at + 1] != ",":
                break
            at += 1
    except ValueError:  # a malformed string
        return None
    return token if token is not None and 0 < len(token) <= 4096 else None


def _skip_json_value(body: str, at: int) -> int:
    """Where the value starting at ``at`` ends (the ``,`` or ``}`` after it), by counting
    brackets outside strings."""
    depth = 0
    while at < len(body):
        char = body[at]
        if char == '"':
            _, at = _JSON.raw_decode(body, at)
            continue
        if char in "[{":
            depth += 1
        elif char in "]}":
            if depth == 0:
                return at
            depth -= 1
        elif char == "," and depth == 0:
            return at
        at += 1
    return at


class TradingStateChange(Model):
    """Detail of the ``TradingStateChanged`` event."""

    previous: TradingState
    current: TradingStateRecord


# -- signal -----------------------------------------------------------------------------------


def warmup_candles(warmup: int) -> int:
    """Candles to read for a strategy: twice its warmup plus some, so exponential averages
    (MACD) have converged and the last signal equals a backtest's over the full history."""
    return 2 * warmup + 20


def compute_signal(
    event: CandleClosed,
    *,
    markets: Mapping[str, MarketConfig],
    candles: CandleRepository,
    portfolio: PortfolioRepository,
    signals: SignalRepository | None = None,
    store_hold: bool = False,
) -> SignalOutput:
    """The market's strategy on the candles up to the event's candle, which is always included
    (and stored if missing: the event is the source of truth). A SELL with nothing held, and
    every HOLD, give no intent."""
    from tickstep.candles import CandleArrays
    from tickstep.strategies import build_strategy

    configured = markets.get(event.market.key)
    if configured is None:
        raise UnknownMarketError(f"market: {event.market.key} is not configured")
    strategy = build_strategy(configured.strategy)
    history = candles.latest(
        event.market, warmup_candles(strategy.warmup), until_ms=event.candle.timestamp
    )
    if not history or history[-1] != event.candle:
        candles.put(event.market, [event.candle])
        history = [c for c in history if c.timestamp < event.candle.timestamp]
        history.append(event.candle)
    signal = strategy.signal(event.market, CandleArrays.from_candles(history))
    intent = None
    if signal.action is not SignalAction.HOLD:
        side = Side.BUY if signal.action is SignalAction.BUY else Side.SELL
        if side is Side.BUY or portfolio.position(event.market).amount > 0:
            intent = new_intent(
                strategy=strategy.name,
                market=event.market,
                candle_time=signal.candle_time,
                side=side,
                reference_price=signal.close,
                confidence=signal.strength,
            )
    if signals is not None and (store_hold or signal.action is not SignalAction.HOLD):
        signals.put(signal)
    return SignalOutput(signal=signal, intent=intent)


# -- risk -------------------------------------------------------------------------------------


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


def check_risk(
    request: RiskInput,
    *,
    limits: RiskLimits,
    candles: CandleRepository,
    portfolio: PortfolioRepository,
    control: ControlRepository,
    publisher: Publisher,
    now_ms: int,
    fallback_rules: Callable[[Market], MarketRules],
    start_balances: Callable[[], Mapping[str, Decimal]],
) -> RiskOutput:
    """Gather the account into a :class:`RiskContext`, evaluate, and pull the kill switch when
    the decision asks for it (once: a second decision tripping the same limit changes
    nothing and publishes nothing).

    The market's price is the latest candle stored at or before ``now_ms``, read here: the
    request's own prices (the signal's close, the intent's reference price) come from the
    event that started the workflow, which a forged event would make agree with each other.
    """
    # Here, not at module scope: the signal, ingest, execute, reconcile and API functions
    # import this module but never decide risk (~7 ms of their cold start).
    from tickstep.risk import RiskContext, evaluate

    intent = request.intent
    market = intent.market
    balances = portfolio.balances()
    if balances is None:
        balances = {c: Balance(currency=c, free=v) for c, v in start_balances().items()}
    positions = portfolio.positions()
    position = next((p for p in positions if p.market == market), Position(market=market))
    stored = candles.latest(market, 1, until_ms=now_ms)
    last = stored[-1] if stored else None
    prices = {market.key: last.close} if last else {}
    equity, exposure = equity_of(market.quote, balances, positions, prices)
    account = portfolio.account()
    today = now_ms // 86_400_000
    peak = max(account.peak_equity or equity, equity)
    day_start = account.day_start_equity if account.day == today else None
    trading = control.get()
    base = balances.get(market.base)
    quote = balances.get(market.quote)
    ctx = RiskContext(
        now_ms=now_ms,
        trading_state=trading.state,
        position=position.amount,
        total_exposure=exposure,
        free_quote=quote.free if quote else Decimal(0),
        free_base=base.free if base else Decimal(0),
        equity=max(equity, Decimal(0)),
        peak_equity=max(peak, Decimal(0)),
        day_start_equity=max(day_start if day_start is not None else equity, Decimal(0)),
        last_losing_trade_ms=account.last_losing_trade_ms,
        recent_order_times_ms=tuple(t for t in account.order_times_ms if t > now_ms - 3_600_000),
        last_candle_time=last.timestamp if last else None,
        last_close=last.close if last else None,
        rules=portfolio.rules(market) or fallback_rules(market),
    )
    decision = evaluate(intent, ctx, limits)
    if decision.new_trading_state is not None:
        record = TradingStateRecord(
            state=decision.new_trading_state,
            reason=f"risk: {', '.join(r.value for r in decision.reasons)}: {decision.detail}"[:500],
            changed_at=now_ms,
            changed_by="risk",
        )
        _record_state_change(
            record, trading.state, control, publisher, SOURCE_RISK, unless=record.state
        )
    return RiskOutput(intent=intent, decision=decision)


# -- execute ----------------------------------------------------------------------------------


class StoredCandlePrices:
    """Paper prices in AWS: the latest stored candle's close (what ingestion last saw)."""

    def __init__(self, candles: CandleRepository, clock: Callable[[], int]) -> None:
        self._candles = candles
        self._clock = clock

    def now_ms(self) -> int:
        return self._clock()

    def price(self, market: Market, now_ms: int) -> Decimal:
        from tickstep.exchanges.errors import RetryableExchangeError

        latest = self._candles.latest(market, 1, until_ms=now_ms)
        if not latest:
            raise RetryableExchangeError(f"no stored candle of {market.key} yet", code="no_price")
        return latest[0].close


class PaperAccount:
    """The paper exchange whose state lives in the portfolio table between invocations.

    :meth:`open` loads it; :meth:`commit` saves it with an optimistic version check. A lost
    race means the simulated order never happened, so it is a retryable error.
    """

    def __init__(
        self,
        portfolio: PortfolioRepository,
        prices: PriceSource,
        settings: PaperSettings,
        rules: Callable[[Market], MarketRules],
        markets: Iterable[Market],
    ) -> None:
        self._portfolio = portfolio
        self._prices = prices
        self._settings = settings
        self._rules = rules
        self._markets = list(markets)
        self._version = 0
        self._exchange: PaperExchange | None = None

    def open(self) -> PaperExchange:
        from tickstep.exchanges.paper import PaperExchange, PaperState

        state_json, self._version = self._portfolio.paper_state()
        state = PaperState.model_validate_json(state_json) if state_json else None
        self._exchange = PaperExchange(
            {m.symbol: self._rules(m) for m in self._markets},
            self._prices,
            fee_rate=self._settings.fee_rate,
            slippage=self._settings.slippage,
            balances=None if state else self._settings.balances,
            state=state,
        )
        return self._exchange

    def commit(self) -> None:
        from tickstep.exchanges.errors import RetryableExchangeError
        from tickstep.stores import StaleWrite

        if self._exchange is None:
            return
        try:
            self._version = self._portfolio.save_paper_state(
                self._exchange.state.model_dump_json(), self._version
            )
        except StaleWrite as exc:
            raise RetryableExchangeError(str(exc), code="paper_state_conflict") from exc


def execute_order(
    command: ExecuteCommand,
    *,
    exchange: ExchangePort,
    orders: OrderRepository,
    portfolio: PortfolioRepository,
    now_ms: int,
    commit: Callable[[], None] = lambda: None,
    grace_ms: int = DEFAULT_GRACE_MS,
) -> Order:
    """Place the intent at most once and record what the exchange says.

    Look the order up by clientOrderId first and send only when the exchange does not have
    it, and never within ``grace_ms`` of an earlier send (exchanges can report a fresh order as
    not found for a while). ``commit`` persists the exchange's side (the paper account) before
    the ledger and the position change. Raises only the domain's exchange errors.
    """
    from tickstep.exchanges.errors import (
        AmbiguousOrderError,
        FatalExchangeError,
        OrderNotVisibleYet,
        RetryableExchangeError,
    )
    from tickstep.stores import InvalidTransition, StaleWrite

    intent = command.intent
    entry = orders.get(intent.intent_id)
    if entry is None:
        raise FatalExchangeError(f"{intent.intent_id} is not in the ledger", code="not_recorded")
    if entry.status in TERMINAL:
        if entry.order is not None:
            return entry.order
        raise FatalExchangeError(f"already {entry.status.value}", code="already_settled")
    order = exchange.fetch_order_by_client_id(intent.market, intent.client_order_id)
    if order is None:
        if entry.sent_at is not None and now_ms - entry.sent_at < grace_ms:
            raise OrderNotVisibleYet(f"sent at {entry.sent_at}, not visible yet")
        if entry.status not in (OrderStatus.NEW, OrderStatus.UNKNOWN):
            raise AmbiguousOrderError(
                f"ledger says {entry.status.value}, exchange has no such order",
                code="ledger_mismatch",
            )
        try:
            orders.mark_sent(intent.intent_id, now_ms)
        except StaleWrite as exc:
            raise AmbiguousOrderError(str(exc), code="ledger_mismatch") from exc
        assert command.decision.amount is not None  # an approval always has one
        try:
            order = exchange.create_order(
                intent.market,
                intent.side,
                intent.order_type,
                command.decision.amount,
                price=command.decision.price,
                client_order_id=intent.client_order_id,
                cost=command.decision.quote_amount,
            )
        except AmbiguousOrderError:
            order = exchange.fetch_order_by_client_id(intent.market, intent.client_order_id)
            if order is None:
                raise OrderNotVisibleYet(
                    "outcome unknown and not visible yet; looking again before any resend"
                ) from None
        except RetryableExchangeError:
            # Refused before it was processed (a rate limit: the adapters map nothing else
            # to retryable on a send), so no order can appear: the next attempt may send at
            # once instead of waiting out the grace window.
            orders.unmark_sent(intent.intent_id, now_ms)
            raise
        commit()
        portfolio.record_order_placed(now_ms)
    try:
        orders.record(intent.intent_id, entry.status, order, now_ms)
    except StaleWrite:
        current = orders.get(intent.intent_id)
        if current is None or current.status != order.status:
            raise AmbiguousOrderError(
                "the ledger changed while the order was recorded", code="ledger_conflict"
            ) from None
    except InvalidTransition as exc:
        raise AmbiguousOrderError(str(exc), code="ledger_conflict") from exc
    settle_account(portfolio, exchange, order, now_ms)
    return order


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


# -- ingest -----------------------------------------------------------------------------------


@dataclass
class IngestReport:
    candles: int = 0
    events: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def ingest(
    markets: Sequence[Market],
    *,
    source: CandleSource,
    candles: CandleRepository,
    publisher: Publisher,
    backfill: int = 200,
    rules: Callable[[Market], MarketRules] | None = None,
    portfolio: PortfolioRepository | None = None,
    cached_rules: set[str] | None = None,
) -> IngestReport:
    """Publish each market's newly closed candles, then store them.

    One ``CandlesClosed`` event carries every market's new candles (up to
    ``CANDLES_PER_EVENT`` each), so the decide workflow runs once per tick, not once per market.
    A market seen for the first time gets ``backfill`` candles (a strategy's warmup) but only
    its newest is published: older ones would only be stale decisions. Publishing comes first:
    if it fails nothing is stored and the retried run fetches the same candles again (a
    candle published twice is harmless, the intent id makes it one order; one stored but never
    published would be a decision lost). One market's failure is reported and the others go
    on. With ``rules`` and ``portfolio``, each market's rules are cached once per
    ``cached_rules`` set (per cold start) for the risk function.
    """
    from tickstep.exchanges.errors import ExchangeError

    report = IngestReport()
    fetched_ok: list[tuple[Market, list[Candle]]] = []
    closed: list[CandleClosed] = []
    for market in markets:
        try:
            last = candles.latest_timestamp(market)
            if last is None:
                new = source.fetch_ohlcv(market, None, backfill)
                publish = new[-1:]
            else:
                fetched = source.fetch_ohlcv(market, last + market.timeframe_ms, 1000)
                new = [c for c in fetched if c.timestamp > last]
                publish = new
            closed += [CandleClosed(market=market, candle=c) for c in publish]
            fetched_ok.append((market, new))
        except (ExchangeError, ValueError) as exc:
            report.failures[market.key] = f"{type(exc).__name__}: {exc}"[:300]
    batches = [
        CandlesClosed(candles=tuple(closed[i : i + CANDLES_PER_EVENT])).model_dump(mode="json")
        for i in range(0, len(closed), CANDLES_PER_EVENT)
    ]
    if batches:
        publisher.publish(SOURCE_INGEST, EVENT_CANDLES_CLOSED, batches)
    report.events = len(closed)
    for market, new in fetched_ok:
        if new:
            candles.put(market, new)
            report.candles += len(new)
        if rules is None or portfolio is None or cached_rules is None:
            continue
        if market.key not in cached_rules:
            try:
                portfolio.put_rules(market, rules(market))
                cached_rules.add(market.key)
            except Exception as exc:  # a cache: risk falls back, ingestion goes on
                report.failures[f"rules:{market.key}"] = f"{type(exc).__name__}: {exc}"[:300]
    return report


# -- reconcile --------------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    checked: int = 0
    settled: int = 0
    adopted: int = 0
    pending: int = 0
    drift: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def reconcile(
    markets: Sequence[Market],
    *,
    exchange: ExchangePort,
    orders: OrderRepository,
    portfolio: PortfolioRepository,
    now_ms: int,
    commit: Callable[[], None] = lambda: None,
    grace_ms: int = DEFAULT_GRACE_MS,
) -> ReconcileReport:
    """Bring the ledger to what the exchange says, along allowed transitions only.

    An order left unknown that the exchange still does not have once the grace window has
    passed was never placed: it fails. Orders the pipeline did not place are adopted. Every
    difference found counts as drift (the alarm's metric).
    """
    from tickstep.exchanges.errors import ExchangeError
    from tickstep.exchanges.port import is_external
    from tickstep.stores import InvalidTransition, StaleWrite

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
                    if entry.sent_at is not None and now_ms - entry.sent_at < grace_ms:
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
    commit()
    return report


# -- the API ----------------------------------------------------------------------------------


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
    _record_state_change(record, previous.state, control, publisher, SOURCE_CONTROL)
    return record


def _record_state_change(
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


# -- the execute function's answer ------------------------------------------------------------


TASK_ERRORS = (
    "AuthenticationFailed",
    "FatalExchangeError",
    "AmbiguousOrderError",
    "OrderNotVisibleYet",
    "RetryableExchangeError",
)
"""The ``error`` names the order workflow's Retry and Catch know, most specific first."""


@dataclass(frozen=True)
class ExecuteOutcome:
    """Either the order (SendTaskSuccess) or an error name and cause (SendTaskFailure)."""

    order: Order | None = None
    error: str | None = None
    cause: str | None = None


def task_error_name(exc: Exception) -> str:
    """The workflow's error name for an exchange error (a base ExchangeError is ambiguous:
    nothing says the order was not placed)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return next((name for name in TASK_ERRORS if name in names), "AmbiguousOrderError")


def run_execute(
    command: ExecuteCommand,
    *,
    exchange: ExchangePort,
    orders: OrderRepository,
    portfolio: PortfolioRepository,
    control: ControlRepository,
    publisher: Publisher,
    now_ms: int,
    commit: Callable[[], None] = lambda: None,
    grace_ms: int = DEFAULT_GRACE_MS,
    secrets: Sequence[str] = (),
) -> ExecuteOutcome:
    """:func:`execute_order`, with its exchange errors turned into the task's answer; an
    authentication failure also halts trading (a person must look at the keys)."""
    from tickstep.exchanges.errors import AuthenticationFailed, ExchangeError

    try:
        order = execute_order(
            command,
            exchange=exchange,
            orders=orders,
            portfolio=portfolio,
            now_ms=now_ms,
            commit=commit,
            grace_ms=grace_ms,
        )
    except ExchangeError as exc:
        failure: ExchangeError = exc
    else:
        return ExecuteOutcome(order=order)
    # Outside the except block: an error of the halt below (a throttled control table) must
    # not carry the exchange error as its __context__ into the batch's failure text.
    cause = redact(f"{failure.code}: {failure.detail}", secrets)[:1000]
    if isinstance(failure, AuthenticationFailed):
        previous = control.get()
        record = TradingStateRecord(
            state=TradingState.HALTED,
            reason=f"execute: authentication failed: {cause}"[:500],
            changed_at=now_ms,
            changed_by="execute",
        )
        _record_state_change(
            record,
            previous.state,
            control,
            publisher,
            SOURCE_CONTROL,
            unless=TradingState.HALTED,
        )
    return ExecuteOutcome(error=task_error_name(failure), cause=cause)
