"""Risk: the inputs the guards need, read from the ports, and the decision on one intent."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from tickstep.messages import SOURCE_RISK, RiskInput, RiskOutput
from tickstep.models import (
    Balance,
    Market,
    MarketRules,
    Position,
)
from tickstep.portfolio import equity_of
from tickstep.ports import (
    CandleRepository,
    ControlRepository,
    DenialCounts,
    PortfolioRepository,
    Publisher,
)
from tickstep.usecases.control import set_trading_state

if TYPE_CHECKING:
    from tickstep.risk import RiskLimits


@dataclass(frozen=True)
class RiskPorts:
    """What the risk function works with (its handler's dependencies, ``tickstep run``'s)."""

    limits: RiskLimits
    candles: CandleRepository
    """The stored candles: the price every intent is checked against (never the event's)."""
    portfolio: PortfolioRepository
    control: ControlRepository
    publisher: Publisher
    fallback_rules: Callable[[Market], MarketRules]
    """A market's rules when ingest has cached none yet."""
    start_balances: Callable[[], Mapping[str, Decimal]]
    """The account's balances before its first fill (the paper account's configuration)."""
    denials: DenialCounts
    """Where each denial's reasons are counted (the dashboard's "risk denials by reason")."""


def check_risk(request: RiskInput, ports: RiskPorts, *, now_ms: int) -> RiskOutput:
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
    portfolio, control = ports.portfolio, ports.control
    balances = portfolio.balances()
    if balances is None:
        balances = {c: Balance(currency=c, free=v) for c, v in ports.start_balances().items()}
    positions = portfolio.positions()
    position = next((p for p in positions if p.market == market), Position(market=market))
    stored = ports.candles.latest(market, 1, until_ms=now_ms)
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
        rules=portfolio.rules(market) or ports.fallback_rules(market),
    )
    decision = evaluate(intent, ctx, ports.limits)
    if not decision.approved:  # once per intent: the risk function decides each intent once
        ports.denials.count(now_ms // 86_400_000, [r.value for r in decision.reasons])
    if decision.new_trading_state is not None:
        set_trading_state(
            decision.new_trading_state,
            reason=f"risk: {', '.join(r.value for r in decision.reasons)}: {decision.detail}"[:500],
            who="risk",
            now_ms=now_ms,
            control=control,
            publisher=ports.publisher,
            source=SOURCE_RISK,
            once=True,
        )
    return RiskOutput(intent=intent, decision=decision)
