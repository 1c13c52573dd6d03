"""The per-step use cases over the in-memory adapters (tickstep.memory, which `tickstep run`
uses too) and the paper exchange (no AWS, no moto); and those adapters' own semantics."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.builders import PAPER_ETH_BTC as MARKET
from tests.builders import FixedPrices
from tickstep.config import DEFAULT_LIMITS
from tickstep.exchanges import (
    AmbiguousOrderError,
    AuthenticationFailed,
    OrderNotVisibleYet,
    PaperExchange,
    RetryableExchangeError,
)
from tickstep.exchanges.paper import DEFAULT_RULES
from tickstep.exchanges.port import OrderRequest
from tickstep.memory import DEFAULT_TRADING_STATE as MEMORY_DEFAULT_STATE
from tickstep.memory import (
    MemoryBus,
    MemoryCandles,
    MemoryControl,
    MemoryDenials,
    MemoryOrders,
    MemoryPortfolio,
    MemoryTaskAnswers,
)
from tickstep.messages import ExecuteCommand, RiskInput, UnknownMarketError, task_token_of
from tickstep.models import (
    Balance,
    Candle,
    CandleClosed,
    CandlesClosed,
    Market,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Position,
    ReasonCode,
    RiskDecision,
    Side,
    Signal,
    SignalAction,
    TradingState,
    TradingStateRecord,
)
from tickstep.orders import new_intent
from tickstep.portfolio import FillCursor, fill_delta
from tickstep.ports import (
    AccountRecord,
    Desk,
    ExchangeSession,
    InvalidTransition,
    StaleWrite,
    TaskAnswers,
)
from tickstep.stores.control import DEFAULT_TRADING_STATE
from tickstep.strategies import MarketConfig, StrategyConfig
from tickstep.usecases.control import set_trading_state
from tickstep.usecases.execute import execute_order, run_execute
from tickstep.usecases.ingest import IngestPorts, ingest
from tickstep.usecases.reconcile import reconcile
from tickstep.usecases.risk import RiskPorts, check_risk
from tickstep.usecases.signal import SignalOutput, SignalPorts, compute_signal

T0 = 1_700_000_100_000
TF = MARKET.timeframe_ms


# -- test doubles of the exchange side (the ports' in-memory adapters are tickstep.memory) --


class ListSource:
    """A candle source over a fixed list; ``broken`` markets raise."""

    def __init__(
        self, candles: dict[str, list[Candle]], broken: frozenset[str] = frozenset()
    ) -> None:
        self.candles = candles
        self.broken = broken

    def fetch_ohlcv(
        self, market: Market, since_ms: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        if market.key in self.broken:
            raise RetryableExchangeError("exchange down", code="exchange_not_available")
        rows = [c for c in self.candles[market.key] if since_ms is None or c.timestamp >= since_ms]
        if limit is not None:
            rows = rows[-limit:] if since_ms is None else rows[:limit]
        return rows


def candle_at(timestamp: int, close: str | Decimal) -> Candle:
    price = Decimal(close)
    return Candle(
        timestamp=timestamp, open=price, high=price, low=price, close=price, volume=Decimal(1)
    )


def candle(i: int, close: str) -> Candle:
    return candle_at(T0 + i * TF, close)


def closes_to_candles(closes: list[str]) -> list[Candle]:
    return [candle(i, c) for i, c in enumerate(closes)]


CROSS_UP = ["1.0"] * 5 + ["0.9", "0.8", "0.7", "0.6", "1.2"]
"""SMA(2) crosses above SMA(3) on the last candle: a BUY."""
CROSS_DOWN = ["1.0"] * 5 + ["1.1", "1.2", "1.3", "1.4", "0.8"]

SMA = {
    MARKET.key: MarketConfig(
        market=MARKET, strategy=StrategyConfig(name="sma_cross", params={"fast": 2, "slow": 3})
    )
}


def approved(intent: OrderIntent, amount: str = "0.1") -> RiskDecision:
    return RiskDecision(
        intent_id=intent.intent_id,
        approved=True,
        amount=Decimal(amount),
        reasons=(ReasonCode.APPROVED,),
    )


def order_intent(side: Side, i: int, price: str = "0.05") -> OrderIntent:
    """The strategy's intent to trade at the close of candle ``i``."""
    return new_intent(
        strategy="sma_cross",
        market=MARKET,
        candle_time=T0 + i * TF,
        side=side,
        reference_price=Decimal(price),
    )


def buy_intent(i: int = 9, price: str = "0.05") -> OrderIntent:
    return order_intent(Side.BUY, i, price)


def recorded(*intents: OrderIntent, amount: str = "0.1") -> MemoryOrders:
    """A ledger that recorded each intent, approved for ``amount``."""
    orders = MemoryOrders()
    for intent in intents:
        orders.record_intent(intent, approved(intent, amount))
    return orders


def lost(*intents: OrderIntent) -> MemoryOrders:
    """A ledger whose intents were sent at 0 and whose answers were lost: UNKNOWN."""
    orders = recorded(*intents)
    for intent in intents:
        orders.entries[intent.intent_id] = orders.entries[intent.intent_id].model_copy(
            update={"status": OrderStatus.UNKNOWN, "sent_at": 0}
        )
    return orders


def place(exchange: PaperExchange, intent: OrderIntent) -> Order:
    """The intent's market order for 0.1, on the exchange under the intent's id."""
    return exchange.create_order(
        OrderRequest(
            MARKET,
            intent.side,
            OrderType.MARKET,
            Decimal("0.1"),
            price=None,
            client_order_id=intent.intent_id,
        )
    )


def paper(now: int, price: str = "0.05") -> PaperExchange:
    return PaperExchange(
        {MARKET.symbol: DEFAULT_RULES},
        FixedPrices(price, now),
        fee_rate=Decimal("0.001"),
        slippage=Decimal(0),
        balances={"BTC": Decimal(1)},
    )


# -- signal -----------------------------------------------------------------------------------


def decide(event: CandleClosed, candles: MemoryCandles, portfolio: MemoryPortfolio) -> SignalOutput:
    """The signal step, with the SMA crossover configured on ``MARKET``."""
    return compute_signal(event, SignalPorts(SMA, candles, portfolio))


def test_signal_when_history_is_short_then_holds_and_writes_no_candle() -> None:
    candles, portfolio = MemoryCandles(), MemoryPortfolio()
    event = CandleClosed(market=MARKET, candle=candle(0, "1.0"))

    out = decide(event, candles, portfolio)

    assert out.signal.action is SignalAction.HOLD
    assert out.intent is None
    assert candles.puts == 0  # ingest is the candles' only writer


def test_signal_when_fast_sma_crosses_above_then_buy_intent_has_the_derived_id() -> None:
    candles, portfolio = MemoryCandles(), MemoryPortfolio()
    history = closes_to_candles(CROSS_UP)
    candles.put(MARKET, history[:-1])
    event = CandleClosed(market=MARKET, candle=history[-1])

    out = decide(event, candles, portfolio)

    assert out.signal.action is SignalAction.BUY
    assert out.signal.candle_time == event.candle.timestamp
    assert out.intent is not None
    assert out.intent == new_intent(
        strategy="sma_cross",
        market=MARKET,
        candle_time=event.candle.timestamp,
        side=Side.BUY,
        reference_price=event.candle.close,
        confidence=out.signal.strength,
    )


def test_signal_when_the_stored_candle_differs_then_computes_on_the_event_candle() -> None:
    candles, portfolio = MemoryCandles(), MemoryPortfolio()
    history = closes_to_candles(CROSS_UP)
    stale = history[-1].model_copy(update={"close": Decimal("0.6"), "high": Decimal("1.2")})
    candles.put(MARKET, [*history[:-1], stale])

    out = decide(CandleClosed(market=MARKET, candle=history[-1]), candles, portfolio)

    assert out.signal.close == Decimal("1.2")  # computed on the candle the event names
    assert candles.latest(MARKET, 1) == [stale]  # and the store left to its one writer


def test_signal_when_sell_and_nothing_is_held_then_no_intent() -> None:
    candles, portfolio = MemoryCandles(), MemoryPortfolio()
    history = closes_to_candles(CROSS_DOWN)
    candles.put(MARKET, history)

    out = decide(CandleClosed(market=MARKET, candle=history[-1]), candles, portfolio)

    assert out.signal.action is SignalAction.SELL
    assert out.intent is None


def test_signal_when_sell_and_a_position_is_held_then_sell_intent() -> None:
    candles, portfolio = MemoryCandles(), MemoryPortfolio()
    portfolio.set_position(Position(market=MARKET, amount=Decimal("0.5"), average_price=Decimal(1)))
    history = closes_to_candles(CROSS_DOWN)
    candles.put(MARKET, history)

    out = decide(CandleClosed(market=MARKET, candle=history[-1]), candles, portfolio)

    assert out.intent is not None and out.intent.side is Side.SELL


def test_signal_when_market_is_not_configured_then_names_it_and_stores_nothing() -> None:
    candles = MemoryCandles()
    other = Market(exchange="paper", symbol="LTC/BTC", timeframe="5m")

    with pytest.raises(UnknownMarketError, match="paper:LTC/BTC:5m"):
        decide(CandleClosed(market=other, candle=candle(0, "1")), candles, MemoryPortfolio())
    assert candles.puts == 0


# -- risk -------------------------------------------------------------------------------------


def risk_input(intent: OrderIntent) -> RiskInput:
    signal = Signal(
        market=intent.market,
        strategy=intent.strategy,
        candle_time=intent.candle_time,
        action=SignalAction.BUY if intent.side is Side.BUY else SignalAction.SELL,
        strength=0.5,
        reason="test",
        close=intent.reference_price,
    )
    return RiskInput(signal=signal, intent=intent)


def stored(intent: OrderIntent, close: str | None = None) -> MemoryCandles:
    """The candles table after ingestion stored the intent's candle."""
    candles = MemoryCandles()
    candles.put(intent.market, [candle_at(intent.candle_time, close or intent.reference_price)])
    return candles


def run_risk(
    portfolio: MemoryPortfolio,
    control: MemoryControl,
    bus: MemoryBus,
    now: int,
    *,
    request: RiskInput | None = None,
    candles: MemoryCandles | None = None,
) -> Any:
    ports = RiskPorts(
        limits=DEFAULT_LIMITS,
        candles=stored(buy_intent()) if candles is None else candles,
        portfolio=portfolio,
        control=control,
        publisher=bus,
        fallback_rules=lambda m: DEFAULT_RULES,
        start_balances=lambda: {"BTC": Decimal(1)},
        denials=MemoryDenials(),
    )
    return check_risk(request or risk_input(buy_intent()), ports, now_ms=now)


def test_risk_when_account_is_fresh_then_approves_with_start_balances() -> None:
    intent = buy_intent()
    out = run_risk(MemoryPortfolio(), MemoryControl(), MemoryBus(), intent.candle_time + TF)

    assert out.decision.approved
    assert out.decision.amount == Decimal("0.4")  # 0.02 BTC / 0.05
    assert out.intent == intent


def test_risk_when_daily_loss_is_reached_then_halts_once_and_publishes_once() -> None:
    portfolio, control, bus = MemoryPortfolio(), MemoryControl(), MemoryBus()
    now = buy_intent().candle_time + TF
    portfolio.account_record = AccountRecord(day=now // 86_400_000, day_start_equity=Decimal(2))

    first = run_risk(portfolio, control, bus, now)
    second = run_risk(portfolio, control, bus, now + 1)

    assert not first.decision.approved
    assert ReasonCode.MAX_DAILY_LOSS in first.decision.reasons
    assert control.get().state is TradingState.HALTED
    assert control.get().changed_by == "risk"
    assert [e[1] for e in bus.events] == ["TradingStateChanged"]
    assert ReasonCode.TRADING_HALTED in second.decision.reasons


def forged(price: str) -> RiskInput:
    """An event whose signal and intent agree on a price the market never had."""
    return risk_input(buy_intent(price=price))


def test_risk_when_the_event_price_is_wild_then_denies_against_the_stored_close() -> None:
    intent = buy_intent()
    now = intent.candle_time + TF

    out = run_risk(MemoryPortfolio(), MemoryControl(), MemoryBus(), now, request=forged("1E-12"))

    assert not out.decision.approved
    assert ReasonCode.PRICE_BAND in out.decision.reasons
    assert "last stored close 0.05" in out.decision.detail


def test_risk_when_no_candle_is_stored_for_the_intent_then_denies_no_market_data() -> None:
    intent = buy_intent()
    empty = MemoryCandles()
    older = stored(buy_intent(i=8))

    for candles in (empty, older):
        out = run_risk(
            MemoryPortfolio(),
            MemoryControl(),
            MemoryBus(),
            intent.candle_time + TF,
            candles=candles,
        )

        assert not out.decision.approved
        assert out.decision.reasons == (ReasonCode.NO_MARKET_DATA,)


def test_risk_when_a_wild_event_price_then_positions_are_valued_at_the_stored_close() -> None:
    """Valued at the event's 1e-12, a held position would look like a drawdown and halt."""
    portfolio, control = MemoryPortfolio(), MemoryControl()
    portfolio.set_position(
        Position(market=MARKET, amount=Decimal(1), average_price=Decimal("0.05"))
    )
    portfolio.put_balances({"BTC": Balance(currency="BTC", free=Decimal("0.05"))}, 0)
    now = buy_intent().candle_time + TF
    portfolio.account_record = AccountRecord(
        peak_equity=Decimal("0.1"), day=now // 86_400_000, day_start_equity=Decimal("0.1")
    )

    out = run_risk(portfolio, control, MemoryBus(), now, request=forged("1E-12"))

    assert out.decision.new_trading_state is None
    assert control.get().state is TradingState.ACTIVE
    assert ReasonCode.MAX_DRAWDOWN not in out.decision.reasons


def test_risk_input_when_intent_is_for_another_candle_then_names_the_field() -> None:
    intent = buy_intent()
    good = risk_input(intent)
    with pytest.raises(ValueError, match=r"intent\.candle_time"):
        RiskInput.model_validate(
            {
                "signal": good.signal.model_dump(mode="json"),
                "intent": buy_intent(i=3).model_dump(mode="json"),
            }
        )


# -- execute ----------------------------------------------------------------------------------


def command(intent: OrderIntent, amount: str = "0.1") -> ExecuteCommand:
    return ExecuteCommand(
        task_token="token",
        intent=intent,
        decision=approved(intent, amount),
        execution="arn:exec",
        attempt=0,
    )


def execute(
    intent: OrderIntent,
    exchange: Any,
    orders: MemoryOrders,
    portfolio: MemoryPortfolio,
    now_ms: int,
) -> Order:
    """Execute's order step on the approved ``intent`` (0.1 ETH)."""
    desk = Desk(ExchangeSession(exchange), orders, portfolio, now_ms)
    return execute_order(command(intent), desk)


def test_execute_when_delivered_twice_then_one_exchange_order_and_one_fill() -> None:
    intent = buy_intent()
    orders, portfolio = recorded(intent), MemoryPortfolio()
    now = intent.candle_time + TF
    exchange = paper(now)

    first = execute(intent, exchange, orders, portfolio, now)
    second = execute(intent, exchange, orders, portfolio, now + 5)

    assert first.status is OrderStatus.FILLED
    assert second == first
    assert len(exchange.orders()) == 1
    assert portfolio.position(MARKET).amount == Decimal("0.1")
    assert orders.entries[intent.intent_id].status is OrderStatus.FILLED
    assert portfolio.balances() is not None


def test_execute_when_exchange_already_has_the_order_then_it_is_not_sent_again() -> None:
    intent = buy_intent()
    orders, portfolio = recorded(intent), MemoryPortfolio()
    now = intent.candle_time + TF
    exchange = paper(now)
    place(exchange, intent)

    order = execute(intent, exchange, orders, portfolio, now)

    assert len(exchange.orders()) == 1
    assert order.status is OrderStatus.FILLED
    assert portfolio.position(MARKET).amount == Decimal("0.1")


class LaggingExchange:
    """Accepts the order, then says 'not found' (or times out on the send)."""

    def __init__(self, inner: PaperExchange, *, timeout_after_accept: bool = False) -> None:
        self.inner = inner
        self.hide = True
        self.timeout_after_accept = timeout_after_accept
        self.creates = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_order(self, *args: Any, **kwargs: Any) -> Order:
        self.creates += 1
        order = self.inner.create_order(*args, **kwargs)
        if self.timeout_after_accept:
            raise AmbiguousOrderError("timed out", code="request_timeout")
        return order

    def fetch_order_by_client_id(self, market: Market, client_order_id: str) -> Order | None:
        if self.hide:
            return None
        return self.inner.fetch_order_by_client_id(market, client_order_id)


def test_execute_when_send_times_out_and_order_is_invisible_then_retryable_and_no_resend() -> None:
    intent = buy_intent()
    orders, portfolio = recorded(intent), MemoryPortfolio()
    now = intent.candle_time + TF
    exchange = LaggingExchange(paper(now), timeout_after_accept=True)

    with pytest.raises(OrderNotVisibleYet, match="awaiting_order_visibility"):
        execute(intent, exchange, orders, portfolio, now)
    with pytest.raises(OrderNotVisibleYet, match="awaiting_order_visibility"):
        execute(intent, exchange, orders, portfolio, now + 1_000)
    exchange.hide = False
    order = execute(intent, exchange, orders, portfolio, now + 2_000)

    assert exchange.creates == 1
    assert order.status is OrderStatus.FILLED
    assert portfolio.position(MARKET).amount == Decimal("0.1")


class RateLimitedOnce(LaggingExchange):
    """Refuses the first send with a 429 (nothing placed), then behaves."""

    def create_order(self, *args: Any, **kwargs: Any) -> Order:
        self.creates += 1
        if self.creates == 1:
            raise RetryableExchangeError("429", code="rate_limited")
        return self.inner.create_order(*args, **kwargs)


def test_execute_when_the_send_is_rate_limited_then_sent_again_at_once_not_after_grace() -> None:
    """A 429 proves the exchange did not take the order: the next attempt, a second later,
    sends it (no grace window to wait out), and it is placed once."""
    intent = buy_intent()
    orders, portfolio = recorded(intent), MemoryPortfolio()
    now = intent.candle_time + TF
    exchange = RateLimitedOnce(paper(now))
    exchange.hide = False

    with pytest.raises(RetryableExchangeError, match="rate_limited") as refused:
        execute(intent, exchange, orders, portfolio, now)
    entry = orders.get(intent.intent_id)
    assert not isinstance(refused.value, OrderNotVisibleYet)
    assert entry is not None and entry.sent_at is None
    order = execute(intent, exchange, orders, portfolio, now + 1_000)

    assert exchange.creates == 2
    assert order.status is OrderStatus.FILLED
    assert [o.client_order_id for o in exchange.inner.state.orders.values()] == [
        intent.client_order_id
    ]


class Locked(LaggingExchange):
    """Refuses the key, echoing it: what an exchange says to a revoked key."""

    def fetch_order_by_client_id(self, market: Market, client_order_id: str) -> Order | None:
        raise AuthenticationFailed("invalid key CANARY-SECRET-123", code="authentication")


def test_execute_when_authentication_fails_then_halts_and_the_cause_has_no_secret() -> None:
    intent = buy_intent()
    orders, portfolio = recorded(intent), MemoryPortfolio()
    control, bus = MemoryControl(), MemoryBus()

    session = ExchangeSession(Locked(paper(0)), secrets=("CANARY-SECRET-123",))
    outcome = run_execute(
        command(intent), Desk(session, orders, portfolio, 1), control=control, publisher=bus
    )

    assert outcome.error == "AuthenticationFailed"
    assert outcome.cause is not None and "CANARY" not in outcome.cause
    assert control.get().state is TradingState.HALTED
    assert bus.events[0][1] == "TradingStateChanged"


def test_execute_when_the_halt_fails_after_an_auth_error_then_nothing_is_chained() -> None:
    """A throttled control table while halting must not carry the exchange error (and its
    text) in its chain: Powertools prints the whole chain in the batch's failure."""
    intent = buy_intent()
    orders = recorded(intent)

    class Throttled(MemoryControl):
        def get(self) -> TradingStateRecord:
            raise RuntimeError("ProvisionedThroughputExceededException")

    session = ExchangeSession(Locked(paper(0)), secrets=("CANARY-SECRET-123",))
    with pytest.raises(RuntimeError) as raised:
        run_execute(
            command(intent),
            Desk(session, orders, MemoryPortfolio(), 1),
            control=Throttled(),
            publisher=MemoryBus(),
        )

    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None


def test_execute_when_exchange_refuses_the_amount_then_fatal_error_is_the_answer() -> None:
    intent = buy_intent()
    orders = recorded(intent, amount="0.0001")

    session = ExchangeSession(paper(intent.candle_time))
    outcome = run_execute(
        command(intent, "0.0001"),
        Desk(session, orders, MemoryPortfolio(), intent.candle_time),
        control=MemoryControl(),
        publisher=MemoryBus(),
    )

    assert outcome.error == "FatalExchangeError"
    assert outcome.order is None


# -- fills ------------------------------------------------------------------------------------


def test_fill_delta_when_the_same_report_comes_twice_then_the_second_is_nothing() -> None:
    order = place(paper(1), buy_intent())
    first = fill_delta(order, FillCursor())
    assert first is not None
    assert fill_delta(order, first[1]) is None


def test_fill_delta_when_partial_then_full_then_the_second_fill_is_the_remainder() -> None:
    base = paper(1).create_order(
        OrderRequest(
            MARKET,
            Side.BUY,
            OrderType.MARKET,
            Decimal("1"),
            price=None,
            client_order_id="ts" + "0" * 30,
        )
    )
    half = base.model_copy(
        update={
            "filled": Decimal("0.4"),
            "average": Decimal(1),
            "status": OrderStatus.PARTIALLY_FILLED,
        }
    )
    full = base.model_copy(update={"filled": Decimal(1), "average": Decimal("1.3")})
    first = fill_delta(half, FillCursor())
    assert first is not None
    second = fill_delta(full, first[1])
    assert second is not None
    assert second[0].amount == Decimal("0.6")
    assert second[0].price == Decimal("1.5")  # (1.3 - 0.4) / 0.6


# -- ingest -----------------------------------------------------------------------------------


def test_ingest_when_market_is_new_then_backfills_and_publishes_only_the_newest() -> None:
    candles, bus = MemoryCandles(), MemoryBus()
    source = ListSource({MARKET.key: closes_to_candles(["1"] * 10)})

    report = ingest(IngestPorts([MARKET], source, candles, bus), backfill=5)

    assert report.candles == 5
    assert [(s, t) for s, t, _ in bus.events] == [("tickstep.ingest", "CandlesClosed")]
    (published,) = CandlesClosed.model_validate(bus.events[0][2]).candles
    assert published.candle.timestamp == T0 + 9 * TF


def test_ingest_when_run_again_then_publishes_only_new_candles() -> None:
    candles, bus = MemoryCandles(), MemoryBus()
    rows = closes_to_candles(["1"] * 10)
    candles.put(MARKET, rows[:7])

    report = ingest(IngestPorts([MARKET], ListSource({MARKET.key: rows}), candles, bus))

    assert report.events == 3
    assert len(bus.events) == 1  # one event per run, whatever the number of candles
    batch = CandlesClosed.model_validate(bus.events[0][2])
    assert [c.candle.timestamp for c in batch.candles] == [r.timestamp for r in rows[7:]]


def test_ingest_when_publishing_fails_then_the_next_run_publishes_what_it_stored() -> None:
    class BrokenBus(MemoryBus):
        def publish(self, source: str, detail_type: str, details: Any) -> None:
            raise RuntimeError("put_events rejected")

    candles = MemoryCandles()
    rows = closes_to_candles(["1"] * 10)
    first = ListSource({MARKET.key: rows[:7]})
    ingest(IngestPorts([MARKET], first, candles, MemoryBus()), backfill=7)
    assert candles.published_through(MARKET) == rows[6].timestamp
    source = ListSource({MARKET.key: rows})

    with pytest.raises(RuntimeError, match="put_events"):
        ingest(IngestPorts([MARKET], source, candles, BrokenBus()))
    # Stored (ingest stores first), but the cursor did not move: not yet announced.
    assert candles.latest_timestamp(MARKET) == rows[9].timestamp
    assert candles.published_through(MARKET) == rows[6].timestamp

    bus = MemoryBus()
    report = ingest(IngestPorts([MARKET], source, candles, bus))
    assert report.candles == 0  # nothing new on the exchange
    assert report.events == 3
    batch = CandlesClosed.model_validate(bus.events[0][2])
    assert [c.candle.timestamp for c in batch.candles] == [r.timestamp for r in rows[7:]]
    assert candles.published_through(MARKET) == rows[9].timestamp

    again = MemoryBus()
    assert ingest(IngestPorts([MARKET], source, candles, again)).events == 0
    assert again.events == []


def test_ingest_when_it_publishes_then_every_candle_it_names_is_stored() -> None:
    """Signal and risk read the candle an event names from the store: it must be there."""
    candles = MemoryCandles()
    rows = closes_to_candles(["1"] * 10)
    candles.put(MARKET, rows[:7])
    seen: list[bool] = []

    class CheckingBus(MemoryBus):
        def publish(self, source: str, detail_type: str, details: Any) -> None:
            for detail in details:
                for closed in CandlesClosed.model_validate(detail).candles:
                    stored = candles.latest(MARKET, 1, until_ms=closed.candle.timestamp)
                    seen.append(stored == [closed.candle])
            super().publish(source, detail_type, details)

    ingest(IngestPorts([MARKET], ListSource({MARKET.key: rows}), candles, CheckingBus()))

    assert seen == [True, True, True]


def test_ingest_when_one_market_fails_then_the_others_are_ingested() -> None:
    other = Market(exchange="paper", symbol="LTC/BTC", timeframe="5m")
    candles, bus = MemoryCandles(), MemoryBus()
    source = ListSource(
        {MARKET.key: closes_to_candles(["1"] * 3), other.key: []}, broken=frozenset({other.key})
    )

    report = ingest(IngestPorts([other, MARKET], source, candles, bus))

    assert set(report.failures) == {other.key}
    assert report.events == 1


# -- reconcile and the kill switch ------------------------------------------------------------


def test_reconcile_when_unknown_order_is_absent_after_grace_then_it_fails() -> None:
    intent = buy_intent()
    orders, portfolio = lost(intent), MemoryPortfolio()

    report = reconcile([MARKET], Desk(ExchangeSession(paper(1)), orders, portfolio, 10**9))

    assert orders.entries[intent.intent_id].status is OrderStatus.FAILED
    assert report.settled == 1 and report.drift == 1


def test_reconcile_when_unknown_order_was_filled_then_ledger_and_position_follow() -> None:
    intent = buy_intent()
    orders, portfolio = lost(intent), MemoryPortfolio()
    exchange = paper(1)
    place(exchange, intent)

    report = reconcile([MARKET], Desk(ExchangeSession(exchange), orders, portfolio, 5))

    assert orders.entries[intent.intent_id].status is OrderStatus.FILLED
    assert portfolio.position(MARKET).amount == Decimal("0.1")
    assert report.drift == 1


def test_reconcile_when_a_buy_and_its_sell_are_both_unknown_then_applied_buy_first() -> None:
    """Both answers were lost; the ledger lists the sell first. Reconcile settles them in the
    order they were decided, so the sell finds the position it closes."""
    buy = buy_intent(9)
    sell = order_intent(Side.SELL, 10)
    orders, portfolio = lost(sell, buy), MemoryPortfolio()  # the sell first in the listing
    exchange = paper(1)
    for intent in (buy, sell):  # the exchange filled both, in order
        place(exchange, intent)

    report = reconcile([MARKET], Desk(ExchangeSession(exchange), orders, portfolio, 5))

    assert report.errors == {}
    assert {orders.entries[i.intent_id].status for i in (buy, sell)} == {OrderStatus.FILLED}
    assert portfolio.position(MARKET).amount == 0
    assert portfolio.position(MARKET).realized_pnl < 0  # a round trip at one price: the fees


def test_reconcile_when_an_open_order_is_not_ours_then_it_is_adopted_once() -> None:
    orders, portfolio = MemoryOrders(), MemoryPortfolio()
    exchange = paper(1, price="0.05")
    exchange.create_order(
        OrderRequest(
            MARKET,
            Side.BUY,
            OrderType.LIMIT,
            Decimal("0.1"),
            price=Decimal("0.01"),
            client_order_id="web-ui-1",
        )
    )

    first = reconcile([MARKET], Desk(ExchangeSession(exchange), orders, portfolio, 2))
    second = reconcile([MARKET], Desk(ExchangeSession(exchange), orders, portfolio, 3))

    assert first.adopted == 1
    assert second.adopted == 0
    assert [e.status for e in orders.entries.values()] == [OrderStatus.SUBMITTED]


def test_set_trading_state_when_halted_by_operator_then_state_and_event_name_the_caller() -> None:
    control, bus = MemoryControl(), MemoryBus()

    record = set_trading_state(
        TradingState.HALTED, reason="drill", who="alice", now_ms=7, control=control, publisher=bus
    )

    assert control.get() == record
    assert bus.events[0][2]["previous"] == "ACTIVE"
    assert bus.events[0][2]["current"]["changed_by"] == "alice"


# -- the order message's task token -----------------------------------------------------------

DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    ("body", "token"),
    [
        ('{"task_token": "t-1", "intent": ' + DEEP + "}", "t-1"),
        ('{"intent": {"a": ' + DEEP + '}, "task_token": "t-\\u00e9"}', "t-\u00e9"),
        ('{"x": {"task_token": "inner"}, "y": "},]\\"", "task_token" : "outer"}', "outer"),
        ('{"amount": 1e999999999, "task_token": "t-2"}', "t-2"),
        ('{"task_token": "t-3"', "t-3"),
        (DEEP, None),
        ("{}", None),
        ('{"task_token": 5}', None),
        ('{"task_token": ""}', None),
        ('{"task_token": "' + "x" * 4097 + '"}', None),
        ('{"task_token": "unterminated', None),
        ("not json", None),
    ],
    ids=[
        "deep-after",
        "deep-before",
        "nested-and-strings",
        "huge-number",
        "truncated-after-token",
        "deep-array",
        "empty",
        "not-a-string",
        "blank",
        "too-long",
        "bad-string",
        "not-json",
    ],
)
def test_task_token_of_reads_only_the_top_level_and_never_recurses(
    body: str, token: str | None
) -> None:
    assert task_token_of(body) == token


# -- the in-memory adapters keep the stores' semantics ------------------------------------------


def test_memory_candles_when_read_until_a_time_then_the_latest_n_up_to_it_oldest_first() -> None:
    candles = MemoryCandles()
    rows = closes_to_candles(["1", "2", "3", "4", "5"])
    candles.put(MARKET, [rows[3], rows[0], rows[4]])
    candles.put(MARKET, [rows[2], rows[1]])

    assert candles.latest(MARKET, 2, until_ms=rows[3].timestamp) == rows[2:4]
    assert candles.latest(MARKET, 10) == rows
    assert candles.latest(MARKET, 0) == []
    assert candles.latest_timestamp(MARKET) == rows[4].timestamp


def filled(intent: OrderIntent, price: str = "0.05") -> Order:
    """The exchange's report of ``intent`` filled whole: 0.1 at ``price``, a 0.1% fee."""
    now = intent.candle_time + TF
    return Order(
        intent_id=intent.intent_id,
        client_order_id=intent.client_order_id,
        exchange_order_id=f"x-{intent.intent_id}",
        market=MARKET,
        side=intent.side,
        order_type=OrderType.MARKET,
        amount=Decimal("0.1"),
        status=OrderStatus.FILLED,
        filled=Decimal("0.1"),
        average=Decimal(price),
        fee=Decimal("0.1") * Decimal(price) / 1000,
        fee_currency=MARKET.quote,
        created_at=now,
        updated_at=now,
    )


def test_memory_orders_when_the_intent_comes_again_then_it_is_recorded_once() -> None:
    orders = MemoryOrders()
    intent = buy_intent()

    assert orders.record_intent(intent, approved(intent))
    assert not orders.record_intent(intent, approved(intent, "0.2"))
    entry = orders.get(intent.intent_id)
    assert entry is not None and entry.decision == approved(intent)


def test_memory_orders_when_the_status_moved_on_then_stale_write_and_no_change() -> None:
    intent = buy_intent()
    orders = recorded(intent)
    order = filled(intent)

    orders.record(intent.intent_id, OrderStatus.NEW, order, 1)
    with pytest.raises(StaleWrite):
        orders.record(
            intent.intent_id, OrderStatus.NEW, order.model_copy(update={"status": "submitted"}), 2
        )
    with pytest.raises(StaleWrite):
        orders.mark_sent(intent.intent_id, 3)
    with pytest.raises(StaleWrite):
        orders.settle(intent.intent_id, OrderStatus.NEW, OrderStatus.UNKNOWN, "timeout", 4)
    assert orders.entries[intent.intent_id].status is OrderStatus.FILLED


def test_memory_orders_when_a_move_is_not_in_the_table_then_invalid_transition() -> None:
    intent = buy_intent()
    orders = recorded(intent)
    orders.record(intent.intent_id, OrderStatus.NEW, filled(intent), 1)

    with pytest.raises(InvalidTransition):
        orders.settle(intent.intent_id, OrderStatus.FILLED, OrderStatus.UNKNOWN, "timeout", 2)
    again = orders.record(intent.intent_id, OrderStatus.FILLED, filled(intent), 3)
    assert again.status is OrderStatus.FILLED  # the same terminal status: a redelivery


def test_memory_portfolio_when_a_report_comes_twice_then_one_fill_and_the_loss_is_kept() -> None:
    portfolio = MemoryPortfolio()
    buy = buy_intent()
    sell = order_intent(Side.SELL, 10, "0.04")
    bought = filled(buy)
    sold = filled(sell, "0.04")

    assert len(portfolio.apply_order_fills(bought)) == 1
    assert portfolio.apply_order_fills(bought) == []
    assert portfolio.apply_order_fills(sold)[0].amount == Decimal("0.1")

    assert portfolio.position(MARKET).amount == 0
    assert portfolio.position(MARKET).realized_pnl < 0
    assert portfolio.account().last_losing_trade_ms == sold.updated_at


def test_memory_portfolio_marks_and_order_times_never_move_backwards() -> None:
    portfolio = MemoryPortfolio()
    day = 86_400_000
    portfolio.mark_equity(Decimal(2), 5 * day + 1)
    portfolio.mark_equity(Decimal(1), 5 * day + 2)
    portfolio.mark_equity(Decimal(3), 4 * day)
    for at in (1_000, 1_000, 3_601_000, 3_602_000):
        portfolio.record_order_placed(at)

    account = portfolio.account()
    assert account.peak_equity == Decimal(3)
    assert (account.day, account.day_start_equity) == (5, Decimal(2))
    assert account.order_times_ms == (3_601_000, 3_602_000)


def test_memory_portfolio_when_the_paper_state_changed_since_read_then_stale_write() -> None:
    portfolio = MemoryPortfolio()
    _, version = portfolio.paper_state()
    assert portfolio.save_paper_state("{}", version) == 1

    with pytest.raises(StaleWrite):
        portfolio.save_paper_state('{"late": true}', version)
    assert portfolio.paper_state() == ("{}", 1)


def test_memory_control_when_never_set_then_active_as_the_store_says_until_set() -> None:
    control = MemoryControl()
    halted = TradingStateRecord(
        state=TradingState.HALTED, reason="drill", changed_at=1, changed_by="alice"
    )

    assert control.get() == MEMORY_DEFAULT_STATE == DEFAULT_TRADING_STATE
    assert control.set(halted, unless=TradingState.ACTIVE)  # never set: the store writes too
    assert not control.set(halted, unless=TradingState.HALTED)
    assert control.get() == halted


def test_memory_task_answers_when_a_token_is_answered_twice_then_only_the_first_counts() -> None:
    tasks = MemoryTaskAnswers()
    port: TaskAnswers = tasks

    assert port.succeed("t-1", {"order": {}})
    assert not port.fail("t-1", "FatalExchangeError", "late")
    assert tasks.answers["t-1"] == ("success", {"order": {}})
