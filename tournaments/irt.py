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

    def p_irt_score(self, ability: np.ndarray, seen: np.ndarray) -> np.ndarray:
        """Full-score estimate of each row of `seen` (n x n_items, NaN = not asked): the answers given plus the
        predicted score of every item not asked (p-IRT, Maia Polo et al. 2024), so it moves to the observed
        score as the answers grow to all items."""
        answers = np.atleast_2d(seen)
        return np.where(np.isnan(answers), self.probabilities(ability), answers).mean(axis=1)

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
    tol: float = 1e-6,
) -> IRTFit:
    """MAP fit of a 1PL or 2PL model to a (models x items) matrix of scores in [0, 1] (NaN = missing).

    Alternating Newton: given the items, each ability is a one-parameter concave problem (one Newton step);
    given the abilities, each item's (b, log a) is a two-parameter problem (one Fisher-scoring step). The
    likelihood cannot tell (theta, b, a) from (s*theta + t, s*b + t, a/s), so only the priors pin that
    direction down, and alternating steps would crawl along it; after every sweep the exact prior optimum
    along it is taken instead (closed form in t, a convex 1-D Newton in log s). Each sweep costs a few
    passes over the matrix; the fit stops when no parameter moves more than `tol`. The start is the logit
    of row and column means plus a seeded jitter, so the result is a function of (scores, seed).
    `dtype=np.float32` halves the memory of the per-cell work arrays for very large matrices.
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
    cells = _Cells(np.where(observed, y, 0.0).astype(dtype), None if n_obs == y.size else observed.astype(dtype))
    two_pl = model == "2pl"
    prior = _Priors(theta_sd**2, difficulty_sd**2, log_discrimination_sd**2)

    rng = np.random.default_rng(seed)
    row = _logit(_nanmean_or(y, axis=1, default=0.5))
    theta = (row - row.mean()) / (row.std() or 1.0) * theta_sd + rng.normal(0, 0.01, n_models)
    b = -_logit(_nanmean_or(y, axis=0, default=0.5)) + rng.normal(0, 0.01, n_items)
    log_a = np.zeros(n_items)
    converged, sweep = False, 0
    for sweep in range(1, max_iter + 1):
        theta, theta_step = _ability_step(cells, theta, b, log_a, prior)
        b, log_a, item_step = _item_step(cells, theta, b, log_a, prior, two_pl)
        theta, b, log_a = _prior_optimum_along_invariance(theta, b, log_a, prior, two_pl)
        if max(theta_step, item_step) < tol:
            converged = True
            break
    a = np.exp(log_a)
    return IRTFit(ability=theta, difficulty=b, discrimination=a, converged=converged, n_iter=sweep,
                  objective=cells.negative_log_posterior(theta, b, log_a, prior) / n_obs)


@dataclass(frozen=True)
class _Priors:
    """Prior variances of theta, b and log a."""

    theta: float
    difficulty: float
    log_discrimination: float


class _Cells:
    """The per-cell arrays of a fit: targets y (0 where missing), the missing mask, and work arrays for
    residuals r = p - y and weights w = p (1 - p), reused by every step."""

    def __init__(self, target: np.ndarray, mask: np.ndarray | None):
        self.target, self.mask, self.dtype = target, mask, target.dtype
        self.residual = np.empty_like(target)
        self.weight = np.empty_like(target)

    def update(self, theta: np.ndarray, b: np.ndarray, log_a: np.ndarray) -> np.ndarray:
        """Residuals and weights at (theta, b, log a); returns a."""
        a = np.exp(log_a)
        p = self.weight  # holds p until the weights are formed from it
        np.multiply.outer(theta.astype(self.dtype), a.astype(self.dtype), out=p)
        np.subtract(p, (a * b).astype(self.dtype), out=p)
        expit(p, out=p)
        np.subtract(p, self.target, out=self.residual)
        np.multiply(p, np.subtract(1.0, p, dtype=self.dtype), out=self.weight)
        if self.mask is not None:
            np.multiply(self.residual, self.mask, out=self.residual)
            np.multiply(self.weight, self.mask, out=self.weight)
        return a

    def negative_log_posterior(self, theta: np.ndarray, b: np.ndarray, log_a: np.ndarray, prior: _Priors) -> float:
        """sum over observed cells of softplus(z) - y z, plus the priors (float64 sums)."""
        a, nll = np.exp(log_a), 0.0
        rows = max(1, 2**20 // b.size)  # float64 blocks of about a million cells: computed once, at the end
        for start in range(0, theta.size, rows):
            block = slice(start, start + rows)
            z = np.subtract.outer(theta[block], b) * a
            loss = np.logaddexp(0.0, z) - self.target[block] * z
            nll += float(np.sum(loss if self.mask is None else loss * self.mask[block]))
        return nll + float(theta @ theta / (2 * prior.theta) + b @ b / (2 * prior.difficulty)
                           + log_a @ log_a / (2 * prior.log_discrimination))


def _ability_step(cells: _Cells, theta, b, log_a, prior: _Priors) -> tuple[np.ndarray, float]:
    """One Newton step per ability (capped at 1 logit); returns the new abilities and the largest step."""
    a = cells.update(theta, b, log_a)
    grad = (cells.residual @ a.astype(cells.dtype)).astype(float) + theta / prior.theta
    hess = (cells.weight @ (a * a).astype(cells.dtype)).astype(float) + 1.0 / prior.theta
    step = np.clip(grad / hess, -1.0, 1.0)
    return theta - step, float(np.max(np.abs(step)))


def _item_step(cells: _Cells, theta, b, log_a, prior: _Priors, two_pl: bool):
    """One Fisher-scoring step per item on (b, log a) (capped at 1 logit each); with z = a (theta - b),
    dz/db = -a and dz/dlog a = z, so every sum needed is a weighted column sum of r or w against 1, theta
    or theta^2."""
    a = cells.update(theta, b, log_a)
    powers = np.stack([np.ones_like(theta), theta, theta * theta]).astype(cells.dtype)
    sum_w = (powers @ cells.weight).astype(float)  # (3, items): sum w, sum w theta, sum w theta^2
    sum_r = (powers[:2] @ cells.residual).astype(float)  # sum r, sum r theta
    grad_b = -a * sum_r[0] + b / prior.difficulty
    hess_bb = a * a * sum_w[0] + 1.0 / prior.difficulty
    if not two_pl:
        step_b = np.clip(grad_b / hess_bb, -1.0, 1.0)
        return b - step_b, log_a, float(np.max(np.abs(step_b)))
    grad_a = a * (sum_r[1] - b * sum_r[0]) + log_a / prior.log_discrimination
    hess_aa = a * a * (sum_w[2] - 2 * b * sum_w[1] + b * b * sum_w[0]) + 1.0 / prior.log_discrimination
    hess_ba = -a * a * (sum_w[1] - b * sum_w[0])
    det = hess_bb * hess_aa - hess_ba**2
    step_b = np.clip((hess_aa * grad_b - hess_ba * grad_a) / det, -1.0, 1.0)
    step_a = np.clip((hess_bb * grad_a - hess_ba * grad_b) / det, -1.0, 1.0)
    return b - step_b, log_a - step_a, float(max(np.max(np.abs(step_b)), np.max(np.abs(step_a))))


def _prior_optimum_along_invariance(theta, b, log_a, prior: _Priors, two_pl: bool):
    """Move to the point of the likelihood's invariance orbit (s*theta + t, s*b + t, log a - log s) with the
    highest prior (1PL: a is fixed, so only t). For given s the best t is -s*mu, mu the precision-weighted
    mean of theta and b; then the prior is s^2 Q / 2 + sum (log a - log s)^2 / (2 var), convex in log s."""
    mu = (theta.sum() / prior.theta + b.sum() / prior.difficulty) / (theta.size / prior.theta + b.size / prior.difficulty)
    if not two_pl:
        return theta - mu, b - mu, log_a
    spread = ((theta - mu) @ (theta - mu)) / prior.theta + ((b - mu) @ (b - mu)) / prior.difficulty
    log_s = 0.0
    for _ in range(50):
        s2 = np.exp(2 * log_s)
        step = (s2 * spread - (log_a - log_s).sum() / prior.log_discrimination) / (
            2 * s2 * spread + log_a.size / prior.log_discrimination)
        log_s -= step
        if abs(step) < 1e-13:
            break
    s = np.exp(log_s)
    return s * (theta - mu), s * (b - mu), log_a - log_s


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


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 0.02, 0.98)
    return np.log(q / (1 - q))


def _nanmean_or(y: np.ndarray, axis: int, default: float) -> np.ndarray:
    counts = (~np.isnan(y)).sum(axis=axis)
    sums = np.nansum(y, axis=axis)
    return np.where(counts > 0, sums / np.maximum(counts, 1), default)
