"""Scores and per-item values of the runs the `leaderboard` view offers, and variants beside their parents."""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from harness.store.connection import Connection


class Results(Connection):
    def leaderboard_rows(self, models: Iterable[str] | None = None, limit: int | None = None) -> pd.DataFrame:
        """Every candidate row of the `leaderboard` view (one per model, task version, settings and item limit), with
        its task record (task_id, origin, config) and when its run finished: harness.tables chooses among them.
        `limit` keeps the runs made with --limit `limit` only."""
        return self.con.execute(
            """SELECT l.model, l.task, l.task_version, l.config_hash, l.settings, l.metric, l.value, l.stderr, l.n,
                      t.higher_is_better, t.task_id, t.origin AS task_origin, t.config AS task_config,
                      l.run_id, l.item_limit, r.finished_at
               FROM leaderboard l JOIN runs r USING (run_id) JOIN tasks t ON t.task_id = r.task_id
               WHERE (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], l.model))
                 AND (?::INTEGER IS NULL OR l.item_limit = ?::INTEGER)
               ORDER BY l.model, l.task, l.run_id""",
            [None if models is None else list(models)] * 2 + [limit] * 2,
        ).df()

    def item_rows(self, run_ids: Iterable[str]) -> pd.DataFrame:
        """Per-item primary-metric values (run_id, doc_id, value) of the given runs, for scores on shared items,
        item bootstrap and paired tests; for perplexity tasks each item is one document's bits per byte."""
        return self.con.execute(
            """SELECT s.run_id, s.doc_id, s.value
               FROM (SELECT DISTINCT unnest(?::VARCHAR[]) AS run_id) w JOIN samples s USING (run_id)
               JOIN runs r USING (run_id) JOIN tasks t USING (task_id)
               WHERE s.metric = t.primary_metric
               ORDER BY s.run_id, s.doc_id""",
            [list(run_ids)],
        ).df()

    def variant_rows(self) -> pd.DataFrame:
        """Each variant with its first parent, method and achieved sparsity (from its manifest)."""
        return self.con.execute(
            """SELECT v.name AS variant, p.name AS parent, v.recipe->>'method' AS method,
                      TRY_CAST(v.recipe->>'achieved_sparsity' AS DOUBLE) AS sparsity, v.n_params
               FROM models v JOIN models p ON p.model_id = v.parents[1]
               WHERE v.kind = 'variant' ORDER BY p.name, method, sparsity, v.name"""
        ).df()
