"""Backtests on the live code path: the strategy's own signal series, filled at the next open.

The signals come from :meth:`Strategy.series`, the very computation whose last element is the
live signal, so a backtest cannot use different indicators from the pipeline. The semantics are
the ones users of the established open-source bots expect (issue 5, "tickstep backtest"):

1. Gaps: a candle missing inside a market's range is filled as open = high = low = close = the
   previous close, volume 0; the count is reported as a warning (:func:`fill_gaps`).
2. Warm-up: candles ``0 .. warmup - 1`` (``Strategy.warmup``, the longest indicator period) are
   the warm-up; a signal computed at their close is never acted on. For the built-in
   strategies the first candle that can signal at all is ``warmup``, so this guard never hides
   a signal the live pipeline would act on; it stops a strategy that signals early.
3. Next open: a signal at candle i's close fills at candle i + 1's open, and the trade's time
   is candle i + 1's open time.
4. One long position per market. On a fill candle j (signal j - 1), an entry is considered
   before an exit. A strategy emits one action per candle, so an entry and an exit never
   compete for the same fill; what the order means is that a position entered at candle j's
   open is already open when candle j's close is evaluated. So BUY at i then SELL at i + 1 is
   a one-candle trade, open[i + 1] -> open[i + 2] (the SELL is not lost), and SELL at i then
   BUY at i + 1 while long exits at open[i + 1] and re-enters at open[i + 2]: an exit and a
   new entry never share a candle. A BUY while long and a SELL while flat do nothing.
5. No entry on the last candle (a BUY at the second-to-last close is ignored); a position
   still open is closed at the last candle's open with exit reason ``force_exit``.
6. Amount = stake / fill price in the base currency, to Decimal's 28 significant digits, and
   truncated to ``amount_step`` only when one is given (as ``amount_to_precision`` does).
7. Fees on both sides, in the quote currency: cost = amount x entry x (1 + fee), proceeds =
   amount x exit x (1 - fee), pnl = proceeds - cost.

Per-candle work (gap filling, signals, pairing entries with exits, the equity curve, the
summary statistics) is numpy over whole arrays; only the trades, which are few, are a Python
loop, in exact ``Decimal`` arithmetic (a context that raises on any inexact result).

Portfolio conventions (the summary): the starting equity is stake x markets, the most the run
can have committed at once; equity at a candle's close is that plus the realised pnl plus each
open position marked at the close net of the exit fee (amount x close x (1 - fee) - cost), in
float64. Sharpe is over daily (UTC) returns of that curve, annualised by sqrt(365), risk-free
0. Exposure is the share of candle closes, over all markets, at which a position was open.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_DOWN, Context, Decimal, Inexact
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import numpy as np
import numpy.typing as npt

from tickstep.candles import CandleArrays, FloatArray, IntArray, load_csv, market_from_filename
from tickstep.models import Market
from tickstep.strategies import ConfigError, Strategy
from tickstep.strategies.base import BUY

__all__ = [
    "BacktestError",
    "BacktestResult",
    "BacktestSettings",
    "MarketResult",
    "ProgressBar",
    "Trade",
    "backtest_market",
    "fill_gaps",
    "iso_utc",
    "pair_signals",
    "run_backtest",
]

DAY_MS = 86_400_000
DEFAULT_EQUITY_POINTS = 10_000
# Multiplication and addition are exact in this context, and anything inexact raises: the
# money in a trade is exact once the amount is fixed.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact])
# The amount's division: Decimal's default 28 significant digits, whatever the caller's context.
_AMOUNT = Context(prec=28)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BacktestError(ConfigError):
    """Input a backtest cannot use (file, header, settings); the message names it."""


def iso_utc(ms: int) -> str:
    """``1515560100000`` -> ``2018-01-10T04:55:00Z`` (ISO 8601, UTC, exact to the ms)."""
    text = (_EPOCH + timedelta(milliseconds=ms)).isoformat()
    return text.replace("+00:00", "Z")


def _exact_sum(values: Iterable[Decimal]) -> Decimal:
    total = Decimal(0)
    for value in values:
        total = _EXACT.add(total, value)
    return total


def _text(value: Decimal) -> str:
    """Plain notation for JSON (``50``, not ``5E+1``), all digits kept."""
    return f"{value:f}"


@dataclass(frozen=True, slots=True)
class BacktestSettings:
    """Stake per trade (quote currency), fee rate per side, and an optional amount step."""

    stake: Decimal
    fee: Decimal
    amount_step: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.stake.is_finite() or self.stake <= 0:
            raise BacktestError(f"--stake must be a positive amount, got {self.stake}")
        if not self.fee.is_finite() or not 0 <= self.fee < 1:
            raise BacktestError(f"--fee must be a rate in [0, 1), got {self.fee}")
        if self.amount_step is not None and (
            not self.amount_step.is_finite() or self.amount_step <= 0
        ):
            raise BacktestError(f"--amount-step must be positive, got {self.amount_step}")

    def amount_for(self, price: Decimal) -> Decimal:
        amount = _AMOUNT.divide(self.stake, price)
        if self.amount_step is not None:
            steps = _AMOUNT.divide(amount, self.amount_step).to_integral_value(ROUND_DOWN)
            amount = _EXACT.multiply(steps, self.amount_step)
        return amount


class Trade(NamedTuple):
    """One round trip; ``entry_index`` and ``exit_index`` are the fill candles (a tuple:
    cheap to build by the ten thousand)."""

    market: Market
    entry_index: int
    exit_index: int
    entry_time: int
    exit_time: int
    entry_price: Decimal
    exit_price: Decimal
    amount: Decimal
    fee: Decimal
    cost: Decimal
    proceeds: Decimal
    pnl: Decimal
    exit_reason: str

    def to_dict(self) -> dict[str, str]:
        return {
            "market": self.market.key,
            "entry_time": iso_utc(self.entry_time),
            "exit_time": iso_utc(self.exit_time),
            "entry_price": _text(self.entry_price),
            "exit_price": _text(self.exit_price),
            "amount": _text(self.amount),
            "fee": _text(self.fee),
            "pnl": _text(self.pnl),
            "exit_reason": self.exit_reason,
        }


@dataclass(frozen=True, slots=True)
class MarketResult:
    """One market's trades and its per-candle equity contribution (pnl so far, float64)."""

    market: Market
    start_time: int
    step_ms: int
    filled: int
    trades: list[Trade]
    equity: FloatArray
    held_candles: int

    @property
    def candles(self) -> int:
        return len(self.equity)

    @property
    def pnl(self) -> Decimal:
        return _exact_sum(t.pnl for t in self.trades)

    @property
    def timestamps(self) -> IntArray:
        return self.start_time + self.step_ms * np.arange(self.candles, dtype=np.int64)


@dataclass
class BacktestResult:
    """Every market's result and the portfolio view the summary is computed from."""

    settings: BacktestSettings
    strategy: str
    markets: list[MarketResult]
    warnings: list[str] = field(default_factory=list)

    @property
    def trades(self) -> list[Trade]:
        return [t for m in self.markets for t in m.trades]

    @property
    def start_equity(self) -> Decimal:
        return _EXACT.multiply(self.settings.stake, Decimal(len(self.markets)))

    @property
    def candles(self) -> int:
        return sum(m.candles for m in self.markets)

    def equity_curve(self) -> tuple[IntArray, FloatArray]:
        """Portfolio equity at every candle close of any market (each market's last value
        carried forward, 0 before its first candle), plus the starting equity."""
        if not self.markets:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        first = self.markets[0]
        aligned = all(
            m.step_ms == first.step_ms and (m.start_time - first.start_time) % first.step_ms == 0
            for m in self.markets
        )
        if aligned:
            begin = min(m.start_time for m in self.markets)
            end = max(m.start_time + (m.candles - 1) * m.step_ms for m in self.markets)
            times = np.arange(begin, end + 1, first.step_ms, dtype=np.int64)
        else:
            times = np.unique(np.concatenate([m.timestamps for m in self.markets]))
        total = np.full(len(times), float(self.start_equity))
        for m in self.markets:
            if aligned:
                lo = (m.start_time - times[0]) // first.step_ms
                total[lo : lo + m.candles] += m.equity
                total[lo + m.candles :] += m.equity[-1]
            else:
                at = np.searchsorted(m.timestamps, times, side="right") - 1
                total += np.where(at >= 0, m.equity[np.maximum(at, 0)], 0.0)
        return times, total

    def summary(self) -> dict[str, Any]:
        trades = self.trades
        pnl = _exact_sum(t.pnl for t in trades)
        fees = _exact_sum(t.fee for t in trades)
        start = self.start_equity
        wins = sum(1 for t in trades if t.pnl > 0)
        times, equity = self.equity_curve()
        candles = self.candles
        return {
            "strategy": self.strategy,
            "markets": len(self.markets),
            "candles": candles,
            "filled_candles": sum(m.filled for m in self.markets),
            "trades": len(trades),
            "wins": wins,
            "win_rate": wins / len(trades) if trades else None,
            "stake": _text(self.settings.stake),
            "fee": _text(self.settings.fee),
            "start_equity": _text(start),
            "end_equity": _text(_EXACT.add(start, pnl)),
            "total_pnl": _text(pnl),
            "total_return": float(pnl / start) if self.markets else None,
            "max_drawdown": _max_drawdown(equity, float(start)),
            "sharpe": _daily_sharpe(times, equity, float(start)),
            "exposure": sum(m.held_candles for m in self.markets) / candles if candles else 0.0,
            "fees_paid": _text(fees),
        }

    def to_dict(self, equity_points: int = DEFAULT_EQUITY_POINTS) -> dict[str, Any]:
        """The ``--json`` document; ``equity_points`` 0 keeps every candle close."""
        times, equity = self.equity_curve()
        every = 1 if equity_points <= 0 else max(1, math.ceil(len(times) / equity_points))
        keep = np.arange(0, len(times), every)
        if len(times) and keep[-1] != len(times) - 1:
            keep = np.append(keep, len(times) - 1)
        return {
            "summary": self.summary(),
            "markets": {
                m.market.key: {
                    "candles": m.candles,
                    "filled_candles": m.filled,
                    "trades": len(m.trades),
                    "pnl": _text(m.pnl),
                }
                for m in self.markets
            },
            "trades": [t.to_dict() for t in self.trades],
            "equity_curve": {
                "rule": (
                    "[candle open time, portfolio equity in quote at its close] for "
                    + ("every candle" if every == 1 else f"every {every}th candle and the last")
                ),
                "every": every,
                "points": [[iso_utc(int(times[i])), float(equity[i])] for i in keep],
            },
            "warnings": self.warnings,
        }


def _max_drawdown(equity: FloatArray, start: float) -> float:
    """Largest fall from a running peak, as a fraction of that peak (0 when never below)."""
    if len(equity) == 0 or start <= 0:
        return 0.0
    peak = np.maximum.accumulate(np.maximum(equity, start))
    return float(np.max((peak - equity) / peak))


def _daily_sharpe(times: IntArray, equity: FloatArray, start: float) -> float | None:
    """Mean over standard deviation of daily returns, x sqrt(365); None under two days."""
    if len(times) == 0:
        return None
    day = times // DAY_MS
    last_of_day = np.flatnonzero(np.append(day[1:] != day[:-1], True))
    closes = np.concatenate([[start], equity[last_of_day]])
    returns = np.diff(closes) / closes[:-1]
    if len(returns) < 2:
        return None
    std = float(np.std(returns, ddof=1))
    if std == 0.0:
        return None
    return float(np.mean(returns)) / std * math.sqrt(365.0)


def fill_gaps(candles: CandleArrays, step_ms: int) -> tuple[CandleArrays, int]:
    """Candles on a gapless grid of ``step_ms`` from the first to the last, and how many were
    missing: a missing candle is open = high = low = close = the previous close, volume 0."""
    ts = candles.timestamp
    n = len(ts)
    if n == 0:
        return candles, 0
    offsets = ts - ts[0]
    off_grid = np.flatnonzero(offsets % step_ms)
    if len(off_grid):
        at, first = iso_utc(int(ts[off_grid[0]])), iso_utc(int(ts[0]))
        raise BacktestError(f"candle at {at} is not on the {step_ms} ms grid from {first}")
    slots = offsets // step_ms
    total = int(slots[-1]) + 1
    if total == n:
        return candles, 0
    # source[k]: the real candle at or before slot k (its close carries into the gap).
    present = np.zeros(total, dtype=np.bool_)
    present[slots] = True
    source = np.zeros(total, dtype=np.int64)
    source[slots] = np.arange(n, dtype=np.int64)
    np.maximum.accumulate(source, out=source)
    close = candles.close[source]
    filled = CandleArrays(
        ts[0] + step_ms * np.arange(total, dtype=np.int64),
        np.where(present, candles.open[source], close),
        np.where(present, candles.high[source], close),
        np.where(present, candles.low[source], close),
        close,
        np.where(present, candles.volume[source], 0.0),
    )
    return filled, total - n


def pair_signals(action: npt.NDArray[np.int8], warmup: int) -> tuple[IntArray, IntArray, bool]:
    """Fill candles of every entry and exit, and whether the last exit is the force exit.

    One long position at a time makes the trades the points where the run of non-HOLD actions
    changes sign, starting flat (as if after a SELL): a BUY while long or a SELL while flat
    repeats the previous sign and is dropped. Signals are masked first for the warm-up, the
    last candle (nothing to fill at) and, for BUY, the second-to-last (no entry on the last).
    """
    n = len(action)
    usable = np.zeros(n, dtype=np.int8)
    lo = max(warmup, 0)
    if n - 1 > lo:
        usable[lo : n - 1] = action[lo : n - 1]
    if n >= 2 and usable[n - 2] == BUY:
        usable[n - 2] = 0
    signal_at = np.flatnonzero(usable)
    signs = usable[signal_at]
    flips = signal_at[signs != np.concatenate([np.array([-1], dtype=np.int8), signs[:-1]])]
    entries = flips[0::2] + 1
    exits = flips[1::2] + 1
    forced = len(entries) > len(exits)
    if forced:
        exits = np.append(exits, n - 1)
    return entries.astype(np.int64), exits.astype(np.int64), forced


def backtest_market(
    market: Market,
    candles: CandleArrays,
    strategy: Strategy[Any],
    settings: BacktestSettings,
) -> tuple[MarketResult, str | None]:
    """One market's trades and equity; the second value is the gap warning, if any."""
    candles, filled = fill_gaps(candles, market.timeframe_ms)
    warning = None
    if filled:
        warning = (
            f"{market.key}: {filled} missing candle{'s' if filled != 1 else ''} filled with "
            "the previous close (volume 0)"
        )
    action = strategy.series(candles).action
    entries, exits, forced = pair_signals(action, strategy.warmup)
    fee = settings.fee
    buy_rate, sell_rate = _EXACT.add(1, fee), _EXACT.subtract(1, fee)
    multiply, subtract = _EXACT.multiply, _EXACT.subtract
    last = len(entries) - 1
    trades: list[Trade] = []
    for k, (e, x, entry_open, exit_open, entry_time, exit_time) in enumerate(
        zip(
            entries.tolist(),
            exits.tolist(),
            candles.open[entries].tolist(),
            candles.open[exits].tolist(),
            candles.timestamp[entries].tolist(),
            candles.timestamp[exits].tolist(),
            strict=True,
        )
    ):
        # The shortest decimal that reads back to the float: the CSV's text, 0.0994766.
        entry, exit_ = Decimal(repr(entry_open)), Decimal(repr(exit_open))
        if entry <= 0 or exit_ <= 0:
            bad = entry if entry <= 0 else exit_
            raise BacktestError(f"{market.key}: a fill price must be positive, got {bad}")
        amount = settings.amount_for(entry)
        if amount <= 0:
            raise BacktestError(
                f"{market.key}: a stake of {settings.stake} buys less than one amount step "
                f"({settings.amount_step}) at {entry}"
            )
        entry_value, exit_value = multiply(amount, entry), multiply(amount, exit_)
        cost, proceeds = multiply(entry_value, buy_rate), multiply(exit_value, sell_rate)
        trades.append(
            Trade(
                market,
                e,
                x,
                entry_time,
                exit_time,
                entry,
                exit_,
                amount,
                multiply(_EXACT.add(entry_value, exit_value), fee),
                cost,
                proceeds,
                subtract(proceeds, cost),
                "force_exit" if forced and k == last else "exit_signal",
            )
        )
    equity = _equity(candles.close, entries, exits, trades, float(fee))
    held = int(np.sum(exits - entries))
    result = MarketResult(
        market=market,
        start_time=int(candles.timestamp[0]),
        step_ms=market.timeframe_ms,
        filled=filled,
        trades=trades,
        equity=equity,
        held_candles=held,
    )
    return result, warning


def _equity(
    close: FloatArray, entries: IntArray, exits: IntArray, trades: list[Trade], fee: float
) -> FloatArray:
    """Realised pnl so far plus the open position marked at the close, net of the exit fee.

    A trade is open at the closes of candles ``entry .. exit - 1`` and realised from the
    exit candle on (it exits at that candle's open)."""
    n = len(close)
    if not trades:
        return np.zeros(n, dtype=np.float64)
    amount = np.array([float(t.amount) for t in trades])
    cost = np.array([float(t.cost) for t in trades])
    pnl = np.array([float(t.pnl) for t in trades])
    starts = np.zeros(n, dtype=np.int64)
    starts[entries] = 1
    ends = np.zeros(n, dtype=np.int64)
    ends[exits] = 1
    trade_no = np.cumsum(starts) - 1
    is_open = trade_no >= np.cumsum(ends)  # entered more often than exited
    which = np.maximum(trade_no, 0)
    realised = np.zeros(n, dtype=np.float64)
    realised[exits] = pnl
    np.cumsum(realised, out=realised)
    marked = amount[which] * close * (1.0 - fee) - cost[which]
    return np.where(is_open, marked + realised, realised)


class ProgressBar:
    """A one-line bar, redrawn per file: ``[#####-----] 5/10 files  2,628,000 candles``."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width

    def __call__(self, done: int, total: int, candles: int, label: str) -> None:
        filled = self.width * done // max(total, 1)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {done}/{total} files  {candles:,} candles  {label}\x1b[K")
        if done == total:
            self.stream.write("\n")
        self.stream.flush()


Progress = Callable[[int, int, int, str], None]


def run_backtest(
    paths: Sequence[str | Path],
    strategy: Strategy[Any],
    settings: BacktestSettings,
    progress: Progress | None = None,
) -> BacktestResult:
    """Backtest ``strategy`` over one market per candle file.

    File names are checked before any file is read; files are then read and simulated one
    at a time, so only one market's candles are in memory at once.
    """
    if not paths:
        raise BacktestError("--data: at least one candle file is needed")
    markets: list[Market] = []
    for path in paths:
        try:
            market = market_from_filename(path)
        except ValueError as exc:
            raise BacktestError(str(exc)) from exc
        if market in markets:
            raise BacktestError(f"{Path(path).name}: {market.key} is given twice")
        markets.append(market)
    result = BacktestResult(settings=settings, strategy=strategy.name, markets=[])
    candles_done = 0
    for done, (path, market) in enumerate(zip(paths, markets, strict=True)):
        if progress is not None:
            progress(done, len(paths), candles_done, Path(path).name)
        if not Path(path).is_file():
            raise BacktestError(f"{path}: no such candle file")
        try:
            candles = load_csv(path)
            market_result, warning = backtest_market(market, candles, strategy, settings)
        except BacktestError as exc:
            raise BacktestError(f"{Path(path).name}: {exc}") from exc
        except ValueError as exc:
            raise BacktestError(str(exc)) from exc
        del candles
        result.markets.append(market_result)
        if warning:
            result.warnings.append(warning)
        candles_done += market_result.candles
        if progress is not None:
            progress(done + 1, len(paths), candles_done, Path(path).name)
    return result


def render_summary(result: BacktestResult) -> str:
    """The end-of-run table: per market, then the portfolio summary."""
    s = result.summary()
    lines = [
        f"tickstep backtest: {s['strategy']}, {s['markets']} market(s), {s['candles']:,} candles",
        "",
        f"{'market':<28}{'candles':>10}{'filled':>8}{'trades':>8}{'pnl':>18}",
    ]
    for m in result.markets:
        lines.append(
            f"{m.market.key:<28}{m.candles:>10,}{m.filled:>8}{len(m.trades):>8}"
            f"{float(m.pnl):>18.8f}"
        )

    def pct(value: object) -> str:
        return "n/a" if value is None else f"{float(str(value)) * 100:.2f}%"

    sharpe = "n/a" if s["sharpe"] is None else f"{s['sharpe']:.2f}"
    lines += [
        "",
        f"trades {s['trades']}, win rate {pct(s['win_rate'])}, total return "
        f"{pct(s['total_return'])}, max drawdown {pct(s['max_drawdown'])}, Sharpe {sharpe}, "
        f"exposure {pct(s['exposure'])}",
        f"equity {s['start_equity']} -> {float(s['end_equity']):.8f}, "
        f"fees paid {float(s['fees_paid']):.8f}",
    ]
    return "\n".join(lines)


def write_json(result: BacktestResult, path: str | Path, equity_points: int) -> None:
    Path(path).write_text(json.dumps(result.to_dict(equity_points), indent=2) + "\n")
