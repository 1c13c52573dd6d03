"""Model features from candles: numpy columns, each computed from candles ``0 .. i`` only.

A feature is a ``kind`` (what is computed) with its parameters; :data:`DEFAULT_FEATURES` is
the set ``tickstep train`` uses. Every feature is a whole-array computation over
:mod:`tickstep.indicators` (no loop over candles), NaN during its warm-up (``lookback``
values, as TA-Lib counts them). The value at candle ``i`` depends on candles ``0 .. i`` only:
changing later candles changes no earlier value (tests/unit/test_ml.py checks it bit for bit).

The indicators built on exponential filters (RSI, MACD, ATR) can differ in the last bits
between a series and a prefix of it (the filter's blocks fall differently), never in
anything a threshold would see; simple averages and Bollinger bands are exactly the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tickstep import indicators as ta
from tickstep.candles import CandleArrays, FloatArray
from tickstep.models import validation_problems

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURE_KINDS",
    "FeatureError",
    "FeatureSpec",
    "check_features",
    "feature_matrix",
    "lookback",
]


class FeatureError(ValueError):
    """A feature the code does not know, or parameters it cannot use."""


class FeatureSpec(BaseModel):
    """One model input: a name (unique in a model), its kind and the kind's parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    kind: str = Field(min_length=1, max_length=64)
    params: dict[str, int | float] = Field(default_factory=dict)


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Period(_Params):
    period: int = Field(ge=1, le=10_000)


class _Window(_Params):
    period: int = Field(ge=2, le=10_000)


class _Macd(_Params):
    fast: int = Field(ge=2, le=10_000)
    slow: int = Field(ge=2, le=10_000)
    signal: int = Field(ge=1, le=10_000)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> Self:
        if self.fast >= self.slow:
            raise ValueError("fast: must be smaller than slow")
        return self


class _Bands(_Params):
    period: int = Field(ge=2, le=10_000)
    nbdev: float = Field(gt=0, le=10)


def _log_close(c: CandleArrays) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(c.close)


def _log_return(c: CandleArrays, p: _Period) -> FloatArray:
    """log(close[i] / close[i - period])."""
    logs = _log_close(c)
    out = np.full(len(c), np.nan)
    out[p.period :] = logs[p.period :] - logs[: -p.period]
    return out


def _rsi(c: CandleArrays, p: _Period) -> FloatArray:
    """Wilder's RSI mapped to [-1, 1]: (RSI - 50) / 50."""
    return (ta.rsi(c.close, p.period) - 50.0) / 50.0


def _macd_hist(c: CandleArrays, p: _Macd) -> FloatArray:
    """The MACD histogram relative to the close."""
    return ta.macd(c.close, p.fast, p.slow, p.signal)[2] / c.close


def _bb_pctb(c: CandleArrays, p: _Bands) -> FloatArray:
    """Bollinger %B: (close - lower) / (upper - lower); 0.5 when the band has no width."""
    upper, _, lower = ta.bbands(c.close, p.period, p.nbdev)
    width = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        pctb = (c.close - lower) / width
    return np.where(width > 0, pctb, np.where(np.isnan(width), np.nan, 0.5))


def _atr_ratio(c: CandleArrays, p: _Period) -> FloatArray:
    """Average true range relative to the close."""
    return ta.atr(c.high, c.low, c.close, p.period) / c.close


def _sma_gap(c: CandleArrays, p: _Period) -> FloatArray:
    """close / SMA(period) - 1."""
    return c.close / ta.sma(c.close, p.period) - 1.0


def _zscore(x: FloatArray, period: int) -> FloatArray:
    """(x - rolling mean) / rolling population std over ``period`` values; 0 when flat."""
    upper, middle, _ = ta.bbands(x, period, 1.0)
    std = upper - middle
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - middle) / std
    return np.where(std > 0, z, np.where(np.isnan(std), np.nan, 0.0))


def _volume_z(c: CandleArrays, p: _Window) -> FloatArray:
    """z-score of log(1 + volume) against the last ``period`` candles (itself included)."""
    return _zscore(np.log1p(np.maximum(c.volume, 0.0)), p.period)


def _volatility(c: CandleArrays, p: _Window) -> FloatArray:
    """Population standard deviation of the last ``period`` one-candle log returns."""
    out = np.full(len(c), np.nan)
    if len(c) > p.period:
        returns = np.diff(_log_close(c))
        upper, middle, _ = ta.bbands(returns, p.period, 1.0)
        out[1:] = upper - middle
    return out


@dataclass(frozen=True, slots=True)
class _Kind:
    params: type[_Params]
    compute: Callable[[CandleArrays, Any], FloatArray]
    lookback: Callable[[Any], int]
    doc: str


FEATURE_KINDS: dict[str, _Kind] = {
    "log_return": _Kind(_Period, _log_return, lambda p: p.period, "log(close / close[-period])"),
    "rsi": _Kind(_Period, _rsi, lambda p: p.period, "(RSI(period) - 50) / 50"),
    "macd_hist": _Kind(
        _Macd, _macd_hist, lambda p: p.slow + p.signal - 2, "MACD histogram / close"
    ),
    "bb_pctb": _Kind(_Bands, _bb_pctb, lambda p: p.period - 1, "Bollinger %B"),
    "atr_ratio": _Kind(_Period, _atr_ratio, lambda p: p.period, "ATR(period) / close"),
    "sma_gap": _Kind(_Period, _sma_gap, lambda p: p.period - 1, "close / SMA(period) - 1"),
    "volume_z": _Kind(
        _Window, _volume_z, lambda p: p.period - 1, "z-score of log(1 + volume) over period"
    ),
    "volatility": _Kind(
        _Window, _volatility, lambda p: p.period, "std of 1-candle log returns over period"
    ),
}
"""Every feature kind the code knows: its parameters, computation and lookback."""


def _spec(name: str, kind: str, **params: int | float) -> FeatureSpec:
    return FeatureSpec(name=name, kind=kind, params=params)


DEFAULT_FEATURES: tuple[FeatureSpec, ...] = (
    _spec("ret_1", "log_return", period=1),
    _spec("ret_3", "log_return", period=3),
    _spec("ret_12", "log_return", period=12),
    _spec("rsi_14", "rsi", period=14),
    _spec("macd_hist", "macd_hist", fast=12, slow=26, signal=9),
    _spec("bb_pctb_20", "bb_pctb", period=20, nbdev=2.0),
    _spec("atr_14", "atr_ratio", period=14),
    _spec("sma_gap_20", "sma_gap", period=20),
    _spec("sma_gap_50", "sma_gap", period=50),
    _spec("volume_z_48", "volume_z", period=48),
    _spec("volatility_12", "volatility", period=12),
)


def _resolve(spec: FeatureSpec) -> tuple[_Kind, _Params]:
    kind = FEATURE_KINDS.get(spec.kind)
    if kind is None:
        known = ", ".join(sorted(FEATURE_KINDS))
        raise FeatureError(
            f"feature {spec.name!r}: unknown kind {spec.kind!r}; known kinds: {known}"
        )
    try:
        params = kind.params.model_validate(spec.params)
    except ValidationError as exc:
        problems = validation_problems(exc, "params")
        raise FeatureError(f"feature {spec.name!r} ({spec.kind}) parameters: {problems}") from exc
    return kind, params


def check_features(specs: tuple[FeatureSpec, ...]) -> None:
    """Raise :class:`FeatureError` for an unknown kind, bad parameters or a repeated name."""
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise FeatureError(f"features: repeated names: {', '.join(repeated)}")
    for spec in specs:
        _resolve(spec)


def lookback(specs: tuple[FeatureSpec, ...]) -> int:
    """The longest warm-up: every feature is defined from this candle index on."""
    longest = 0
    for spec in specs:
        kind, params = _resolve(spec)
        longest = max(longest, int(kind.lookback(params)))
    return longest


def feature_matrix(candles: CandleArrays, specs: tuple[FeatureSpec, ...]) -> FloatArray:
    """One row per candle, one column per feature (NaN where a feature is undefined)."""
    out = np.empty((len(candles), len(specs)), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for j, spec in enumerate(specs):
            kind, params = _resolve(spec)
            column = kind.compute(candles, params)
            out[:, j] = np.where(np.isfinite(column), column, np.nan)
    return out
