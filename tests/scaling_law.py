"""Two-step scaling-law prediction (Bhagia et al. 2024, as used by the Signal-and-Noise paper).

Step 1 predicts a task loss (BPB of the correct answer) from parameters N and tokens D; step 2 maps
that loss to accuracy with a sigmoid. Fitting both on a ladder of small runs and predicting a large
target tells how well small-scale results extrapolate; the relative error of that prediction is the
paper's second measure of benchmark quality (noisier benchmarks extrapolate worse).

Test-only: it reproduces the paper's prediction errors on the OLMo ladder (tests/test_signal_noise.py);
no verb, report or ranker of the harness uses it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit, least_squares, nnls


def _arrays(*arrays, what: str, minimum: int) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=float).ravel() for a in arrays]
    if len({a.size for a in out}) != 1:
        raise ValueError(f"{what}: inputs differ in length {[a.size for a in out]}")
    if any(np.isnan(a).any() for a in out):
        raise ValueError(f"{what}: inputs contain NaN")
    if out[0].size < minimum:
        raise ValueError(f"{what}: needs at least {minimum} points, got {out[0].size}")
    return out


@dataclass(frozen=True)
class TaskLossLaw:
    """L(N, D) = A / N^alpha + B / D^beta + E, with the fit's Huber objective and whether the solver
    converged (a law built by hand has objective NaN)."""

    A: float
    B: float
    alpha: float
    beta: float
    E: float
    objective: float = float("nan")
    converged: bool = True

    def predict(self, n_params, n_tokens) -> np.ndarray:
        n, d = np.asarray(n_params, dtype=float), np.asarray(n_tokens, dtype=float)
        return self.A / n**self.alpha + self.B / d**self.beta + self.E


# Exponent grid for the warm starts; published LLM fits fall inside (Chinchilla 0.34/0.28, Kaplan 0.076/0.095).
_EXPONENT_GRID = np.arange(0.05, 1.5001, 0.05)
_LEGACY_START = (3.0, 6.0, 0.1, 0.2, 1.0)  # OLMo-ladder's own start (log A, log B, alpha, beta, E)


def _warm_starts(log_n, log_d, y, keep: int) -> list[np.ndarray]:
    """Best `keep` points of an (alpha, beta) grid, each with its optimal A, B, E >= 0.

    For fixed exponents the law is linear in (A, B, E), so non-negative least squares on relative
    residuals (pred - y) / y, which equal log residuals to first order, solves the rest exactly."""
    scored = []
    for alpha in _EXPONENT_GRID:
        x1 = np.exp(-alpha * log_n) / y
        for beta in _EXPONENT_GRID:
            design = np.column_stack([x1, np.exp(-beta * log_d) / y, 1.0 / y])
            (a, b, e), norm = nnls(design, np.ones_like(y))
            scored.append((norm, alpha, beta, a, b, e))
    scored.sort(key=lambda row: row[0])
    return [np.array([np.log(max(a, 1.0)), np.log(max(b, 1.0)), alpha, beta, e])
            for _, alpha, beta, a, b, e in scored[:keep]]


def fit_task_loss(n_params, n_tokens, loss, delta: float = 1e-3, starts: int = 5) -> TaskLossLaw:
    """Fit step 1 as OLMo-ladder does: Huber loss (delta 1e-3) on log(predicted) - log(actual) over
    (log A, log B, alpha, beta, E), all bounded >= 0. Log residuals make runs of every size count
    alike; Huber keeps one bad run from dominating.

    One L-BFGS-B run from OLMo-ladder's start stops far from the optimum (alpha 3.5 instead of 0.3
    on exact synthetic data): the objective is tiny and flat. So the best `starts` points of a grid
    over the exponents (the linear parameters solved exactly, see _warm_starts) and that start each
    seed a bounded trust-region least-squares run with the same Huber loss; the lowest objective wins.
    """
    n, d, y = _arrays(n_params, n_tokens, loss, what="task-loss fit", minimum=5)
    if np.any(n <= 0) or np.any(d <= 0) or np.any(y <= 0):
        raise ValueError("task-loss fit: parameters, tokens and loss must be positive")
    log_n, log_d, log_y = np.log(n), np.log(d), np.log(y)

    def terms(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        log_a, log_b, alpha, beta, e = p
        with np.errstate(over="ignore"):  # a trial step may overflow; the solver then shrinks it
            t1, t2 = np.exp(log_a - alpha * log_n), np.exp(log_b - beta * log_d)
        return t1, t2, t1 + t2 + e

    def residuals(p: np.ndarray) -> np.ndarray:
        return np.log(terms(p)[2]) - log_y

    def jacobian(p: np.ndarray) -> np.ndarray:
        t1, t2, pred = terms(p)
        return np.column_stack([t1, t2, -t1 * log_n, -t2 * log_d, np.ones_like(pred)]) / pred[:, None]

    best = None
    for p0 in [*_warm_starts(log_n, log_d, y, starts), np.array(_LEGACY_START)]:
        # least_squares' "huber" loss with f_scale = delta is exactly OLMo-ladder's Huber objective:
        # cost = sum(0.5 r^2 if |r| <= delta else delta (|r| - delta / 2)).
        res = least_squares(residuals, p0, jac=jacobian, bounds=(0.0, np.inf), method="trf", loss="huber",
                            f_scale=delta, x_scale="jac", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=5000)
        if np.isfinite(res.cost) and (best is None or res.cost < best.cost):
            best = res
    if best is None:
        raise ValueError("task-loss fit failed from every start")
    log_a, log_b, alpha, beta, e = best.x
    return TaskLossLaw(float(np.exp(log_a)), float(np.exp(log_b)), float(alpha), float(beta), float(e),
                       objective=float(best.cost), converged=bool(best.status > 0))


@dataclass(frozen=True)
class LossToAccuracy:
    """Acc(L) = a / (1 + exp(-k (L - L0))) + b; a <= 0, so accuracy falls as loss rises."""

    a: float
    L0: float
    k: float
    b: float

    def predict(self, loss) -> np.ndarray:
        return self.a / (1.0 + np.exp(-self.k * (np.asarray(loss, dtype=float) - self.L0))) + self.b


def fit_loss_to_accuracy(loss, accuracy, helper_point: bool = True) -> LossToAccuracy:
    """Fit step 2 by bounded least squares (a in [-1, 0], L0 >= 0, k >= 0, b in [0, 1]).

    `helper_point` appends (L = 0, Acc = 1), as OLMo-ladder does: a model with zero loss on the
    correct answer is always right, which pins the upper asymptote when the ladder never gets near
    it. Several starts are tried; the best converged fit wins.
    """
    x, y = _arrays(loss, accuracy, what="loss-to-accuracy fit", minimum=4)
    if helper_point:
        x, y = np.append(x, 0.0), np.append(y, 1.0)
    model = lambda L, a, L0, k, b: a / (1.0 + np.exp(-k * (L - L0))) + b  # noqa: E731
    bounds = ([-1.0, 0.0, 0.0, 0.0], [0.0, np.inf, np.inf, 1.0])
    starts = [
        (min(y) - 1.0, 0.9, 3.0, max(y)),
        (min(y) - max(y), float(np.median(x)), 3.0, max(y)),
        (-0.5, float(np.median(x)), 10.0, 1.0),
    ]
    best, best_sse = None, np.inf
    for p0 in starts:
        p0 = np.clip(p0, bounds[0], np.minimum(bounds[1], 1e6))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                params, _ = curve_fit(model, x, y, p0=p0, bounds=bounds, maxfev=20000)
        except RuntimeError:
            continue
        sse = float(np.sum((model(x, *params) - y) ** 2))
        if sse < best_sse:
            best, best_sse = params, sse
    if best is None:
        raise ValueError("loss-to-accuracy fit did not converge from any start")
    return LossToAccuracy(*(float(v) for v in best))


@dataclass(frozen=True)
class TwoStepPrediction:
    """Predictions for a target run and their relative errors |pred - actual| / |actual|."""

    predicted_loss: float
    predicted_accuracy: float
    step1_error: float
    step2_error: float
    stacked_error: float


def two_step_prediction(
    n_params,
    n_tokens,
    loss,
    accuracy,
    target_params: float,
    target_tokens: float,
    target_loss: float,
    target_accuracy: float,
    step2_loss=None,
    step2_accuracy=None,
) -> TwoStepPrediction:
    """Fit both steps on a ladder and predict a target. Step 1 uses (n_params, n_tokens, loss) of
    each ladder run's final checkpoint; step 2 uses (step2_loss, step2_accuracy) when given (e.g.
    every checkpoint) and the same final points otherwise. step2_error feeds the actual target loss
    into step 2; stacked_error chains both steps, the number the paper reports."""
    law = fit_task_loss(n_params, n_tokens, loss)
    sig = fit_loss_to_accuracy(
        loss if step2_loss is None else step2_loss, accuracy if step2_accuracy is None else step2_accuracy
    )
    if target_loss == 0 or target_accuracy == 0:
        raise ValueError("target loss and accuracy must be non-zero for a relative error")
    pred_loss = float(law.predict(target_params, target_tokens))
    pred_acc = float(sig.predict(pred_loss))
    return TwoStepPrediction(
        predicted_loss=pred_loss,
        predicted_accuracy=pred_acc,
        step1_error=abs(pred_loss - target_loss) / abs(target_loss),
        step2_error=abs(float(sig.predict(target_loss)) - target_accuracy) / abs(target_accuracy),
        stacked_error=abs(pred_acc - target_accuracy) / abs(target_accuracy),
    )
