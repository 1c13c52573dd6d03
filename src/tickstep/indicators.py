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
# Rows per matrix product: OpenBLAS runs a product of at most 65,536 x 4 multiply-adds
# (its GEMM_MULTITHREAD_THRESHOLD) on the calling thread. Larger ones it splits over its
# threads, which gains ~2x on idle cores but, with the cores busy, waits for them: measured
# 4 ms instead of 0.05 ms per slice on two shared cores. At this size the AVX-512
# (SkylakeX) kernel also takes its small-matrix path, 2x faster than on 4,096 rows; the
# AVX2 (Haswell) kernel pays ~3% for the extra calls.
_PRODUCT_ROWS = 65_536 * 4 // (_BLOCK * _BLOCK)


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
    """Window sums and sums of squared deviations from the window mean (both may be views
    of ``x`` or of each other's temporaries: read them, do not write them).

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
            if total_sum is None:  # views: the merges below write new arrays
                total_sum, total_sq = part_sum, part_sq
            else:
                # Merge the window so far (``offset`` values) with the next ``span`` values.
                delta = part_sum / span - total_sum / offset
                np.multiply(delta, delta, out=delta)
                delta *= offset * span / (offset + span)
                if total_sq is not None:
                    np.add(total_sq, delta, out=delta)
                if part_sq is not None:
                    delta += part_sq
                total_sq = delta
                total_sum = total_sum + part_sum
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
    assert total_sum is not None
    return total_sum, np.zeros(count) if total_sq is None else total_sq


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
    A gain of 1 (period 1) keeps nothing of the past: the identity, no carry.
    """
    if log_decay == -math.inf:
        identity = np.eye(_BLOCK)
        return _Weights(identity, np.zeros(_BLOCK), identity[:, -1].copy(), 0.0)
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
    return _Weights(matrix, carry, end, fold)


def _log_decay(gain: float) -> float:
    """``log(1 - gain)``; a period of 1 (gain 1) keeps nothing of the past."""
    return -math.inf if gain >= 1.0 else math.log1p(-gain)


class _Filters(NamedTuple):
    """The block weights of one filter per row, stacked for ``np.matmul``, and the
    filters their block ends follow (decay ``decay**_BLOCK``), one level up."""

    matrix: FloatArray  # (rows, _BLOCK, _BLOCK)
    carry: FloatArray  # (rows, _BLOCK)
    end: FloatArray  # (rows, _BLOCK, 1)
    fold: FloatArray  # (rows, 1)
    gains: tuple[float, ...]  # the block ends' filters
    log_decays: tuple[float, ...]


def _filters_of(*gains: float) -> _Filters:
    """The stacked weights of the filters with these gains, one per row."""
    return _filters(gains, tuple(_log_decay(g) for g in gains))


@functools.lru_cache(maxsize=64)
def _filters(gains: tuple[float, ...], log_decays: tuple[float, ...]) -> _Filters:
    rows = [_block_weights(g, d) for g, d in zip(gains, log_decays, strict=True)]
    stacked = _Filters(
        np.stack([w.matrix for w in rows]),
        np.stack([w.carry for w in rows]),
        np.stack([w.end for w in rows])[:, :, None],
        np.array([[w.fold] for w in rows]),
        tuple(-math.expm1(_BLOCK * d) for d in log_decays),
        tuple(_BLOCK * d for d in log_decays),
    )
    for array in stacked[:4]:
        array.setflags(write=False)
    return stacked


def _spans(start: int, stop: int, step: int = _CHUNK) -> list[tuple[int, int]]:
    return [(i, min(i + step, stop)) for i in range(start, stop, step)]


def _linear_filter(x: FloatArray, gain: float, y0: float, out: FloatArray) -> None:
    """``out[i] = (1 - gain) * out[i - 1] + gain * x[i]`` with ``out[-1] = y0`` (EMA, Wilder),
    without a loop over values (slices of ``_CHUNK`` carry the state from one to the next).
    ``x`` is left as it is: each slice is filtered from a copy."""
    filters = _filters_of(gain)
    scratch = np.empty((1, min(len(x), _CHUNK)), dtype=np.float64)
    state = np.array([y0])
    for begin, end in _spans(0, len(x)):
        chunk = scratch[:, : end - begin]
        np.copyto(chunk[0], x[begin:end])
        _filter_slice(chunk, filters, state, out[None, begin:end])
        state = out[end - 1 : end].copy()


def _filter_slice(x: FloatArray, filters: _Filters, y0: FloatArray, out: FloatArray) -> None:
    """Filters row ``i`` of ``x`` (series x values; overwritten) with filter ``i`` into
    ``out``, carrying ``y0[i]`` in.

    Within a block the filter is a triangular matrix product. The block ends obey the same
    recurrence with ``decay**_BLOCK``: they are solved first, recursively (each level is 16x
    shorter), and folded into each block's first value, so one product gives every block."""
    series, n = x.shape
    rows = n // _BLOCK if n > _BLOCK else 0
    size = rows * _BLOCK
    last = y0
    if rows:
        blocks = x[:, :size].reshape(series, rows, _BLOCK)
        # Block ends follow Y = D Y + end with D = carry[-1]; the last column sums to
        # exactly 1 - D, so end / (1 - D) is price-like and the level above is the same
        # normalised filter, with decay D. starts[:, r] is carried into block r.
        starts = np.empty((series, rows + 1), dtype=np.float64)
        starts[:, 0] = y0
        ends = np.matmul(blocks, filters.end)[:, :, 0]
        _filter_slice(ends, _filters(filters.gains, filters.log_decays), y0, starts[:, 1:])
        last = starts[:, -1]
        starts = starts[:, :-1]
        starts *= filters.fold
        blocks[:, :, 0] += starts
        body = out[:, :size].reshape(series, rows, _BLOCK)
        for first in range(0, rows, _PRODUCT_ROWS):
            part = slice(first, first + _PRODUCT_ROWS)
            np.matmul(blocks[:, part], filters.matrix, out=body[:, part])
    rest = n - size
    if rest:
        tail = out[:, None, size:]
        np.matmul(x[:, None, size:], filters.matrix[:, :rest, :rest], out=tail)
        tail += (last[:, None] * filters.carry[:, :rest])[:, None, :]


@functools.lru_cache(maxsize=16)
def _line_weights(slow_gain: float, fast_gain: float) -> FloatArray:
    """``(_BLOCK + 2) x _BLOCK`` weights of MACD's line within a block: fast minus slow
    EMA weights of the block's inputs, then the weights of the fast and of the slow EMA's
    value carried into the block (two more inputs)."""
    slow = _block_weights(slow_gain, _log_decay(slow_gain))
    fast = _block_weights(fast_gain, _log_decay(fast_gain))
    weights = np.vstack([fast.matrix - slow.matrix, fast.carry, -slow.carry])
    weights.setflags(write=False)
    return weights


def _macd_line(
    x: FloatArray,
    emas: _Filters,
    weights: FloatArray,
    state: FloatArray,
    *,
    line: FloatArray,
    inputs: FloatArray,
) -> FloatArray:
    """One slice of MACD's line (fast EMA minus slow EMA) into ``line``, from ``state``, the
    (slow, fast) EMAs before ``x[0]``; returns them at the last whole block's end (the
    slice's end when its length is a multiple of ``_BLOCK``, as every slice but the last).

    Both EMAs' block ends are solved as in :func:`_filter_slice`; then each block of the
    line is one product of its 16 inputs and the two carried EMA values with
    :func:`_line_weights`: 18 multiply-adds a value where two filters and a subtraction
    take 32 and one more pass. ``inputs`` is scratch of at least ``len(x) // _BLOCK`` rows.
    """
    n = len(x)
    rows = n // _BLOCK if n > _BLOCK else 0
    size = rows * _BLOCK
    starts = np.empty((2, rows + 1), dtype=np.float64)
    starts[:, 0] = state
    if rows:
        blocks = x[:size].reshape(rows, _BLOCK)
        ends = np.matmul(blocks, emas.end)[:, :, 0]
        _filter_slice(ends, _filters(emas.gains, emas.log_decays), state, starts[:, 1:])
        work = inputs[:rows]
        np.copyto(work[:, :_BLOCK], blocks)
        work[:, _BLOCK] = starts[1, :-1]
        work[:, _BLOCK + 1] = starts[0, :-1]
        body = line[:size].reshape(rows, _BLOCK)
        step = _PRODUCT_ROWS * _BLOCK // (_BLOCK + 2)
        for first in range(0, rows, step):
            np.matmul(work[first : first + step], weights, out=body[first : first + step])
    last = starts[:, -1]
    rest = n - size
    if rest:
        tail = line[size:]
        np.matmul(x[size:], weights[:rest, :rest], out=tail)
        tail += last[1] * weights[_BLOCK, :rest] + last[0] * weights[_BLOCK + 1, :rest]
    return last


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


def _outputs(n: int, lookback: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Three outputs as rows of one allocation: three separate arrays of a million values
    are three large allocations that the C allocator maps and unmaps on every call, and
    their first touch (page faults, zeroing) cost more than MACD's arithmetic."""
    out = np.empty((3, n), dtype=np.float64)
    out[:, :lookback] = np.nan
    return out[0], out[1], out[2]


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
    gain = 1.0 / p
    filters = _filters_of(gain, gain)
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
        _filter_slice(moves[:, :size], filters, state, averages[:, :size])
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
    line, sig, hist = _outputs(n, lookback)
    if n <= lookback:
        return line, sig, hist
    # The line comes from one matrix product per slice (_macd_line); the signal EMA follows
    # it slice by slice, from its seed (the mean of the first ``g`` values of the line) on,
    # so no output is read back from memory in a second pass.
    slow_gain, fast_gain = 2.0 / (s + 1), 2.0 / (f + 1)
    emas = _filters_of(slow_gain, fast_gain)
    weights = _line_weights(slow_gain, fast_gain)
    signal_filter = _filters_of(2.0 / (g + 1))
    state = np.array([_sequential_mean(x[:s]), _sequential_mean(x[s - f : s])])
    line[s - 1] = state[1] - state[0]
    chunk = min(n - s, _CHUNK)
    inputs = np.empty((chunk // _BLOCK, _BLOCK + 2), dtype=np.float64)
    scratch = np.empty((1, chunk), dtype=np.float64)
    signal_state: FloatArray | None = None
    for begin, end in _spans(s, n):
        state = _macd_line(x[begin:end], emas, weights, state, line=line[begin:end], inputs=inputs)
        if end <= lookback:
            continue
        if signal_state is None:
            sig[lookback] = _sequential_mean(line[s - 1 : lookback + 1])
            hist[lookback] = line[lookback] - sig[lookback]
            signal_state = sig[lookback : lookback + 1].copy()
        start = max(begin, lookback + 1)
        part = scratch[:, : end - start]
        np.copyto(part[0], line[start:end])
        _filter_slice(part, signal_filter, signal_state, sig[None, start:end])
        signal_state = sig[end - 1 : end].copy()
        np.subtract(line[start:end], sig[start:end], out=hist[start:end])
    line[s - 1 : lookback] = np.nan
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
    upper, middle, lower = _outputs(n, p - 1)
    up, mid, low = upper[p - 1 :], middle[p - 1 :], lower[p - 1 :]
    if width_factor < 0:  # a negative width swaps the bands
        up, low = low, up
    # width * sqrt(M / p) as sqrt(M * width² / p): one pass fewer, within an ulp or two.
    variance_scale = width_factor * width_factor / p
    step = max(_CHUNK, p)
    width = np.empty(min(len(mid), step), dtype=np.float64)
    for begin, end in _spans(0, len(mid), step):
        sums, squares = _window_sums_and_squares(x[begin : end + p - 1], p)
        half_width = width[: end - begin]
        np.divide(sums, p, out=mid[begin:end])
        np.multiply(squares, variance_scale, out=half_width)
        np.sqrt(half_width, out=half_width)
        np.add(mid[begin:end], half_width, out=up[begin:end])
        np.subtract(mid[begin:end], half_width, out=low[begin:end])
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
    filters = _filters_of(gain)
    true_range, scratch = np.empty((2, 1, min(n - p - 1, _CHUNK)), dtype=np.float64)
    for begin, end in _spans(p + 1, n):
        size = end - begin
        prev_close = c[begin - 1 : end - 1]
        _true_range(
            h[begin:end], lo[begin:end], prev_close, true_range[0, :size], scratch[0, :size]
        )
        state = out[begin - 1 : begin].copy()
        _filter_slice(true_range[:, :size], filters, state, out[None, begin:end])
    return out
