"""A leaderboard file as the store keeps it: external_scores rows, built straight from the parsed cells.

An import stores records; a ScoreTable is built from the stored rows only when something is ranked
(harness.tables.scores.imported_table), so no verb turns a table back into rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pyarrow as pa

SCHEMA = pa.schema([("competitor", pa.string()), ("benchmark", pa.string()), ("value", pa.float64()),
                    ("higher_is_better", pa.bool_()), ("is_aggregate", pa.bool_()), ("snapshot", pa.string())])


@dataclass(frozen=True)
class Leaderboard:
    """What `harness import csv` stores and reports.

    `competitors` and `benchmarks` are the names the file lists, in its order: one without any score
    stores no row yet still counts, so the report matches the file. `notes` says what the reader
    changed on the way in (percentages stored as fractions), for the import's report.
    """

    rows: pa.Table
    competitors: tuple[str, ...]
    benchmarks: tuple[str, ...]
    aggregate: str | None
    notes: tuple[str, ...] = ()


def leaderboard(path: Path, competitors: Sequence[str], directions: Mapping[str, bool],
                scores: Iterable[tuple[str, str, float]], aggregate: str | None,
                published: Iterable[tuple[str, float]], notes: Sequence[str] = ()) -> Leaderboard:
    """One row per scored cell (direction from `directions`) and per published aggregate value.

    A missing (NaN) cell stores no row, so a gap stays a gap rather than becoming a number.
    """
    rows = [(c, b, v, bool(directions[b]), False) for c, b, v in scores if not math.isnan(v)]
    rows += [(c, aggregate, v, True, True) for c, v in published if not math.isnan(v)]
    columns = [[r[k] for r in rows] for k in range(5)] + [[path.name] * len(rows)]
    return Leaderboard(pa.table(dict(zip(SCHEMA.names, columns)), schema=SCHEMA), tuple(competitors),
                       tuple(directions), aggregate, tuple(notes))
