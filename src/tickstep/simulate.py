"""``tickstep run``: the pipeline's own use cases in one process, over the in-memory adapters
(:mod:`tickstep.memory`) and the paper exchange, on a simulated clock. No AWS, no moto.

At every candle close, as the deployed pipeline does it:

1. **ingest** (:func:`tickstep.usecases.ingest.ingest`, the replay feed as its exchange)
   stores the newly closed candles and publishes one ``CandlesClosed``;
2. **decide**, for each market's candle in that event (the decide workflow's Map):
   :func:`~tickstep.usecases.signal.compute_signal`; HOLD, or a signal with no intent (a SELL
   with nothing held), ends there; an intent goes to :func:`~tickstep.usecases.risk.check_risk`;
   an approval starts the order workflow, once per intent;
3. **execute** (the order workflow): record the intent once, then
   :func:`~tickstep.usecases.execute.submit_order` on the paper account
   (:class:`tickstep.paper_account.PaperAccount`), which fills at the replay feed's price at
   the close: the next candle's open. A refusal is recorded as rejected, an unclear outcome
   as unknown, from the statuses the workflow may move them from.

After the last close, **reconcile** runs once, past the execute grace window, as its schedule
would. The candle closes replayed are those of ``tickstep local`` with the same ``candles``
and backfill, so both give the same signals, risk decisions and fills (a test checks it).

What only this runtime decides, because nothing here runs concurrently: within one close,
every market is decided before any order is placed (the Map, then the order queue, in the
order the workflows were started), and the order path's clock runs :data:`ORDER_STEP_MS` past
the close per order, as the order workflow runs after the decision that started it.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tickstep.candles import CandleArrays
from tickstep.config import TradingConfig
from tickstep.exchanges.paper import DEFAULT_RULES, PaperState
from tickstep.exchanges.replay import ReplayFeed, SimClock
from tickstep.memory import (
    MemoryBus,
    MemoryCandles,
    MemoryControl,
    MemoryDenials,
    MemoryOrders,
    MemoryPortfolio,
    MemorySignals,
    MemoryTaskAnswers,
)
from tickstep.messages import EVENT_CANDLES_CLOSED, ExecuteCommand, RiskInput, RiskOutput
from tickstep.models import (
    Balance,
    CandleClosed,
    CandlesClosed,
    Fill,
    Market,
    MarketRules,
    OrderIntent,
    OrderStatus,
    Position,
    Signal,
    TradingState,
)
from tickstep.paper_account import PaperAccount
from tickstep.portfolio import unrealized_pnl
from tickstep.ports import ExchangeSession
from tickstep.usecases.execute import OrderPath, submit_order
from tickstep.usecases.ingest import IngestPorts, ingest
from tickstep.usecases.reconcile import ReconcilePorts, reconcile_account
from tickstep.usecases.risk import RiskPorts, check_risk
from tickstep.usecases.signal import SignalPorts, compute_signal

BACKFILL = 200
"""Candles ingest stores for a market it has never seen (its default): the first close
replayed is the one after them, as in ``tickstep local``."""

ORDER_STEP_MS = 1
"""How far past the candle close each order of that close is placed: the order path runs
after the decision (on AWS seconds later), so an order is still in risk's one-hour window at
the close an hour on, and two orders of one close are two order times."""

RECONCILE_AFTER_MS = 5 * 60_000
"""Reconcile runs this long after the last order, past the execute grace window."""


@dataclass(frozen=True)
class Retry:
    """One Retry of a state: how many times, and how long before each (full jitter is taken
    at its longest, so a run stays deterministic)."""

    attempts: int
    interval_ms: int
    backoff: float
    max_delay_ms: int

    def delay_ms(self, retried: int) -> int:
        return min(int(self.interval_ms * self.backoff**retried), self.max_delay_ms)


SUBMIT_RETRIES = {
    "OrderNotVisibleYet": Retry(5, 5_000, 2.0, 30_000),
    "RetryableExchangeError": Retry(6, 2_000, 2.0, 30_000),
}
"""The order workflow's SubmitOrder retries by error (statemachines/order.asl.json): the
order path's clock runs on by each interval, so the execute grace window passes as on AWS."""

REJECTED_ERRORS = ("FatalExchangeError", "AuthenticationFailed")
"""SubmitOrder's errors that the workflow records as rejected; every other one as unknown."""


def candle_closes(
    series: Mapping[Market, CandleArrays], *, backfill: int, candles: int | None
) -> list[int]:
    """The candle closes to replay, in time order: every market's closes from the first that
    has ``backfill`` candles before it in every market, the first ``candles`` of them (all when
    None). A market's last candle has no next open to fill at, so its close is not replayed."""
    start = max(int(a.timestamp[0]) + (backfill + 1) * m.timeframe_ms for m, a in series.items())
    closes: set[int] = set()
    for market, arrays in series.items():
        close = arrays.timestamp[:-1] + market.timeframe_ms
        closes.update(int(t) for t in close[close >= start])
    ordered = sorted(closes)
    if candles is not None:
        ordered = ordered[: max(candles, 0)]
    if not ordered:
        raise ValueError(
            "no candle closes to replay: none asked for, or fewer candles than the backfill"
        )
    return ordered


def execution_name(intent: OrderIntent) -> str:
    """The order workflow's execution name (the decide workflow's NameOrderExecution)."""
    base, quote = intent.market.symbol.split("/")
    market = intent.market
    return (
        f"{market.exchange}-{base}-{quote}-{market.timeframe}-{intent.candle_time}-"
        f"{intent.side.value}-{intent.intent_id}"
    )


@dataclass
class MarketStats:
    signals: Counter[str] = field(default_factory=Counter)
    orders: int = 0
    fills: int = 0
    fees: Decimal = Decimal(0)
    position: Position | None = None
    last_close: Decimal = Decimal(0)


@dataclass
class SessionResult:
    """What a session did; ``to_dict`` is its JSON form (``tickstep run --report``)."""

    quote: str
    start_equity: Decimal
    end_equity: Decimal
    decisions: Counter[str]
    markets: dict[str, MarketStats]
    trading_state: TradingState
    candles: int
    signals: list[Signal] = field(default_factory=list)
    """Every signal computed, in the order they were (HOLD included)."""
    risk: list[RiskOutput] = field(default_factory=list)
    """Every risk decision, in the order they were made."""
    fills: list[Fill] = field(default_factory=list)
    """The paper exchange's fills, in the order they happened."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "quote": self.quote,
            "candles": self.candles,
            "start_equity": str(self.start_equity),
            "end_equity": str(self.end_equity),
            "pnl": str(self.end_equity - self.start_equity),
            "trading_state": self.trading_state.value,
            "decisions": dict(self.decisions),
            "markets": {
                key: {
                    "signals": dict(s.signals),
                    "orders": s.orders,
                    "fills": s.fills,
                    "fees": str(s.fees),
                    "position": str(s.position.amount if s.position else 0),
                    "realized_pnl": str(s.position.realized_pnl if s.position else 0),
                    "unrealized_pnl": str(
                        unrealized_pnl(s.position, s.last_close) if s.position else 0
                    ),
                }
                for key, s in self.markets.items()
            },
        }


def _paper_rules(market: Market) -> MarketRules:
    """Paper markets' rules: what ingest caches for risk in paper mode."""
    return DEFAULT_RULES


class PaperSession:
    """One paper account over several markets' candles, through the pipeline's use cases."""

    def __init__(
        self,
        config: TradingConfig,
        series: dict[Market, CandleArrays],
        *,
        candles: int | None = None,
        backfill: int = BACKFILL,
    ) -> None:
        quotes = {m.market.quote for m in config.markets}
        if len(quotes) != 1:
            raise ValueError(f"markets: one quote currency per session, got {sorted(quotes)}")
        missing = [m.market.key for m in config.markets if m.market not in series]
        if missing:
            raise ValueError(f"markets: no candles for {', '.join(missing)}")
        self.config = config
        self.quote = quotes.pop()
        self.markets = [m.market for m in config.markets]
        self.configured = {m.market.key: m for m in config.markets}
        self.backfill = backfill
        self.ticks = candle_closes(
            {m: series[m] for m in self.markets}, backfill=backfill, candles=candles
        )
        self.clock = SimClock()
        self.feed = ReplayFeed(series, self.clock)
        self.candles = MemoryCandles()
        self.signals = MemorySignals()
        self.orders = MemoryOrders()
        self.portfolio = MemoryPortfolio()
        self.control = MemoryControl()
        self.bus = MemoryBus()
        self.tasks = MemoryTaskAnswers()
        self.ingest_ports = IngestPorts(
            self.markets, self.feed, self.candles, self.bus, _paper_rules, self.portfolio
        )
        self.signal_ports = SignalPorts(self.configured, self.candles, self.portfolio, self.signals)
        self.risk_ports = RiskPorts(
            config.limits,
            self.candles,
            self.portfolio,
            self.control,
            self.bus,
            fallback_rules=_paper_rules,
            start_balances=lambda: config.paper.balances,
            denials=MemoryDenials(),
        )
        self.stats = {m.key: MarketStats() for m in self.markets}
        self.decisions: Counter[str] = Counter()
        self.signal_log: list[Signal] = []
        self.risk_log: list[RiskOutput] = []
        self._started: set[str] = set()
        self._read = 0  # bus events already delivered
        self._order_ms = 0  # the order path's clock: set to each close, then runs on
        self._latest_ms = 0  # the latest time it told

    def run(self) -> SessionResult:
        candles = 0
        for now in self.ticks:
            self.clock.set(now)
            self._order_ms = now
            self._ingest()
            approved = []
            for item in self._candles_closed():
                candles += 1
                decided = self._decide(item, now)
                if decided is not None:
                    approved.append(decided)
            for decided in approved:
                self._order_workflow(decided)
        self._reconcile()
        return self._result(candles)

    # -- the steps ------------------------------------------------------------------------

    def _ingest(self) -> None:
        report = ingest(self.ingest_ports, backfill=self.backfill)
        if report.failures:
            raise RuntimeError(f"ingest failed: {report.failures}")

    def _candles_closed(self) -> Iterator[CandleClosed]:
        """What the decide rule delivers: each new ``CandlesClosed`` on the bus, by item."""
        events, self._read = self.bus.events[self._read :], len(self.bus.events)
        for source, detail_type, detail in events:
            if source.startswith("tickstep") and detail_type == EVENT_CANDLES_CLOSED:
                yield from CandlesClosed.model_validate(detail).candles

    def _decide(self, item: CandleClosed, now: int) -> RiskOutput | None:
        """One market's iteration of the decide workflow: the approval to start, or None."""
        stats = self.stats[item.market.key]
        stats.last_close = item.candle.close
        out = compute_signal(item, self.signal_ports)
        self.signal_log.append(out.signal)
        stats.signals[out.signal.action.value] += 1
        if out.intent is None:  # Hold, or NoIntent
            return None
        decided = check_risk(
            RiskInput(signal=out.signal, intent=out.intent), self.risk_ports, now_ms=now
        )
        self.risk_log.append(decided)
        decision = decided.decision
        if not decision.approved:
            for reason in decision.reasons:
                self.decisions[f"denied:{reason.value}"] += 1
            return None
        self.decisions["approved"] += 1
        if decided.intent.intent_id in self._started:  # the named start: AlreadyStarted
            return None
        self._started.add(decided.intent.intent_id)
        return decided

    def _order_workflow(self, decided: RiskOutput) -> None:
        """The order workflow: record the intent once, submit it until the execute step
        answers for good (retrying what SubmitOrder retries), then record a refusal or an
        unclear outcome as the workflow's own states do."""
        intent, decision = decided.intent, decided.decision
        if not self.orders.record_intent(intent, decision):
            return  # AlreadyRecorded
        execution = execution_name(intent)
        retried: Counter[str] = Counter()
        for attempt in itertools.count():
            token = f"{execution}:{attempt}"
            self._execute(
                ExecuteCommand(
                    task_token=token,
                    intent=intent,
                    decision=decision,
                    execution=execution,
                    attempt=attempt,
                )
            )
            kind, answer = self.tasks.answers[token]
            if kind == "success":
                return
            error = str(answer["error"])
            retry = SUBMIT_RETRIES.get(error)
            if retry is None or retried[error] >= retry.attempts:
                self._record_failure(intent, error, str(answer["cause"]))
                return
            self._tick(retry.delay_ms(retried[error]))
            retried[error] += 1

    def _record_failure(self, intent: OrderIntent, error: str, cause: str) -> None:
        """RecordRejected for a refusal, else MarkUnknown (reconcile settles it), each only
        from the statuses it may move the order from: otherwise the ledger already holds the
        outcome."""
        if error in REJECTED_ERRORS:
            leaving: tuple[OrderStatus, ...] = (
                OrderStatus.NEW,
                OrderStatus.UNKNOWN,
                OrderStatus.SUBMITTED,
            )
            status, outcome = OrderStatus.REJECTED, "rejected"
        else:
            leaving, status, outcome = (OrderStatus.NEW,), OrderStatus.UNKNOWN, "unknown"
        self.decisions[f"{outcome}:{cause.partition(':')[0]}"] += 1
        entry = self.orders.get(intent.intent_id)
        if entry is not None and entry.status in leaving:
            self.orders.settle(
                intent.intent_id, entry.status, status, f"{error}: {cause}", self._tick()
            )

    def _execute(self, command: ExecuteCommand) -> None:
        """The execute function on one order message: place it on the paper account and
        answer the workflow's task."""
        account = self._paper_account()
        path = OrderPath(
            orders=self.orders,
            portfolio=self.portfolio,
            control=self.control,
            publisher=self.bus,
            tasks=self.tasks,
            open_exchange=lambda market: ExchangeSession(account.open(), account.commit),
            clock=self._tick,
        )
        submit_order(command, path)

    def _reconcile(self) -> None:
        now = max(self._latest_ms, self.ticks[-1]) + RECONCILE_AFTER_MS
        self.clock.set(now)
        account = self._paper_account()
        session = ExchangeSession(account.open(), account.commit)
        ports = ReconcilePorts(
            self.markets, self.orders, self.portfolio, lambda: session, lambda: now
        )
        reconcile_account(ports)

    def _paper_account(self) -> PaperAccount:
        return PaperAccount(
            self.portfolio,
            self.feed,
            self.config.paper,
            lambda m: self.portfolio.rules(m) or DEFAULT_RULES,
            self.markets,
        )

    def _tick(self, ms: int = ORDER_STEP_MS) -> int:
        """The order path's clock, moved on by ``ms`` (:data:`ORDER_STEP_MS` per write)."""
        self._order_ms += ms
        self._latest_ms = max(self._latest_ms, self._order_ms)
        return self._order_ms

    # -- the result -----------------------------------------------------------------------

    def _result(self, candles: int) -> SessionResult:
        state_json, _ = self.portfolio.paper_state()
        paper = PaperState.model_validate_json(state_json) if state_json else None
        balances = (
            paper.balances
            if paper is not None
            else {c: Balance(currency=c, free=v) for c, v in self.config.paper.balances.items()}
        )
        fills = list(paper.fills) if paper is not None else []
        for order in paper.orders.values() if paper is not None else ():
            self.stats[order.market.key].orders += 1
        for fill in fills:
            stats = self.stats[fill.market.key]
            stats.fills += 1
            stats.fees += fill.fee
        for market in self.markets:
            self.stats[market.key].position = self.portfolio.position(market)
        start = self.config.paper.balances.get(self.quote, Decimal(0))
        cash = balances.get(self.quote)
        held = sum(
            (s.position.amount * s.last_close for s in self.stats.values() if s.position),
            Decimal(0),
        )
        return SessionResult(
            quote=self.quote,
            start_equity=start,
            end_equity=(cash.total if cash else Decimal(0)) + held,
            decisions=self.decisions,
            markets=self.stats,
            trading_state=self.control.get().state,
            candles=candles,
            signals=self.signal_log,
            risk=self.risk_log,
            fills=fills,
        )
