"""Technical indicators on float64 columns, matching TA-Lib's definitions without TA-Lib.

Every function returns arrays as long as its input, NaN during the warm-up, with the same
warm-up length (lookback) and seeds as TA-Lib, so a strategy backtested against TA-Lib
output trades the same way here. TA-Lib itself is only a test dependency.

Every indicator runs as a fused C loop, ``indicators.c``, compiled by ``make setup`` (and by
the core layer's build) into ``_indicators.so`` and called through ctypes: numpy has no
primitive for a recurrence, and its block matrix products could not reach TA-Lib's speed on
AVX2 (decision records 0001 and 0015). The SMA and the Bollinger bands sum each window in two
parts around a block boundary inside it, so their cost does not grow with the period. This
module validates the arguments, allocates the outputs and fills their NaN warm-ups; the C
code writes the rest.
"""

from __future__ import annotations

import ctypes
import math
import numbers
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

__all__ = ["atr", "bbands", "ema", "macd", "rsi", "sma"]

LIBRARY = Path(__file__).with_name("_indicators.so")

_POINTER = ctypes.c_void_p
_SIZE = ctypes.c_ssize_t
_SIGNATURES = {
    "tk_sma": [_POINTER, _SIZE, _SIZE, _POINTER],
    "tk_ema": [_POINTER, _SIZE, _SIZE, _POINTER],
    "tk_macd": [_POINTER, _SIZE, _SIZE, _SIZE, _SIZE, _POINTER, _POINTER, _POINTER],
    "tk_rsi": [_POINTER, _SIZE, _SIZE, _POINTER],
    "tk_atr": [_POINTER, _POINTER, _POINTER, _SIZE, _SIZE, _POINTER],
    "tk_bbands": [_POINTER, _SIZE, _SIZE, ctypes.c_double, _POINTER, _POINTER, _POINTER],
}


def load_kernels(path: Path = LIBRARY) -> ctypes.CDLL:
    """The compiled loops, with their argument types declared; a missing or unloadable
    library is an ImportError that says how to build it (there is no slower fallback)."""
    try:
        library = ctypes.CDLL(str(path))
        functions = {name: getattr(library, name) for name in _SIGNATURES}
    except (OSError, AttributeError) as error:  # missing, or built from an older source
        raise ImportError(
            f"tickstep.indicators needs its compiled kernels, {path}, which could not be "
            f"loaded ({error}): run `make setup` to build them from indicators.c"
        ) from error
    for name, function in functions.items():
        function.argtypes = _SIGNATURES[name]
        function.restype = None
    return library


_KERNELS = load_kernels()


def _address(array: FloatArray) -> int:
    return int(array.ctypes.data)


# --- validation --------------------------------------------------------------------------


def _series(name: str, values: npt.ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got {array.ndim}-D")
    return np.ascontiguousarray(array)


def _period(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an int period, got {value!r}")
    period = int(value)
    if period < 1:
        raise ValueError(f"{name}: period must be >= 1, got {period}")
    return period


def _same_length(**columns: FloatArray) -> int:
    lengths = {name: len(column) for name, column in columns.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name}={length}" for name, length in lengths.items())
        raise ValueError(f"arrays must have the same length, got {described}")
    return next(iter(lengths.values()))


# --- building blocks ---------------------------------------------------------------------


def _output(n: int, lookback: int) -> FloatArray:
    """An output of ``n`` values whose first ``lookback`` are NaN; the caller writes the
    rest (filling all ``n`` with NaN first would be one more pass over the output)."""
    out = np.empty(n, dtype=np.float64)
    out[:lookback] = np.nan
    return out


def _outputs(n: int, lookback: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Three outputs as rows of one allocation: three separate arrays of a million values
    are three large allocations that the C allocator maps and unmaps on every call, and
    their first touch (page faults, zeroing) cost more than MACD's arithmetic."""
    out = np.empty((3, n), dtype=np.float64)
    out[:, :lookback] = np.nan
    return out[0], out[1], out[2]


# --- indicators --------------------------------------------------------------------------


def sma(close: npt.ArrayLike, period: int) -> FloatArray:
    """Simple moving average; the first ``period - 1`` values are NaN (TA_SMA)."""
    return _average(_KERNELS.tk_sma, close, period)


def ema(close: npt.ArrayLike, period: int) -> FloatArray:
    """Exponential moving average with ``k = 2 / (period + 1)``, seeded by the SMA of the
    first ``period`` values; the first ``period - 1`` values are NaN (TA_EMA)."""
    return _average(_KERNELS.tk_ema, close, period)


def _average(kernel: Callable[..., None], close: npt.ArrayLike, period: int) -> FloatArray:
    """A moving average of ``close`` from ``kernel(x, n, period, out)``, which writes from
    index ``period - 1`` on and needs ``n >= period`` (shorter input: all NaN)."""
    x = _series("close", close)
    p = _period("period", period)
    out = _output(len(x), p - 1)
    if len(x) >= p:
        kernel(_address(x), len(x), p, _address(out))
    return out


def rsi(close: npt.ArrayLike, period: int = 14) -> FloatArray:
    """Wilder's RSI; the first ``period`` values are NaN (TA_RSI).

    Smooths gains and losses separately and returns ``100 * gains / (gains + losses)``, or
    0 where nothing has moved, as TA-Lib does.
    """
    x = _series("close", close)
    p = _period("period", period)
    out = _output(len(x), p)
    if len(x) > p:
        _KERNELS.tk_rsi(_address(x), len(x), p, _address(out))
    return out


def macd(
    close: npt.ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD line, signal line and histogram (TA_MACD).

    As in TA-Lib, both EMAs start at the slow EMA's first value: the fast EMA is seeded by
    the mean of the ``fast`` values ending there, not by the first ``fast`` values. All
    three outputs are NaN for the first ``slow + signal - 2`` values. TA-Lib silently swaps
    ``fast > slow``; that is rejected here, as it is a configuration mistake.
    """
    x = _series("close", close)
    f = _period("fast", fast)
    s = _period("slow", slow)
    g = _period("signal", signal)
    if f > s:
        raise ValueError(f"fast: must be <= slow, got fast={f}, slow={s}")
    n = len(x)
    lookback = s + g - 2
    line, sig, hist = _outputs(n, lookback)
    if n > lookback:
        _KERNELS.tk_macd(_address(x), n, f, s, g, _address(line), _address(sig), _address(hist))
    return line, sig, hist


def bbands(
    close: npt.ArrayLike, period: int = 20, nbdev: float = 2.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bollinger bands ``(upper, middle, lower)``: SMA ± ``nbdev`` population standard
    deviations; the first ``period - 1`` values are NaN (TA_BBANDS with an SMA).

    Each window's sums are of its values less one of its own values, so a flat window's
    bands collapse exactly onto the middle and a near-flat one loses nothing to
    cancellation against the price level; the cost per output does not depend on the
    period.
    """
    x = _series("close", close)
    p = _period("period", period)
    if isinstance(nbdev, bool) or not isinstance(nbdev, numbers.Real):
        raise ValueError(f"nbdev: expected a number, got {nbdev!r}")
    width_factor = float(nbdev)
    if not math.isfinite(width_factor):
        raise ValueError(f"nbdev: must be finite, got {nbdev!r}")
    n = len(x)
    upper, middle, lower = _outputs(n, p - 1)
    if n >= p:
        # A negative width swaps the bands. width * sqrt(M / p) is computed as
        # sqrt(M * width² / p): within an ulp or two, one operation fewer.
        up, low = (upper, lower) if width_factor >= 0 else (lower, upper)
        scale = width_factor * width_factor / p
        _KERNELS.tk_bbands(_address(x), n, p, scale, _address(up), _address(middle), _address(low))
    return upper, middle, lower


def atr(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int = 14
) -> FloatArray:
    """Average true range with Wilder smoothing, seeded by the mean true range of candles
    1..``period`` (candle 0 has no previous close); the first ``period`` values are NaN
    (TA_ATR with its default unstable period of 0)."""
    h = _series("high", high)
    lo = _series("low", low)
    c = _series("close", close)
    n = _same_length(high=h, low=lo, close=c)
    p = _period("period", period)
    out = _output(n, p)
    if n > p:
        _KERNELS.tk_atr(_address(h), _address(lo), _address(c), n, p, _address(out))
    return out
