"""``tickstep train``: a logistic regression on indicator features, validated walk-forward.

What is learnt: the probability that the close ``horizon`` candles ahead is above this close
(label 1 if ``close[i + h] > close[i]``, else 0; the last ``h`` candles of a file have no
label and are never trained on), from the features of :mod:`tickstep.features` (candles
``0 .. i`` only). The fit is L2-regularised logistic regression by Newton's method (IRLS)
with a step-halving line search; the loss is convex, so the result does not depend on the
seed (which only draws the starting weights) beyond rounding. The same machine and libraries
give the same bits; another processor or BLAS kernel gives weights within
:func:`weight_tolerance`, which the model file records.

How it is judged, per file and never across time:

* The last ``holdout`` fraction of each file is held out: no fold and not the final model
  sees it.
* Walk-forward over the rest (expanding window): the labelled rows are cut into
  ``folds + 1`` consecutive blocks; fold ``k`` evaluates block ``k`` with a model trained
  on every row before it, except the ``horizon`` rows just before the block, whose labels
  would read candles of the evaluation window. Standardisation (mean, std) comes from the
  fold's training rows only. Files are pooled: a fold trains on each file's training
  rows and evaluates each file's block.
* Figures: accuracy (p > 0.5), ROC AUC (ranks, ties averaged) and the majority-class
  baseline (always predicting the training rows' more frequent label), per fold and pooled.
* The final model is fit on all rows before the held-out period (less the gap) and
  evaluated there, and the ``ml`` strategy is backtested there with the existing
  backtester beside buy-and-hold and ``sma_cross``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

from tickstep.candles import FloatArray
from tickstep.features import lookback as features_lookback
from tickstep.strategies.ml import (
    MODEL_FORMAT,
    MODEL_VERSION,
    Fold,
    FoldWindow,
    HeldOut,
    Metrics,
    MlModel,
    Standardisation,
    Thresholds,
    TrainingInfo,
    Validation,
    predict_proba,
)
from tickstep.training.data import (
    ALGORITHM,
    HASH_RULE,
    LABEL_RULE,
    MIN_EVAL_ROWS,
    MIN_TRAIN_ROWS,
    CandleSource,
    TrainingError,
    TrainOptions,
    TrainResult,
    data_hash,
    fold_windows,
    load_sources,
    prepare,
    slice_candles,
)
from tickstep.training.holdout import held_out_backtests
from tickstep.training.logistic import (
    auc_standard_error,
    average_ranks,
    fit_logistic,
    numeric_environment,
    roc_auc,
    weight_tolerance,
)
from tickstep.training.summary import render_train_summary

__all__ = [
    "ALGORITHM",
    "HASH_RULE",
    "LABEL_RULE",
    "MIN_EVAL_ROWS",
    "MIN_TRAIN_ROWS",
    "CandleSource",
    "TrainOptions",
    "TrainResult",
    "TrainingError",
    "average_ranks",
    "fit_logistic",
    "fold_windows",
    "load_sources",
    "numeric_environment",
    "render_train_summary",
    "roc_auc",
    "train",
    "train_files",
    "weight_tolerance",
    "write_model",
]


def _standardisation(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[~(std > 0)] = 1.0  # a constant feature: left as it is (its weight can do nothing)
    return mean, std


def _metrics(p: FloatArray, y: npt.NDArray[np.int8], majority: int) -> Metrics:
    truth = y.astype(np.bool_)
    auc = roc_auc(p, truth)
    return Metrics(
        rows=len(y),
        accuracy=float(np.mean((p > 0.5) == truth)),
        auc=auc,
        majority_class=1 if majority else 0,
        majority_baseline=float(np.mean(y == majority)),
        positive_rate=float(np.mean(truth)),
    )


def _majority(y: npt.NDArray[np.int8]) -> int:
    return 1 if 2 * int(y.sum()) > len(y) else 0


@dataclass(frozen=True)
class _Fit:
    weights: FloatArray
    bias: float
    mean: FloatArray
    std: FloatArray
    iterations: int
    majority: int
    rows: int
    positive_rate: float
    tolerance: float

    def predict(self, x: FloatArray) -> FloatArray:
        return predict_proba(
            x, self.weights.tolist(), self.bias, self.mean.tolist(), self.std.tolist()
        )

    @property
    def standardisation(self) -> Standardisation:
        return Standardisation(mean=tuple(self.mean.tolist()), std=tuple(self.std.tolist()))


def _fit(x: FloatArray, y: npt.NDArray[np.int8], options: TrainOptions) -> _Fit:
    mean, std = _standardisation(x)
    standardised = (x - mean) / std
    weights, bias, iterations = fit_logistic(standardised, y, options.l2, options.seed)
    tolerance = weight_tolerance(standardised, y, weights, bias, options.l2)
    return _Fit(
        weights,
        bias,
        mean,
        std,
        iterations,
        _majority(y),
        len(y),
        float(np.mean(y == 1)),
        tolerance,
    )


class Judgement(TypedDict):
    """What the model file says of a set of figures (the pooled folds', the held-out)."""

    auc_standard_error: float | None
    edge: bool
    verdict: str


def _verdict(title: str, m: Metrics, horizon: int) -> Judgement:
    """Whether the figures show an edge: AUC above 0.5 by more than two standard errors
    (counting rows / horizon independent samples, as consecutive labels overlap) and
    accuracy above the majority baseline."""
    positives = m.rows * m.positive_rate
    negatives = m.rows - positives
    se = None
    if m.auc is not None:
        se = auc_standard_error(m.auc, positives / horizon, negatives / horizon)
    edge = (
        m.auc is not None
        and se is not None
        and m.auc - 0.5 > 2 * se
        and m.accuracy > m.majority_baseline
    )
    auc = "n/a" if m.auc is None else f"{m.auc:.3f}"
    text = (
        f"{title} AUC {auc} vs 0.500 chance; accuracy {m.accuracy:.3f} vs majority baseline "
        f"{m.majority_baseline:.3f}: "
    )
    if edge:
        text += (
            "a predictive edge (AUC more than 2 standard errors above chance, accuracy above "
            "the baseline; not a trading result)"
        )
    else:
        text += "no edge"
    return Judgement(auc_standard_error=se, edge=edge, verdict=text)


def train(sources: Sequence[CandleSource], options: TrainOptions | None = None) -> TrainResult:
    """Walk-forward validation, the final fit, the held-out evaluation and backtests."""
    started = time.perf_counter()
    options = options or TrainOptions()
    if not sources:
        raise TrainingError("--data: at least one candle file is needed")
    lookback = features_lookback(options.features)
    prepared = [prepare(s, options, lookback) for s in sources]
    warnings: list[str] = []

    folds: list[Fold] = []
    pooled_p: list[FloatArray] = []
    pooled_y: list[npt.NDArray[np.int8]] = []
    pooled_majority: list[npt.NDArray[np.int8]] = []
    for k in range(options.folds):
        train_parts = [p.rows(*p.windows[k][:2]) for p in prepared]
        eval_parts = [p.rows(*p.windows[k][2:]) for p in prepared]
        x_train = np.concatenate([x for x, _ in train_parts])
        y_train = np.concatenate([y for _, y in train_parts])
        x_eval = np.concatenate([x for x, _ in eval_parts])
        y_eval = np.concatenate([y for _, y in eval_parts])
        fit = _fit(x_train, y_train, options)
        p_eval = fit.predict(x_eval)
        pooled_p.append(p_eval)
        pooled_y.append(y_eval)
        pooled_majority.append(np.full(len(y_eval), fit.majority, dtype=np.int8))
        folds.append(
            Fold(
                fold=k + 1,
                windows=tuple(
                    FoldWindow(
                        file=p.source.name,
                        train_start=p.windows[k][0],
                        train_stop=p.windows[k][1],
                        eval_start=p.windows[k][2],
                        eval_stop=p.windows[k][3],
                    )
                    for p in prepared
                ),
                train_rows=fit.rows,
                standardisation=fit.standardisation,
                metrics=_metrics(p_eval, y_eval, fit.majority),
            )
        )
    all_y = np.concatenate(pooled_y)
    all_majority = np.concatenate(pooled_majority)
    pooled = _metrics(np.concatenate(pooled_p), all_y, 0).model_copy(
        update={
            "majority_baseline": float(np.mean(all_y == all_majority)),
            "majority_class": _majority(all_majority),
        }
    )
    validation = Validation(
        scheme=(
            f"walk-forward, expanding window, {options.folds} folds per file, pooled over "
            f"files; a gap of {options.horizon} candles (the horizon) between each training "
            "window and its evaluation window; pooled majority baseline: each fold's own"
        ),
        gap=options.horizon,
        folds=tuple(folds),
        pooled=pooled,
        **_verdict("out-of-sample", pooled, options.horizon),
    )

    # The final model: every labelled row before the held-out period, less the gap.
    final_parts = [p.rows(lookback, p.holdout_start - options.horizon) for p in prepared]
    x_final = np.concatenate([x for x, _ in final_parts])
    y_final = np.concatenate([y for _, y in final_parts])
    fit = _fit(x_final, y_final, options)
    held_parts = [p.rows(p.holdout_start, len(p.source.candles)) for p in prepared]
    x_held = np.concatenate([x for x, _ in held_parts])
    y_held = np.concatenate([y for _, y in held_parts])
    held_metrics = _metrics(fit.predict(x_held), y_held, fit.majority)
    held_judgement = _verdict("held-out", held_metrics, options.horizon)

    training = TrainingInfo(
        algorithm=ALGORITHM,
        label=LABEL_RULE,
        l2=options.l2,
        seed=options.seed,
        iterations=fit.iterations,
        holdout_fraction=options.holdout,
        windows=tuple(p.window(0, p.holdout_start) for p in prepared),
        rows=fit.rows,
        positive_rate=fit.positive_rate,
        data_sha256=data_hash(
            [slice_candles(p.source.candles, 0, p.holdout_start) for p in prepared]
        ),
        data_hash_rule=HASH_RULE,
        weight_tolerance=fit.tolerance,
        environment=numeric_environment(),
    )
    held_windows = tuple(p.window(p.holdout_start, len(p.source.candles)) for p in prepared)
    held_hash = data_hash(
        [slice_candles(p.source.candles, p.holdout_start, len(p.source.candles)) for p in prepared]
    )
    fields: dict[str, Any] = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "features": options.features,
        "weights": tuple(fit.weights.tolist()),
        "bias": fit.bias,
        "standardisation": fit.standardisation,
        "horizon": options.horizon,
        "thresholds": Thresholds(buy_above=options.buy_above, sell_below=options.sell_below),
        "training": training,
        "validation": validation,
    }
    # The held-out backtests need the model; everything but its "holdout" section will do.
    draft = MlModel.model_construct(**fields)
    backtests = held_out_backtests(prepared, draft, options, warnings)
    holdout = HeldOut(
        windows=held_windows,
        data_sha256=held_hash,
        metrics=held_metrics,
        backtest=backtests,
        **held_judgement,
    )
    model = MlModel.model_validate({**fields, "holdout": holdout})
    return TrainResult(model, time.perf_counter() - started, warnings)


def train_files(paths: Sequence[str | Path], options: TrainOptions | None = None) -> TrainResult:
    return train(load_sources(paths), options)


def write_model(model: MlModel, path: str | Path) -> None:
    Path(path).write_text(model.model_dump_json(indent=2) + "\n")
