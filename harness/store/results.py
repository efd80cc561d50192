"""Scores and per-item values as the `leaderboard` view picks them, and variants beside their parents."""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from harness.store.connection import Connection


class Results(Connection):
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
