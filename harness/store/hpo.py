"""Hyperparameter-optimizer trials, one row per (study, optimizer, task, seed, trial)."""

from __future__ import annotations

import pandas as pd

from harness.common.errors import HarnessError
from harness.store.connection import Connection


class HpoTrials(Connection):
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
