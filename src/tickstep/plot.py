"""``tickstep backtest --plot``: a PNG report of a backtest, drawn with matplotlib.

The figure, top to bottom: a title (the strategy and the summary's key figures), the portfolio
equity curve, its drawdown below a running peak in percent (shaded; the peak and the fraction
are the summary's ``max_drawdown`` ones), then one panel per market, at most
:data:`MAX_MARKET_PANELS` (a note in the title names how many were left out), with the close
price and every trade: entries as green upward triangles at (entry time, entry price), exits as
red downward triangles at (exit time, exit price), and force exits (the position still open at
the end) as orange diamonds. Time is on a shared axis in UTC dates.

Downsampling: a line is never drawn with more than about two points per pixel column of the
figure. A series longer than that is cut into :data:`WIDTH_PX` buckets of consecutive points
and each bucket keeps its minimum and its maximum (in time order), plus the first and the last
point (:func:`minmax_indices`, numpy over the whole array). At one bucket per pixel column the
drawn line covers the same pixels as the full one (every spike is kept, unlike striding), and a
year of 1-minute candles (525,600 closes) becomes at most 2 x 1,400 + 2 points. Trade markers
are never downsampled. Price panels re-read a market's candle file only when it is drawn, one
file at a time, and keep only the downsampled points.

matplotlib is an optional dependency (``pip install 'tickstep[plot]'``) and is imported only
inside the functions that draw, through ``Figure`` and ``FigureCanvasAgg`` directly: no pyplot,
no global backend state, nothing imported by the CLI's other commands or the Lambda functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tickstep.backtest import BacktestResult, MarketResult, iso_utc
from tickstep.candles import CandleArrays, FloatArray, IntArray, load_csv, market_from_filename
from tickstep.models import Market
from tickstep.strategies import ConfigError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "INSTALL_HINT",
    "MAX_MARKET_PANELS",
    "WIDTH_PX",
    "PlotError",
    "PlotReport",
    "build_figure",
    "candle_files",
    "figure_size_px",
    "minmax_indices",
    "plot_backtest",
    "require_matplotlib",
]

INSTALL_HINT = "pip install 'tickstep[plot]'"
MAX_MARKET_PANELS = 6
DPI = 100
WIDTH_PX = 1400
# Heights in inches, multiples of 1/2 so that inches x DPI is an exact whole number of pixels.
_HEADER_IN = 1.0
_EQUITY_IN = 3.0
_DRAWDOWN_IN = 1.5
_MARKET_IN = 2.5
_DAY_MS = 86_400_000

ENTRY_STYLE: dict[str, Any] = {"marker": "^", "color": "tab:green", "label": "entry"}
EXIT_STYLE: dict[str, Any] = {"marker": "v", "color": "tab:red", "label": "exit"}
FORCE_EXIT_STYLE: dict[str, Any] = {"marker": "D", "color": "darkorange", "label": "force exit"}

PriceSource = Callable[[Market], CandleArrays | None]


class PlotError(ConfigError):
    """``--plot`` cannot be written (matplotlib missing, a bad path); the message says why."""


def require_matplotlib() -> None:
    """Raise :class:`PlotError` with the install command when matplotlib is not importable."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotError(
            f"--plot needs matplotlib, which is not installed; install it with {INSTALL_HINT}"
        ) from None


def candle_files(paths: Sequence[str | Path]) -> PriceSource:
    """A price source reading each market's candles from its file (``ETH-BTC_5m.csv`` for
    ETH/BTC on 5m) when asked, so only the market being drawn is in memory."""
    by_market = {market_from_filename(p): Path(p) for p in paths}

    def load(market: Market) -> CandleArrays | None:
        path = by_market.get(market)
        return None if path is None else load_csv(path)

    return load


def figure_size_px(market_panels: int) -> tuple[int, int]:
    """Width and height of the PNG, in pixels, for this many market panels."""
    height = _HEADER_IN + _EQUITY_IN + _DRAWDOWN_IN + _MARKET_IN * market_panels
    return WIDTH_PX, round(height * DPI)


def minmax_indices(values: FloatArray, buckets: int = WIDTH_PX) -> IntArray:
    """Indices (ascending) of the points that draw ``values`` at ``buckets`` pixel columns.

    Every index when there are at most ``2 * buckets`` values; otherwise the values are cut
    into ``buckets`` runs of ``ceil(n / buckets)`` (the last run shorter), and each run keeps
    the index of its minimum and of its maximum; the first and the last index are always
    kept. At most ``2 * buckets + 2`` indices.
    """
    n = len(values)
    if n <= 2 * buckets:
        return np.arange(n, dtype=np.int64)
    size = -(-n // buckets)
    runs = -(-n // size)
    padded = np.empty(runs * size, dtype=np.float64)
    padded[:n] = values
    padded[n:] = values[-1]  # the padding repeats the last value; its index is clipped below
    blocks = padded.reshape(runs, size)
    start = np.arange(runs, dtype=np.int64) * size
    keep = np.concatenate(
        [
            start + np.argmin(blocks, axis=1),
            start + np.argmax(blocks, axis=1),
            np.array([0, n - 1], dtype=np.int64),
        ]
    )
    return np.unique(np.minimum(keep, n - 1))


@dataclass(frozen=True)
class PlotReport:
    """What was drawn: the figure (its axes and artists can be inspected), the PNG's size,
    the markets drawn and left out, the trade markers drawn, and the longest line drawn."""

    path: Path | None
    figure: Figure
    width_px: int
    height_px: int
    markets_drawn: int
    markets_left_out: int
    entries: int
    exits: int
    force_exits: int
    max_line_points: int


def plot_backtest(
    result: BacktestResult,
    path: str | Path,
    *,
    title: str | None = None,
    prices: PriceSource | None = None,
) -> PlotReport:
    """Draw ``result`` (see the module docstring) and write it to ``path`` as a PNG.

    ``prices`` gives a market's candles for its close line (:func:`candle_files` reads them
    from the backtest's files); without it, or when it returns None, a market panel shows the
    trades only. ``title`` defaults to the strategy name.
    """
    report = build_figure(result, title=title, prices=prices)
    target = Path(path)
    report.figure.savefig(target, format="png", dpi=DPI)
    return replace(report, path=target)


def _percent(value: object) -> str:
    return "n/a" if value is None else f"{float(str(value)) * 100:.2f}%"


def _title_lines(result: BacktestResult, title: str | None, left_out: list[Market]) -> str:
    s = result.summary()
    span = ""
    if result.markets:
        first = min(m.start_time for m in result.markets)
        last = max(m.start_time + (m.candles - 1) * m.step_ms for m in result.markets)
        span = f", {iso_utc(first)[:10]} to {iso_utc(last)[:10]} UTC"
    sharpe = "n/a" if s["sharpe"] is None else f"{s['sharpe']:.2f}"
    lines = [
        title or f"tickstep backtest: {result.strategy}",
        f"{s['markets']} market(s){span}  |  trades {s['trades']}  |  total return "
        f"{_percent(s['total_return'])}  |  max drawdown {_percent(s['max_drawdown'])}  |  "
        f"win rate {_percent(s['win_rate'])}  |  Sharpe {sharpe}",
    ]
    if left_out:
        names = ", ".join(m.label for m in left_out[:8])
        names += ", ..." if len(left_out) > 8 else ""
        lines.append(
            f"{len(result.markets) - len(left_out)} of {len(result.markets)} markets drawn; "
            f"{len(left_out)} left out: {names}"
        )
    return "\n".join(lines)


def build_figure(
    result: BacktestResult,
    *,
    title: str | None = None,
    prices: PriceSource | None = None,
) -> PlotReport:
    """The figure :func:`plot_backtest` writes, not yet written (``path`` is None)."""
    from matplotlib import dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    drawn = result.markets[:MAX_MARKET_PANELS]
    left_out = [m.market for m in result.markets[MAX_MARKET_PANELS:]]
    width, height = figure_size_px(len(drawn))
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)  # the figure's own Agg canvas: no pyplot, no global backend
    ratios = [_EQUITY_IN, _DRAWDOWN_IN] + [_MARKET_IN] * len(drawn)
    grid = figure.add_gridspec(len(ratios), 1, height_ratios=ratios)
    equity_ax = figure.add_subplot(grid[0])
    # Equity and drawdown share their time axis; each market keeps its own time range.
    axes = [equity_ax, figure.add_subplot(grid[1], sharex=equity_ax)]
    axes += [figure.add_subplot(grid[i]) for i in range(2, len(ratios))]
    figure.suptitle(_title_lines(result, title, left_out), fontsize=11)

    # Matplotlib's dates are days since its epoch (1970-01-01 unless configured otherwise);
    # matplotlib.dates has no type hints.
    unix_epoch = datetime(1970, 1, 1, tzinfo=UTC)
    epoch = float(mdates.date2num(unix_epoch))  # type: ignore[no-untyped-call]

    def days(ms: IntArray | Sequence[int]) -> FloatArray:
        return epoch + np.asarray(ms, dtype=np.float64) / _DAY_MS

    for ax in axes[:1] + axes[2:]:
        locator = mdates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
        formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(formatter)
    longest = _portfolio_panels(equity_ax, axes[1], result, days)

    entries = exits = force_exits = 0
    for ax, market_result in zip(axes[2:], drawn, strict=True):
        points, counts = _market_panel(ax, market_result, prices, days)
        longest = max(longest, points)
        entries += counts[0]
        exits += counts[1]
        force_exits += counts[2]
    axes[-1].set_xlabel("time (UTC)")
    return PlotReport(
        path=None,
        figure=figure,
        width_px=width,
        height_px=height,
        markets_drawn=len(drawn),
        markets_left_out=len(left_out),
        entries=entries,
        exits=exits,
        force_exits=force_exits,
        max_line_points=longest,
    )


Days = Callable[[IntArray | Sequence[int]], FloatArray]


def _portfolio_panels(equity_ax: Axes, dd_ax: Axes, result: BacktestResult, days: Days) -> int:
    """The equity curve and its drawdown in percent; the most points of a line drawn."""
    from matplotlib.ticker import PercentFormatter

    times, equity = result.equity_curve()
    start = float(result.start_equity)
    quotes = {m.market.quote for m in result.markets}
    unit = quotes.pop() if len(quotes) == 1 else "quote"
    longest = 0
    if len(times):
        keep = minmax_indices(equity)
        longest = len(keep)
        equity_ax.plot(days(times[keep]), equity[keep], color="tab:blue", lw=1.0, label="equity")
        equity_ax.axhline(start, color="grey", lw=0.8, ls="--", label=f"start {start:g}")
        # The summary's max_drawdown: the fall below a running peak that starts at the start.
        peak = np.maximum.accumulate(np.maximum(equity, start))
        drawdown = (equity - peak) / peak * 100.0 if start > 0 else np.zeros_like(equity)
        keep = minmax_indices(drawdown)
        longest = max(longest, len(keep))
        dd_x = days(times[keep])
        dd_ax.fill_between(dd_x, drawdown[keep], 0.0, color="tab:red", alpha=0.35, lw=0)
        dd_ax.plot(dd_x, drawdown[keep], color="tab:red", lw=0.6)
        lowest = int(np.argmin(drawdown))
        right_half = lowest > len(times) // 2  # label to the left of the point, inside
        dd_ax.annotate(
            f"max {drawdown[lowest]:.2f}%",
            (float(days([int(times[lowest])])[0]), float(drawdown[lowest])),
            xytext=(-4 if right_half else 4, 4),
            textcoords="offset points",
            ha="right" if right_half else "left",
            fontsize=8,
        )
        equity_ax.set_xlim(float(days(times[:1])[0]), float(days(times[-1:])[0]))
        equity_ax.legend(loc="upper left", fontsize=8)
    else:
        equity_ax.text(0.5, 0.5, "no candles", transform=equity_ax.transAxes, ha="center")
    equity_ax.set_ylabel(f"equity ({unit})")
    equity_ax.set_title("portfolio equity at each candle close", fontsize=9, loc="left")
    dd_ax.set_ylabel("drawdown")
    dd_ax.yaxis.set_major_formatter(PercentFormatter(xmax=100))
    dd_ax.set_ylim(top=0.0)
    equity_ax.grid(alpha=0.3)
    dd_ax.grid(alpha=0.3)
    return longest


def _market_panel(
    ax: Axes,
    result: MarketResult,
    prices: PriceSource | None,
    days: Days,
) -> tuple[int, tuple[int, int, int]]:
    """One market: its close (downsampled) and every trade; the points of the close line and
    the entry, exit and force-exit markers drawn."""
    market = result.market
    candles = prices(market) if prices is not None else None
    points = 0
    if candles is not None and len(candles):
        keep = minmax_indices(candles.close)
        points = len(keep)
        ax.plot(
            days(candles.timestamp[keep]), candles.close[keep], color="0.35", lw=0.8, label="close"
        )
    else:
        ax.text(0.01, 0.05, "candles not available", transform=ax.transAxes, fontsize=8)
    del candles
    trades = result.trades
    ax.scatter(
        days([t.entry_time for t in trades]),
        np.array([float(t.entry_price) for t in trades], dtype=np.float64),
        s=28,
        zorder=3,
        **ENTRY_STYLE,
    )
    counts = [len(trades)]
    for style, reason in ((EXIT_STYLE, "exit_signal"), (FORCE_EXIT_STYLE, "force_exit")):
        chosen = [t for t in trades if t.exit_reason == reason]
        counts.append(len(chosen))
        if chosen or reason == "exit_signal":
            ax.scatter(
                days([t.exit_time for t in chosen]),
                np.array([float(t.exit_price) for t in chosen], dtype=np.float64),
                s=28 if reason == "exit_signal" else 40,
                zorder=4,
                edgecolors="black" if reason == "force_exit" else "face",
                linewidths=0.6,
                **style,
            )
    ax.set_title(
        f"{market.symbol} {market.timeframe}  |  {len(trades)} trades  |  pnl "
        f"{float(result.pnl):+.8g} {market.quote}",
        fontsize=9,
        loc="left",
    )
    ax.set_ylabel(f"close ({market.quote})")
    if result.candles:
        # The candles' range, widened by 1% a side so markers on the first or last candle
        # (a force exit is always on the last) are not cut in half by the frame.
        end = result.start_time + (result.candles - 1) * result.step_ms
        pad = max((end - result.start_time) // 100, result.step_ms)
        ax.set_xlim(*(float(x) for x in days([result.start_time - pad, end + pad])))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7, ncols=4)
    return points, (counts[0], counts[1], counts[2])
