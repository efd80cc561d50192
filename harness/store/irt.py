"""Fitted item response models (`harness irt fit`): a fit's provenance, its items' parameters, its abilities."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from harness.store.connection import Connection


class IrtFits(Connection):
    def save_irt_fit(self, fit: dict, items: pd.DataFrame, abilities: pd.DataFrame) -> None:
        """Store one fit (an `irt_fits` row as a dict), replacing an earlier fit with the same id, all or nothing."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            for table in ("irt_items", "irt_abilities", "irt_fits"):
                self.con.execute(f"DELETE FROM {table} WHERE fit_id = ?", [fit["fit_id"]])
            self.con.execute(
                "INSERT INTO irt_fits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
                [fit[k] for k in ("fit_id", "task", "model", "source", "run_ids", "seed", "n_competitors", "n_items",
                                  "converged", "n_iter", "objective")])
            self._insert("irt_items", pa.Table.from_pandas(items.assign(fit_id=fit["fit_id"])[
                ["fit_id", "item", "difficulty", "discrimination"]], preserve_index=False))
            self._insert("irt_abilities", pa.Table.from_pandas(abilities.assign(fit_id=fit["fit_id"])[
                ["fit_id", "competitor", "ability"]], preserve_index=False))
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def latest_irt_fit(self, task: str) -> tuple[str, pd.DataFrame] | None:
        """The most recent fit of `task` (its fit_id and its items' parameters), or None: what an adaptive
        evaluation starts from."""
        row = self.con.execute("SELECT fit_id FROM irt_fits WHERE task = ? ORDER BY created_at DESC, fit_id LIMIT 1",
                               [task]).fetchone()
        return None if row is None else (row[0], self.irt_items(row[0]))

    def irt_items(self, fit_id: str) -> pd.DataFrame:
        return self.con.execute("SELECT item, difficulty, discrimination FROM irt_items WHERE fit_id = ? ORDER BY item",
                                [fit_id]).df()
