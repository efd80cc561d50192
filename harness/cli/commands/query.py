"""`harness query`: SQL on the store, and on nothing else."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from harness.cli.commands._common import err, out
from harness.common.errors import HarnessError
from harness.cli.options import BusyTimeoutOption, CsvOption, DbOption, FormatOption
from harness.common.paths import default_db
from harness.common.spec_files import one_line

WriteOption = Annotated[bool, typer.Option(
    "--write", help="Allow statements that change this store (INSERT, UPDATE, DELETE, CREATE, DROP). Never "
    "other files or extensions: with or without --write, DuckDB reaches no file but the store (no read_csv, "
    "COPY TO, ATTACH, INSTALL or LOAD from disk); print CSV with --csv instead. The store must exist.")]


def query(
    sql: Annotated[str, typer.Argument(help="SQL to run against the store.")],
    db: DbOption = default_db(),
    csv: CsvOption = False,
    write: WriteOption = False,
    fmt: FormatOption = "table",
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Run one SQL statement on the store and print its result; the store is opened read-only unless --write.

    Views and macros not made by the harness schema (other verbs refuse them) are named in a warning line.
    """
    from harness.report.formats import check_format, render
    from harness.store import Store

    check_format(fmt)
    if csv and fmt not in ("table", "csv"):
        raise HarnessError(f"--csv with --format {fmt}: choose one (--csv is --format csv)")
    _one_statement(sql)
    if write and not db.exists():  # a mistyped --db must not become a new, empty store
        raise HarnessError(f"--db {db}: no such database; --write changes an existing store and never creates one")
    with Store.open(db, read_only=not write, busy_timeout=busy_timeout, allow_foreign_sql=True) as store:
        foreign = store.foreign_sql()
        if foreign:
            err.print(Text(one_line(f"warning: --db {db} holds SQL the harness schema does not create: "
                                    f"{', '.join(foreign)}"), style="yellow"), soft_wrap=True)
        frame = store.query(sql)
    render(frame, "csv" if csv else fmt, out)


def _one_statement(sql: str) -> None:
    """Refuse several statements: DuckDB runs them all but returns only the last result, so the others would run
    (and with --write, change the store) unseen. Parsing only; a syntax error is left for the run to report."""
    import duckdb

    try:
        count = len(duckdb.extract_statements(sql))
    except duckdb.Error:
        return
    if count > 1:
        raise HarnessError(f"query: {count} SQL statements; give one per `harness query` (only the last result "
                           "would be shown)")
