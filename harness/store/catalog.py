"""Models, tasks and task groups: what was evaluated, and the provenance of every stored number."""

from __future__ import annotations

import json

import pandas as pd

from harness.common.errors import HarnessError
from harness.store.connection import Connection, _now
from harness.store.records import ModelRecord, TaskRecord


class Catalog(Connection):
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

    def models(self) -> pd.DataFrame:
        return self.con.execute(
            """SELECT m.name, m.kind, m.source, left(m.fingerprint, 12) AS fingerprint, m.n_params,
                      count(r.run_id) FILTER (WHERE r.status = 'done') AS runs_done,
                      count(r.run_id) FILTER (WHERE r.status = 'failed') AS runs_failed
               FROM models m LEFT JOIN runs r USING (model_id)
               GROUP BY ALL ORDER BY m.name"""
        ).df()

    def model_clash(self, model_id: str, name: str, fingerprint: str) -> str | None:
        """Another stored model this one would collide with (same weights under another name, or the same
        name with other weights), checked before a variant folder is made final."""
        row = self.con.execute(
            """SELECT name FROM models WHERE (model_id = ? AND name <> ?) OR (name = ? AND fingerprint <> ?)
               LIMIT 1""", [model_id, name, name, fingerprint]).fetchone()
        return row[0] if row else None

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
