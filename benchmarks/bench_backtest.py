"""A whole backtest (load, indicators, signals, trades, summary) over 10 markets x 1 year of
1-minute candles: candles per second and peak memory. Then the whole ``tickstep backtest``
command (interpreter start, imports, work, output) over the ten real ``*-BTC_5m.csv`` files
in ``../shared/data/candles``, as a person runs it, for the comparison with freqtrade's
``backtesting`` in docs/decisions/0014-backtest-speed.md (freqtrade itself is not installed
here: that record has how to time it beside this figure).

The candles are a seeded random walk written as CSVs to a temporary directory (not timed).
Speed is the best of a few runs; peak memory is a separate run under ``tracemalloc`` (it
slows Python code), given also as a multiple of the bytes of the candle arrays themselves
(6 float64/int64 columns per candle). Goal: 2,000,000 candles/s, memory a few times the
arrays.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

import numpy as np

from tickstep.backtest import BacktestSettings, run_backtest
from tickstep.candles import CSV_HEADER
from tickstep.strategies import StrategyConfig, build_strategy

ROOT = Path(__file__).resolve().parents[1]
SHARED_CANDLES = ROOT.parent / "shared" / "data" / "candles"
COMMAND_REPEATS = 3
MARKETS = 10
CANDLES = 365 * 24 * 60
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
REPEATS = 3
GOAL = 2_000_000


def write_market(path: Path, n: int, seed: int) -> None:
    """A geometric random walk; open is the previous close, high/low bracket both."""
    rng = np.random.default_rng(seed)
    close = 0.05 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1.0 + rng.random(n) * 1e-3)
    low = np.minimum(open_, close) * (1.0 - rng.random(n) * 1e-3)
    volume = rng.random(n) * 1000.0
    timestamp = START_MS + 60_000 * np.arange(n, dtype=np.int64)
    columns = np.column_stack([timestamp, open_, high, low, close, volume])
    with path.open("w") as handle:
        handle.write(CSV_HEADER + "\n")
        np.savetxt(handle, columns, fmt=["%d"] + ["%.8f"] * 5, delimiter=",")


def backtest_command(files: list[Path]) -> list[str]:
    """The command 0014 times: sma_cross 10/30, stake 0.01, fee 0.001."""
    return [
        sys.executable, "-m", "tickstep.cli", "backtest", "--data", *map(str, files),
        "--strategy", "sma_cross", "--param", "fast=10", "--param", "slow=30",
        "--stake", "0.01", "--fee", "0.001",
    ]  # fmt: skip


def time_command() -> None:
    files = sorted(SHARED_CANDLES.glob("*-BTC_5m.csv"))
    if not files:
        print(f"\nwhole command: skipped, no *-BTC_5m.csv in {SHARED_CANDLES}")
        return
    subprocess.run(backtest_command(files), capture_output=True, check=True)  # warm bytecode
    times = []
    for _ in range(COMMAND_REPEATS):
        start = time.perf_counter()
        subprocess.run(backtest_command(files), capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    print(
        f"\nwhole `tickstep backtest` command, sma_cross 10/30 over {len(files)} "
        f"*-BTC_5m.csv files: best of {COMMAND_REPEATS} {min(times):.2f} s "
        f"(runs {', '.join(f'{t:.2f}' for t in times)}); freqtrade's figure: decision 0014"
    )


def main() -> None:
    strategy = build_strategy(StrategyConfig(name="sma_cross", params={"fast": 10, "slow": 30}))
    settings = BacktestSettings(stake=Decimal("0.01"), fee=Decimal("0.001"))
    with tempfile.TemporaryDirectory(prefix="bench_backtest_") as tmp:
        paths = [Path(tmp) / f"M{k}-BTC_1m.csv" for k in range(MARKETS)]
        for k, path in enumerate(paths):
            write_market(path, CANDLES, seed=20240601 + k)
        total = MARKETS * CANDLES
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        print(f"{MARKETS} markets x {CANDLES:,} 1m candles = {total:,} ({megabytes:.0f} MB of CSV)")

        best = float("inf")
        trades = 0
        for _ in range(REPEATS):
            start = time.perf_counter()
            result = run_backtest(paths, strategy, settings)
            summary = result.summary()
            best = min(best, time.perf_counter() - start)
            trades = summary["trades"]
        rate = total / best
        verdict = "meets goal" if rate >= GOAL else "BELOW goal"
        print(
            f"best of {REPEATS}: {best:.2f} s, {rate:,.0f} candles/s, {verdict}; {trades:,} trades"
        )

        del result
        tracemalloc.start()
        result = run_backtest(paths, strategy, settings)
        result.summary()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        arrays = total * 6 * 8
        print(
            f"peak memory {peak / 1e6:,.0f} MB (tracemalloc) = {peak / arrays:.2f}x the candle "
            f"arrays ({arrays / 1e6:,.0f} MB for all markets)"
        )
    time_command()


if __name__ == "__main__":
    main()
