"""Signal and noise of every benchmark from what the store holds, and SNR filtering before ranking.

Two kinds of evidence give noise, and they measure different things, so every row says which:
  - a per-checkpoint import (`harness import checkpoints`): relative std of each run's last n
    checkpoints, averaged over runs (the paper's noise); signal from the runs' last checkpoints;
  - evaluated (or lm-eval-imported) runs with per-item samples: item-bootstrap noise, i.e. how much
    the finite test set moves each model's score; signal from the models' primary scores.
"""

from __future__ import annotations

import pandas as pd

from harness.tables.checkpoints import checkpoint_tables
from harness.common.errors import HarnessError
from harness.tables.scores import comparable, score_table
from harness.store import Store
from tournaments import ScoreTable
from tournaments.signal_noise import average_checkpoints, snr_table
from tournaments.subtask_filter import snr_filter

DEFAULT_LAST = 5
"""Checkpoints per run in the noise window: the paper's small-scale setting (it uses 30 for OLMo 2
runs logged every 1000 steps; pass `last=30` for curves that dense)."""
N_BOOT = 1000


def item_inputs(scores: ScoreTable, items: pd.DataFrame, task: str) -> tuple[ScoreTable, ScoreTable, str]:
    """(final, noise, note) for `snr_table(..., source="items")` on one task of the evaluated runs.

    `scores` is the stored leaderboard table, `items` the per-item values of `comparable(...)`. The
    population is every model with per-item results on the task; the bootstrap uses the items all of
    them answered (with --allow-mixed a model evaluated with --limit shrinks that set, and the note says so).
    """
    items = items[items["task"] == task]
    per_item = items.groupby("doc_id")["model"].nunique()
    n_models = items["model"].nunique()
    shared = per_item.index[per_item == n_models]
    noise = ScoreTable.from_long(items[items["doc_id"].isin(shared)], competitor="model", benchmark="task",
                                 value="value", replicate="doc_id")
    note = "" if len(shared) == len(per_item) else (
        f"{len(shared)} of {len(per_item)} items shared by all {n_models} models")
    return scores.select(competitors=list(noise.competitors), benchmarks=[task]), noise, note


def benchmark_snr(store: Store, source: str | None = None, last: int = DEFAULT_LAST, limit: int | None = None,
                  allow_mixed: bool = False, average: int | None = None) -> pd.DataFrame:
    """One row per benchmark: signal, noise, snr, noise_source, n_models, note.

    `source` names a per-checkpoint import (`average`: each score the mean of a run's last `average`
    checkpoints, as `average_checkpoints` makes them); without it, the store's evaluated runs are used
    (item-bootstrap noise, one task at a time so each uses every model that has its items), chosen
    and made comparable as `comparable(store, limit=limit, allow_mixed=allow_mixed)` does.
    """
    if source is not None:
        final, noise = checkpoint_tables(store, source)
        if average is None:
            return snr_table(final, noise, source="checkpoints", n=last)
        frame = snr_table(*average_checkpoints(noise, average), source="checkpoints", n=last)
        return frame.assign(noise_source=frame["noise_source"] + f", each a mean of {average} checkpoints")
    if average is not None:
        raise HarnessError(f"--average {average}: averages a per-checkpoint import's curves; give --source")
    chosen = comparable(store, limit=limit, allow_mixed=allow_mixed)
    items = chosen.items
    if items.empty:
        imported = ", ".join(store.external_sources()["source"]) or "none"
        raise HarnessError(f"--db {store.path}: no finished runs with per-item samples; run `harness eval`, "
                           f"`harness import lm-eval`, or pass --source (imported: {imported})")
    scores, frames = score_table(chosen.rows), []
    for task in sorted(items["task"].unique()):
        final, noise, note = item_inputs(scores, items, task)
        note = note or chosen.notes.get(task, "")
        frame = snr_table(final, noise, source="items", n_boot=N_BOOT)
        frames.append(frame.assign(note=frame["note"].where(frame["note"] != "", note)))
    return pd.concat(frames, ignore_index=True)


def filter_for_ranking(
    store: Store,
    table: ScoreTable,
    k: int | None = None,
    min_snr: float | None = None,
    source: str | None = None,
    last: int = DEFAULT_LAST,
    limit: int | None = None,
    allow_mixed: bool = False,
) -> tuple[ScoreTable, list[tuple[str, float, str]]]:
    """`table` without its low-SNR benchmarks, and what was dropped as (benchmark, snr, reason).

    SNR comes from `benchmark_snr(store, source, last, limit, allow_mixed)`; `k` keeps the k highest,
    `min_snr` those at or above it (both may be given). Benchmarks without an SNR estimate are dropped
    too, and say so.
    """
    snrs = benchmark_snr(store, source, last, limit, allow_mixed)
    try:
        return snr_filter(table, dict(zip(snrs["benchmark"], snrs["snr"])), k=k, min_snr=min_snr)
    except ValueError as err:
        raise HarnessError(f"SNR filter: {err}") from None
