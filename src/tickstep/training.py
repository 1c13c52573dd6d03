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

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tickstep.backtest import BacktestResult, BacktestSettings, backtest_market, iso_utc
from tickstep.candles import CandleArrays, FloatArray, load_csv, market_from_filename
from tickstep.features import DEFAULT_FEATURES, FeatureError, FeatureSpec, check_features
from tickstep.features import feature_matrix as compute_features
from tickstep.features import lookback as features_lookback
from tickstep.models import Market
from tickstep.strategies.base import BUY, SignalSeries, Strategy, StrategyParams
from tickstep.strategies.builtin import SmaCross, SmaCrossParams
from tickstep.strategies.errors import ConfigError
from tickstep.strategies.ml import (
    MODEL_FORMAT,
    MODEL_VERSION,
    BacktestFigures,
    CandleTime,
    FileWindow,
    Fold,
    FoldWindow,
    HeldOut,
    HeldOutBacktests,
    Metrics,
    MlModel,
    MlParams,
    MlStrategy,
    Standardisation,
    Thresholds,
    TrainingEnvironment,
    TrainingInfo,
    Validation,
    predict_proba,
)

__all__ = [
    "CandleSource",
    "TrainOptions",
    "TrainResult",
    "TrainingError",
    "average_ranks",
    "fit_logistic",
    "fold_windows",
    "load_sources",
    "render_train_summary",
    "roc_auc",
    "train",
    "train_files",
    "weight_tolerance",
    "write_model",
]

MIN_TRAIN_ROWS = 100
"""Rows each file must give the first fold's training window."""
MIN_EVAL_ROWS = 20
"""Rows each file must give every evaluation window (and the held-out period)."""
ALGORITHM = "logistic regression, L2 on the weights (not the bias), Newton/IRLS"
LABEL_RULE = "1 if close[i + horizon] > close[i] else 0"
HASH_RULE = (
    "sha256 over the files in order; per file: the candle count (int64 little-endian), then "
    "timestamp_ms (int64 LE), open, high, low, close, volume (float64 LE) of the candles used"
)
BACKTEST_RULE = (
    "each file's held-out candles, with the candles before them as indicator history only "
    "(no signal before the held-out period is acted on); next-open fills; buy-and-hold "
    "enters at the held-out period's first open and exits at its last open; same fee"
)


class TrainingError(ConfigError):
    """Input ``tickstep train`` cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class TrainOptions:
    horizon: int = 12
    folds: int = 5
    holdout: float = 0.2
    l2: float = 1.0
    seed: int = 42
    buy_above: float = 0.55
    sell_below: float = 0.45
    stake: Decimal = Decimal(1)
    fee: Decimal = Decimal("0.001")
    features: tuple[FeatureSpec, ...] = DEFAULT_FEATURES

    def __post_init__(self) -> None:
        if not 1 <= self.horizon <= 10_000:
            raise TrainingError(f"--horizon must be in 1..10000 candles, got {self.horizon}")
        if not 1 <= self.folds <= 50:
            raise TrainingError(f"--folds must be in 1..50, got {self.folds}")
        if not 0.0 < self.holdout < 0.9:
            raise TrainingError(f"--holdout must be a fraction in (0, 0.9), got {self.holdout}")
        if not (math.isfinite(self.l2) and self.l2 >= 0):
            raise TrainingError(f"--l2 must be >= 0, got {self.l2}")
        if not 0.0 < self.sell_below <= self.buy_above < 1.0:
            raise TrainingError(
                "--sell-below and --buy-above must satisfy 0 < sell_below <= buy_above < 1, "
                f"got {self.sell_below} and {self.buy_above}"
            )
        BacktestSettings(self.stake, self.fee)  # --stake, --fee: BacktestError (a ConfigError)
        try:
            check_features(self.features)
        except FeatureError as exc:
            raise TrainingError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class CandleSource:
    """One market's candles and the name they are reported under (the file name)."""

    name: str
    market: Market
    candles: CandleArrays


@dataclass
class TrainResult:
    model: MlModel
    seconds: float
    warnings: list[str] = field(default_factory=list)


# -- numerics -------------------------------------------------------------------------------


def average_ranks(values: npt.ArrayLike) -> FloatArray:
    """1-based ranks; tied values share the average of their ranks."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    new = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    starts = np.flatnonzero(new)
    stops = np.append(starts[1:], n)
    group = np.cumsum(new) - 1
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = ((starts + 1 + stops) / 2.0)[group]
    return ranks


def roc_auc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float | None:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties counted half; None when the
    labels hold one class only."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(np.bool_)
    if len(s) != len(y):
        raise ValueError(f"scores and labels differ in length: {len(s)} != {len(y)}")
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    rank_sum = float(average_ranks(s)[y].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def auc_standard_error(auc: float, positives: float, negatives: float) -> float | None:
    """Hanley & McNeil (1982) standard error of an AUC (None under one of each class)."""
    if positives < 1 or negatives < 1:
        return None
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    ) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def _sigmoid(z: FloatArray) -> FloatArray:
    with np.errstate(over="ignore"):
        out: FloatArray = 1.0 / (1.0 + np.exp(-z))
    return out


def _objective(a: FloatArray, y: FloatArray, theta: FloatArray, penalty: FloatArray) -> float:
    z = a @ theta
    return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * theta * theta))


LOSS_RESOLUTION = 1e-10
"""Relative change of the loss below which comparing two losses says nothing: summing
thousands of rows leaves rounding noise about 1e-13 of the loss, and its last bits differ
with the BLAS kernel. A Newton step whose predicted decrease is below this is taken whole
(the iterate is deep in Newton's quadratic region: the decrement is under 1e-5 of the loss's
curvature scale), instead of being halved away by noise, which stopped the fit one step
early on some processors and left weights 4e-10 from the optimum."""


def fit_logistic(
    x: FloatArray,
    y: npt.ArrayLike,
    l2: float,
    seed: int,
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> tuple[FloatArray, float, int]:
    """Weights, bias and Newton iterations minimising the log loss summed over rows plus
    ``l2 / 2 * |weights|^2``. Bit-identical for the same inputs, seed, machine and
    libraries; elsewhere within :func:`weight_tolerance`."""
    rows, width = x.shape
    target = np.asarray(y, dtype=np.float64)
    if rows == 0:
        raise ValueError("no rows to fit")
    rng = np.random.default_rng(seed)
    theta = np.concatenate([rng.normal(0.0, 0.01, width), [0.0]])
    a = np.hstack([x, np.ones((rows, 1))])
    penalty = np.full(width + 1, float(l2))
    penalty[-1] = 0.0
    ridge = np.diag(penalty) + 1e-12 * np.eye(width + 1)
    loss = _objective(a, target, theta, penalty)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (the count is returned)
        p = _sigmoid(a @ theta)
        gradient = a.T @ (p - target) + penalty * theta
        hessian = (a * (p * (1.0 - p))[:, None]).T @ a + ridge
        step = np.linalg.solve(hessian, gradient)
        # Half the Newton decrement g'H^-1 g: the decrease the full step should give.
        predicted = 0.5 * float(gradient @ step)
        scale = 1.0
        while True:
            candidate = theta - scale * step
            new_loss = _objective(a, target, candidate, penalty)
            if predicted <= LOSS_RESOLUTION * max(abs(loss), 1.0):
                break  # below what the loss can resolve: the full step, without a search
            if new_loss <= loss or scale < 1e-10:
                break
            scale /= 2.0
        theta, loss = candidate, new_loss
        if float(np.max(np.abs(scale * step))) < tol:
            break
    return theta[:-1].copy(), float(theta[-1]), iterations


def weight_tolerance(
    x: FloatArray, y: npt.ArrayLike, weights: FloatArray, bias: float, l2: float
) -> float:
    """How far another machine's fit of the same rows may land from this one, per weight and
    bias: a first-order rounding bound, not a convergence figure.

    The optimum solves ``F(theta) = A'(sigma(A theta) - y) + P theta = 0``. Evaluating F in
    floating point errs, per component, by at most ``gamma * (|A|'|sigma - y| +
    |A|'(sigma' |A||theta|))``: the gradient's sum over rows, and the rounding of each
    ``a_i . theta`` carried through the sigmoid. ``gamma = (log2(rows) + 4) eps``: a blocked
    or pairwise sum of n terms errs by about log2(n) roundings of its absolute sum (Higham,
    *Accuracy and Stability of Numerical Algorithms*, 4.2), plus a few ulps for the features'
    own exp, log and sqrt, which differ between numpy's SIMD paths. The solution moves by
    ``H^-1 dF``, bounded by ``|H^-1| dF``. Measured on the bundled model: this bound is about
    25x the largest change between OpenBLAS's Prescott, Sandybridge, Haswell and SkylakeX
    kernels (tests/unit/test_ml.py runs two of them)."""
    rows, _ = x.shape
    a = np.hstack([x, np.ones((rows, 1))])
    theta = np.concatenate([np.asarray(weights, dtype=np.float64), [bias]])
    p = _sigmoid(a @ theta)
    curvature = p * (1.0 - p)
    penalty = np.full(len(theta), float(l2))
    penalty[-1] = 0.0
    hessian = (a * curvature[:, None]).T @ a + np.diag(penalty)
    magnitude = np.abs(a)
    residual = np.abs(p - np.asarray(y, dtype=np.float64))
    gamma = (math.log2(max(rows, 2)) + 4.0) * float(np.finfo(np.float64).eps)
    d_gradient = gamma * (
        magnitude.T @ residual + magnitude.T @ (curvature * (magnitude @ np.abs(theta)))
    )
    return float(np.max(np.abs(np.linalg.inv(hessian)) @ d_gradient))


def _standardisation(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[~(std > 0)] = 1.0  # a constant feature: left as it is (its weight can do nothing)
    return mean, std


# -- data -----------------------------------------------------------------------------------


def fold_windows(
    n: int, lookback: int, horizon: int, folds: int, holdout: float
) -> tuple[int, list[tuple[int, int, int, int]]]:
    """The held-out start and each fold's ``(train_start, train_stop, eval_start,
    eval_stop)`` row ranges (half-open) for a file of ``n`` candles.

    Rows ``lookback ..`` have every feature; rows before ``holdout_start - horizon`` have a
    label inside the development period. Those rows are cut into ``folds + 1`` blocks;
    fold k evaluates block k and trains on everything up to ``horizon`` rows before it."""
    holdout_start = n - round(n * holdout)
    labelled_stop = holdout_start - horizon
    span = labelled_stop - lookback
    bounds = [lookback + (j * span) // (folds + 1) for j in range(folds + 2)]
    windows = [
        (lookback, bounds[k] - horizon, bounds[k], bounds[k + 1]) for k in range(1, folds + 1)
    ]
    return holdout_start, windows


def _check_size(name: str, n: int, lookback: int, options: TrainOptions) -> None:
    holdout_start, windows = fold_windows(
        n, lookback, options.horizon, options.folds, options.holdout
    )
    first_train = windows[0][1] - windows[0][0]
    smallest_eval = min(stop - start for _, _, start, stop in windows)
    held_rows = n - options.horizon - holdout_start
    problem = None
    if first_train < MIN_TRAIN_ROWS:
        problem = f"the first fold would train on {max(first_train, 0)} rows (at least "
        problem += f"{MIN_TRAIN_ROWS} are needed)"
    elif smallest_eval < MIN_EVAL_ROWS:
        problem = f"an evaluation window would hold {smallest_eval} rows (at least "
        problem += f"{MIN_EVAL_ROWS} are needed)"
    elif held_rows < MIN_EVAL_ROWS:
        problem = f"the held-out period would hold {max(held_rows, 0)} labelled rows (at least "
        problem += f"{MIN_EVAL_ROWS} are needed)"
    if problem:
        raise TrainingError(
            f"{name}: {n} candles are too few for {options.folds} folds, horizon "
            f"{options.horizon} and a {options.holdout:.0%} held-out period: {problem}; give "
            "more candles, fewer --folds or a shorter --horizon"
        )


def load_sources(paths: Sequence[str | Path]) -> list[CandleSource]:
    """Each candle file as a market (``BASE-QUOTE_TF.csv``), checked before training."""
    if not paths:
        raise TrainingError("--data: at least one candle file is needed")
    sources: list[CandleSource] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise TrainingError(f"{path}: no such candle file")
        try:
            market = market_from_filename(path)
            candles = load_csv(path)
        except (ValueError, OSError) as exc:
            raise TrainingError(f"{path.name}: not a candle file: {exc}") from None
        if any(s.market == market for s in sources):
            raise TrainingError(f"{path.name}: {market.symbol} {market.timeframe} is given twice")
        sources.append(CandleSource(path.name, market, candles))
    return sources


def _slice(c: CandleArrays, start: int, stop: int) -> CandleArrays:
    return CandleArrays(
        c.timestamp[start:stop],
        c.open[start:stop],
        c.high[start:stop],
        c.low[start:stop],
        c.close[start:stop],
        c.volume[start:stop],
    )


def _hash(parts: Sequence[CandleArrays]) -> str:
    digest = hashlib.sha256()
    for c in parts:
        digest.update(np.array([len(c)], dtype="<i8").tobytes())
        digest.update(c.timestamp.astype("<i8").tobytes())
        for column in (c.open, c.high, c.low, c.close, c.volume):
            digest.update(column.astype("<f8").tobytes())
    return digest.hexdigest()


def _candle_time(ms: int) -> CandleTime:
    return CandleTime(ms=ms, iso=iso_utc(ms))


def _market_name(market: Market) -> str:
    return f"{market.symbol} {market.timeframe}"


@dataclass(frozen=True)
class _Prepared:
    source: CandleSource
    x: FloatArray
    y: npt.NDArray[np.int8]
    usable: npt.NDArray[np.bool_]
    holdout_start: int
    windows: list[tuple[int, int, int, int]]

    def window(self, start: int, stop: int) -> FileWindow:
        c = self.source.candles
        return FileWindow(
            file=self.source.name,
            market=_market_name(self.source.market),
            candles=len(c),
            start=start,
            stop=stop,
            first=_candle_time(int(c.timestamp[start])),
            last=_candle_time(int(c.timestamp[stop - 1])),
        )

    def rows(self, start: int, stop: int) -> tuple[FloatArray, npt.NDArray[np.int8]]:
        keep = self.usable[start:stop]
        return self.x[start:stop][keep], self.y[start:stop][keep]


def _prepare(source: CandleSource, options: TrainOptions, lookback: int) -> _Prepared:
    c = source.candles
    _check_size(source.name, len(c), lookback, options)
    x = compute_features(c, options.features)
    h = options.horizon
    y = np.full(len(c), -1, dtype=np.int8)
    y[:-h] = (c.close[h:] > c.close[:-h]).astype(np.int8)
    usable = np.isfinite(x).all(axis=1) & (y >= 0)
    holdout_start, windows = fold_windows(len(c), lookback, h, options.folds, options.holdout)
    return _Prepared(source, x, y, usable, holdout_start, windows)


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


def numeric_environment() -> TrainingEnvironment:
    """What computed the fit: its last bits depend on these (see :func:`weight_tolerance`)."""
    import platform

    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # the dev and CLI installs have it; say so rather than guess
        blas = ["unknown: threadpoolctl is not installed"]
    else:
        blas = [
            f"{pool.get('internal_api')} {pool.get('version')}, {pool.get('architecture')} "
            f"kernel, {pool.get('num_threads')} threads"
            for pool in threadpool_info()
            if pool.get("user_api") == "blas"
        ] or ["none found"]
    return TrainingEnvironment(
        python=platform.python_version(),
        numpy=np.__version__,
        blas="; ".join(blas),
        machine=f"{platform.machine()} {platform.system()}",
    )


def _verdict(title: str, m: Metrics, horizon: int) -> tuple[bool, float | None, str]:
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
    return edge, se, text


# -- held-out backtests ---------------------------------------------------------------------


class _ActsFrom(Strategy[StrategyParams]):
    """Another strategy's signals, with every signal before ``start_ms`` dropped: the
    candles before it are indicator history only."""

    name = "acts_from"
    params_type = StrategyParams

    def __init__(self, inner: Strategy[Any], start_ms: int) -> None:
        super().__init__(StrategyParams())
        self.inner = inner
        self.start_ms = start_ms

    @property
    def warmup(self) -> int:
        return self.inner.warmup

    def series(self, candles: CandleArrays) -> SignalSeries:
        s = self.inner.series(candles)
        action = np.where(candles.timestamp < self.start_ms, np.int8(0), s.action)
        return SignalSeries(action.astype(np.int8), s.strength, s.indicators)


class _BuyAndHold(Strategy[StrategyParams]):
    """A BUY at the close of the candle before ``start_ms``: filled at the held-out
    period's first open, and force-exited at the last candle's open."""

    name = "buy_and_hold"
    params_type = StrategyParams

    def __init__(self, start_ms: int) -> None:
        super().__init__(StrategyParams())
        self.start_ms = start_ms

    @property
    def warmup(self) -> int:
        return 0

    def series(self, candles: CandleArrays) -> SignalSeries:
        action = np.zeros(len(candles), dtype=np.int8)
        first = int(np.searchsorted(candles.timestamp, self.start_ms))
        if first >= 1:
            action[first - 1] = BUY
        return SignalSeries(action, action.astype(np.float64), {})


def _figures(result: BacktestResult) -> BacktestFigures:
    s = result.summary()
    return BacktestFigures(
        strategy=result.strategy,
        markets=s["markets"],
        candles=s["candles"],
        trades=s["trades"],
        win_rate=s["win_rate"],
        total_pnl=s["total_pnl"],
        total_return=s["total_return"],
        max_drawdown=s["max_drawdown"],
        sharpe=s["sharpe"],
        exposure=s["exposure"],
        fees_paid=s["fees_paid"],
        pnl_by_market={_market_name(m.market): f"{m.pnl:f}" for m in result.markets},
    )


def _held_out_backtests(
    prepared: list[_Prepared], model: MlModel, options: TrainOptions, warnings: list[str]
) -> HeldOutBacktests:
    settings = BacktestSettings(options.stake, options.fee)
    ml = MlStrategy(
        MlParams(buy_above=options.buy_above, sell_below=options.sell_below), model=model
    )
    sma = SmaCross(SmaCrossParams())
    history = max(ml.warmup, sma.warmup)
    results = {
        name: BacktestResult(settings=settings, strategy=name, markets=[])
        for name in ("ml", "buy_and_hold", "sma_cross")
    }
    for p in prepared:
        c = p.source.candles
        start_ms = int(c.timestamp[p.holdout_start])
        candles = _slice(c, max(p.holdout_start - history, 0), len(c))
        strategies: dict[str, Strategy[Any]] = {
            "ml": _ActsFrom(ml, start_ms),
            "buy_and_hold": _BuyAndHold(start_ms),
            "sma_cross": _ActsFrom(sma, start_ms),
        }
        for name, strategy in strategies.items():
            market_result, warning = backtest_market(p.source.market, candles, strategy, settings)
            results[name].markets.append(market_result)
            if warning and name == "ml":
                warnings.append(f"held-out backtest: {warning}")
    return HeldOutBacktests(
        stake=f"{options.stake:f}",
        fee=f"{options.fee:f}",
        rule=BACKTEST_RULE,
        ml=_figures(results["ml"]),
        buy_and_hold=_figures(results["buy_and_hold"]),
        sma_cross=_figures(results["sma_cross"]),
    )


# -- training -------------------------------------------------------------------------------


def train(sources: Sequence[CandleSource], options: TrainOptions | None = None) -> TrainResult:
    """Walk-forward validation, the final fit, the held-out evaluation and backtests."""
    started = time.perf_counter()
    options = options or TrainOptions()
    if not sources:
        raise TrainingError("--data: at least one candle file is needed")
    lookback = features_lookback(options.features)
    prepared = [_prepare(s, options, lookback) for s in sources]
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
    edge, se, verdict = _verdict("out-of-sample", pooled, options.horizon)
    validation = Validation(
        scheme=(
            f"walk-forward, expanding window, {options.folds} folds per file, pooled over "
            f"files; a gap of {options.horizon} candles (the horizon) between each training "
            "window and its evaluation window; pooled majority baseline: each fold's own"
        ),
        gap=options.horizon,
        folds=tuple(folds),
        pooled=pooled,
        auc_standard_error=se,
        edge=edge,
        verdict=verdict,
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
    held_edge, held_se, held_verdict = _verdict("held-out", held_metrics, options.horizon)

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
        data_sha256=_hash([_slice(p.source.candles, 0, p.holdout_start) for p in prepared]),
        data_hash_rule=HASH_RULE,
        weight_tolerance=fit.tolerance,
        environment=numeric_environment(),
    )
    held_windows = tuple(p.window(p.holdout_start, len(p.source.candles)) for p in prepared)
    held_hash = _hash(
        [_slice(p.source.candles, p.holdout_start, len(p.source.candles)) for p in prepared]
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
    backtests = _held_out_backtests(prepared, draft, options, warnings)
    holdout = HeldOut(
        windows=held_windows,
        data_sha256=held_hash,
        metrics=held_metrics,
        auc_standard_error=held_se,
        edge=held_edge,
        verdict=held_verdict,
        backtest=backtests,
    )
    model = MlModel.model_validate({**fields, "holdout": holdout})
    return TrainResult(model, time.perf_counter() - started, warnings)


def train_files(paths: Sequence[str | Path], options: TrainOptions | None = None) -> TrainResult:
    return train(load_sources(paths), options)


def write_model(model: MlModel, path: str | Path) -> None:
    Path(path).write_text(model.model_dump_json(indent=2) + "\n")


# -- output ---------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.2f}%"


def _auc(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


def render_train_summary(result: TrainResult) -> str:
    m = result.model
    t, v, h = m.training, m.validation, m.holdout
    candles = sum(w.candles for w in t.windows)
    lines = [
        f"tickstep train: {len(t.windows)} file(s), {candles:,} candles, {len(m.features)} "
        f"features, horizon {m.horizon} candles, seed {t.seed}, {result.seconds:.2f}s",
        "",
        f"walk-forward ({len(v.folds)} folds, expanding window, gap {v.gap} candles; the last "
        f"{t.holdout_fraction:.0%} of each file held out):",
        f"  {'fold':<8}{'train rows':>11}{'eval rows':>11}{'accuracy':>10}{'AUC':>7}"
        f"{'majority':>10}",
    ]
    for fold in v.folds:
        f = fold.metrics
        lines.append(
            f"  {fold.fold:<8}{fold.train_rows:>11,}{f.rows:>11,}{f.accuracy:>10.3f}"
            f"{_auc(f.auc):>7}{f.majority_baseline:>10.3f}"
        )
    p = v.pooled
    lines += [
        f"  {'pooled':<8}{'':>11}{p.rows:>11,}{p.accuracy:>10.3f}{_auc(p.auc):>7}"
        f"{p.majority_baseline:>10.3f}",
        "",
        v.verdict,
        "",
        f"final model: fit on {t.rows:,} rows before the held-out period; held-out "
        f"{h.metrics.rows:,} rows:",
        h.verdict,
        "",
        f"held-out backtest (stake {h.backtest.stake} per trade per market, fee "
        f"{h.backtest.fee} per side; thresholds buy above {m.thresholds.buy_above}, "
        f"sell below {m.thresholds.sell_below}):",
        f"  {'strategy':<14}{'trades':>7}{'return':>10}{'max dd':>9}{'exposure':>10}{'pnl':>14}",
    ]
    for figures in (h.backtest.ml, h.backtest.buy_and_hold, h.backtest.sma_cross):
        lines.append(
            f"  {figures.strategy:<14}{figures.trades:>7}{_pct(figures.total_return):>10}"
            f"{figures.max_drawdown * 100:>8.2f}%{figures.exposure * 100:>9.1f}%"
            f"{float(figures.total_pnl):>14.8f}"
        )
    ml = h.backtest.ml
    beaten = [
        f.strategy
        for f in (h.backtest.buy_and_hold, h.backtest.sma_cross)
        if (f.total_return or 0.0) >= (ml.total_return or 0.0)
    ]
    lines.append(
        f"ml before fees {float(ml.total_pnl) + float(ml.fees_paid):+.8f}, fees "
        f"{float(ml.fees_paid):.8f}; "
        + (
            f"ml does not beat {' or '.join(beaten)} on the held-out period"
            if beaten
            else "ml beats buy_and_hold and sma_cross on the held-out period"
        )
    )
    return "\n".join(lines)
