"""Per-item (competitors x items) matrices per task, from a per-item import or from evaluated runs: what item
response models are fitted on and what replays and races read."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.common.errors import HarnessError
from harness.store import Store
from harness.tables.scores import comparable


def latest_item_values(store: Store, model: str, task: str, limit: int) -> pd.Series:
    """Per-item primary-metric values, by doc id, of the latest finished run of (model, task) over its first `limit`
    items, as the leaderboard offers it (empty when there is none)."""
    rows = store.leaderboard_rows(models=[model], limit=limit)
    rows = rows[rows["task"] == task].sort_values("finished_at")
    items = store.item_rows(rows["run_id"].iloc[-1:])
    return pd.Series(items["value"].to_numpy(dtype=float), index=items["doc_id"].astype(int).to_numpy())


def imported_item_matrices(frame: pd.DataFrame, source: str, tasks: list[str]) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """One complete (models x items) frame per task, sorted by name, and a note per task that lost models."""
    if frame["replicate"].eq("").all():
        raise HarnessError(f"--source '{source}': not a per-item import (import it with `harness import items`)")
    frame = frame[~frame["is_aggregate"]]
    known = sorted(frame["benchmark"].unique())
    missing = [t for t in tasks if t not in known]
    if missing:
        raise HarnessError(f"--tasks {missing[0]!r}: not in '{source}' (tasks: {', '.join(known)})")
    values = frame["value"].to_numpy(dtype=float)
    if np.any(np.isnan(values) | (values < 0) | (values > 1)):
        raise HarnessError(f"--source '{source}': scores outside [0, 1]; replay needs per-item scores")
    matrices, notes = {}, []
    for task in tasks or known:
        rows = frame[frame["benchmark"] == task]
        wide = rows.pivot(index="competitor", columns="replicate", values="value").sort_index().sort_index(axis=1)
        complete = wide.dropna()
        dropped = wide.shape[0] - complete.shape[0]
        if dropped:
            notes.append(f"{task}: {dropped} of {wide.shape[0]} models miss some of its {wide.shape[1]} items "
                         f"and were left out")
        matrices[task] = complete
    return matrices, notes


def evaluated_item_matrices(store: Store, tasks: list[str], limit: int | None = None, models: list[str] | None = None
                            ) -> tuple[dict[str, pd.DataFrame], list[str], dict[str, list[str]]]:
    """(matrices, notes, run ids per task) of the evaluated runs, made comparable as `harness rank` makes them (one
    task version and settings, the items every model has); tasks whose per-item values leave [0, 1] (bits per byte)
    are left out with a note."""
    chosen = comparable(store, models or None, tasks=tasks or None, limit=limit)
    matrices, notes, runs = {}, list(chosen.note_lines()), {}
    for task, rows in chosen.items.groupby("task", sort=True):
        values = rows["value"].to_numpy(dtype=float)
        if np.any((values < 0) | (values > 1)):
            notes.append(f"{task}: per-item values outside [0, 1] (not a per-item score); left out")
            continue
        matrices[task] = rows.pivot(index="model", columns="doc_id", values="value").sort_index()
        matrices[task].columns = matrices[task].columns.astype(str)
        runs[task] = sorted(chosen.rows.loc[chosen.rows["task"] == task, "run_id"])
    if not matrices:
        raise HarnessError("no evaluated task has per-item scores in [0, 1]; run `harness eval` first or give --source")
    return matrices, notes, runs


def item_matrices(store: Store, source: str | None, tasks: list[str], limit: int | None = None,
                  models: list[str] | None = None) -> tuple[dict[str, pd.DataFrame], list[str], dict[str, list[str]]]:
    """(matrices, notes, run ids per task) of a per-item import `source`, or without one of the evaluated runs (made
    comparable, with `limit` those made with --limit `limit`), of `models` (default all): what irt fit, adaptive
    replay and race read. A named model that is nowhere is refused in one line."""
    if source is None:
        matrices, notes, runs = evaluated_item_matrices(store, tasks, limit, models)
    else:
        if limit is not None:
            raise HarnessError(f"--limit {limit}: picks evaluated runs; it does not apply to --source")
        matrices, notes = imported_item_matrices(store.external_rows(source), source, tasks)
        if models:
            matrices = {task: m.loc[m.index.isin(models)] for task, m in matrices.items()}
        runs = {}
    missing = sorted(set(models or ()) - set().union(*(set(m.index) for m in matrices.values())))
    if missing:
        raise HarnessError(f"--models {missing[0]!r}: no per-item results of it in "
                           f"{'--source ' + source if source else 'the evaluated runs'}")
    return matrices, notes, runs

