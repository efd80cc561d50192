"""From the store to a ScoreTable: the one seam between evaluation and ranking."""

from __future__ import annotations

from harness.errors import HarnessError
from harness.store import Store
from tournaments import ScoreTable


def stored_table(store: Store, models: list[str] | None = None) -> ScoreTable:
    """Models x tasks on each task's primary metric, from finished runs."""
    rows = store.leaderboard_rows(models)
    if rows.empty:
        which = f" for models {', '.join(models)}" if models else ""
        raise HarnessError(f"--db {store.path}: no finished runs{which}; run `harness eval` first")
    directions = dict(zip(rows["task"], rows["higher_is_better"].astype(bool)))
    return ScoreTable.from_long(rows, competitor="model", benchmark="task", value="value",
                                higher_is_better=directions)
