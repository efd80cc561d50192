"""tournaments.irt: the 2PL fit recovers known parameters, its abilities are MAP points, its standard errors
are calibrated, and it is deterministic given a seed.

Bounds come from a simulation run while writing this test (12 data sets of the size below, seeds 100-111,
theta ~ N(0,1), b ~ N(0,1), log a ~ N(0, 0.3^2)): correlation of recovered vs true abilities min 0.9895
(mean 0.991), difficulties min 0.962 (mean 0.969), discriminations min 0.77 (mean 0.83); with scores that
are the mean of 5 Bernoulli draws (fractional targets) abilities min 0.9978 and difficulties min 0.9913.
Each bound below sits well under the simulated minimum, so a failure means a broken fit, not bad luck.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize
from scipy.special import expit, log_expit

from tournaments.irt import IRTFit, estimate_ability, fit_irt

N_MODELS, N_ITEMS = 200, 300


def simulate(seed: int, draws: int = 1):
    """Scores from a known 2PL: binary (draws=1) or the mean of `draws` Bernoulli draws."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 1, N_MODELS)
    b = rng.normal(0, 1, N_ITEMS)
    a = np.exp(rng.normal(0, 0.3, N_ITEMS))
    p = 1 / (1 + np.exp(-(np.outer(theta, a) - a * b)))
    return rng.binomial(draws, p) / draws, theta, b, a


@pytest.fixture(scope="module")
def binary():
    y, theta, b, a = simulate(100)
    return y, theta, b, a, fit_irt(y, seed=0)


def corr(x, y) -> float:
    return float(np.corrcoef(x, y)[0, 1])


def test_2pl_recovers_known_parameters(binary):
    _, theta, b, a, fit = binary
    assert fit.converged
    assert corr(fit.ability, theta) > 0.98
    assert corr(fit.difficulty, b) > 0.94
    assert corr(fit.discrimination, a) > 0.65


def negative_log_posterior(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The 2PL MAP objective written out here (scipy's log_expit, the priors of tournaments.irt: theta ~ N(0, 1),
    b ~ N(0, 3^2), log a ~ N(0, 1)) with its gradient, independent of the fit's own arithmetic."""
    n, m = y.shape
    theta, b, log_a = x[:n], x[n:n + m], x[n + m:]
    a = np.exp(log_a)
    z = np.outer(theta, a) - a * b
    value = -np.sum(y * log_expit(z) + (1 - y) * log_expit(-z)) + theta @ theta / 2 + b @ b / 18 + log_a @ log_a / 2
    r = expit(z) - y
    grad_theta = r @ a + theta
    grad_b = -a * r.sum(axis=0) + b / 9
    grad_log_a = np.sum(r * z, axis=0) + log_a
    return float(value), np.concatenate([grad_theta, grad_b, grad_log_a])


def test_fit_is_the_posterior_optimum(binary):
    """An independent optimiser (scipy L-BFGS on the objective above) started at the fit finds nothing better.
    The fit stops when no Newton step exceeds 1e-6 logits; with at most 300 x 0.25 curvature per parameter that
    leaves a gradient under 1e-4 and an objective gap under 1e-12 per cell, so 1e-9 per cell and a gradient of
    1e-3 are loose bounds that a wrong step or a missed invariance move (gaps of 1e-3 and more) would break."""
    y, _, _, _, fit = binary
    start = np.concatenate([fit.ability, fit.difficulty, np.log(fit.discrimination)])
    value, grad = negative_log_posterior(start, y)
    assert np.max(np.abs(grad)) < 1e-3
    better = optimize.minimize(negative_log_posterior, start, args=(y,), jac=True, method="L-BFGS-B",
                               options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-10})
    assert value - better.fun < 1e-9 * y.size
    assert fit.objective == pytest.approx(value / y.size, rel=1e-9)


def test_fractional_scores_recover_better_than_binary():
    y, theta, b, _ = simulate(101, draws=5)
    assert np.any((y > 0) & (y < 1))
    fit = fit_irt(y, seed=0)
    assert corr(fit.ability, theta) > 0.99
    assert corr(fit.difficulty, b) > 0.98


def test_fit_abilities_are_the_map_given_the_items(binary):
    """At the joint optimum each ability is the MAP given the fitted items: estimate_ability must land on it
    (the fit stops when no step exceeds 1e-6 logits; the bound leaves room for the stopping rule only)."""
    y, _, _, _, fit = binary
    theta, se = estimate_ability(fit, y)
    assert np.max(np.abs(theta - fit.ability)) < 1e-3
    assert np.all((se > 0) & (se < 1))


def test_missing_cells_and_1pl():
    y, theta, _, _ = simulate(102)
    holes = y.copy()
    holes[np.random.default_rng(0).random(y.shape) < 0.2] = np.nan
    fit = fit_irt(holes, seed=0)
    assert corr(fit.ability, theta) > 0.97  # 80% of the cells; simulated 0.986 for seed 1
    rasch = fit_irt(y, model="1pl", seed=0)
    assert np.all(rasch.discrimination == 1.0)
    assert corr(rasch.ability, theta) > 0.97  # misspecified (true a varies); simulated 0.989 for seed 1


def test_deterministic_given_seed():
    y = simulate(103)[0][:60, :80]
    one, two = fit_irt(y, seed=5), fit_irt(y, seed=5)
    np.testing.assert_array_equal(one.ability, two.ability)
    np.testing.assert_array_equal(one.difficulty, two.difficulty)
    np.testing.assert_array_equal(one.discrimination, two.discrimination)


def test_standard_errors_are_calibrated():
    """With the true items and theta drawn from the prior, (MAP - theta) / se is close to N(0, 1).
    4,000 models x 50 items: the sample sd of z has sampling sd 1/sqrt(2*4000) = 0.011 and its mean 0.016;
    the bounds are 5 of those (the Laplace approximation added < 0.01 in three simulated runs)."""
    rng = np.random.default_rng(7)
    b, a = rng.normal(0, 1, 50), np.exp(rng.normal(0, 0.3, 50))
    items = IRTFit(ability=np.zeros(1), difficulty=b, discrimination=a, converged=True, n_iter=0, objective=0.0)
    theta = rng.normal(0, 1, 4000)
    y = (rng.random((4000, 50)) < items.probabilities(theta)).astype(float)
    est, se = estimate_ability(items, y)
    z = (est - theta) / se
    assert abs(z.std() - 1) < 0.056
    assert abs(z.mean()) < 0.08


def test_ability_from_a_subset_and_expected_score(binary):
    y, theta, _, _, fit = binary
    few = np.full(y.shape, np.nan)
    few[:, :30] = y[:, :30]
    est, se = estimate_ability(fit, few)
    full_se = estimate_ability(fit, y)[1]
    assert np.all(se > full_se)  # fewer answers, less information
    assert corr(est, theta) > 0.85  # 30 items: simulated 0.918-0.938 on seeds 100, 104, 105
    # expected score of the fitted abilities tracks the observed mean score: max gap 0.022-0.029 simulated
    assert np.max(np.abs(fit.probabilities(fit.ability).mean(axis=1) - y.mean(axis=1))) < 0.05
    # p-IRT with every answer given is the observed mean, whatever the ability
    np.testing.assert_allclose(fit.p_irt_score(fit.ability + 1.0, y), y.mean(axis=1), rtol=1e-12)
    no_answers = estimate_ability(fit, np.full((1, N_ITEMS), np.nan))
    assert no_answers[0][0] == 0.0 and no_answers[1][0] == pytest.approx(1.0)


@pytest.mark.parametrize("bad, message", [
    (np.array([[0.5, 1.5]]), r"\[0, 1\]"),
    (np.zeros(3), "matrix"),
    (np.full((2, 2), np.nan), "no observed"),
])
def test_bad_input_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        fit_irt(bad)
