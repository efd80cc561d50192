"""Leaderboards and training curves imported as (competitor, benchmark, replicate, value) rows."""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa

from harness.common.errors import HarnessError
from harness.store.connection import Connection


class ExternalScores(Connection):
    def replace_external(self, source: str, rows: pa.Table) -> int:
        """Store an imported leaderboard under `source`, replacing any earlier import of it, atomically.

        Columns: competitor, benchmark, value, and optionally snapshot, replicate (a checkpoint step,
        seed or item), higher_is_better, is_aggregate (the leaderboard's own published aggregate).
        """
        if rows.num_rows == 0:
            raise HarnessError(f"import '{source}': nothing to store")
        rows = rows.append_column("source", pa.array([source] * rows.num_rows, pa.string()))
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute("DELETE FROM external_scores WHERE source = ?", [source])
            self._insert("external_scores", rows)
            self.con.execute("COMMIT")
        except duckdb.ConstraintException as exc:
            self.con.execute("ROLLBACK")
            raise HarnessError(f"import '{source}': duplicate row ({str(exc).splitlines()[0]})") from None
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return rows.num_rows

    def external_sources(self) -> pd.DataFrame:
        return self.con.execute(
            """SELECT source, any_value(snapshot) AS snapshot, count(DISTINCT competitor) AS competitors,
                      count(DISTINCT benchmark) FILTER (WHERE NOT is_aggregate) AS benchmarks,
                      count(DISTINCT replicate) AS replicates, count(*) AS rows
               FROM external_scores GROUP BY source ORDER BY source"""
        ).df()

    def external_rows(self, source: str) -> pd.DataFrame:
        """All rows of one import, in their stored order (competitor, benchmark, replicate)."""
        frame = self.con.execute(
            """SELECT competitor, benchmark, replicate, value, higher_is_better, is_aggregate
               FROM external_scores WHERE source = ?
               ORDER BY competitor, benchmark, try_cast(replicate AS BIGINT) NULLS LAST, replicate""", [source]
        ).df()
        if frame.empty:
            known = ", ".join(self.external_sources()["source"]) or "none"
            raise HarnessError(f"--source '{source}': no such import (imported: {known})")
        return frame
