"""`harness rank`: leaderboards over evaluated runs, an imported leaderboard, or a CSV file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.cli.commands._common import err, out
from harness.cli.commands._csd import (
    CSDSettings, EliminateOption, ItemBootstrapOption, MissingOption, NSimsOption, PlotOption, RoundsOption,
    TiebreakOption,
)
from harness.common.errors import HarnessError
from harness.common.outputs import check_output
from harness.cli.options import (
    INPUT_PANEL, METHOD_PANEL, AllowMixedOption, BusyTimeoutOption, DbOption, FormatOption, ModelsOption,
    RankLimitOption, SaveOption, SeedOption, SnrFilterOption, SourceOption, TasksOption, split_list,
)
from harness.common.paths import default_db

FromOption = Annotated[Optional[Path], typer.Option(
    "--from", help="Rank a wide CSV directly (first column competitor, one column per benchmark).",
    rich_help_panel=INPUT_PANEL)]
MethodOption = Annotated[str, typer.Option(
    "--method", help="mean, mean_minmax, mean_z, mwr, borda, copeland, kemeny, bt, elo, openskill, csd, or all.",
    rich_help_panel=METHOD_PANEL)]
BootstrapOption = Annotated[int, typer.Option(
    "--bootstrap", min=0, help="Bootstrap resamples for CIs (over items when per-item results exist, "
    "else over benchmarks); 0 = off.", rich_help_panel=METHOD_PANEL)]
DuplicateOption = Annotated[str, typer.Option(
    "--on-duplicate", help="With --from: a competitor listed twice is an error, numbered (NAME#2) or "
    "first-only.", rich_help_panel=INPUT_PANEL)]
SnrMinOption = Annotated[Optional[float], typer.Option(
    "--snr-min", help="Keep only benchmarks whose SNR is at least X.", rich_help_panel=METHOD_PANEL)]
SnrSourceOption = Annotated[Optional[str], typer.Option(
    "--snr-source", help="Imported checkpoint source to estimate SNR from (default: what `harness snr` uses).",
    rich_help_panel=METHOD_PANEL)]
VariantsOption = Annotated[bool, typer.Option(
    "--variants", help="Group each variant under its parent and show its score change against the parent.",
    rich_help_panel=METHOD_PANEL)]
LevelOption = Annotated[str, typer.Option(
    "--level", help="With --tasks naming an lm-eval group: 'group' ranks on the group's score (aggregated as lm-eval "
    "does), 'leaf' on its leaf tasks.", rich_help_panel=INPUT_PANEL)]
EstimatesOption = Annotated[bool, typer.Option(
    "--estimates", help="Rank the stored adaptive estimates (`harness eval --adaptive`): each model's latest estimate "
    "per task, with its standard error in a `TASK se` column, beside full runs of the same tasks (no se); --bootstrap "
    "(and CSD's --item-bootstrap) draws every estimated cell from N(estimate, se).",
    rich_help_panel=INPUT_PANEL)]
RobustnessOption = Annotated[bool, typer.Option(
    "--robustness", help="Also print IIA, rescaling and benchmark-order checks, one table each.",
    rich_help_panel=METHOD_PANEL)]


def rank(
    db: DbOption = default_db(),
    source: SourceOption = None,
    from_csv: FromOption = None,
    on_duplicate: DuplicateOption = "error",
    models: ModelsOption = None,
    tasks: TasksOption = None,
    level: LevelOption = "group",
    estimates: EstimatesOption = False,
    limit: RankLimitOption = None,
    allow_mixed: AllowMixedOption = False,
    method: MethodOption = "mwr",
    bootstrap: BootstrapOption = 0,
    seed: SeedOption = 0,
    robustness: RobustnessOption = False,
    variants: VariantsOption = False,
    snr_filter: SnrFilterOption = None,
    snr_min: SnrMinOption = None,
    snr_source: SnrSourceOption = None,
    rounds: RoundsOption = "auto",
    eliminate: EliminateOption = "0",
    n_sims: NSimsOption = 100_000,
    tiebreak: TiebreakOption = "random",
    missing: MissingOption = "error",
    item_bootstrap: ItemBootstrapOption = False,
    plot: PlotOption = None,
    fmt: FormatOption = "table",
    save: SaveOption = None,
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """Rank competitors; every method sees the same ScoreTable."""
    from harness.report.formats import Tables, refuse_csv
    from tournaments.methods import METHODS, get_method

    tables = Tables(fmt, out)
    csd = CSDSettings(rounds, eliminate, n_sims, seed, tiebreak, missing, item_bootstrap)
    several = {"--method all": "--method NAME for one method's leaderboard"} if method == "all" else {}
    if method == "csd" and len(csd.schedules()) > 1:
        several[f"--eliminate {eliminate}"] = "one --eliminate value for the CSD leaderboard alone"
    if robustness:
        several["--robustness"] = "run without --robustness for the leaderboard alone"
    refuse_csv(fmt, several)
    if save is not None and not save.strip():
        raise HarnessError(f"--save {save!r}: give the ranking a name")
    if plot is not None:
        check_output(f"--plot {plot}", plot, db)
    if method != "all":
        try:
            get_method(method)
        except ValueError as exc:
            raise HarnessError(f"--method: {exc}") from None
    stderr = None
    if estimates:
        table, stderr, compared = _estimated(db, source, from_csv, limit, split_list(models) or None,
                                             split_list(tasks), busy_timeout)
        published, title = None, "adaptive estimates"
        csd = replace(csd, cell_stderr=stderr)
    else:
        table, published, title, compared = _load(db, source, from_csv, on_duplicate, split_list(models) or None,
                                                  items=bootstrap > 0 or item_bootstrap, tasks=split_list(tasks),
                                                  level=level, limit=limit, allow_mixed=allow_mixed,
                                                  busy_timeout=busy_timeout)
    if snr_filter is not None or snr_min is not None:
        table = _snr_filtered(db, table, snr_filter, snr_min, snr_source, tables, limit, allow_mixed, busy_timeout)
    if method in ("all", "csd"):  # their tables carry their own notes: what was done to compare goes to stderr
        for note in compared:
            err.print(f"note: {note}", highlight=False, soft_wrap=True)
    if method == "all":
        rankings = _render_all(table, csd, tables)
        saved = {f"{save}/{name}": (ranking, {}) for name, ranking in rankings.items()}
    elif method == "csd":
        from harness.cli.commands import _csd

        _csd.report(table, csd, published, plot, tables)
        if save:  # the printed CSD table's first schedule, simulated again as a Ranking (same settings and seed)
            saved = {save: (_csd.ranked(table, csd), {})}
    else:
        frame, notes, chosen = _method_table(table, method, published, bootstrap, seed, stderr)
        saved = {save: (chosen, {"bootstrap": bootstrap, "seed": seed})}
        if variants:
            frame = _with_parents(db, frame, method, busy_timeout)
        tables.add("leaderboard", frame, title=f"{title} — by {method}", notes=compared + notes)
    if robustness:
        names = list(METHODS) if method == "all" else sorted({method, "mean", "mwr", "borda"})
        _render_robustness(table, names, csd, tables, by=names[0] if method == "all" else method)
    tables.close()
    if save:
        _save(db, table, saved, busy_timeout)


def _load(db: Path, source: str | None, from_csv: Path | None, on_duplicate: str, models: list[str] | None,
          items: bool, tasks: list[str] | None = None, level: str = "group", limit: int | None = None,
          allow_mixed: bool = False, busy_timeout: float = 0.0):
    """(table, published aggregate, title, notes on what was done to compare the models). A --models name the
    input does not hold is refused, not dropped: a typo would otherwise rank the others as if it were complete."""
    from harness.api._rank import csv_scores
    from harness.store import Store
    from harness.tables.scores import imported_table, stored_scores

    if source and from_csv:
        raise HarnessError("--source and --from: choose one input")
    if limit is not None and (source or from_csv):
        raise HarnessError(f"--limit {limit}: picks evaluated runs; it does not apply to --source or --from")
    if from_csv is not None:
        table, published = csv_scores(from_csv, on_duplicate)
        return _only(table, models, f"--from {from_csv}"), published, from_csv.name, ()
    with Store.open(db, read_only=True, busy_timeout=busy_timeout) as store:
        if source:
            table, published = imported_table(store, source)
            return _only(table, models, f"--source {source}"), published, source, ()
        if models:
            _known(models, set(store.leaderboard_rows()["model"]), f"no finished runs in --db {db}")
        table, notes = stored_scores(store, models, items=items, tasks=list(tasks or []), level=level, limit=limit,
                                     allow_mixed=allow_mixed)
    return table, None, "evaluated models", notes


def _estimated(db: Path, source, from_csv, limit, models, tasks, busy_timeout: float):
    """(table of the stored adaptive estimates and full runs, their standard errors, notes); refuses what does not
    apply."""
    from harness.store import Store
    from harness.tables.estimates import estimated_table

    for flag, given in (("--source", source), ("--from", from_csv), ("--limit", limit)):
        if given is not None:
            raise HarnessError(f"--estimates with {flag}: estimates rank the stored adaptive estimates and full runs "
                               "of the same tasks; --bootstrap and --item-bootstrap draw from their standard errors")
    with Store.open(db, read_only=True, busy_timeout=busy_timeout) as store:
        table, stderr, notes = estimated_table(store, models, tasks)
    return table, stderr, tuple(notes)


def _known(models: list[str], known: set[str], where: str) -> None:
    """Refuse --models names not in `known`, in one line, each with its closest known name."""
    from difflib import get_close_matches

    from harness.common.spec_files import one_line

    unknown = [name for name in dict.fromkeys(models) if name not in known]
    if unknown:
        hints = [f"{name!r}" + "".join(f" (did you mean {close!r}?)" for close in
                                       get_close_matches(name, sorted(known), n=1)) for name in unknown]
        raise HarnessError(one_line(f"--models {', '.join(hints)}: {where}"))


def _only(table, models: list[str] | None, where: str):
    """The competitors named by --models (all without it), in the table's order."""
    if not models:
        return table
    _known(models, set(table.competitors), f"not in {where}")
    wanted = set(models)
    return table.select(competitors=[name for name in table.competitors if name in wanted])


def _snr_filtered(db: Path, table, k: int | None, min_snr: float | None, source: str | None, tables,
                  limit: int | None = None, allow_mixed: bool = False, busy_timeout: float = 0.0):
    """Drop low-SNR benchmarks before any method sees the table, and say which and why: as a table of its own,
    except in CSV, which holds the leaderboard alone; there each dropped benchmark is a note on stderr."""
    import pandas as pd

    from harness.tables.snr import filter_for_ranking
    from harness.store import Store

    with Store.open(db, read_only=True, busy_timeout=busy_timeout) as store:
        kept, dropped = filter_for_ranking(store, table, k=k, min_snr=min_snr, source=source, limit=limit,
                                           allow_mixed=allow_mixed)
    frame = pd.DataFrame(dropped, columns=["benchmark", "snr", "reason"])
    title = f"SNR filter: kept {kept.n_benchmarks} of {table.n_benchmarks} benchmarks"
    if tables.fmt != "csv":
        tables.add("snr_filter", frame, title=title)
        return kept
    err.print(f"note: {title}", highlight=False, soft_wrap=True)
    for row in frame.itertuples(index=False):
        err.print(f"note: dropped {row.benchmark} (snr {row.snr:.4g}): {row.reason}", highlight=False, soft_wrap=True)
    return kept


def _method_table(table, method: str, published, bootstrap: int, seed: int, stderr=None):
    """Rank, competitor, the chosen score (with CIs), mean and MWR for reference, then per-benchmark values (with
    their standard errors where the cells are estimates); and the chosen Ranking, with the bootstrap CIs where
    there are some (what --save stores)."""
    import pandas as pd

    from tournaments.methods import rank
    from tournaments.stats import bootstrap_ranking

    chosen = rank(table, method)
    frame = pd.DataFrame({"rank": chosen.ranks, "competitor": list(table.competitors), method: chosen.scores})
    if bootstrap:
        boot = bootstrap_ranking(table, lambda t: rank(t, method), n_boot=bootstrap, seed=seed, stderr=stderr)
        frame[f"{method} 95% CI"] = [f"{lo:.4f} – {hi:.4f}" for lo, hi in zip(boot.score_low, boot.score_high)]
        frame["rank CI"] = [f"{lo}–{hi}" for lo, hi in zip(boot.rank_low, boot.rank_high)]
    for other in ("mwr", "mean"):
        if other != method:
            frame[other] = rank(table, other).scores
    if published is not None:
        frame["published"] = frame["competitor"].map(published)
    values = table.cell_means()
    for j, bench in enumerate(table.benchmarks):
        frame[bench + ("" if table.higher_is_better[j] else " ↓")] = values[:, j]
        if stderr is not None:
            frame[f"{bench} se"] = stderr[:, j]
    notes = chosen.notes
    if bootstrap:
        over = "cells drawn from N(estimate, se)" if boot.unit == "normal" else boot.unit
        notes += (f"CIs from {bootstrap} bootstrap resamples over {over} (seed {seed})",)
        chosen = replace(chosen, ci_low=boot.score_low, ci_high=boot.score_high)
    return frame.sort_values(["rank", "competitor"], kind="stable").reset_index(drop=True), notes, chosen


def _with_parents(db: Path, frame, method: str, busy_timeout: float = 0.0):
    """Each variant right after its parent, with `parent` and the change of the method's score."""
    from harness.store import Store

    with Store.open(db, read_only=True, busy_timeout=busy_timeout) as store:
        parents = dict(zip(*store.variant_rows()[["variant", "parent"]].to_numpy().T))
    score = dict(zip(frame["competitor"], frame[method]))
    frame.insert(2, "parent", frame["competitor"].map(parents).fillna(""))
    frame.insert(4, f"Δ {method} vs parent",
                 [score[c] - score[p] if p in score else float("nan") for c, p in zip(frame["competitor"], frame["parent"])])
    root = frame["parent"].where(frame["parent"].isin(set(score)), frame["competitor"])
    order = {name: i for i, name in enumerate(frame["competitor"])}
    frame["_family"] = root.map(order)
    frame["_is_variant"] = root != frame["competitor"]
    return frame.sort_values(["_family", "_is_variant", "rank"], kind="stable").drop(columns=["_family", "_is_variant"])


def _render_all(table, csd: CSDSettings, tables) -> dict:
    from tournaments.methods import rank_all

    from harness.cli.commands._csd import cli_errors, cli_words

    with cli_errors("--method all"):
        ranks, tau, rankings = rank_all(table, params={"csd": csd.ranker_params(table)})
    tables.add("ranks", ranks.reset_index(), title="rank under every method")
    tables.add("kendall_tau", tau.reset_index(names="method"), title="Kendall tau-b between methods",
               notes=tuple(f"{name}: {cli_words(note)}" for name, r in rankings.items() for note in r.notes))
    return rankings


def _save(db: Path, table, saved: dict, busy_timeout: float = 0.0) -> None:
    """Store each ranking under its name (--save NAME; NAME/METHOD with --method all) with its method's parameters,
    the hash of the ranked table and this command line."""
    import shlex
    import sys

    from harness.cli.commands._common import err
    from harness.store import Store
    from harness.store.rankings import table_hash

    digest, command = table_hash(table), shlex.join(sys.argv)
    with Store.open(db, busy_timeout=busy_timeout) as store:
        for name, (ranking, extra) in saved.items():
            store.save_ranking(name, ranking, {**ranking.params, **extra}, digest, command)
    err.print(f"saved {', '.join(saved)} in {db}", highlight=False, soft_wrap=True)


def _render_robustness(table, names: list[str], csd: CSDSettings, tables, by: str) -> None:
    """IIA, rescaling, order and perturbation checks of each method in `names` (the perturbed competitor: the
    leader by `by`, the leaderboard's method), and with CSD among them its round-order sensitivity."""
    from functools import partial

    from harness.cli.commands._csd import cli_errors
    from tournaments.methods import get_method
    from tournaments.robustness import iia_check, order_sensitivity, perturbation_check, rescaling_check

    methods = {name: get_method(name) for name in names}
    if "csd" in methods:  # the user's CSD settings, except rounds: the checks change the benchmark set
        params = {k: v for k, v in csd.ranker_params(table).items() if k != "rounds"}
        methods["csd"] = partial(methods["csd"], **params)
    checks = {
        "iia": ("independence of irrelevant alternatives (drop 20% of competitors, 20 trials)", iia_check),
        "rescaling": ("per-benchmark rescaling (log-uniform factors in [1/10, 10], 20 trials)", rescaling_check),
        "order": ("benchmark order (20 permutations)", order_sensitivity),
    }
    for name, (title, check) in checks.items():
        with cli_errors("--robustness"):
            frame = check(table, methods, seed=csd.seed)
        tables.add(f"robustness_{name}", frame, title=f"robustness: {title}")
    with cli_errors("--robustness"):
        leader = methods[by](table).order()[0]
        frame = perturbation_check(table, leader, methods, k=1, fill=None)
    tables.add("robustness_perturbation", frame, title=f"robustness: perturbation ({leader}, the {by} "
               "leader, gets the worst observed score on its strongest benchmark)")
    if "csd" in methods:
        _render_round_order(table, csd, tables)


def _render_round_order(table, csd: CSDSettings, tables) -> None:
    """CSD's expected score E[S_m] under the configured round order and 19 random permutations of it."""
    import pandas as pd

    from harness.cli.commands._csd import cli_errors
    from tournaments.sensitivity import round_order_sensitivity

    params = csd.ranker_params(table)
    with cli_errors("--robustness"):
        result = round_order_sensitivity(
            table, params["rounds"], n_orders=20, eliminate=params["eliminate"], n_sims=params["n_sims"],
            seed=params["seed"], tiebreak=params["tiebreak"], missing=params["missing"])
    frame = pd.DataFrame({"competitor": result.competitors, "E[given order]": result.expected[0],
                          "E min": result.expected.min(axis=0), "E max": result.expected.max(axis=0),
                          "spread": result.spread}).sort_values("E[given order]", ascending=False, kind="stable")
    notes = ("spread = largest minus smallest E[S_m] over the orders; a per-round elimination list stays with its "
             "round's position",) + (("played without --item-bootstrap",) if csd.item_bootstrap else ())
    tables.add("robustness_csd_round_order", frame.reset_index(drop=True),
               title="robustness: CSD round order (the given order and 19 random permutations)", notes=notes)
