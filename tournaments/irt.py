"""Item response theory: a 2PL (or 1PL) logistic model of per-item scores, for estimating a model's full
task score from a few of its answers.

P(model i scores on item j) = sigmoid(a_j * (theta_i - b_j)), with ability theta, difficulty b and
discrimination a = exp(log_a) (the 2PL of tinyBenchmarks, Maia Polo et al. 2024, and Fluid Benchmarking,
Hofmann et al. 2025, in slope-difficulty form). Scores may be fractional (pass@k averages, judge
probabilities): the Bernoulli log-likelihood y*log(p) + (1-y)*log(1-p) is used as is, so a continuous
score pulls p towards itself. Parameters are MAP estimates under normal priors, which keep items that
every model passes (or fails) at a finite difficulty and fix the scale that the likelihood alone leaves free.
Missing cells (NaN) are left out of every sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.special import expit

THETA_SD = 1.0
"""Prior sd of abilities: N(0, 1) sets the scale of theta (the likelihood only sees a*(theta-b))."""
DIFFICULTY_SD = 3.0
"""Prior sd of difficulties: wide enough for items with p(correct) from 0.05% to 99.95% at theta = 0."""
LOG_DISCRIMINATION_SD = 1.0
"""Prior sd of log discriminations: a within exp(+-2) = [0.14, 7.4] at two sd."""


@dataclass(frozen=True)
class IRTFit:
    """Fitted item parameters (and the training models' abilities)."""

    ability: np.ndarray  # (n_models,)
    difficulty: np.ndarray  # (n_items,)
    discrimination: np.ndarray  # (n_items,); all ones for 1PL
    converged: bool
    n_iter: int
    objective: float  # negative log posterior per observed cell

    def probabilities(self, ability: np.ndarray) -> np.ndarray:
        """Expected score of every (ability, item) pair: shape (len(ability), n_items)."""
        theta = np.atleast_1d(np.asarray(ability, dtype=float))
        return expit(np.multiply.outer(theta, self.discrimination) - self.discrimination * self.difficulty)

    def expected_score(self, ability: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """A model's expected task score (mean over `items`, default all) given its ability."""
        probs = self.probabilities(ability)
        return (probs if items is None else probs[:, items]).mean(axis=1)

    def information(self, ability: np.ndarray) -> np.ndarray:
        """Fisher information a^2 p (1-p) of every item at each ability: what CAT ranks items by."""
        probs = self.probabilities(ability)
        return self.discrimination**2 * probs * (1.0 - probs)


def fit_irt(
    scores: np.ndarray,
    model: str = "2pl",
    seed: int = 0,
    max_iter: int = 500,
    theta_sd: float = THETA_SD,
    difficulty_sd: float = DIFFICULTY_SD,
    log_discrimination_sd: float = LOG_DISCRIMINATION_SD,
    dtype: type = np.float64,
) -> IRTFit:
    """MAP fit of a 1PL or 2PL model to a (models x items) matrix of scores in [0, 1] (NaN = missing).

    Joint L-BFGS over (theta, b, log a) on the vectorised negative log posterior; the start is the
    logit of row and column means plus a seeded jitter, so the result is a function of (scores, seed).
    `dtype=np.float32` halves the memory of the per-cell work arrays for very large matrices (sums are
    still accumulated in float64).
    """
    y = np.asarray(scores, dtype=dtype)
    if y.ndim != 2 or min(y.shape) == 0:
        raise ValueError(f"scores must be a non-empty (models x items) matrix, got shape {y.shape}")
    if model not in ("1pl", "2pl"):
        raise ValueError(f"model must be '1pl' or '2pl', got {model!r}")
    observed = ~np.isnan(y)
    if np.any((y[observed] < 0) | (y[observed] > 1)):
        raise ValueError("scores must lie in [0, 1]")
    n_models, n_items = y.shape
    n_obs = int(observed.sum())
    if n_obs == 0:
        raise ValueError("scores has no observed cell")
    full = n_obs == y.size
    mask = None if full else observed.astype(dtype)
    target = y if full else np.where(observed, y, 0.0).astype(dtype)
    two_pl = model == "2pl"

    rng = np.random.default_rng(seed)
    row = _logit(_nanmean_or(y, axis=1, default=0.5))
    theta0 = (row - row.mean()) / (row.std() or 1.0) * theta_sd
    b0 = -_logit(_nanmean_or(y, axis=0, default=0.5))
    x0 = np.concatenate([theta0 + rng.normal(0, 0.01, n_models), b0 + rng.normal(0, 0.01, n_items),
                         np.zeros(n_items) if two_pl else np.zeros(0)])
    target_col = target.sum(axis=0, dtype=np.float64)
    z = np.empty(y.shape, dtype=dtype)  # work arrays reused by every evaluation
    prob = np.empty(y.shape, dtype=dtype)
    work = np.empty(y.shape, dtype=dtype)
    scale = 1.0 / n_obs

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        theta, b = x[:n_models], x[n_models:n_models + n_items]
        log_a = x[n_models + n_items:] if two_pl else np.zeros(n_items)
        a = np.exp(log_a)
        np.multiply.outer(theta.astype(dtype), a.astype(dtype), out=z)
        np.subtract(z, (a * b).astype(dtype), out=z)
        # cell loss softplus(z) - y z, with softplus(z) = max(z, 0) - log(max(p, 1 - p)) and p = sigmoid(z):
        # one accurate expit serves loss and gradient (scipy's log_expit is ~5x slower per cell)
        expit(z, out=prob)
        np.subtract(1.0, prob, out=work)
        np.maximum(prob, work, out=work)
        np.log(work, out=work)
        nll = -_masked_sum(work, mask)
        np.maximum(z, 0.0, out=work)
        nll += _masked_sum(work, mask)
        # sum_ij y_ij z_ij = sum_i theta_i (Y a)_i - sum_j a_j b_j sum_i y_ij (y is 0 on missing cells)
        nll -= float(theta @ (target @ a.astype(dtype))) - float((a * b) @ target_col)
        # d loss / d z = p - y on observed cells
        np.subtract(prob, target, out=work)
        if mask is not None:
            np.multiply(work, mask, out=work)
        col = work.sum(axis=0, dtype=np.float64)  # sum_i r_ij
        g_theta = (work @ a.astype(dtype)).astype(float)  # sum_j r_ij a_j
        r_theta = (theta.astype(dtype) @ work).astype(float)  # sum_i r_ij theta_i
        g_b = -a * col
        prior = (theta @ theta) / (2 * theta_sd**2) + (b @ b) / (2 * difficulty_sd**2)
        g_theta = g_theta + theta / theta_sd**2
        g_b = g_b + b / difficulty_sd**2
        grads = [g_theta, g_b]
        if two_pl:
            prior += (log_a @ log_a) / (2 * log_discrimination_sd**2)
            grads.append(a * (r_theta - b * col) + log_a / log_discrimination_sd**2)
        return (nll + prior) * scale, np.concatenate(grads) * scale

    result = optimize.minimize(objective, x0, jac=True, method="L-BFGS-B",
                               options={"maxiter": max_iter, "maxcor": 20, "ftol": 1e-12, "gtol": 1e-7})
    x = result.x
    a = np.exp(x[n_models + n_items:]) if two_pl else np.ones(n_items)
    return IRTFit(ability=x[:n_models].copy(), difficulty=x[n_models:n_models + n_items].copy(), discrimination=a,
                  converged=bool(result.success), n_iter=int(result.nit), objective=float(result.fun))


def estimate_ability(
    fit: IRTFit, answers: np.ndarray, theta_sd: float = THETA_SD, max_iter: int = 50, tol: float = 1e-8,
) -> tuple[np.ndarray, np.ndarray]:
    """MAP ability of each row of `answers` (n x n_items, NaN = not asked) under the fitted items, and its
    standard error 1/sqrt(Fisher information + prior precision).

    The log posterior is concave in theta, so damped Newton (steps capped at 1 logit) converges from
    the prior mean; a row with no answers gets the prior: theta 0, se theta_sd.
    """
    y = np.atleast_2d(np.asarray(answers, dtype=float))
    if y.shape[1] != fit.difficulty.size:
        raise ValueError(f"answers have {y.shape[1]} items, the fit has {fit.difficulty.size}")
    asked = ~np.isnan(y)
    target = np.where(asked, y, 0.0)
    a, ab = fit.discrimination, fit.discrimination * fit.difficulty
    theta = np.zeros(y.shape[0])
    for _ in range(max_iter):
        p = expit(np.multiply.outer(theta, a) - ab)
        grad = ((p - target) * asked) @ a + theta / theta_sd**2
        hess = (p * (1 - p) * asked) @ (a * a) + 1.0 / theta_sd**2
        step = np.clip(grad / hess, -1.0, 1.0)
        theta -= step
        if np.max(np.abs(step)) < tol:
            break
    p = expit(np.multiply.outer(theta, a) - ab)
    info = (p * (1 - p) * asked) @ (a * a)
    return theta, 1.0 / np.sqrt(info + 1.0 / theta_sd**2)


def _masked_sum(values: np.ndarray, mask: np.ndarray | None) -> float:
    if mask is None:
        return float(np.sum(values, dtype=np.float64))
    return float(np.einsum("ij,ij->", values, mask, dtype=np.float64))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 0.02, 0.98)
    return np.log(q / (1 - q))


def _nanmean_or(y: np.ndarray, axis: int, default: float) -> np.ndarray:
    counts = (~np.isnan(y)).sum(axis=axis)
    sums = np.nansum(y, axis=axis)
    return np.where(counts > 0, sums / np.maximum(counts, 1), default)
