"""Models, tasks and task groups: what was evaluated, and the provenance of every stored number."""

from __future__ import annotations

import json

import pandas as pd

from harness.common.errors import HarnessError
from harness.store.connection import Connection, _now
from harness.store.records import ModelRecord, TaskRecord


class Catalog(Connection):
    def register_model(self, record: ModelRecord) -> None:
        """Insert a model. The same name with other files, or the same files under a second name, is refused in one
        line (clash_error); a row from before v3, whose fingerprint covered the weights only, is adopted by a model
        with those weights (its old runs stay, under their old run ids)."""
        row = self.con.execute("SELECT model_id, fingerprint, weights_sha256 FROM models WHERE namespace = ? AND name = ?",
                               [record.namespace, record.name]).fetchone()
        if row is not None and row[1] == record.fingerprint:
            return
        if row is not None and row[2] is None and row[1] == record.weights_sha256:
            self._adopt(row[0], record)
            return
        clash = self.model_clash(record.model_id, record.name, record.fingerprint, record.weights_sha256,
                                 record.namespace)
        if clash is not None:
            raise clash_error(record.name, clash)
        self.con.execute(
            """INSERT INTO models (model_id, name, namespace, kind, origin, fingerprint, weights_sha256, n_params,
                                   parents, recipe, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [record.model_id, record.name, record.namespace, record.kind, record.origin, record.fingerprint,
             record.weights_sha256, record.n_params, list(record.parents),
             json.dumps(record.recipe) if record.recipe else None, _now()],
        )

    def _adopt(self, old_id: str, record: ModelRecord) -> None:
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute("""UPDATE models SET model_id = ?, fingerprint = ?, weights_sha256 = ?, origin = ?
                                WHERE model_id = ?""",
                             [record.model_id, record.fingerprint, record.weights_sha256, record.origin, old_id])
            self.con.execute("UPDATE runs SET model_id = ? WHERE model_id = ?", [record.model_id, old_id])
            self.con.execute("UPDATE models SET parents = list_transform(parents, lambda p: CASE WHEN p = ? THEN ? ELSE p END)"
                             " WHERE list_contains(parents, ?)", [old_id, record.model_id, old_id])
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def register_task(self, record: TaskRecord) -> None:
        """Insert a task version once; the same version stored with another primary metric or direction (an
        import that says otherwise) is refused in one line rather than silently kept as first stored."""
        row = self.con.execute("SELECT primary_metric, higher_is_better, origin FROM tasks WHERE task_id = ?",
                               [record.task_id]).fetchone()
        if row is not None and (row[0], row[1]) != (record.primary_metric, record.higher_is_better):
            raise HarnessError(f"task '{record.name}' ({record.origin}): this version is stored as "
                               f"{_meaning(row[0], row[1])} (from {row[2]}), not "
                               f"{_meaning(record.primary_metric, record.higher_is_better)}; import it under another "
                               "task version or fix the file")
        self.con.execute(
            "INSERT OR IGNORE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [record.task_id, record.name, record.version, record.origin, record.config_hash,
             record.primary_metric, record.higher_is_better, record.n_items, json.dumps(record.config)],
        )

    def set_task_items(self, task_id: str, n_items: int) -> None:
        """An lm-eval task's size, known once its data was loaded."""
        self.con.execute("UPDATE tasks SET n_items = ? WHERE task_id = ?", [n_items, task_id])

    def task_items(self, task_ids: list[str]) -> dict[str, int | None]:
        """Each task's number of items (None while an lm-eval task's data was never loaded)."""
        rows = self.con.execute("SELECT task_id, n_items FROM tasks WHERE list_contains(?, task_id)", [task_ids])
        return dict(rows.fetchall())

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
            """SELECT m.name, m.kind, m.origin, left(m.fingerprint, 12) AS fingerprint, m.n_params,
                      count(r.run_id) FILTER (WHERE r.status = 'done') AS runs_done,
                      count(r.run_id) FILTER (WHERE r.status = 'failed') AS runs_failed
               FROM models m LEFT JOIN runs r USING (model_id)
               GROUP BY ALL ORDER BY m.name"""
        ).df()

    def model_clash(self, model_id: str, name: str, fingerprint: str, weights_sha256: str | None,
                    namespace: str = "") -> str | None:
        """The stored model this one would collide with: the same files under another name (in any namespace), or
        the same name in its namespace with other files (a pre-v3 row with these weights is adopted instead). Asked
        by register_model, and before anything is written (a variant folder made final, an eval's first row)."""
        row = self.con.execute(
            """SELECT name FROM models WHERE (model_id = $id AND NOT (namespace = $ns AND name = $name))
               OR (namespace = $ns AND name = $name AND fingerprint <> $fp
                   AND NOT (weights_sha256 IS NULL AND fingerprint = $weights)) LIMIT 1""",
            {"id": model_id, "ns": namespace, "name": name, "fp": fingerprint, "weights": weights_sha256}).fetchone()
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


def _meaning(metric: str, higher_is_better: bool) -> str:
    return f"{metric}, {'higher' if higher_is_better else 'lower'} is better"


def clash_error(name: str, clash: str) -> HarnessError:
    """The one line for a model_clash: `clash` is this name (other files) or the name its files are stored under."""
    if clash == name:
        return HarnessError(f"model '{name}' is already in the store with other files; give it another name "
                            "(--models PATH=NAME, or name= in a suite file)")
    return HarnessError(f"model '{name}': the same files are already in the store as '{clash}'; evaluate it under "
                        f"that name (--models PATH={clash})")
