"""The built-in strategies. Each is a few lines over :mod:`tickstep.indicators`."""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field, model_validator

from tickstep import indicators as ta
from tickstep.candles import CandleArrays
from tickstep.strategies.base import (
    SignalSeries,
    Strategy,
    StrategyParams,
    actions,
    crosses_above,
    crosses_below,
    gap_strength,
)


class SmaCrossParams(StrategyParams):
    fast: int = Field(default=10, ge=1, le=10_000)
    slow: int = Field(default=30, ge=2, le=10_000)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> Self:
        if self.fast >= self.slow:
            raise ValueError("fast: must be smaller than slow")
        return self


class SmaCross(Strategy[SmaCrossParams]):
    """BUY when the fast SMA crosses above the slow one, SELL when it crosses below."""

    name = "sma_cross"
    params_type = SmaCrossParams

    @property
    def warmup(self) -> int:
        return self.params.slow

    @property
    def history(self) -> int:
        """Both SMAs at the last candle and the one before (a crossing): a window sum depends
        on its own candles only, so these are the full history's values, bit for bit."""
        return self.warmup + 1

    def series(self, candles: CandleArrays) -> SignalSeries:
        fast = ta.sma(candles.close, self.params.fast)
        slow = ta.sma(candles.close, self.params.slow)
        action = actions(crosses_above(fast, slow), crosses_below(fast, slow))
        return SignalSeries(
            action, gap_strength(fast, slow, 0.01), {"sma_fast": fast, "sma_slow": slow}
        )


class RsiReversionParams(StrategyParams):
    period: int = Field(default=14, ge=2, le=10_000)
    oversold: float = Field(default=30.0, gt=0, lt=100)
    overbought: float = Field(default=70.0, gt=0, lt=100)

    @model_validator(mode="after")
    def _levels_ordered(self) -> Self:
        if self.oversold >= self.overbought:
            raise ValueError("oversold: must be below overbought")
        return self


class RsiReversion(Strategy[RsiReversionParams]):
    """Mean reversion: BUY when RSI falls into oversold, SELL when it rises into overbought."""

    name = "rsi_reversion"
    params_type = RsiReversionParams

    @property
    def warmup(self) -> int:
        return self.params.period + 1

    def series(self, candles: CandleArrays) -> SignalSeries:
        p = self.params
        rsi = ta.rsi(candles.close, p.period)
        oversold = np.full_like(rsi, p.oversold)
        overbought = np.full_like(rsi, p.overbought)
        buy = crosses_below(rsi, oversold)
        sell = crosses_above(rsi, overbought)
        with np.errstate(invalid="ignore"):
            depth = np.where(
                rsi < 50.0,
                (p.oversold - rsi) / p.oversold,
                (rsi - p.overbought) / (100 - p.overbought),
            )
        strength = np.clip(np.nan_to_num(depth, nan=0.0), 0.0, 1.0)
        return SignalSeries(actions(buy, sell), strength, {"rsi": rsi})


class MacdTrendParams(StrategyParams):
    fast: int = Field(default=12, ge=2, le=10_000)
    slow: int = Field(default=26, ge=2, le=10_000)
    signal: int = Field(default=9, ge=1, le=10_000)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> Self:
        if self.fast >= self.slow:
            raise ValueError("fast: must be smaller than slow")
        return self


class MacdTrend(Strategy[MacdTrendParams]):
    """Trend following: BUY when the MACD histogram turns positive, SELL when it turns negative."""

    name = "macd_trend"
    params_type = MacdTrendParams

    @property
    def warmup(self) -> int:
        return self.params.slow + self.params.signal - 1

    def series(self, candles: CandleArrays) -> SignalSeries:
        p = self.params
        macd, signal, hist = ta.macd(candles.close, p.fast, p.slow, p.signal)
        zero = np.zeros_like(hist)
        action = actions(crosses_above(hist, zero), crosses_below(hist, zero))
        with np.errstate(divide="ignore", invalid="ignore"):
            strength = np.clip(np.nan_to_num(np.abs(hist) / (candles.close * 0.002)), 0.0, 1.0)
        return SignalSeries(
            action, strength, {"macd": macd, "macd_signal": signal, "macd_hist": hist}
        )


class BbandsBreakoutParams(StrategyParams):
    period: int = Field(default=20, ge=2, le=10_000)
    nbdev: float = Field(default=2.0, gt=0, le=10)


class BbandsBreakout(Strategy[BbandsBreakoutParams]):
    """Breakout: BUY when the close crosses above the upper band, SELL below the middle band."""

    name = "bbands_breakout"
    params_type = BbandsBreakoutParams

    @property
    def warmup(self) -> int:
        return self.params.period

    @property
    def history(self) -> int:
        """The bands at the last candle and the one before (a crossing): each window's mean
        and deviation depend on its own candles only, bit for bit as over the full history."""
        return self.warmup + 1

    def series(self, candles: CandleArrays) -> SignalSeries:
        p = self.params
        upper, middle, lower = ta.bbands(candles.close, p.period, p.nbdev)
        buy = crosses_above(candles.close, upper)
        sell = crosses_below(candles.close, middle)
        return SignalSeries(
            actions(buy, sell),
            gap_strength(upper, lower, 0.05),
            {"bb_upper": upper, "bb_middle": middle, "bb_lower": lower},
        )
