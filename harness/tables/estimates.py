"""The store's adaptive estimates as a ScoreTable, with a standard error per cell: what `harness rank --estimates`
ranks (every cell an estimate from chosen items, so every interval comes from those errors)."""

from __future__ import annotations

import numpy as np

from harness.common.errors import HarnessError
from harness.store import Store
from tournaments import ScoreTable


def estimated_table(store: Store, models: list[str] | None = None,
                    tasks: list[str] | None = None) -> tuple[ScoreTable, np.ndarray, list[str]]:
    """(table of estimates, their standard errors shaped like it, notes); missing cells are NaN."""
    rows = store.estimate_rows()
    if rows.empty:
        raise HarnessError(f"--estimates: no adaptive estimates in --db {store.path} (harness eval --adaptive)")
    for flag, wanted, column in (("--models", models, "model"), ("--tasks", tasks, "task")):
        unknown = sorted(set(wanted or ()) - set(rows[column]))
        if unknown:
            raise HarnessError(f"--estimates {flag} {unknown[0]!r}: no estimate of it (have: "
                               f"{', '.join(sorted(set(rows[column])))})")
        if wanted:
            rows = rows[rows[column].isin(wanted)]
    values = rows.pivot(index="model", columns="task", values="estimate")
    errors = rows.pivot(index="model", columns="task", values="stderr").reindex_like(values)
    higher = rows.drop_duplicates("task").set_index("task")["higher_is_better"].reindex(values.columns)
    table = ScoreTable(tuple(values.index), tuple(values.columns), values.to_numpy(float), higher.to_numpy(bool))
    methods = rows["method"].value_counts()
    notes = [f"every score is an estimate from chosen items (harness eval --adaptive): "
             f"{', '.join(f'{m} ({n} cells)' for m, n in methods.items())}; "
             f"{int(rows['n_items'].sum())} of {int(rows['n_total'].sum())} items answered"]
    return table, errors.to_numpy(float), notes
