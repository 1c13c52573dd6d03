"""The paper account: the paper exchange with its state kept in the portfolio store between
invocations, and the prices it fills at in AWS (the latest stored close). The paper exchange
is imported inside the methods, so the API function imports neither it nor numpy."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from tickstep.models import (
    Market,
    MarketRules,
)
from tickstep.ports import CandleRepository, PaperStateStore, StaleWrite

if TYPE_CHECKING:
    from tickstep.config import PaperSettings
    from tickstep.exchanges.paper import PaperExchange, PriceSource


class StoredCandlePrices:
    """Paper prices in AWS: the latest stored candle's close (what ingestion last saw)."""

    def __init__(self, candles: CandleRepository, clock: Callable[[], int]) -> None:
        self._candles = candles
        self._clock = clock

    def now_ms(self) -> int:
        return self._clock()

    def price(self, market: Market, now_ms: int) -> Decimal:
        from tickstep.exchanges.errors import RetryableExchangeError

        latest = self._candles.latest(market, 1, until_ms=now_ms)
        if not latest:
            raise RetryableExchangeError(f"no stored candle of {market.key} yet", code="no_price")
        return latest[0].close


class RulesBySymbol(Mapping[str, MarketRules]):
    """The markets' rules by symbol, each read when the paper exchange first needs it: an
    order reads its own market's rules, not every market's (one read each, not one per
    market, per execute invocation)."""

    def __init__(self, rules: Callable[[Market], MarketRules], markets: Iterable[Market]) -> None:
        self._rules = rules
        self._markets = {m.symbol: m for m in markets}
        self._read: dict[str, MarketRules] = {}

    def __getitem__(self, symbol: str) -> MarketRules:
        if symbol not in self._read:
            self._read[symbol] = self._rules(self._markets[symbol])  # KeyError: not ours
        return self._read[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._markets)

    def __len__(self) -> int:
        return len(self._markets)


class PaperAccount:
    """The paper exchange whose state lives in the portfolio table between invocations.

    :meth:`open` loads it; :meth:`commit` saves it with an optimistic version check. A lost
    race means the simulated order never happened, so it is a retryable error.
    """

    def __init__(
        self,
        portfolio: PaperStateStore,
        prices: PriceSource,
        settings: PaperSettings,
        rules: Callable[[Market], MarketRules],
        markets: Iterable[Market],
    ) -> None:
        self._portfolio = portfolio
        self._prices = prices
        self._settings = settings
        self._rules = rules
        self._markets = list(markets)
        self._version = 0
        self._exchange: PaperExchange | None = None

    def open(self) -> PaperExchange:
        from tickstep.exchanges.paper import PaperExchange, PaperState

        state_json, self._version = self._portfolio.paper_state()
        state = PaperState.model_validate_json(state_json) if state_json else None
        self._exchange = PaperExchange(
            RulesBySymbol(self._rules, self._markets),
            self._prices,
            fee_rate=self._settings.fee_rate,
            slippage=self._settings.slippage,
            balances=None if state else self._settings.balances,
            state=state,
        )
        return self._exchange

    def commit(self) -> None:
        from tickstep.exchanges.errors import RetryableExchangeError

        if self._exchange is None:
            return
        try:
            self._version = self._portfolio.save_paper_state(
                self._exchange.state.model_dump_json(), self._version
            )
        except StaleWrite as exc:
            raise RetryableExchangeError(str(exc), code="paper_state_conflict") from exc
