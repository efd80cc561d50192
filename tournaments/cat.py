"""Computerized adaptive testing, one step at a time: which items a model answers next, and what its answers so far
say about its score on the whole task (with a standard error), for a live evaluation (`harness eval --adaptive`)
and for the replay in tournaments.adaptive.

The full-task estimate is p-IRT (Maia Polo et al. 2024, tinyBenchmarks): the answers given, plus the IRT model's
prediction for every item not asked. Its standard error combines the uncertainty of the MAP ability (delta method)
with the Bernoulli spread of the items not asked; the item parameters are taken as known (a fit on few models
understates the error, and no method extrapolates to a model better than all it was fitted on).
"""

from __future__ import annotations

import math

import numpy as np

from tournaments.irt import IRTFit, estimate_ability

CAT_CANDIDATES = 3
"""CAT picks each batch at random among the CAT_CANDIDATES x batch most informative items (randomesque
selection, Kingsbury & Zara 1989), so models do not all get the same items and estimates stay unbiased-ish."""


def cat_pick(information: np.ndarray, take: int, n_left: int, rng: np.random.Generator) -> np.ndarray:
    """The next `take` items for one model: at random among the most informative `CAT_CANDIDATES * take` of the
    `n_left` items not asked yet (`information` is -inf where an item was asked)."""
    order = np.argsort(-information, kind="stable")
    return order[rng.permutation(min(CAT_CANDIDATES * take, n_left))[:take]]


def next_items(fit: IRTFit, seen: np.ndarray, take: int, rng: np.random.Generator) -> np.ndarray:
    """One model's next batch, by Fisher information at its current MAP ability; `seen` holds its answers so far
    (NaN where not asked), one entry per fitted item."""
    asked = ~np.isnan(seen)
    left = int((~asked).sum())
    theta, _ = estimate_ability(fit, seen[None, :])
    information = np.where(asked, -np.inf, fit.information(theta)[0])
    return cat_pick(information, min(take, left), left, rng)


def irt_estimate(fit: IRTFit, seen: np.ndarray) -> tuple[float, float]:
    """(estimate, standard error) of the model's mean score over every fitted item, from its answers `seen`."""
    asked = ~np.isnan(seen)
    theta, theta_se = estimate_ability(fit, seen[None, :])
    p = fit.probabilities(theta)[0]
    n = seen.size
    estimate = float(fit.p_irt_score(theta, seen)[0])
    slope = float((fit.discrimination * p * (1 - p))[~asked].sum() / n)  # d estimate / d theta
    spread = float((p * (1 - p))[~asked].sum() / n**2)  # the unasked items' own Bernoulli variance
    return estimate, math.sqrt((slope * float(theta_se[0])) ** 2 + spread)


def subset_estimate(values: np.ndarray, n_total: int) -> tuple[float, float]:
    """(mean, standard error) of a task score from a uniform random subset of its items without replacement: the
    sample mean, with the finite-population correction sqrt(1 - n/N) on s/sqrt(n)."""
    n = values.size
    if n == 0 or n > n_total:
        raise ValueError(f"a subset of {n} items of {n_total}")
    if n == 1:
        return float(values[0]), math.nan if n_total > 1 else 0.0
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(n) * math.sqrt(1 - n / n_total))
