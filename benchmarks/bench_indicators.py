"""Indicators against TA-Lib on one million candles, timed in the same run.

Ratios, not absolute times, are what carry across machines: a shared or throttled CPU slows
both sides. Goal: within 1.5x of TA-Lib; bar: 3x. BLAS threads are left as configured
(``OPENBLAS_NUM_THREADS=1`` shows the single-vCPU Lambda case).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import talib

from tickstep import indicators

CANDLES = 1_000_000
REPEATS = 7
GOAL = 1.5
BAR = 3.0


def _random_walk(n: int, seed: int = 20240601) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n)))
    high = close * (1.0 + rng.random(n) * 2e-3)
    low = close * (1.0 - rng.random(n) * 2e-3)
    return high, low, close


def _best_ms(run: Callable[[], object], repeats: int = REPEATS) -> float:
    run()  # warm caches and allocator
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _verdict(ratio: float) -> str:
    if ratio <= GOAL:
        return "meets goal"
    if ratio <= BAR:
        return "within bar"
    return "FAILS bar"


def main() -> None:
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
    print(f"{CANDLES:,} candles, best of {REPEATS}; goal {GOAL}x, bar {BAR}x of TA-Lib")
    print(f"{'indicator':<15}{'ours ms':>10}{'talib ms':>10}{'ratio':>8}  verdict")
    for name, ours, theirs in cases:
        ours_ms = _best_ms(ours)
        talib_ms = _best_ms(theirs)
        ratio = ours_ms / talib_ms
        print(f"{name:<15}{ours_ms:>10.2f}{talib_ms:>10.2f}{ratio:>7.2f}x  {_verdict(ratio)}")


if __name__ == "__main__":
    main()
