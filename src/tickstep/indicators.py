"""Technical indicators on float64 columns, matching TA-Lib's definitions without TA-Lib.

Every function returns arrays as long as its input, NaN during the warm-up, with the same
warm-up length (lookback) and seeds as TA-Lib, so a strategy backtested against TA-Lib
output trades the same way here. TA-Lib itself is only a test dependency: the Lambda
package stays numpy-only.

Nothing loops over candles in Python. Window sums are built by doubling (sums of 2, 4, 8, …
values, combined along the bits of the period), which needs a handful of vector adds and has
no running-sum drift. The recursive filters (EMA, Wilder smoothing) run as block matrix
products: each block of ``_BLOCK`` values is one row times a small triangular matrix of decay
powers, and the block ends are carried by the same recurrence one level up. See
``docs/decisions/0001-indicator-recurrences.md`` for the alternatives measured.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

__all__ = ["atr", "bbands", "ema", "macd", "rsi", "sma"]

# Rows of 16 keep the triangular product in BLAS's fast path while the per-row carry stays
# cheap; 8 and 32 measured slower on 1M values (see the decision record).
_BLOCK = 16
# Decay powers below this are dropped: they cannot move a double, and subnormal operands
# make the matrix product an order of magnitude slower.
_TINY = 1e-290
# Long inputs are processed in slices of this many candles so that every temporary stays in
# cache and is reused: on 1M candles, fresh 8 MB temporaries cost more (page faults) than
# the arithmetic itself.
_CHUNK = 1 << 16


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


def _nan(n: int) -> FloatArray:
    return np.full(n, np.nan, dtype=np.float64)


# --- building blocks ---------------------------------------------------------------------


def _sequential_mean(values: FloatArray) -> float:
    """Left-to-right sum over ``len(values)``, as TA-Lib seeds its filters (not pairwise)."""
    return float(np.add.accumulate(values)[-1]) / len(values)


def _window_sums(x: FloatArray, period: int) -> FloatArray:
    """Sums of every ``period`` consecutive values (``len(x) - period + 1`` of them).

    Built from sums of 2, 4, 8, … values, so each result adds at most ~log2(period) partial
    sums: no drift across a million values, unlike a running total or a cumulative sum.
    """
    count = len(x) - period + 1
    span, offset = 1, 0
    power: FloatArray = x
    total: FloatArray | None = None
    while True:
        if period & span:
            part = power[offset : offset + count]
            total = part.copy() if total is None else np.add(total, part, out=total)
            offset += span
        if span * 2 > period:
            break
        power = power[:-span] + power[span:]
        span *= 2
    assert total is not None
    return total


def _window_sums_and_squares(x: FloatArray, period: int) -> tuple[FloatArray, FloatArray]:
    """Window sums and sums of squared deviations from the window mean.

    Partial windows are merged with Chan's pairwise update (``M = Ma + Mb + δ² na nb / n``):
    every term is non-negative, so the variance of a near-flat window is not the difference
    of two large, nearly equal numbers, and a flat window gives exactly 0.
    """
    count = len(x) - period + 1
    span, offset = 1, 0
    sums: FloatArray = x
    squares: FloatArray | None = None  # None: all zero (single values)
    total_sum: FloatArray | None = None
    total_sq: FloatArray | None = None
    while True:
        if period & span:
            part_sum = sums[offset : offset + count]
            part_sq = None if squares is None else squares[offset : offset + count]
            if total_sum is None:
                total_sum = part_sum.copy()
                total_sq = np.zeros(count) if part_sq is None else part_sq.copy()
            else:
                assert total_sq is not None
                # Merge the window so far (``offset`` values) with the next ``span`` values.
                delta = part_sum / span - total_sum / offset
                np.multiply(delta, delta, out=delta)
                delta *= offset * span / (offset + span)
                total_sq += delta
                if part_sq is not None:
                    total_sq += part_sq
                total_sum += part_sum
            offset += span
        if span * 2 > period:
            break
        left, right = sums[:-span], sums[span:]
        delta = right - left
        np.multiply(delta, delta, out=delta)
        delta *= 1.0 / (2 * span)
        if squares is not None:
            delta += squares[:-span]
            delta += squares[span:]
        squares = delta
        sums = left + right
        span *= 2
    assert total_sum is not None and total_sq is not None
    return total_sum, total_sq


@functools.lru_cache(maxsize=64)
def _block_weights(gain: float, log_decay: float) -> tuple[FloatArray, FloatArray]:
    """One block of the filter: ``M[k, j] = gain * decay**(j - k)`` for ``j >= k`` and the
    weights ``decay**(j + 1)`` of the value carried into the block.

    Powers come from ``log_decay`` (``log1p(-k)``), not from a rounded ``1 - k``, whose
    error of ``eps / k`` relative would act as a different ``k``. Each diagonal entry is
    then nudged by an ulp or so so that every column plus its carry weight sums to exactly
    1, as TA-Lib's ``y + k * (x - y)`` does by construction; without both, the output
    drifts by about ``eps * period`` (1e-13 relative at period 10,000).
    """
    steps = np.arange(_BLOCK, dtype=np.float64)
    lag = steps[None, :] - steps[:, None]
    matrix = np.where(lag >= 0, gain * np.exp(np.maximum(lag, 0.0) * log_decay), 0.0)
    matrix[matrix < _TINY] = 0.0
    carry = np.exp((steps + 1.0) * log_decay)
    carry[carry < _TINY] = 0.0
    for j in range(_BLOCK):
        matrix[j, j] = math.fsum([1.0, -float(carry[j]), *(-float(v) for v in matrix[:j, j])])
    matrix.setflags(write=False)
    carry.setflags(write=False)
    return matrix, carry


def _log_decay(gain: float) -> float:
    """``log(1 - gain)``; a period of 1 (gain 1) keeps nothing of the past."""
    return -math.inf if gain >= 1.0 else math.log1p(-gain)


def _spans(start: int, stop: int, step: int = _CHUNK) -> list[tuple[int, int]]:
    return [(i, min(i + step, stop)) for i in range(start, stop, step)]


def _linear_filter(x: FloatArray, gain: float, y0: float, out: FloatArray) -> None:
    """``out[i] = (1 - gain) * out[i - 1] + gain * x[i]`` with ``out[-1] = y0`` (EMA, Wilder),
    without a loop over values (slices of ``_CHUNK``
    carry the state from one to the next)."""
    state = y0
    for begin, end in _spans(0, len(x)):
        _filter_slice(x[begin:end], gain, _log_decay(gain), state, out[begin:end])
        state = float(out[end - 1])


def _filter_slice(x: FloatArray, gain: float, log_decay: float, y0: float, out: FloatArray) -> None:
    """Within a block the filter is a triangular matrix product; the block ends obey the same
    recurrence with ``decay**_BLOCK``, solved recursively (each level is 16x shorter), and
    are then added back scaled by ``decay**(j + 1)``."""
    n = len(x)
    if n == 0:
        return
    if log_decay == -math.inf:
        np.multiply(x, gain, out=out)
        return
    matrix, carry = _block_weights(gain, log_decay)
    rows = n // _BLOCK
    last = y0
    if rows:
        body = out[: rows * _BLOCK].reshape(rows, _BLOCK)
        np.matmul(x[: rows * _BLOCK].reshape(rows, _BLOCK), matrix, out=body)
        # Block ends follow Y = D Y + end with D = carry[-1]; the last column sums to
        # exactly 1 - D, so end / (1 - D) is price-like and the level above is the same
        # normalised filter, with decay D.
        block_log_decay = _BLOCK * log_decay
        ends = body[:, -1] / (1.0 - float(carry[-1]))
        block_ends = np.empty(rows, dtype=np.float64)
        _filter_slice(ends, -math.expm1(block_log_decay), block_log_decay, y0, block_ends)
        starts = np.empty(rows, dtype=np.float64)
        starts[0] = y0
        starts[1:] = block_ends[:-1]
        body += starts[:, None] * carry
        last = float(block_ends[-1])
    rest = n - rows * _BLOCK
    if rest:
        tail = out[rows * _BLOCK :]
        np.matmul(x[rows * _BLOCK :], matrix[:rest, :rest], out=tail)
        tail += last * carry[:rest]


def _ema_from(x: FloatArray, period: int, seed_end: int, out: FloatArray) -> None:
    """TA-Lib's EMA into ``out[seed_end:]``, seeded by the mean of the ``period`` values
    ending at ``seed_end`` (MACD seeds its fast EMA late, at the slow EMA's first value)."""
    k = 2.0 / (period + 1)
    seed = _sequential_mean(x[seed_end - period + 1 : seed_end + 1])
    out[seed_end] = seed
    _linear_filter(x[seed_end + 1 :], k, seed, out[seed_end + 1 :])


def _true_range(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    """True range of candles ``1..len - 1``: ``max(h, c_prev) - min(l, c_prev)``, which is
    TA-Lib's ``max(h - l, |c_prev - h|, |c_prev - l|)`` whenever high >= low, in three
    passes instead of seven."""
    true_range = np.maximum(high[1:], close[:-1])
    true_range -= np.minimum(low[1:], close[:-1])
    return true_range


def _rsi_values(avg_gain: FloatArray, avg_move: FloatArray, out: FloatArray) -> None:
    moved = avg_move > 0.0
    np.divide(avg_gain, avg_move, out=out, where=moved)
    out *= 100.0
    out[~moved] = 0.0


# --- indicators --------------------------------------------------------------------------


def sma(close: npt.ArrayLike, period: int) -> FloatArray:
    """Simple moving average; the first ``period - 1`` values are NaN (TA_SMA)."""
    x = _series("close", close)
    p = _period("period", period)
    out = _nan(len(x))
    result = out[p - 1 :]
    for begin, end in _spans(0, len(result), max(_CHUNK, p)):
        np.divide(_window_sums(x[begin : end + p - 1], p), p, out=result[begin:end])
    return out


def ema(close: npt.ArrayLike, period: int) -> FloatArray:
    """Exponential moving average with ``k = 2 / (period + 1)``, seeded by the SMA of the
    first ``period`` values; the first ``period - 1`` values are NaN (TA_EMA)."""
    x = _series("close", close)
    p = _period("period", period)
    out = _nan(len(x))
    if len(x) >= p:
        _ema_from(x, p, p - 1, out)
    return out


def rsi(close: npt.ArrayLike, period: int = 14) -> FloatArray:
    """Wilder's RSI; the first ``period`` values are NaN (TA_RSI).

    Smooths gains and absolute changes (gains + losses, by linearity) and returns
    ``100 * gains / changes``, or 0 where nothing has moved, as TA-Lib does.
    """
    x = _series("close", close)
    p = _period("period", period)
    n = len(x)
    out = _nan(n)
    if n <= p:
        return out
    gain_coef = 1.0 / p
    log_decay = _log_decay(gain_coef)
    first = np.diff(x[: p + 1])
    avg_gain = np.array([_sequential_mean(np.maximum(first, 0.0))])
    avg_move = np.array([_sequential_mean(np.abs(first))])
    _rsi_values(avg_gain, avg_move, out[p : p + 1])
    for begin, end in _spans(p + 1, n):
        gain_state, move_state = float(avg_gain[-1]), float(avg_move[-1])
        change = x[begin:end] - x[begin - 1 : end - 1]
        gain = np.maximum(change, 0.0)
        np.abs(change, out=change)
        avg_gain = np.empty(end - begin, dtype=np.float64)
        avg_move = np.empty(end - begin, dtype=np.float64)
        _filter_slice(gain, gain_coef, log_decay, gain_state, avg_gain)
        _filter_slice(change, gain_coef, log_decay, move_state, avg_move)
        _rsi_values(avg_gain, avg_move, out[begin:end])
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
    line, sig, hist = _nan(n), _nan(n), _nan(n)
    lookback = s + g - 2
    if n <= lookback:
        return line, sig, hist
    # hist holds the slow EMA until the end, saving a temporary of the input's size.
    _ema_from(x, s, s - 1, hist)
    _ema_from(x, f, s - 1, line)
    line[s - 1 :] -= hist[s - 1 :]
    _ema_from(line[s - 1 :], g, g - 1, sig[s - 1 :])
    line[:lookback] = np.nan
    np.subtract(line, sig, out=hist)
    return line, sig, hist


def bbands(
    close: npt.ArrayLike, period: int = 20, nbdev: float = 2.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bollinger bands ``(upper, middle, lower)``: SMA ± ``nbdev`` population standard
    deviations; the first ``period - 1`` values are NaN (TA_BBANDS with an SMA)."""
    x = _series("close", close)
    p = _period("period", period)
    if isinstance(nbdev, bool) or not isinstance(nbdev, numbers.Real):
        raise ValueError(f"nbdev: expected a number, got {nbdev!r}")
    width_factor = float(nbdev)
    if not math.isfinite(width_factor):
        raise ValueError(f"nbdev: must be finite, got {nbdev!r}")
    n = len(x)
    upper, middle, lower = _nan(n), _nan(n), _nan(n)
    up, mid, low = upper[p - 1 :], middle[p - 1 :], lower[p - 1 :]
    for begin, end in _spans(0, len(mid), max(_CHUNK, p)):
        sums, squares = _window_sums_and_squares(x[begin : end + p - 1], p)
        np.divide(sums, p, out=mid[begin:end])
        np.divide(squares, p, out=squares)
        np.sqrt(squares, out=squares)
        squares *= width_factor
        np.add(mid[begin:end], squares, out=up[begin:end])
        np.subtract(mid[begin:end], squares, out=low[begin:end])
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
    out = _nan(n)
    if n <= p:
        return out
    state = _sequential_mean(_true_range(h[: p + 1], lo[: p + 1], c[: p + 1]))
    out[p] = state
    for begin, end in _spans(p + 1, n):
        true_range = _true_range(h[begin - 1 : end], lo[begin - 1 : end], c[begin - 1 : end])
        _filter_slice(true_range, 1.0 / p, _log_decay(1.0 / p), state, out[begin:end])
        state = float(out[end - 1])
    return out
