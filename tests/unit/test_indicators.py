"""Indicators match TA-Lib (the reference definitions) to 1e-9 relative, NaN for NaN."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tickstep import indicators
from tickstep.candles import CandleArrays, bundled_file, load_csv
from tickstep.indicators import FloatArray

RTOL = 1e-9
PERIODS = [2, 3, 5, 14, 20, 50, 200]
CANDLE_FILES = ["ETH-BTC_5m.csv", "XRP-ETH_1m.csv"]


def assert_matches(ours: FloatArray, theirs: FloatArray, atol: float = 0.0) -> None:
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg="NaN positions")
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=atol)


def macd_atol(close: FloatArray, slow: int) -> float:
    """MACD outputs are differences of price-sized EMAs, so near a crossing their relative
    error is unbounded for any two implementations. Their absolute error is bounded by the
    price scale and grows with the slow period (measured: ~1e-15 of price at slow=50,
    ~3e-13 at slow=10,000); this allows 100x that."""
    return 1e-14 * max(slow, 100) * float(np.max(np.abs(close)))


def band_atol(close: FloatArray) -> float:
    """A lower band can cross zero, where relative error means nothing; there TA-Lib's
    running-sum SMA is the less exact side (3e-12 off an exact mean at period 5,000, where
    ours is exact), so allow an error of 1e-12 of the price scale. TA-Lib's running sum of
    squares also loses eps x (largest price)^2 of variance, which after the square root is
    about eps x largest / smallest price of the scale: allowed too (it only matters for
    series like hypothesis finds, 0.01 next to 256.3)."""
    if not len(close):
        return 0.0
    scale = float(np.max(np.abs(close)))
    smallest = float(np.min(np.abs(close[close != 0]))) if np.any(close != 0) else scale
    return 1e-12 * scale * (1.0 + scale / smallest)


def random_walk(n: int, seed: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-2, n)))
    high = close * (1.0 + rng.random(n) * 1e-2)
    low = close * (1.0 - rng.random(n) * 1e-2)
    return high, low, close


@pytest.fixture(scope="module", params=CANDLE_FILES)
def candles(request: pytest.FixtureRequest) -> CandleArrays:
    return load_csv(bundled_file(request.param))


# 70,000 values: longer than any block or buffer of the kernels (once, the numpy code's
# 65,536-value slices).
@pytest.fixture(scope="module")
def walk() -> tuple[FloatArray, FloatArray, FloatArray]:
    return random_walk(70_000, seed=11)


# --- against TA-Lib on real candles ------------------------------------------------------


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        pytest.param(indicators.sma, talib.SMA, id="sma"),
        pytest.param(indicators.ema, talib.EMA, id="ema"),
        pytest.param(indicators.rsi, talib.RSI, id="rsi"),
    ],
)
def test_close_indicator_when_compared_with_talib_on_real_candles_then_matches_to_1e9(
    candles: CandleArrays,
    period: int,
    ours: Callable[[FloatArray, int], FloatArray],
    theirs: Callable[[FloatArray, int], FloatArray],
) -> None:
    assert_matches(ours(candles.close, period), theirs(candles.close, period))


@pytest.mark.parametrize("period", PERIODS)
def test_atr_when_compared_with_talib_on_real_candles_then_matches_to_1e9(
    candles: CandleArrays, period: int
) -> None:
    c = candles
    assert_matches(
        indicators.atr(c.high, c.low, c.close, period), talib.ATR(c.high, c.low, c.close, period)
    )


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("nbdev", [1.0, 2.0, 2.5])
def test_bbands_when_compared_with_talib_on_real_candles_then_matches_to_1e9(
    candles: CandleArrays, period: int, nbdev: float
) -> None:
    ours = indicators.bbands(candles.close, period, nbdev)
    theirs = talib.BBANDS(candles.close, period, nbdev, nbdev)
    for band, reference in zip(ours, theirs, strict=True):
        assert_matches(band, reference, atol=band_atol(candles.close))


@pytest.mark.parametrize(
    ("fast", "slow", "signal"), [(12, 26, 9), (2, 3, 2), (5, 50, 1), (3, 3, 4)]
)
def test_macd_when_compared_with_talib_on_real_candles_then_matches_to_1e9(
    candles: CandleArrays, fast: int, slow: int, signal: int
) -> None:
    close = candles.close
    ours = indicators.macd(close, fast, slow, signal)
    theirs = talib.MACD(close, fast, slow, signal)
    for line, reference in zip(ours, theirs, strict=True):
        assert_matches(line, reference, atol=macd_atol(close, slow))


def test_macd_when_compared_with_talib_then_fast_ema_is_seeded_at_the_slow_ema_start() -> None:
    # Seeding the fast EMA on the first `fast` values instead gives a visibly different line.
    close = load_csv(bundled_file("ETH-BTC_5m.csv")).close
    line = indicators.macd(close, 12, 26, 9)[0]
    naive = indicators.ema(close, 12) - indicators.ema(close, 26)
    first = 26 + 9 - 2
    np.testing.assert_allclose(line[first:], talib.MACD(close)[0][first:], rtol=1e-6)
    assert abs(line[first] - naive[first]) > 1e-6 * abs(line[first])


# --- against TA-Lib on random walks ------------------------------------------------------


@pytest.mark.parametrize("period", [2, 3, 14, 50, 500, 5000])
def test_every_indicator_when_compared_with_talib_on_a_long_random_walk_then_matches_to_1e9(
    walk: tuple[FloatArray, FloatArray, FloatArray], period: int
) -> None:
    high, low, close = walk
    assert_matches(indicators.sma(close, period), talib.SMA(close, period))
    assert_matches(indicators.ema(close, period), talib.EMA(close, period))
    assert_matches(indicators.rsi(close, period), talib.RSI(close, period))
    assert_matches(indicators.atr(high, low, close, period), talib.ATR(high, low, close, period))
    for band, reference in zip(
        indicators.bbands(close, period, 2.0), talib.BBANDS(close, period, 2.0, 2.0), strict=True
    ):
        assert_matches(band, reference, atol=band_atol(close))
    slow = 2 * period
    for line, reference in zip(
        indicators.macd(close, period, slow, 9), talib.MACD(close, period, slow, 9), strict=True
    ):
        assert_matches(line, reference, atol=macd_atol(close, slow))


prices = arrays(
    np.float64,
    st.integers(0, 300),
    elements=st.integers(1, 100_000).map(lambda cents: cents / 100),
)


@settings(max_examples=60, deadline=None)
@given(close=prices, period=st.integers(2, 40))
def test_single_input_indicators_when_given_any_prices_then_match_talib(
    close: FloatArray, period: int
) -> None:
    assert_matches(indicators.sma(close, period), talib.SMA(close, period))
    assert_matches(indicators.ema(close, period), talib.EMA(close, period))
    assert_matches(indicators.rsi(close, period), talib.RSI(close, period))
    for band, reference in zip(
        indicators.bbands(close, period, 2.0), talib.BBANDS(close, period, 2.0, 2.0), strict=True
    ):
        assert_matches(band, reference, atol=band_atol(close))
    atol = macd_atol(close, period + 3) if len(close) else 0.0
    for line, reference in zip(
        indicators.macd(close, period, period + 3, 4),
        talib.MACD(close, period, period + 3, 4),
        strict=True,
    ):
        assert_matches(line, reference, atol=atol)


@settings(max_examples=60, deadline=None)
@given(
    data=arrays(np.int64, st.tuples(st.just(3), st.integers(0, 300)), elements=st.integers(0, 500)),
    period=st.integers(1, 40),
)
def test_atr_when_given_any_candles_then_matches_talib(data: np.ndarray, period: int) -> None:
    close = 10.0 + data[0] / 100
    high = close + data[1] / 1000
    low = close - data[2] / 1000
    assert_matches(indicators.atr(high, low, close, period), talib.ATR(high, low, close, period))


def exact_smoothing(values: FloatArray, period: int, gain: Decimal) -> list[Decimal]:
    """``y = y + gain * (x - y)`` from the mean of the first ``period`` values, in 50-digit
    decimals: the exact filter, against which rounding drift in ours would show."""
    xs = [Decimal(float(v)) for v in values]
    y = sum(xs[:period], Decimal(0)) / period
    out = [y]
    for x in xs[period:]:
        y += gain * (x - y)
        out.append(y)
    return out


@pytest.mark.parametrize("period", [1_000, 10_000])
def test_ema_and_atr_when_period_is_long_then_match_exact_decimal_arithmetic_to_1e12(
    period: int,
) -> None:
    high, low, close = random_walk(30_000, seed=13)
    true_range = talib.TRANGE(high, low, close)[1:]
    with localcontext() as context:
        context.prec = 50
        ema = exact_smoothing(close, period, Decimal(2) / (period + 1))
        atr = exact_smoothing(true_range, period, Decimal(1) / period)
    ours_ema = indicators.ema(close, period)[period - 1 :]
    ours_atr = indicators.atr(high, low, close, period)[period:]
    np.testing.assert_allclose(ours_ema, np.array(ema, dtype=np.float64), rtol=1e-12, atol=0)
    np.testing.assert_allclose(ours_atr, np.array(atr, dtype=np.float64), rtol=1e-12, atol=0)


# --- moving windows: long periods and flat stretches ---------------------------------------


def assert_bands_match(close: FloatArray, period: int) -> None:
    for band, reference in zip(
        indicators.bbands(close, period, 2.0), talib.BBANDS(close, period, 2.0, 2.0), strict=True
    ):
        assert_matches(band, reference, atol=band_atol(close))


@pytest.mark.parametrize("period", [1_000, 5_000])
def test_sma_and_bbands_when_period_is_long_then_match_talib_on_a_long_walk(period: int) -> None:
    close = random_walk(400_000, seed=19)[2]
    assert_matches(indicators.sma(close, period), talib.SMA(close, period))
    assert_bands_match(close, period)


@pytest.mark.parametrize("period", [1, 2, 7, 64])
def test_sma_and_bbands_when_length_is_any_number_of_blocks_then_match_talib(period: int) -> None:
    # Blocks of `period` values are aligned on the series' end: every remainder of the
    # length, from one window to a few blocks, puts the first boundary somewhere else.
    walk = random_walk(4 * period + 2, seed=period)[2]
    for n in range(period, len(walk) + 1):
        close = walk[:n]
        expected = close if period == 1 else talib.SMA(close, period)  # TA-Lib refuses 1
        assert_matches(indicators.sma(close, period), expected)
        if period > 1:
            assert_bands_match(close, period)


def exact_windows(close: FloatArray, period: int) -> tuple[list[Fraction], list[Fraction]]:
    """Every window's mean and population variance in exact rational arithmetic (a float is
    a dyadic rational, so running sums of them carry no error)."""
    xs = [Fraction(float(v)) for v in close]
    total = sum(xs[:period], Fraction(0))
    squares = sum((v * v for v in xs[:period]), Fraction(0))
    means, variances = [], []
    for i in range(period, len(xs) + 1):
        if i > period:
            total += xs[i - 1] - xs[i - 1 - period]
            squares += xs[i - 1] ** 2 - xs[i - 1 - period] ** 2
        mean = total / period
        means.append(mean)
        variances.append(squares / period - mean * mean)
    return means, variances


@pytest.mark.parametrize("period", [1_000, 5_000])
def test_sma_and_bbands_when_period_is_long_then_match_exact_arithmetic_to_1e12(
    period: int,
) -> None:
    close = random_walk(12_000, seed=17)[2]
    means, variances = exact_windows(close, period)
    with localcontext() as context:
        context.prec = 40
        deviations = [(Decimal(v.numerator) / v.denominator).sqrt() for v in variances]
    mean = np.array([float(m) for m in means])
    half_width = 2.0 * np.array([float(d) for d in deviations])
    upper, middle, lower = (band[period - 1 :] for band in indicators.bbands(close, period, 2.0))
    np.testing.assert_allclose(indicators.sma(close, period)[period - 1 :], mean, rtol=1e-12)
    np.testing.assert_allclose(middle, mean, rtol=1e-12)
    np.testing.assert_allclose(upper - middle, half_width, rtol=1e-12)
    np.testing.assert_allclose(middle - lower, half_width, rtol=1e-12)


@pytest.mark.parametrize("period", [2, 5, 20, 50, 200])
def test_sma_and_bbands_when_a_stretch_is_flat_then_its_windows_are_exactly_the_price(
    period: int,
) -> None:
    close = random_walk(3_000, seed=23)[2]
    close[1_234:1_551] = 101.37
    inside = slice(1_234 + period - 1, 1_551)  # the windows that lie wholly in the stretch
    upper, middle, lower = indicators.bbands(close, period, 2.0)
    assert np.all(indicators.sma(close, period)[inside] == 101.37)
    assert np.all(middle[inside] == 101.37)
    assert np.all(upper[inside] == 101.37) and np.all(lower[inside] == 101.37)
    assert np.all(upper[1_551 : 1_551 + period] > middle[1_551 : 1_551 + period])


# --- edges -------------------------------------------------------------------------------


def test_sma_and_ema_when_period_is_one_then_return_the_input() -> None:
    close = random_walk(50, seed=3)[2]
    np.testing.assert_array_equal(indicators.sma(close, 1), close)
    np.testing.assert_array_equal(indicators.ema(close, 1), close)


def test_macd_when_fast_period_is_one_then_line_is_price_less_slow_ema() -> None:
    # A gain-1 filter (the price itself) stacked with the slow EMA; TA-Lib refuses fast=1.
    close = random_walk(300, seed=5)[2]
    line, signal, hist = indicators.macd(close, 1, 5, 3)
    expected_line = close - talib.EMA(close, 5)
    expected_signal = np.full(300, np.nan)
    expected_signal[4:] = talib.EMA(expected_line[4:], 3)
    expected_line[:6] = np.nan
    atol = macd_atol(close, 5)
    assert_matches(line, expected_line, atol=atol)
    assert_matches(signal, expected_signal, atol=atol)
    assert_matches(hist, expected_line - expected_signal, atol=atol)


def test_macd_when_signal_seed_lies_past_the_first_slice_then_matches_talib(
    walk: tuple[FloatArray, FloatArray, FloatArray],
) -> None:
    # lookback 66,032 > 65,536: the signal EMA starts far into the line (in the numpy code
    # this test was written for, in its second slice).
    close = walk[2]
    for line, reference in zip(
        indicators.macd(close, 12, 26, 66_008), talib.MACD(close, 12, 26, 66_008), strict=True
    ):
        assert_matches(line, reference, atol=macd_atol(close, 26))


@pytest.mark.parametrize("nbdev", [-2.0, 0.0])
def test_bbands_when_width_is_negative_or_zero_then_matches_talib(nbdev: float) -> None:
    # A negative width puts the "upper" band below the middle one, as in TA-Lib.
    close = random_walk(500, seed=7)[2]
    for band, reference in zip(
        indicators.bbands(close, 20, nbdev), talib.BBANDS(close, 20, nbdev, nbdev), strict=True
    ):
        assert_matches(band, reference, atol=band_atol(close))


def test_three_output_indicators_when_called_then_outputs_are_separate_arrays() -> None:
    # MACD and the bands come from one allocation; writing one output leaves the others.
    close = random_walk(100, seed=6)[2]
    for outputs in (indicators.macd(close), indicators.bbands(close)):
        before = [output.copy() for output in outputs]
        outputs[0][:] = -1.0
        np.testing.assert_array_equal(outputs[1], before[1])
        np.testing.assert_array_equal(outputs[2], before[2])
        assert all(output.shape == (100,) and output.flags.c_contiguous for output in outputs)


def test_atr_when_period_is_one_then_is_talib_true_range() -> None:
    high, low, close = random_walk(50, seed=4)
    assert_matches(indicators.atr(high, low, close, 1), talib.TRANGE(high, low, close))


def test_rsi_and_bbands_when_prices_are_flat_then_rsi_is_zero_and_bands_collapse() -> None:
    close = np.full(40, 0.1)
    assert_matches(indicators.rsi(close, 14), talib.RSI(close, 14))
    assert np.all(indicators.rsi(close, 14)[14:] == 0.0)
    upper, middle, lower = indicators.bbands(close, 5)
    assert np.array_equal(upper[4:], middle[4:]) and np.array_equal(lower[4:], middle[4:])


@pytest.mark.parametrize(
    ("name", "call", "lookback"),
    [
        ("sma", lambda c: [indicators.sma(c, 10)], 9),
        ("ema", lambda c: [indicators.ema(c, 10)], 9),
        ("rsi", lambda c: [indicators.rsi(c, 10)], 10),
        ("atr", lambda c: [indicators.atr(c * 1.01, c * 0.99, c, 10)], 10),
        ("bbands", lambda c: list(indicators.bbands(c, 10)), 9),
        ("macd", lambda c: list(indicators.macd(c, 3, 6, 4)), 8),
    ],
)
def test_indicator_when_input_is_no_longer_than_lookback_then_all_nan_of_same_length(
    name: str, call: Callable[[FloatArray], list[FloatArray]], lookback: int
) -> None:
    for n in (0, 1, lookback):
        close = np.linspace(1.0, 2.0, n)
        for output in call(close):
            assert output.shape == (n,), name
            assert np.all(np.isnan(output)), name
    assert not np.all(np.isnan(call(np.linspace(1.0, 2.0, lookback + 1))[0])), name


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "14", None])
def test_period_when_not_a_positive_int_then_raises_value_error_naming_it(bad: object) -> None:
    close = np.linspace(1.0, 2.0, 30)
    for call in (
        lambda: indicators.sma(close, bad),  # type: ignore[arg-type]
        lambda: indicators.ema(close, bad),  # type: ignore[arg-type]
        lambda: indicators.rsi(close, bad),  # type: ignore[arg-type]
        lambda: indicators.bbands(close, bad),  # type: ignore[arg-type]
        lambda: indicators.atr(close, close, close, bad),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match="period"):
            call()
    with pytest.raises(ValueError, match="signal"):
        indicators.macd(close, 12, 26, bad)  # type: ignore[arg-type]


def test_macd_when_fast_is_slower_than_slow_then_raises_value_error() -> None:
    with pytest.raises(ValueError, match="fast"):
        indicators.macd(np.linspace(1.0, 2.0, 60), 26, 12, 9)


def test_bbands_when_nbdev_is_not_finite_then_raises_value_error() -> None:
    with pytest.raises(ValueError, match="nbdev"):
        indicators.bbands(np.linspace(1.0, 2.0, 30), 5, float("nan"))


def test_atr_when_arrays_differ_in_length_then_raises_value_error_naming_them() -> None:
    close = np.linspace(1.0, 2.0, 30)
    with pytest.raises(ValueError, match=r"high=30, low=29, close=30"):
        indicators.atr(close, close[:-1], close, 14)


def test_indicator_when_input_is_not_one_dimensional_then_raises_value_error() -> None:
    grid = np.ones((5, 5))
    with pytest.raises(ValueError, match="close: expected a 1-D array"):
        indicators.sma(grid, 2)
    with pytest.raises(ValueError, match="high: expected a 1-D array"):
        indicators.atr(grid, grid, grid, 2)


def test_kernels_when_library_is_missing_then_import_error_says_to_run_make_setup(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "_indicators.so"
    with pytest.raises(ImportError, match=r"run `make setup`") as raised:
        indicators.load_kernels(missing)
    assert str(missing) in str(raised.value)


def test_indicators_module_when_imported_then_does_not_load_talib() -> None:
    code = "import sys, tickstep.indicators; print('talib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
