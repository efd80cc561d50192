"""`harness adaptive replay`: how well do a few items predict a model's full score, on stored per-item results;
`harness adaptive race`: what a race for the top K would have cost on them, and whether it finds the full top K.

Each task's (models x items) matrix is read from a `harness import items` source (models that miss any item of
the task are left out, and counted, because the replay compares every estimate with a full-data score), or
without --source from the evaluated runs, made comparable as `harness rank` makes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import typer

from harness.cli.commands._common import friendly, out
from harness.cli.options import (
    BudgetOption,
    BusyTimeoutOption,
    ConfidenceOption,
    DbOption,
    FoldsOption,
    FormatOption,
    ModelsOption,
    RankLimitOption,
    RepeatsOption,
    ReplayMethodsOption,
    ReplayTasksOption,
    SeedOption,
    SourceOption,
    SplitOption,
    TopOption,
    split_list,
)
from harness.common.errors import HarnessError
from harness.common.paths import default_db

adaptive_app = typer.Typer(no_args_is_help=True, help="Efficient evaluation: replay subset and adaptive methods "
                           "on stored per-item results (an import, or the evaluated runs).")


def replay(
    budget: BudgetOption,
    source: SourceOption = None,
    models: ModelsOption = None,
    tasks: ReplayTasksOption = None,
    limit: RankLimitOption = None,
    folds: FoldsOption = 5,
    split: SplitOption = "random",
    seed: SeedOption = 0,
    repeats: RepeatsOption = 10,
    methods: ReplayMethodsOption = None,
    fmt: FormatOption = "table",
    db: DbOption = default_db(),
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Per task and method: MAE and Kendall tau of held-out models' estimated vs full scores, and ESS."""
    from harness.report.formats import check_format, render
    from tournaments.adaptive import METHODS, SPLITS
    from tournaments.adaptive import replay as replay_matrix

    check_format(fmt)
    if not 0 < budget <= 1:
        raise HarnessError(f"--budget {budget}: give a fraction of the items in (0, 1]")
    if split not in SPLITS:
        raise HarnessError(f"--split '{split}': choose one of {', '.join(SPLITS)}")
    chosen = split_list(methods) or list(METHODS)
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise HarnessError(f"--methods {unknown[0]!r}: choose among {', '.join(METHODS)}")
    matrices, notes = _matrices(db, source, models, tasks, limit, busy_timeout)
    results = []
    for task, matrix in matrices.items():
        try:
            results.append(replay_matrix(matrix.to_numpy(), budget, folds=folds, split=split, seed=seed,
                                         methods=chosen, repeats=repeats, task=task))
        except ValueError as err:  # too few complete models for the folds
            raise HarnessError(f"task {task!r} ({matrix.shape[0]} complete models): {err}") from None
    table = pd.concat(results, ignore_index=True)
    render(table, fmt, out, title=f"adaptive replay ({source or 'evaluated runs'}, budget {budget:g}, split {split}, {folds} folds)",
           notes=(*notes, *_worse_than_random(table)))


def _worse_than_random(table: pd.DataFrame) -> list[str]:
    """A note per task where a method's error exceeds uniform random's at the same budget, so no method is
    silently worse than the baseline it claims to beat."""
    notes = []
    for task, rows in table.groupby("task", sort=False):
        baseline = rows.loc[rows["method"] == "random", "mae"]
        if baseline.empty:
            continue
        worse = rows[rows["mae"] > baseline.iloc[0]]
        if len(worse):
            errors = ", ".join(f"{m} {e:.3f}" for m, e in zip(worse["method"], worse["mae"]))
            notes.append(f"{task}: WORSE than uniform random at this budget (MAE {errors} vs random "
                         f"{baseline.iloc[0]:.3f}): use uniform random here")
    return notes


def race(
    top: TopOption,
    source: SourceOption = None,
    models: ModelsOption = None,
    tasks: ReplayTasksOption = None,
    limit: RankLimitOption = None,
    confidence: ConfidenceOption = 0.95,
    budget: BudgetOption = 1.0,
    seed: SeedOption = 0,
    fmt: FormatOption = "table",
    db: DbOption = default_db(),
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Race for the top K over the stored answers (tournaments/race.py): each round only the models whose top-K
    place is unsure get more items (each task's first n, in one seeded random order); compare with the full data."""
    from harness.report.formats import check_format, render
    from tournaments import ScoreTable, mean_win_rate
    from tournaments.race import race as race_models

    check_format(fmt)
    matrices, notes = _matrices(db, source, models, tasks, limit, busy_timeout)
    models = sorted(set.intersection(*(set(m.index) for m in matrices.values())))
    if not 1 <= top < len(models):
        raise HarnessError(f"--top {top}: give 1 to {len(models) - 1} ({len(models)} models have every item)")
    rng = np.random.default_rng(seed)
    values = [m.loc[models].to_numpy()[:, rng.permutation(m.shape[1])] for m in matrices.values()]
    sizes = [v.shape[1] for v in values]
    result = race_models(lambda asked: [values[task][model, :n] for model, task, n in asked], len(models), sizes,
                         [True] * len(values),
                         top, confidence=confidence, budget=budget, seed=seed)
    full = mean_win_rate(ScoreTable(tuple(models), tuple(matrices), np.stack([v.mean(axis=1) for v in values], 1),
                                    np.ones(len(values), dtype=bool))).scores
    table = pd.DataFrame({"competitor": models, "mwr": result.mwr, "p_top": result.p_top,
                          "items": result.items.sum(axis=1), "raced_top": [m in result.top for m in range(len(models))],
                          "full_mwr": full}).sort_values("mwr", ascending=False, kind="stable")
    found = set(result.top) == set(np.argsort(-full, kind="stable")[:top])
    notes = (*notes, f"cost: {result.cost(sizes):.1%} of a full evaluation ({int(result.items.sum())} of "
             f"{len(models) * sum(sizes)} model-items) in {result.rounds} rounds; "
             f"{'every model settled' if result.settled else 'some models never settled'} at {confidence:g}",
             f"the raced top {top} {'equals' if found else 'DIFFERS FROM'} the full-data top {top}")
    render(table, fmt, out, title=f"race for the top {top} ({source or 'evaluated runs'}, {len(models)} models, {len(values)} tasks)",
           notes=notes)


def _matrices(db, source: str | None, models: list[str] | None, tasks: str | None, limit: int | None,
              busy_timeout: float):
    """(matrices, notes) per task: of the import `source`, or of the evaluated runs; of `models` (default all)."""
    from harness.store import Store
    from harness.tables.items import item_matrices

    with Store.open(db, read_only=True, busy_timeout=busy_timeout) as store:
        matrices, notes, _ = item_matrices(store, source, split_list(tasks), limit, split_list(models) or None)
    return matrices, notes


adaptive_app.command("replay")(friendly(replay))
adaptive_app.command("race")(friendly(race))
