"""`harness query`: SQL on the store."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.commands._common import out
from harness.options import CsvOption, DbOption
from harness.paths import default_db


def query(
    sql: Annotated[str, typer.Argument(help="SQL to run against the store.")],
    db: DbOption = default_db(),
    csv: CsvOption = False,
    write: Annotated[bool, typer.Option("--write", help="Allow statements that change the store.")] = False,
) -> None:
    """Run SQL on the store and print the result; the store is opened read-only unless --write."""
    from harness.report.leaderboard import render
    from harness.store import Store

    with Store.open(db, read_only=not write, files=write) as store:  # without --write: no COPY TO, no ATTACH
        frame = store.query(sql)
    render(frame, "csv" if csv else "table", out)
