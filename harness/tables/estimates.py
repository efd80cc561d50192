"""The store's adaptive estimates as a ScoreTable, with a standard error per cell: what `harness rank --estimates`
ranks. A model whose full run of a task (every item, the estimates' task version and settings) is stored takes that
exact score instead, with no standard error, so estimated and fully evaluated models share one table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.common.errors import HarnessError
from harness.store import Store
from tournaments import ScoreTable


def estimated_table(store: Store, models: list[str] | None = None,
                    tasks: list[str] | None = None) -> tuple[ScoreTable, np.ndarray, list[str]]:
    """(table, standard errors shaped like it: NaN where a cell is a full run, notes); missing cells are NaN."""
    rows = store.estimate_rows()
    if rows.empty:
        raise HarnessError(f"--estimates: no adaptive estimates in --db {store.path} (harness eval --adaptive)")
    if tasks:
        _refuse_unknown("--tasks", tasks, set(rows["task"]))
        rows = rows[rows["task"].isin(tasks)]
    _refuse_mixed_versions(rows)
    full = _full_runs(store, rows)
    if models:
        _refuse_unknown("--models", models, set(rows["model"]) | set(full["model"]))
        rows, full = rows[rows["model"].isin(models)], full[full["model"].isin(models)]
    exact = set(zip(full["model"], full["task"]))
    replaced = np.array([cell in exact for cell in zip(rows["model"], rows["task"])], dtype=bool)
    rows = rows[~replaced]
    cells = pd.concat([rows.assign(value=rows["estimate"]), full.assign(stderr=np.nan)], ignore_index=True)
    values = cells.pivot(index="model", columns="task", values="value")
    errors = cells.pivot(index="model", columns="task", values="stderr").reindex_like(values)
    higher = cells.drop_duplicates("task").set_index("task")["higher_is_better"].reindex(values.columns)
    table = ScoreTable(tuple(values.index), tuple(values.columns), values.to_numpy(float), higher.to_numpy(bool))
    methods = rows["method"].value_counts()
    notes = [f"{len(rows)} cells are estimates from chosen items (harness eval --adaptive), with a `TASK se`: "
             f"{', '.join(f'{m} ({n} cells)' for m, n in methods.items())}; "
             f"{int(rows['n_items'].sum())} of {int(rows['n_total'].sum())} items answered"]
    if len(full):
        notes.append(f"{len(full)} cells are full runs of every item (no se; exact in the bootstrap)"
                     + (f", {replaced.sum()} of them in place of an estimate of the same model" if replaced.any() else ""))
    return table, errors.to_numpy(float), notes


def _full_runs(store: Store, estimates: pd.DataFrame) -> pd.DataFrame:
    """The latest run of each (model, task) that scored every item of an estimated task, at the estimates' task
    version and settings: columns model, task, value, higher_is_better."""
    rows = store.leaderboard_rows()
    target = estimates.drop_duplicates("task").set_index("task")[["config_hash", "settings", "n_total"]]
    rows = rows[rows["task"].isin(target.index) & rows["item_limit"].isna()]
    wanted = target.reindex(rows["task"]).to_numpy()
    same = ((rows["config_hash"].to_numpy() == wanted[:, 0]) & (rows["settings"].to_numpy() == wanted[:, 1])
            & (rows["n"].to_numpy() == wanted[:, 2])) if len(rows) else np.zeros(0, bool)
    rows = rows[same].sort_values("finished_at").drop_duplicates(["model", "task"], keep="last")
    return rows[["model", "task", "value", "higher_is_better"]].reset_index(drop=True)


def _refuse_mixed_versions(rows: pd.DataFrame) -> None:
    """Estimates of one task made at two task versions or run settings are not comparable: one line naming both."""
    for task, part in rows.groupby("task"):
        kinds = part.drop_duplicates(["config_hash", "settings"])
        if len(kinds) > 1:
            first, second = kinds.iloc[0], kinds.iloc[1]
            raise HarnessError(f"--estimates: task {task!r} was estimated at two task versions or run settings "
                               f"({first['model']}: {first['config_hash'][:8]}/{first['settings'][:8]}, "
                               f"{second['model']}: {second['config_hash'][:8]}/{second['settings'][:8]}); "
                               "re-run them alike, or rank them with --tasks apart")


def _refuse_unknown(flag: str, wanted: list[str], known: set[str]) -> None:
    unknown = sorted(set(wanted) - known)
    if unknown:
        raise HarnessError(f"--estimates {flag} {unknown[0]!r}: no estimate or full run of it (have: "
                           f"{', '.join(sorted(known))})")
