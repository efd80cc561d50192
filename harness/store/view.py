"""What `harness view` reads beside the ranking seam: models as the leaderboard names them, a model's family and
runs, a task's stored versions. Each query is keyed (one model, one task, a page of rows), never the whole store."""

from __future__ import annotations

import pandas as pd

from harness.store.connection import Connection
from harness.store.schema import MODEL_LABEL, RUN_SETTINGS

_LABELLED = f"(SELECT *, {MODEL_LABEL} AS label FROM models)"


class ViewQueries(Connection):
    def model_kinds(self) -> pd.DataFrame:
        """One row per model, named as rankings name it (label): kind, namespace, parameter count, parent count."""
        return self.con.execute(
            f"""SELECT label, kind, namespace, n_params, len(coalesce(parents, [])) AS n_parents
                FROM {_LABELLED} ORDER BY label""").df()

    def model_record(self, label: str) -> dict | None:
        """The model called `label` (its name, or `name [namespace]`), with its recipe's method and sparsity."""
        frame = self.con.execute(
            f"""SELECT model_id, label, name, namespace, kind, origin, fingerprint, n_params, created_at,
                       recipe->>'method' AS method, TRY_CAST(recipe->>'achieved_sparsity' AS DOUBLE) AS sparsity,
                       CAST(recipe AS VARCHAR) AS recipe
                FROM {_LABELLED} WHERE label = ? LIMIT 1""", [label]).df()
        return None if frame.empty else frame.iloc[0].to_dict()

    def model_family(self, model_id: str, depth: int = 6, limit: int = 500) -> pd.DataFrame:
        """The model's ancestors (negative depth) and descendants (positive), each with the parent it hangs from,
        its recipe's method and sparsity: the variant tree around one model, `depth` generations each way."""
        return self.con.execute(
            f"""WITH RECURSIVE
                m AS (SELECT model_id, label, kind, parents, n_params, recipe->>'method' AS method,
                             TRY_CAST(recipe->>'achieved_sparsity' AS DOUBLE) AS sparsity FROM {_LABELLED}),
                up(model_id, via, depth) AS (
                    SELECT unnest(parents), $id, -1 FROM m WHERE model_id = $id
                    UNION SELECT unnest(m.parents), m.model_id, up.depth - 1 FROM up JOIN m USING (model_id)
                    WHERE up.depth > -$depth),
                down(model_id, via, depth) AS (
                    SELECT model_id, $id, 1 FROM m WHERE list_contains(parents, $id)
                    UNION SELECT m.model_id, down.model_id, down.depth + 1 FROM down
                    JOIN m ON list_contains(m.parents, down.model_id) WHERE down.depth < $depth)
                SELECT f.depth, m.label, m.kind, m.method, m.sparsity, m.n_params, v.label AS via
                FROM (SELECT * FROM up UNION ALL SELECT * FROM down) f JOIN m USING (model_id)
                LEFT JOIN m v ON v.model_id = f.via
                ORDER BY f.depth, v.label, m.label LIMIT $limit""",
            {"id": model_id, "depth": depth, "limit": limit}).df()

    def model_runs(self, model_id: str, limit: int = 50, offset: int = 0) -> tuple[pd.DataFrame, int]:
        """(a page of the model's runs, newest first, with their task, settings, backend, device and timings; the
        number of runs)."""
        total = self.con.execute("SELECT count(*) FROM runs WHERE model_id = ?", [model_id]).fetchone()[0]
        frame = self.con.execute(
            f"""SELECT r.run_id, t.name AS task, t.version AS task_version, r.status, r.backend,
                       r.backend_args->>'device' AS device, r.backend_args->>'dtype' AS dtype,
                       r.item_limit, left({RUN_SETTINGS}, 8) AS settings, r.started_at, r.finished_at,
                       date_diff('millisecond', r.started_at, r.finished_at) / 1000.0 AS seconds,
                       r.n_requests, r.n_cached, r.n_computed, r.error
                FROM runs r JOIN tasks t USING (task_id) WHERE r.model_id = ?
                ORDER BY r.finished_at DESC NULLS FIRST, r.run_id LIMIT ? OFFSET ?""",
            [model_id, limit, offset]).df()
        return frame, int(total)

    def task_versions(self, name: str) -> pd.DataFrame:
        """The stored versions of one task name: origin, config hash, primary metric, direction, items, runs."""
        return self.con.execute(
            """SELECT t.task_id, t.version, t.origin, left(t.config_hash, 12) AS config, t.primary_metric,
                      t.higher_is_better, t.n_items, count(r.run_id) FILTER (WHERE r.status = 'done') AS runs_done
               FROM tasks t LEFT JOIN runs r USING (task_id) WHERE t.name = ?
               GROUP BY ALL ORDER BY t.version, t.task_id""", [name]).df()

    def task_names(self, limit: int = 1000, offset: int = 0) -> pd.DataFrame:
        """A page of task names, each with its number of stored versions, origin and primary metric."""
        return self.con.execute(
            """SELECT name, count(*) AS versions, any_value(origin) AS origin, any_value(primary_metric) AS metric
               FROM tasks GROUP BY name ORDER BY name LIMIT ? OFFSET ?""", [limit, offset]).df()

    def imported_sources(self) -> list[str]:
        """Names of the imported leaderboards (external_scores sources)."""
        return [r[0] for r in self.con.execute("SELECT DISTINCT source FROM external_scores ORDER BY 1").fetchall()]
