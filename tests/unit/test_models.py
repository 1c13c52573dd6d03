from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from tickstep.models import (
    Candle,
    CandleClosed,
    Market,
    MarketRules,
    Order,
    OrderStatus,
    OrderType,
    PlainText,
    ReasonCode,
    RiskDecision,
    Side,
    Signal,
    SignalAction,
    timeframe_ms,
)
from tickstep.orders import new_intent

CANDLE = {
    "timestamp": 1515560100000,
    "open": "0.0984",
    "high": "0.0994766",
    "low": "0.09828605",
    "close": "0.0994766",
    "volume": "1820.54447418",
}
MARKET = {"exchange": "binance", "symbol": "ETH/BTC", "timeframe": "5m"}


def field_names(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in err["loc"]) for err in exc.errors()}


def test_candle_closed_when_parsed_from_json_then_prices_are_exact_decimals() -> None:
    event = CandleClosed.model_validate({"market": MARKET, "candle": CANDLE})
    assert event.candle.low == Decimal("0.09828605")
    assert event.close_time == 1515560100000 + 300_000
    assert json.loads(event.model_dump_json())["candle"]["low"] == "0.09828605"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"market": {**MARKET, "symbol": "ETHBTC"}, "candle": CANDLE}, "market.symbol"),
        ({"market": {**MARKET, "timeframe": "5x"}, "candle": CANDLE}, "market.timeframe"),
        ({"market": MARKET, "candle": {**CANDLE, "close": "abc"}}, "candle.close"),
        ({"market": MARKET, "candle": {**CANDLE, "open": "-1"}}, "candle.open"),
        ({"market": MARKET, "candle": {**CANDLE, "volume": "NaN"}}, "candle.volume"),
        ({"market": MARKET, "candle": {**CANDLE, "extra": 1}}, "candle.extra"),
        ({"market": MARKET}, "candle"),
        ({"market": MARKET, "candle": {**CANDLE, "timestamp": -5}}, "candle.timestamp"),
    ],
)
def test_candle_closed_when_malformed_then_validation_error_names_the_field(
    payload: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        CandleClosed.model_validate(payload)
    assert field in field_names(info.value)


def test_candle_when_high_below_close_then_rejected() -> None:
    with pytest.raises(ValidationError, match="high/low"):
        Candle.model_validate({**CANDLE, "high": "0.09"})


def test_models_when_assigned_then_refuse_because_frozen() -> None:
    market = Market.model_validate(MARKET)
    with pytest.raises(ValidationError):
        market.symbol = "LTC/BTC"  # type: ignore[misc]


def test_timeframe_ms_when_known_units_then_exact_and_unknown_is_clear_error() -> None:
    assert [timeframe_ms(t) for t in ("1m", "5m", "1h", "1d", "1w")] == [
        60_000,
        300_000,
        3_600_000,
        86_400_000,
        604_800_000,
    ]
    with pytest.raises(ValueError, match="unknown timeframe"):
        timeframe_ms("1y")


def test_risk_decision_when_approved_without_amount_then_rejected() -> None:
    intent_id = "ts" + "0" * 30
    with pytest.raises(ValidationError, match="amount"):
        RiskDecision(intent_id=intent_id, approved=True, reasons=(ReasonCode.APPROVED,))
    with pytest.raises(ValidationError, match="reasons"):
        RiskDecision(intent_id=intent_id, approved=False, reasons=())
    denied = RiskDecision(intent_id=intent_id, approved=False, reasons=(ReasonCode.COOLDOWN,))
    assert denied.amount is None


def test_order_when_filled_exceeds_amount_then_rejected() -> None:
    with pytest.raises(ValidationError, match="filled"):
        Order(
            intent_id="ts" + "0" * 30,
            client_order_id="ts" + "0" * 30,
            market=Market.model_validate(MARKET),
            side=Side.BUY,
            order_type=OrderType.MARKET,
            amount=Decimal("1"),
            filled=Decimal("2"),
            status=OrderStatus.FILLED,
            created_at=0,
            updated_at=0,
        )


def test_signal_when_strength_out_of_range_then_names_strength() -> None:
    with pytest.raises(ValidationError) as info:
        Signal(
            market=Market.model_validate(MARKET),
            strategy="sma_cross",
            candle_time=0,
            action=SignalAction.BUY,
            strength=1.5,
            reason="",
            close=Decimal("0.1"),
        )
    assert field_names(info.value) == {"strength"}


def test_limit_intent_when_limit_price_missing_then_rejected() -> None:
    with pytest.raises(ValidationError, match="limit_price"):
        new_intent(
            strategy="s",
            market=Market.model_validate(MARKET),
            candle_time=0,
            side=Side.BUY,
            reference_price="0.1",
            order_type=OrderType.LIMIT,
        )


def test_market_rules_from_ccxt_when_tick_size_or_decimals_then_same_steps() -> None:
    ccxt_market = {
        "precision": {"amount": 0.001, "price": 1e-06},
        "limits": {"amount": {"min": 0.001, "max": 100000}, "cost": {"min": 0.0001}},
    }
    tick = MarketRules.from_ccxt(ccxt_market)
    decimals = MarketRules.from_ccxt(
        {**ccxt_market, "precision": {"amount": 3, "price": 6}}, precision_mode=2
    )
    assert tick.amount_step == decimals.amount_step == Decimal("0.001")
    assert tick.price_step == decimals.price_step == Decimal("0.000001")
    assert tick.min_cost == Decimal("0.0001")
    assert tick.max_amount == Decimal("100000")
    with pytest.raises(ValueError, match="precision"):
        MarketRules.from_ccxt({"precision": {}})


@given(
    amount=st.decimals(min_value=Decimal(0), max_value=Decimal(10**6), places=12),
    step=st.sampled_from([Decimal("1"), Decimal("0.1"), Decimal("0.001"), Decimal("0.00000001")]),
)
def test_amount_to_precision_never_rounds_up_and_lands_on_a_step(
    amount: Decimal, step: Decimal
) -> None:
    rules = MarketRules(amount_step=step, price_step=Decimal("0.01"))
    rounded = rules.amount_to_precision(amount)
    assert rounded <= amount
    assert amount - rounded < step
    assert rounded % step == 0


# -- numbers that cannot be stored or computed with, and hidden characters (issue 10) --------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1e999999999", "less than 1E+18"),
        ("-1e999999999", "greater than 0"),
        ("1e30", "less than 1E+18"),
        (1e308, "less than 1E+18"),
        ("1e-999999999", "at least 1E-130"),
        ("1e-131", "at least 1E-130"),
        ("0." + "1" * 39, "more than 38 significant digits"),
        ("9" * 40, "less than 1E+18"),
        ("Infinity", "finite number"),
    ],
)
def test_a_price_that_cannot_be_stored_when_validated_then_names_the_field_not_a_crash(
    value: object, message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        Candle.model_validate({**CANDLE, "close": value})

    assert field_names(raised.value) >= {"close"}
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "value", ["0.00000000000000000000000000000000000012", "999999999999999999.5", "1E-130", "0"]
)
def test_an_amount_dynamodb_holds_when_validated_then_it_is_kept_exactly(value: str) -> None:
    candle = Candle.model_validate({**CANDLE, "volume": value})

    assert candle.volume == Decimal(value)


def test_significant_digits_when_trailing_zeros_then_they_do_not_count() -> None:
    candle = Candle.model_validate({**CANDLE, "volume": "1" + "0" * 17 + ".000000000000000000000"})

    assert candle.volume == Decimal("1E+17")


@pytest.mark.parametrize("value", [10**30, 2**63, 253_402_300_800_000])
def test_a_timestamp_beyond_year_9999_when_validated_then_names_the_field(value: int) -> None:
    with pytest.raises(ValidationError) as raised:
        Candle.model_validate({**CANDLE, "timestamp": value})

    assert field_names(raised.value) == {"timestamp"}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("stop\x00now", "0000"),
        ("stop\u202enow", "202E"),
        ("stop\r\nnow", "000D"),
        ("stop\nnow", "000A"),
        ("stop\u2028now", "2028"),
        ("stop\u200bnow", "200B"),
        ("stop\ud800now", "D800"),
    ],
    ids=["nul", "bidi-override", "crlf", "lf", "line-separator", "zero-width", "surrogate"],
)
def test_plain_text_when_it_hides_characters_then_names_the_character(text: str, code: str) -> None:
    with pytest.raises(ValidationError, match=f"U\\+{code} at 4"):
        TypeAdapter(PlainText).validate_python(text)


def test_plain_text_when_printable_in_any_script_then_kept() -> None:
    text = "exchange incident: Ümlaut, 日本語, emoji 🚨, tabs? no"
    assert TypeAdapter(PlainText).validate_python(text) == text
