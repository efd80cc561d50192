"""Robustness checks: does a method's ranking survive changes that should not matter?

Each check takes a mapping name -> ranker (ScoreTable -> Ranking), so CSD and every classic
method go through the same experiment, and returns one DataFrame comparing the methods:
- irrelevant alternatives: drop (or add) competitors and count rank changes among the rest;
- per-benchmark rescaling: multiply each benchmark by a positive factor (Zhang & Hardt's
  cardinal test; their published factors reproduce their published table);
- perturbation: set k of one competitor's benchmark scores to zero and report its rank shift
  (the CSD paper's outlier test);
- order sensitivity: permute the benchmark order (matters for CSD and online ratings).
Ranks follow `rank_method` ("min" as leaderboards print ties; "average" as Zhang & Hardt).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, rankdata

from tournaments.ranking import Ranking
from tournaments.stats import snap_float_noise
from tournaments.table import ScoreTable

Ranker = Callable[[ScoreTable], Ranking]


def rank_vector(scores: np.ndarray, rank_method: str = "min") -> np.ndarray:
    """Ranks with 1 = largest score; NaN scores last.

    Scores equal up to float noise count as ties (see `snap_float_noise`).
    """
    snapped = snap_float_noise(scores)
    filled = np.where(np.isnan(snapped), -np.inf, snapped)
    return rankdata(-filled, method=rank_method)


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2:
        return float("nan")
    return float(kendalltau(a, b).statistic)


def _scaled(table: ScoreTable, factors: np.ndarray) -> ScoreTable:
    shape = (1, -1, 1) if table.has_replicates else (1, -1)
    return ScoreTable(table.competitors, table.benchmarks, table.values * factors.reshape(shape),
                      table.higher_is_better)


# --------------------------------------------------------------------------- IIA
def subset_rank_changes(
    table: ScoreTable, subset: Sequence[str], ranker: Ranker, rank_method: str = "min"
) -> pd.DataFrame:
    """Ranks of `subset` ranked alone versus ranked inside the whole table (re-ranked among subset).

    Under independence of irrelevant alternatives the two columns are identical.
    """
    alone = ranker(table.select(competitors=list(subset)))
    full = ranker(table)
    position = {c: i for i, c in enumerate(full.competitors)}
    inside = np.array([full.scores[position[c]] for c in subset])
    frame = pd.DataFrame({
        "competitor": list(subset),
        "rank_alone": rank_vector(alone.scores, rank_method),
        "score_alone": alone.scores,
        "rank_in_full": rank_vector(inside, rank_method),
        "score_in_full": inside,
    })
    frame["shift"] = frame["rank_alone"] - frame["rank_in_full"]
    return frame


def iia_check(
    table: ScoreTable,
    methods: Mapping[str, Ranker],
    protected: Sequence[str] | None = None,
    n_trials: int = 20,
    drop_fraction: float = 0.2,
    seed: int = 0,
    rank_method: str = "min",
) -> pd.DataFrame:
    """Rank changes among competitors that stay when others are added or removed.

    With `protected`, compares that set ranked alone against the full table once (Zhang & Hardt's
    ordinal test). Otherwise each trial drops a random `drop_fraction` of competitors (the same
    draws for every method) and compares the remaining ones' order with and without the others.
    One row per method: mean number of competitors whose rank changed, mean largest shift and
    mean Kendall tau between the two orders.
    """
    rng = np.random.default_rng(seed)
    if protected is not None:
        subsets = [list(protected)]
    else:
        keep = max(2, int(round(table.n_competitors * (1.0 - drop_fraction))))
        subsets = [[table.competitors[i] for i in np.sort(rng.choice(table.n_competitors, keep, replace=False))]
                   for _ in range(n_trials)]
    rows = []
    for name, ranker in methods.items():
        changed, largest, taus = [], [], []
        for subset in subsets:
            f = subset_rank_changes(table, subset, ranker, rank_method)
            changed.append(int((f["shift"] != 0).sum()))
            largest.append(float(f["shift"].abs().max()))
            taus.append(_tau(f["rank_alone"].to_numpy(), f["rank_in_full"].to_numpy()))
        rows.append((name, len(subsets), len(subsets[0]), np.mean(changed), np.mean(largest), np.nanmean(taus)))
    return pd.DataFrame(rows, columns=["method", "trials", "kept", "rank_changes", "max_shift", "tau"])


# --------------------------------------------------------------------------- rescaling
def rescale_rank_changes(
    table: ScoreTable, factors: Sequence[float], ranker: Ranker, rank_method: str = "min"
) -> pd.DataFrame:
    """Every competitor's rank before and after multiplying benchmark j by factors[j] (> 0)."""
    f = np.asarray(factors, dtype=float)
    if f.shape != (table.n_benchmarks,) or np.any(f <= 0):
        raise ValueError(f"need {table.n_benchmarks} positive factors, got {f.tolist()}")
    before = ranker(table)
    after = ranker(_scaled(table, f))
    frame = pd.DataFrame({
        "competitor": list(table.competitors),
        "rank_before": rank_vector(before.scores, rank_method),
        "score_before": before.scores,
        "rank_after": rank_vector(after.scores, rank_method),
        "score_after": after.scores,
    })
    frame["shift"] = frame["rank_before"] - frame["rank_after"]
    return frame


def rescaling_check(
    table: ScoreTable,
    methods: Mapping[str, Ranker],
    factors: Sequence[float] | None = None,
    n_trials: int = 20,
    spread: float = 10.0,
    seed: int = 0,
    rank_method: str = "min",
) -> pd.DataFrame:
    """Rank changes under per-benchmark rescaling, for each method.

    With `factors`, one rescaling (e.g. Zhang & Hardt's published one). Otherwise `n_trials`
    random factors, log-uniform in [1/spread, spread], the same draws for every method. Ordinal
    methods (win rates, Borda, Copeland, Kemeny, BT on battles) must show zero changes.
    """
    rng = np.random.default_rng(seed)
    draws = ([np.asarray(factors, float)] if factors is not None
             else [np.exp(rng.uniform(-np.log(spread), np.log(spread), table.n_benchmarks)) for _ in range(n_trials)])
    rows = []
    for name, ranker in methods.items():
        changed, largest, taus, top = [], [], [], []
        for f in draws:
            frame = rescale_rank_changes(table, f, ranker, rank_method)
            changed.append(int((frame["shift"] != 0).sum()))
            largest.append(float(frame["shift"].abs().max()))
            taus.append(_tau(frame["rank_before"].to_numpy(), frame["rank_after"].to_numpy()))
            top.append(bool(frame.loc[frame["rank_before"] == frame["rank_before"].min(), "rank_after"].min() != 1))
        rows.append((name, len(draws), np.mean(changed), np.mean(largest), np.mean(taus), np.mean(top)))
    return pd.DataFrame(rows, columns=["method", "trials", "rank_changes", "max_shift", "tau", "winner_changed"])


# --------------------------------------------------------------------------- perturbation
def perturbation_check(
    table: ScoreTable,
    competitor: str,
    methods: Mapping[str, Ranker],
    k: int = 1,
    benchmarks: Sequence[str] | None = None,
    fill: float | None = 0.0,
    rank_method: str = "min",
) -> pd.DataFrame:
    """Set k of one competitor's benchmark scores to `fill` and report its rank shift per method.

    Which benchmarks: `benchmarks` if given, else the competitor's k strongest ones (by its rank
    within each benchmark), the deterministic worst case of a specialist failing where it shines.
    fill=None uses the worst observed value of each benchmark instead of 0 (for lower-is-better
    benchmarks, where 0 would be a perfect score).
    """
    if competitor not in table.competitors:
        raise KeyError(f"unknown competitor: {competitor}")
    i = table.competitors.index(competitor)
    values = table.cell_means()
    oriented = table.oriented()
    if benchmarks is None:
        if k < 1 or k > table.n_benchmarks:
            raise ValueError(f"k must be between 1 and {table.n_benchmarks}, got {k}")
        own = np.array([np.sum(oriented[:, j] > oriented[i, j]) if not np.isnan(oriented[i, j]) else np.inf
                        for j in range(table.n_benchmarks)])
        chosen = [int(j) for j in np.argsort(own, kind="stable")[:k]]
    else:
        unknown = [b for b in benchmarks if b not in table.benchmarks]
        if unknown:
            raise KeyError(f"unknown benchmark(s): {', '.join(unknown)}")
        chosen = [table.benchmarks.index(b) for b in benchmarks]
    perturbed = values.copy()
    for j in chosen:
        if fill is not None:
            perturbed[i, j] = fill
        else:
            column = values[:, j]
            perturbed[i, j] = np.nanmin(column) if table.higher_is_better[j] else np.nanmax(column)
    modified = ScoreTable(table.competitors, table.benchmarks, perturbed, table.higher_is_better)
    rows = []
    for name, ranker in methods.items():
        before = rank_vector(ranker(table).scores, rank_method)[i]
        after = rank_vector(ranker(modified).scores, rank_method)[i]
        rows.append((name, competitor, ", ".join(table.benchmarks[j] for j in chosen), before, after, after - before))
    return pd.DataFrame(rows, columns=["method", "competitor", "zeroed", "rank_before", "rank_after", "drop"])


# --------------------------------------------------------------------------- order
def order_sensitivity(
    table: ScoreTable,
    methods: Mapping[str, Ranker],
    n_perms: int = 20,
    seed: int = 0,
    rank_method: str = "min",
) -> pd.DataFrame:
    """Spread of ranks over random permutations of the benchmark order, for each method.

    Order-free methods show zero spread. Online methods that shuffle internally (Elo and
    OpenSkill by default) average orders away; pass them with order="given" to see the raw
    effect. One row per method: mean and largest per-competitor rank range, mean Kendall tau
    against the table's own order.
    """
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(table.n_benchmarks) for _ in range(n_perms)]
    rows = []
    for name, ranker in methods.items():
        base = rank_vector(ranker(table).scores, rank_method)
        ranks = np.stack([rank_vector(ranker(table.select(benchmarks=[table.benchmarks[j] for j in p])).scores,
                                      rank_method) for p in perms])
        spread = ranks.max(axis=0) - ranks.min(axis=0)
        taus = [_tau(base, r) for r in ranks]
        rows.append((name, n_perms, float(spread.mean()), float(spread.max()), float(np.mean(taus))))
    return pd.DataFrame(rows, columns=["method", "permutations", "mean_rank_range", "max_rank_range", "tau"])
