"""`harness.open_store`: the DuckDB store for reading (or writing) from Python."""

from __future__ import annotations

from pathlib import Path

from harness.common.paths import default_db
from harness.store import Store


def open_store(path: str | Path | None = None, read_only: bool = True) -> Store:
    """The store at `path` (default: $HARNESS_DB or results/harness.duckdb); use it as a context manager so its
    lock is released. `store.query(sql)` returns a DataFrame; tables and views are described in the README."""
    return Store.open(path or default_db(), read_only=read_only)
