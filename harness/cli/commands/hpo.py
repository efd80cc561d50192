"""`harness hpo run | report | subset`: compare hyperparameter optimizers carps-style, ranked like models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.cli.commands._common import friendly, out
from harness.common.errors import HarnessError
from harness.cli.options import BusyTimeoutOption, DbOption, FormatOption, NBootOption, SeedOption, split_list
from harness.common.paths import child, default_db, plain_name, results_dir

hpo_app = typer.Typer(no_args_is_help=True, help="Compare hyperparameter optimizers on HPO tasks (carps-style).")

StudyOption = Annotated[str, typer.Option("--study", help="Study name, as in the study file.")]
ModeOption = Annotated[str, typer.Option(
    "--mode", help="carps: per-task min-max over all trials (carps-equivalent); stable: fixed per-task "
    "anchors, so scores do not move when optimizers are added.")]


def run(
    config: Annotated[Path, typer.Argument(help="Study TOML: study, optimizers, tasks, seeds, n_trials.")],
    db: DbOption = default_db(),
    quiet: Annotated[bool, typer.Option("--quiet", help="No line per run.")] = False,
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Run every (optimizer, task, seed) of the study; runs already stored in full are skipped."""
    from harness.store import Store
    from hpo.config import load_study
    from hpo.runner import run_study

    spec = load_study(config)
    plain_name(spec.study, f"{config}: study")  # it names the report folder <results>/hpo/<study>

    def say(optimizer: str, task: str, seed: int, status: str, seconds: float) -> None:
        if not quiet:
            out.print(f"{status:>7}  {optimizer} on {task}, seed {seed}" + (f" ({seconds:.1f}s)" if seconds else ""),
                      highlight=False)

    with Store.open(db, busy_timeout=busy_timeout) as store:
        result = run_study(store, spec, on_run=say)
    out.print(f"study '{spec.study}': {len(result.ran)} run(s) done, {len(result.skipped)} already stored; "
              f"next: harness hpo report --study {spec.study}", highlight=False)


def report(
    study: StudyOption,
    db: DbOption = default_db(),
    mode: ModeOption = "carps",
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out", help="Folder for CSV tables and PNG figures (default: <results>/hpo/<study>).")] = None,
    publish: Annotated[bool, typer.Option(
        "--publish", help="Also store the optimizer x task x seed scores as source hpo:<study>, so "
        "`harness rank --source hpo:<study>` ranks optimizers with any method.")] = False,
    n_boot: NBootOption = 2000,
    seed: SeedOption = 0,
    fmt: FormatOption = "table",
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Leaderboard (mean rank, normalised final cost with CI), rank tests, and the figures on disk."""
    from harness.report.formats import check_format, render
    from harness.store import Store
    from harness.report.optimizer_files import write
    from hpo.report import compare, notes, optimizer_table, publish_rows

    check_format(fmt)
    if mode not in ("carps", "stable"):
        raise HarnessError(f"--mode '{mode}': choose carps or stable")
    folder = out_dir or child(results_dir() / "hpo", study, "--study")
    with Store.open(db, read_only=not publish, busy_timeout=busy_timeout) as store:
        rows = _rows(store, study)
        comparison = compare(rows, mode, _anchors(rows) if mode == "stable" else None, n_boot=n_boot, seed=seed)
        if publish:
            store.replace_external(f"hpo:{study}", publish_rows(comparison))
    written = write(comparison, folder, f"{study} ({mode})")
    render(optimizer_table(comparison), fmt, out, title=f"HPO study {study}: optimizers by mean rank ({mode})",
           notes=notes(comparison) + (f"tables and figures: {folder} ({len(written)} files)",))


def subset(
    study: StudyOption,
    reference: Annotated[Optional[list[str]], typer.Option(
        "--reference", help="Reference optimizers (three, as carps; repeat or comma-separate).")] = None,
    k: Annotated[Optional[list[str]], typer.Option("--k", help="Subset sizes to try (repeat or comma-separate).")]
    = None,
    db: DbOption = default_db(),
    restarts: Annotated[int, typer.Option("--restarts", min=1, help="Local-search restarts per subset.")] = 8,
    seed: SeedOption = 0,
    fmt: FormatOption = "table",
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Dev and test task subsets with low star discrepancy, chosen by carps' rule over sizes and scalings."""
    from harness.report.formats import check_format, render
    from harness.store import Store
    from hpo import analysis
    from hpo.subset import choose_subsets

    check_format(fmt)
    with Store.open(db, read_only=True, busy_timeout=busy_timeout) as store:
        rows = _rows(store, study)
    final = analysis.final_performance(analysis.normalise(rows, "carps"))
    means = final.groupby(["task", "optimizer"])["cost_inc_norm"].mean().unstack("optimizer")
    names = split_list(reference) or sorted(means.columns)
    unknown = [n for n in names if n not in means.columns]
    if unknown:
        raise HarnessError(f"--reference: {', '.join(unknown)} not in study '{study}' "
                           f"(has {', '.join(sorted(means.columns))})")
    if len(names) < 2:
        raise HarnessError("--reference: name at least two optimizers (carps uses three)")
    scores = means[names].dropna()
    try:
        sizes = [int(x) for x in split_list(k)] or [max(2, len(scores) // 3)]
    except ValueError:
        raise HarnessError(f"--k {k}: sizes must be whole numbers") from None
    if all(2 * size > len(scores) for size in sizes):
        raise HarnessError(f"--k: with {len(scores)} complete tasks, dev and test need k <= {len(scores) // 2}")
    choice = choose_subsets(scores, sizes, seed=seed, restarts=restarts)
    shown = choice.candidates.drop(columns=["dev", "test"])
    verdict = (f"dev: {', '.join(choice.dev)}; test: {', '.join(choice.test)}" if choice.dev
               else "no candidate has the same significant order on dev and test; try other sizes or more tasks")
    render(shown, fmt, out, title=f"Subset candidates for study {study} (reference: {', '.join(names)})",
           notes=(verdict,))


def _rows(store, study: str):
    from hpo.analysis import from_trials

    return from_trials(store.hpo_trials(study))


def _anchors(rows) -> dict[str, tuple[float, float]]:
    from hpo.tasks import make_task

    anchors = {}
    for name in sorted(set(rows["task"])):
        try:
            anchors[name] = make_task(name).anchors()
        except ValueError as exc:
            raise HarnessError(f"--mode stable: {exc}") from None
    return anchors


hpo_app.command("run")(friendly(run))
hpo_app.command("report")(friendly(report))
hpo_app.command("subset")(friendly(subset))
