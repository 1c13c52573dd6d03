"""A simulated exchange account: the port without a network, for paper trading and tests.

It fills against a :class:`PriceSource` (the replay feed offline, live prices in paper mode)
with a fee and slippage, enforces the market's rules and the account's balances like a real
exchange, and records every fill so the truth can be compared with the ledger. All its state
is one serialisable :class:`PaperState`, so it can later live in DynamoDB between invocations.

Like several real exchanges, it rejects a clientOrderId used by an order that is still open but
accepts it again once that order is closed. The pipeline must not rely on either behaviour: it
looks an order up before ever sending it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal, InvalidOperation, localcontext
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from tickstep.exchanges.errors import AmbiguousOrderError, FatalExchangeError
from tickstep.exchanges.port import CandleSource, OrderRequest, order_identity
from tickstep.models import (
    Balance,
    Candle,
    Fill,
    Market,
    MarketRules,
    Order,
    OrderStatus,
    OrderType,
    Side,
)

__all__ = ["OPEN_STATUSES", "PaperExchange", "PaperState", "PriceSource"]

OPEN_STATUSES = frozenset({OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED})


DEFAULT_RULES = MarketRules(
    amount_step=Decimal("0.001"),
    price_step=Decimal("0.00000001"),
    min_amount=Decimal("0.001"),
    min_cost=Decimal("0.0001"),
)
"""Precision and limits for paper markets that have no exchange rules cached (typical of
BTC-quoted spot pairs: 0.001 base, 1 satoshi, a 0.0001 BTC minimum order)."""


class PriceSource(Protocol):
    """The price a taker would trade at in ``market`` at ``now_ms``, and the current time."""

    def price(self, market: Market, now_ms: int) -> Decimal: ...

    def now_ms(self) -> int: ...


class PaperState(BaseModel):
    """Everything the paper account knows; JSON-serialisable so it can be stored anywhere."""

    model_config = ConfigDict(extra="forbid")

    balances: dict[str, Balance] = Field(default_factory=dict)
    orders: dict[str, Order] = Field(default_factory=dict)
    """By exchange order id, in the order they were placed."""
    reserved: dict[str, Decimal] = Field(default_factory=dict)
    """Funds a resting limit order holds (quote for a buy, base for a sell), by exchange id."""
    fills: list[Fill] = Field(default_factory=list)
    sequence: int = 0


class PaperExchange:
    """:class:`~tickstep.exchanges.port.ExchangePort` over a :class:`PaperState`.

    Market orders fill at once at the source's price moved against the taker by ``slippage``
    (a fraction: a buy pays ``price * (1 + slippage)``, a sell gets ``price * (1 - slippage)``).
    A marketable limit order fills the same way but never beyond its limit; any other limit
    order rests, holding its funds, until :meth:`match` finds the price through it. Fees are
    ``fee_rate`` of the cost, in the quote currency. Fill prices are exact, not on the tick.
    """

    def __init__(
        self,
        rules: Mapping[str, MarketRules],
        prices: PriceSource,
        *,
        fee_rate: Decimal,
        slippage: Decimal,
        balances: Mapping[str, Decimal] | None = None,
        state: PaperState | None = None,
        candles: CandleSource | None = None,
    ) -> None:
        if not Decimal(0) <= fee_rate < 1 or not Decimal(0) <= slippage < 1:
            raise ValueError("fee_rate and slippage are fractions in [0, 1)")
        if state is not None and balances is not None:
            raise ValueError("give starting balances or a saved state, not both")
        self._rules = rules  # read as needed (a lazy mapping reads each market's on first use)
        self._prices = prices
        self._fee_rate = fee_rate
        self._slippage = slippage
        self._candles = candles
        self._state = state or PaperState(
            balances={c: Balance(currency=c, free=v) for c, v in (balances or {}).items()}
        )

    @property
    def state(self) -> PaperState:
        return self._state

    def orders(self) -> list[Order]:
        """Every order placed, in placement order (a reused clientOrderId appears twice)."""
        return list(self._state.orders.values())

    def fills(self) -> list[Fill]:
        return list(self._state.fills)

    # -- the port ---------------------------------------------------------------------------

    def market_rules(self, symbol: str) -> MarketRules:
        rules = self._rules.get(symbol)
        if rules is None:
            raise FatalExchangeError(f"{symbol} is not listed", code="bad_symbol")
        return rules

    def fetch_ohlcv(
        self, market: Market, since_ms: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        if self._candles is None:
            raise FatalExchangeError("no candle source was given", code="not_supported")
        return self._candles.fetch_ohlcv(market, since_ms, limit)

    def create_order(self, request: OrderRequest) -> Order:
        amount = request.amount  # a market buy by cost buys what the cost pays for
        rules = self.market_rules(request.market.symbol)
        existing = self.fetch_order_by_client_id(request.market, request.client_order_id)
        if existing is not None and existing.status in OPEN_STATUSES:
            raise AmbiguousOrderError(
                f"clientOrderId {request.client_order_id} belongs to an open order",
                code="duplicate_client_order_id",
            )
        if (request.order_type is OrderType.LIMIT) != (request.price is not None):
            raise FatalExchangeError("price: required for limit orders only", code="invalid_order")
        now = self._prices.now_ms()
        market_price = self._prices.price(request.market, now)
        fill_price = self._taker_price(request.side, market_price, request.price)
        if request.cost is not None:
            if request.side is not Side.BUY or request.order_type is not OrderType.MARKET:
                raise FatalExchangeError("cost: for market buys only", code="invalid_order")
            assert fill_price is not None  # a market order always fills
            with localcontext() as context:
                context.rounding = ROUND_DOWN  # never spend more than the cost
                amount = rules.amount_to_precision(request.cost / fill_price)
        _check_rules(rules, amount, request.price, request.price or market_price)
        if fill_price is None:
            assert request.price is not None  # only a limit order can rest
            held = self._reserve(request.market, request.side, amount, request.price)
        else:
            self._require_funds(request.market, request.side, amount, fill_price)

        self._state.sequence += 1
        exchange_order_id = f"paper-{self._state.sequence}"
        intent_id, cid = order_identity(request.market, request.client_order_id, exchange_order_id)
        order = Order(
            intent_id=intent_id,
            client_order_id=cid,
            exchange_order_id=exchange_order_id,
            market=request.market,
            side=request.side,
            order_type=request.order_type,
            amount=amount,
            price=request.price,
            status=OrderStatus.SUBMITTED,
            created_at=now,
            updated_at=now,
        )
        self._state.orders[exchange_order_id] = order
        if fill_price is None:
            self._state.reserved[exchange_order_id] = held
            return order
        return self._fill(order, fill_price, now)

    def fetch_order_by_client_id(self, market: Market, client_order_id: str) -> Order | None:
        """The latest order with this clientOrderId (an earlier, closed one may share it)."""
        for order in reversed(self._state.orders.values()):
            if order.client_order_id == client_order_id and order.market.symbol == market.symbol:
                return order
        return None

    def fetch_open_orders(self, market: Market) -> list[Order]:
        return [
            o
            for o in self._state.orders.values()
            if o.market.symbol == market.symbol and o.status in OPEN_STATUSES
        ]

    def fetch_closed_orders(self, market: Market, since_ms: int | None = None) -> list[Order]:
        return [
            o
            for o in self._state.orders.values()
            if o.market.symbol == market.symbol
            and o.status not in OPEN_STATUSES
            and (since_ms is None or o.created_at >= since_ms)
        ]

    def fetch_balance(self) -> dict[str, Balance]:
        return dict(self._state.balances)

    # -- the simulation ---------------------------------------------------------------------

    def match(self, now_ms: int | None = None) -> list[Order]:
        """Fill every resting limit order the price at ``now_ms`` has crossed, as a maker.

        Only the price source's price is seen, not the candle's high and low, so a limit that
        was touched within a candle and left again does not fill (pessimistic on purpose).
        """
        now = self._prices.now_ms() if now_ms is None else now_ms
        filled = []
        for exchange_order_id, order in list(self._state.orders.items()):
            if order.status not in OPEN_STATUSES or order.price is None:
                continue
            current = self._prices.price(order.market, now)
            if order.side is Side.BUY and current <= order.price:
                fill_price = min(current, order.price)
            elif order.side is Side.SELL and current >= order.price:
                fill_price = max(current, order.price)
            else:
                continue
            self._release(order, self._state.reserved.pop(exchange_order_id))
            filled.append(self._fill(order, fill_price, now))
        return filled

    def _taker_price(
        self, side: Side, market_price: Decimal, limit: Decimal | None
    ) -> Decimal | None:
        """Where a taker order fills now, or None for a limit order that is not marketable."""
        if side is Side.BUY:
            if limit is not None and market_price > limit:
                return None
            slipped = market_price * (1 + self._slippage)
            return slipped if limit is None else min(slipped, limit)
        if limit is not None and market_price < limit:
            return None
        slipped = market_price * (1 - self._slippage)
        return slipped if limit is None else max(slipped, limit)

    def _reservation(self, side: Side, amount: Decimal, price: Decimal) -> Decimal:
        return amount if side is Side.SELL else amount * price * (1 + self._fee_rate)

    def _reserve(self, market: Market, side: Side, amount: Decimal, price: Decimal) -> Decimal:
        held = self._reservation(side, amount, price)
        currency = market.quote if side is Side.BUY else market.base
        if self._free(currency) < held:
            raise _insufficient(currency, held, self._free(currency))
        self._adjust(currency, free=-held, used=held)
        return held

    def _release(self, order: Order, held: Decimal) -> None:
        currency = order.market.quote if order.side is Side.BUY else order.market.base
        self._adjust(currency, free=held, used=-held)

    def _require_funds(self, market: Market, side: Side, amount: Decimal, price: Decimal) -> None:
        if side is Side.BUY:
            needed, currency = amount * price * (1 + self._fee_rate), market.quote
        else:
            needed, currency = amount, market.base
        if self._free(currency) < needed:
            raise _insufficient(currency, needed, self._free(currency))

    def _fill(self, order: Order, price: Decimal, now: int) -> Order:
        """Execute all of ``order`` at ``price``: move balances, record the fill."""
        market = order.market
        cost = order.amount * price
        fee = cost * self._fee_rate
        if order.side is Side.BUY:
            self._adjust(market.quote, free=-(cost + fee))
            self._adjust(market.base, free=order.amount)
        else:
            self._adjust(market.base, free=-order.amount)
            self._adjust(market.quote, free=cost - fee)
        self._state.sequence += 1
        self._state.fills.append(
            Fill(
                trade_id=f"paper-t{self._state.sequence}",
                client_order_id=order.client_order_id,
                market=market,
                side=order.side,
                amount=order.amount,
                price=price,
                fee=fee,
                fee_currency=market.quote,
                timestamp=now,
            )
        )
        done = order.model_copy(
            update={
                "status": OrderStatus.FILLED,
                "filled": order.amount,
                "average": price,
                "fee": fee,
                "fee_currency": market.quote,
                "updated_at": now,
            }
        )
        assert done.exchange_order_id is not None
        self._state.orders[done.exchange_order_id] = done
        return done

    def _free(self, currency: str) -> Decimal:
        balance = self._state.balances.get(currency)
        return Decimal(0) if balance is None else balance.free

    def _adjust(
        self, currency: str, *, free: Decimal = Decimal(0), used: Decimal = Decimal(0)
    ) -> None:
        old = self._state.balances.get(currency) or Balance(currency=currency, free=Decimal(0))
        self._state.balances[currency] = Balance(
            currency=currency, free=old.free + free, used=old.used + used
        )


def _on_step(value: Decimal, step: Decimal) -> bool:
    """Whether ``value`` is a whole number of steps; a value too large for the decimal context
    to divide (e.g. 1e27 of a 0.001 step) is not a valid order amount either."""
    try:
        return value % step == 0
    except InvalidOperation:
        return False


def _check_rules(
    rules: MarketRules, amount: Decimal, limit: Decimal | None, price: Decimal
) -> None:
    """Precision must already be applied, as a real exchange would insist."""

    def invalid(reason: str) -> FatalExchangeError:
        return FatalExchangeError(reason, code="invalid_order")

    if amount <= 0 or not _on_step(amount, rules.amount_step):
        raise invalid(f"amount {amount} is not a positive multiple of {rules.amount_step}")
    if limit is not None and (limit <= 0 or not _on_step(limit, rules.price_step)):
        raise invalid(f"price {limit} is not a positive multiple of {rules.price_step}")
    if amount < rules.min_amount:
        raise invalid(f"amount {amount} is below the minimum {rules.min_amount}")
    if rules.max_amount is not None and amount > rules.max_amount:
        raise invalid(f"amount {amount} is above the maximum {rules.max_amount}")
    cost = amount * price
    if cost < rules.min_cost:
        raise invalid(f"cost {cost} is below the minimum {rules.min_cost}")
    if rules.max_cost is not None and cost > rules.max_cost:
        raise invalid(f"cost {cost} is above the maximum {rules.max_cost}")


def _insufficient(currency: str, needed: Decimal, free: Decimal) -> FatalExchangeError:
    return FatalExchangeError(f"needs {needed} {currency}, {free} free", code="insufficient_funds")
