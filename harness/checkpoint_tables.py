"""From a per-checkpoint import in the store to ScoreTables: each run's final scores, and its curves.

`harness import checkpoints` stores one replicate per training step. Ranking such an import should
see each run where it ended (not its average over training), and the noise estimate needs the
whole curve in step order; both views are built here.
"""

from __future__ import annotations

import pandas as pd

from harness.checkpoint_import import CHECKPOINTS
from harness.errors import HarnessError
from harness.store import Store
from tournaments import ScoreTable


def is_checkpoint_source(store: Store, source: str) -> bool:
    """True when `source` was stored by `harness import checkpoints` (its replicates are steps)."""
    sources = store.external_sources()
    return bool((sources.loc[sources["source"] == source, "snapshot"] == CHECKPOINTS).any())


def _curve_rows(store: Store, source: str) -> tuple[pd.DataFrame, dict[str, bool]]:
    """The import's rows in (run, benchmark, step) order, and each benchmark's direction."""
    if not is_checkpoint_source(store, source):
        known = store.external_sources()["source"].tolist()
        what = "a leaderboard import, not a per-checkpoint one" if source in known else "no such import"
        raise HarnessError(f"--source '{source}': {what} (imported: {', '.join(known) or 'none'})")
    rows = store.external_rows(source)
    return rows, dict(zip(rows["benchmark"], rows["higher_is_better"].astype(bool)))


def final_checkpoints(store: Store, source: str) -> ScoreTable:
    """Runs x benchmarks at each run's last stored checkpoint: the population for signal and ranking."""
    rows, directions = _curve_rows(store, source)
    last = rows.groupby(["competitor", "benchmark"], sort=False).tail(1)
    return ScoreTable.from_long(last, higher_is_better=directions)


def checkpoint_curves(store: Store, source: str) -> ScoreTable:
    """Runs x benchmarks x checkpoints, each curve in step order (for checkpoint noise).

    The replicate axis is the checkpoint's position within its own run, so runs logged on different
    step grids do not pad each other with NaN.
    """
    rows, directions = _curve_rows(store, source)
    position = rows.groupby(["competitor", "benchmark"], sort=False).cumcount()
    return ScoreTable.from_long(rows.assign(position=position), replicate="position", higher_is_better=directions)
