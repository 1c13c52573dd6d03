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
from typing import NamedTuple

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


class _Weights(NamedTuple):
    """One block of the filter ``y[i] = decay * y[i - 1] + gain * x[i]``."""

    matrix: FloatArray  # matrix[k, j]: weight of x[k] in y[j] (0 for k > j)
    carry: FloatArray  # carry[j]: weight in y[j] of the value carried into the block
    end: FloatArray  # matrix[:, -1] / (1 - carry[-1]): the normalised block end
    fold: float  # carry[0] / matrix[0, 0]: the carry as an extra first input


@functools.lru_cache(maxsize=64)
def _block_weights(gain: float, log_decay: float) -> _Weights:
    """``M[k, j] = gain * decay**(j - k)`` for ``j >= k`` and the weights ``decay**(j + 1)``
    of the value carried into the block.

    Powers come from ``log_decay`` (``log1p(-k)``), not from a rounded ``1 - k``, whose
    error of ``eps / k`` relative would act as a different ``k``. Each diagonal entry is
    then nudged by an ulp or so so that every column plus its carry weight sums to exactly
    1, as TA-Lib's ``y + k * (x - y)`` does by construction; without both, the output
    drifts by about ``eps * period`` (1e-13 relative at period 10,000).

    The carried value ``c`` adds ``c * decay**(j + 1)`` to ``y[j]``, which is what
    ``c * fold`` added to the block's first input does if row 0 is ``M[0, 0] *
    decay**j`` with ``fold = decay / M[0, 0]``: so row 0 uses ``M[0, 0] = 1 - decay``
    (rounded) in place of ``gain``, a change of about ``eps`` in its weights' sums.
    """
    steps = np.arange(_BLOCK, dtype=np.float64)
    lag = steps[None, :] - steps[:, None]
    powers = np.exp(np.maximum(lag, 0.0) * log_decay)
    carry = np.exp((steps + 1.0) * log_decay)
    carry[carry < _TINY] = 0.0
    first_weight = 1.0 - float(carry[0])
    matrix = np.where(lag >= 0, powers, 0.0)
    matrix[0] *= first_weight
    matrix[1:] *= gain
    matrix[matrix < _TINY] = 0.0
    for j in range(_BLOCK):
        matrix[j, j] = math.fsum([1.0, -float(carry[j]), *(-float(v) for v in matrix[:j, j])])
    end = matrix[:, -1] / (1.0 - float(carry[-1]))
    fold = float(carry[0]) / float(matrix[0, 0])
    for array in (matrix, carry, end):
        array.setflags(write=False)
    return _Weights(matrix, carry, end, fold)


def _log_decay(gain: float) -> float:
    """``log(1 - gain)``; a period of 1 (gain 1) keeps nothing of the past."""
    return -math.inf if gain >= 1.0 else math.log1p(-gain)


def _spans(start: int, stop: int, step: int = _CHUNK) -> list[tuple[int, int]]:
    return [(i, min(i + step, stop)) for i in range(start, stop, step)]


def _linear_filter(x: FloatArray, gain: float, y0: float, out: FloatArray) -> None:
    """``out[i] = (1 - gain) * out[i - 1] + gain * x[i]`` with ``out[-1] = y0`` (EMA, Wilder),
    without a loop over values (slices of ``_CHUNK`` carry the state from one to the next).
    ``x`` is left as it is: each slice is filtered from a copy."""
    log_decay = _log_decay(gain)
    scratch = np.empty((1, min(len(x), _CHUNK)), dtype=np.float64)
    state = np.array([y0])
    for begin, end in _spans(0, len(x)):
        chunk = scratch[:, : end - begin]
        np.copyto(chunk[0], x[begin:end])
        _filter_slice(chunk, gain, log_decay, state, out[None, begin:end])
        state = out[end - 1 : end].copy()


def _filter_slice(
    x: FloatArray, gain: float, log_decay: float, y0: FloatArray, out: FloatArray
) -> None:
    """Filters every row of ``x`` (series x values; overwritten) into ``out``, row ``i``
    carrying ``y0[i]`` in.

    Within a block the filter is a triangular matrix product. The block ends obey the same
    recurrence with ``decay**_BLOCK``: they are solved first, recursively (each level is 16x
    shorter), and folded into each block's first value, so one product gives every block."""
    series, n = x.shape
    if n == 0:
        return
    if log_decay == -math.inf:
        np.multiply(x, gain, out=out)
        return
    weights = _block_weights(gain, log_decay)
    rows = n // _BLOCK if n > _BLOCK else 0
    size = rows * _BLOCK
    last = y0
    if rows:
        blocks = x[:, :size].reshape(series, rows, _BLOCK)
        # Block ends follow Y = D Y + end with D = carry[-1]; the last column sums to
        # exactly 1 - D, so end / (1 - D) is price-like and the level above is the same
        # normalised filter, with decay D. starts[:, r] is carried into block r.
        block_log_decay = _BLOCK * log_decay
        starts = np.empty((series, rows + 1), dtype=np.float64)
        starts[:, 0] = y0
        ends = blocks @ weights.end
        _filter_slice(ends, -math.expm1(block_log_decay), block_log_decay, y0, starts[:, 1:])
        last = starts[:, -1]
        starts = starts[:, :-1]
        blocks[:, :, 0] += starts * weights.fold
        body = out[:, :size].reshape(series, rows, _BLOCK)
        np.matmul(blocks, weights.matrix, out=body)
    rest = n - size
    if rest:
        tail = out[:, size:]
        np.matmul(x[:, size:], weights.matrix[:rest, :rest], out=tail)
        tail += last[:, None] * weights.carry[:rest]


def _ema_from(x: FloatArray, period: int, seed_end: int, out: FloatArray) -> None:
    """TA-Lib's EMA into ``out[seed_end:]``, seeded by the mean of the ``period`` values
    ending at ``seed_end`` (MACD seeds its fast EMA late, at the slow EMA's first value)."""
    k = 2.0 / (period + 1)
    seed = _sequential_mean(x[seed_end - period + 1 : seed_end + 1])
    out[seed_end] = seed
    _linear_filter(x[seed_end + 1 :], k, seed, out[seed_end + 1 :])


def _output(n: int, lookback: int) -> FloatArray:
    """An output of ``n`` values whose first ``lookback`` are NaN; the caller writes the
    rest (filling all ``n`` with NaN first would be one more pass over the output)."""
    out = np.empty(n, dtype=np.float64)
    out[:lookback] = np.nan
    return out


def _true_range(
    high: FloatArray, low: FloatArray, prev_close: FloatArray, out: FloatArray, scratch: FloatArray
) -> FloatArray:
    """True range ``max(h, c_prev) - min(l, c_prev)``, which is TA-Lib's
    ``max(h - l, |c_prev - h|, |c_prev - l|)`` whenever high >= low, in three passes
    instead of seven."""
    np.maximum(high, prev_close, out=out)
    out -= np.minimum(low, prev_close, out=scratch)
    return out


def _rsi_values(double_gain: FloatArray, move: FloatArray, out: FloatArray) -> None:
    """``100 * gain / move`` from smoothed doubled gains, or 0 where nothing has moved."""
    if move.min() > 0.0:
        np.divide(double_gain, move, out=out)
    else:
        out[:] = 0.0
        np.divide(double_gain, move, out=out, where=move > 0.0)
    out *= 50.0


# --- indicators --------------------------------------------------------------------------


def sma(close: npt.ArrayLike, period: int) -> FloatArray:
    """Simple moving average; the first ``period - 1`` values are NaN (TA_SMA)."""
    x = _series("close", close)
    p = _period("period", period)
    out = _output(len(x), p - 1)
    result = out[p - 1 :]
    for begin, end in _spans(0, len(result), max(_CHUNK, p)):
        np.divide(_window_sums(x[begin : end + p - 1], p), p, out=result[begin:end])
    return out


def ema(close: npt.ArrayLike, period: int) -> FloatArray:
    """Exponential moving average with ``k = 2 / (period + 1)``, seeded by the SMA of the
    first ``period`` values; the first ``period - 1`` values are NaN (TA_EMA)."""
    x = _series("close", close)
    p = _period("period", period)
    out = _output(len(x), p - 1)
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
    out = _output(n, p)
    if n <= p:
        return out
    gain_coef = 1.0 / p
    log_decay = _log_decay(gain_coef)
    # Row 0: doubled gains (change + |change|, exact), row 1: absolute changes; both rows
    # are smoothed by one matrix product, and the doubling is undone in the ratio.
    first = np.diff(x[: p + 1])
    moved = np.abs(first)
    state = np.array([_sequential_mean(first + moved), _sequential_mean(moved)])
    _rsi_values(state[:1], state[1:], out[p : p + 1])
    moves = np.empty((2, min(n - p - 1, _CHUNK)), dtype=np.float64)
    averages = np.empty_like(moves)
    for begin, end in _spans(p + 1, n):
        size = end - begin
        gains, changes = moves[0, :size], moves[1, :size]
        np.subtract(x[begin:end], x[begin - 1 : end - 1], out=gains)
        np.abs(gains, out=changes)
        gains += changes
        _filter_slice(moves[:, :size], gain_coef, log_decay, state, averages[:, :size])
        state = averages[:, size - 1].copy()
        _rsi_values(averages[0, :size], averages[1, :size], out[begin:end])
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
    line, sig, hist = _output(n, lookback), _output(n, lookback), _output(n, lookback)
    if n <= lookback:
        return line, sig, hist
    # Both EMAs run over the same slices: the fast one into line, the slow one into a
    # slice-sized buffer that is then subtracted from it.
    fast_gain, slow_gain = 2.0 / (f + 1), 2.0 / (s + 1)
    fast_log_decay, slow_log_decay = _log_decay(fast_gain), _log_decay(slow_gain)
    fast_state = np.array([_sequential_mean(x[s - f : s])])
    slow_state = np.array([_sequential_mean(x[:s])])
    line[s - 1] = fast_state[0] - slow_state[0]
    scratch, slow_ema = np.empty((2, 1, min(n - s, _CHUNK)), dtype=np.float64)
    for begin, end in _spans(s, n):
        size = end - begin
        np.copyto(scratch[0, :size], x[begin:end])
        _filter_slice(scratch[:, :size], slow_gain, slow_log_decay, slow_state, slow_ema[:, :size])
        np.copyto(scratch[0, :size], x[begin:end])
        _filter_slice(
            scratch[:, :size], fast_gain, fast_log_decay, fast_state, line[None, begin:end]
        )
        fast_state, slow_state = line[end - 1 : end].copy(), slow_ema[:, size - 1].copy()
        line[begin:end] -= slow_ema[0, :size]
    _ema_from(line[s - 1 :], g, g - 1, sig[s - 1 :])
    line[s - 1 : lookback] = np.nan
    np.subtract(line[lookback:], sig[lookback:], out=hist[lookback:])
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
    upper, middle, lower = _output(n, p - 1), _output(n, p - 1), _output(n, p - 1)
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
    out = _output(n, p)
    if n <= p:
        return out
    first = np.empty((2, p), dtype=np.float64)
    out[p] = _sequential_mean(_true_range(h[1 : p + 1], lo[1 : p + 1], c[:p], *first))
    gain = 1.0 / p
    log_decay = _log_decay(gain)
    true_range, scratch = np.empty((2, 1, min(n - p - 1, _CHUNK)), dtype=np.float64)
    for begin, end in _spans(p + 1, n):
        size = end - begin
        prev_close = c[begin - 1 : end - 1]
        _true_range(
            h[begin:end], lo[begin:end], prev_close, true_range[0, :size], scratch[0, :size]
        )
        state = out[begin - 1 : begin].copy()
        _filter_slice(true_range[:, :size], gain, log_decay, state, out[None, begin:end])
    return out
