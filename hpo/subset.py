"""Representative task subsets, carps-style: low star discrepancy in reference optimizers' score space.

Each task is a point: the seed-mean normalised final cost of (typically three) reference optimizers.
A subset whose points cover [0,1]^d evenly (low L-infinity star discrepancy against the uniform
measure) keeps easy, hard and discriminating tasks alike. A dev subset is taken from all tasks, a
test subset from the rest; carps' rule then picks the size k and raw-or-log scaling for which both
subsets order the reference optimizers the same way, both significantly, at the lowest discrepancy sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from tournaments.stats import friedman
from tournaments.table import ScoreTable


def _box_counts(points: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Critical grid per axis (point coordinates and 1), closed and open counts, and box volumes."""
    n, d = points.shape
    grids = [np.union1d(points[:, j], [1.0]) for j in range(d)]
    idx = np.column_stack([np.searchsorted(grids[j], points[:, j]) for j in range(d)])
    closed = np.zeros(tuple(len(g) for g in grids))
    np.add.at(closed, tuple(idx.T), 1.0)
    for axis in range(d):
        closed = np.cumsum(closed, axis=axis)  # points with every coordinate <= the corner
    open_ = np.pad(closed, [(1, 0)] * d)[tuple(slice(0, -1) for _ in range(d))]  # strictly below
    volume = grids[0]
    for g in grids[1:]:
        volume = np.multiply.outer(volume, g)
    return grids, closed / n, open_ / n, volume


def star_discrepancy(points: np.ndarray) -> float:
    """Exact L-infinity star discrepancy of points in [0,1]^d.

    The supremum over anchored boxes [0, q) is attained with every q_j a point coordinate or 1:
    closed boxes there give the largest excess (share of points minus volume), open boxes the
    largest deficit. Cost grows as (n+1)^d, fine for subsets of tens of tasks in 3 dimensions.
    """
    return _worst_box(np.atleast_2d(np.asarray(points, dtype=float)))[0]


def _worst_box(points: np.ndarray) -> tuple[float, np.ndarray, bool]:
    """(discrepancy, corner of the worst box, True if that box holds too many points)."""
    grids, closed, open_, volume = _box_counts(points)
    excess = closed - volume
    deficit = volume - open_
    too_full = excess.max() >= deficit.max()
    where = np.unravel_index(np.argmax(excess if too_full else deficit), volume.shape)
    corner = np.array([grids[j][i] for j, i in enumerate(where)])
    return float(max(excess.max(), deficit.max())), corner, bool(too_full)


def select_subset(points: np.ndarray, k: int, seed: int = 0, restarts: int = 8, max_iter: int = 200,
                  max_pairs: int = 64, exclude: Sequence[int] = ()) -> tuple[list[int], float]:
    """k row indices (not in `exclude`) with low star discrepancy, by worst-box-guided swaps.

    Each step looks at the worst box: if it holds too many chosen points, swap one of those for an
    outside point beyond the box; if too few, swap a chosen point outside it for one inside. The best
    improving swap among up to `max_pairs` is taken; restarts from random subsets keep the best result.
    """
    points = np.asarray(points, dtype=float)
    pool = np.setdiff1d(np.arange(len(points)), np.asarray(exclude, dtype=int))
    if not 1 <= k <= len(pool):
        raise ValueError(f"cannot pick {k} of {len(pool)} available tasks")
    rng = np.random.default_rng(seed)
    best_subset, best_value = None, np.inf
    for _ in range(restarts):
        subset = list(rng.choice(pool, size=k, replace=False))
        value, corner, too_full = _worst_box(points[subset])
        for _ in range(max_iter):
            outside = np.setdiff1d(pool, subset)
            if too_full:
                leave = [i for i in subset if np.all(points[i] <= corner)]
                enter = [i for i in outside if not np.all(points[i] <= corner)]
            else:
                leave = [i for i in subset if not np.all(points[i] < corner)]
                enter = [i for i in outside if np.all(points[i] < corner)]
            pairs = [(a, b) for a in leave for b in enter]
            if not pairs:
                break
            if len(pairs) > max_pairs:
                pairs = [pairs[i] for i in rng.choice(len(pairs), size=max_pairs, replace=False)]
            trials = [[b if i == a else i for i in subset] for a, b in pairs]
            scores = [star_discrepancy(points[t]) for t in trials]
            best = int(np.argmin(scores))
            if scores[best] >= value - 1e-12:
                break
            subset = trials[best]
            value, corner, too_full = _worst_box(points[subset])
        if value < best_value - 1e-12:
            best_subset, best_value = sorted(int(i) for i in subset), value
    return best_subset, best_value


def scale_points(values: np.ndarray, log: bool) -> np.ndarray:
    """carps' two feature versions: normalised costs as they are, or log10 then min-max per column."""
    if not log:
        return np.clip(values, 0.0, 1.0)
    logged = np.log10(values + 1e-10)
    low, high = logged.min(axis=0), logged.max(axis=0)
    return (logged - low) / np.where(high > low, high - low, 1.0)


@dataclass(frozen=True)
class SubsetChoice:
    candidates: pd.DataFrame  # one row per (scaling, k) with discrepancies, orders, p-values, validity
    dev: list[str] | None
    test: list[str] | None


def choose_subsets(scores: pd.DataFrame, ks: Sequence[int], seed: int = 0, alpha: float = 0.05,
                   restarts: int = 8) -> SubsetChoice:
    """carps' dev/test rule over sizes `ks` and both scalings.

    `scores`: tasks as rows, reference optimizers as columns, seed-mean normalised final cost. A
    candidate is valid when Friedman is significant on dev and on test and both give the same order
    of mean ranks; the valid candidate with the lowest dev + test discrepancy wins (None if none).
    """
    tasks = list(scores.index)
    values = scores.to_numpy(dtype=float)
    rows = []
    for log in (False, True):
        points = scale_points(values, log)
        for k in ks:
            if 2 * k > len(tasks):
                continue
            dev, d_dev = select_subset(points, k, seed=seed, restarts=restarts)
            test, d_test = select_subset(points, k, seed=seed, restarts=restarts, exclude=dev)
            order_dev, p_dev = _order(scores.iloc[dev])
            order_test, p_test = _order(scores.iloc[test])
            valid = order_dev == order_test and p_dev < alpha and p_test < alpha
            rows.append({"scaling": "log" if log else "raw", "k": k, "disc_dev": d_dev, "disc_test": d_test,
                         "disc_sum": d_dev + d_test, "order_dev": " < ".join(order_dev),
                         "order_test": " < ".join(order_test), "p_dev": p_dev, "p_test": p_test, "valid": valid,
                         "dev": [tasks[i] for i in dev], "test": [tasks[i] for i in test]})
    candidates = pd.DataFrame(rows)
    valid = candidates[candidates["valid"]] if len(candidates) else candidates
    if valid.empty:
        return SubsetChoice(candidates, None, None)
    winner = valid.sort_values(["disc_sum", "k"], kind="stable").iloc[0]
    return SubsetChoice(candidates, list(winner["dev"]), list(winner["test"]))


def _order(scores: pd.DataFrame) -> tuple[list[str], float]:
    """Reference optimizers by Friedman mean rank (best first) and the Friedman p-value."""
    table = ScoreTable.from_frame(scores.T, higher_is_better={t: False for t in scores.index})
    result = friedman(table)
    order = np.argsort(result.mean_ranks, kind="stable")
    return [table.competitors[i] for i in order], result.p_value
