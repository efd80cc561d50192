"""`harness.scores` and `harness.rank`: what the store (or a CSV) holds, as a ScoreTable, ranked by any method."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from harness.common.paths import default_db
from tournaments import Ranking, ScoreTable


def scores(db: str | Path | None = None, *, source: str | None = None, models: Sequence[str] | None = None,
           tasks: Sequence[str] | None = None, level: str = "group", items: bool = False, limit: int | None = None,
           allow_mixed: bool = False) -> ScoreTable:
    """Evaluated models x tasks (primary metrics; with `items`, one replicate per item), or the import `source`.
    `tasks` picks tasks and lm-eval groups: a group is one benchmark at level 'group', its leaves at 'leaf'.
    Models are compared on one task version and settings and on the items they share; `limit` uses the runs made
    with --limit `limit`; `allow_mixed` takes each model's own score where they differ (else a HarnessError)."""
    return scores_and_published(db, source=source, models=models, tasks=tasks, level=level, items=items,
                                limit=limit, allow_mixed=allow_mixed)[0]


def scores_and_published(db: str | Path | None = None, *, source: str | None = None,
                         models: Sequence[str] | None = None, tasks: Sequence[str] | None = None,
                         level: str = "group", items: bool = False, limit: int | None = None,
                         allow_mixed: bool = False):
    """`scores`, with an import's published aggregate (a Series by competitor, or None) and the notes on what was
    done to compare the models (a tuple of lines) beside it."""
    from harness.store import Store
    from harness.tables.scores import imported_table, stored_scores

    with Store.open(db or default_db(), read_only=True) as store:
        if source:
            return (*imported_table(store, source), ())
        table, notes = stored_scores(store, list(models) if models else None, items=items, tasks=list(tasks or []),
                                     level=level, limit=limit, allow_mixed=allow_mixed)
        return table, None, notes


def csv_scores(path: str | Path, on_duplicate: str = "error"):
    """A wide leaderboard CSV (first column competitor, one column per benchmark) as a ScoreTable, with its
    published aggregate column (a Series, or None) apart."""
    from harness.common.errors import HarnessError
    from harness.ingest.parsers import DUPLICATES, read_wide_csv

    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"--from {path}: no such file")
    if on_duplicate not in DUPLICATES:
        raise HarnessError(f"--on-duplicate '{on_duplicate}': choose error, number or first")
    return read_wide_csv(path, on_duplicate=on_duplicate)


def rank(table: ScoreTable | str | Path | None = None, method: str = "mwr", *, db: str | Path | None = None,
         **params: Any) -> Ranking:
    """Rank a ScoreTable, the evaluated models in `db` (None), an import by its source name (str) or a wide CSV
    file (a Path, or a str naming an existing .csv/.tsv file), with any registered method and its parameters."""
    from tournaments.methods import rank as rank_table

    if table is None:
        table = scores(db)
    elif isinstance(table, Path) or (isinstance(table, str) and table.endswith((".csv", ".tsv"))
                                     and Path(table).is_file()):
        table = csv_scores(table)[0]
    elif isinstance(table, str):
        table = scores(db, source=table)
    return rank_table(table, method, **params)
