"""Replay of efficient-evaluation methods on a complete per-item matrix: how well does a model's score on a
few items predict its score on all of them, for models the methods never saw?

Zhang, Dorner & Hardt (2025, arXiv 2506.07673) found that a random subset plus a linear regression beats
most cleverer subset methods and that every method fails when the new model is better than all calibration
models; so each method is reported beside uniform random and random + regression at the same budget, on
held-out models, with an extrapolation split (the best models held out). Held-out models' answers are only
ever read item by item, as a live evaluation would produce them; every fit reads training rows only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from tournaments.cat import cat_pick
from tournaments.irt import IRTFit, estimate_ability, fit_irt

METHODS = ("random", "random+regression", "anchor", "irt", "cat")
SPLITS = ("random", "top")
CAT_STEPS = 8
"""CAT updates its ability estimate about this many times per model (batch = ceil(budget items / steps))."""


def budget_items(budget: float, n_items: int) -> int:
    """Items evaluated per model at a budget fraction: round(budget * n), at least 1."""
    if not 0 < budget <= 1:
        raise ValueError(f"budget must be a fraction in (0, 1], got {budget}")
    return max(1, min(n_items, round(budget * n_items)))


def holdout_sets(full: np.ndarray, folds: int, split: str, seed: int) -> list[np.ndarray]:
    """Held-out model indices per fold: K random folds, or (split 'top') one fold of the ceil(n/K) best models."""
    n = full.size
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not 2 <= folds <= n:
        raise ValueError(f"folds must be between 2 and the number of models ({n}), got {folds}")
    if split == "top":
        order = np.argsort(-full, kind="stable")
        return [np.sort(order[:math.ceil(n / folds)])]
    perm = np.random.default_rng(np.random.SeedSequence([seed, 0])).permutation(n)
    return [np.sort(part) for part in np.array_split(perm, folds)]


def random_subset(seed: int, fold: int, repeat: int, n_items: int, size: int) -> np.ndarray:
    """The first `size` items of a seeded permutation: subsets for one (fold, repeat) are nested across budgets,
    so the uniform-random reference curve and the methods share their draws."""
    return np.random.default_rng(np.random.SeedSequence([seed, 1, fold, repeat])).permutation(n_items)[:size]


def replay_fold(
    training: np.ndarray,
    answers: np.ndarray,
    heldout: np.ndarray,
    n_budget: int,
    seed: int = 0,
    fold: int = 0,
    methods: Sequence[str] = METHODS,
    repeats: int = 10,
    irt_model: str = "2pl",
) -> dict[str, np.ndarray]:
    """Estimated full scores of the `heldout` models, per method: arrays (repeats, len(heldout)).

    Fitting reads only the rows of `training` outside `heldout`; the held-out models' item answers are read
    from `answers` (rows `heldout`), and only at the items a method asks for. Passing the same matrix twice
    is the normal use; the two arguments exist so a test can poison training[heldout] and see nothing change.
    """
    train_rows = np.setdiff1d(np.arange(training.shape[0]), heldout)
    train = training[train_rows]
    asked = answers[heldout]
    n_items = answers.shape[1]
    train_full = train.mean(axis=1)
    fit = fit_irt(train, model=irt_model, seed=seed) if {"anchor", "irt", "cat"} & set(methods) else None
    out = {m: np.empty((repeats, heldout.size)) for m in methods}
    for r in range(repeats):
        subset = random_subset(seed, fold, r, n_items, n_budget)
        sub_score = asked[:, subset].mean(axis=1)
        if "random" in out:
            out["random"][r] = sub_score
        if "random+regression" in out:
            out["random+regression"][r] = _regress(train[:, subset].mean(axis=1), train_full, sub_score)
        if "anchor" in out:
            rng = np.random.default_rng(np.random.SeedSequence([seed, 3, fold, r]))
            out["anchor"][r] = _anchor_score(fit, train, asked, n_budget, rng)
        if "irt" in out:
            seen = np.full(asked.shape, np.nan)
            seen[:, subset] = asked[:, subset]
            out["irt"][r] = _irt_score(fit, seen)
        if "cat" in out:
            rng = np.random.default_rng(np.random.SeedSequence([seed, 2, fold, r]))
            out["cat"][r] = _irt_score(fit, _cat_answers(fit, asked, n_budget, rng))
    return out


def replay(
    matrix: np.ndarray,
    budget: float,
    folds: int = 5,
    split: str = "random",
    seed: int = 0,
    methods: Sequence[str] = METHODS,
    repeats: int = 10,
    task: str = "",
    irt_model: str = "2pl",
) -> pd.DataFrame:
    """One row per method: mean absolute error and Kendall tau-b of held-out models' estimated vs full-data
    scores, and effective sample size (uniform-random budget with the same MAE / this budget).

    MAE and tau are averaged over `repeats` draws of the random subset (and of CAT's randomisation); tau is
    computed over all held-out models of a repeat together (every model once for split 'random'). The
    uniform-random reference is the same nested draws on a budget grid of about 30 sizes (plus this one),
    made non-increasing by a running minimum; a method worse than one random item gets ess = (1 item)/budget.
    """
    y = np.asarray(matrix, dtype=float)
    if y.ndim != 2 or np.isnan(y).any():
        raise ValueError("matrix must be a complete (models x items) array without NaN")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be among {', '.join(METHODS)}, got {list(methods)}")
    n_models, n_items = y.shape
    n_budget = budget_items(budget, n_items)
    full = y.mean(axis=1)
    sets = holdout_sets(full, folds, split, seed)
    if any(n_models - s.size < 2 for s in sets):
        raise ValueError(f"too few training models: {n_models} models, {folds} folds")
    estimates = {m: np.empty((repeats, 0)) for m in methods}
    for k, heldout in enumerate(sets):
        part = replay_fold(y, y, heldout, n_budget, seed, k, methods, repeats, irt_model)
        estimates = {m: np.concatenate([estimates[m], part[m]], axis=1) for m in methods}
    heldout_all = np.concatenate(sets)
    truth = full[heldout_all]
    grid, grid_mae = _random_curve(y, sets, n_budget, seed, repeats)
    rows = []
    for m in methods:
        est = estimates[m]
        mae = float(np.mean(np.abs(est - truth)))
        taus = [sps.kendalltau(e, truth, variant="b").statistic for e in est]
        rows.append({"task": task, "method": m, "budget": budget, "items": n_budget, "of_items": n_items,
                     "models": n_models, "heldout": int(truth.size), "mae": mae,
                     "tau": float(np.nanmean(taus)) if not np.all(np.isnan(taus)) else math.nan,
                     "ess": _ess(mae, grid, grid_mae) / n_budget})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------- internals
def _regress(x_train: np.ndarray, y_train: np.ndarray, x_new: np.ndarray) -> np.ndarray:
    """Least-squares line full ~ subset score over training models, applied to new models, clipped to [0, 1]."""
    spread = x_train - x_train.mean()
    denom = spread @ spread
    slope = (spread @ (y_train - y_train.mean())) / denom if denom > 0 else 0.0
    return np.clip(y_train.mean() + slope * (x_new - x_train.mean()), 0.0, 1.0)


def _irt_score(fit: IRTFit, seen: np.ndarray) -> np.ndarray:
    """Full-score estimate from the answers seen, at each model's MAP ability."""
    return fit.p_irt_score(estimate_ability(fit, seen)[0], seen)


def anchor_points(train: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 50
                  ) -> tuple[np.ndarray, np.ndarray]:
    """tinyBenchmarks' anchor points (Maia Polo et al. 2024, correctness embedding): items clustered by their
    scores across the training models (k-means, k-means++ start), the item nearest each centroid as its anchor,
    weighted by its cluster's share of the items. Returns (anchor item indices, weights summing to 1)."""
    points = np.asarray(train, dtype=float).T  # items x training models
    n = points.shape[0]
    centres = [points[rng.integers(n)]]
    gap = ((points - centres[0]) ** 2).sum(axis=1)  # squared distance to the nearest centre so far
    for _ in range(1, k):  # k-means++: each next centre drawn with probability ~ squared distance
        centres.append(points[rng.choice(n, p=gap / gap.sum()) if gap.sum() > 0 else rng.integers(n)])
        gap = np.minimum(gap, ((points - centres[-1]) ** 2).sum(axis=1))
    centres = np.array(centres)
    for _ in range(iterations):
        label = ((points[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
        moved = np.array([points[label == c].mean(axis=0) if np.any(label == c) else centres[c] for c in range(k)])
        if np.allclose(moved, centres):
            break
        centres = moved
    distance = ((points[:, None, :] - centres[None]) ** 2).sum(axis=2)
    label = distance.argmin(axis=1)
    anchors, weights = [], []
    for c in range(k):
        members = np.flatnonzero(label == c)
        if members.size:
            anchors.append(members[distance[members, c].argmin()])
            weights.append(members.size / n)
    return np.array(anchors), np.array(weights)


def _anchor_score(fit: IRTFit, train: np.ndarray, asked: np.ndarray, n_budget: int,
                  rng: np.random.Generator) -> np.ndarray:
    """tinyBenchmarks' gp-IRT on anchor points: lambda * (weighted anchor answers) + (1 - lambda) * p-IRT from the
    same answers, lambda in 0, 0.05, ..., 1 the one with the least squared error on the training models."""
    anchors, weights = anchor_points(train, n_budget, rng)

    def estimates(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen = np.full(rows.shape, np.nan)
        seen[:, anchors] = rows[:, anchors]
        return rows[:, anchors] @ weights, _irt_score(fit, seen)

    grid = np.linspace(0.0, 1.0, 21)
    train_anchor, train_pirt = estimates(train)
    errors = [np.mean((lam * train_anchor + (1 - lam) * train_pirt - train.mean(axis=1)) ** 2) for lam in grid]
    lam = grid[int(np.argmin(errors))]
    anchor, pirt = estimates(asked)
    return lam * anchor + (1 - lam) * pirt


def _cat_answers(fit: IRTFit, asked: np.ndarray, n_budget: int, rng: np.random.Generator) -> np.ndarray:
    """Computerized adaptive testing: batches chosen by Fisher information at the current MAP ability,
    at random among the top candidates; returns the answers seen (NaN elsewhere)."""
    n_models, n_items = asked.shape
    seen = np.full(asked.shape, np.nan)
    batch = max(1, math.ceil(n_budget / CAT_STEPS))
    theta = np.zeros(n_models)
    done = 0
    while done < n_budget:
        take = min(batch, n_budget - done)
        info = fit.information(theta)
        info[~np.isnan(seen)] = -np.inf
        for i in range(n_models):
            pick = cat_pick(info[i], take, n_items - done, rng)
            seen[i, pick] = asked[i, pick]
        done += take
        theta, _ = estimate_ability(fit, seen)
    return seen


def _random_curve(y: np.ndarray, sets: list[np.ndarray], n_budget: int, seed: int,
                  repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """MAE of uniform random subsets of held-out models on a budget grid (items), non-increasing."""
    n_items = y.shape[1]
    grid = np.unique(np.concatenate([np.round(np.geomspace(1, n_items, 30)).astype(int), [n_budget]]))
    full = y.mean(axis=1)
    mae = np.zeros(grid.size)
    for k, heldout in enumerate(sets):
        rows = y[heldout]
        for r in range(repeats):
            perm = random_subset(seed, k, r, n_items, n_items)
            running = np.cumsum(rows[:, perm], axis=1)[:, grid - 1] / grid
            mae += np.abs(running - full[heldout, None]).sum(axis=0)
    mae /= repeats * sum(s.size for s in sets)
    return grid, np.minimum.accumulate(mae)


def _ess(mae: float, grid: np.ndarray, grid_mae: np.ndarray) -> float:
    """Items uniform random needs for `mae`: linear interpolation on the non-increasing curve."""
    if mae >= grid_mae[0]:
        return float(grid[0])
    k = int(np.argmax(grid_mae <= mae + 1e-12))  # first grid point at least as good (float sums differ)
    hi_n, hi_m, lo_n, lo_m = grid[k], grid_mae[k], grid[k - 1], grid_mae[k - 1]
    if lo_m == hi_m:
        return float(hi_n)
    return float(lo_n + (hi_n - lo_n) * (lo_m - mae) / (lo_m - hi_m))
