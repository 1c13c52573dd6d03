"""The held-out backtests of ``tickstep train``: the ``ml`` strategy beside buy-and-hold and
``sma_cross`` on each file's held-out candles, with the backtester."""

from __future__ import annotations

from typing import Any

import numpy as np

from tickstep.backtest import BacktestResult, BacktestSettings, backtest_market
from tickstep.candles import CandleArrays
from tickstep.strategies.base import BUY, SignalSeries, Strategy, StrategyParams
from tickstep.strategies.builtin import SmaCross, SmaCrossParams
from tickstep.strategies.ml import (
    BacktestFigures,
    HeldOutBacktests,
    MlModel,
    MlParams,
    MlStrategy,
)
from tickstep.training.data import Prepared, TrainOptions, slice_candles

BACKTEST_RULE = (
    "each file's held-out candles, with the candles before them as indicator history only "
    "(no signal before the held-out period is acted on); next-open fills; buy-and-hold "
    "enters at the held-out period's first open and exits at its last open; same fee"
)


class _ActsFrom(Strategy[StrategyParams]):
    """Another strategy's signals, with every signal before ``start_ms`` dropped: the
    candles before it are indicator history only."""

    name = "acts_from"
    params_type = StrategyParams

    def __init__(self, inner: Strategy[Any], start_ms: int) -> None:
        super().__init__(StrategyParams())
        self.inner = inner
        self.start_ms = start_ms

    @property
    def warmup(self) -> int:
        return self.inner.warmup

    def series(self, candles: CandleArrays) -> SignalSeries:
        s = self.inner.series(candles)
        action = np.where(candles.timestamp < self.start_ms, np.int8(0), s.action)
        return SignalSeries(action.astype(np.int8), s.strength, s.indicators)


class _BuyAndHold(Strategy[StrategyParams]):
    """A BUY at the close of the candle before ``start_ms``: filled at the held-out
    period's first open, and force-exited at the last candle's open."""

    name = "buy_and_hold"
    params_type = StrategyParams

    def __init__(self, start_ms: int) -> None:
        super().__init__(StrategyParams())
        self.start_ms = start_ms

    @property
    def warmup(self) -> int:
        return 0

    def series(self, candles: CandleArrays) -> SignalSeries:
        action = np.zeros(len(candles), dtype=np.int8)
        first = int(np.searchsorted(candles.timestamp, self.start_ms))
        if first >= 1:
            action[first - 1] = BUY
        return SignalSeries(action, action.astype(np.float64), {})


def _figures(result: BacktestResult) -> BacktestFigures:
    s = result.summary()
    return BacktestFigures(
        strategy=result.strategy,
        markets=s["markets"],
        candles=s["candles"],
        trades=s["trades"],
        win_rate=s["win_rate"],
        total_pnl=s["total_pnl"],
        total_return=s["total_return"],
        max_drawdown=s["max_drawdown"],
        sharpe=s["sharpe"],
        exposure=s["exposure"],
        fees_paid=s["fees_paid"],
        pnl_by_market={m.market.label: f"{m.pnl:f}" for m in result.markets},
    )


def held_out_backtests(
    prepared: list[Prepared], model: MlModel, options: TrainOptions, warnings: list[str]
) -> HeldOutBacktests:
    settings = BacktestSettings(options.stake, options.fee)
    ml = MlStrategy(
        MlParams(buy_above=options.buy_above, sell_below=options.sell_below), model=model
    )
    sma = SmaCross(SmaCrossParams())
    history = max(ml.warmup, sma.warmup)
    results = {
        name: BacktestResult(settings=settings, strategy=name, markets=[])
        for name in ("ml", "buy_and_hold", "sma_cross")
    }
    for p in prepared:
        c = p.source.candles
        start_ms = int(c.timestamp[p.holdout_start])
        candles = slice_candles(c, max(p.holdout_start - history, 0), len(c))
        strategies: dict[str, Strategy[Any]] = {
            "ml": _ActsFrom(ml, start_ms),
            "buy_and_hold": _BuyAndHold(start_ms),
            "sma_cross": _ActsFrom(sma, start_ms),
        }
        for name, strategy in strategies.items():
            market_result, warning = backtest_market(p.source.market, candles, strategy, settings)
            results[name].markets.append(market_result)
            if warning and name == "ml":
                warnings.append(f"held-out backtest: {warning}")
    return HeldOutBacktests(
        stake=f"{options.stake:f}",
        fee=f"{options.fee:f}",
        rule=BACKTEST_RULE,
        ml=_figures(results["ml"]),
        buy_and_hold=_figures(results["buy_and_hold"]),
        sma_cross=_figures(results["sma_cross"]),
    )
