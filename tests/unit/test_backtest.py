"""``tickstep backtest``: the semantics of issue 5 on real bundled candles and tiny hand-made ones.

Hand-made markets use a scripted strategy (a fake: its actions are given) or ``sma_cross`` with
``fast=1, slow=2``, which BUYs when the close rises after a candle that did not rise and SELLs
when it falls after one that did not fall.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickstep.backtest import (
    BacktestError,
    BacktestSettings,
    ProgressBar,
    backtest_market,
    fill_gaps,
    iso_utc,
    pair_signals,
    run_backtest,
)
from tickstep.candles import CSV_HEADER, CandleArrays, bundled_file, load_csv
from tickstep.cli import main
from tickstep.models import Market
from tickstep.strategies import (
    SignalSeries,
    Strategy,
    StrategyConfig,
    StrategyParams,
    build_strategy,
)

T0 = 1_700_000_000_000 - 1_700_000_000_000 % 300_000
FIVE_MIN = 300_000
SETTINGS = BacktestSettings(stake=Decimal(100), fee=Decimal("0.001"))


class Scripted(Strategy[StrategyParams]):
    """Emits the given actions (HOLD after them) whatever the candles; a test fake."""

    name = "scripted"
    params_type = StrategyParams

    def __init__(self, actions: list[int], warmup: int = 0) -> None:
        super().__init__(StrategyParams())
        self.actions = actions
        self._warmup = warmup

    @property
    def warmup(self) -> int:
        return self._warmup

    def series(self, candles: CandleArrays) -> SignalSeries:
        action = np.zeros(len(candles), dtype=np.int8)
        script = np.array(self.actions[: len(candles)], dtype=np.int8)
        action[: len(script)] = script
        return SignalSeries(action, np.zeros(len(candles)), {})


def write_csv(path: Path, rows: list[tuple[float, ...]], header: str = CSV_HEADER) -> Path:
    lines = [header] + [",".join(repr(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def flat_rows(opens: list[float], closes: list[float] | None = None) -> list[tuple[float, ...]]:
    """5m candles from T0; high/low bracket open and close; volume 1."""
    closes = closes or opens
    return [
        (T0 + i * FIVE_MIN, o, max(o, c), min(o, c), c, 1.0)
        for i, (o, c) in enumerate(zip(opens, closes, strict=True))
    ]


def arrays(rows: list[tuple[float, ...]]) -> CandleArrays:
    data = np.array(rows, dtype=np.float64)
    return CandleArrays(data[:, 0].astype(np.int64), *(data[:, k].copy() for k in range(1, 6)))


MARKET = Market(exchange="paper", symbol="AAA/BBB", timeframe="5m")


def run_scripted(
    actions: list[int], n: int, warmup: int = 0, settings: BacktestSettings = SETTINGS
) -> Any:
    opens = [float(10 + i) for i in range(n)]
    result, _ = backtest_market(
        MARKET, arrays(flat_rows(opens)), Scripted(actions, warmup), settings
    )
    return result


def cli_json(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "backtest.json"
    assert main(["backtest", *args, "--json", str(out)]) == 0
    return json.loads(out.read_text())  # type: ignore[no-any-return]


# --- gaps ---------------------------------------------------------------------------------


def test_fill_gaps_when_bundled_1m_market_has_holes_then_fills_them_with_previous_close() -> None:
    raw = load_csv(bundled_file("XRP-ETH_1m.csv"))
    expected_missing = (int(raw.timestamp[-1] - raw.timestamp[0])) // 60_000 + 1 - len(raw)
    assert expected_missing > 0

    filled, count = fill_gaps(raw, 60_000)

    assert count == expected_missing
    assert len(filled) == len(raw) + count
    assert np.all(np.diff(filled.timestamp) == 60_000)
    real = np.isin(filled.timestamp, raw.timestamp)
    for name in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(filled, name)[real], getattr(raw, name)), name
    gap = np.flatnonzero(~real)
    previous_close = filled.close[gap - 1]
    for name in ("open", "high", "low", "close"):
        assert np.array_equal(getattr(filled, name)[gap], previous_close), name
    assert np.all(filled.volume[gap] == 0.0)


def test_backtest_when_file_has_two_missing_candles_then_warns_with_count_and_fills(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = flat_rows([1.0, 2.0, 3.0, 4.0, 5.0], [1.5, 2.5, 3.5, 4.5, 5.5])
    del rows[2:4]  # candles 2 and 3 missing: both become 2.5 (candle 1's close)
    path = write_csv(tmp_path / "AAA-BBB_5m.csv", rows)

    report = cli_json(
        tmp_path, "--data", str(path), "--strategy", "sma_cross", "--stake", "1", "--fee", "0"
    )

    assert "2 missing candles filled" in capsys.readouterr().err
    assert report["markets"]["paper:AAA/BBB:5m"] == {
        "candles": 5,
        "filled_candles": 2,
        "trades": 0,
        "pnl": "0",
    }
    filled, count = fill_gaps(load_csv(path), FIVE_MIN)
    assert count == 2
    assert filled.open.tolist() == [1.0, 2.0, 2.5, 2.5, 5.0]
    assert filled.close.tolist() == [1.5, 2.5, 2.5, 2.5, 5.5]
    assert filled.volume.tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]


def test_fill_gaps_when_candle_is_off_the_timeframe_grid_then_rejects_it() -> None:
    rows = flat_rows([1.0, 2.0, 3.0])
    rows[2] = (rows[2][0] + 1_000, *rows[2][1:])
    with pytest.raises(BacktestError, match="not on the 300000 ms grid"):
        fill_gaps(arrays(rows), FIVE_MIN)


# --- warm-up ------------------------------------------------------------------------------


def test_backtest_when_strategy_buys_during_warmup_then_enters_after_first_signal_past_it() -> None:
    result = run_scripted([1] * 20, n=20, warmup=7)

    assert len(result.trades) == 1
    assert result.trades[0].entry_index == 8  # signal at candle 7, the first after warm-up


def test_backtest_when_sma_cross_on_real_candles_then_no_trade_before_warmup(
    eth_btc: Market, eth_btc_candles: CandleArrays
) -> None:
    strategy = build_strategy(StrategyConfig(name="sma_cross", params={"fast": 5, "slow": 50}))
    result, _ = backtest_market(eth_btc, eth_btc_candles, strategy, SETTINGS)

    assert result.trades
    assert min(t.entry_index for t in result.trades) > strategy.warmup


# --- next-open fills ----------------------------------------------------------------------


def test_backtest_when_sma_cross_on_real_candles_then_fills_at_next_open_price_and_time(
    eth_btc: Market, eth_btc_candles: CandleArrays
) -> None:
    strategy = build_strategy(StrategyConfig(name="sma_cross"))
    action = strategy.series(eth_btc_candles).action
    result, warning = backtest_market(eth_btc, eth_btc_candles, strategy, SETTINGS)

    assert warning is None
    assert len(result.trades) > 50
    for t in result.trades:
        assert action[t.entry_index - 1] == 1
        assert t.entry_price == Decimal(repr(float(eth_btc_candles.open[t.entry_index])))
        assert t.entry_time == eth_btc_candles.timestamp[t.entry_index]
        assert t.exit_price == Decimal(repr(float(eth_btc_candles.open[t.exit_index])))
        assert t.exit_time == eth_btc_candles.timestamp[t.exit_index]
        if t.exit_reason == "exit_signal":
            assert action[t.exit_index - 1] == -1


def test_backtest_when_buy_signal_then_json_trade_time_is_next_candle_open_in_iso_utc(
    tmp_path: Path,
) -> None:
    closes = [1.0, 1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 1.0]
    opens = [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.5, 1.0]  # BUY at 3's close, SELL at 5's close
    path = write_csv(tmp_path / "AAA-BBB_5m.csv", flat_rows(opens, closes))

    report = cli_json(
        tmp_path, "--data", str(path), "--strategy", "sma_cross", "--param", "fast=1",
        "--param", "slow=2", "--stake", "100", "--fee", "0.001",
    )  # fmt: skip

    (trade,) = report["trades"]
    assert iso_utc(T0) == "2023-11-14T22:10:00Z"
    assert trade["entry_time"] == "2023-11-14T22:30:00Z"  # candle 4's open time
    assert trade["exit_time"] == "2023-11-14T22:40:00Z"  # candle 6's open time
    assert (trade["entry_price"], trade["exit_price"]) == ("2.0", "2.5")
    assert trade["exit_reason"] == "exit_signal"


# --- fees and pnl, exact ------------------------------------------------------------------


def test_backtest_when_tiny_example_then_amount_fee_and_pnl_are_exact_decimals(
    tmp_path: Path,
) -> None:
    """stake 100 at 2 -> amount 50; cost 50 x 2 x 1.001 = 100.1; proceeds 50 x 2.5 x 0.999 =
    124.875; pnl 24.775; fee 0.1 + 0.125 = 0.225."""
    closes = [1.0, 1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 1.0]
    opens = [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.5, 1.0]
    path = write_csv(tmp_path / "AAA-BBB_5m.csv", flat_rows(opens, closes))

    report = cli_json(
        tmp_path, "--data", str(path), "--strategy", "sma_cross", "--param", "fast=1",
        "--param", "slow=2", "--stake", "100", "--fee", "0.001", "--equity-points", "0",
    )  # fmt: skip

    (trade,) = report["trades"]
    assert trade["amount"] == "50"
    assert Decimal(trade["fee"]) == Decimal("0.225")
    assert Decimal(trade["pnl"]) == Decimal("24.775")
    summary = report["summary"]
    assert Decimal(summary["total_pnl"]) == Decimal("24.775")
    assert Decimal(summary["fees_paid"]) == Decimal("0.225")
    assert Decimal(summary["end_equity"]) == Decimal("124.775")
    assert summary["total_return"] == pytest.approx(0.24775)
    assert summary["win_rate"] == 1.0
    assert summary["exposure"] == pytest.approx(2 / 8)  # open at candles 4 and 5's closes
    assert summary["max_drawdown"] == pytest.approx((100 - 49.85) / 100)
    assert summary["sharpe"] is None  # under two days of returns
    # Open at candle 4's close (2.0) and 5's (1.0), marked net of the exit fee.
    equity = [point[1] for point in report["equity_curve"]["points"]]
    assert equity == pytest.approx([100.0] * 4 + [99.8, 49.85, 124.775, 124.775])


def test_backtest_when_amount_step_given_then_amount_truncated_and_pnl_exact() -> None:
    settings = BacktestSettings(
        stake=Decimal(100), fee=Decimal("0.002"), amount_step=Decimal("0.01")
    )
    result = run_scripted([0, 0, 0, 0, 1, 0, -1], n=8, settings=settings)  # 15 -> 17

    (trade,) = result.trades
    assert trade.amount == Decimal("6.66")  # 100 / 15 = 6.666..., truncated, not rounded
    assert trade.cost == Decimal("100.0998") and trade.proceeds == Decimal("112.99356")
    assert trade.pnl == Decimal("12.89376") and trade.fee == Decimal("0.42624")


def test_backtest_when_price_is_not_a_round_number_then_cost_equals_stake_times_one_plus_fee() -> (
    None
):
    result = run_scripted([1], n=4)
    (trade,) = result.trades
    assert trade.entry_price == Decimal("11.0")
    assert trade.amount == Decimal(100) / Decimal(11)
    with localcontext(prec=100):  # enough digits for the exact products
        assert trade.cost == trade.amount * Decimal(11) * Decimal("1.001")
        assert trade.proceeds == trade.amount * Decimal(13) * Decimal("0.999")  # forced at 13
        assert trade.pnl == trade.proceeds - trade.cost
    assert trade.cost != Decimal("100.1")  # 28 digits of 100/11, not rounded to the stake


# --- positions, force exit ----------------------------------------------------------------


def test_backtest_when_buy_on_every_candle_then_one_position_force_exited_at_last_open() -> None:
    result = run_scripted([1] * 10, n=10)

    (trade,) = result.trades
    assert (trade.entry_index, trade.exit_index) == (1, 9)
    assert trade.exit_reason == "force_exit"
    assert trade.exit_price == Decimal("19.0")  # candle 9's open
    assert trade.exit_time == T0 + 9 * FIVE_MIN


def test_backtest_when_buy_at_second_to_last_close_then_no_entry_on_last_candle() -> None:
    assert run_scripted([0, 0, 0, 1, 0], n=5).trades == []
    (trade,) = run_scripted([0, 0, 1, 0, 0], n=5).trades
    assert (trade.entry_index, trade.exit_index, trade.exit_reason) == (3, 4, "force_exit")


def test_backtest_when_sell_at_second_to_last_close_then_exit_signal_at_last_open() -> None:
    (trade,) = run_scripted([1, 0, 0, -1, 0], n=5).trades
    assert (trade.exit_index, trade.exit_reason) == (4, "exit_signal")


def test_backtest_when_buy_then_sell_on_consecutive_candles_then_one_candle_trade() -> None:
    (trade,) = run_scripted([0, 1, -1, 0, 0], n=5).trades
    assert (trade.entry_index, trade.exit_index) == (2, 3)


def test_backtest_when_sell_then_buy_while_long_then_exit_and_reentry_on_separate_candles() -> None:
    trades = run_scripted([1, 0, -1, 1, 0, 0], n=6).trades
    assert [(t.entry_index, t.exit_index) for t in trades] == [(1, 3), (4, 5)]


def test_backtest_when_repeated_buys_and_sells_then_ignored_while_long_or_flat() -> None:
    trades = run_scripted([-1, 1, 1, 0, -1, -1, 1, -1, 0], n=10).trades
    assert [(t.entry_index, t.exit_index) for t in trades] == [(2, 5), (7, 8)]
    assert all(t.exit_reason == "exit_signal" for t in trades)


def _reference_pairs(action: list[int], warmup: int) -> list[tuple[int, int]]:
    """The per-candle loop the issue describes, for comparison with the vectorised pairing."""
    n, pairs, entry = len(action), [], None
    for j in range(1, n):  # fills at candle j from the signal at j - 1
        signal = action[j - 1] if j - 1 >= warmup else 0
        if entry is None and signal == 1 and j < n - 1:
            entry = j
        elif entry is not None and signal == -1:
            pairs.append((entry, j))
            entry = None
    if entry is not None:
        pairs.append((entry, n - 1))
    return pairs


@given(
    st.lists(st.sampled_from([-1, 0, 1]), min_size=0, max_size=60),
    st.integers(min_value=0, max_value=70),
)
def test_pair_signals_matches_a_per_candle_loop(action: list[int], warmup: int) -> None:
    entries, exits, forced = pair_signals(np.array(action, dtype=np.int8), warmup)
    expected = _reference_pairs(action, warmup)
    assert list(zip(entries.tolist(), exits.tolist(), strict=True)) == expected
    assert forced == bool(expected and action[expected[-1][1] - 1] != -1)


# --- many markets, summary, output --------------------------------------------------------


def test_backtest_when_two_files_then_two_independent_markets_and_summed_summary(
    tmp_path: Path,
) -> None:
    files = [str(bundled_file("ETH-BTC_5m.csv")), str(bundled_file("LTC-BTC_5m.csv"))]
    args = ["--strategy", "sma_cross", "--stake", "0.01", "--fee", "0.001"]
    both = cli_json(tmp_path, "--data", *files, *args)
    alone = cli_json(tmp_path, "--data", files[1], *args)

    assert set(both["markets"]) == {"paper:ETH/BTC:5m", "paper:LTC/BTC:5m"}
    ltc = [t for t in both["trades"] if t["market"] == "paper:LTC/BTC:5m"]
    assert ltc == alone["trades"]
    summary = both["summary"]
    assert (
        summary["trades"]
        == len(both["trades"])
        == sum(m["trades"] for m in both["markets"].values())
    )
    assert Decimal(summary["start_equity"]) == Decimal("0.02")
    with localcontext(prec=100):  # sums of exact values, exactly
        assert Decimal(summary["total_pnl"]) == sum(Decimal(t["pnl"]) for t in both["trades"])
        assert Decimal(summary["fees_paid"]) == sum(Decimal(t["fee"]) for t in both["trades"])
    wins = sum(Decimal(t["pnl"]) > 0 for t in both["trades"])
    assert summary["win_rate"] == pytest.approx(wins / summary["trades"])
    assert 0 < summary["max_drawdown"] < 1 and 0 < summary["exposure"] < 1
    assert summary["sharpe"] is not None
    assert both["equity_curve"]["points"][-1][1] == pytest.approx(float(summary["end_equity"]))


def test_backtest_when_equity_points_limited_then_curve_downsampled_by_stated_rule(
    tmp_path: Path,
) -> None:
    path = str(bundled_file("ETH-BTC_5m.csv"))
    report = cli_json(
        tmp_path, "--data", path, "--strategy", "sma_cross", "--stake", "1", "--fee", "0",
        "--equity-points", "100",
    )  # fmt: skip
    curve = report["equity_curve"]
    assert curve["every"] == 58  # ceil(5760 / 100)
    assert "every 58th candle and the last" in curve["rule"]
    assert len(curve["points"]) == 101  # 0, 58, ..., 5742, and the last (5759)
    assert curve["points"][1][0] == "2018-01-10T09:45:00Z"  # 58 x 5 minutes after the first
    assert curve["points"][-1][1] == pytest.approx(float(report["summary"]["end_equity"]))


def test_progress_bar_when_files_done_then_redraws_one_line_and_ends_it() -> None:
    stream = io.StringIO()
    files = [bundled_file("ETH-BTC_5m.csv"), bundled_file("XRP-ETH_5m.csv")]
    strategy = build_strategy(StrategyConfig(name="sma_cross"))

    run_backtest(files, strategy, SETTINGS, progress=ProgressBar(stream, width=10))

    text = stream.getvalue()
    assert text.count("\r") == 4  # before and after each file
    assert "[#####-----] 1/2 files  5,760 candles" in text
    assert "[##########] 2/2 files  6,472 candles" in text
    assert text.endswith("\n")


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--strategy", "sma_cross", "--param", "fastest=3"], "fastest"),
        (["--strategy", "sma_cross", "--param", "fast=40"], "fast: must be smaller than slow"),
        (["--strategy", "sma_cross", "--stake", "0"], "--stake must be a positive amount"),
        (["--strategy", "sma_cross", "--stake", "-5"], "--stake must be a positive amount"),
        (["--strategy", "sma_cross", "--stake", "ten"], "--stake: expected a decimal number"),
        (["--strategy", "sma_cross", "--fee", "1"], "--fee must be a rate in [0, 1)"),
        (["--strategy", "sma_cross", "--fee", "-0.001"], "--fee must be a rate in [0, 1)"),
        (["--strategy", "sma_cross", "--amount-step", "0"], "--amount-step must be positive"),
    ],
)
def test_backtest_when_bad_strategy_or_settings_then_exit_2_naming_it(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["backtest", "--data", str(bundled_file("ETH-BTC_5m.csv")), "--stake", "1"]
    args += ["--fee", "0.001", *extra]  # later options win

    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_backtest_when_bad_file_name_header_or_path_then_exit_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = flat_rows([1.0, 2.0])
    cases = {
        write_csv(tmp_path / "ethbtc.csv", rows): "ethbtc.csv: expected a file name like",
        write_csv(tmp_path / "AAA-BBB_5m.csv", rows, header="time,o,h,l,c,v"): "header is",
        tmp_path / "CCC-DDD_5m.csv": "no such candle file",
    }
    for path, message in cases.items():
        args = ["backtest", "--data", str(path), "--strategy", "sma_cross"]
        assert main([*args, "--stake", "1", "--fee", "0"]) == 2, path
        assert message in capsys.readouterr().err, path


def test_backtest_when_same_market_twice_then_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(bundled_file("ETH-BTC_5m.csv"))
    args = ["backtest", "--data", path, path, "--strategy", "sma_cross", "--stake", "1"]
    assert main([*args, "--fee", "0"]) == 2
    assert "given twice" in capsys.readouterr().err
