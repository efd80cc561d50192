"""The DuckDB store: the only module that speaks SQL.

Users query the file directly, so table and column names are part of the public surface; the
schema is versioned in `meta` and migrated forward on open (with a backup copy first).
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import duckdb
import pandas as pd
import pyarrow as pa

from harness.errors import HarnessError

SCHEMA_VERSION = 2

# Each entry upgrades the schema from version (index) to version (index + 1).
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
        """CREATE TABLE models (
            model_id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL UNIQUE, kind VARCHAR NOT NULL,
            source VARCHAR, fingerprint VARCHAR NOT NULL, n_params BIGINT, parents VARCHAR[],
            recipe JSON, created_at TIMESTAMPTZ)""",
        """CREATE TABLE tasks (
            task_id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, version VARCHAR, source VARCHAR,
            config_hash VARCHAR NOT NULL, primary_metric VARCHAR, higher_is_better BOOLEAN,
            n_items INTEGER, config JSON)""",
        """CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY, model_id VARCHAR NOT NULL, task_id VARCHAR NOT NULL,
            backend VARCHAR NOT NULL, backend_args JSON, item_limit INTEGER, status VARCHAR NOT NULL,
            error VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, environment JSON,
            n_requests INTEGER, n_cached INTEGER, n_computed INTEGER)""",
        """CREATE TABLE requests (
            run_id VARCHAR NOT NULL, req_hash VARCHAR NOT NULL, request_type VARCHAR NOT NULL,
            doc_id INTEGER, idx INTEGER, logprob DOUBLE, is_greedy BOOLEAN, n_tokens INTEGER,
            n_chars INTEGER, n_bytes INTEGER, n_words INTEGER, generation VARCHAR,
            PRIMARY KEY (run_id, request_type, doc_id, idx))""",
        """CREATE TABLE samples (
            run_id VARCHAR NOT NULL, doc_id INTEGER NOT NULL, metric VARCHAR NOT NULL, value DOUBLE)""",
        """CREATE TABLE scores (
            run_id VARCHAR NOT NULL, metric VARCHAR NOT NULL, value DOUBLE, stderr DOUBLE, n INTEGER,
            PRIMARY KEY (run_id, metric))""",
        """CREATE TABLE external_scores (
            source VARCHAR NOT NULL, snapshot VARCHAR, competitor VARCHAR NOT NULL,
            benchmark VARCHAR NOT NULL, replicate VARCHAR NOT NULL DEFAULT '', value DOUBLE,
            higher_is_better BOOLEAN DEFAULT true, is_aggregate BOOLEAN DEFAULT false,
            PRIMARY KEY (source, competitor, benchmark, replicate))""",
        """CREATE TABLE rankings (
            ranking_id VARCHAR PRIMARY KEY, method VARCHAR NOT NULL, params JSON, input_hash VARCHAR,
            created_at TIMESTAMPTZ)""",
        """CREATE TABLE ranking_rows (
            ranking_id VARCHAR NOT NULL, competitor VARCHAR NOT NULL, score DOUBLE, rank INTEGER,
            ci_low DOUBLE, ci_high DOUBLE, PRIMARY KEY (ranking_id, competitor))""",
        """CREATE TABLE hpo_trials (
            study VARCHAR NOT NULL, optimizer VARCHAR NOT NULL, task VARCHAR NOT NULL, seed INTEGER NOT NULL,
            trial INTEGER NOT NULL, config JSON, cost DOUBLE, budget DOUBLE, wall_time DOUBLE,
            PRIMARY KEY (study, optimizer, task, seed, trial))""",
        # One row per (model, task): the primary metric of the finished run that covers the most
        # items (a full run beats any --limit run).
        """CREATE VIEW leaderboard AS
            SELECT m.name AS model, t.name AS task, s.metric, s.value, s.stderr, s.n,
                   t.higher_is_better, r.run_id, r.item_limit
            FROM scores s JOIN runs r USING (run_id) JOIN models m USING (model_id)
            JOIN tasks t USING (task_id)
            WHERE r.status = 'done' AND s.metric = t.primary_metric
            QUALIFY row_number() OVER (PARTITION BY m.name, t.name
                                       ORDER BY r.item_limit IS NULL DESC, s.n DESC, r.finished_at DESC) = 1""",
    ],
    [
        # lm-eval task groups: `member` (a leaf task or another group) belongs to `group_name`, which aggregates
        # its members by `rule` (lm-eval's aggregate_metric_list: metric, aggregation, weight_by_size, filters).
        """CREATE TABLE task_groups (
            group_name VARCHAR NOT NULL, member VARCHAR NOT NULL, rule JSON,
            PRIMARY KEY (group_name, member))""",
    ],
]

_LOCK_PID = re.compile(r"\(PID (\d+)\)")


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


@dataclass(frozen=True)
class ModelRecord:
    model_id: str
    name: str
    kind: str
    source: str
    fingerprint: str
    n_params: int | None
    parents: tuple[str, ...] = ()
    recipe: dict | None = None


@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    name: str
    version: str
    source: str
    config_hash: str
    primary_metric: str
    higher_is_better: bool
    n_items: int
    config: dict


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Store:
    """A connection to one DuckDB file; use as a context manager so the lock is always released."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, read_only: bool):
        self.con = con
        self.path = path
        self.read_only = read_only

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path, read_only: bool = False, busy_timeout: float | None = None,
             allow_foreign_sql: bool = False) -> "Store":
        """Open (creating, or migrating with a backup first); a file another process holds is waited for
        up to `busy_timeout` seconds (default $HARNESS_BUSY_TIMEOUT, else 0), then refused in one line.

        A store file is untrusted input (stores are shared): DuckDB reaches nothing but this database, whatever
        SQL runs (see _SANDBOX), and a store holding views or macros other than the schema's is refused in one
        line, as harness SQL would run them. allow_foreign_sql=True is for `harness query`, where people look
        inside a store and repair it; foreign_sql() says what is there."""
        path = Path(path)
        if read_only and not path.exists():
            raise HarnessError(f"--db {path}: no such database (run `harness eval` first)")
        if path.exists() and path.is_dir():
            raise HarnessError(f"--db {path}: is a folder, not a DuckDB file")
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                cls._create(path)
        con = cls._connect(path, read_only, _busy_timeout(busy_timeout))
        store = cls(con, path, read_only)
        try:
            if not allow_foreign_sql:  # macros first: one can stand in for a function that the migrations call
                store._refuse_foreign_sql("macro")
            store._check_schema()
            if not allow_foreign_sql:  # views once migrated: an older schema's views may differ from today's
                store._refuse_foreign_sql("view")
        except BaseException:
            con.close()
            raise
        return store

    # No file but the database itself (no read_text, read_csv, glob, COPY TO, ATTACH, INSTALL), and no extension
    # loaded or fetched because a query names one of its functions. External access cannot be switched back on
    # while the database is open, so no SQL in the store or typed by a user can undo this.
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
    def _connect(path: Path, read_only: bool, busy_timeout: float = 0.0) -> duckdb.DuckDBPyConnection:
        """DuckDB allows one writing process per file and takes an OS lock; a held lock is retried with
        backoff until `busy_timeout` runs out, then refused in one line naming the holder."""
        deadline, delay = time.monotonic() + busy_timeout, 0.05
        while True:
            try:
                return duckdb.connect(str(path), read_only=read_only, config=dict(Store._SANDBOX))
            except duckdb.Error as exc:
                message = str(exc)
                if "lock" not in message.lower():
                    raise _open_error(path, message) from None
                left = deadline - time.monotonic()
                if left <= 0:
                    waited = f"waited {busy_timeout:g} s; " if busy_timeout > 0 else ""
                    raise HarnessError(
                        f"database is busy: {path} is in use by {_lock_holder(message)}; {waited}let it finish, or "
                        "wait for it with --busy-timeout SECONDS (or HARNESS_BUSY_TIMEOUT)") from None
                time.sleep(min(delay, left))
                delay = min(delay * 2, 1.0)

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
            for schema, name, definition in con.execute(queries[kind]).fetchall():
                found.setdefault((kind, schema, name), []).append(definition or "")
        return {key: "\n".join(sorted(parts)) for key, parts in found.items()}

    @staticmethod
    def _schema_sql() -> dict[tuple[str, str, str], str]:
        """The views and macros the migrations create, as this DuckDB writes them: built once per schema in a
        scratch in-memory database, so a store's objects are compared like with like."""
        key = repr(MIGRATIONS)
        if key not in Store._schema_objects:
            with duckdb.connect(":memory:", config=dict(Store._SANDBOX)) as con:
                try:
                    for statement in (statement for step in MIGRATIONS for statement in step):
                        con.execute(statement)
                except duckdb.Error:
                    pass  # it fails on the store too, where _check_schema reports it in one line
                Store._schema_objects[key] = Store._sql_objects(con)
        return Store._schema_objects[key]

    def foreign_sql(self, *kinds: str) -> list[str]:
        """The views and macros (or only `kinds` of them) in this store that the schema does not create, or
        defines otherwise: a shared store could use them to run its own SQL inside any verb (a macro can even
        replace a built-in function)."""
        expected = self._schema_sql()
        problems = []
        for (kind, schema, name), definition in sorted(self._sql_objects(self.con, kinds or ("view", "macro")).items()):
            label = f"{kind} '{name if schema == 'main' else f'{schema}.{name}'}'"
            if (kind, schema, name) not in expected:
                problems.append(label)
            elif definition != expected[(kind, schema, name)]:
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
        if version > SCHEMA_VERSION:
            raise HarnessError(
                f"--db {self.path}: schema version {version} is newer than this harness supports "
                f"({SCHEMA_VERSION}); upgrade the harness (the file was not changed)"
            )
        if version == SCHEMA_VERSION:
            return
        if self.read_only:
            raise HarnessError(f"--db {self.path}: schema version {version} needs migrating; open it once for writing")
        backup = None
        if version > 0:
            self.con.execute("CHECKPOINT")  # everything on disk, so the copy is the whole database
            backup = _backup_copy(self.path, version)
        self.con.execute("BEGIN TRANSACTION")
        try:
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    self.con.execute(statement)
            self.con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
            )
            self.con.execute("COMMIT")
        except duckdb.Error as exc:
            self.con.execute("ROLLBACK")
            kept = f"; a copy is at {backup}" if backup else ""
            raise HarnessError(f"--db {self.path}: migrating schema version {version} to {SCHEMA_VERSION} failed "
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
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ registry
    def register_model(self, record: ModelRecord) -> None:
        """Insert a model; the same name with other weights is refused rather than silently replaced."""
        row = self.con.execute(
            "SELECT fingerprint FROM models WHERE name = ?", [record.name]
        ).fetchone()
        if row is not None:
            if row[0] != record.fingerprint:
                raise HarnessError(
                    f"model '{record.name}' is already in the store with other weights "
                    f"(fingerprint {row[0][:12]} vs {record.fingerprint[:12]}); give it another name"
                )
            return
        self.con.execute(
            "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [record.model_id, record.name, record.kind, record.source, record.fingerprint, record.n_params,
             list(record.parents), json.dumps(record.recipe) if record.recipe else None, _now()],
        )

    def register_task(self, record: TaskRecord) -> None:
        self.con.execute(
            "INSERT OR IGNORE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [record.task_id, record.name, record.version, record.source, record.config_hash,
             record.primary_metric, record.higher_is_better, record.n_items, json.dumps(record.config)],
        )

    def set_task_items(self, task_id: str, n_items: int) -> None:
        """An lm-eval task's size, known once its data was loaded."""
        self.con.execute("UPDATE tasks SET n_items = ? WHERE task_id = ?", [n_items, task_id])

    def register_group_members(self, members) -> None:
        """Group edges as lm-eval defines them now (a group's members and rule replace what was stored)."""
        for group in dict.fromkeys(m.group for m in members):
            rows = [m for m in members if m.group == group]
            self.con.execute("BEGIN TRANSACTION")
            try:
                self.con.execute("DELETE FROM task_groups WHERE group_name = ?", [group])
                self.con.executemany("INSERT INTO task_groups VALUES (?, ?, ?)",
                                     [[m.group, m.member, json.dumps(list(m.rule))] for m in rows])
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise

    def group_members(self) -> pd.DataFrame:
        return self.con.execute("SELECT group_name, member, rule FROM task_groups ORDER BY ALL").df()

    # ------------------------------------------------------------------ runs
    def run_status(self, run_id: str) -> str | None:
        row = self.con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchone()
        return row[0] if row else None

    def start_run(self, run_id: str, model_id: str, task_id: str, backend: str, backend_args: dict,
                  item_limit: int | None, environment: dict) -> None:
        self.con.execute(
            """INSERT INTO runs (run_id, model_id, task_id, backend, backend_args, item_limit, status,
                                 started_at, environment)
               VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)
               ON CONFLICT (run_id) DO UPDATE SET status = 'running', error = NULL,
                   started_at = excluded.started_at, environment = excluded.environment""",
            [run_id, model_id, task_id, backend, json.dumps(backend_args), item_limit, _now(),
             json.dumps(environment)],
        )

    def score(self, run_id: str, metric: str) -> float | None:
        row = self.con.execute("SELECT value FROM scores WHERE run_id = ? AND metric = ?", [run_id, metric]).fetchone()
        return row[0] if row else None

    def fail_run(self, run_id: str, error: str) -> None:
        self.con.execute(
            "UPDATE runs SET status = 'failed', error = ?, finished_at = ? WHERE run_id = ?",
            [error, _now(), run_id],
        )

    def finish_run(self, run_id: str, samples: pa.Table, scores: pa.Table, counts: dict[str, int]) -> None:
        """Write a run's samples and scores and mark it done, all in one transaction."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute("DELETE FROM samples WHERE run_id = ?", [run_id])
            self.con.execute("DELETE FROM scores WHERE run_id = ?", [run_id])
            self._insert("samples", samples)
            self._insert("scores", scores)
            self.con.execute(
                """UPDATE runs SET status = 'done', finished_at = ?, n_requests = ?, n_cached = ?,
                   n_computed = ? WHERE run_id = ?""",
                [_now(), counts["requests"], counts["cached"], counts["computed"], run_id],
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ requests (the cache)
    def cached_requests(self, run_id: str, request_type: str) -> pd.DataFrame:
        return self.con.execute(
            """SELECT req_hash, doc_id, idx, logprob, is_greedy, generation FROM requests
               WHERE run_id = ? AND request_type = ?""", [run_id, request_type]
        ).df()

    def add_requests(self, rows: pa.Table) -> None:
        """Append one chunk of request results; a chunk is committed whole or not at all."""
        self._insert("requests", rows, ignore_duplicates=True)

    def requests_for_run(self, run_id: str) -> pd.DataFrame:
        return self.con.execute(
            "SELECT * FROM requests WHERE run_id = ? ORDER BY doc_id, idx", [run_id]
        ).df()

    # ------------------------------------------------------------------ bulk ingest
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

    # ------------------------------------------------------------------ imported results
    def replace_external(self, source: str, rows: pa.Table) -> int:
        """Store an imported leaderboard under `source`, replacing any earlier import of it, atomically.

        Columns: competitor, benchmark, value, and optionally snapshot, replicate (a checkpoint step,
        seed or item), higher_is_better, is_aggregate (the leaderboard's own published aggregate).
        """
        if rows.num_rows == 0:
            raise HarnessError(f"import '{source}': nothing to store")
        rows = rows.append_column("source", pa.array([source] * rows.num_rows, pa.string()))
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute("DELETE FROM external_scores WHERE source = ?", [source])
            self._insert("external_scores", rows)
            self.con.execute("COMMIT")
        except duckdb.ConstraintException as exc:
            self.con.execute("ROLLBACK")
            raise HarnessError(f"import '{source}': duplicate row ({str(exc).splitlines()[0]})") from None
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return rows.num_rows

    def external_sources(self) -> pd.DataFrame:
        return self.con.execute(
            """SELECT source, any_value(snapshot) AS snapshot, count(DISTINCT competitor) AS competitors,
                      count(DISTINCT benchmark) FILTER (WHERE NOT is_aggregate) AS benchmarks,
                      count(DISTINCT replicate) AS replicates, count(*) AS rows
               FROM external_scores GROUP BY source ORDER BY source"""
        ).df()

    def external_rows(self, source: str) -> pd.DataFrame:
        """All rows of one import, in their stored order (competitor, benchmark, replicate)."""
        frame = self.con.execute(
            """SELECT competitor, benchmark, replicate, value, higher_is_better, is_aggregate
               FROM external_scores WHERE source = ?
               ORDER BY competitor, benchmark, try_cast(replicate AS BIGINT) NULLS LAST, replicate""", [source]
        ).df()
        if frame.empty:
            known = ", ".join(self.external_sources()["source"]) or "none"
            raise HarnessError(f"--source '{source}': no such import (imported: {known})")
        return frame

    # ------------------------------------------------------------------ reading
    def leaderboard_rows(self, models: Iterable[str] | None = None) -> pd.DataFrame:
        """Primary-metric score per (model, task), as the `leaderboard` view chooses it."""
        frame = self.con.execute(
            "SELECT model, task, value, stderr, n, higher_is_better FROM leaderboard ORDER BY model, task"
        ).df()
        if models is not None:
            frame = frame[frame["model"].isin(list(models))]
        return frame

    def item_rows(self, models: Iterable[str] | None = None) -> pd.DataFrame:
        """Per-item primary-metric values of the same runs `leaderboard_rows` picks (for item bootstrap
        and paired tests); for perplexity tasks each item is one document's bits per byte."""
        frame = self.con.execute(
            """SELECT l.model, l.task, s.doc_id, s.value, l.higher_is_better
               FROM leaderboard l JOIN samples s ON s.run_id = l.run_id AND s.metric = l.metric
               ORDER BY l.model, l.task, s.doc_id"""
        ).df()
        if models is not None:
            frame = frame[frame["model"].isin(list(models))]
        return frame

    def variant_rows(self) -> pd.DataFrame:
        """Each variant with its first parent, method and achieved sparsity (from its manifest)."""
        return self.con.execute(
            """SELECT v.name AS variant, p.name AS parent, v.recipe->>'method' AS method,
                      TRY_CAST(v.recipe->>'achieved_sparsity' AS DOUBLE) AS sparsity, v.n_params
               FROM models v JOIN models p ON p.model_id = v.parents[1]
               WHERE v.kind = 'variant' ORDER BY p.name, method, sparsity, v.name"""
        ).df()

    def provenance(self) -> dict:
        """What produced the stored numbers: the commands and git commits of the runs, and hashes of every
        model and task."""
        commands = self.con.execute(
            """SELECT DISTINCT environment->>'command' FROM runs
               WHERE environment->>'command' IS NOT NULL ORDER BY 1"""
        ).fetchall()
        commits = self.con.execute(
            """SELECT DISTINCT environment->>'git_commit' FROM runs
               WHERE environment->>'git_commit' IS NOT NULL ORDER BY 1""").fetchall()
        models = self.con.execute("SELECT name, fingerprint FROM models ORDER BY name").fetchall()
        tasks = self.con.execute("SELECT name, config_hash FROM tasks ORDER BY name, config_hash").fetchall()
        return {"commands": [c for (c,) in commands], "commits": [c for (c,) in commits], "models": models,
                "tasks": tasks}

    def models(self) -> pd.DataFrame:
        return self.con.execute(
            """SELECT m.name, m.kind, m.source, left(m.fingerprint, 12) AS fingerprint, m.n_params,
                      count(r.run_id) FILTER (WHERE r.status = 'done') AS runs_done,
                      count(r.run_id) FILTER (WHERE r.status = 'failed') AS runs_failed
               FROM models m LEFT JOIN runs r USING (model_id)
               GROUP BY ALL ORDER BY m.name"""
        ).df()

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

    # ------------------------------------------------------------------ runs evaluated elsewhere
    def import_runs(self, models: list[ModelRecord], tasks: list[TaskRecord], runs: pa.Table, samples: pa.Table,
                    scores: pa.Table) -> None:
        """Store finished runs produced elsewhere, all or nothing; importing the same runs again replaces them."""
        run_ids = runs.column("run_id").to_pylist()
        self.con.execute("BEGIN TRANSACTION")
        try:
            for model in models:
                self.register_model(model)
            for task in tasks:
                self.register_task(task)
            for table in ("samples", "scores", "runs"):
                self.con.execute(f"DELETE FROM {table} WHERE list_contains(?, run_id)", [run_ids])
            for table, rows in (("runs", runs), ("samples", samples), ("scores", scores)):
                self._insert(table, rows)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ variants (harness/variants/build.py)
    def model_clash(self, model_id: str, name: str, fingerprint: str) -> str | None:
        """Another stored model this one would collide with (same weights under another name, or the same
        name with other weights), checked before a variant folder is made final."""
        row = self.con.execute(
            """SELECT name FROM models WHERE (model_id = ? AND name <> ?) OR (name = ? AND fingerprint <> ?)
               LIMIT 1""", [model_id, name, name, fingerprint]).fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ hpo trials (hpo/runner.py, hpo/analysis.py)
    def hpo_runs(self, study: str) -> pd.DataFrame:
        """Trials stored per (optimizer, task, seed) of one study, so a rerun can skip finished runs."""
        return self.con.execute(
            """SELECT optimizer, task, seed, count(*) AS n_trials FROM hpo_trials WHERE study = ?
               GROUP BY ALL ORDER BY ALL""", [study]).df()

    def hpo_studies(self) -> list[str]:
        """Names of the studies with stored trials, for the report's optimizer comparison."""
        return [r[0] for r in self.con.execute("SELECT DISTINCT study FROM hpo_trials ORDER BY 1").fetchall()]

    def hpo_trials(self, study: str) -> pd.DataFrame:
        """Every trial of one study in run order; an unknown study raises naming the stored ones."""
        frame = self.con.execute(
            """SELECT optimizer, task, seed, trial, config, cost, budget, wall_time FROM hpo_trials
               WHERE study = ? ORDER BY optimizer, task, seed, trial""", [study]).df()
        if frame.empty:
            known = ", ".join(self.hpo_studies()) or "none"
            raise HarnessError(f"HPO study '{study}': no trials stored (stored: {known})")
        return frame
