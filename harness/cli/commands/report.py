"""`harness report`: the store as one self-contained HTML page (and optionally Markdown)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.common.atomic import write_text
from harness.cli.commands._common import err
from harness.common.errors import HarnessError
from harness.common.outputs import check_output, same_file
from harness.cli.options import (
    AllowMixedOption, BusyTimeoutOption, DbOption, NBootOption, SeedOption, SnrFilterOption, SourceOption,
)
from harness.common.paths import default_db, results_dir


def report(
    db: DbOption = default_db(),
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = results_dir() / "report.html",
    md: Annotated[bool, typer.Option("--md", help="Also write a Markdown version beside it.")] = False,
    source: SourceOption = None,
    snr_filter: SnrFilterOption = None,
    n_boot: NBootOption = 200,
    seed: SeedOption = 0,
    allow_mixed: AllowMixedOption = False,
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Write the leaderboard report: rankings, CSD sensitivity, CD diagram, heatmap, SNR, variants, optimizers."""
    from harness.report import sections as build
    from harness.report.html import render_html, render_markdown
    from harness.tables.scores import imported_table, stored_scores, stored_table
    from harness.store import Store

    targets = _targets(db, out, md)  # before any work: a refusal costs nothing and writes nothing
    compared: tuple[str, ...] = ()
    with Store.open(db, read_only=True, busy_timeout=busy_timeout) as store:
        if source:
            parts = _model_sections(imported_table(store, source)[0], None, seed, n_boot)
        else:
            if store.leaderboard_rows().empty:  # no finished runs: the store may still hold optimizer comparisons
                parts = []
            else:  # models that cannot be compared are refused here, not left out of the page
                table, compared = stored_scores(store, allow_mixed=allow_mixed)
                parts = _model_sections(table, stored_table(store, items=True, allow_mixed=allow_mixed), seed, n_boot)
                parts += [build.snr(store, snr_filter, allow_mixed), build.variants(store, table)]
            parts += build.optimizer_comparison(store, seed, n_boot)
        footer = build.footer(store, db)
    if not any(parts):
        raise HarnessError(f"--db {db}: nothing to report (no finished runs and no HPO trials); "
                           "run `harness eval` or `harness hpo run` first")
    sections = [part for part in parts if part is not None]
    title = f"Leaderboard report: {source or 'evaluated models'}"
    for (flag, path), render in zip(targets, (render_html, render_markdown)):
        _write(flag, path, render(title, sections, footer))
    for note in compared:
        err.print(f"note: {note}", highlight=False, soft_wrap=True)
    err.print(f"report written to {out} ({len(sections)} sections: {', '.join(s.key for s in sections)})")


def _model_sections(table, items, seed: int, n_boot: int) -> list:
    """The sections every model (or imported competitor) table gets; None where one does not apply."""
    from harness.report import sections as build

    return [build.leaderboard(table, seed, items, n_boot), build.csd_sensitivity(table, seed),
            build.critical_difference(table), build.heatmap(table)]


def _targets(db: Path, out: Path, md: bool) -> list[tuple[str, Path]]:
    """(flag, path) of each file the report writes: the HTML, then with --md the Markdown, each checked by
    check_output, and never one over the other."""
    targets = [("--out", out)] + ([("--md", out.with_suffix(".md"))] if md else [])
    if md and same_file(out, out.with_suffix(".md")):
        raise HarnessError(f"--out {out} with --md: the Markdown would be written over the HTML; give --out a "
                           f"name ending in .html")
    for flag, path in targets:
        check_output(f"--out {out}" if flag == "--out" else f"--md ({path})", path, db)
    return targets


def _write(flag: str, path: Path, text: str) -> None:
    """Atomic: a reader never sees half a report, and a failure is one line that leaves nothing behind."""
    try:
        write_text(path, text)
    except OSError as exc:
        raise HarnessError(f"{flag} {path}: could not write the report ({exc.strerror or exc})") from None
