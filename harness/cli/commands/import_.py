"""`harness import csv | lm-eval | checkpoints | items`: results produced elsewhere, into the store.

Every verb reads and checks its whole input before it opens the store, then writes in one
transaction, so a malformed file leaves the database exactly as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.cli.commands._common import friendly, out
from harness.common.errors import HarnessError
from harness.cli.options import BusyTimeoutOption, DbOption, split_list
from harness.common.paths import default_db

import_app = typer.Typer(no_args_is_help=True, help="Import leaderboards, lm-eval output and training curves.")

NameOption = Annotated[str, typer.Option("--name", help="Store the import under this source name.")]


def import_csv(
    file: Annotated[Path, typer.Argument(help="Leaderboard CSV (or .tsv).", exists=True, dir_okay=False)],
    name: NameOption,
    wide: Annotated[Optional[bool], typer.Option(
        "--wide/--long", help="Wide: a row per competitor, a column per benchmark. Long: a row per "
        "(competitor, benchmark, value).", show_default=False)] = None,
    lower_is_better: Annotated[Optional[list[str]], typer.Option(
        "--lower-is-better", help="Benchmarks where lower scores are better (repeat, or comma-separate).")] = None,
    aggregate_col: Annotated[Optional[str], typer.Option(
        "--aggregate-col", help="The leaderboard's own aggregate column (wide) or pseudo-benchmark (long); "
        "auto-detected when it is named after the file or Average/Mean.")] = None,
    ignore_cols: Annotated[Optional[list[str]], typer.Option(
        "--ignore-cols", help="Wide: columns that are not scores (URLs, sizes).")] = None,
    on_duplicate: Annotated[str, typer.Option(
        "--on-duplicate", help="Wide: a repeated competitor is an error, or keep the first, or number them.",
    )] = "error",
    db: DbOption = default_db(),
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Import a leaderboard table; its published aggregate is stored beside, not among, the benchmarks."""
    from harness.ingest.parsers import DUPLICATES, read_long_leaderboard, read_wide_leaderboard
    from harness.store import Store

    _named(name)
    if wide is None:
        raise HarnessError("import csv: say how the file is laid out with --wide or --long")
    if on_duplicate not in DUPLICATES:
        raise HarnessError(f"--on-duplicate '{on_duplicate}': choose one of {', '.join(DUPLICATES)}")
    lower = split_list(lower_is_better)
    if wide:
        board = read_wide_leaderboard(file, lower_is_better=lower, aggregate_col=aggregate_col,
                                      ignore_cols=split_list(ignore_cols), on_duplicate=on_duplicate)
    else:
        if ignore_cols or on_duplicate != "error":
            raise HarnessError("import csv: --ignore-cols and --on-duplicate apply to --wide files only")
        board = read_long_leaderboard(file, lower_is_better=lower, aggregate=aggregate_col)
    with Store.open(db, busy_timeout=busy_timeout) as store:
        store.replace_external(name, board.rows)
    aggregate = f"; published aggregate '{board.aggregate}' kept apart" if board.aggregate is not None else ""
    out.print(f"imported '{name}': {len(board.competitors)} competitors x {len(board.benchmarks)} benchmarks "
              f"from {file.name}{aggregate}", highlight=False, soft_wrap=True)
    for note in board.notes:  # e.g. a percentage column stored as fractions
        out.print(f"note: {note}", highlight=False, soft_wrap=True)


def import_lm_eval(
    folder: Annotated[Path, typer.Argument(
        help="lm-eval --output_path folder (results_*.json, samples_*.jsonl).", exists=True, file_okay=False)],
    name: Annotated[Optional[str], typer.Option(
        "--name", help="Model name to store (default: the name lm-eval recorded); one-model folders only.")] = None,
    db: DbOption = default_db(),
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Import lm-eval output as finished runs of external models, with per-item samples."""
    from harness.ingest.lm_eval_runs import read_lm_eval_runs
    from harness.store import Store

    if name is not None:
        _named(name)
    imported = read_lm_eval_runs(folder, name)
    with Store.open(db, busy_timeout=busy_timeout) as store:
        store.import_runs(imported.models, imported.tasks, imported.runs, imported.samples, imported.scores)
    models = ", ".join(m.name for m in imported.models)
    groups = f"; skipped group tasks {', '.join(imported.skipped_groups)}" if imported.skipped_groups else ""
    out.print(f"imported {imported.runs.num_rows} runs ({len(imported.tasks)} tasks, "
              f"{imported.samples.num_rows} per-item values) for {models}{groups}", highlight=False, soft_wrap=True)


def import_checkpoints(
    path: Annotated[Path, typer.Argument(help="Folder (or one OLMo log CSV) of per-checkpoint results.", exists=True)],
    name: NameOption,
    layout: Annotated[str, typer.Option(
        "--layout", help="olmo (OLMo ladder CSV logs) or lm-eval (per-checkpoint lm-eval JSON, Pythia layout).")],
    db: DbOption = default_db(),
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Import training curves: one competitor per run, one replicate per checkpoint step (for `harness snr`)."""
    from harness.ingest.checkpoint_curves import read_checkpoints
    from harness.store import Store

    _named(name)
    rows = read_checkpoints(path, layout)
    with Store.open(db, busy_timeout=busy_timeout) as store:
        store.replace_external(name, rows)
    runs = len(set(rows.column("competitor").to_pylist()))
    benchmarks = len(set(rows.column("benchmark").to_pylist()))
    out.print(f"imported '{name}': {runs} runs x {benchmarks} benchmarks, {rows.num_rows} checkpoint scores",
              highlight=False, soft_wrap=True)


def import_items(
    file: Annotated[Path, typer.Argument(help="Per-item scores: CSV/TSV or JSON lines with model, task, item, score "
                                         "in [0, 1] (Eval-Arena's benchmark_id, model, example_id, pass1 read as "
                                         "is).", exists=True, dir_okay=False)],
    name: NameOption,
    db: DbOption = default_db(),
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Import per-item scores: one competitor per model, one replicate per item (for `harness adaptive replay`)."""
    from harness.ingest.items import read_items
    from harness.store import Store

    _named(name)
    rows = read_items(file)
    with Store.open(db, busy_timeout=busy_timeout) as store:
        store.replace_external(name, rows)
    models = len(set(rows.column("competitor").to_pylist()))
    tasks = len(set(rows.column("benchmark").to_pylist()))
    out.print(f"imported '{name}': {models} models x {tasks} tasks, {rows.num_rows} item scores from {file.name}",
              highlight=False, soft_wrap=True)


def _named(name: str) -> None:
    """An empty or blank --name would store rows that no --source can name (and the shell hides the blank)."""
    if not name.strip():
        raise HarnessError(f"--name {name!r}: give the import a name")


import_app.command("csv")(friendly(import_csv))
import_app.command("lm-eval")(friendly(import_lm_eval))
import_app.command("checkpoints")(friendly(import_checkpoints))
import_app.command("items")(friendly(import_items))
