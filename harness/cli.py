"""The `harness` command: one small function per verb; options come from harness.options."""

from __future__ import annotations

import os
import sys
from functools import wraps
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.errors import HarnessError
from harness.paths import default_db
from harness.options import (
    BackendOption, BatchSizeOption, ChunkOption, CsvOption, DbOption, DeviceOption, DisplayOption, DtypeOption,
    FormatOption, LimitOption, ModelsOption, SuiteOption, TasksOption, split_list,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Evaluate language models into DuckDB and rank them.")
tasks_app = typer.Typer(no_args_is_help=True, help="Built-in tasks and suites.")
models_app = typer.Typer(no_args_is_help=True, help="Embedded and stored models.")
app.add_typer(tasks_app, name="tasks")
app.add_typer(models_app, name="models")

out = Console()
err = Console(stderr=True)


def _friendly(func):
    """Turn a HarnessError into one red line on stderr and exit code 2."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except HarnessError as exc:
            err.print(Text(f"error: {exc}", style="bold red"), soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


@app.command("eval", rich_help_panel="Evaluate")
@_friendly
def eval_(
    models: ModelsOption = None,
    tasks: TasksOption = None,
    suite: SuiteOption = None,
    db: DbOption = default_db(),
    limit: LimitOption = None,
    batch_size: BatchSizeOption = 16,
    backend: BackendOption = "hf",
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "float32",
    chunk_size: ChunkOption = 256,
    display: DisplayOption = "rich",
) -> None:
    """Evaluate every model on every task; finished runs are skipped, interrupted ones resume."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # lm-eval's and datasets' own bars would fight ours
    from pydantic import ValidationError

    from harness.display import DISPLAYS, Display

    from harness import models as model_registry
    from harness.config import EvalSettings, ModelSpec, SuiteSpec, load_suite
    from harness.paths import results_dir
    from harness.runner import Runner
    from harness.store import Store
    from harness.tasks.lmeval import prepare
    from harness.tasks.registry import resolve_tasks

    if display not in DISPLAYS:
        raise HarnessError(f"--display '{display}': choose one of {', '.join(DISPLAYS)}")
    try:
        settings = EvalSettings(backend=backend, batch_size=batch_size, limit=limit, device=device, dtype=dtype,
                                chunk_size=chunk_size)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise HarnessError(f"--{first['loc'][0].replace('_', '-')}: {first['msg']}") from None
    if suite is not None:
        spec = load_suite(suite)
        settings = spec.settings.model_copy(update={"limit": limit or spec.settings.limit})
    else:
        names = split_list(models) or [model_registry.DEFAULT_MODEL]
        spec = SuiteSpec(models=[ModelSpec(name=n) for n in names], tasks=split_list(tasks) or ["core"],
                         settings=settings)
    # Validate everything before the store is opened, so bad input never touches it.
    refs = [model_registry.resolve(m.target, name=m.name if m.path else None) for m in spec.models]
    chosen = resolve_tasks(spec.tasks)
    root = results_dir()
    prepared = [prepare(task, root / "tasks") for task in chosen]
    with Store.open(db) as store:
        outcomes = Runner(store, settings, root, Display(display, err)).run(refs, prepared)
    _print_outcomes(outcomes)
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(1)


def _print_outcomes(outcomes) -> None:
    table = Table(title="evaluation summary", header_style="bold")
    for column in ("model", "task", "status", "metric", "value", "cached", "computed", "seconds"):
        table.add_column(column, justify="right" if column in {"value", "cached", "computed", "seconds"} else "left")
    for o in outcomes:
        style = {"failed": "red", "skipped": "dim"}.get(o.status, "")
        value = "–" if o.value is None else f"{o.value:.4f}"
        table.add_row(Text(o.model), Text(o.task), Text(o.status, style=style), o.metric, value,
                      str(o.n_cached), str(o.n_computed), f"{o.seconds:.1f}")
    out.print(table)
    for o in outcomes:
        if o.error:
            err.print(Text(f"{o.model} · {o.task}: {o.error}", style="red"))


@app.command(rich_help_panel="Rank")
@_friendly
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


@app.command(rich_help_panel="Store")
@_friendly
def query(
    sql: Annotated[str, typer.Argument(help="SQL to run against the store.")],
    db: DbOption = default_db(),
    csv: CsvOption = False,
) -> None:
    """Run SQL on the store and print the result."""
    from harness.report.leaderboard import render
    from harness.store import Store

    with Store.open(db, read_only=True) as store:
        frame = store.query(sql)
    render(frame, "csv" if csv else "table", out)


@tasks_app.command("list")
@_friendly
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


@models_app.command("list")
@_friendly
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


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
