"""One optimizer comparison computed: trials in; the tables, tests and curves of `harness hpo report` out.

Computing only: harness.report.optimizer_files writes a comparison to disk and harness.report.sections
puts it on the report page, so imports run from the report package to hpo, never back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from hpo import analysis
from tournaments.table import ScoreTable


@dataclass(frozen=True)
class Comparison:
    mode: str
    final: pd.DataFrame  # per run: final cost_inc and cost_inc_norm
    cells: pd.DataFrame  # per (optimizer, task): seed mean and bootstrap CI
    overall: pd.DataFrame  # per optimizer: mean over tasks with CI
    table: ScoreTable
    tests: analysis.RankTests
    curves: pd.DataFrame
    profile: pd.DataFrame


def compare(rows: pd.DataFrame, mode: str = "carps", anchors: Mapping[str, tuple[float, float]] | None = None,
            n_boot: int = 2000, seed: int = 0) -> Comparison:
    """Normalise, take final performance, rank, test, and compute anytime curves and profiles."""
    norm = analysis.normalise(rows, mode, anchors)
    final = analysis.final_performance(norm)
    table = analysis.score_table(final)
    return Comparison(
        mode=mode, final=final,
        cells=analysis.seed_summary(final, n_boot=n_boot, seed=seed),
        overall=analysis.overall_summary(final, n_boot=n_boot, seed=seed),
        table=table, tests=analysis.rank_tests(table),
        curves=analysis.anytime(norm, n_boot=min(n_boot, 1000), seed=seed),
        profile=analysis.performance_profile(table),
    )


def optimizer_table(c: Comparison) -> pd.DataFrame:
    """One row per optimizer, best mean rank first: rank, normalised final cost with CI, tasks won."""
    means = c.table.cell_means()
    complete = ~np.isnan(means).any(axis=0)
    wins = (means[:, complete] == means[:, complete].min(axis=0)).sum(axis=1)
    frame = c.overall.rename(columns={"mean": "norm_cost"}).set_index("optimizer")
    frame["mean_rank"] = c.tests.mean_ranks
    frame["tasks_best"] = pd.Series(wins, index=list(c.table.competitors))
    frame = frame.reset_index().sort_values(["mean_rank", "norm_cost"], kind="stable")
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame[["rank", "optimizer", "mean_rank", "norm_cost", "ci_low", "ci_high", "tasks_best", "n_tasks"]]


def notes(c: Comparison) -> tuple[str, ...]:
    """What the numbers mean and what the tests say, for the footer of the leaderboard."""
    scale = ("carps: per-task min-max over every trial loaded (moves when runs are added)" if c.mode == "carps"
             else "stable: 0 = best known, 1 = task's reference (random-search median or untuned default)")
    lines = [f"norm_cost: final incumbent, {scale}; CI resamples seeds", *c.tests.notes]
    f = c.tests.friedman
    if f is not None:
        verdict = "differences are significant" if f.p_value < f.alpha else "no significant difference"
        lines.append(f"Friedman p = {f.p_value:.3g} ({verdict}); Nemenyi CD = {f.critical_difference:.3f} "
                     f"at alpha {f.alpha:g} over {f.n_benchmarks} tasks")
    return tuple(lines)


def publish_rows(c: Comparison) -> pa.Table:
    """external_scores rows (one per optimizer, task and seed) so `harness rank --source` ranks optimizers."""
    final = c.final
    return pa.table({
        "competitor": final["optimizer"].astype(str).tolist(),
        "benchmark": final["task"].astype(str).tolist(),
        "replicate": final["seed"].astype(str).tolist(),
        "value": final["cost_inc_norm"].astype(float).tolist(),
        "higher_is_better": [False] * len(final),
        "is_aggregate": [False] * len(final),
        "snapshot": [c.mode] * len(final),
    })
