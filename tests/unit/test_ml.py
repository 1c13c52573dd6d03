"""The ``ml`` strategy and ``tickstep train``: causality, walk-forward, metrics, model files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tickstep.candles import CandleArrays, bundled_file, load_csv, market_from_filename
from tickstep.cli import main
from tickstep.config import load_config_dict
from tickstep.features import DEFAULT_FEATURES, feature_matrix, lookback
from tickstep.models import Market, SignalAction
from tickstep.strategies import ConfigError, StrategyConfig, build_strategy
from tickstep.strategies.ml import MlModel, bundled_model_path, load_model
from tickstep.training import (
    CandleSource,
    TrainOptions,
    TrainResult,
    average_ranks,
    fit_logistic,
    logistic,
    roc_auc,
    train,
    weight_tolerance,
)

BTC_FILES = ("ETH-BTC_5m.csv", "LTC-BTC_5m.csv", "XMR-BTC_5m.csv")


def sources() -> list[CandleSource]:
    return [
        CandleSource(name, market_from_filename(name), load_csv(bundled_file(name)))
        for name in BTC_FILES
    ]


@pytest.fixture(scope="module")
def trained() -> TrainResult:
    return train(sources(), TrainOptions(seed=42))


def perturbed(c: CandleArrays, after: int, seed: int = 7) -> CandleArrays:
    """The same candles up to ``after``; every later price and volume changed."""
    rng = np.random.default_rng(seed)
    n = len(c) - after - 1
    move = np.ones(len(c))
    move[after + 1 :] = rng.uniform(0.9, 1.1, n)
    volume = c.volume.copy()
    volume[after + 1 :] = rng.uniform(0.0, 5000.0, n)
    return CandleArrays(
        c.timestamp.copy(), c.open * move, c.high * move, c.low * move, c.close * move, volume
    )


def with_later_candles_changed(source: CandleSource, start: int) -> CandleSource:
    return replace(source, candles=perturbed(source.candles, start - 1, seed=start))


EPS = float(np.finfo(np.float64).eps)
MEAN_ULPS = 64
"""A feature's mean over thousands of rows: a pairwise sum (log2 n roundings) of values that
exp, log and sqrt give to a few ulps, which differ between numpy's SIMD paths."""


def assert_same_fit(model: MlModel, reference: MlModel) -> None:
    """Two fits of the same rows agree as far as the computation allows: each weight and the
    bias within the reference's recorded rounding bound (``weight_tolerance``, from the fit's
    conditioning; about 1e-12 of the largest weight), each standardisation mean and std
    within MEAN_ULPS ulps of the feature's scale. The bound must be small for this to mean
    anything: under 1e-9 of the largest weight."""
    tolerance = reference.training.weight_tolerance
    assert tolerance is not None
    assert 0 < tolerance < 1e-9 * max(abs(w) for w in reference.weights)
    np.testing.assert_allclose(model.weights, reference.weights, rtol=0, atol=tolerance)
    assert model.bias == pytest.approx(reference.bias, rel=0, abs=tolerance)
    mean, std = np.array(reference.standardisation.mean), np.array(reference.standardisation.std)
    scale = MEAN_ULPS * EPS * (np.abs(mean) + std)
    for name, got, want in (
        ("mean", model.standardisation.mean, mean),
        ("std", model.standardisation.std, std),
    ):
        off = np.abs(np.array(got) - want)
        assert np.all(off <= scale), f"standardisation {name}: {off} beyond {scale}"


def assert_same_within_rounding(a: Any, b: Any, path: str = "") -> None:
    """Equal structure and exact integers and strings; floats (metrics from two fits that
    agree within their rounding bound) within 1e-9 relative."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for key in a:
            assert_same_within_rounding(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_within_rounding(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-15), path
    else:
        assert a == b, path


# -- causality --------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [60, 777, 2048, 4000])
def test_features_and_probabilities_when_future_candles_change_then_the_past_is_bit_identical(
    k: int, eth_btc_candles: CandleArrays
) -> None:
    candles = eth_btc_candles.head(4500)
    changed = perturbed(candles, k)
    strategy = build_strategy(StrategyConfig(name="ml"))

    before, after = (
        feature_matrix(candles, DEFAULT_FEATURES),
        feature_matrix(changed, DEFAULT_FEATURES),
    )
    assert before[: k + 1].tobytes() == after[: k + 1].tobytes()
    assert not np.array_equal(before[k + 1 :], after[k + 1 :])  # the change did reach them

    p_before = strategy.series(candles).indicators["p_up"]
    p_after = strategy.series(changed).indicators["p_up"]
    assert p_before[: k + 1].tobytes() == p_after[: k + 1].tobytes()
    assert not np.array_equal(p_before[k + 1 :], p_after[k + 1 :])


def test_features_during_their_lookback_then_nan_and_defined_from_it(
    eth_btc_candles: CandleArrays,
) -> None:
    x = feature_matrix(eth_btc_candles, DEFAULT_FEATURES)
    first = lookback(DEFAULT_FEATURES)
    assert first == 49  # SMA(50): the longest lookback
    assert np.isnan(x[first - 1]).any()
    assert np.isfinite(x[first:]).all()


# -- walk-forward -----------------------------------------------------------------------------


@pytest.mark.parametrize("horizon", [12, 5])
def test_walk_forward_when_folds_are_built_then_each_trains_only_before_its_window_and_a_gap(
    horizon: int, trained: TrainResult
) -> None:
    model = (
        trained.model if horizon == 12 else train(sources(), TrainOptions(horizon=horizon)).model
    )
    v = model.validation
    assert v.gap == horizon == model.horizon
    assert len(v.folds) == 5
    held_start = {w.file: w.start for w in model.holdout.windows}
    previous_stop: dict[str, int] = {}
    for fold in v.folds:
        assert {w.file for w in fold.windows} == set(BTC_FILES)
        for w in fold.windows:
            # Training rows' labels read closes up to train_stop - 1 + horizon: before eval.
            assert 0 <= w.train_start < w.train_stop
            assert w.train_stop + horizon <= w.eval_start < w.eval_stop
            assert w.train_stop - 1 + horizon < w.eval_start
            # Evaluation windows follow each other and stay out of the held-out period.
            assert w.eval_start == previous_stop.get(w.file, w.eval_start)
            previous_stop[w.file] = w.eval_stop
            assert w.eval_stop - 1 + horizon < held_start[w.file]
    # Expanding: each fold trains on more rows than the one before.
    rows = [f.train_rows for f in v.folds]
    assert rows == sorted(rows) and len(set(rows)) == len(rows)
    # The final model trains on what comes before the held-out period, less the gap.
    for w in model.training.windows:
        assert w.start == 0 and w.stop == held_start[w.file]


def test_standardisation_when_only_evaluation_data_changes_then_training_stats_do_not(
    trained: TrainResult,
) -> None:
    fold = trained.model.validation.folds[2]  # fold 3
    eval_start = {w.file: w.eval_start for w in fold.windows}
    changed = [with_later_candles_changed(s, eval_start[s.name]) for s in sources()]
    again = train(changed, TrainOptions(seed=42)).model
    for k in range(3):
        assert again.validation.folds[k].standardisation == (
            trained.model.validation.folds[k].standardisation
        )
        assert again.validation.folds[k].train_rows == (
            trained.model.validation.folds[k].train_rows
        )
    # Fold 3's evaluation (and every later fold's training) did see the change.
    assert again.validation.folds[2].metrics != fold.metrics
    assert again.validation.folds[3].standardisation != (
        trained.model.validation.folds[3].standardisation
    )


def test_final_model_when_only_the_held_out_period_changes_then_stats_and_weights_do_not(
    trained: TrainResult,
) -> None:
    start = {w.file: w.start for w in trained.model.holdout.windows}
    changed = [with_later_candles_changed(s, start[s.name]) for s in sources()]
    again = train(changed, TrainOptions(seed=42)).model
    # The training rows are the same bytes (same hash, same standardisation): the fit is the
    # same computation, so it lands within its own rounding bound; a held-out candle that
    # leaked into training would move the weights by orders of magnitude more.
    assert again.training.data_sha256 == trained.model.training.data_sha256
    assert again.standardisation == trained.model.standardisation
    assert_same_fit(again, trained.model)
    assert_same_within_rounding(
        again.validation.model_dump(), trained.model.validation.model_dump()
    )
    assert again.holdout.data_sha256 != trained.model.holdout.data_sha256
    assert again.holdout.metrics != trained.model.holdout.metrics


# -- metrics and the fit ----------------------------------------------------------------------


def test_roc_auc_when_hand_computed_examples_then_equal() -> None:
    # Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered right.
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    # A tie between a positive and a negative counts a half: (0.5 + 1 + 1 + 1) / 4.
    assert roc_auc([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1]) == 0.875
    assert roc_auc([0.1, 0.2, 0.3], [1, 1, 0]) == 0.0
    assert roc_auc([0.1, 0.2], [1, 1]) is None
    assert average_ranks([3.0, 1.0, 3.0, 2.0, 3.0]).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]


def test_roc_auc_when_many_ties_then_equals_the_pairwise_count() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 6, 300).astype(np.float64)
    labels = rng.integers(0, 2, 300)
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    expected = pairs / (len(pos) * len(neg))
    # The rank formula: (sum of positives' average ranks - n1 (n1 + 1) / 2) / (n1 n0).
    ranks = average_ranks(scores)
    n1, n0 = len(pos), len(neg)
    by_ranks = (ranks[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    assert roc_auc(scores, labels) == pytest.approx(expected, abs=1e-12)
    assert by_ranks == pytest.approx(expected, abs=1e-12)


def test_fit_logistic_when_labels_follow_a_known_direction_then_it_recovers_it() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(20_000, 4))
    true_w, true_b = np.array([2.0, -1.0, 0.5, 0.0]), 0.3
    y = (rng.uniform(size=len(x)) < 1 / (1 + np.exp(-(x @ true_w + true_b)))).astype(np.int8)
    w, b, iterations = fit_logistic(x, y, l2=1e-3, seed=0)
    cosine = float(w @ true_w / (np.linalg.norm(w) * np.linalg.norm(true_w)))
    assert cosine > 0.995
    np.testing.assert_allclose(w, true_w, atol=0.08)
    assert b == pytest.approx(true_b, abs=0.06)
    assert iterations < 30
    # The seed only starts a convex descent: another start reaches the same optimum within
    # the fit's rounding bound (about 1e-13 here), as does the same start again.
    tolerance = weight_tolerance(x, y, w, b, l2=1e-3)
    assert 0 < tolerance < 1e-10
    for seed in (0, 99):
        w_again, b_again, _ = fit_logistic(x, y, l2=1e-3, seed=seed)
        np.testing.assert_allclose(w_again, w, rtol=0, atol=tolerance)
        assert b_again == pytest.approx(b, rel=0, abs=tolerance)


def test_fit_logistic_when_the_loss_cannot_resolve_the_last_step_then_it_still_takes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Near the optimum a Newton step lowers the loss by less than the loss's own rounding
    (about 1e-13 of it); on some processors the comparison then went the wrong way, the
    step was halved away and the fit stopped 4e-10 short. Here every loss evaluated after
    the first is off by up to 1e-12 of itself, either way, as rounding would leave it; eight
    noise sequences, so that a fit which trusts the comparison fails almost surely."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5000, 5))
    y = (x @ np.array([1.0, -0.5, 0.25, 0.0, 2.0]) + rng.logistic(size=5000) > 0).astype(np.int8)
    w, b, _ = fit_logistic(x, y, l2=1.0, seed=3)
    tolerance = weight_tolerance(x, y, w, b, l2=1.0)
    exact = logistic._objective

    for noise_seed in range(8):
        noise = np.random.default_rng(noise_seed)

        def noisy(*args: Any, noise: np.random.Generator = noise) -> float:
            return float(exact(*args) * (1 + 1e-12 * noise.uniform(-1.0, 1.0)))

        monkeypatch.setattr(logistic, "_objective", noisy)
        w_noisy, b_noisy, _ = fit_logistic(x, y, l2=1.0, seed=3)
        np.testing.assert_allclose(w_noisy, w, rtol=0, atol=tolerance)
        assert b_noisy == pytest.approx(b, rel=0, abs=tolerance)


def test_fit_logistic_when_l2_is_large_then_weights_shrink() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2000, 3))
    y = (x[:, 0] + rng.normal(size=2000) > 0).astype(np.int8)
    small, _, _ = fit_logistic(x, y, l2=0.01, seed=1)
    large, _, _ = fit_logistic(x, y, l2=5000.0, seed=1)
    assert np.linalg.norm(large) < 0.2 * np.linalg.norm(small)


# -- the model file ---------------------------------------------------------------------------


def train_cli(tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "model.json"
    data = [str(bundled_file(name)) for name in BTC_FILES]
    code = main(["train", "--data", *data, "--out", str(out), *extra])
    return code, json.loads(out.read_text()) if out.exists() else {}


def test_train_cli_when_bundled_markets_then_the_model_file_holds_every_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, model = train_cli(tmp_path, "--seed", "7", "--stake", "0.5", "--fee", "0.002")
    assert code == 0
    out = capsys.readouterr().out
    assert "out-of-sample AUC" in out and "vs majority baseline" in out
    assert "buy_and_hold" in out and "sma_cross" in out
    assert f"model written to {tmp_path / 'model.json'}" in out

    assert model["format"] == "tickstep.ml.logistic_regression" and model["version"] == 1
    names = [f["name"] for f in model["features"]]
    assert names == [f.name for f in DEFAULT_FEATURES] and len(names) <= 12
    assert model["features"][4] == {
        "name": "macd_hist",
        "kind": "macd_hist",
        "params": {"fast": 12, "slow": 26, "signal": 9},
    }
    assert len(model["weights"]) == len(names) and isinstance(model["bias"], float)
    assert len(model["standardisation"]["mean"]) == len(model["standardisation"]["std"]) == 11
    assert model["horizon"] == 12
    assert model["thresholds"] == {"buy_above": 0.55, "sell_below": 0.45}
    training = model["training"]
    assert training["seed"] == 7
    assert len(training["data_sha256"]) == 64
    eth = training["windows"][0]
    assert eth["file"] == "ETH-BTC_5m.csv"
    assert eth["first"] == {"ms": 1515560100000, "iso": "2018-01-10T04:55:00Z"}
    assert eth["last"]["iso"].endswith("Z") and eth["last"]["ms"] > eth["first"]["ms"]
    validation = model["validation"]
    assert len(validation["folds"]) == 5
    for fold in validation["folds"]:
        assert set(fold["metrics"]) >= {"accuracy", "auc", "majority_baseline", "rows"}
    assert set(validation["pooled"]) >= {"accuracy", "auc", "majority_baseline"}
    assert validation["verdict"].startswith("out-of-sample AUC")
    assert validation["verdict"] in out
    holdout = model["holdout"]
    assert set(holdout["metrics"]) >= {"accuracy", "auc", "majority_baseline"}
    backtest = holdout["backtest"]
    assert backtest["stake"] == "0.5" and backtest["fee"] == "0.002"
    for name in ("ml", "buy_and_hold", "sma_cross"):
        assert backtest[name]["strategy"] == name
        assert backtest[name]["markets"] == 3
    assert backtest["buy_and_hold"]["trades"] == 3
    # And it is a model the strategy accepts.
    assert MlModel.model_validate(model).horizon == 12


def test_buy_and_hold_when_backtested_then_enters_at_the_held_out_first_open_and_exits_last(
    trained: TrainResult,
) -> None:
    from decimal import Decimal

    bh = trained.model.holdout.backtest.buy_and_hold
    expected = Decimal(0)
    for window in trained.model.holdout.windows:
        c = load_csv(bundled_file(window.file))
        entry, exit_ = Decimal(repr(float(c.open[window.start]))), Decimal(repr(float(c.open[-1])))
        amount = Decimal(1) / entry
        fee = Decimal("0.001")
        expected += amount * exit_ * (1 - fee) - amount * entry * (1 + fee)
        assert window.first.ms == int(c.timestamp[window.start])
    assert Decimal(bh.total_pnl) == pytest.approx(expected, abs=Decimal("1e-20"))


def test_bundled_model_when_retrained_here_then_within_the_tolerance_it_records(
    trained: TrainResult,
) -> None:
    bundled = load_model()
    assert bundled is load_model(bundled_model_path())  # cached by path
    assert bundled.training.seed == 42
    assert [w.file for w in bundled.training.windows] == list(BTC_FILES)
    # The release records what trained it: the last bits of a fit depend on these.
    environment = bundled.training.environment
    assert environment is not None
    assert environment.numpy and environment.python and "kernel" in environment.blas
    model = trained.model
    # Same candles, same rows: exact (hashes, the features, the decision thresholds).
    assert model.training.data_sha256 == bundled.training.data_sha256
    assert model.holdout.data_sha256 == bundled.holdout.data_sha256
    assert model.features == bundled.features
    assert model.thresholds == bundled.thresholds
    # The numbers within what the computation really has, on any machine.
    assert_same_fit(model, bundled)


def test_fit_when_trained_on_two_blas_kernels_then_they_agree_within_the_recorded_tolerance() -> (
    None
):
    """The bound is not only derived: OpenBLAS's baseline kernel and this machine's own one
    (blocking, FMA, SIMD width all differ) retrain the bundled model and must agree within
    it. Each run is its own process, as OpenBLAS reads OPENBLAS_CORETYPE when it loads."""
    baseline = "ARMV8" if platform.machine() in ("aarch64", "arm64") else "Prescott"
    runs = [retrain_in_process({"OPENBLAS_CORETYPE": baseline}), retrain_in_process({})]
    kernels = [run["kernel"] for run in runs]
    assert kernels[0] != kernels[1], f"both runs used the {kernels[0]} kernel"
    a, b = (MlModel.model_validate(run["model"]) for run in runs)
    assert_same_fit(a, b)


def retrain_in_process(env: dict[str, str]) -> dict[str, Any]:
    code = (
        "import json\n"
        "from threadpoolctl import threadpool_info\n"
        "from tickstep.candles import bundled_file, load_csv, market_from_filename\n"
        "from tickstep.training import CandleSource, TrainOptions, train\n"
        f"names = {BTC_FILES!r}\n"
        "sources = [CandleSource(n, market_from_filename(n), load_csv(bundled_file(n))) "
        "for n in names]\n"
        "model = train(sources, TrainOptions(seed=42)).model\n"
        "kernel = [p['architecture'] for p in threadpool_info() if p['user_api'] == 'blas']\n"
        "print(json.dumps({'kernel': kernel, 'model': model.model_dump(mode='json')}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def write_text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.json"
    path.write_text(text)
    return path


def write_model(tmp_path: Path, change: dict[str, Any]) -> Path:
    data = json.loads(bundled_model_path().read_text())
    data.update(change)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "absent.json", "no such file"),
        (lambda d: write_text(d, "{not json"), "not valid JSON"),
        (lambda d: write_text(d, "[1, 2]"), "not a model file"),
        (lambda d: write_model(d, {"version": 2}), "version 2 is not supported"),
        (
            lambda d: write_model(
                d, {"features": [{"name": "x", "kind": "astrology", "params": {}}]}
            ),
            "unknown kind 'astrology'",
        ),
        (
            lambda d: write_model(
                d, {"features": [{"name": "r", "kind": "rsi", "params": {"period": 0}}]}
            ),
            "feature 'r'",
        ),
        (lambda d: write_model(d, {"weights": [0.1, 0.2]}), "weights: 2 values for 11 features"),
        (lambda d: write_model(d, {"bias": None}), "bias"),
        (lambda d: write_model(d, {"surprise": 1}), "surprise"),
    ],
    ids=[
        "missing",
        "not-json",
        "not-a-model",
        "version",
        "unknown-feature",
        "bad-param",
        "weights",
        "bias",
        "extra-field",
    ],
)
def test_ml_strategy_when_the_model_file_is_unusable_then_config_error_names_it(
    tmp_path: Path, setup: Any, message: str
) -> None:
    path = setup(tmp_path)
    with pytest.raises(ConfigError, match=message) as info:
        build_strategy(StrategyConfig(name="ml", params={"model": str(path)}))
    assert str(path.resolve()) in str(info.value)


def test_config_when_a_market_points_at_a_missing_model_then_fails_at_load_time(
    tmp_path: Path,
) -> None:
    from tickstep.config import DEFAULT_LIMITS

    config = {
        "markets": [
            {
                "market": {"exchange": "paper", "symbol": "ETH/BTC", "timeframe": "5m"},
                "strategy": {"name": "ml", "params": {"model": str(tmp_path / "nope.json")}},
            }
        ],
        "limits": DEFAULT_LIMITS.model_dump(mode="json"),
    }
    with pytest.raises(ConfigError, match=r"nope\.json: no such file"):
        load_config_dict(config)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"buy_above": 1.5}, "buy_above"),
        ({"sell_below": 0.6}, r"sell_below \(0.6\) must not be above buy_above \(0.55\)"),
        ({"threshold": 0.5}, "threshold"),
    ],
)
def test_ml_strategy_when_thresholds_are_bad_then_config_error(
    params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_strategy(StrategyConfig(name="ml", params=params))


# -- the strategy -----------------------------------------------------------------------------


def test_ml_series_when_thresholds_given_then_buy_above_sell_below_and_strength_is_p(
    eth_btc_candles: CandleArrays,
) -> None:
    strategy = build_strategy(
        StrategyConfig(name="ml", params={"buy_above": 0.6, "sell_below": 0.4})
    )
    series = strategy.series(eth_btc_candles)
    p = series.indicators["p_up"]
    assert strategy.warmup == 49
    assert np.isnan(p[:49]).all() and np.isfinite(p[49:]).all()
    buy, sell = series.action == 1, series.action == -1
    assert buy.sum() > 10 and sell.sum() > 10
    np.testing.assert_array_equal(buy[49:], p[49:] > 0.6)
    np.testing.assert_array_equal(sell[49:], p[49:] < 0.4)
    np.testing.assert_array_equal(series.strength[buy], p[buy])
    np.testing.assert_array_equal(series.strength[sell], 1 - p[sell])
    assert (series.strength[series.action == 0] == 0).all()


def test_ml_live_signal_when_computed_on_every_prefix_then_equals_that_element_of_the_series(
    eth_btc: Market, eth_btc_candles: CandleArrays
) -> None:
    strategy = build_strategy(StrategyConfig(name="ml"))
    window = CandleArrays(
        *(
            getattr(eth_btc_candles, f)[2000:2300]
            for f in ("timestamp", "open", "high", "low", "close", "volume")
        )
    )
    series = strategy.series(window)
    assert (series.action == 1).any() and (series.action == -1).any()
    expected = {1: SignalAction.BUY, 0: SignalAction.HOLD, -1: SignalAction.SELL}
    for n in range(1, len(window) + 1):
        live = strategy.signal(eth_btc, window.head(n))
        i = n - 1
        assert live.action is expected[int(series.action[i])], i
        assert live.candle_time == int(window.timestamp[i])
        assert live.strategy == "ml"
        # RSI, MACD and ATR are exponential filters: a prefix may differ in the last bits.
        assert live.strength == pytest.approx(float(series.strength[i]), rel=1e-12, abs=1e-15)
        p = series.indicators["p_up"][i]
        if np.isnan(p):
            assert live.indicators["p_up"] is None
        else:
            assert live.indicators["p_up"] == pytest.approx(float(p), rel=1e-12)
            if live.action is SignalAction.BUY:
                assert live.strength == live.indicators["p_up"]
            elif live.action is SignalAction.SELL:
                assert live.strength == 1 - live.indicators["p_up"]


# -- the CLI ----------------------------------------------------------------------------------


def test_train_cli_when_a_file_is_missing_then_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["train", "--data", str(tmp_path / "DOGE-BTC_5m.csv"), "--out", str(tmp_path / "m")]
    )
    assert code == 2
    assert "DOGE-BTC_5m.csv: no such candle file" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_train_cli_when_a_file_is_not_candles_then_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "DOGE-BTC_5m.csv"
    bad.write_text("date,price\n2018-01-01,1\n")
    assert main(["train", "--data", str(bad), "--out", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert "tickstep train: DOGE-BTC_5m.csv: not a candle file" in err
    assert "timestamp_ms,open,high,low,close,volume" in err
    readme = tmp_path / "notes.txt"
    readme.write_text("hello\n")
    assert main(["train", "--data", str(readme), "--out", str(tmp_path / "m.json")]) == 2
    assert "expected a file name like ETH-BTC_5m.csv" in capsys.readouterr().err


def test_train_cli_when_too_few_candles_for_the_folds_then_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = str(bundled_file("XRP-ETH_5m.csv"))  # 706 candles
    assert main(["train", "--data", small, "--out", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert "706 candles are too few for 5 folds" in err and "fewer --folds" in err
    # Fewer folds and a shorter horizon make it enough.
    args = ["--folds", "2", "--horizon", "3"]
    assert main(["train", "--data", small, "--out", str(tmp_path / "m.json"), *args]) == 0


def test_train_cli_when_out_directory_does_not_exist_then_exits_2_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = train_cli(tmp_path / "missing")
    assert code == 2
    assert f"the directory {tmp_path / 'missing'} does not exist" in capsys.readouterr().err
    code, _ = train_cli(tmp_path, "--fee", "lots")
    assert code == 2
    assert "--fee: expected a decimal number, got 'lots'" in capsys.readouterr().err
    code, _ = train_cli(tmp_path, "--sell-below", "0.7")
    assert code == 2
    assert "sell_below <= buy_above" in capsys.readouterr().err


def test_backtest_cli_when_strategy_ml_then_runs_on_the_bundled_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = str(bundled_file("ETH-BTC_5m.csv"))
    args = ["backtest", "--data", data, "--strategy", "ml", "--stake", "1", "--fee", "0.001"]
    assert main([*args, "--param", "buy_above=0.6"]) == 0
    assert "tickstep backtest: ml, 1 market(s)" in capsys.readouterr().out


def test_trained_models_differ_only_by_convergence_tolerance_across_seeds() -> None:
    a = train(sources(), TrainOptions(seed=1)).model
    b = train(sources(), TrainOptions(seed=2)).model
    assert_same_fit(a, b)
    assert a.training.seed != b.training.seed


def test_train_cli_when_prices_are_a_random_walk_then_it_says_no_edge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing to learn: the summary must say so rather than dress up noise."""
    rng = np.random.default_rng(2024)
    n = 6000
    close = 0.05 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    open_ = np.concatenate([[0.05], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.001, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.001, n))
    volume = rng.lognormal(5.0, 1.0, n)
    ts = 1_600_000_000_000 + 300_000 * np.arange(n)
    path = tmp_path / "RND-BTC_5m.csv"
    rows = "\n".join(
        f"{t},{o!r},{h!r},{lo!r},{c!r},{v!r}"
        for t, o, h, lo, c, v in zip(
            ts.tolist(),
            open_.tolist(),
            high.tolist(),
            low.tolist(),
            close.tolist(),
            volume.tolist(),
            strict=True,
        )
    )
    path.write_text("timestamp_ms,open,high,low,close,volume\n" + rows + "\n")
    out = tmp_path / "rnd.json"
    assert main(["train", "--data", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    model = json.loads(out.read_text())
    pooled = model["validation"]["pooled"]
    assert abs(pooled["auc"] - 0.5) < 0.05
    assert model["validation"]["edge"] is False
    assert model["validation"]["verdict"].endswith(": no edge")
    assert (
        f"out-of-sample AUC {pooled['auc']:.3f} vs 0.500 chance; accuracy "
        f"{pooled['accuracy']:.3f} vs majority baseline {pooled['majority_baseline']:.3f}: "
        "no edge"
    ) in printed
