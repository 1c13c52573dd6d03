"""Risk guards, sizing and the decision, on ETH/BTC numbers (price ~0.07 BTC)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.builders import BINANCE_ETH_BTC as MARKET
from tickstep.models import (
    MarketRules,
    OrderIntent,
    OrderType,
    ReasonCode,
    Side,
    TradingState,
)
from tickstep.orders import new_intent
from tickstep.risk import (
    HOUR_MS,
    EquityFractionSizing,
    FixedQuoteSizing,
    RiskContext,
    RiskLimits,
    check_balance,
    check_cooldown,
    check_market_amount,
    check_market_data,
    check_market_notional,
    check_max_daily_loss,
    check_max_drawdown,
    check_max_exposure,
    check_max_notional,
    check_max_orders_per_hour,
    check_max_position,
    check_price_band,
    check_stale_data,
    check_trading_state,
    evaluate,
    order_price,
    quote_budget,
    size_order,
)

D = Decimal
TIMEFRAME_MS = 300_000
CANDLE_TIME = 1_700_000_100_000
NOW = CANDLE_TIME + TIMEFRAME_MS + 2_000
CLOSE = D("0.07341")
RULES: dict[str, Any] = {
    "amount_step": "0.001",
    "price_step": "0.00001",
    "min_amount": "0.001",
    "max_amount": "100000",
    "min_cost": "0.0001",
    "max_cost": "9000",
}
LIMITS: dict[str, Any] = {
    "max_notional_per_order": "0.01",
    "max_position_per_market": "0.05",
    "max_total_exposure": "0.2",
    "max_daily_loss": "0.01",
    "max_drawdown": "0.2",
    "cooldown_after_loss_ms": HOUR_MS,
    "max_orders_per_hour": 6,
    "price_band": "0.05",
    "sizing": {"kind": "fixed_quote", "quote_amount": "0.005"},
}
CONTEXT: dict[str, Any] = {
    "now_ms": NOW,
    "trading_state": TradingState.ACTIVE,
    "position": "0",
    "total_exposure": "0",
    "free_quote": "0.1",
    "free_base": "0",
    "equity": "0.1",
    "peak_equity": "0.1",
    "day_start_equity": "0.1",
    "last_candle_time": CANDLE_TIME,
    "last_close": CLOSE,
    "rules": RULES,
}


def limits(**overrides: Any) -> RiskLimits:
    return RiskLimits.model_validate({**LIMITS, **overrides})


def context(**overrides: Any) -> RiskContext:
    return RiskContext.model_validate({**CONTEXT, **overrides})


def holding(amount: str, **overrides: Any) -> RiskContext:
    """A context holding ``amount`` ETH (free on the exchange too)."""
    return context(position=amount, free_base=amount, **overrides)


def intent(
    side: Side = Side.BUY,
    *,
    price: Decimal = CLOSE,
    limit_price: Decimal | None = None,
    confidence: float | None = None,
) -> OrderIntent:
    return new_intent(
        strategy="sma_cross",
        market=MARKET,
        candle_time=CANDLE_TIME,
        side=side,
        reference_price=price,
        order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
        limit_price=limit_price,
        confidence=confidence,
    )


BUY = intent(Side.BUY)
SELL = intent(Side.SELL)


# --- RiskLimits ---------------------------------------------------------------------------


def test_risk_limits_when_field_unknown_then_validation_error_names_it() -> None:
    with pytest.raises(ValidationError, match="max_leverage"):
        limits(max_leverage="3")


def test_risk_limits_when_sizing_is_a_fraction_then_parses_equity_fraction() -> None:
    parsed = limits(sizing={"kind": "equity_fraction", "fraction": "0.1"})

    assert parsed.sizing == EquityFractionSizing(fraction=D("0.1"))


def test_risk_limits_when_sizing_kind_unknown_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="sizing"):
        limits(sizing={"kind": "kelly", "fraction": "0.1"})


def test_risk_limits_when_drawdown_above_one_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="max_drawdown"):
        limits(max_drawdown="1.5")


def test_risk_limits_when_assigned_then_frozen_rejects_it() -> None:
    with pytest.raises(ValidationError):
        limits().max_orders_per_hour = 100  # type: ignore[misc]


# --- trading state ------------------------------------------------------------------------


def test_check_trading_state_when_active_then_allows_buy() -> None:
    check = check_trading_state(BUY, context(), limits(), D("0.068"))

    assert check.ok
    assert check.reason is ReasonCode.APPROVED


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_check_trading_state_when_halted_then_denies_every_side(side: Side) -> None:
    ctx = holding("1", trading_state=TradingState.HALTED)

    check = check_trading_state(intent(side), ctx, limits(), D("0.5"))

    assert not check.ok
    assert check.reason is ReasonCode.TRADING_HALTED


def test_check_trading_state_when_reducing_then_denies_buy() -> None:
    check = check_trading_state(
        BUY, context(trading_state=TradingState.REDUCING), limits(), D("0.068")
    )

    assert (check.ok, check.reason) == (False, ReasonCode.REDUCE_ONLY)


def test_check_trading_state_when_reducing_then_allows_sell_up_to_position() -> None:
    ctx = holding("0.5", trading_state=TradingState.REDUCING)

    assert check_trading_state(SELL, ctx, limits(), D("0.5")).ok


def test_check_trading_state_when_reducing_then_denies_sell_beyond_position() -> None:
    ctx = holding("0.5", trading_state=TradingState.REDUCING)

    check = check_trading_state(SELL, ctx, limits(), D("0.501"))

    assert (check.ok, check.reason) == (False, ReasonCode.REDUCE_ONLY)


# --- max notional, position, exposure -----------------------------------------------------


def test_check_max_notional_when_within_limit_then_allows() -> None:
    assert check_max_notional(BUY, context(), limits(), D("0.136")).ok  # 0.00998 BTC


def test_check_max_notional_when_above_limit_then_denies() -> None:
    check = check_max_notional(BUY, context(), limits(), D("0.137"))  # 0.01006 BTC

    assert (check.ok, check.reason) == (False, ReasonCode.MAX_NOTIONAL)
    assert "0.01" in check.detail


def test_check_max_notional_when_sell_then_allows_closing_any_size() -> None:
    assert check_max_notional(SELL, holding("10"), limits(), D("10")).ok


def test_check_max_notional_when_limit_order_then_values_at_limit_price() -> None:
    order = intent(limit_price=D("0.07"))

    assert check_max_notional(order, context(), limits(), D("0.142")).ok  # 0.00994 BTC
    assert not check_max_notional(order, context(), limits(), D("0.143")).ok  # 0.01001 BTC


def test_check_max_position_when_position_plus_order_within_limit_then_allows() -> None:
    assert check_max_position(BUY, holding("0.6"), limits(), D("0.06")).ok  # 0.04845 BTC


def test_check_max_position_when_position_plus_order_above_limit_then_denies() -> None:
    check = check_max_position(BUY, holding("0.6"), limits(), D("0.1"))  # 0.05139 BTC

    assert (check.ok, check.reason) == (False, ReasonCode.MAX_POSITION)


def test_check_max_exposure_when_total_within_limit_then_allows() -> None:
    ctx = context(total_exposure="0.19")

    assert check_max_exposure(BUY, ctx, limits(), D("0.136")).ok


def test_check_max_exposure_when_total_above_limit_then_denies() -> None:
    ctx = context(total_exposure="0.196")

    check = check_max_exposure(BUY, ctx, limits(), D("0.068"))

    assert (check.ok, check.reason) == (False, ReasonCode.MAX_EXPOSURE)


# --- loss limits and cooldown -------------------------------------------------------------


def test_check_max_daily_loss_when_loss_within_limit_then_allows() -> None:
    assert check_max_daily_loss(BUY, context(equity="0.0901"), limits()).ok


def test_check_max_daily_loss_when_limit_reached_then_denies_and_halts() -> None:
    check = check_max_daily_loss(BUY, context(equity="0.09"), limits())

    assert (check.ok, check.reason) == (False, ReasonCode.MAX_DAILY_LOSS)
    assert check.new_trading_state is TradingState.HALTED


def test_check_max_daily_loss_when_limit_reached_then_still_allows_sell() -> None:
    assert check_max_daily_loss(SELL, holding("1", equity="0.05"), limits()).ok


def test_check_max_drawdown_when_drawdown_within_limit_then_allows() -> None:
    ctx = context(peak_equity="0.2", equity="0.1601", day_start_equity="0.1601")

    assert check_max_drawdown(BUY, ctx, limits()).ok


def test_check_max_drawdown_when_limit_reached_then_denies_and_halts() -> None:
    ctx = context(peak_equity="0.2", equity="0.16", day_start_equity="0.16")

    check = check_max_drawdown(BUY, ctx, limits())

    assert (check.ok, check.reason) == (False, ReasonCode.MAX_DRAWDOWN)
    assert check.new_trading_state is TradingState.HALTED
    assert "20.00%" in check.detail


def test_check_max_drawdown_when_no_peak_yet_then_allows() -> None:
    assert check_max_drawdown(BUY, context(peak_equity="0", equity="0"), limits()).ok


def test_check_cooldown_when_loss_within_cooldown_then_denies_buy() -> None:
    ctx = context(last_losing_trade_ms=NOW - HOUR_MS + 1)

    check = check_cooldown(BUY, ctx, limits())

    assert (check.ok, check.reason) == (False, ReasonCode.COOLDOWN)
    assert "1 ms left" in check.detail


def test_check_cooldown_when_cooldown_over_then_allows_buy() -> None:
    assert check_cooldown(BUY, context(last_losing_trade_ms=NOW - HOUR_MS), limits()).ok


def test_check_cooldown_when_no_losing_trade_then_allows_buy() -> None:
    assert check_cooldown(BUY, context(), limits()).ok


def test_check_cooldown_when_in_cooldown_then_allows_sell() -> None:
    assert check_cooldown(SELL, holding("1", last_losing_trade_ms=NOW), limits()).ok


# --- order rate, stale data, price band ---------------------------------------------------


def test_check_max_orders_per_hour_when_limit_reached_then_denies() -> None:
    ctx = context(recent_order_times_ms=[NOW - i * 60_000 for i in range(6)])

    check = check_max_orders_per_hour(SELL, ctx, limits())

    assert (check.ok, check.reason) == (False, ReasonCode.MAX_ORDERS_PER_HOUR)


def test_check_max_orders_per_hour_when_older_orders_left_the_window_then_allows() -> None:
    times = [NOW - HOUR_MS, NOW - HOUR_MS - 1, *(NOW - i * 60_000 for i in range(5))]

    assert check_max_orders_per_hour(BUY, context(recent_order_times_ms=times), limits()).ok


def test_check_stale_data_when_candle_closed_recently_then_allows() -> None:
    assert check_stale_data(BUY, context(), limits()).ok


def test_check_stale_data_when_candle_closed_exactly_two_timeframes_ago_then_allows() -> None:
    ctx = context(now_ms=CANDLE_TIME + 3 * TIMEFRAME_MS)

    assert check_stale_data(BUY, ctx, limits()).ok


def test_check_stale_data_when_candle_closed_over_two_timeframes_ago_then_denies() -> None:
    ctx = context(now_ms=CANDLE_TIME + 3 * TIMEFRAME_MS + 1)

    check = check_stale_data(BUY, ctx, limits())

    assert (check.ok, check.reason) == (False, ReasonCode.STALE_DATA)


def test_check_price_band_when_limit_price_within_band_then_allows() -> None:
    assert check_price_band(intent(limit_price=D("0.06974")), context(), limits()).ok  # -4.99%


def test_check_price_band_when_limit_price_outside_band_then_denies() -> None:
    check = check_price_band(intent(limit_price=D("0.0697")), context(), limits())  # -5.05%

    assert (check.ok, check.reason) == (False, ReasonCode.PRICE_BAND)


def test_check_price_band_when_limit_price_rounds_to_zero_then_denies() -> None:
    order = intent(price=D("0.000001"), limit_price=D("0.000001"))
    ctx = context(last_close="0.000001")

    check = check_price_band(order, ctx, limits(price_band="0.99"))

    assert (check.ok, check.reason) == (False, ReasonCode.PRICE_BAND)


def test_check_price_band_when_market_order_near_the_stored_close_then_allows() -> None:
    assert check_price_band(intent(price=D("0.07708")), context(), limits()).ok  # +4.997%


def test_check_price_band_when_a_market_order_is_priced_far_from_the_stored_close_then_denies() -> (
    None
):
    """A forged event makes the signal's close and the reference price agree: the band is
    checked against the close risk read itself."""
    for price in (D("0.09"), D("1E-12")):
        check = check_price_band(intent(price=price), context(), limits())

        assert (check.ok, check.reason) == (False, ReasonCode.PRICE_BAND)
        assert "reference price" in check.detail
        assert "last stored close 0.07341" in check.detail


def test_evaluate_when_the_reference_price_is_wild_then_denies_the_huge_amount_it_sizes() -> None:
    wild = intent(price=D("1E-12"))

    assert size_order(wild, context(), limits()) == D("5000000000")  # 0.005 / 1e-12
    decision = evaluate(wild, context(free_quote="1000"), limits())

    assert not decision.approved
    assert decision.amount is None
    assert decision.reasons[0] is ReasonCode.PRICE_BAND


def test_check_market_data_when_no_candle_is_stored_then_denies_naming_the_market() -> None:
    check = check_market_data(BUY, context(last_candle_time=None, last_close=None), limits())

    assert (check.ok, check.reason) == (False, ReasonCode.NO_MARKET_DATA)
    assert check.detail == (
        f"no stored candle of binance:ETH/BTC:5m at {CANDLE_TIME} (latest stored: none)"
    )


def test_check_market_data_when_the_stored_candle_is_older_than_the_intent_then_denies() -> None:
    ctx = context(last_candle_time=CANDLE_TIME - TIMEFRAME_MS)

    check = check_market_data(BUY, ctx, limits())

    assert (check.ok, check.reason) == (False, ReasonCode.NO_MARKET_DATA)


def test_check_market_data_when_the_intent_candle_or_a_newer_one_is_stored_then_allows() -> None:
    assert check_market_data(BUY, context(), limits()).ok
    assert check_market_data(BUY, context(last_candle_time=CANDLE_TIME + TIMEFRAME_MS), limits()).ok


def test_evaluate_when_no_candle_is_stored_then_denies_with_no_market_data_only() -> None:
    decision = evaluate(BUY, context(last_candle_time=None, last_close=None), limits())

    assert decision.reasons == (ReasonCode.NO_MARKET_DATA,)


def test_check_stale_data_when_a_newer_candle_is_stored_but_the_intent_is_old_then_denies() -> None:
    """A late redelivery: the market data is fresh, the candle the intent was decided on is
    not."""
    ctx = context(
        now_ms=CANDLE_TIME + 4 * TIMEFRAME_MS, last_candle_time=CANDLE_TIME + 3 * TIMEFRAME_MS
    )

    check = check_stale_data(BUY, ctx, limits())

    assert (check.ok, check.reason) == (False, ReasonCode.STALE_DATA)


# --- market rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guard", "amount", "reason"),
    [
        (check_market_amount, "0.001", ReasonCode.APPROVED),
        (check_market_amount, "0", ReasonCode.BELOW_MIN_AMOUNT),
        (check_market_amount, "0.0009", ReasonCode.BELOW_MIN_AMOUNT),  # 0 after truncation
        (check_market_amount, "100000.001", ReasonCode.ABOVE_MAX_AMOUNT),
        # 0.002 ETH costs 0.00014682 BTC, 0.001 ETH 0.00007341 BTC (the min cost is 0.0001)
        (check_market_notional, "0.002", ReasonCode.APPROVED),
        (check_market_notional, "0.001", ReasonCode.BELOW_MIN_NOTIONAL),
        (check_market_notional, "0.0009", ReasonCode.APPROVED),  # 0 ETH: the amount guard's
        (check_market_notional, "200000", ReasonCode.ABOVE_MAX_NOTIONAL),
    ],
    ids=[
        "amount-within",
        "amount-zero",
        "amount-below-min-after-truncation",
        "amount-above-max",
        "cost-within",
        "cost-below-min",
        "cost-of-zero-amount-left-to-the-amount-guard",
        "cost-above-max",
    ],
)
def test_market_rule_guards_when_a_buy_is_outside_the_rules_then_deny_it_naming_the_rule(
    guard: Any, amount: str, reason: ReasonCode
) -> None:
    check = guard(BUY, context(), limits(), D(amount))

    assert (check.ok, check.reason) == (reason is ReasonCode.APPROVED, reason)


# --- balance ------------------------------------------------------------------------------


def test_check_balance_when_quote_covers_cost_and_fee_then_allows_buy() -> None:
    ctx = context(free_quote="0.00499687188")  # exactly 0.068 * 0.07341 * 1.001

    assert check_balance(BUY, ctx, limits(), D("0.068")).ok


def test_check_balance_when_quote_covers_cost_but_not_fee_then_denies_buy() -> None:
    ctx = context(free_quote="0.00499188")  # exactly 0.068 * 0.07341

    check = check_balance(BUY, ctx, limits(), D("0.068"))

    assert (check.ok, check.reason) == (False, ReasonCode.INSUFFICIENT_BALANCE)


def test_check_balance_when_base_covers_amount_then_allows_sell() -> None:
    assert check_balance(SELL, holding("0.5"), limits(), D("0.5")).ok


def test_check_balance_when_free_base_short_then_denies_sell() -> None:
    ctx = context(position="0.5", free_base="0.4")

    check = check_balance(SELL, ctx, limits(), D("0.5"))

    assert (check.ok, check.reason) == (False, ReasonCode.INSUFFICIENT_BALANCE)


def test_check_balance_when_no_position_then_denies_sell_with_no_position() -> None:
    ctx = context(free_base="3")

    check = check_balance(SELL, ctx, limits(), D("0"))

    assert (check.ok, check.reason) == (False, ReasonCode.NO_POSITION)


# --- sizing -------------------------------------------------------------------------------


def test_size_order_when_fixed_quote_then_truncates_budget_over_price() -> None:
    assert size_order(BUY, context(), limits()) == D("0.068")  # 0.005 / 0.07341 = 0.06811..


def test_size_order_when_limit_order_then_sizes_at_rounded_limit_price() -> None:
    order = intent(limit_price=D("0.0700049"))  # rounds to 0.07

    assert size_order(order, context(), limits()) == D("0.071")  # 0.005 / 0.07 = 0.0714..


def test_size_order_when_fraction_of_equity_then_sizes_from_equity() -> None:
    sized = limits(sizing={"kind": "equity_fraction", "fraction": "0.05"})

    assert size_order(BUY, context(equity="0.2"), sized) == D("0.136")  # 0.01 / 0.07341


def test_size_order_when_sized_by_confidence_then_scales_budget() -> None:
    order = intent(confidence=0.5)

    assert size_order(order, context(), limits(size_by_confidence=True)) == D("0.034")


def test_size_order_when_confidence_flag_off_then_ignores_confidence() -> None:
    assert size_order(intent(confidence=0.5), context(), limits()) == D("0.068")


def test_size_order_when_sell_then_closes_whole_position_on_the_amount_grid() -> None:
    assert size_order(SELL, holding("0.5127"), limits()) == D("0.512")


# --- evaluate -----------------------------------------------------------------------------


def test_evaluate_when_every_guard_passes_then_approves_rounded_amount() -> None:
    decision = evaluate(BUY, context(), limits())

    assert decision.approved
    assert decision.amount == D("0.068")
    assert str(decision.amount) == "0.068"
    assert decision.price is None
    assert decision.quote_amount == D("0.005")  # the budget: spent at the fill price
    assert decision.reasons == (ReasonCode.APPROVED,)
    assert decision.intent_id == BUY.intent_id
    assert decision.new_trading_state is None


def test_evaluate_when_limit_order_approved_then_carries_rounded_limit_price() -> None:
    decision = evaluate(intent(limit_price=D("0.0734149")), context(), limits())

    assert (decision.approved, decision.amount, decision.price) == (True, D("0.068"), D("0.07341"))
    assert decision.quote_amount is None  # a limit order's amount is exact


def test_evaluate_when_sell_approved_then_amount_is_whole_position() -> None:
    decision = evaluate(SELL, holding("0.5127"), limits())

    assert (decision.approved, decision.amount) == (True, D("0.512"))
    assert decision.quote_amount is None  # a sell sells what is held


def test_evaluate_when_several_guards_fail_then_lists_every_reason_in_stable_order() -> None:
    ctx = context(
        last_losing_trade_ms=NOW - 1,
        now_ms=NOW + 10 * TIMEFRAME_MS,
        free_quote="0.001",
        total_exposure="0.199",
    )

    decision = evaluate(BUY, ctx, limits())

    assert not decision.approved
    assert decision.amount is None
    assert decision.reasons == (
        ReasonCode.COOLDOWN,
        ReasonCode.STALE_DATA,
        ReasonCode.MAX_EXPOSURE,
        ReasonCode.INSUFFICIENT_BALANCE,
    )
    assert decision.detail.count(";") == 3
    assert decision.new_trading_state is None


def test_evaluate_when_daily_loss_reached_then_denies_and_halts_trading() -> None:
    decision = evaluate(BUY, context(equity="0.08", peak_equity="0.1"), limits())

    assert not decision.approved
    assert decision.reasons == (ReasonCode.MAX_DAILY_LOSS, ReasonCode.MAX_DRAWDOWN)
    assert decision.new_trading_state is TradingState.HALTED


def test_evaluate_when_already_halted_then_denies_without_a_new_state() -> None:
    ctx = context(trading_state=TradingState.HALTED, equity="0.08")

    decision = evaluate(BUY, ctx, limits())

    assert decision.reasons == (
        ReasonCode.TRADING_HALTED,
        ReasonCode.MAX_DAILY_LOSS,
        ReasonCode.MAX_DRAWDOWN,
    )
    assert decision.new_trading_state is None


def test_evaluate_when_reducing_then_lets_a_sell_through() -> None:
    decision = evaluate(SELL, holding("0.5", trading_state=TradingState.REDUCING), limits())

    assert (decision.approved, decision.amount) == (True, D("0.5"))


def test_evaluate_when_reducing_then_denies_a_buy_as_reduce_only() -> None:
    decision = evaluate(BUY, context(trading_state=TradingState.REDUCING), limits())

    assert decision.reasons == (ReasonCode.REDUCE_ONLY,)


def test_evaluate_when_sell_without_position_then_denies_no_position() -> None:
    decision = evaluate(SELL, context(), limits())

    assert decision.reasons == (ReasonCode.NO_POSITION,)


def test_evaluate_when_sized_by_fraction_of_equity_then_approves_that_amount() -> None:
    sized = limits(sizing=EquityFractionSizing(fraction=D("0.05")))

    decision = evaluate(BUY, context(equity="0.15", day_start_equity="0.15"), sized)

    assert (decision.approved, decision.amount) == (True, D("0.102"))  # 0.0075 / 0.07341


def test_evaluate_when_sized_by_confidence_then_approves_scaled_amount() -> None:
    sized = limits(size_by_confidence=True)

    decision = evaluate(intent(confidence=0.25), context(), sized)

    assert (decision.approved, decision.amount) == (True, D("0.017"))  # 0.00125 / 0.07341
    assert decision.quote_amount == D("0.00125")


def test_evaluate_when_confidence_shrinks_order_to_nothing_then_denies_below_min_amount() -> None:
    sized = limits(size_by_confidence=True)

    decision = evaluate(intent(confidence=0.01), context(), sized)  # 0.00005 BTC budget

    assert decision.reasons == (ReasonCode.BELOW_MIN_AMOUNT,)
    assert decision.detail == "amount 0 is below the market minimum 0.001"


# --- properties of the money math ---------------------------------------------------------

prices = st.decimals(min_value=D("0.00001"), max_value=D("10"), places=5)
money = st.decimals(min_value=D("0"), max_value=D("100"), places=8)
steps = st.sampled_from([D("0.001"), D("0.0001"), D("0.01"), D("1"), D("0.005")])
fractions = st.decimals(min_value=D("0.001"), max_value=D("1"), places=3)
confidences = st.none() | st.floats(min_value=0.0, max_value=1.0)


@st.composite
def rules(draw: st.DrawFn) -> MarketRules:
    step = draw(steps)
    return MarketRules(
        amount_step=step,
        price_step=D("0.00001"),
        min_amount=step * draw(st.integers(0, 5)),
        max_amount=draw(st.none() | st.just(D("100000"))),
        min_cost=draw(st.sampled_from([D("0"), D("0.0001"), D("0.001")])),
        max_cost=draw(st.none() | st.just(D("9000"))),
    )


@st.composite
def sizings(draw: st.DrawFn) -> FixedQuoteSizing | EquityFractionSizing:
    if draw(st.booleans()):
        return FixedQuoteSizing(
            quote_amount=draw(st.decimals(min_value=D("0.00000001"), max_value=D("100"), places=8))
        )
    return EquityFractionSizing(fraction=draw(fractions))


@st.composite
def intents(draw: st.DrawFn) -> OrderIntent:
    price = draw(prices)
    use_limit = draw(st.booleans())
    return intent(
        draw(st.sampled_from(Side)),
        price=price,
        limit_price=price * draw(st.sampled_from([D("0.9"), D("1"), D("1.01")]))
        if use_limit
        else None,
        confidence=draw(confidences),
    )


@st.composite
def contexts(draw: st.DrawFn, close: Decimal | None = None) -> RiskContext:
    equity = draw(money)
    return RiskContext(
        now_ms=NOW + draw(st.integers(0, 4 * TIMEFRAME_MS)),
        trading_state=draw(st.sampled_from(TradingState)),
        position=draw(money),
        total_exposure=draw(money),
        free_quote=draw(money),
        free_base=draw(money),
        equity=equity,
        peak_equity=equity + draw(money),
        day_start_equity=draw(money),
        last_losing_trade_ms=draw(st.none() | st.integers(0, NOW)),
        recent_order_times_ms=tuple(draw(st.lists(st.integers(0, NOW), max_size=8))),
        last_candle_time=CANDLE_TIME,
        last_close=close if close is not None else draw(prices),
        rules=draw(rules()),
    )


@st.composite
def risk_limits(draw: st.DrawFn) -> RiskLimits:
    return limits(
        max_notional_per_order=draw(money.filter(lambda m: m > 0)),
        max_position_per_market=draw(money.filter(lambda m: m > 0)),
        max_total_exposure=draw(money.filter(lambda m: m > 0)),
        max_daily_loss=draw(money.filter(lambda m: m > 0)),
        max_drawdown=draw(fractions),
        cooldown_after_loss_ms=draw(st.integers(0, 2 * HOUR_MS)),
        max_orders_per_hour=draw(st.integers(1, 10)),
        price_band=draw(st.decimals(min_value=D("0.001"), max_value=D("0.5"), places=3)),
        sizing=draw(sizings()),
        size_by_confidence=draw(st.booleans()),
    )


@settings(max_examples=300)
@given(order=intents(), ctx=contexts(), risk=risk_limits())
def test_size_order_for_any_buy_then_cost_never_exceeds_budget(
    order: OrderIntent, ctx: RiskContext, risk: RiskLimits
) -> None:
    buy = order.model_copy(update={"side": Side.BUY})

    amount = size_order(buy, ctx, risk)

    assert amount >= 0
    assert amount % ctx.rules.amount_step == 0
    assert amount * order_price(buy, ctx) <= quote_budget(buy, ctx, risk)


@settings(max_examples=300)
@given(order=intents(), ctx=contexts(), risk=risk_limits())
def test_evaluate_for_any_valid_context_then_never_raises_and_is_well_formed(
    order: OrderIntent, ctx: RiskContext, risk: RiskLimits
) -> None:
    decision = evaluate(order, ctx, risk)

    assert decision.intent_id == order.intent_id
    if decision.approved:
        assert decision.amount is not None
        assert decision.amount % ctx.rules.amount_step == 0
        assert decision.amount >= ctx.rules.min_amount
        assert (decision.price is not None) == (order.order_type is OrderType.LIMIT)
    else:
        assert len(set(decision.reasons)) == len(decision.reasons)
        assert decision.detail


@settings(max_examples=300)
@given(
    price=prices,
    market_rules=rules(),
    sizing=sizings(),
    equity=st.decimals(min_value=D("0.01"), max_value=D("100"), places=8),
    confidence=st.none() | st.floats(min_value=0.1, max_value=1.0),
)
def test_evaluate_when_approving_a_buy_then_amount_is_on_grid_above_minimums_within_budget(
    price: Decimal,
    market_rules: MarketRules,
    sizing: FixedQuoteSizing | EquityFractionSizing,
    equity: Decimal,
    confidence: float | None,
) -> None:
    ctx = context(
        equity=equity,
        peak_equity=equity,
        day_start_equity=equity,
        free_quote="1000000",
        last_close=price,
        rules=market_rules,
    )
    generous = limits(
        max_notional_per_order="1000000",
        max_position_per_market="1000000",
        max_total_exposure="1000000",
        sizing=sizing,
        size_by_confidence=True,
    )
    order = intent(price=price, confidence=confidence)

    decision = evaluate(order, ctx, generous)

    budget = quote_budget(order, ctx, generous)
    if decision.approved:
        assert decision.amount is not None
        assert decision.amount % market_rules.amount_step == 0
        assert decision.amount >= market_rules.min_amount
        assert market_rules.min_cost <= decision.amount * price <= budget
    else:
        assert set(decision.reasons) <= {
            ReasonCode.BELOW_MIN_AMOUNT,
            ReasonCode.BELOW_MIN_NOTIONAL,
            ReasonCode.ABOVE_MAX_AMOUNT,
            ReasonCode.ABOVE_MAX_NOTIONAL,
        }
