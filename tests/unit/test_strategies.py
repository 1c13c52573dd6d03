from __future__ import annotations

import numpy as np
import pytest

from tickstep.candles import CandleArrays
from tickstep.models import Market, SignalAction
from tickstep.strategies import STRATEGIES, ConfigError, StrategyConfig, build_strategy
from tickstep.strategies.registry import parse_param_assignments
from tickstep.training.data import slice_candles

BUILTINS = ["sma_cross", "rsi_reversion", "macd_trend", "bbands_breakout", "ml"]


def arrays_from_close(close: list[float]) -> CandleArrays:
    c = np.asarray(close, dtype=np.float64)
    ts = np.arange(len(c), dtype=np.int64) * 60_000
    return CandleArrays(ts, c.copy(), c * 1.001, c * 0.999, c, np.ones_like(c))


@pytest.mark.parametrize("name", BUILTINS)
def test_live_signal_when_computed_on_any_prefix_then_equals_that_element_of_the_series(
    name: str, eth_btc: Market, eth_btc_candles: CandleArrays
) -> None:
    strategy = build_strategy(StrategyConfig(name=name))
    series = strategy.series(eth_btc_candles)
    nonhold = np.flatnonzero(series.action)
    assert len(nonhold) > 5, f"{name} never signals on real candles"
    for i in [*nonhold[:10], strategy.warmup, len(eth_btc_candles) - 1]:
        live = strategy.signal(eth_btc, eth_btc_candles.head(int(i) + 1))
        expected = {1: SignalAction.BUY, 0: SignalAction.HOLD, -1: SignalAction.SELL}
        assert live.action is expected[int(series.action[i])]
        assert live.candle_time == int(eth_btc_candles.timestamp[i])
        assert live.strategy == name


@pytest.mark.parametrize("name", BUILTINS)
def test_series_when_future_candles_change_then_past_signals_do_not(
    name: str, eth_btc_candles: CandleArrays
) -> None:
    strategy = build_strategy(StrategyConfig(name=name))
    n = 3000
    full = strategy.series(eth_btc_candles)
    past = strategy.series(eth_btc_candles.head(n))
    np.testing.assert_array_equal(full.action[:n], past.action)


@pytest.mark.parametrize("name", BUILTINS)
def test_series_during_warmup_then_only_hold(name: str, eth_btc_candles: CandleArrays) -> None:
    strategy = build_strategy(StrategyConfig(name=name))
    series = strategy.series(eth_btc_candles)
    assert not series.action[: strategy.warmup - 1].any()
    assert ((series.strength >= 0) & (series.strength <= 1)).all()


def test_sma_cross_when_fast_crosses_above_then_buy_and_below_then_sell() -> None:
    # fast=2, slow=3: flat, then a jump up (cross above), then a drop (cross below).
    candles = arrays_from_close([10, 10, 10, 10, 13, 13, 13, 7, 7, 7])
    strategy = build_strategy(StrategyConfig(name="sma_cross", params={"fast": 2, "slow": 3}))
    action = strategy.series(candles).action
    # i=4: fast=(10+13)/2=11.5 > slow=11 and before fast == slow: BUY.
    # i=7: fast=10 < slow=11 and before fast=13 >= slow=13: SELL.
    assert action.tolist() == [0, 0, 0, 0, 1, 0, 0, -1, 0, 0]


def test_sma_cross_when_fast_touches_slow_without_crossing_then_hold() -> None:
    candles = arrays_from_close([10, 10, 10, 10, 10, 10])
    strategy = build_strategy(StrategyConfig(name="sma_cross", params={"fast": 2, "slow": 3}))
    assert not strategy.series(candles).action.any()


def test_build_strategy_when_unknown_name_then_config_error_lists_known() -> None:
    with pytest.raises(ConfigError, match=r"unknown strategy 'smacross'.*sma_cross"):
        build_strategy(StrategyConfig(name="smacross"))


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("sma_cross", {"fats": 3}, "fats"),
        ("sma_cross", {"fast": 30, "slow": 10}, "fast"),
        ("rsi_reversion", {"period": 0}, "period"),
        ("rsi_reversion", {"oversold": 80, "overbought": 20}, "oversold"),
        ("macd_trend", {"signal": "x"}, "signal"),
        ("bbands_breakout", {"nbdev": -1}, "nbdev"),
    ],
)
def test_build_strategy_when_bad_parameter_then_config_error_names_it(
    name: str, params: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        build_strategy(StrategyConfig(name=name, params=params))


def test_importing_strategies_when_ml_is_not_used_then_its_module_is_not_loaded() -> None:
    """The ml strategy is imported when first looked up, not by every function's cold start."""
    import subprocess
    import sys

    code = (
        "import sys, tickstep.strategies as s; "
        "assert 'tickstep.strategies.ml' not in sys.modules; "
        "assert 'ml' in s.STRATEGIES; "
        "s.build_strategy(s.StrategyConfig(name='ml')); "
        "assert 'tickstep.strategies.ml' in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, timeout=300)
    assert result.returncode == 0


def test_every_registered_strategy_builds_with_defaults() -> None:
    assert set(BUILTINS) <= set(STRATEGIES)
    for name in STRATEGIES:
        assert build_strategy(StrategyConfig(name=name)).name == name


def test_parse_param_assignments_when_numbers_and_text_then_typed() -> None:
    assert parse_param_assignments(["fast=5", "nbdev=2.5", "mode=x"]) == {
        "fast": 5,
        "nbdev": 2.5,
        "mode": "x",
    }
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_param_assignments(["fast"])


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("sma_cross", {}),
        ("sma_cross", {"fast": 2, "slow": 5}),
        ("sma_cross", {"fast": 7, "slow": 50}),
        ("bbands_breakout", {}),
        ("bbands_breakout", {"period": 5, "nbdev": 1.5}),
    ],
)
def test_live_signal_when_finite_window_strategy_reads_its_history_then_equals_full_history(
    name: str, params: dict[str, float], eth_btc: Market, eth_btc_candles: CandleArrays
) -> None:
    """Windowed indicators (SMA, Bollinger) give, from the last ``history`` candles, the signal
    the whole history gives: action, strength, reason and every indicator, at every candle."""
    strategy = build_strategy(StrategyConfig(name=name, params=params))
    assert strategy.history == strategy.warmup + 1  # far fewer than the default's reads
    series = strategy.series(eth_btc_candles)
    signals = 0
    for i in range(len(eth_btc_candles)):
        full = strategy.signal(eth_btc, eth_btc_candles.head(i + 1))
        start = max(0, i + 1 - strategy.history)  # what the signal function reads from DynamoDB
        read = strategy.signal(eth_btc, slice_candles(eth_btc_candles, start, i + 1))
        assert read == full, i
        signals += bool(series.action[i])
    assert signals > 10  # the comparison went through BUYs and SELLs


@pytest.mark.parametrize("name", ["rsi_reversion", "macd_trend"])
def test_live_signal_when_indicators_remember_everything_then_default_history_is_read(
    name: str, eth_btc: Market, eth_btc_candles: CandleArrays
) -> None:
    """Wilder's RSI and MACD's EMAs carry every past candle: ``warmup + 1`` candles would give
    other values, so these strategies read the default (twice the warmup, plus 20)."""
    strategy = build_strategy(StrategyConfig(name=name))
    assert strategy.history == 2 * strategy.warmup + 20
    i = len(eth_btc_candles) - 1
    full = strategy.signal(eth_btc, eth_btc_candles.head(i + 1))
    short = strategy.signal(eth_btc, slice_candles(eth_btc_candles, i - strategy.warmup, i + 1))
    assert short.indicators != full.indicators
