"""`harness variants make|list|show`: pruned and merged variants, made from a TOML recipe."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from harness.cli.commands._common import err, friendly, out
from harness.common.errors import HarnessError
from harness.cli.options import (
    AllowOutsideLinksOption, AllowPickleOption, BusyTimeoutOption, DbOption, DisplayOption, TrustRemoteCodeOption,
)
from harness.common.paths import default_db

variants_app = typer.Typer(no_args_is_help=True, help="Pruned and merged variants of models.")


class _RichSteps:
    def __init__(self, progress: Progress, name: str):
        self._progress = progress
        self._bar = progress.add_task(escape(name), total=None)

    def start(self, total: int) -> None:
        self._progress.update(self._bar, total=total)

    def advance(self) -> None:
        self._progress.advance(self._bar)


class _PlainSteps:
    """A line at start and at every tenth of the work, for logs."""

    def __init__(self, name: str):
        self._name, self._done, self._total = name, 0, 0

    def start(self, total: int) -> None:
        self._total = total
        print(f"{self._name}: 0/{total} steps", file=sys.stderr, flush=True)

    def advance(self) -> None:
        self._done += 1
        if self._done == self._total or self._done % max(1, self._total // 10) == 0:
            print(f"{self._name}: {self._done}/{self._total} steps", file=sys.stderr, flush=True)


class _NoSteps:
    def start(self, total: int) -> None:
        pass

    def advance(self) -> None:
        pass


@contextmanager
def _steps_factory(display: str) -> Iterator:
    if display == "rich":
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                            TimeElapsedColumn(), console=err)
        with progress:
            yield lambda name: _RichSteps(progress, name)
    elif display == "plain":
        yield _PlainSteps
    else:
        yield lambda name: _NoSteps()


def make(
    recipe: Annotated[Path, typer.Argument(help="TOML file with one [[variant]] table per variant.")],
    db: DbOption = default_db(),
    display: DisplayOption = "rich",
    trust_remote_code: TrustRemoteCodeOption = False,
    allow_pickle: AllowPickleOption = False,
    allow_outside_links: AllowOutsideLinksOption = False,
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Make every variant of the recipe under results/variants/ and register it with its parents.

    Parents may be embedded models, local HF folders, made variants, or variants of the same recipe;
    merges run before prunes. A variant already made from the same recipe and parents is skipped.
    """
    from harness.common.display import DISPLAYS
    from harness.weights.trust import LoadPolicy
    from harness.variants.recipe import load_recipe

    if display not in DISPLAYS:
        raise HarnessError(f"--display '{display}': choose one of {', '.join(DISPLAYS)}")
    specs = load_recipe(recipe)
    from harness.variants.build import make as make_variants  # torch: only once the recipe is known good
    with _steps_factory(display) as steps_for:
        policy = LoadPolicy(trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                            allow_outside_links=allow_outside_links)
        outcomes = make_variants(specs, db, steps_for, policy=policy, busy_timeout=busy_timeout)
    table = Table(title="variants", header_style="bold")
    _columns(table, ("variant", "status", "method", "parents", "sparsity", "params", "seconds"))
    for outcome in outcomes:
        record = outcome.manifest
        table.add_row(Text(outcome.name), outcome.status, record["method"],
                      Text(", ".join(p["name"] for p in record["parents"])), _sparsity(record),
                      _millions(record["param_count"]), f"{record['wall_time_s']:.1f}")
    out.print(table)
    if outcomes:
        out.print(Text(f"folders under {outcomes[0].path.parent}"))
    for outcome in outcomes:
        for note in outcome.manifest["notes"]:
            err.print(Text(f"{outcome.name}: {note}", style="yellow"))


def list_() -> None:
    """List the made variants (from their manifests under results/variants/)."""
    from harness.variants.manifest import all_manifests
    from harness.weights.variant_folders import variants_dir

    records = all_manifests()
    if not records:
        out.print(f"no variants under {variants_dir()} (make some with `harness variants make recipe.toml`)")
        return
    table = Table(title=f"variants in {variants_dir()}", header_style="bold")
    _columns(table, ("variant", "method", "parents", "sparsity", "params", "sha256"))
    for record in records:
        table.add_row(Text(record["name"]), record["method"], Text(", ".join(p["name"] for p in record["parents"])),
                      _sparsity(record), _millions(record["param_count"]), record["output_sha256"][:8])
    out.print(table)


def show(name: Annotated[str, typer.Argument(help="Variant name.")]) -> None:
    """Print a variant's manifest: method, parameters, parents and hashes, calibration, versions."""
    from harness.variants import manifest
    from harness.variants.manifest import all_manifests
    from harness.weights.variant_folders import variant_folder

    folder = variant_folder(name)
    if folder is None:
        known = ", ".join(record["name"] for record in all_manifests()) or "none made yet"
        raise HarnessError(f"variant '{name}': not found (variants: {known})")
    out.print_json(json.dumps(manifest.read(folder)))


def _columns(table: Table, names: tuple[str, ...]) -> None:
    """Only the parents column folds in a narrow terminal; names, methods and numbers stay whole."""
    for name in names:
        table.add_column(name, no_wrap=name != "parents", overflow="fold")


def _millions(count: int) -> str:
    return f"{count / 1e6:.1f}M"


def _sparsity(record: dict) -> str:
    value = record.get("achieved_sparsity")
    return "–" if value is None else f"{value:.1%}"


variants_app.command("make")(friendly(make))
variants_app.command("list")(friendly(list_))
variants_app.command("show")(friendly(show))
