"""`harness tasks list` and `harness models list`: what can be evaluated."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from harness.commands._common import out
from harness.options import DbOption
from harness.paths import default_db


def tasks_list() -> None:
    """List the built-in tasks and suites."""
    from harness.tasks.registry import builtin_tasks, suites

    table = Table(header_style="bold")
    for column in ("task", "type", "primary metric", "items", "description"):
        table.add_column(column)
    for task in builtin_tasks().values():
        metric = task.primary_metric + ("" if task.higher_is_better else " ↓")
        table.add_row(task.name, task.output_type, metric, str(len(task.build())), Text(task.description))
    out.print(table)
    for name, members in suites().items():
        out.print(f"suite [bold]{name}[/bold]: {', '.join(members)}")


def models_list(db: DbOption = default_db()) -> None:
    """List embedded models and the models in the store."""
    from harness.models import EMBEDDED
    from harness.report.leaderboard import to_rich
    from harness.store import Store

    for name, model in EMBEDDED.items():
        out.print(Text(f"embedded: {name} — {model.description}"))
    if db.exists():
        with Store.open(db, read_only=True) as store:
            out.print(to_rich(store.models(), title=f"models in {db}"))
