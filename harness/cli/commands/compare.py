"""`harness compare A B`: is the gap between two models real? Paired tests on the items they share."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.cli.commands._common import out
from harness.common.errors import HarnessError
from harness.cli.options import AllowMixedOption, BusyTimeoutOption, DbOption, FormatOption, NBootOption, SeedOption
from harness.common.paths import default_db


def compare(
    model_a: Annotated[str, typer.Argument(help="First model (as stored).")],
    model_b: Annotated[str, typer.Argument(help="Second model (as stored).")],
    db: DbOption = default_db(),
    n_boot: NBootOption = 10_000,
    seed: SeedOption = 0,
    allow_mixed: AllowMixedOption = False,
    fmt: FormatOption = "table",
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Per-task difference (A - B) with a 95% CI and a p-value, Holm-corrected across tasks.

    Binary metrics use McNemar's exact test with the exact conditional (Clopper-Pearson) interval,
    which excludes 0 exactly when p < 0.05; continuous ones a paired bootstrap with its percentile
    interval. Both use the items both models answered, so the test sees the pairing that unpaired
    z-tests throw away; a task the two ran in another version or with other settings is refused
    (--allow-mixed pairs their own runs anyway).
    """
    from harness.report.formats import check_format, render
    from harness.store import Store
    from harness.tables.scores import comparable
    from tournaments.stats import bootstrap_floor_note, compare_on_tasks

    check_format(fmt)
    with Store.open(db, read_only=True, busy_timeout=busy_timeout) as store:
        chosen = comparable(store, [model_a, model_b], allow_mixed=allow_mixed)
    items = chosen.items
    for name in (model_a, model_b):
        if name not in set(items["model"]):
            raise HarnessError(f"model '{name}': no per-item results in {db} (see `harness models list`)")
    wide = items.pivot_table(index=["task", "doc_id"], columns="model", values="value").reset_index()
    shared = wide.dropna(subset=[model_a, model_b])
    if shared.empty:
        raise HarnessError(f"models '{model_a}' and '{model_b}' share no evaluated items")
    pairs = {task: (group[model_a].to_numpy(), group[model_b].to_numpy()) for task, group in shared.groupby("task")}
    frame = compare_on_tasks(pairs, n_boot=n_boot, seed=seed)
    lower = set(items.loc[~items["higher_is_better"].astype(bool), "task"])
    frame["better"] = [_better(row, model_a, model_b, row.task in lower) for row in frame.itertuples()]
    notes = [*chosen.note_lines(), "p_holm: Holm-corrected across tasks; significant at 0.05",
             "ci: 95%; mcnemar rows: exact conditional Clopper-Pearson interval on the discordant items, "
             "consistent with the exact p; paired_bootstrap rows: percentile bootstrap interval"]
    floor = bootstrap_floor_note(frame, n_boot)
    if floor:
        notes.append(floor)
    render(frame, fmt, out, title=f"{model_a} vs {model_b} (diff = A - B)", notes=tuple(notes))


def _better(row, model_a: str, model_b: str, lower_is_better: bool) -> str:
    if not row.significant:
        return "–"
    a_ahead = (row.diff < 0) if lower_is_better else (row.diff > 0)
    return model_a if a_ahead else model_b
