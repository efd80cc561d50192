"""From the store to a ScoreTable: the one seam between evaluation and ranking."""

from __future__ import annotations

import pandas as pd

from harness.errors import HarnessError
from harness.store import Store
from tournaments import ScoreTable


def stored_table(store: Store, models: list[str] | None = None, items: bool = False) -> ScoreTable:
    """Evaluated models x tasks on each task's primary metric; with `items`, one replicate per item."""
    rows = store.item_rows(models) if items else store.leaderboard_rows(models)
    if rows.empty:
        which = f" for models {', '.join(models)}" if models else ""
        raise HarnessError(f"--db {store.path}: no finished runs{which}; run `harness eval` first")
    return ScoreTable.from_long(rows, competitor="model", benchmark="task", value="value",
                                replicate="doc_id" if items else None, higher_is_better=_directions(rows))


def imported_table(store: Store, source: str) -> tuple[ScoreTable, pd.Series | None]:
    """An imported leaderboard, plus its own published aggregate when the import carried one.

    A per-checkpoint import is ranked where each run ended (its last checkpoint), not by its
    average over training.
    """
    from harness.checkpoint_tables import final_checkpoints, is_checkpoint_source

    if is_checkpoint_source(store, source):
        return final_checkpoints(store, source), None
    rows = store.external_rows(source)
    aggregate = rows[rows["is_aggregate"].astype(bool)]
    scores = rows[~rows["is_aggregate"].astype(bool)]
    has_replicates = (scores["replicate"] != "").any()
    table = ScoreTable.from_long(scores, competitor="competitor", benchmark="benchmark", value="value",
                                 replicate="replicate" if has_replicates else None,
                                 higher_is_better=_directions(scores, "benchmark"))
    published = aggregate.groupby("competitor")["value"].mean() if len(aggregate) else None
    return table, published


def _directions(rows: pd.DataFrame, column: str = "task") -> dict[str, bool]:
    return dict(zip(rows[column], rows["higher_is_better"].astype(bool)))
