"""Estimated task scores from chosen items (`harness eval --adaptive`), each with its standard error, its items,
its method and the item response fit it used."""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from harness.store.connection import Connection
from harness.store.schema import RUN_SETTINGS


class Estimates(Connection):
    def estimate_rows(self) -> pd.DataFrame:
        """The latest estimate of each (model, task), with its task version and run settings: what `harness rank
        --estimates` ranks."""
        return self.con.execute(
            f"""SELECT m.name AS model, t.name AS task, t.higher_is_better, e.metric, e.estimate, e.stderr, e.method,
                      e.n_items, t.n_items AS n_total, t.config_hash, r.settings
               FROM estimates e JOIN models m USING (model_id) JOIN tasks t USING (task_id)
               JOIN (SELECT run_id, {RUN_SETTINGS} AS settings FROM runs) r USING (run_id)
               QUALIFY row_number() OVER (PARTITION BY m.name, t.name ORDER BY e.created_at DESC, e.estimate_id) = 1
               ORDER BY m.name, t.name""").df()

    def save_estimate(self, estimate: dict) -> str:
        """Store one estimate (an `estimates` row as a dict, without its id; its model and task are its run's),
        replacing the same estimate made before; returns its id."""
        key = {k: estimate[k] for k in ("run_id", "method", "fit_id", "budget", "target_se", "seed")}
        estimate_id = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        columns = ("run_id", "metric", "method", "fit_id", "estimate", "stderr", "n_items", "items", "budget",
                   "target_se", "seed")
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute("DELETE FROM estimates WHERE estimate_id = ?", [estimate_id])
            self.con.execute(f"INSERT INTO estimates (estimate_id, model_id, task_id, {', '.join(columns)}, "
                             f"created_at) SELECT ?, r.model_id, r.task_id, {', '.join('?' * len(columns))}, now() "
                             "FROM runs r WHERE r.run_id = ?",
                             [estimate_id, *(estimate[c] for c in columns), estimate["run_id"]])
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.release()
        return estimate_id
