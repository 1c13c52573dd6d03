"""The ``ml`` strategy: a logistic regression on indicator features, trained by
``tickstep train`` (:mod:`tickstep.training`) and read from a model JSON file.

The model gives ``p_up``, the probability that the close ``horizon`` candles ahead is above
this close. The strategy emits BUY where ``p_up > buy_above``, SELL where
``p_up < sell_below``, HOLD otherwise (and during the features' warm-up); the strength is
``p_up`` for a BUY and ``1 - p_up`` for a SELL, so an order intent's confidence is the
model's probability of the side it takes.

A model file is validated when the strategy is built (at configuration load time): a file
that is missing, not JSON, of another format or version, or with a feature the code does
not know is a :class:`ConfigError` naming the problem. Loaded models are cached by path, so
the signal function reads the file once per container, not once per candle.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tickstep.candles import CandleArrays, FloatArray
from tickstep.features import FeatureError, FeatureSpec, check_features, feature_matrix, lookback
from tickstep.models import validation_problems
from tickstep.strategies.base import SignalSeries, Strategy, StrategyParams, actions
from tickstep.strategies.errors import ConfigError

__all__ = [
    "BUNDLED_MODEL",
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "MlModel",
    "MlParams",
    "MlStrategy",
    "bundled_model_path",
    "load_model",
    "predict_proba",
]

MODEL_FORMAT = "tickstep.ml.logistic_regression"
MODEL_VERSION = 1
BUNDLED_MODEL = "ml_model.json"
DEFAULT_BUY_ABOVE = 0.55
DEFAULT_SELL_BELOW = 0.45

Finite = Annotated[float, Field(allow_inf_nan=False)]
Probability = Annotated[float, Field(gt=0.0, lt=1.0, allow_inf_nan=False)]
Rate = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Thresholds(_Frozen):
    """BUY above ``buy_above``, SELL below ``sell_below`` (probabilities of an up move)."""

    buy_above: Probability = DEFAULT_BUY_ABOVE
    sell_below: Probability = DEFAULT_SELL_BELOW

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.sell_below > self.buy_above:
            raise ValueError("sell_below: must not be above buy_above")
        return self


class Standardisation(_Frozen):
    """Per-feature mean and standard deviation of the training rows (nothing later)."""

    mean: tuple[Finite, ...]
    std: tuple[Annotated[float, Field(gt=0.0, allow_inf_nan=False)], ...]


class CandleTime(_Frozen):
    ms: int
    iso: str


class FileWindow(_Frozen):
    """Candles ``start .. stop - 1`` of one file (half-open indices into the file)."""

    file: str
    market: str
    candles: int = Field(ge=0, description="candles in the whole file")
    start: int = Field(ge=0)
    stop: int = Field(ge=0)
    first: CandleTime
    last: CandleTime


class TrainingEnvironment(_Frozen):
    """The interpreter, numpy and BLAS that fit the weights: the same ones reproduce them bit
    for bit; others within ``TrainingInfo.weight_tolerance``."""

    python: str
    numpy: str
    blas: str = Field(description="library, version, kernel and threads in use (threadpoolctl)")
    machine: str


class TrainingInfo(_Frozen):
    """How the final model was fit, and on what."""

    algorithm: str
    label: str
    l2: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    seed: int
    iterations: int = Field(ge=0)
    holdout_fraction: Annotated[float, Field(gt=0.0, lt=1.0)]
    windows: tuple[FileWindow, ...] = Field(min_length=1)
    """The candles the final model used (features and labels) per file."""
    rows: int = Field(ge=1)
    positive_rate: Rate
    data_sha256: Hex64
    data_hash_rule: str
    weight_tolerance: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None = None
    """Retraining the same data elsewhere (another processor, BLAS kernel or numpy) gives each
    weight and the bias within this absolute amount: a rounding bound from the fit's own
    conditioning (:func:`tickstep.training.weight_tolerance`). None in files from before it."""
    environment: TrainingEnvironment | None = None
    """What trained it. None in files from before it was recorded."""


class Metrics(_Frozen):
    """Out-of-sample figures of one evaluation window (or several pooled)."""

    rows: int = Field(ge=0)
    accuracy: Rate
    auc: Rate | None = Field(description="ROC AUC; null when a window holds one class only")
    majority_class: Literal[0, 1]
    majority_baseline: Rate = Field(
        description="accuracy of always predicting the training window's majority class"
    )
    positive_rate: Rate


class FoldWindow(_Frozen):
    """One file's rows in a fold: trained on ``train_start .. train_stop - 1``, evaluated on
    ``eval_start .. eval_stop - 1`` (candle indices; a row's label is ``horizon`` candles
    after it, so ``train_stop + horizon <= eval_start``)."""

    file: str
    train_start: int = Field(ge=0)
    train_stop: int = Field(ge=0)
    eval_start: int = Field(ge=0)
    eval_stop: int = Field(ge=0)


class Fold(_Frozen):
    fold: int = Field(ge=1)
    windows: tuple[FoldWindow, ...]
    train_rows: int = Field(ge=1)
    standardisation: Standardisation
    metrics: Metrics


class Validation(_Frozen):
    scheme: str
    gap: int = Field(ge=0, description="candles between a training window's end and evaluation")
    folds: tuple[Fold, ...] = Field(min_length=1)
    pooled: Metrics
    auc_standard_error: Finite | None
    edge: bool
    verdict: str


class BacktestFigures(_Frozen):
    """A backtest's summary (the backtester's own figures)."""

    strategy: str
    markets: int
    candles: int
    trades: int
    win_rate: Rate | None
    total_pnl: str
    total_return: Finite | None
    max_drawdown: Finite
    sharpe: Finite | None
    exposure: Rate
    fees_paid: str
    pnl_by_market: dict[str, str]


class HeldOutBacktests(_Frozen):
    stake: str
    fee: str
    rule: str
    ml: BacktestFigures
    buy_and_hold: BacktestFigures
    sma_cross: BacktestFigures


class HeldOut(_Frozen):
    """The final period of each file: never seen by the final model or the folds."""

    windows: tuple[FileWindow, ...] = Field(min_length=1)
    data_sha256: Hex64
    metrics: Metrics
    auc_standard_error: Finite | None
    edge: bool
    verdict: str
    backtest: HeldOutBacktests


class MlModel(_Frozen):
    """A model file (``tickstep train --out``): everything needed to predict, and the
    evidence of how well it did on data it was not fit on."""

    format: Literal["tickstep.ml.logistic_regression"]
    version: Literal[1]
    features: tuple[FeatureSpec, ...] = Field(min_length=1, max_length=64)
    weights: tuple[Finite, ...]
    bias: Finite
    standardisation: Standardisation
    horizon: int = Field(ge=1, le=10_000)
    thresholds: Thresholds = Thresholds()
    training: TrainingInfo
    validation: Validation
    holdout: HeldOut

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_features(self.features)
        n = len(self.features)
        for name, values in (
            ("weights", self.weights),
            ("standardisation.mean", self.standardisation.mean),
            ("standardisation.std", self.standardisation.std),
        ):
            if len(values) != n:
                raise ValueError(f"{name}: {len(values)} values for {n} features")
        return self

    @property
    def warmup(self) -> int:
        return lookback(self.features)

    def probability(self, features: FloatArray) -> FloatArray:
        """``p_up`` for each row of :func:`tickstep.features.feature_matrix`."""
        s = self.standardisation
        return predict_proba(features, self.weights, self.bias, s.mean, s.std)

    def probabilities(self, candles: CandleArrays) -> FloatArray:
        return self.probability(feature_matrix(candles, self.features))


def predict_proba(
    features: FloatArray,
    weights: Sequence[float],
    bias: float,
    mean: Sequence[float],
    std: Sequence[float],
) -> FloatArray:
    """The logistic model's probability for each row, NaN where a feature is NaN.

    Column by column (a loop over features, not candles): each row's arithmetic is its own
    and in a fixed order, so a row's probability does not depend on the other rows."""
    z = np.full(features.shape[0], float(bias), dtype=np.float64)
    for j, (w, m, sd) in enumerate(zip(weights, mean, std, strict=True)):
        z += float(w) * ((features[:, j] - float(m)) / float(sd))
    with np.errstate(over="ignore"):
        p: FloatArray = 1.0 / (1.0 + np.exp(-z))
    return p


def bundled_model_path() -> Path:
    """The model shipped in the package (``data/ml_model.json``; how it was trained: the
    README's "AI-assisted signals")."""
    return Path(str(resources.files("tickstep") / "data" / BUNDLED_MODEL))


def load_model(path: str | Path | None = None) -> MlModel:
    """The model at ``path`` (the bundled one when None), validated; cached by path."""
    resolved = bundled_model_path() if path is None else Path(path).expanduser().resolve()
    return _load_model(str(resolved))


@functools.lru_cache(maxsize=32)
def _load_model(path: str) -> MlModel:
    where = f"ml model {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ConfigError(
            f"{where}: not a model file (format {found!r}, expected {MODEL_FORMAT!r})"
        )
    if data.get("version") != MODEL_VERSION:
        raise ConfigError(
            f"{where}: model version {data.get('version')!r} is not supported "
            f"(this tickstep reads version {MODEL_VERSION}; re-train it with tickstep train)"
        )
    try:
        check_features(tuple(FeatureSpec.model_validate(f) for f in data.get("features", [])))
    except (FeatureError, ValidationError, TypeError) as exc:
        detail = validation_problems(exc, "features") if isinstance(exc, ValidationError) else exc
        raise ConfigError(f"{where}: features: {detail}") from None
    try:
        return MlModel.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {validation_problems(exc, 'model')}") from None


class MlParams(StrategyParams):
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="path to a model JSON file (default: the model bundled in the package)",
    )
    buy_above: Probability | None = Field(
        default=None, description="BUY when p_up is above this (default: the model's, or 0.55)"
    )
    sell_below: Probability | None = Field(
        default=None, description="SELL when p_up is below this (default: the model's, or 0.45)"
    )


class MlStrategy(Strategy[MlParams]):
    """BUY when the model's probability of an up move is high, SELL when it is low."""

    name = "ml"
    params_type = MlParams

    def __init__(self, params: MlParams, model: MlModel | None = None) -> None:
        super().__init__(params)
        self.model = model if model is not None else load_model(params.model)
        thresholds = self.model.thresholds
        self.buy_above = thresholds.buy_above if params.buy_above is None else params.buy_above
        self.sell_below = thresholds.sell_below if params.sell_below is None else params.sell_below
        if self.sell_below > self.buy_above:
            raise ConfigError(
                f"strategy 'ml' parameters: sell_below ({self.sell_below}) must not be above "
                f"buy_above ({self.buy_above})"
            )
        self._warmup = self.model.warmup

    @property
    def warmup(self) -> int:
        return self._warmup

    def series(self, candles: CandleArrays) -> SignalSeries:
        p = self.model.probabilities(candles)
        with np.errstate(invalid="ignore"):
            action = actions(p > self.buy_above, p < self.sell_below)  # NaN: neither
        strength = np.where(action > 0, p, np.where(action < 0, 1.0 - p, 0.0))
        return SignalSeries(action, strength, {"p_up": p})
