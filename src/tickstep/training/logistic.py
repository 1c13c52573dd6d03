"""The numerics of ``tickstep train``: an L2-regularised logistic regression by Newton's method,
the rounding bound its weights are reproducible within, and the ROC AUC it is judged by.

numpy only. What is exact and what is reproducible: :func:`fit_logistic` gives the same bits
for the same inputs, machine and libraries; another processor, BLAS kernel or numpy gives
weights within :func:`weight_tolerance`, which the model file records with
:func:`numeric_environment`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from tickstep.candles import FloatArray
from tickstep.strategies.ml import TrainingEnvironment


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
