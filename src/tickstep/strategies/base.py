"""The strategy interface: one computation for backtests and live signals.

A strategy computes the whole series of signals from candle arrays. The live signal for the
newest candle is, by construction, the last element of that series (:meth:`Strategy.signal`),
so a backtest and the live pipeline cannot drift apart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from tickstep.candles import CandleArrays, FloatArray
from tickstep.models import Market, Signal, SignalAction

BUY, HOLD, SELL = np.int8(1), np.int8(0), np.int8(-1)
_ACTIONS = {1: SignalAction.BUY, 0: SignalAction.HOLD, -1: SignalAction.SELL}


class StrategyParams(BaseModel):
    """Base of every strategy's parameters: frozen, and an unknown parameter is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


P = TypeVar("P", bound=StrategyParams)


@dataclass(frozen=True, slots=True)
class SignalSeries:
    """One signal per candle: ``action`` is +1 BUY, -1 SELL, 0 HOLD; ``strength`` in [0, 1]."""

    action: npt.NDArray[np.int8]
    strength: FloatArray
    indicators: dict[str, FloatArray]

    def __len__(self) -> int:
        return len(self.action)


def crosses_above(a: FloatArray, b: FloatArray) -> npt.NDArray[np.bool_]:
    """True at i when a[i] > b[i] and a[i-1] <= b[i-1] (False wherever a value is NaN)."""
    out = np.zeros(len(a), dtype=np.bool_)
    out[1:] = (a[1:] > b[1:]) & (a[:-1] <= b[:-1])
    return out


def crosses_below(a: FloatArray, b: FloatArray) -> npt.NDArray[np.bool_]:
    """True at i when a[i] < b[i] and a[i-1] >= b[i-1] (False wherever a value is NaN)."""
    out = np.zeros(len(a), dtype=np.bool_)
    out[1:] = (a[1:] < b[1:]) & (a[:-1] >= b[:-1])
    return out


def actions(buy: npt.NDArray[np.bool_], sell: npt.NDArray[np.bool_]) -> npt.NDArray[np.int8]:
    """Combine entry and exit masks; a candle that is both is HOLD (the strategy is unsure)."""
    return (buy.astype(np.int8) - sell.astype(np.int8)).astype(np.int8)


class Strategy(ABC, Generic[P]):
    """Subclasses set ``name`` and ``params_type`` and implement :meth:`series`."""

    name: ClassVar[str]
    params_type: ClassVar[type[StrategyParams]]

    def __init__(self, params: P) -> None:
        self.params = params

    @property
    @abstractmethod
    def warmup(self) -> int:
        """Candles needed before the first signal can be other than HOLD."""

    @property
    def history(self) -> int:
        """Candles the live signal reads (the signal function's candle query): enough that
        its last signal equals the one over the full history. This default, twice the warmup
        plus 20, lets exponential averages (EMA, MACD, Wilder's RSI) converge; a strategy
        whose indicators look at a fixed window only needs ``warmup + 1`` (the window, and the
        one before it for a crossing), and says so."""
        return 2 * self.warmup + 20

    @abstractmethod
    def series(self, candles: CandleArrays) -> SignalSeries:
        """Signals for every candle; element i uses candles 0..i only (no look-ahead)."""

    def describe(self, series: SignalSeries, i: int) -> str:
        """A human reason for the signal at ``i`` (shown in logs and the console)."""
        values = ", ".join(
            f"{k}={v[i]:.8g}" for k, v in series.indicators.items() if np.isfinite(v[i])
        )
        return f"{self.name} {_ACTIONS[int(series.action[i])].value}: {values}"

    def signal(self, market: Market, candles: CandleArrays) -> Signal:
        """The live signal: the last element of :meth:`series` over the candles seen so far."""
        if len(candles) == 0:
            raise ValueError("candles: at least one closed candle is needed for a signal")
        series = self.series(candles)
        i = len(candles) - 1
        return Signal(
            market=market,
            strategy=self.name,
            candle_time=int(candles.timestamp[i]),
            action=_ACTIONS[int(series.action[i])],
            strength=float(series.strength[i]) if series.action[i] else 0.0,
            reason=self.describe(series, i)[:500],
            indicators={
                k: (float(v[i]) if np.isfinite(v[i]) else None)
                for k, v in series.indicators.items()
            },
            close=candles.candle(i).close,
        )


def gap_strength(a: FloatArray, b: FloatArray, scale: float) -> FloatArray:
    """|a - b| / |b| relative to ``scale``, clipped to [0, 1]; 0 where undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.abs(a - b) / (np.abs(b) * scale)
    return np.clip(np.nan_to_num(s, nan=0.0, posinf=1.0), 0.0, 1.0)
