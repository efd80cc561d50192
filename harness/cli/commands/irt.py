"""`harness irt fit`: an item response model per task, fitted on the stored per-item results and stored with them."""

from __future__ import annotations

import typer

from harness.cli.commands._common import friendly, out
from harness.cli.options import (
    BusyTimeoutOption, DbOption, FormatOption, IrtModelOption, RankLimitOption, ReplayTasksOption, SeedOption,
    SourceOption, split_list,
)
from harness.common.errors import HarnessError
from harness.common.paths import default_db

irt_app = typer.Typer(no_args_is_help=True, help="Item response models of the stored per-item results.")
IRT_MODELS = ("2pl", "1pl")


def fit(
    source: SourceOption = None,
    tasks: ReplayTasksOption = None,
    model: IrtModelOption = "2pl",
    seed: SeedOption = 0,
    limit: RankLimitOption = None,
    fmt: FormatOption = "table",
    db: DbOption = default_db(),
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Fit a 2PL (or 1PL) item response model per task by MAP (tournaments/irt.py; deterministic given the seed) and
    store the items' parameters, the competitors' abilities and the fit's provenance (irt_fits, irt_items,
    irt_abilities). Fitting the same data, model and seed again replaces the fit."""
    import pandas as pd

    from harness.report.formats import check_format, render
    from harness.store import Store
    from harness.tables.items import item_matrices

    check_format(fmt)
    if model not in IRT_MODELS:
        raise HarnessError(f"--model '{model}': choose one of {', '.join(IRT_MODELS)}")
    with Store.open(db, busy_timeout=busy_timeout) as store:
        matrices, notes, runs = item_matrices(store, source, split_list(tasks), limit)
        rows = [_fit_task(store, task, matrix, model, source, seed, runs.get(task), notes)
                for task, matrix in matrices.items()]
    rows = [row for row in rows if row is not None]
    if not rows:
        raise HarnessError("nothing to fit: " + "; ".join(notes))
    render(pd.DataFrame(rows), fmt, out, title=f"item response models ({source or 'evaluated runs'}, {model})",
           notes=tuple(notes))


def _fit_task(store, task: str, matrix, model: str, source: str | None, seed: int, run_ids: list[str] | None,
              notes: list[str]) -> dict | None:
    """Fit and store one task's model; its summary row (None, with a note, when it cannot be fitted)."""
    import hashlib
    import json

    import numpy as np
    import pandas as pd

    from tournaments.irt import fit_irt

    if matrix.shape[0] < 2:
        notes.append(f"{task}: {matrix.shape[0]} competitor(s); an item response model needs at least 2")
        return None
    values = matrix.to_numpy(dtype=float)
    result = fit_irt(values, model=model, seed=seed)
    identity = [task, model, source, seed, list(matrix.index), list(matrix.columns),
                hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()]
    fit_id = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    store.save_irt_fit({"fit_id": fit_id, "task": task, "model": model, "source": source, "run_ids": run_ids,
                        "seed": seed, "n_competitors": matrix.shape[0], "n_items": matrix.shape[1],
                        "converged": result.converged, "n_iter": result.n_iter, "objective": result.objective},
                       pd.DataFrame({"item": list(matrix.columns), "difficulty": result.difficulty,
                                     "discrimination": result.discrimination}),
                       pd.DataFrame({"competitor": list(matrix.index), "ability": result.ability}))
    return {"task": task, "model": model, "competitors": matrix.shape[0], "items": matrix.shape[1],
            "converged": result.converged, "iterations": result.n_iter, "objective": result.objective,
            "fit_id": fit_id}


irt_app.command("fit")(friendly(fit))
