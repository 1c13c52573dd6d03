"""A paper-trading session over bundled candles, with no AWS: strategies, risk, paper fills.

This is the pipeline's decision logic run in one process on a simulated clock: at each
candle's close, the market's strategy signals, risk sizes and guards the intent, and the paper
exchange fills an approved order at the next candle's open (the backtest's next-open rule).
Signals come from one series per market; :meth:`Strategy.signal` is that series' last element
by construction (a test checks it), so this equals calling the live signal at every tick.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tickstep.candles import CandleArrays
from tickstep.config import TradingConfig
from tickstep.exchanges import FatalExchangeError, PaperExchange
from tickstep.exchanges.paper import DEFAULT_RULES
from tickstep.exchanges.replay import ReplayFeed, SimClock
from tickstep.models import (
    Market,
    OrderIntent,
    Position,
    Side,
    SignalAction,
    TradingState,
)
from tickstep.orders import new_intent
from tickstep.portfolio import apply_fill, realized_of, unrealized_pnl
from tickstep.risk import RiskContext, evaluate
from tickstep.strategies import build_strategy

DAY_MS = 86_400_000


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
    """What a session did; ``to_dict`` is its JSON form."""

    quote: str
    start_equity: Decimal
    end_equity: Decimal
    decisions: Counter[str]
    markets: dict[str, MarketStats]
    trading_state: TradingState
    candles: int

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


class PaperSession:
    """Drives one paper account over several markets' candles in time order."""

    def __init__(self, config: TradingConfig, series: dict[Market, CandleArrays]) -> None:
        quotes = {m.market.quote for m in config.markets}
        if len(quotes) != 1:
            raise ValueError(f"markets: one quote currency per session, got {sorted(quotes)}")
        missing = [m.market.key for m in config.markets if m.market not in series]
        if missing:
            raise ValueError(f"markets: no candles for {', '.join(missing)}")
        self.config = config
        self.quote = quotes.pop()
        self.series = series
        self.clock = SimClock()
        self.feed = ReplayFeed(series, self.clock)
        self.exchange = PaperExchange(
            {m.market.symbol: DEFAULT_RULES for m in config.markets},
            self.feed,
            fee_rate=config.paper.fee_rate,
            slippage=config.paper.slippage,
            balances=config.paper.balances,
        )
        self.state = TradingState.ACTIVE
        self.stats = {
            m.market.key: MarketStats(position=Position(market=m.market)) for m in config.markets
        }
        self.decisions: Counter[str] = Counter()
        self.order_times: list[int] = []
        self.last_loss_ms: int | None = None
        self.start_equity = self.exchange.fetch_balance()[self.quote].total
        self.peak_equity = self.start_equity
        self.day_start_equity = self.start_equity
        self.day = -1

    def equity(self) -> Decimal:
        quote = self.exchange.fetch_balance()[self.quote].total
        return quote + sum(
            (s.position.amount * s.last_close for s in self.stats.values() if s.position),
            Decimal(0),
        )

    def run(self) -> SessionResult:
        strategies = {m.market: build_strategy(m.strategy) for m in self.config.markets}
        signals = {m: strategies[m].series(self.series[m]) for m in strategies}
        # Ticks in time order across markets.
        order = list(strategies)
        ticks = heapq.merge(*[self._ticks(k, m) for k, m in enumerate(order)])
        candles = 0
        for close_time, k, i in ticks:
            market = order[k]
            candles += 1
            self.clock.set(close_time)
            stats = self.stats[market.key]
            stats.last_close = Decimal(repr(float(self.series[market].close[i])))
            self._new_day(close_time)
            action = int(signals[market].action[i])
            name = {1: SignalAction.BUY, -1: SignalAction.SELL, 0: SignalAction.HOLD}[action]
            stats.signals[name.value] += 1
            if action == 0:
                continue
            intent = new_intent(
                strategy=strategies[market].name,
                market=market,
                candle_time=int(self.series[market].timestamp[i]),
                side=Side.BUY if action > 0 else Side.SELL,
                reference_price=stats.last_close,
            )
            self._decide(intent, stats, close_time)
        self.peak_equity = max(self.peak_equity, self.equity())
        return SessionResult(
            quote=self.quote,
            start_equity=self.start_equity,
            end_equity=self.equity(),
            decisions=self.decisions,
            markets=self.stats,
            trading_state=self.state,
            candles=candles,
        )

    def _ticks(self, k: int, market: Market) -> list[tuple[int, int, int]]:
        """(close time, market index, candle index) of every candle but the last, which has
        no next open to fill at."""
        opens = self.series[market].timestamp[:-1]
        return [(int(t) + market.timeframe_ms, k, i) for i, t in enumerate(opens)]

    def _new_day(self, now: int) -> None:
        if now // DAY_MS != self.day:
            self.day = now // DAY_MS
            self.day_start_equity = self.equity()

    def _decide(self, intent: OrderIntent, stats: MarketStats, now: int) -> None:
        assert stats.position is not None
        balances = self.exchange.fetch_balance()
        equity = self.equity()
        self.peak_equity = max(self.peak_equity, equity)
        base = balances.get(intent.market.base)
        ctx = RiskContext(
            now_ms=now,
            trading_state=self.state,
            position=stats.position.amount,
            total_exposure=sum(
                (s.position.amount * s.last_close for s in self.stats.values() if s.position),
                Decimal(0),
            ),
            free_quote=balances[self.quote].free,
            free_base=base.free if base else Decimal(0),
            equity=equity,
            peak_equity=self.peak_equity,
            day_start_equity=self.day_start_equity,
            last_losing_trade_ms=self.last_loss_ms,
            recent_order_times_ms=tuple(t for t in self.order_times if t > now - 3_600_000),
            last_candle_time=intent.candle_time,
            last_close=intent.reference_price,
            rules=self.exchange.market_rules(intent.market.symbol),
        )
        decision = evaluate(intent, ctx, self.config.limits)
        if decision.new_trading_state is not None:
            self.state = decision.new_trading_state
        if not decision.approved:
            for reason in decision.reasons:
                self.decisions[f"denied:{reason.value}"] += 1
            return
        self.decisions["approved"] += 1
        assert decision.amount is not None
        seen = len(self.exchange.fills())
        try:
            order = self.exchange.create_order(
                intent.market,
                intent.side,
                intent.order_type,
                decision.amount,
                price=decision.price,
                client_order_id=intent.client_order_id,
            )
        except FatalExchangeError as exc:
            self.decisions[f"rejected:{exc.code}"] += 1
            return
        self.order_times.append(now)
        stats.orders += 1
        assert order.client_order_id == intent.client_order_id
        for fill in self.exchange.fills()[seen:]:
            before = stats.position
            stats.position = apply_fill(before, fill)
            stats.fills += 1
            stats.fees += fill.fee
            if realized_of(before, stats.position) < 0:
                self.last_loss_ms = fill.timestamp
