"""The optimizers page: `harness hpo report`'s comparison of the stored HPO studies (carps normalisation)."""

from __future__ import annotations

from harness.view.html import cell, form, notes, num, page, select, table
from harness.view.model import unknown

N_BOOT = 1_000
"""Bootstrap resamples for the normalised-cost intervals here (`harness hpo report` defaults to 2,000)."""


def optimizers_page(store, snap, q: dict) -> str:
    from hpo.analysis import from_trials
    from hpo.report import compare, notes as comparison_notes, optimizer_table

    studies = store.hpo_studies()
    if not studies:
        return page("Optimizers", "<p>no HPO trials in this store (run `harness hpo run STUDY.toml`)</p>")
    study = q.get("study") or studies[0]
    if study not in studies:
        raise unknown("HPO study", study, studies)
    comparison = snap._memo(("hpo", study), lambda: compare(from_trials(store.hpo_trials(study)), "carps",
                                                            n_boot=N_BOOT, seed=0))
    frame = optimizer_table(comparison)
    rows = [[num(v, 4) if isinstance(v, float) else cell(v) for v in rec] for rec in frame.itertuples(index=False)]
    controls = form("/optimizers", select("study", [(s, s) for s in studies], study, "study"), "Show")
    lines = [*comparison_notes(comparison), f"normalised as carps does; {N_BOOT:,} bootstrap resamples "
             "(`harness hpo report` defaults to 2,000)"]
    return page(f"Optimizers: study {study}", controls + notes(lines)
                + table(list(frame.columns), rows, cls="optimizers", ids={"id": "optimizers"}))
