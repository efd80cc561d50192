"""From a per-checkpoint import in the store to ScoreTables: each run's final scores, and its curves.

`harness import checkpoints` stores one replicate per training step. Ranking such an import should
see each run where it ended (not its average over training), and the noise estimate needs the
whole curve in step order; both views are built here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.ingest.checkpoint_curves import CHECKPOINTS
from harness.common.errors import HarnessError
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


def checkpoint_tables(store: Store, source: str) -> tuple[ScoreTable, ScoreTable]:
    """(final, curves) of a per-checkpoint import.

    curves: runs x benchmarks x checkpoints, each curve in step order; the replicate axis is the
    checkpoint's position within its own run, so runs logged on different step grids do not pad
    each other with NaN. final: runs x benchmarks at each run's last stored checkpoint, the
    population for signal and for ranking (a run is judged where it ended, not by its average).
    Built by factorising the rows, which stays fast for the whole OLMo ladder (~400k scores).
    """
    rows, directions = _curve_rows(store, source)
    run, runs = pd.factorize(rows["competitor"])
    bench, benchmarks = pd.factorize(rows["benchmark"])
    cell = run * len(benchmarks) + bench
    position = pd.Series(cell).groupby(cell).cumcount().to_numpy()
    values = np.full((len(runs), len(benchmarks), position.max() + 1), np.nan)
    values[run, bench, position] = rows["value"].to_numpy(dtype=float)
    count = np.sum(~np.isnan(values), axis=2)
    last = np.take_along_axis(values, np.maximum(count - 1, 0)[:, :, None], axis=2)[:, :, 0]
    hib = [directions[b] for b in benchmarks]
    curves = ScoreTable(tuple(runs), tuple(benchmarks), values, hib)
    return ScoreTable(tuple(runs), tuple(benchmarks), np.where(count > 0, last, np.nan), hib), curves


def final_checkpoints(store: Store, source: str) -> ScoreTable:
    """Runs x benchmarks at each run's last stored checkpoint (what a ranking of the import should see)."""
    return checkpoint_tables(store, source)[0]
