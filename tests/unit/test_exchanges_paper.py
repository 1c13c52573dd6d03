"""The paper exchange: exact fills with fee and slippage, limits, balances, clientOrderIds."""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import PAPER_ETH_BTC as MARKET
from tests.builders import FixedPrices
from tickstep.candles import bundled_file, load_csv, market_from_filename
from tickstep.exchanges import (
    AmbiguousOrderError,
    ExchangePort,
    FatalExchangeError,
    PaperExchange,
    PaperState,
    ReplayFeed,
    SimClock,
)
from tickstep.exchanges.port import OrderRequest
from tickstep.models import Market, MarketRules, Order, OrderStatus, OrderType, Side
from tickstep.orders import intent_id

NOW = 1_700_000_000_000
RULES = MarketRules(
    amount_step=Decimal("0.001"),
    price_step=Decimal("0.00001"),
    min_amount=Decimal("0.01"),
    max_amount=Decimal(100),
    min_cost=Decimal("0.0001"),
    max_cost=Decimal(10),
)
FEE = Decimal("0.001")
SLIP = Decimal("0.001")


def cid(n: int, side: Side = Side.BUY) -> str:
    return intent_id("test", MARKET, NOW + n, side)


@pytest.fixture
def prices() -> FixedPrices:
    return FixedPrices("0.05", NOW)


def new_paper(prices: FixedPrices) -> PaperExchange:
    return PaperExchange(
        {"ETH/BTC": RULES},
        prices,
        fee_rate=FEE,
        slippage=SLIP,
        balances={"BTC": Decimal(1), "ETH": Decimal(2)},
    )


@pytest.fixture
def paper(prices: FixedPrices) -> PaperExchange:
    return new_paper(prices)


def place(paper: PaperExchange, side: Side, amount: str, n: int, price: str | None) -> Order:
    """A market order, or a limit order at ``price``, with the ``n``-th client order id."""
    return paper.create_order(
        OrderRequest(
            MARKET,
            side,
            OrderType.MARKET if price is None else OrderType.LIMIT,
            Decimal(amount),
            price=None if price is None else Decimal(price),
            client_order_id=cid(n, side),
        )
    )


def buy(paper: PaperExchange, amount: str, n: int = 0, price: str | None = None) -> Order:
    return place(paper, Side.BUY, amount, n, price)


def sell(paper: PaperExchange, amount: str, n: int = 0, price: str | None = None) -> Order:
    return place(paper, Side.SELL, amount, n, price)


def test_market_buy_with_a_cost_when_filled_then_spends_it_at_the_fill_price(
    paper: PaperExchange,
) -> None:
    """The amount is cost / fill price, truncated to the amount step: what the backtest's
    `amount = stake / fill price` means, whatever the price was when the order was sized."""
    order = paper.create_order(
        OrderRequest(
            MARKET,
            Side.BUY,
            OrderType.MARKET,
            Decimal("0.5"),  # the estimate: ignored when a cost is given
            price=None,
            client_order_id=cid(3),
            cost=Decimal("0.02"),
        )
    )
    fill = order.average
    assert fill == Decimal("0.05005")  # price + slippage
    assert order.filled == (Decimal("0.02") / fill).quantize(RULES.amount_step, ROUND_DOWN)
    assert order.filled * fill <= Decimal("0.02")
    for side, kind, price in (
        (Side.SELL, OrderType.MARKET, None),
        (Side.BUY, OrderType.LIMIT, "0.05"),
    ):
        with pytest.raises(FatalExchangeError, match="cost: for market buys only"):
            paper.create_order(
                OrderRequest(
                    MARKET,
                    side,
                    kind,
                    Decimal("0.1"),
                    price=None if price is None else Decimal(price),
                    client_order_id=cid(4, side),
                    cost=Decimal("0.02"),
                )
            )


def free(paper: PaperExchange, currency: str) -> Decimal:
    return paper.fetch_balance()[currency].free


# -- market orders ---------------------------------------------------------------------------


def test_market_buy_pays_price_plus_slippage_and_fee_in_quote(paper: PaperExchange) -> None:
    order = paper.create_order(
        OrderRequest(
            MARKET, Side.BUY, OrderType.MARKET, Decimal("0.5"), price=None, client_order_id=cid(1)
        )
    )
    assert order.status is OrderStatus.FILLED
    assert order.filled == Decimal("0.5")
    assert order.average == Decimal("0.05005")
    assert order.fee == Decimal("0.000025025")
    assert order.fee_currency == "BTC"
    assert free(paper, "BTC") == Decimal("0.974949975")
    assert free(paper, "ETH") == Decimal("2.5")


def test_market_sell_gets_price_minus_slippage_less_fee(paper: PaperExchange) -> None:
    order = sell(paper, "0.5")
    assert order.average == Decimal("0.04995")
    assert free(paper, "ETH") == Decimal("1.5")
    assert free(paper, "BTC") == Decimal("1.024950025")


def test_every_fill_is_recorded_for_inspection(paper: PaperExchange) -> None:
    buy(paper, "0.5", n=1)
    sell(paper, "0.2", n=2)
    fills = paper.fills()
    assert [(f.side, f.amount, f.price) for f in fills] == [
        (Side.BUY, Decimal("0.5"), Decimal("0.05005")),
        (Side.SELL, Decimal("0.2"), Decimal("0.04995")),
    ]
    assert [f.client_order_id for f in fills] == [cid(1), cid(2, Side.SELL)]
    assert {f.fee_currency for f in fills} == {"BTC"}
    assert len({f.trade_id for f in fills}) == 2
    assert all(f.timestamp == NOW for f in fills)


def test_paper_orders_are_ours_not_external(paper: PaperExchange) -> None:
    order = buy(paper, "0.5", n=1)
    assert order.intent_id == cid(1)
    assert order.exchange_order_id is not None


# -- balances and limits ---------------------------------------------------------------------


def test_buy_beyond_the_quote_balance_is_insufficient_funds(paper: PaperExchange) -> None:
    with pytest.raises(FatalExchangeError) as caught:
        buy(paper, "20")  # 20 * 0.05005 * 1.001 > 1 BTC
    assert caught.value.code == "insufficient_funds"
    assert free(paper, "BTC") == Decimal(1)
    assert paper.orders() == []


def test_buy_needing_just_the_fee_more_than_free_is_insufficient_funds(prices: FixedPrices) -> None:
    paper = PaperExchange(
        {"ETH/BTC": RULES}, prices, fee_rate=FEE, slippage=Decimal(0), balances={"BTC": Decimal(1)}
    )
    prices.current = Decimal("0.1")
    with pytest.raises(FatalExchangeError, match="insufficient_funds"):
        buy(paper, "10")  # costs exactly 1 BTC, plus 0.001 BTC fee


def test_sell_beyond_the_base_balance_is_insufficient_funds(paper: PaperExchange) -> None:
    with pytest.raises(FatalExchangeError) as caught:
        sell(paper, "2.001")
    assert caught.value.code == "insufficient_funds"
    assert free(paper, "ETH") == Decimal(2)


def test_selling_a_currency_never_held_is_insufficient_funds(prices: FixedPrices) -> None:
    paper = PaperExchange(
        {"ETH/BTC": RULES}, prices, fee_rate=FEE, slippage=SLIP, balances={"BTC": Decimal(1)}
    )
    with pytest.raises(FatalExchangeError, match="insufficient_funds"):
        sell(paper, "0.1")


@pytest.mark.parametrize(
    ("amount", "price", "why"),
    [
        ("0.0105", None, "multiple"),  # not on the amount step
        ("0", None, "multiple"),
        ("0.009", None, "below the minimum"),  # below min_amount
        ("101", None, "above the maximum"),  # above max_amount
        ("0.5", "0.050005", "multiple"),  # limit price off the tick
    ],
)
def test_order_breaking_the_market_rules_is_an_invalid_order(
    paper: PaperExchange, amount: str, price: str | None, why: str
) -> None:
    with pytest.raises(FatalExchangeError, match=why) as caught:
        buy(paper, amount, price=price)
    assert caught.value.code == "invalid_order"
    assert paper.orders() == []


def test_order_below_min_cost_is_an_invalid_order(
    paper: PaperExchange, prices: FixedPrices
) -> None:
    prices.current = Decimal("0.001")  # 0.01 * 0.001 = 0.00001 < 0.0001
    with pytest.raises(FatalExchangeError, match="cost"):
        buy(paper, "0.01")


def test_order_above_max_cost_is_an_invalid_order(
    paper: PaperExchange, prices: FixedPrices
) -> None:
    prices.current = Decimal(1)
    with pytest.raises(FatalExchangeError, match=r"cost .* above"):
        buy(paper, "11")


def test_market_order_with_a_price_is_an_invalid_order(paper: PaperExchange) -> None:
    with pytest.raises(FatalExchangeError, match="invalid_order"):
        paper.create_order(
            OrderRequest(
                MARKET,
                Side.BUY,
                OrderType.MARKET,
                Decimal("0.1"),
                price=Decimal("0.05"),
                client_order_id=cid(1),
            )
        )


def test_unknown_symbol_is_bad_symbol(paper: PaperExchange) -> None:
    other = Market(exchange="paper", symbol="LTC/BTC", timeframe="5m")
    with pytest.raises(FatalExchangeError) as caught:
        paper.create_order(
            OrderRequest(
                other, Side.BUY, OrderType.MARKET, Decimal("1"), price=None, client_order_id=cid(1)
            )
        )
    assert caught.value.code == "bad_symbol"


# -- limit orders ----------------------------------------------------------------------------


def test_marketable_limit_buy_fills_at_once_but_never_above_its_limit(paper: PaperExchange) -> None:
    capped = buy(paper, "0.1", n=1, price="0.05002")
    below = buy(paper, "0.1", n=2, price="0.06")
    assert capped.average == Decimal("0.05002")
    assert below.average == Decimal("0.05005")


def test_resting_limit_buy_holds_its_quote_until_matched(
    paper: PaperExchange, prices: FixedPrices
) -> None:
    order = buy(paper, "1", n=1, price="0.04")
    assert order.status is OrderStatus.SUBMITTED
    held = Decimal("0.04004")  # 1 * 0.04 * 1.001
    btc = paper.fetch_balance()["BTC"]
    assert (btc.free, btc.used) == (1 - held, held)
    assert paper.match() == []

    prices.current = Decimal("0.039")
    prices.now = NOW + 300_000
    [filled] = paper.match()
    assert filled.status is OrderStatus.FILLED
    assert filled.average == Decimal("0.039")  # the gap down fills at the better price
    assert filled.updated_at == NOW + 300_000
    btc = paper.fetch_balance()["BTC"]
    assert btc.used == 0
    assert btc.free == 1 - Decimal("0.039") - Decimal("0.000039")
    assert free(paper, "ETH") == Decimal(3)


def test_resting_limit_sell_holds_its_base_and_fills_at_the_limit_when_touched(
    paper: PaperExchange, prices: FixedPrices
) -> None:
    sell(paper, "1", n=1, price="0.06")
    eth = paper.fetch_balance()["ETH"]
    assert (eth.free, eth.used) == (Decimal(1), Decimal(1))
    prices.current = Decimal("0.06")
    [filled] = paper.match(NOW + 1)
    assert filled.average == Decimal("0.06")
    assert paper.fetch_balance()["ETH"].total == Decimal(1)
    assert free(paper, "BTC") == 1 + Decimal("0.06") - Decimal("0.00006")


def test_resting_limit_beyond_the_free_balance_is_insufficient_funds(paper: PaperExchange) -> None:
    with pytest.raises(FatalExchangeError, match="insufficient_funds"):
        buy(paper, "30", price="0.04")


# -- clientOrderId ---------------------------------------------------------------------------


def test_lookup_by_client_order_id_finds_open_and_closed_orders(paper: PaperExchange) -> None:
    buy(paper, "0.5", n=1)
    buy(paper, "1", n=2, price="0.04")
    closed = paper.fetch_order_by_client_id(MARKET, cid(1))
    resting = paper.fetch_order_by_client_id(MARKET, cid(2))
    assert closed is not None
    assert closed.status is OrderStatus.FILLED
    assert resting is not None
    assert resting.status is OrderStatus.SUBMITTED
    assert paper.fetch_order_by_client_id(MARKET, cid(3)) is None
    assert [o.client_order_id for o in paper.fetch_open_orders(MARKET)] == [cid(2)]
    assert [o.client_order_id for o in paper.fetch_closed_orders(MARKET, NOW)] == [cid(1)]
    assert paper.fetch_closed_orders(MARKET, NOW + 1) == []


def test_reusing_the_client_order_id_of_an_open_order_is_rejected(paper: PaperExchange) -> None:
    buy(paper, "1", n=1, price="0.04")
    before = paper.fetch_balance()
    with pytest.raises(AmbiguousOrderError) as caught:
        buy(paper, "0.5", n=1)
    assert caught.value.code == "duplicate_client_order_id"
    assert paper.fetch_balance() == before
    assert len(paper.orders()) == 1


def test_reusing_the_client_order_id_of_a_closed_order_is_accepted(paper: PaperExchange) -> None:
    first = buy(paper, "0.5", n=1)
    second = buy(paper, "0.2", n=1)
    assert first.exchange_order_id != second.exchange_order_id
    assert [o.amount for o in paper.orders()] == [Decimal("0.5"), Decimal("0.2")]
    latest = paper.fetch_order_by_client_id(MARKET, cid(1))
    assert latest is not None
    assert latest.amount == Decimal("0.2")


# -- state, construction, the port -------------------------------------------------------------


def test_state_round_trips_through_json_and_the_exchange_carries_on(
    paper: PaperExchange, prices: FixedPrices
) -> None:
    buy(paper, "0.5", n=1)
    buy(paper, "1", n=2, price="0.04")
    saved = PaperState.model_validate_json(paper.state.model_dump_json())
    restored = PaperExchange({"ETH/BTC": RULES}, prices, fee_rate=FEE, slippage=SLIP, state=saved)
    assert restored.fetch_balance() == paper.fetch_balance()
    assert restored.orders() == paper.orders()
    prices.current = Decimal("0.04")
    [filled] = restored.match()
    assert filled.client_order_id == cid(2)
    assert len(restored.fills()) == 2
    assert restored.fetch_balance()["BTC"].used == 0


def test_fee_and_slippage_must_be_fractions(prices: FixedPrices) -> None:
    with pytest.raises(ValueError, match="fractions"):
        PaperExchange({}, prices, fee_rate=Decimal("-0.001"), slippage=SLIP)
    with pytest.raises(ValueError, match="fractions"):
        PaperExchange({}, prices, fee_rate=FEE, slippage=Decimal(1))


def test_balances_and_state_together_are_refused(prices: FixedPrices) -> None:
    with pytest.raises(ValueError, match="not both"):
        PaperExchange(
            {},
            prices,
            fee_rate=FEE,
            slippage=SLIP,
            balances={"BTC": Decimal(1)},
            state=PaperState(),
        )


def test_candles_without_a_source_are_not_supported(paper: PaperExchange) -> None:
    with pytest.raises(FatalExchangeError) as caught:
        paper.fetch_ohlcv(MARKET)
    assert caught.value.code == "not_supported"


def test_paper_exchange_satisfies_the_exchange_port(paper: PaperExchange) -> None:
    assert isinstance(paper, ExchangePort)


# -- with the replay feed --------------------------------------------------------------------


def test_order_placed_at_a_candle_close_fills_at_the_next_open_with_slippage() -> None:
    path = bundled_file("ETH-BTC_5m.csv")
    market, arrays = market_from_filename(path), load_csv(path)
    first_close = int(arrays.timestamp[0]) + market.timeframe_ms
    feed = ReplayFeed({market: arrays}, SimClock(first_close))
    paper = PaperExchange(
        {"ETH/BTC": RULES},
        feed,
        fee_rate=FEE,
        slippage=SLIP,
        balances={"BTC": Decimal(1)},
        candles=feed,
    )
    [seen] = paper.fetch_ohlcv(market)
    order = paper.create_order(
        OrderRequest(
            market,
            Side.BUY,
            OrderType.MARKET,
            Decimal("1"),
            price=None,
            client_order_id=intent_id("test", market, seen.timestamp, Side.BUY),
        )
    )
    assert order.average == Decimal("0.09946999") * (1 + SLIP)
    assert order.created_at == first_close


# -- money is conserved ----------------------------------------------------------------------

trades = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(min_value=10, max_value=3000),  # thousandths of ETH
        st.integers(min_value=1000, max_value=9000),  # price in 1e-5 BTC
    ),
    max_size=12,
)


@settings(max_examples=50, deadline=None)
@given(trades=trades)
def test_balances_always_equal_the_start_plus_the_recorded_fills(
    trades: list[tuple[Side, int, int]],
) -> None:
    prices = FixedPrices("0.05", NOW)
    paper = new_paper(prices)
    for n, (side, thousandths, price) in enumerate(trades):
        prices.current = Decimal(price).scaleb(-5)
        try:
            paper.create_order(
                OrderRequest(
                    MARKET,
                    side,
                    OrderType.MARKET,
                    Decimal(thousandths).scaleb(-3),
                    price=None,
                    client_order_id=cid(n, side),
                )
            )
        except FatalExchangeError as error:
            assert error.code == "insufficient_funds"
    btc, eth = Decimal(1), Decimal(2)
    for fill in paper.fills():
        sign = 1 if fill.side is Side.BUY else -1
        eth += sign * fill.amount
        btc -= sign * fill.cost + fill.fee
        assert fill.fee == fill.cost * FEE
    balances = paper.fetch_balance()
    assert balances["BTC"].free == btc
    assert balances["ETH"].free == eth
    assert btc >= 0
    assert eth >= 0


def test_paper_rules_when_amount_too_large_to_divide_then_invalid_order_not_a_crash() -> None:
    from tickstep.exchanges.errors import FatalExchangeError
    from tickstep.exchanges.paper import DEFAULT_RULES, _check_rules

    with pytest.raises(FatalExchangeError, match="multiple"):
        _check_rules(DEFAULT_RULES, Decimal("1E+27"), None, Decimal("0.1"))


def test_paper_account_when_an_order_is_placed_then_only_its_markets_rules_are_read(
    prices: FixedPrices,
) -> None:
    """Each execute invocation opens the account: it reads the rules of the market it trades,
    not of every market the stack lists (one DynamoDB read instead of one per market)."""
    from tickstep.config import PaperSettings
    from tickstep.memory import MemoryPortfolio
    from tickstep.paper_account import PaperAccount

    others = [Market(exchange="paper", symbol=s, timeframe="5m") for s in ("LTC/BTC", "XMR/BTC")]
    read: list[str] = []

    def rules(market: Market) -> MarketRules:
        read.append(market.symbol)
        return RULES

    account = PaperAccount(MemoryPortfolio(), prices, PaperSettings(), rules, [MARKET, *others])
    exchange = account.open()
    request = OrderRequest(
        MARKET, Side.BUY, OrderType.MARKET, Decimal("0.1"), client_order_id=cid(1)
    )
    assert exchange.create_order(request).status is OrderStatus.FILLED
    exchange.create_order(replace(request, client_order_id=cid(2)))
    assert read == ["ETH/BTC"]  # once, for the market traded
    with pytest.raises(FatalExchangeError, match="not listed"):
        exchange.market_rules("DOGE/BTC")
