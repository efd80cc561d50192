"""`harness race`: the top K of many models for a fraction of a full evaluation (harness/evaluation/race.py)."""

from __future__ import annotations

from harness.cli.commands._common import err, out
from harness.cli.options import (
    BackendOption, BatchSizeOption, BudgetOption, ConfidenceOption, DbOption, DeviceOption, DisplayOption, DtypeOption,
    FormatOption, ModelsOption, SeedOption, StartOption, TasksOption, TopOption, split_list,
)
from harness.common.errors import HarnessError
from harness.common.paths import default_db


def race(
    models: ModelsOption = None,
    tasks: TasksOption = None,
    top: TopOption = 3,
    confidence: ConfidenceOption = 0.95,
    budget: BudgetOption = 1.0,
    start: StartOption = 8,
    seed: SeedOption = 0,
    db: DbOption = default_db(),
    batch_size: BatchSizeOption = 16,
    backend: BackendOption = "auto",
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "auto",
    display: DisplayOption = "rich",
    fmt: FormatOption = "table",
) -> None:
    """Evaluate only the models whose top-K place is still unsure, on growing item prefixes, until every model is
    surely in or out of the top K (or the budget is spent); prints the race's ranking and its cost."""
    import pandas as pd
    from pydantic import ValidationError

    from harness.common.display import Display
    from harness.evaluation.config import EvalSettings
    from harness.evaluation.race import race_models
    from harness.report.formats import check_format, render

    check_format(fmt)
    names = split_list(models)
    if len(names) < 2:
        raise HarnessError("--models: a race needs at least two models")
    try:
        settings = EvalSettings(batch_size=batch_size, backend=backend, device=device, dtype=dtype)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise HarnessError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None
    try:
        live = race_models(names, split_list(tasks) or ["core"], top, db, settings, confidence=confidence,
                           budget=budget, start=start, seed=seed, display=Display(display, err))
    except ValueError as exc:  # the race's own argument checks
        raise HarnessError(str(exc)) from None
    result = live.result
    table = pd.DataFrame({"competitor": live.models, "mwr": result.mwr, "p_top": result.p_top,
                          "items": result.items.sum(axis=1), "in_top": [m in result.top for m in range(len(names))]})
    table = table.sort_values("mwr", ascending=False, kind="stable")
    notes = (f"cost: {live.cost:.1%} of a full evaluation ({int(result.items.sum())} of "
             f"{len(names) * sum(live.sizes)} model-items over {len(live.tasks)} tasks) in {result.rounds} rounds; "
             f"{live.computed} requests computed, the rest read from the store",
             f"{'every model settled' if result.settled else 'some models never settled'} at {confidence:g}")
    render(table, fmt, out, title=f"race for the top {top}", notes=notes)
