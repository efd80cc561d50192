"""Saved rankings (`harness rank --save NAME`): what was ranked, by which method and settings, and the result."""

from __future__ import annotations

import hashlib
import json
import uuid

import numpy as np
import pyarrow as pa

from harness.store.connection import Connection, _now

_ROWS = pa.schema([("ranking_id", pa.string()), ("competitor", pa.string()), ("score", pa.float64()),
                   ("rank", pa.int32()), ("ci_low", pa.float64()), ("ci_high", pa.float64())])


def table_hash(table) -> str:
    """sha256 of a ScoreTable's competitors, benchmarks, directions and values, so a saved ranking says exactly what
    it ranked: the same hash is the same input."""
    digest = hashlib.sha256(json.dumps([list(table.competitors), list(table.benchmarks),
                                        [bool(h) for h in table.higher_is_better], list(table.values.shape)]).encode())
    digest.update(np.ascontiguousarray(table.values, dtype="<f8").tobytes())
    return digest.hexdigest()


def _floats(values, n: int) -> list[float | None]:
    if values is None:
        return [None] * n
    return [None if np.isnan(v) else float(v) for v in np.asarray(values, dtype=float)]


class SavedRankings(Connection):
    def save_ranking(self, name: str, ranking, params: dict, input_hash: str, command: str) -> str:
        """Store a tournaments Ranking under `name`, replacing one saved under that name, in one transaction."""
        ranking_id = uuid.uuid4().hex
        n = len(ranking.competitors)
        rows = pa.table({"ranking_id": [ranking_id] * n, "competitor": list(ranking.competitors),
                         "score": _floats(ranking.scores, n), "rank": [int(r) for r in ranking.ranks],
                         "ci_low": _floats(ranking.ci_low, n), "ci_high": _floats(ranking.ci_high, n)}, schema=_ROWS)
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute("DELETE FROM ranking_rows WHERE ranking_id IN (SELECT ranking_id FROM rankings "
                             "WHERE name = ?)", [name])
            self.con.execute("DELETE FROM rankings WHERE name = ?", [name])
            self.con.execute(
                """INSERT INTO rankings (ranking_id, method, params, input_hash, created_at, name, command)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                [ranking_id, ranking.method, json.dumps(params, default=str), input_hash, _now(), name, command])
            self._insert("ranking_rows", rows)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return ranking_id
