"""`harness report`: the store as one self-contained HTML page (and optionally Markdown)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from harness.common.atomic import write_text
from harness.cli.commands._common import err
from harness.common.errors import HarnessError
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
    """(flag, path) of each file the report writes: the HTML, then with --md the Markdown. Refused in one line
    where writing would destroy data (the store, any DuckDB file, the report's other output) or cannot happen
    (a folder, a parent that is a file or read-only)."""
    targets = [("--out", out)] + ([("--md", out.with_suffix(".md"))] if md else [])
    if md and _same(out, out.with_suffix(".md")):
        raise HarnessError(f"--out {out} with --md: the Markdown would be written over the HTML; give --out a "
                           f"name ending in .html")
    for flag, path in targets:
        where = f"--out {out}" if flag == "--out" else f"--md ({path})"
        if path.is_dir():
            raise HarnessError(f"{where}: is a folder; give a file name such as {path / 'report.html'}")
        for store, what in ((db, "the store"), (Path(f"{db}.wal"), "the store's write-ahead log")):
            if _same(path, store):
                raise HarnessError(f"{where}: is {what} (--db {db}); refusing to write the report over it")
        if _is_duckdb(path):
            raise HarnessError(f"{where}: is a DuckDB database; refusing to write the report over it")
        folder = next(p for p in path.absolute().parents if p.exists())
        if not folder.is_dir():
            raise HarnessError(f"{where}: {folder} is a file, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise HarnessError(f"{where}: cannot write in {folder} (permission denied)")
    return targets


def _same(a: Path, b: Path) -> bool:
    """One file under two names: the same absolute path (existing or not), or the same file through a link."""
    if a.absolute() == b.absolute():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _is_duckdb(path: Path) -> bool:
    """A DuckDB database file, by its magic bytes ("DUCK" after the 8-byte checksum) rather than its name."""
    try:
        with path.open("rb") as handle:
            return handle.read(12)[8:12] == b"DUCK"
    except OSError:  # absent, or unreadable: not something this verb can tell is a store
        return False


def _write(flag: str, path: Path, text: str) -> None:
    """Atomic: a reader never sees half a report. A failure is one line and leaves no temporary file behind
    (write_text's hidden `.NAME-*` beside the target is removed)."""
    def temporaries() -> set[Path]:
        folder = path.parent
        return {p for p in folder.iterdir() if p.name.startswith(f".{path.name}-")} if folder.is_dir() else set()

    before = temporaries()
    try:
        write_text(path, text)
    except OSError as exc:
        for leftover in temporaries() - before:
            leftover.unlink(missing_ok=True)
        raise HarnessError(f"{flag} {path}: could not write the report ({exc.strerror or exc})") from None
