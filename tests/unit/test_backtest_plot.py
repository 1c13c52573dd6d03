"""``tickstep backtest --plot``: the PNG report, its markers, its downsampling and its errors.

Real runs use the bundled candles; the long and the many-market cases are hand-made
:class:`BacktestResult` objects (a year of 1-minute candles would be slow to backtest here).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tickstep.backtest import BacktestResult, BacktestSettings, MarketResult, Trade, run_backtest
from tickstep.candles import CandleArrays, bundled_file
from tickstep.cli import main
from tickstep.models import Market
from tickstep.plot import (
    MAX_MARKET_PANELS,
    WIDTH_PX,
    build_figure,
    candle_files,
    figure_size_px,
    minmax_indices,
    plot_backtest,
)
from tickstep.strategies import StrategyConfig, build_strategy

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ONE_MIN = 60_000
T0 = 1_672_531_200_000  # 2023-01-01T00:00:00Z
SETTINGS = BacktestSettings(stake=Decimal("0.01"), fee=Decimal("0.001"))
TWO_FILES = [str(bundled_file("ETH-BTC_5m.csv")), str(bundled_file("LTC-BTC_5m.csv"))]
RUN = ["--strategy", "sma_cross", "--stake", "0.01", "--fee", "0.001"]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def markers(ax: Any, label: str) -> np.ndarray[Any, Any]:
    """The (x, y) points of the scatter markers labelled ``label`` on ``ax``."""
    found = [np.asarray(c.get_offsets()) for c in ax.collections if c.get_label() == label]
    return np.concatenate(found) if found else np.zeros((0, 2))


def line(ax: Any, label: str) -> Any:
    (found,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return found


def days(ms: int) -> float:
    """Matplotlib's date number of a time in ms (days since 1970-01-01, its default epoch)."""
    return ms / 86_400_000


def synthetic_market(
    symbol: str, n: int, trades: int, seed: int = 0
) -> tuple[MarketResult, CandleArrays]:
    """``n`` 1-minute candles from T0 on a random walk, ``trades`` round trips spread over them
    (the last one a force exit on the last candle), and a made-up equity curve."""
    rng = np.random.default_rng(seed)
    close = 0.05 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    timestamp = T0 + ONE_MIN * np.arange(n, dtype=np.int64)
    candles = CandleArrays(timestamp, close.copy(), close * 1.001, close * 0.999, close, close)
    market = Market(exchange="paper", symbol=symbol, timeframe="1m")
    cuts = np.linspace(1, n - 1, 2 * trades, dtype=np.int64)
    made = []
    for k in range(trades):
        e, x = int(cuts[2 * k]), int(cuts[2 * k + 1])
        last = k == trades - 1
        x = n - 1 if last else x
        entry, exit_ = Decimal(repr(float(close[e]))), Decimal(repr(float(close[x])))
        made.append(
            Trade(
                market, e, x, T0 + e * ONE_MIN, T0 + x * ONE_MIN, entry, exit_, Decimal(1),
                Decimal(0), entry, exit_, exit_ - entry, "force_exit" if last else "exit_signal",
            )
        )  # fmt: skip
    equity = np.cumsum(rng.normal(0.0, 1e-5, n))
    result = MarketResult(market, T0, ONE_MIN, 0, made, equity, held_candles=n // 2)
    return result, candles


# --- the PNG through the CLI --------------------------------------------------------------


def test_backtest_plot_when_two_bundled_markets_then_writes_png_of_expected_size_and_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from matplotlib.image import imread

    out, report = tmp_path / "report.png", tmp_path / "report.json"

    code = main(["backtest", "--data", *TWO_FILES, *RUN, "--json", str(report), "--plot", str(out)])

    assert code == 0
    stdout = capsys.readouterr().out
    assert f"plot written to {out}" in stdout
    assert f"report written to {report}" in stdout
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert png_size(out) == (1400, 1050) == figure_size_px(2)  # 1 + 3 + 1.5 + 2 x 2.5 inches
    pixels = imread(out)
    assert pixels.shape[:2] == (1050, 1400)
    # What a person sees, whatever matplotlib's version and fonts: ink (anything darker than
    # the white page) in the title band and in each panel's band, and no band drowned in it.
    # Bands in inches from the top: title 1, equity 3, drawdown 1.5, two markets 2.5 each.
    ink = (pixels[..., :3] < 0.9).any(axis=-1)
    edges = np.cumsum([0, 1.0, 3.0, 1.5, 2.5, 2.5]) * 100  # 100 pixels an inch
    for top, bottom in pairwise(edges):
        band = ink[int(top) : int(bottom)]
        assert 0.005 < band.mean() < 0.8, (top, bottom, band.mean())
    assert json.loads(report.read_text())["summary"]["trades"] > 0


def test_plot_backtest_when_real_run_then_one_marker_per_entry_and_exit_at_fill_price_and_time(
    tmp_path: Path,
) -> None:
    strategy = build_strategy(StrategyConfig(name="sma_cross"))
    result = run_backtest(TWO_FILES, strategy, SETTINGS)

    drawn = plot_backtest(
        result, tmp_path / "r.png", title="sma_cross", prices=candle_files(TWO_FILES)
    )

    axes = drawn.figure.axes
    assert len(axes) == 2 + len(result.markets) == 4  # equity, drawdown, one per market
    assert drawn.entries == len(result.trades) > 100
    assert drawn.exits + drawn.force_exits == len(result.trades)
    for ax, market in zip(axes[2:], result.markets, strict=True):
        entries, exits = markers(ax, "entry"), markers(ax, "exit")
        forced = markers(ax, "force exit")
        normal = [t for t in market.trades if t.exit_reason == "exit_signal"]
        assert len(entries) == len(market.trades)
        assert len(exits) == len(normal)
        assert len(forced) == len(market.trades) - len(normal)
        assert np.allclose(entries[:, 0], [days(t.entry_time) for t in market.trades])
        assert np.allclose(entries[:, 1], [float(t.entry_price) for t in market.trades])
        assert np.allclose(exits[:, 0], [days(t.exit_time) for t in normal])
        assert np.allclose(exits[:, 1], [float(t.exit_price) for t in normal])
        assert market.market.symbol in ax.get_title(loc="left")
        assert market.candles > 2 * WIDTH_PX + 2  # 5,760 closes: downsampled
        close = line(ax, "close")
        assert WIDTH_PX < len(close.get_xdata()) <= 2 * WIDTH_PX + 2
    title = drawn.figure.get_suptitle()
    summary = result.summary()
    assert "sma_cross" in title
    assert f"trades {summary['trades']}" in title
    assert f"total return {summary['total_return'] * 100:.2f}%" in title
    assert f"max drawdown {summary['max_drawdown'] * 100:.2f}%" in title


def test_plot_backtest_when_drawn_then_time_axis_is_utc_dates_of_the_candles(
    tmp_path: Path,
) -> None:
    from matplotlib.dates import num2date

    strategy = build_strategy(StrategyConfig(name="sma_cross"))
    result = run_backtest(TWO_FILES[:1], strategy, SETTINGS)
    drawn = plot_backtest(result, tmp_path / "r.png", prices=candle_files(TWO_FILES))

    equity_ax, _, market_ax = drawn.figure.axes
    first = datetime(2018, 1, 10, 4, 55, tzinfo=UTC)  # ETH-BTC_5m.csv's first candle
    last = datetime(2018, 1, 30, 4, 50, tzinfo=UTC)  # and its last (5,760 x 5 minutes)
    xs = line(market_ax, "close").get_xdata()
    for number, expected in [
        *zip(equity_ax.get_xlim(), (first, last), strict=True),
        (xs[0], first),
        (xs[-1], last),
    ]:
        assert abs(num2date(number) - expected) < timedelta(milliseconds=1)
    drawn.figure.canvas.draw()
    labels = [t.get_text() for t in market_ax.get_xticklabels()]
    assert any(label.isdigit() and 10 <= int(label) <= 29 for label in labels), labels
    assert market_ax.get_xlabel() == "time (UTC)"


# --- long runs and many markets -----------------------------------------------------------


def test_minmax_indices_when_series_long_then_at_most_two_per_bucket_keeping_extremes() -> None:
    rng = np.random.default_rng(7)
    values = np.cumsum(rng.normal(size=525_600))
    values[123_457] = 1e6  # one spike up, one down: striding would most likely drop both
    values[400_001] = -1e6

    keep = minmax_indices(values, buckets=1_000)

    assert len(keep) <= 2 * 1_000 + 2
    assert np.all(np.diff(keep) > 0)  # ascending, no repeats: time order is kept
    assert keep[0] == 0 and keep[-1] == len(values) - 1
    assert {123_457, 400_001} <= set(keep.tolist())
    size = -(-len(values) // 1_000)  # each run of 526 points keeps its own min and max
    for start in (0, 526 * 500, 526 * 999):
        run = values[start : start + size]
        assert start + int(np.argmin(run)) in keep and start + int(np.argmax(run)) in keep
    short = np.arange(10.0)
    assert minmax_indices(short, buckets=5).tolist() == list(range(10))


def test_build_figure_when_a_year_of_1m_candles_then_lines_downsampled_and_all_markers_kept() -> (
    None
):
    market, candles = synthetic_market("AAA/BTC", 525_600, trades=700)
    result = BacktestResult(SETTINGS, "synthetic", [market])

    drawn = build_figure(result, prices=lambda m: candles if m == market.market else None)

    equity_ax, dd_ax, price_ax = drawn.figure.axes
    for ax in (equity_ax, dd_ax, price_ax):
        for ln in ax.get_lines():
            assert len(ln.get_xdata()) <= 2 * WIDTH_PX + 2, ln.get_label()
    close = line(price_ax, "close")
    assert len(close.get_xdata()) > WIDTH_PX  # downsampled, not thinned to nothing
    assert max(close.get_ydata()) == candles.close.max()  # the extremes survive
    assert min(close.get_ydata()) == candles.close.min()
    assert drawn.max_line_points <= 2 * WIDTH_PX + 2
    assert len(markers(price_ax, "entry")) == 700 == drawn.entries
    assert len(markers(price_ax, "exit")) == 699 == drawn.exits
    (forced,) = markers(price_ax, "force exit")
    last = market.trades[-1]
    assert drawn.force_exits == 1 and last.exit_reason == "force_exit"
    assert forced.tolist() == pytest.approx([days(last.exit_time), float(last.exit_price)])
    legend = [t.get_text() for t in price_ax.get_legend().get_texts()]
    assert legend == ["close", "entry", "exit", "force exit"]


def test_plot_backtest_when_more_markets_than_panels_then_draws_the_cap_and_says_so(
    tmp_path: Path,
) -> None:
    names = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH"]
    made = [synthetic_market(f"{n}/BTC", 500, trades=3, seed=i) for i, n in enumerate(names)]
    result = BacktestResult(SETTINGS, "synthetic", [m for m, _ in made])
    by_market = {m.market: c for m, c in made}

    drawn = plot_backtest(result, tmp_path / "many.png", title="many", prices=by_market.get)

    assert MAX_MARKET_PANELS == 6
    assert (drawn.markets_drawn, drawn.markets_left_out) == (6, 2)
    assert len(drawn.figure.axes) == 2 + 6
    assert drawn.entries == 6 * 3  # markers only for the markets drawn
    assert "6 of 8 markets drawn; 2 left out: GGG/BTC 1m, HHH/BTC 1m" in drawn.figure.get_suptitle()
    assert "8 market(s)" in drawn.figure.get_suptitle()
    assert f"trades {8 * 3}" in drawn.figure.get_suptitle()  # the summary covers every market
    assert png_size(tmp_path / "many.png") == (1400, 2050)  # 1 + 3 + 1.5 + 6 x 2.5 inches


# --- errors -------------------------------------------------------------------------------


def test_backtest_plot_when_output_directory_missing_then_exit_2_before_writing_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = tmp_path / "nope" / "report.png", tmp_path / "report.json"

    code = main(["backtest", "--data", *TWO_FILES, *RUN, "--json", str(report), "--plot", str(out)])

    assert code == 2
    captured = capsys.readouterr()
    assert f"--plot {out}: the directory {out.parent} does not exist" in captured.err
    assert captured.out == ""  # failed before the run
    assert not report.exists() and not out.parent.exists()


def test_backtest_plot_when_path_is_a_directory_then_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["backtest", "--data", TWO_FILES[0], *RUN, "--plot", str(tmp_path)])

    assert code == 2
    assert "is a directory" in capsys.readouterr().err


def test_backtest_plot_when_matplotlib_missing_then_exit_2_naming_the_install_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    out = tmp_path / "report.png"

    code = main(["backtest", "--data", TWO_FILES[0], *RUN, "--plot", str(out)])

    assert code == 2
    captured = capsys.readouterr()
    assert "matplotlib" in captured.err
    assert "pip install 'tickstep[plot]'" in captured.err
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []


def test_backtest_without_plot_never_imports_matplotlib(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from tickstep.cli import main\n"
        f"code = main(['backtest', '--data', {TWO_FILES[0]!r}, *{RUN!r},"
        f" '--json', {str(tmp_path / 'r.json')!r}])\n"
        "assert code == 0, code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_backtest_json_when_output_directory_missing_then_exit_2_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "nope" / "report.json"

    code = main(["backtest", "--data", *TWO_FILES, *RUN, "--json", str(report)])

    assert code == 2
    captured = capsys.readouterr()
    assert f"--json {report}: the directory {report.parent} does not exist" in captured.err
    assert captured.out == ""  # no summary: nothing was run
