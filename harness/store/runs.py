"""Runs and the answers they computed (the cache a resumed run reads), and runs imported whole."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa

from harness.store.connection import Connection, _now
from harness.store.records import ModelRecord, TaskRecord


class Runs(Connection):
    def run_status(self, run_id: str) -> str | None:
        row = self.con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchone()
        return row[0] if row else None

    def start_run(self, run_id: str, model_id: str, task_id: str, backend: str, backend_args: dict,
                  item_limit: int | None, environment: dict, answer_scope: str | None = None) -> None:
        """Mark a run running; without an answer scope it shares answers with no other run."""
        self.con.execute(
            """INSERT INTO runs (run_id, model_id, task_id, backend, backend_args, item_limit, status,
                                 started_at, environment, answer_scope)
               VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)
               ON CONFLICT (run_id) DO UPDATE SET status = 'running', error = NULL,
                   started_at = excluded.started_at, environment = excluded.environment""",
            [run_id, model_id, task_id, backend, json.dumps(backend_args), item_limit, _now(),
             json.dumps(environment), answer_scope or run_id],
        )
        self.release()

    def score(self, run_id: str, metric: str) -> float | None:
        row = self.con.execute("SELECT value FROM scores WHERE run_id = ? AND metric = ?", [run_id, metric]).fetchone()
        return row[0] if row else None

    def fail_run(self, run_id: str, error: str) -> None:
        self.con.execute(
            "UPDATE runs SET status = 'failed', error = ?, finished_at = ? WHERE run_id = ?",
            [error, _now(), run_id],
        )
        self.release()

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
        self.release()

    def cached_requests(self, run_id: str, request_type: str) -> pd.DataFrame:
        """This run's answered requests, and the answers other runs of its answer scope hold (doc_id and idx -1:
        known answers without a row of this run yet)."""
        try:
            return self._cached_requests(run_id, request_type)
        finally:
            self.release()  # the model computes next: readers may come in meanwhile

    def _cached_requests(self, run_id: str, request_type: str) -> pd.DataFrame:
        return self.con.execute(
            """SELECT req_hash, doc_id, idx, logprob, is_greedy, generation FROM requests
               WHERE run_id = $run AND request_type = $type
               UNION ALL
               SELECT q.req_hash, -1, -1, any_value(q.logprob), any_value(q.is_greedy), any_value(q.generation)
               FROM requests q JOIN runs r USING (run_id)
               WHERE r.answer_scope = (SELECT answer_scope FROM runs WHERE run_id = $run) AND q.run_id <> $run
                     AND q.request_type = $type
                     AND q.req_hash NOT IN (SELECT req_hash FROM requests WHERE run_id = $run AND request_type = $type)
               GROUP BY q.req_hash""", {"run": run_id, "type": request_type}
        ).df()

    # Text columns a chunk may carry beside its request rows (StoreCachedLM's chunks and shard files do), each with
    # the requests column that holds its sha256.
    _TEXT_COLUMNS = {"context": "context_sha", "continuation": "continuation_sha"}

    def add_requests(self, rows: pa.Table) -> None:
        """Append one chunk of request results, and the texts it carries into `texts` (content-addressed, so a text
        already there is kept), in one transaction: a chunk is committed whole or not at all."""
        texts: dict[str, str] = {}
        for column, sha_column in self._TEXT_COLUMNS.items():
            if column in rows.column_names:
                pairs = zip(rows.column(sha_column).to_pylist(), rows.column(column).to_pylist())
                texts.update((sha, text) for sha, text in pairs if sha is not None and text is not None)
        requests = rows.drop_columns([c for c in self._TEXT_COLUMNS if c in rows.column_names])
        self.con.execute("BEGIN TRANSACTION")
        try:
            self._insert("texts", pa.table({"text_sha": list(texts), "text": list(texts.values())},
                                           schema=pa.schema([("text_sha", pa.string()), ("text", pa.string())])),
                         ignore_duplicates=True)
            self._insert("requests", requests, ignore_duplicates=True)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.release()  # between chunks the file is free for readers (a sharing writer only)

    def requests_for_run(self, run_id: str) -> pd.DataFrame:
        return self.con.execute(
            "SELECT * FROM requests WHERE run_id = ? ORDER BY doc_id, idx", [run_id]
        ).df()

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
