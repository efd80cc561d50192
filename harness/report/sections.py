"""The report's sections, each computed from the store and present only when its data exists.

Each builder returns a Section or None (with the reason it was left out), so the page never shows
an empty or meaningless plot.
"""

from __future__ import annotations

import hashlib
import tempfile
from functools import partial
from pathlib import Path
from typing import Callable

import pandas as pd

from harness.common.errors import HarnessError
from harness.report.cd_diagram import plot_cd_diagram
from harness.report.html import Section
from harness.store import Store
from hpo.analysis import from_trials
from hpo.plots import plot_anytime, plot_profile
from hpo.report import compare, notes
from hpo.report import optimizer_table
from tournaments import ScoreTable

CSD_SIMS = 20_000
BOOT_CSD_SIMS = 1_000  # per bootstrap resample: rank intervals need the order, not a precise E[S_m]
BOOTSTRAP = 200
# Models evaluated on only some tasks (e.g. variants scored on one text): their unplayed rounds are coin flips.
CSD_MISSING = "coin"
LEADERBOARD_METHODS = ("mwr", "mean", "borda", "copeland", "bt", "elo", "openskill", "csd")


def _png(draw: Callable[[Path], Path]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return draw(Path(tmp) / "figure.png").read_bytes()


def leaderboard(table: ScoreTable, seed: int, items: ScoreTable | None = None,
                n_boot: int = BOOTSTRAP) -> Section | None:
    """`items`, when given, is the same table with per-item replicates: the bootstrap then resamples items.

    Every method's bootstrap uses the same seed, so all methods see the same resamples.
    """
    from harness.report.plots import plot_rank_intervals
    from tournaments.methods import rank, rank_all
    from tournaments.stats import bootstrap_ranking

    if table.n_competitors < 2:
        return None
    csd = {"seed": seed, "missing": CSD_MISSING}
    ranks, tau, _ = rank_all(table, LEADERBOARD_METHODS, params={"csd": {**csd, "n_sims": CSD_SIMS}})
    sample = items if items is not None else table
    intervals = []
    for method in LEADERBOARD_METHODS:
        params = {**csd, "n_sims": BOOT_CSD_SIMS} if method == "csd" else {}
        boot = bootstrap_ranking(sample, partial(rank, method=method, **params), n_boot=n_boot, seed=seed)
        frame = boot.to_frame()[["competitor", "rank_low", "rank_high"]].assign(method=method)
        intervals.append(frame.assign(rank=ranks.loc[frame["competitor"], method].to_numpy()))
    order = {c: i for i, c in enumerate(ranks.index)}  # leaderboard order; methods stay in their order within
    intervals = pd.concat(intervals, ignore_index=True).sort_values(
        "competitor", key=lambda col: col.map(order), kind="stable")
    cells = intervals.assign(cell=[f"{r} ({lo}–{hi})" for r, lo, hi in zip(
        intervals["rank"], intervals["rank_low"], intervals["rank_high"])])
    side_by_side = cells.pivot(index="competitor", columns="method", values="cell").loc[
        list(ranks.index), list(LEADERBOARD_METHODS)]
    return Section(
        "leaderboard", "Leaderboard under every ranking method",
        f"Each model's rank under each method side by side (CSD: {CSD_SIMS} simulated Swiss tournaments), "
        f"with its 95% rank interval in brackets from {n_boot} bootstrap resamples over {boot.unit}.",
        tables=[("rank (95% interval) per method, ordered by mean win rate (mwr)",
                 side_by_side.reset_index(names="model").rename_axis(columns=None)),
                ("Kendall tau-b between methods (1 = identical order)", tau.reset_index(names="method"))],
        figures=[("Rank confidence: each dot is a model's rank under one method and its bar the 95% bootstrap "
                  "interval; models whose bars overlap are not reliably ordered by the data.",
                  _png(lambda p: plot_rank_intervals(intervals, p)))],
    )


def csd_sensitivity(table: ScoreTable, seed: int) -> Section | None:
    from harness.report.csd_plot import plot_failure_sensitivity, plot_sensitivity_profile
    from tournaments.sensitivity import failure_sensitivity

    if table.n_competitors < 3:
        return None
    for schedules in ((0, 1, 2), (0, 1)):  # a small field cannot lose two competitors every round
        try:
            result = failure_sensitivity(table, schedules=schedules, n_sims=CSD_SIMS, seed=seed,
                                         missing=CSD_MISSING)
            break
        except ValueError:
            continue
    else:
        return None
    counts = " and ".join(str(t) for t in schedules)
    return Section(
        "csd", "CSD failure sensitivity",
        f"Expected Swiss-tournament score with {counts} eliminations per round; the drop shows who relies on "
        "never having a bad round (specialists) and who holds up (generalists).",
        tables=[("E[S_m] per schedule", result.to_frame())],
        figures=[("Failure-sensitivity profile: one line per model, its expected wins as more competitors are cut "
                  "each round; a steep fall marks a model that needs every round to go well.",
                  _png(lambda p: plot_sensitivity_profile(result, p))),
                 ("Generalist/specialist scatter: base score against its drop under the harshest schedule; high "
                  "base with a small drop is a robust generalist, a large drop an aggressive specialist.",
                  _png(lambda p: plot_failure_sensitivity(result, p)))],
    )


def critical_difference(table: ScoreTable) -> Section | None:
    from tournaments.stats import friedman, wilcoxon_holm

    complete = table.select(benchmarks=[b for j, b in enumerate(table.benchmarks) if not table.missing[:, j].any()])
    if complete.n_competitors < 3 or complete.n_benchmarks < 2 or complete.n_competitors > 40:
        return None
    result = friedman(complete)
    pairwise = wilcoxon_holm(complete) if complete.n_benchmarks >= 5 else None
    return Section(
        "cd", "Critical-difference diagram",
        f"Mean rank per model over {complete.n_benchmarks} benchmarks; models joined by a bar are not significantly "
        f"different (Friedman p = {result.p_value:.3g}, Nemenyi critical difference {result.critical_difference:.2f}).",
        figures=[("Critical-difference diagram: each model sits at its mean rank over the benchmarks; models joined "
                  "by a bar are not significantly different.", _png(lambda p: plot_cd_diagram(result, p, pairwise)))],
    )


def heatmap(table: ScoreTable) -> Section:
    from harness.report.plots import plot_heatmap

    return Section(
        "heatmap", "Scores per task",
        "Each model's primary score on each task; colour is its position between the task's worst and best model.",
        tables=[("scores", table.to_frame().reset_index(names="model"))],
        figures=[("Score heatmap: rows are models, columns tasks, the number is the score and darker is better "
                  "within a task (↓ marks lower-is-better tasks).", _png(lambda p: plot_heatmap(table, p)))],
    )


def snr(store: Store, snr_filter: int | None, allow_mixed: bool = False) -> Section | None:
    from harness.report.snr_plot import plot_snr_bars
    from harness.tables.snr import benchmark_snr

    try:
        frame = benchmark_snr(store, allow_mixed=allow_mixed)
    except HarnessError:
        return None
    if frame["snr"].notna().sum() == 0:
        return None
    ordered = frame.sort_values("snr", ascending=False, na_position="last")
    kept = set(ordered["benchmark"].head(snr_filter)) if snr_filter else set(ordered.dropna(subset=["snr"])["benchmark"])
    dropped = frozenset(frame["benchmark"]) - kept
    frame = frame.assign(dropped=frame["benchmark"].isin(dropped).map({True: "dropped", False: ""}))
    rule = f"keeping the top {snr_filter}" if snr_filter else "dropping benchmarks whose SNR is undefined"
    return Section(
        "snr", "Signal and noise per benchmark",
        f"How well each benchmark separates the models (signal) relative to its item-sampling noise; {rule}.",
        tables=[("SNR", frame)],
        figures=[("SNR per benchmark, highest at the top: grey bars are benchmarks dropped from ranking, n/a marks "
                  "an undefined SNR.", _png(lambda p: plot_snr_bars(frame, p, dropped=dropped)))],
    )


def variants(store: Store, table: ScoreTable) -> Section | None:
    from harness.report.plots import plot_quality_vs_sparsity

    rows = store.variant_rows()
    rows = rows[rows["variant"].isin(table.competitors) & rows["parent"].isin(table.competitors)]
    if rows.empty:
        return None
    frame = table.to_frame()
    deltas = []
    for row in rows.itertuples():
        delta = frame.loc[row.variant] - frame.loc[row.parent]
        deltas.append({"variant": row.variant, "parent": row.parent, "method": row.method, "sparsity": row.sparsity,
                       **{f"Δ {task}": value for task, value in delta.items()}})
    higher = [b for b, hib in zip(table.benchmarks, table.higher_is_better) if hib]
    quality = frame[higher].mean(axis=1) if higher else frame.mean(axis=1)
    curve = pd.concat([
        pd.DataFrame({"parent": rows["parent"], "method": rows["method"], "sparsity": rows["sparsity"],
                      "score": rows["variant"].map(quality).to_numpy()}),
        rows[["parent", "method"]].drop_duplicates().assign(
            sparsity=0.0, score=lambda d: d["parent"].map(quality).to_numpy()),
    ]).dropna(subset=["sparsity"])
    figures = []
    if curve["sparsity"].gt(0).any():
        label = "mean score over higher-is-better tasks"
        figures.append(("Quality against achieved sparsity: one line per parent and pruning method, the parent "
                        f"itself at sparsity 0 ({label}).", _png(lambda p: plot_quality_vs_sparsity(curve, p, label))))
    return Section(
        "variants", "Variants against their parents",
        "Each pruned or merged variant's score change on every task relative to the model it was made from "
        "(negative is worse for accuracy, positive is worse for bits per byte).",
        tables=[("delta vs parent", pd.DataFrame(deltas))], figures=figures,
    )


def optimizer_comparison(store: Store, seed: int, n_boot: int = BOOTSTRAP) -> list[Section]:
    """Three sections over every stored HPO study (carps normalisation), or none without trials."""
    studies = {study: compare(from_trials(store.hpo_trials(study)), "carps", n_boot=n_boot, seed=seed)
               for study in store.hpo_studies()}
    if not studies:
        return []
    tested = {study: c for study, c in studies.items() if c.tests.friedman is not None}
    ranking = Section(
        "hpo-ranking", "Optimizer ranking",
        "Optimizers ordered by their mean rank over tasks of the final best cost, normalised per task as carps "
        "does (0 = best cost any run found, 1 = worst), with a 95% interval over seeds and the tasks each won.",
        tables=[(f"study {study}: " + "; ".join(notes(c)), optimizer_table(c)) for study, c in studies.items()],
        figures=_per_study(tested, "Critical-difference diagram of study {study}: optimizers joined by a bar are not "
                           "significantly different (Friedman and Nemenyi over tasks).",
                           lambda c, path, title: plot_cd_diagram(c.tests.friedman, path, c.tests.wilcoxon, title)),
    )
    anytime = Section(
        "hpo-anytime", "Optimizer anytime performance",
        "How good each optimizer's best configuration so far is as its trial budget is spent: left its mean rank "
        "over tasks, right its mean normalised regret with a 95% band from resampling tasks.",
        figures=_per_study(studies, "Anytime curves of study {study}: incumbent rank and regret against the share "
                           "of trials used.", lambda c, path, title: plot_anytime(c.curves, path, title)),
    )
    profile = Section(
        "hpo-profile", "Optimizer performance profiles",
        "For each optimizer, the share of tasks on which its final normalised cost is within a factor tau of the "
        "best optimizer on that task (Dolan-Moré); a curve that rises earlier and higher is better.",
        figures=_per_study(studies, "Performance profile of study {study}.",
                           lambda c, path, title: plot_profile(c.profile, path, title)),
    )
    return [ranking, anytime, profile]


def _per_study(studies: dict, caption: str, draw: Callable) -> list[tuple[str, bytes]]:
    """One figure per study: `draw(comparison, path, title)`, captioned with the study's name filled in."""
    return [(caption.format(study=study), _png(partial(draw, c, title=f"study {study}")))
            for study, c in studies.items()]


def footer(store: Store, db: Path) -> list[tuple[str, str]]:
    """Where the numbers came from: code, store, the commands that wrote them, and hashes of the inputs."""
    from harness.evaluation.environment import environment

    env = environment()
    info = store.provenance()
    rows = [("database", str(db)), ("schema version", str(store.schema_version())),
            ("git commit", env.get("git_commit") or "unknown"), ("python", env["python"]),
            ("report command", env["command"])]
    rows += [(f"package {name}", version) for name, version in sorted(env["packages"].items())]
    rows += [("run git commit", commit) for commit in info["commits"]]
    rows += [("command", command) for command in info["commands"]]
    rows += [(f"model {name}", fingerprint) for name, fingerprint in info["models"]]
    rows += [(f"task {name}", config_hash) for name, config_hash in info["tasks"]]
    rows += [(f"hpo study {study}", _trials_digest(store.hpo_trials(study))) for study in store.hpo_studies()]
    return rows


def _trials_digest(trials: pd.DataFrame) -> str:
    """A study's size and a sha256 over what the comparison reads (wall time left out: it never repeats)."""
    inputs = trials.drop(columns=["wall_time"]).sort_values(["optimizer", "task", "seed", "trial"])
    digest = hashlib.sha256(inputs.to_csv(index=False).encode()).hexdigest()
    return (f"{len(trials)} trials, {trials['optimizer'].nunique()} optimizers, {trials['task'].nunique()} tasks, "
            f"sha256 {digest}")
