"""The `harness` command: one Typer app; each verb lives in harness/cli/commands/."""

from __future__ import annotations

import typer

from harness.cli.commands import (
    adaptive, catalog, compare, evaluate, import_, query, race, rank, report, samples, snr, variants, view,
)
from harness.cli.commands._common import friendly
from harness.cli.commands.hpo import hpo_app
from harness.cli.commands.irt import irt_app
from harness.cli.options import VerboseOption

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Evaluate language models into DuckDB and rank them.")
tasks_app = typer.Typer(no_args_is_help=True, help="Built-in tasks and suites, and lm-eval's tasks and their data.")
models_app = typer.Typer(no_args_is_help=True, help="Embedded and stored models.")


@app.callback()
def _options(verbose: VerboseOption = False) -> None:
    """Evaluate language models into DuckDB and rank them."""
    from harness.common.quiet import configure

    configure(verbose)


app.add_typer(tasks_app, name="tasks")
app.add_typer(models_app, name="models")

app.command("eval", rich_help_panel="Evaluate")(friendly(evaluate.eval_))
app.command("rank", rich_help_panel="Rank")(friendly(rank.rank))
app.command("compare", rich_help_panel="Rank")(friendly(compare.compare))
app.command("race", rich_help_panel="Rank")(friendly(race.race))
app.command("report", rich_help_panel="Rank")(friendly(report.report))
app.command("query", rich_help_panel="Store")(friendly(query.query))
app.command("samples", rich_help_panel="Store")(friendly(samples.samples))
app.command("view", rich_help_panel="Store")(friendly(view.view))
app.add_typer(import_.import_app, name="import", rich_help_panel="Store")
app.command("snr", rich_help_panel="Rank")(friendly(snr.snr))
app.add_typer(variants.variants_app, name="variants", rich_help_panel="Evaluate")
app.add_typer(hpo_app, name="hpo", rich_help_panel="Optimizers")
app.add_typer(adaptive.adaptive_app, name="adaptive", rich_help_panel="Rank")
app.add_typer(irt_app, name="irt", rich_help_panel="Rank")
tasks_app.command("list")(friendly(catalog.tasks_list))
tasks_app.command("download")(friendly(catalog.tasks_download))
models_app.command("list")(friendly(catalog.models_list))


def main() -> None:
    app()

