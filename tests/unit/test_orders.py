from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tickstep.models import Market, OrderStatus, Side
from tickstep.orders import ALLOWED_TRANSITIONS, can_transition, intent_id, new_intent

ETH = Market(exchange="binance", symbol="ETH/BTC", timeframe="5m")
# Binance's clientOrderId rule is the strictest common one we target; OKX wants <= 32 alnum.
CLIENT_ORDER_ID = re.compile(r"^[a-z0-9]{1,32}$")


def test_intent_id_when_same_inputs_then_same_id_and_usable_as_client_order_id() -> None:
    a = intent_id("sma_cross", ETH, 1515560100000, Side.BUY)
    assert a == intent_id("sma_cross", ETH, 1515560100000, Side.BUY)
    assert CLIENT_ORDER_ID.match(a)
    assert len(a) == 32


def test_intent_id_when_any_component_differs_then_id_differs() -> None:
    base = intent_id("sma_cross", ETH, 1515560100000, Side.BUY)
    others = {
        intent_id("rsi_reversion", ETH, 1515560100000, Side.BUY),
        intent_id(
            "sma_cross", ETH.model_copy(update={"symbol": "LTC/BTC"}), 1515560100000, Side.BUY
        ),
        intent_id("sma_cross", ETH.model_copy(update={"timeframe": "1m"}), 1515560100000, Side.BUY),
        intent_id("sma_cross", ETH, 1515560400000, Side.BUY),
        intent_id("sma_cross", ETH, 1515560100000, Side.SELL),
    }
    assert base not in others
    assert len(others) == 5


@given(
    strategy=st.text(min_size=1, max_size=64),
    candle_time=st.integers(min_value=0, max_value=2**53),
    side=st.sampled_from(Side),
)
def test_intent_id_for_any_input_is_a_valid_client_order_id(
    strategy: str, candle_time: int, side: Side
) -> None:
    assert CLIENT_ORDER_ID.match(intent_id(strategy, ETH, candle_time, side))


def test_new_intent_carries_derived_id_as_client_order_id() -> None:
    intent = new_intent(
        strategy="sma_cross", market=ETH, candle_time=1, side=Side.SELL, reference_price="0.1"
    )
    assert intent.client_order_id == intent.intent_id == intent_id("sma_cross", ETH, 1, Side.SELL)


def test_order_transitions_when_terminal_then_nothing_follows() -> None:
    for terminal in (
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.REJECTED,
        OrderStatus.FAILED,
    ):
        assert not any(can_transition(terminal, s) for s in OrderStatus)
    assert can_transition(OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)
    assert can_transition(OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED)
    assert not can_transition(OrderStatus.FILLED, OrderStatus.SUBMITTED)
    assert set(ALLOWED_TRANSITIONS) == set(OrderStatus)
