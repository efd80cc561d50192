"""`harness rank`: leaderboards over the stored results."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.commands._common import out
from harness.errors import HarnessError
from harness.options import DbOption, FormatOption, ModelsOption, split_list
from harness.paths import default_db


def rank(
    db: DbOption = default_db(),
    method: Annotated[str, typer.Option("--method", help="Order by: mean or mwr (HELM mean win rate).")] = "mwr",
    models: ModelsOption = None,
    fmt: FormatOption = "table",
) -> None:
    """Rank the stored models by mean score and HELM mean win rate over their tasks."""
    from harness.score_tables import stored_table
    from harness.report.leaderboard import FORMATS, leaderboard_frame, render
    from harness.store import Store
    from tournaments import mean_score, mean_win_rate

    if fmt not in FORMATS:
        raise HarnessError(f"--format '{fmt}': choose one of {', '.join(FORMATS)}")
    rankers = {"mean": mean_score, "mwr": mean_win_rate}
    if method not in rankers:
        raise HarnessError(f"--method '{method}': choose one of {', '.join(rankers)}")
    with Store.open(db, read_only=True) as store:
        table = stored_table(store, split_list(models) or None)
    rankings = [ranker(table) for ranker in rankers.values()]
    notes = tuple(note for r in rankings for note in r.notes)
    render(leaderboard_frame(table, rankings, order_by=method), fmt, out, title=f"leaderboard (by {method})",
           notes=notes)
