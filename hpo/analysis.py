"""Optimizer comparison, carps-equivalent by default and stable on request.

Input: one row per trial with optimizer, task, seed, n_trials (1-based) and cost (minimised).
- `normalise(mode="carps")` reproduces carps' `normalize_logs`: per task, min-max over every trial
  of every run loaded (+1e-8 in the denominator); the incumbent is the running minimum per run.
  Its scores move whenever a run is added, since any new trial can set the task's min or max.
- `normalise(mode="stable")` maps the incumbent with the task's fixed anchors (best -> 0,
  reference -> 1, clipped below at 0), so adding an optimizer never moves anyone else's score.
- `final_performance` keeps the incumbent at n_trials_norm <= max_x per run (carps'
  `filter_only_final_performance`); seeds are averaged per (optimizer, task) as in carps' df_crit,
  with a bootstrap CI over seeds reported next to the mean.
- `score_table` turns it into a ScoreTable (optimizers x tasks x seeds), so every ranker and
  `harness rank` treat optimizers like models; `rank_tests` adds Friedman/Nemenyi and Wilcoxon-Holm.
- `anytime` evaluates incumbents on a budget grid by step lookup (carps interpolates linearly,
  which invents values between trials) and gives mean ranks and normalised regret with CIs;
  `performance_profile` adds the Dolan-More profiles carps lacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from tournaments.stats import FriedmanResult, friedman, wilcoxon_holm
from tournaments.table import ScoreTable

RUN = ["optimizer", "task", "seed"]
EPSILON = 1e-8  # carps' guard in its min-max denominator
MIN_TASKS_FOR_TESTS = 5  # as autorank's public API: fewer tasks give ranks, not significance


def from_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Rows as stored in `hpo_trials` (0-based `trial`) to analysis rows."""
    frame = trials[RUN + ["cost"]].copy()
    frame["n_trials"] = trials["trial"].to_numpy() + 1
    return frame


def _minmax(series: pd.Series) -> pd.Series:
    return (series - series.min()) / (series.max() - series.min() + EPSILON)


def normalise(rows: pd.DataFrame, mode: str = "carps",
              anchors: Mapping[str, tuple[float, float]] | None = None) -> pd.DataFrame:
    """Adds cost_inc, cost_inc_norm and n_trials_norm; see the module docstring for the two modes."""
    frame = rows.sort_values(RUN + ["n_trials"], kind="stable").reset_index(drop=True)
    runs = frame.groupby(RUN, sort=False)
    frame["cost_inc"] = runs["cost"].cummin()
    frame["n_trials_norm"] = frame.groupby("task")["n_trials"].transform(_minmax)
    if mode == "carps":
        frame["cost_norm"] = frame.groupby("task")["cost"].transform(_minmax)
        frame["cost_inc_norm"] = frame.groupby(RUN, sort=False)["cost_norm"].cummin()
    elif mode == "stable":
        missing = sorted(set(frame["task"]) - set(anchors or {}))
        if missing:
            raise ValueError(f"stable mode needs anchors for task(s) {', '.join(missing)}")
        best = frame["task"].map({t: a[0] for t, a in anchors.items()})
        reference = frame["task"].map({t: a[1] for t, a in anchors.items()})
        frame["cost_inc_norm"] = ((frame["cost_inc"] - best) / (reference - best)).clip(lower=0.0)
    else:
        raise ValueError(f"normalisation mode {mode!r}: choose carps or stable")
    return frame


def final_performance(norm: pd.DataFrame, max_x: float = 1.0) -> pd.DataFrame:
    """Per run, the best incumbent seen within n_trials_norm <= max_x (raw and normalised)."""
    kept = norm[norm["n_trials_norm"] <= max_x]
    return kept.groupby(RUN, as_index=False)[["cost_inc", "cost_inc_norm"]].min()


def _seed_boots(final: pd.DataFrame, value: str, n_boot: int, seed: int):
    """Per (optimizer, task): the seed values and `n_boot` means of seeds resampled with replacement."""
    rng = np.random.default_rng(seed)
    for (optimizer, task), group in final.groupby(["optimizer", "task"], sort=True):
        x = group[value].to_numpy(dtype=float)
        yield optimizer, task, x, x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)


def seed_summary(final: pd.DataFrame, value: str = "cost_inc_norm", n_boot: int = 2000, seed: int = 0,
                 level: float = 0.95) -> pd.DataFrame:
    """Mean over seeds per (optimizer, task) with a percentile bootstrap CI over seeds."""
    q = [(1 - level) / 2, (1 + level) / 2]
    rows = [(optimizer, task, float(x.mean()), *np.quantile(boots, q), len(x))
            for optimizer, task, x, boots in _seed_boots(final, value, n_boot, seed)]
    return pd.DataFrame(rows, columns=["optimizer", "task", "mean", "ci_low", "ci_high", "n_seeds"])


def overall_summary(final: pd.DataFrame, value: str = "cost_inc_norm", n_boot: int = 2000, seed: int = 0,
                    level: float = 0.95) -> pd.DataFrame:
    """Per optimizer, the mean over tasks of seed means, with a CI from resampling seeds within each task."""
    q = [(1 - level) / 2, (1 + level) / 2]
    per_optimizer: dict[str, list] = {}
    for optimizer, _task, x, boots in _seed_boots(final, value, n_boot, seed):
        per_optimizer.setdefault(optimizer, []).append((x.mean(), boots))
    rows = []
    for optimizer, cells in per_optimizer.items():
        means = np.array([m for m, _ in cells])
        boots = np.mean([b for _, b in cells], axis=0)
        rows.append((optimizer, float(means.mean()), *np.quantile(boots, q), len(cells)))
    return pd.DataFrame(rows, columns=["optimizer", "mean", "ci_low", "ci_high", "n_tasks"])


def score_table(final: pd.DataFrame, value: str = "cost_inc_norm") -> ScoreTable:
    """Optimizers x tasks x seeds, lower is better; cell means are carps' df_crit (transposed)."""
    tasks = sorted(set(final["task"]))
    return ScoreTable.from_long(final.sort_values(RUN), competitor="optimizer", benchmark="task", value=value,
                                replicate="seed", higher_is_better={t: False for t in tasks})


@dataclass(frozen=True)
class RankTests:
    """Mean ranks (1 = best) always; tests only where they are defined and have enough tasks."""

    mean_ranks: pd.Series
    friedman: FriedmanResult | None
    wilcoxon: pd.DataFrame | None
    notes: tuple[str, ...]


def rank_tests(table: ScoreTable, alpha: float = 0.05) -> RankTests:
    """Friedman + Nemenyi CD (3+ optimizers) and Wilcoxon-Holm (2+), on complete tasks only."""
    complete = [b for j, b in enumerate(table.benchmarks) if not table.missing[:, j].any()]
    notes = []
    if len(complete) < table.n_benchmarks:
        notes.append(f"{table.n_benchmarks - len(complete)} task(s) without every optimizer dropped (carps: remove)")
    table = table.select(benchmarks=complete)
    k, n = table.n_competitors, table.n_benchmarks
    ranks = _ranks_per_task(table.cell_means())
    mean_ranks = pd.Series(ranks.mean(axis=1) if n else np.full(k, np.nan), index=list(table.competitors))
    if k < 2 or n < MIN_TASKS_FOR_TESTS:
        notes.append(f"{k} optimizer(s) on {n} complete task(s): ranks only, no significance test "
                     f"(needs 2+ optimizers and {MIN_TASKS_FOR_TESTS}+ tasks)")
        return RankTests(mean_ranks, None, None, tuple(notes))
    result = friedman(table, alpha) if k >= 3 else None
    if result is None:
        notes.append("2 optimizers: Wilcoxon signed-rank only (Friedman needs 3)")
    return RankTests(mean_ranks, result, wilcoxon_holm(table, alpha), tuple(notes))


def _ranks_per_task(costs: np.ndarray) -> np.ndarray:
    """(optimizers, tasks) ranks of costs, 1 = lowest, ties averaged."""
    if costs.size == 0:
        return costs
    return np.column_stack([rankdata(col, method="average") for col in costs.T])


def _step_lookup(norm: pd.DataFrame, grid: np.ndarray) -> pd.DataFrame:
    """Per run, the incumbent at each budget point: the last trial with n_trials_norm <= x."""
    out = []
    for key, run in norm.groupby(RUN, sort=True):
        x = run["n_trials_norm"].to_numpy()
        y = run["cost_inc_norm"].to_numpy()
        idx = np.searchsorted(x, grid + 1e-12, side="right") - 1
        values = np.where(idx >= 0, y[np.maximum(idx, 0)], np.nan)
        out.append(pd.DataFrame({"optimizer": key[0], "task": key[1], "seed": key[2], "x": grid, "value": values}))
    return pd.concat(out, ignore_index=True)


def anytime(norm: pd.DataFrame, n_points: int = 21, n_boot: int = 1000, seed: int = 0,
            level: float = 0.95) -> pd.DataFrame:
    """Per budget point and optimizer: mean rank over tasks and mean normalised regret with a CI.

    Seeds are averaged per (optimizer, task) first; the regret CI bootstraps tasks.
    """
    grid = np.linspace(0.0, 1.0, n_points)
    steps = _step_lookup(norm, grid)
    cells = steps.groupby(["x", "task", "optimizer"], sort=True)["value"].mean().unstack("optimizer")
    optimizers = list(cells.columns)
    rng = np.random.default_rng(seed)
    rows = []
    for x, block in cells.groupby(level="x", sort=True):
        values = block.dropna().to_numpy()  # tasks x optimizers, complete tasks only
        if values.size == 0:
            continue
        ranks = _ranks_per_task(values.T).mean(axis=1)
        boots = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
        low, high = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2], axis=0)
        for i, optimizer in enumerate(optimizers):
            rows.append((float(x), optimizer, float(ranks[i]), float(values[:, i].mean()), float(low[i]),
                         float(high[i]), len(values)))
    return pd.DataFrame(rows, columns=["x", "optimizer", "mean_rank", "regret", "regret_low", "regret_high",
                                       "n_tasks"])


def performance_profile(table: ScoreTable, taus: np.ndarray | None = None, floor: float = 1e-3) -> pd.DataFrame:
    """Dolan-More profile: share of tasks on which an optimizer is within a factor tau of the best.

    The measure is the seed-mean normalised cost plus `floor`, so a zero (the best possible) stays a
    finite ratio; tasks missing any optimizer are dropped.
    """
    costs = table.cell_means()
    costs = costs[:, ~np.isnan(costs).any(axis=0)] + floor
    ratios = costs / costs.min(axis=0)
    if taus is None:
        taus = np.unique(np.concatenate([[1.0], np.geomspace(1.0, max(float(ratios.max()), 1.0 + 1e-9), 50)]))
    share = (ratios[:, :, None] <= taus[None, None, :] * (1 + 1e-12)).mean(axis=1)
    return pd.DataFrame({
        "optimizer": np.repeat(list(table.competitors), len(taus)),
        "tau": np.tile(taus, table.n_competitors),
        "share": share.ravel(),
    })
