"""Files a verb writes on request (`--out`, `--md`, `--plot`): refused in one line where writing would destroy data
(the store, any DuckDB file) or cannot happen (a folder, a parent that is a file or read-only)."""

from __future__ import annotations

import os
from pathlib import Path

from harness.common.errors import HarnessError


def check_output(where: str, path: Path, db: Path | None = None) -> None:
    """`where` names the flag and value in the message (e.g. "--plot fsa.png")."""
    if path.is_dir():
        raise HarnessError(f"{where}: is a folder; give a file name inside it")
    if db is not None:
        for store, what in ((db, "the store"), (Path(f"{db}.wal"), "the store's write-ahead log")):
            if same_file(path, store):
                raise HarnessError(f"{where}: is {what} (--db {db}); refusing to write over it")
    if is_duckdb(path):
        raise HarnessError(f"{where}: is a DuckDB database; refusing to write over it")
    folder = next(p for p in path.absolute().parents if p.exists())
    if not folder.is_dir():
        raise HarnessError(f"{where}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise HarnessError(f"{where}: cannot write in {folder} (permission denied)")


def same_file(a: Path, b: Path) -> bool:
    """One file under two names: the same absolute path (existing or not), or the same file through a link."""
    if a.absolute() == b.absolute():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def is_duckdb(path: Path) -> bool:
    """A DuckDB database file, by its magic bytes ("DUCK" after the 8-byte checksum) rather than its name."""
    try:
        with path.open("rb") as handle:
            return handle.read(12)[8:12] == b"DUCK"
    except OSError:  # absent, or unreadable: not something a verb can tell is a store
        return False
