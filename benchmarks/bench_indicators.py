"""Indicators against TA-Lib on one million candles, timed in the same run.

Ratios, not absolute times, are what carry across machines: a shared or throttled CPU slows
both sides, and ours and TA-Lib's calls alternate, so a burst of load hits both. Goal:
within 1.5x of TA-Lib; bar: 3x. Each row names the processor's SIMD level, which picks the
clone of our compiled loops that runs (x86-64-v4 with AVX-512, v3 with AVX2, else the
baseline; decision 0015), and the OpenBLAS kernel numpy has. No indicator of ours calls
BLAS any more (every one is a C loop; TA-Lib uses no BLAS either), so the table measured
again under each other kernel the processor can run (AVX2's Haswell, AVX-512's SkylakeX,
each in a fresh interpreter with ``OPENBLAS_CORETYPE`` set) should agree with the first: it
shows that nothing depends on the kernel.
BLAS threads are left as configured (``OPENBLAS_NUM_THREADS=1`` shows the single-vCPU
Lambda case). A last line gives the SMA's and the bands' ratios at a long period (200),
where a cost that grew with the period would show.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import talib

from benchmarks import machine
from tickstep import indicators

CANDLES = 1_000_000
REPEATS = 7
GOAL = 1.5
BAR = 3.0
LONG_PERIOD = 200
# Set in the interpreters started for the other kernels, so they do not start more.
_ONE_KERNEL = "TICKSTEP_BENCH_ONE_KERNEL"


def _random_walk(n: int, seed: int = 20240601) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n)))
    high = close * (1.0 + rng.random(n) * 2e-3)
    low = close * (1.0 - rng.random(n) * 2e-3)
    return high, low, close


def _best_ms(
    ours: Callable[[], object], theirs: Callable[[], object], repeats: int = REPEATS
) -> tuple[float, float]:
    """Best times of ours and TA-Lib's, the two calls alternating (after one warm-up each)."""
    ours()
    theirs()
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for k, run in enumerate((ours, theirs)):
            start = time.perf_counter()
            run()
            best[k] = min(best[k], time.perf_counter() - start)
    return best[0] * 1e3, best[1] * 1e3


def _verdict(ratio: float) -> str:
    if ratio <= GOAL:
        return "meets goal"
    if ratio <= BAR:
        return "within bar"
    return "FAILS bar"


def report() -> None:
    """The table for the BLAS kernel this interpreter runs."""
    high, low, close = _random_walk(CANDLES)
    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("sma(20)", lambda: indicators.sma(close, 20), lambda: talib.SMA(close, 20)),
        ("ema(20)", lambda: indicators.ema(close, 20), lambda: talib.EMA(close, 20)),
        ("rsi(14)", lambda: indicators.rsi(close, 14), lambda: talib.RSI(close, 14)),
        ("macd(12,26,9)", lambda: indicators.macd(close), lambda: talib.MACD(close, 12, 26, 9)),
        (
            "bbands(20,2)",
            lambda: indicators.bbands(close, 20, 2.0),
            lambda: talib.BBANDS(close, 20, 2.0, 2.0),
        ),
        (
            "atr(14)",
            lambda: indicators.atr(high, low, close, 14),
            lambda: talib.ATR(high, low, close, 14),
        ),
    ]
    simd = machine.simd_level()
    kernel = machine.blas()[1]
    print(f"machine: {machine.describe()}")
    print(
        f"{CANDLES:,} candles, best of {REPEATS}, ours and TA-Lib alternating; "
        f"goal {GOAL}x, bar {BAR}x of TA-Lib"
    )
    print(
        f"{'indicator':<15}{'ours ms':>10}{'talib ms':>10}{'ratio':>8}  "
        f"{'simd':<9}{'blas kernel':<13}verdict"
    )
    for name, ours, theirs in cases:
        ours_ms, talib_ms = _best_ms(ours, theirs)
        ratio = ours_ms / talib_ms
        print(
            f"{name:<15}{ours_ms:>10.2f}{talib_ms:>10.2f}{ratio:>7.2f}x  "
            f"{simd:<9}{kernel:<13}{_verdict(ratio)}"
        )
    print(f"long period ({LONG_PERIOD}), ratios: " + _long_period_ratios(close))


def _long_period_ratios(close: np.ndarray) -> str:
    """The SMA and the bands at a long period: their cost must not grow with it."""
    p = LONG_PERIOD
    sma = _best_ms(lambda: indicators.sma(close, p), lambda: talib.SMA(close, p))
    bands = _best_ms(
        lambda: indicators.bbands(close, p, 2.0), lambda: talib.BBANDS(close, p, 2.0, 2.0)
    )
    return f"sma {sma[0] / sma[1]:.2f}x, bbands {bands[0] / bands[1]:.2f}x"


def main() -> None:
    report()
    if os.environ.get(_ONE_KERNEL):
        return
    current = machine.blas()[1].lower()
    for kernel in machine.runnable_kernels():
        if kernel.lower() == current:
            continue
        print(f"\nagain under OpenBLAS's {kernel} kernel (fresh interpreter):", flush=True)
        env = {**os.environ, "OPENBLAS_CORETYPE": kernel, _ONE_KERNEL: "1"}
        subprocess.run([sys.executable, "-m", "benchmarks.bench_indicators"], env=env, check=True)


if __name__ == "__main__":
    main()
