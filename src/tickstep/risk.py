"""Risk: size an order intent and judge it, returning a decision instead of raising.

Every guard is a pure function of the intent, a :class:`RiskContext` snapshot and the
:class:`RiskLimits`, so the risk Lambda, the offline runtime and backtests share one
implementation and a test can state any situation directly. A guard answers with a
:class:`Check`; :func:`evaluate` runs them all, so a denial names every reason at once.

The guards that stop risk being added (notional, position, exposure, loss limits, cooldown)
only gate BUYs: in a long-only spot system a SELL can only shrink exposure, and blocking it
would trap a position in exactly the situations those guards exist for (freqtrade's
protections likewise block entries, never exits). Only the kill switch (HALTED) stops a SELL.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Annotated, Literal

from pydantic import Field

from tickstep.models import (
    Amount,
    EpochMs,
    MarketRules,
    Model,
    OrderIntent,
    OrderType,
    PositiveDecimal,
    Price,
    ReasonCode,
    RiskDecision,
    Side,
    TradingState,
)

__all__ = [
    "HOUR_MS",
    "STALE_AFTER_TIMEFRAMES",
    "Check",
    "EquityFractionSizing",
    "FixedQuoteSizing",
    "RiskContext",
    "RiskLimits",
    "Sizing",
    "check_balance",
    "check_cooldown",
    "check_market_amount",
    "check_market_data",
    "check_market_notional",
    "check_max_daily_loss",
    "check_max_drawdown",
    "check_max_exposure",
    "check_max_notional",
    "check_max_orders_per_hour",
    "check_max_position",
    "check_price_band",
    "check_stale_data",
    "check_trading_state",
    "evaluate",
    "order_price",
    "quote_budget",
    "run_guards",
    "size_order",
]

HOUR_MS = 3_600_000
STALE_AFTER_TIMEFRAMES = 2
"""A candle that closed more than this many timeframes ago means ingestion has fallen behind."""

PositiveMoney = PositiveDecimal
Fraction = Annotated[Decimal, Field(gt=0, le=1, allow_inf_nan=False)]


class FixedQuoteSizing(Model):
    """Spend the same quote amount on every buy (e.g. 0.005 BTC)."""

    kind: Literal["fixed_quote"] = "fixed_quote"
    quote_amount: PositiveMoney


class EquityFractionSizing(Model):
    """Spend a fraction of current equity on every buy, so size follows the account."""

    kind: Literal["equity_fraction"] = "equity_fraction"
    fraction: Fraction


Sizing = Annotated[FixedQuoteSizing | EquityFractionSizing, Field(discriminator="kind")]


class RiskLimits(Model):
    """The operator's limits; every money value is in the market's quote currency."""

    max_notional_per_order: PositiveMoney
    max_position_per_market: PositiveMoney
    max_total_exposure: PositiveMoney
    max_daily_loss: PositiveMoney = Field(description="loss since the day started that halts")
    max_drawdown: Fraction = Field(description="fall from peak equity that halts, e.g. 0.2")
    cooldown_after_loss_ms: int = Field(ge=0)
    max_orders_per_hour: int = Field(gt=0)
    price_band: Annotated[Decimal, Field(gt=0, lt=1, allow_inf_nan=False)] = Field(
        description=(
            "furthest an order's price (a limit price, else the reference price it is sized "
            "at) may sit from the last stored close, as a fraction"
        )
    )
    sizing: Sizing
    size_by_confidence: bool = Field(
        default=False, description="scale a buy's budget by the intent's confidence, when set"
    )
    fee_allowance: Annotated[Decimal, Field(ge=0, lt=1, allow_inf_nan=False)] = Field(
        default=Decimal("0.001"), description="fee rate a buy must be able to pay on top"
    )


class RiskContext(Model):
    """What risk knows about the account and the market at one instant, gathered by the caller.

    The clock is ``now_ms`` rather than a clock read, so a decision can be replayed exactly.
    """

    now_ms: EpochMs
    trading_state: TradingState
    position: Amount = Field(description="base amount held in this market")
    total_exposure: Amount = Field(description="quote value of every position, this one too")
    free_quote: Amount
    free_base: Amount
    equity: Amount
    peak_equity: Amount
    day_start_equity: Amount
    last_losing_trade_ms: EpochMs | None = None
    recent_order_times_ms: tuple[EpochMs, ...] = Field(
        default=(), description="when orders were placed; only the last hour's count"
    )
    last_candle_time: EpochMs | None = Field(
        description="open time of the latest stored candle (None: none is stored)"
    )
    last_close: Price | None = Field(
        description="close of that candle, as ingestion stored it: never the event's word"
    )
    rules: MarketRules


@dataclass(frozen=True, slots=True)
class Check:
    """One guard's verdict; ``reason`` is APPROVED when ``ok``."""

    ok: bool
    reason: ReasonCode
    detail: str = ""
    new_trading_state: TradingState | None = None


_PASS = Check(ok=True, reason=ReasonCode.APPROVED)


def _deny(reason: ReasonCode, detail: str, *, halt: bool = False) -> Check:
    return Check(
        ok=False,
        reason=reason,
        detail=detail,
        new_trading_state=TradingState.HALTED if halt else None,
    )


def _fmt(value: Decimal) -> str:
    return f"{value.normalize():f}"


def order_price(intent: OrderIntent, ctx: RiskContext) -> Decimal:
    """The price an order is valued at: its limit price on the market's grid, else the
    reference price the strategy saw (a market order has no price of its own)."""
    if intent.limit_price is not None:
        return ctx.rules.price_to_precision(intent.limit_price)
    return intent.reference_price


def quote_budget(intent: OrderIntent, ctx: RiskContext, limits: RiskLimits) -> Decimal:
    """How much quote a BUY may spend, before the market's precision trims it."""
    sizing = limits.sizing
    if isinstance(sizing, FixedQuoteSizing):
        budget = sizing.quote_amount
    else:
        budget = ctx.equity * sizing.fraction
    if limits.size_by_confidence and intent.confidence is not None:
        budget *= Decimal(str(intent.confidence))
    return budget


def size_order(intent: OrderIntent, ctx: RiskContext, limits: RiskLimits) -> Decimal:
    """The base amount to trade, truncated to the market's amount step.

    A SELL closes the whole position (long-only spot has nothing else to sell). Every step of
    a BUY's arithmetic rounds toward zero, so the amount never costs more than the budget.
    """
    if intent.side is Side.SELL:
        return ctx.rules.amount_to_precision(ctx.position)
    price = order_price(intent, ctx)
    if price <= 0:
        return Decimal(0)
    with localcontext() as decimal_context:
        decimal_context.rounding = ROUND_DOWN
        return ctx.rules.amount_to_precision(quote_budget(intent, ctx, limits) / price)


def check_trading_state(
    intent: OrderIntent, ctx: RiskContext, limits: RiskLimits, amount: Decimal
) -> Check:
    """The kill switch: HALTED places nothing; REDUCING only sells what is held."""
    if ctx.trading_state is TradingState.HALTED:
        return _deny(ReasonCode.TRADING_HALTED, "trading is halted: no new orders")
    if ctx.trading_state is TradingState.REDUCING:
        if intent.side is Side.BUY:
            return _deny(ReasonCode.REDUCE_ONLY, "trading is reduce-only: a buy would add")
        if amount > ctx.position:
            return _deny(
                ReasonCode.REDUCE_ONLY,
                f"reduce-only: selling {_fmt(amount)} exceeds the {_fmt(ctx.position)} held",
            )
    return _PASS


def check_max_notional(
    intent: OrderIntent, ctx: RiskContext, limits: RiskLimits, amount: Decimal
) -> Check:
    """Caps what one BUY may cost, whatever sizing asked for (a fat-finger guard)."""
    notional = amount * order_price(intent, ctx)
    cap = limits.max_notional_per_order
    return _buy_cap(intent, notional, cap, ReasonCode.MAX_NOTIONAL, "order notional {} exceeds {}")


def check_max_position(
    intent: OrderIntent, ctx: RiskContext, limits: RiskLimits, amount: Decimal
) -> Check:
    """Caps this market's position value after a BUY fills, at the order's price."""
    value = (ctx.position + amount) * order_price(intent, ctx)
    cap = limits.max_position_per_market
    return _buy_cap(
        intent, value, cap, ReasonCode.MAX_POSITION, "position value {} would exceed {}"
    )


def check_max_exposure(
    intent: OrderIntent, ctx: RiskContext, limits: RiskLimits, amount: Decimal
) -> Check:
    """Caps the value of every position together after a BUY fills."""
    exposure = ctx.total_exposure + amount * order_price(intent, ctx)
    cap = limits.max_total_exposure
    return _buy_cap(
        intent, exposure, cap, ReasonCode.MAX_EXPOSURE, "total exposure {} would exceed {}"
    )


def _buy_cap(
    intent: OrderIntent, value: Decimal, cap: Decimal, code: ReasonCode, says: str
) -> Check:
    """A cap on what a BUY adds (a SELL only ever lowers it): ``value`` above ``cap`` denies
    with ``code``, ``says`` formatted with both."""
    if intent.side is Side.BUY and value > cap:
        return _deny(code, says.format(_fmt(value), _fmt(cap)))
    return _PASS


def check_max_daily_loss(intent: OrderIntent, ctx: RiskContext, limits: RiskLimits) -> Check:
    """Reaching the day's loss limit denies a BUY and asks for HALTED: a person must look."""
    loss = ctx.day_start_equity - ctx.equity
    says = f"daily loss {_fmt(loss)} reached the limit {_fmt(limits.max_daily_loss)}"
    return _halt_buys(intent, loss >= limits.max_daily_loss, ReasonCode.MAX_DAILY_LOSS, says)


def check_max_drawdown(intent: OrderIntent, ctx: RiskContext, limits: RiskLimits) -> Check:
    """Reaching the drawdown limit denies a BUY and asks for HALTED: a person must look."""
    if ctx.peak_equity <= 0:
        return _PASS
    drawdown = (ctx.peak_equity - ctx.equity) / ctx.peak_equity
    says = f"drawdown {drawdown:.2%} from peak reached the limit {limits.max_drawdown:.2%}"
    return _halt_buys(intent, drawdown >= limits.max_drawdown, ReasonCode.MAX_DRAWDOWN, says)


def _halt_buys(intent: OrderIntent, reached: bool, code: ReasonCode, says: str) -> Check:
    """A loss limit: once ``reached``, a BUY is denied with ``code`` and HALTED asked for (a
    SELL only lowers the risk)."""
    if intent.side is Side.BUY and reached:
        return _deny(code, says, halt=True)
    return _PASS


def check_cooldown(intent: OrderIntent, ctx: RiskContext, limits: RiskLimits) -> Check:
    """No BUY for a while after a losing trade, so a losing streak cannot compound quickly."""
    if intent.side is Side.SELL or ctx.last_losing_trade_ms is None:
        return _PASS
    elapsed = ctx.now_ms - ctx.last_losing_trade_ms
    if elapsed < limits.cooldown_after_loss_ms:
        return _deny(
            ReasonCode.COOLDOWN,
            f"cooling down after a loss: {limits.cooldown_after_loss_ms - elapsed} ms left",
        )
    return _PASS


def check_max_orders_per_hour(intent: OrderIntent, ctx: RiskContext, limits: RiskLimits) -> Check:
    """Bounds the order rate on both sides, so a runaway loop cannot churn the account."""
    since = ctx.now_ms - HOUR_MS
    count = sum(1 for placed in ctx.recent_order_times_ms if placed > since)
    if count >= limits.max_orders_per_hour:
        return _deny(
            ReasonCode.MAX_ORDERS_PER_HOUR,
            f"{count} orders in the last hour, limit {limits.max_orders_per_hour}",
        )
    return _PASS


def check_market_data(intent: OrderIntent, ctx: RiskContext, limits: RiskLimits) -> Check:
    """An intent is checked against candles risk reads itself: with none stored for its
    candle (a forged or future candle time, or ingestion not there yet) nothing can be."""
    if ctx.last_candle_time is None or ctx.last_candle_time < intent.candle_time:
        latest = "none" if ctx.last_candle_time is None else str(ctx.last_candle_time)
        return _deny(
            ReasonCode.NO_MARKET_DATA,
            f"no stored candle of {intent.market.key} at {intent.candle_time} "
            f"(latest stored: {latest})",
        )
    return _PASS


def check_stale_data(intent: OrderIntent, ctx: RiskContext, limits: RiskLimits) -> Check:
    """Refuses to trade on a price that ingestion stopped updating, or on an intent decided
    on a candle long closed (a late redelivery): the older of the two counts."""
    timeframe = intent.market.timeframe_ms
    seen = (
        intent.candle_time
        if ctx.last_candle_time is None
        else min(intent.candle_time, ctx.last_candle_time)
    )
    age = ctx.now_ms - (seen + timeframe)
    if age > STALE_AFTER_TIMEFRAMES * timeframe:
        return _deny(
            ReasonCode.STALE_DATA,
            f"last candle closed {age} ms ago, more than {STALE_AFTER_TIMEFRAMES} x "
            f"{intent.market.timeframe}",
        )
    return _PASS


def check_price_band(intent: OrderIntent, ctx: RiskContext, limits: RiskLimits) -> Check:
    """The order's price (its limit price, or the reference price a market order is sized
    at) far from the last stored close is a mistake or a forged event, not a strategy: a
    reference price of 1e-12 would size a huge amount of a cheap notional."""
    if ctx.last_close is None:
        return _PASS  # check_market_data names it
    kind = "limit" if intent.order_type is OrderType.LIMIT else "reference"
    price = order_price(intent, ctx)
    if price <= 0:
        return _deny(ReasonCode.PRICE_BAND, f"{kind} price rounds to zero at the price step")
    deviation = abs(price - ctx.last_close) / ctx.last_close
    if deviation > limits.price_band:
        return _deny(
            ReasonCode.PRICE_BAND,
            f"{kind} price {_fmt(price)} is {deviation:.2%} from the last stored close "
            f"{_fmt(ctx.last_close)}, band {limits.price_band:.2%}",
        )
    return _PASS


def check_market_amount(
    intent: OrderIntent, ctx: RiskContext, limits: RiskLimits, amount: Decimal
) -> Check:
    """The exchange's amount limits, judged on the amount it will actually receive."""
    rules = ctx.rules
    if intent.side is Side.SELL and ctx.position == 0:
        return _PASS  # nothing to sell: check_balance reports NO_POSITION, the one true reason
    rounded = rules.amount_to_precision(amount)
    bounds = (rules.min_amount, rules.max_amount)
    if rounded <= 0:  # zero is below any minimum, also a minimum of zero
        return _deny(
            ReasonCode.BELOW_MIN_AMOUNT, _outside("amount", rounded, "below", rules.min_amount)
        )
    return _within(
        "amount", rounded, bounds, ReasonCode.BELOW_MIN_AMOUNT, ReasonCode.ABOVE_MAX_AMOUNT
    )


def check_market_notional(
    intent: OrderIntent, ctx: RiskContext, limits: RiskLimits, amount: Decimal
) -> Check:
    """The exchange's cost limits (ccxt ``limits.cost``), so it never rejects the order.

    A zero amount has no cost to judge: :func:`check_market_amount` already names it.
    """
    rules = ctx.rules
    cost = rules.amount_to_precision(amount) * order_price(intent, ctx)
    if cost <= 0:
        return _PASS
    bounds = (rules.min_cost, rules.max_cost)
    return _within(
        "notional", cost, bounds, ReasonCode.BELOW_MIN_NOTIONAL, ReasonCode.ABOVE_MAX_NOTIONAL
    )


def _within(
    what: str,
    value: Decimal,
    bounds: tuple[Decimal, Decimal | None],
    below: ReasonCode,
    above: ReasonCode,
) -> Check:
    """The market's minimum and (optional) maximum of ``what``, as ccxt's ``limits`` give them."""
    low, high = bounds
    if value < low:
        return _deny(below, _outside(what, value, "below", low))
    if high is not None and value > high:
        return _deny(above, _outside(what, value, "above", high))
    return _PASS


def _outside(what: str, value: Decimal, side: str, bound: Decimal) -> str:
    extreme = "minimum" if side == "below" else "maximum"
    return f"{what} {_fmt(value)} is {side} the market {extreme} {_fmt(bound)}"


def check_balance(
    intent: OrderIntent, ctx: RiskContext, limits: RiskLimits, amount: Decimal
) -> Check:
    """The account can pay for a BUY with its fee, or holds what a SELL sells."""
    rounded = ctx.rules.amount_to_precision(amount)
    if intent.side is Side.BUY:
        needed = rounded * order_price(intent, ctx) * (1 + limits.fee_allowance)
        if needed > ctx.free_quote:
            return _deny(
                ReasonCode.INSUFFICIENT_BALANCE,
                f"buy needs {_fmt(needed)} {intent.market.quote} with fees, "
                f"{_fmt(ctx.free_quote)} free",
            )
        return _PASS
    if ctx.position <= 0:
        return _deny(ReasonCode.NO_POSITION, f"no {intent.market.base} position to sell")
    if rounded > ctx.free_base:
        return _deny(
            ReasonCode.INSUFFICIENT_BALANCE,
            f"sell of {_fmt(rounded)} {intent.market.base} exceeds {_fmt(ctx.free_base)} free",
        )
    return _PASS


def run_guards(
    intent: OrderIntent, ctx: RiskContext, limits: RiskLimits, amount: Decimal
) -> tuple[Check, ...]:
    """Every guard's verdict, in a fixed order (the order denial reasons are listed in)."""
    return (
        check_trading_state(intent, ctx, limits, amount),
        check_max_daily_loss(intent, ctx, limits),
        check_max_drawdown(intent, ctx, limits),
        check_cooldown(intent, ctx, limits),
        check_max_orders_per_hour(intent, ctx, limits),
        check_market_data(intent, ctx, limits),
        check_stale_data(intent, ctx, limits),
        check_price_band(intent, ctx, limits),
        check_max_notional(intent, ctx, limits, amount),
        check_max_position(intent, ctx, limits, amount),
        check_max_exposure(intent, ctx, limits, amount),
        check_market_amount(intent, ctx, limits, amount),
        check_market_notional(intent, ctx, limits, amount),
        check_balance(intent, ctx, limits, amount),
    )


def evaluate(intent: OrderIntent, ctx: RiskContext, limits: RiskLimits) -> RiskDecision:
    """Size the intent and run every guard: approve it, or deny it with every reason.

    ``new_trading_state`` is HALTED only when a loss guard tripped and trading is not already
    halted, so the caller can write it straight to the kill switch.
    """
    amount = size_order(intent, ctx, limits)
    failed = [check for check in run_guards(intent, ctx, limits, amount) if not check.ok]
    if not failed:
        price = order_price(intent, ctx)
        market_buy = intent.side is Side.BUY and intent.order_type is OrderType.MARKET
        return RiskDecision(
            intent_id=intent.intent_id,
            approved=True,
            amount=amount,
            price=price if intent.order_type is OrderType.LIMIT else None,
            # Spend the budget at the fill price, not at the signal's close: what was
            # sized is the quote; the base amount follows the price the order gets.
            quote_amount=quote_budget(intent, ctx, limits) if market_buy else None,
            reasons=(ReasonCode.APPROVED,),
            detail=(
                f"{intent.side.value} {_fmt(amount)} {intent.market.base} at {_fmt(price)} "
                f"{intent.market.quote} (notional {_fmt(amount * price)})"
            ),
        )
    halt = ctx.trading_state is not TradingState.HALTED and any(
        check.new_trading_state is TradingState.HALTED for check in failed
    )
    return RiskDecision(
        intent_id=intent.intent_id,
        approved=False,
        reasons=tuple(dict.fromkeys(check.reason for check in failed)),
        detail="; ".join(check.detail for check in failed),
        new_trading_state=TradingState.HALTED if halt else None,
    )
