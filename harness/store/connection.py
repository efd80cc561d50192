"""One DuckDB file opened safely: sandboxed, locked, migrated forward with a backup, and the one bulk insert.

The store package is the only code that speaks SQL; the classes beside this one add the queries of one
concern each, and `Store` combines them over this single connection.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from harness.common.errors import HarnessError
from harness.store import schema

class DamagedStore(HarnessError):
    """A harness store changed by hand so that the schema no longer holds (refused everywhere but `harness query`)."""


_LOCK_PID = re.compile(r"\(PID (\d+)\)")
# How long a process that finds the store held by a sharing writer (an eval, which lets go of the file between its
# chunks) keeps trying, whatever its --busy-timeout: the writer holds it for one chunk's write at a time.
SHARED_WAIT_S = 120.0



def _busy_timeout(seconds: float | None) -> float:
    """The caller's wait for a held database, else $HARNESS_BUSY_TIMEOUT, else none."""
    if seconds is not None:
        return max(0.0, float(seconds))
    raw = os.environ.get("HARNESS_BUSY_TIMEOUT", "0")
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise HarnessError(f"HARNESS_BUSY_TIMEOUT={raw!r}: expected a number of seconds") from None



def _lock_holder(message: str) -> str:
    """Who holds the lock, from DuckDB's message (it names the PID) and, where readable, its command line."""
    found = _LOCK_PID.search(message)
    if not found:
        return "another process"
    pid = found.group(1)
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:3]
    except OSError:
        argv = []
    return f"another {'harness ' if any(b'harness' in part for part in argv) else ''}process (pid {pid})"



def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True



class WriterLock:
    """Who may write while an evaluation shares the file. DuckDB's own lock admits one process at a time, readers
    included, so an eval holding it for minutes refused every `rank` and `query`; a sharing writer (Connection.open
    with share=True) therefore closes its DuckDB connection between chunks and holds this lock instead for its whole
    life: an advisory flock(2) on the database file. On Linux it is separate from DuckDB's fcntl locks, so readers
    open the file between chunks, while every other harness writer still finds the store busy. Where flock is
    missing (not POSIX) nothing is shared: the eval keeps its DuckDB connection as before."""

    def __init__(self, handle):
        self._handle = handle

    @staticmethod
    def available() -> bool:
        try:
            import fcntl  # noqa: F401
        except ImportError:
            return False
        return True

    @classmethod
    def take(cls, path: Path, busy_timeout: float) -> "WriterLock":
        """Hold the lock (waiting up to busy_timeout), or refuse in one line naming the holder."""
        import fcntl

        handle = open(path, "rb")  # closed only in release(), after the DuckDB connection: see release()
        try:
            _wait(path, busy_timeout, lambda: fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB))
        except BaseException:
            handle.close()
            raise
        return cls(handle)

    def release(self) -> None:
        """Closing a descriptor drops every fcntl lock this process holds on the file, DuckDB's included (POSIX),
        so the handle is closed last, once no DuckDB connection of ours is open on the file."""
        self._handle.close()

    @staticmethod
    def held(path: Path) -> bool:
        """Whether another process holds the writer lock now (probed before any DuckDB connection of ours is open
        on the file, see release())."""
        if not WriterLock.available() or not path.exists():
            return False
        import fcntl

        with open(path, "rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    @staticmethod
    def wait_until_free(path: Path, busy_timeout: float) -> None:
        """For a writer that does not share: wait (up to busy_timeout) while an evaluation holds the writer lock."""
        if WriterLock.available() and path.exists():
            _wait(path, busy_timeout, lambda: WriterLock.held(path) and _raise(BlockingIOError()))


def _raise(exc: BaseException):
    raise exc


def _flock_holder(path: Path) -> str:
    """Who holds an flock on `path`, from /proc/locks (Linux), in _lock_holder's words."""
    try:
        info = path.stat()
        wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
        for line in Path("/proc/locks").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == wanted and parts[4] != str(os.getpid()):
                return _lock_holder(f"(PID {parts[4]})")
    except (OSError, ValueError):
        pass
    return "another process"


def _wait(path: Path, busy_timeout: float, attempt) -> None:
    """attempt() until it stops raising BlockingIOError, with backoff, for up to busy_timeout seconds; then the
    one-line busy refusal naming the writer that holds the store."""
    _retry(attempt, BlockingIOError, lambda _: (busy_timeout, lambda: _busy(path, _flock_holder(path), busy_timeout)))


def _retry(attempt, busy: type[BaseException], refuse):
    """attempt()'s value, retried while it raises `busy`, with backoff (0.05 s, doubling up to 1 s). After each
    refusal, refuse(exc) gives (seconds allowed since the first try, a function making the error raised once they
    are spent), or raises an error of its own to stop at once."""
    started, delay = time.monotonic(), 0.05
    while True:
        try:
            return attempt()
        except busy as exc:
            wait, error = refuse(exc)
            left = started + wait - time.monotonic()
            if left <= 0:
                raise error() from None
            time.sleep(min(delay, left))
            delay = min(delay * 2, 1.0)


def _busy(path: Path, holder: str, busy_timeout: float) -> HarnessError:
    waited = f"waited {busy_timeout:g} s; " if busy_timeout > 0 else ""
    return HarnessError(f"database is busy: {path} is in use by {holder}; {waited}let it finish, or wait for it with "
                        "--busy-timeout SECONDS (or HARNESS_BUSY_TIMEOUT)")


def _open_error(path: Path, message: str) -> HarnessError:
    if "not a valid DuckDB database" in message or "invalid" in message.lower():
        return HarnessError(f"--db {path}: not a DuckDB database file")
    return HarnessError(f"--db {path}: cannot open ({message.splitlines()[0]})")



def _backup_copy(path: Path, version: int) -> Path:
    """Copy the database before migrating it: path.v<version>.bak, never overwriting a different copy."""
    for n in range(1000):
        backup = path.with_name(f"{path.name}.v{version}{f'.{n}' if n else ''}.bak")
        if backup.exists() and not filecmp.cmp(path, backup, shallow=False):
            continue
        shutil.copy2(path, backup)
        return backup
    raise HarnessError(f"--db {path}: too many backup copies beside it; remove old *.bak files")



def _now() -> datetime:
    return datetime.now(timezone.utc)



class Connection:
    """A connection to one DuckDB file; use as a context manager so the lock is always released."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, read_only: bool,
                 writer_lock: WriterLock | None = None):
        self._con: duckdb.DuckDBPyConnection | None = con
        self.path = path
        self.read_only = read_only
        self._writer_lock = writer_lock

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection; a sharing writer that let go of the file between chunks opens it again here,
        waiting while readers have it (they hold it for one command; at most SHARED_WAIT_S)."""
        if self._con is None:
            self._con = self._connect(self.path, self.read_only, SHARED_WAIT_S, own_writer_lock=True)
        return self._con

    def release(self) -> None:
        """Let readers in: a sharing writer closes its DuckDB connection after a committed write (a chunk, a run
        started or finished), and the next use reopens it. No-op for everyone else, and never inside a transaction
        (callers release after COMMIT)."""
        if self._writer_lock is not None and self._con is not None:
            self._con.close()
            self._con = None

    @classmethod
    def open(cls, path: str | Path, read_only: bool = False, busy_timeout: float | None = None,
             allow_foreign_sql: bool = False, share: bool = False) -> "Connection":
        """Open (creating, or migrating with a backup first); a file another process holds is waited for
        up to `busy_timeout` seconds (default $HARNESS_BUSY_TIMEOUT, else 0), then refused in one line.

        A store file is untrusted input (stores are shared): DuckDB reaches nothing but this database, whatever
        SQL runs (see _SANDBOX), and a store holding views or macros other than the schema's is refused in one
        line, as harness SQL would run them. allow_foreign_sql=True is for `harness query`, where people look
        inside a store and repair it; foreign_sql() says what is there.

        share=True (a long evaluation): the file is let go between chunks (see release() and WriterLock), so
        read-only verbs run meanwhile; other writers still find it busy."""
        path = Path(path)
        if read_only and not path.exists():
            raise HarnessError(f"--db {path}: no such database (run `harness eval` first)")
        if path.exists() and path.is_dir():
            raise HarnessError(f"--db {path}: is a folder, not a DuckDB file")
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                cls._create(path)
        wait = _busy_timeout(busy_timeout)
        writer_lock = None
        if not read_only and share and WriterLock.available():
            writer_lock = WriterLock.take(path, wait)
        elif not read_only:
            WriterLock.wait_until_free(path, wait)
        try:
            con = cls._connect(path, read_only, wait, own_writer_lock=writer_lock is not None)
        except BaseException:
            if writer_lock is not None:
                writer_lock.release()
            raise
        store = cls(con, path, read_only, writer_lock)
        try:
            if not allow_foreign_sql:  # macros first: one can stand in for a function that the migrations call
                store._refuse_foreign_sql("macro")
            try:
                store._check_schema()
            except DamagedStore:
                if not allow_foreign_sql:  # `harness query` opens it anyway: that is where it gets repaired
                    raise
            if not allow_foreign_sql:  # views once migrated: an older schema's views may differ from today's
                store._refuse_foreign_sql("view")
                store._refuse_missing_schema()
        except BaseException:
            store.close()
            raise
        return store

    _SANDBOX = {"enable_external_access": False, "autoload_known_extensions": False,
                "autoinstall_known_extensions": False}

    _schema_objects: dict[str, dict[tuple[str, str, str], str]] = {}

    @classmethod
    def _create(cls, path: Path) -> None:
        """Build a new store under a hidden name and link it into place only when complete, so a kill while
        creating never leaves a half-written file where the store belongs (a concurrent creator's file wins)."""
        for stale in path.parent.glob(f".{path.name}.*.creating"):  # left by creators that were killed
            pid = stale.name.rsplit(".", 2)[-2]
            if pid.isdigit() and not _alive(int(pid)):
                stale.unlink(missing_ok=True)
        staged = path.with_name(f".{path.name}.{os.getpid()}.creating")
        staged.unlink(missing_ok=True)
        try:
            con = duckdb.connect(str(staged), config=dict(cls._SANDBOX))
            try:
                cls(con, staged, False)._check_schema()
            finally:
                con.close()
            os.link(staged, path)
        except FileExistsError:
            pass
        finally:
            staged.unlink(missing_ok=True)

    @staticmethod
    def _connect(path: Path, read_only: bool, busy_timeout: float = 0.0,
                 own_writer_lock: bool = False) -> duckdb.DuckDBPyConnection:
        """DuckDB allows one process per file (a writer, or readers) and takes an OS lock; a held lock is retried
        with backoff until `busy_timeout` runs out, then refused in one line naming the holder. Held by a sharing
        writer (an eval, which lets go between chunks), it is retried for at least SHARED_WAIT_S."""
        def refuse(exc: duckdb.Error):
            message = str(exc)
            if "lock" not in message.lower():
                raise _open_error(path, message) from None
            # the writer lock is ours (a sharing eval opening the store): whoever holds DuckDB's is no sharer
            shared = not own_writer_lock and WriterLock.held(path)
            wait = max(busy_timeout, SHARED_WAIT_S) if shared else busy_timeout
            return wait, lambda: _busy(path, _lock_holder(message), wait)

        return _retry(lambda: duckdb.connect(str(path), read_only=read_only, config=dict(Connection._SANDBOX)),
                      duckdb.Error, refuse)

    @staticmethod
    def _sql_objects(con: duckdb.DuckDBPyConnection, kinds=("view", "macro")) -> dict[tuple[str, str, str], str]:
        """(kind, schema, name) -> definition of each view and macro stored in the connection's database, read
        through the system catalog by its full name, which no macro in the store can stand in for."""
        queries = {
            "view": "SELECT schema_name, view_name, sql FROM system.main.duckdb_views() "
                    "WHERE NOT internal AND NOT temporary",
            "macro": "SELECT schema_name, function_name, macro_definition FROM system.main.duckdb_functions() "
                     "WHERE NOT internal AND function_type IN ('macro', 'table_macro')",  # one row per overload
        }
        found: dict[tuple[str, str, str], list[str]] = {}
        for kind in kinds:
            for namespace, name, definition in con.execute(queries[kind]).fetchall():
                found.setdefault((kind, namespace, name), []).append(definition or "")
        return {key: "\n".join(sorted(parts)) for key, parts in found.items()}

    @staticmethod
    def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
        return {row[0] for row in con.execute(
            "SELECT table_name FROM system.main.duckdb_tables() WHERE schema_name = 'main' AND NOT temporary").fetchall()}

    @staticmethod
    def _schema_sql() -> dict[tuple[str, str, str], str]:
        """The views and macros the migrations create, as this DuckDB writes them (and, under the key ("table",
        "main", NAME), the tables): built once per schema in a scratch in-memory database, so a store's objects
        are compared like with like."""
        key = repr(schema.MIGRATIONS)
        if key not in Connection._schema_objects:
            with duckdb.connect(":memory:", config=dict(Connection._SANDBOX)) as con:
                try:
                    for statement in (statement for step in schema.MIGRATIONS for statement in step):
                        con.execute(statement)
                except duckdb.Error:
                    pass  # it fails on the store too, where _check_schema reports it in one line
                objects = Connection._sql_objects(con)
                objects.update({("table", "main", name): "" for name in Connection._tables(con)})
                Connection._schema_objects[key] = objects
        return Connection._schema_objects[key]

    def _refuse_missing_schema(self) -> None:
        """A store damaged by hand (`harness query --write "DROP VIEW leaderboard"`) is refused in one line naming
        what is gone, before a verb's query meets it; `harness query` still opens it, for repairs."""
        present = set(self._sql_objects(self.con, ("view", "macro"))) | {
            ("table", "main", name) for name in self._tables(self.con)}
        missing = sorted(f"{kind} '{name}'" for kind, namespace, name in set(self._schema_sql()) - present)
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise DamagedStore(f"--db {self.path}: damaged: the schema's {shown} is missing; restore the file from a "
                               "copy, or re-create it with `harness query --write`")

    def foreign_sql(self, *kinds: str) -> list[str]:
        """The views and macros (or only `kinds` of them) in this store that the schema does not create, or
        defines otherwise: a shared store could use them to run its own SQL inside any verb (a macro can even
        replace a built-in function)."""
        expected = self._schema_sql()
        problems = []
        for (kind, namespace, name), definition in sorted(self._sql_objects(self.con, kinds or ("view", "macro")).items()):
            label = f"{kind} '{name if namespace == 'main' else f'{namespace}.{name}'}'"
            if (kind, namespace, name) not in expected:
                problems.append(label)
            elif definition != expected[(kind, namespace, name)]:
                problems.append(f"{label} (not the schema's definition)")
        return problems

    def _refuse_foreign_sql(self, kind: str) -> None:
        """One line naming what the store holds besides the schema's SQL, before any of it can run."""
        if self.foreign_sql(kind):
            found = self.foreign_sql()  # all of it, so that one refusal names everything there is to drop
            shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
            raise HarnessError(f"--db {self.path}: refused: it holds SQL the harness schema does not create ({shown}), "
                               "which harness queries would run; inspect it with `harness query`")

    def _check_schema(self) -> None:
        version = self.schema_version()
        if version > schema.SCHEMA_VERSION:
            raise HarnessError(
                f"--db {self.path}: schema version {version} is newer than this harness supports "
                f"({schema.SCHEMA_VERSION}); upgrade the harness (the file was not changed)"
            )
        if version == schema.SCHEMA_VERSION:
            return
        if self.read_only:
            raise HarnessError(f"--db {self.path}: schema version {version} needs migrating; open it once for writing")
        backup = None
        if version > 0:
            self.con.execute("CHECKPOINT")  # everything on disk, so the copy is the whole database
            backup = _backup_copy(self.path, version)
        self.con.execute("BEGIN TRANSACTION")
        try:
            for step in range(version, schema.SCHEMA_VERSION):
                for statement in schema.MIGRATIONS[step]:
                    self.con.execute(statement)
            self.con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(schema.SCHEMA_VERSION)]
            )
            self.con.execute("COMMIT")
        except duckdb.Error as exc:
            self.con.execute("ROLLBACK")
            kept = f"; a copy is at {backup}" if backup else ""
            raise HarnessError(f"--db {self.path}: migrating schema version {version} to {schema.SCHEMA_VERSION} failed "
                               f"({str(exc).splitlines()[0]}); the file was left at version {version}{kept}") from None
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        has_meta = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
        ).fetchone()[0]
        if not has_meta:
            tables = self.con.execute("SELECT count(*) FROM information_schema.tables").fetchone()[0]
            if tables:
                raise HarnessError(f"--db {self.path}: a DuckDB file, but not a harness store (no meta table)")
            return 0
        row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            return 0
        if not re.fullmatch(r"[0-9]+", str(row[0])):  # int() would also take ' 4', '٤' and '4_0'
            raise DamagedStore(f"--db {self.path}: damaged: meta.schema_version is {row[0]!r}, not a version number "
                               f"(this harness writes {schema.SCHEMA_VERSION}); repair it with `harness query --write`")
        return int(row[0])

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._writer_lock is not None:
            self._writer_lock.release()
            self._writer_lock = None

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _insert(self, table: str, rows: pa.Table, ignore_duplicates: bool = False) -> None:
        """Arrow bulk insert by column name; never row by row."""
        if rows.num_rows == 0:
            return
        columns = ", ".join(rows.column_names)
        verb = "INSERT OR IGNORE" if ignore_duplicates else "INSERT"
        if hasattr(self.con, "complete"):  # DuckDB 2: a half-read result (a fetchone() above) blocks register()
            self.con.complete()
        self.con.register("_ingest", rows)
        try:
            self.con.execute(f"{verb} INTO {table} ({columns}) SELECT {columns} FROM _ingest")
        finally:
            self.con.unregister("_ingest")

    def ingest(self, table: str, rows: pa.Table) -> None:
        """Public bulk insert for tables without a dedicated writer (used by importers and benchmarks)."""
        if table not in {"samples", "scores", "requests", "external_scores", "hpo_trials"}:
            raise HarnessError(f"table '{table}' does not accept bulk ingest")
        self._insert(table, rows, ignore_duplicates=table != "samples")

    def query(self, sql: str) -> pd.DataFrame:
        """SQL a person typed (`harness query`) or a script's; a refusal names the limit it met, in one line: writing needs
        --write, and no file or extension is ever in reach (the connection is opened with _SANDBOX)."""
        try:
            result = self.con.execute(sql)
            return result.df() if result.description else pd.DataFrame()
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            if "disabled" in first and "configuration" in first:
                hint = "; harness query reaches no file but the store and installs no extension, even with --write"
            elif "read-only" in first:
                hint = "; the store is opened read-only unless --write is given"
            else:
                hint = ""
            raise HarnessError(f"query failed: {first}{hint}") from None

    def count(self, table: str) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
