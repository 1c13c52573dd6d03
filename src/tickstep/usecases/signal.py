"""Signal: a market's strategy on its stored candles, giving a signal and perhaps an order
intent. Strategies (numpy) are imported inside :func:`compute_signal` only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tickstep.messages import SignalOutput, UnknownMarketError
from tickstep.models import (
    CandleClosed,
    Side,
    SignalAction,
)
from tickstep.orders import new_intent
from tickstep.ports import CandleRepository, Positions, SignalRepository

if TYPE_CHECKING:
    from tickstep.strategies import MarketConfig


@dataclass(frozen=True)
class SignalPorts:
    """What the signal function works with (its handler's dependencies, ``tickstep run``'s)."""

    markets: Mapping[str, MarketConfig]
    """Each configured market's strategy, by :attr:`Market.key`."""
    candles: CandleRepository
    portfolio: Positions
    """What is held: a SELL with nothing held gives no intent."""
    signals: SignalRepository | None = None
    """Where signals are kept for the dashboard and the API (none: not kept)."""


def compute_signal(
    event: CandleClosed, ports: SignalPorts, *, store_hold: bool = False
) -> SignalOutput:
    """The market's strategy on the stored candles up to the event's candle, which is always the
    last one. Ingest stores a candle before it publishes it, so it is there; should it not be
    (an event replayed by hand after the candle expired), the event's candle is used as it is,
    never written: ingest is the candles' only writer. A SELL with nothing held, and every
    HOLD, give no intent."""
    from tickstep.candles import CandleArrays
    from tickstep.strategies import build_strategy

    configured = ports.markets.get(event.market.key)
    if configured is None:
        raise UnknownMarketError(f"market: {event.market.key} is not configured")
    strategy = build_strategy(configured.strategy)
    # As many candles as its last signal depends on (Strategy.history), not more: the read
    # is most of the function's DynamoDB cost.
    history = ports.candles.latest(event.market, strategy.history, until_ms=event.candle.timestamp)
    if not history or history[-1] != event.candle:
        history = [c for c in history if c.timestamp < event.candle.timestamp]
        history.append(event.candle)
    signal = strategy.signal(event.market, CandleArrays.from_candles(history))
    intent = None
    if signal.action is not SignalAction.HOLD:
        side = Side.BUY if signal.action is SignalAction.BUY else Side.SELL
        if side is Side.BUY or ports.portfolio.position(event.market).amount > 0:
            intent = new_intent(
                strategy=strategy.name,
                market=event.market,
                candle_time=signal.candle_time,
                side=side,
                reference_price=signal.close,
                confidence=signal.strength,
            )
    if ports.signals is not None and (store_hold or signal.action is not SignalAction.HOLD):
        ports.signals.put(signal)
    return SignalOutput(signal=signal, intent=intent)
