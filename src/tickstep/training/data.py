"""What ``tickstep train`` trains on: its options, the candle files, the labels and features
per file, and the walk-forward windows (see :mod:`tickstep.training`)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tickstep.backtest import BacktestSettings, iso_utc
from tickstep.candles import CandleArrays, FloatArray, load_csv, market_from_filename
from tickstep.features import DEFAULT_FEATURES, FeatureError, FeatureSpec, check_features
from tickstep.features import feature_matrix as compute_features
from tickstep.models import Market
from tickstep.strategies.errors import ConfigError
from tickstep.strategies.ml import CandleTime, FileWindow, MlModel

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


def check_size(name: str, n: int, lookback: int, options: TrainOptions) -> None:
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


def slice_candles(c: CandleArrays, start: int, stop: int) -> CandleArrays:
    return CandleArrays(
        c.timestamp[start:stop],
        c.open[start:stop],
        c.high[start:stop],
        c.low[start:stop],
        c.close[start:stop],
        c.volume[start:stop],
    )


def data_hash(parts: Sequence[CandleArrays]) -> str:
    digest = hashlib.sha256()
    for c in parts:
        digest.update(np.array([len(c)], dtype="<i8").tobytes())
        digest.update(c.timestamp.astype("<i8").tobytes())
        for column in (c.open, c.high, c.low, c.close, c.volume):
            digest.update(column.astype("<f8").tobytes())
    return digest.hexdigest()


def candle_time(ms: int) -> CandleTime:
    return CandleTime(ms=ms, iso=iso_utc(ms))


@dataclass(frozen=True)
class Prepared:
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
            market=self.source.market.label,
            candles=len(c),
            start=start,
            stop=stop,
            first=candle_time(int(c.timestamp[start])),
            last=candle_time(int(c.timestamp[stop - 1])),
        )

    def rows(self, start: int, stop: int) -> tuple[FloatArray, npt.NDArray[np.int8]]:
        keep = self.usable[start:stop]
        return self.x[start:stop][keep], self.y[start:stop][keep]


def prepare(source: CandleSource, options: TrainOptions, lookback: int) -> Prepared:
    c = source.candles
    check_size(source.name, len(c), lookback, options)
    x = compute_features(c, options.features)
    h = options.horizon
    y = np.full(len(c), -1, dtype=np.int8)
    y[:-h] = (c.close[h:] > c.close[:-h]).astype(np.int8)
    usable = np.isfinite(x).all(axis=1) & (y >= 0)
    holdout_start, windows = fold_windows(len(c), lookback, h, options.folds, options.holdout)
    return Prepared(source, x, y, usable, holdout_start, windows)
