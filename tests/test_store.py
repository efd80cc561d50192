"""The store on a real DuckDB file: schema versions, bad files, locks, idempotent ingest."""

from __future__ import annotations

import subprocess
import sys
import time

import duckdb
import pyarrow as pa
import pytest

from harness.common.errors import HarnessError
from harness.store import SCHEMA_VERSION, Store


def test_new_store_has_schema_and_version(tmp_path):
    with Store.open(tmp_path / "h.duckdb") as store:
        assert store.schema_version() == SCHEMA_VERSION
        tables = set(store.query("SELECT table_name FROM information_schema.tables")["table_name"])
    assert {"models", "tasks", "runs", "requests", "samples", "scores", "external_scores", "rankings",
            "ranking_rows", "hpo_trials", "leaderboard"} <= tables


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "h.duckdb"
    Store.open(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    with pytest.raises(HarnessError, match="newer than this harness"):
        Store.open(path)


def test_not_a_duckdb_file(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(HarnessError, match="not a DuckDB database"):
        Store.open(path)
    assert path.read_text().startswith("these are my notes")


def test_foreign_duckdb_file_is_not_taken_over(tmp_path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE precious AS SELECT 42 AS answer")
    con.close()
    with pytest.raises(HarnessError, match="not a harness store"):
        Store.open(path)
    assert duckdb.connect(str(path), read_only=True).execute("SELECT answer FROM precious").fetchone() == (42,)


def test_locked_database_says_busy(tmp_path):
    path = tmp_path / "h.duckdb"
    Store.open(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('ok', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(HarnessError, match="database is busy"):
            Store.open(path)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    Store.open(path).close()  # usable again once the other process is gone


def test_request_ingest_is_idempotent(tmp_path):
    rows = pa.table({"run_id": ["r"] * 3, "req_hash": ["a", "b", "c"], "request_type": ["loglikelihood"] * 3,
                     "doc_id": [0, 0, 1], "idx": [0, 1, 0], "logprob": [-1.0, -2.0, -3.0]})
    with Store.open(tmp_path / "h.duckdb") as store:
        store.add_requests(rows)
        store.add_requests(rows)
        assert store.count("requests") == 3
        assert store.cached_requests("r", "loglikelihood")["logprob"].sum() == -6.0


def test_read_only_open_of_missing_db_creates_nothing(tmp_path):
    path = tmp_path / "missing.duckdb"
    with pytest.raises(HarnessError, match="no such database"):
        Store.open(path, read_only=True)
    assert not path.exists()


def test_a_store_interrupted_while_being_created_leaves_nothing_under_its_name(tmp_path, monkeypatch):
    """The store is built under a hidden name and linked into place only when complete (a kill -9 mid-creation
    once left a file DuckDB called 'not a valid DuckDB database')."""
    db = tmp_path / "h.duckdb"

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "_check_schema", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Store.open(db)
    assert not db.exists()
    monkeypatch.undo()
    with Store.open(db) as store:  # the next open creates it, and leaves no staging file behind
        assert store.schema_version() == SCHEMA_VERSION
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.duckdb"]


def test_one_task_version_keeps_one_meaning(tmp_path):
    """Registering a stored task version again is a no-op; with another direction or primary metric (an import
    that says otherwise) it is refused in one line, and the stored record is untouched."""
    from harness.common.errors import HarnessError
    from harness.store import TaskRecord

    record = TaskRecord("tid", "t", "1", "lm-eval", "h", "acc", True, 10, {})
    with Store.open(tmp_path / "h.duckdb") as store:
        store.register_task(record)
        store.register_task(record)
        for other in (record.__class__(**{**record.__dict__, "higher_is_better": False}),
                      record.__class__(**{**record.__dict__, "primary_metric": "acc_norm"})):
            with pytest.raises(HarnessError, match="task 't' .*stored as acc, higher is better"):
                store.register_task(other)
        assert store.query("SELECT primary_metric, higher_is_better FROM tasks").values.tolist() == [["acc", True]]
