"""The report's sections, each computed from the store and present only when its data exists.

Each builder returns a Section or None (with the reason it was left out), so the page never shows
an empty or meaningless plot.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import pandas as pd

from harness.errors import HarnessError
from harness.report.html import Section
from harness.store import Store
from tournaments import ScoreTable

CSD_SIMS = 20_000
BOOTSTRAP = 200
LEADERBOARD_METHODS = ("mwr", "mean", "borda", "copeland", "bt", "elo", "openskill", "csd")


def _png(draw: Callable[[Path], Path]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return draw(Path(tmp) / "figure.png").read_bytes()


def leaderboard(table: ScoreTable, seed: int, items: ScoreTable | None = None) -> Section | None:
    """`items`, when given, is the same table with per-item replicates: the bootstrap then resamples items."""
    from harness.report.plots import plot_rank_intervals
    from tournaments.methods import rank, rank_all
    from tournaments.stats import bootstrap_ranking

    if table.n_competitors < 2:
        return None
    ranks, tau, _ = rank_all(table, LEADERBOARD_METHODS, params={"csd": {"n_sims": CSD_SIMS, "seed": seed}})
    boot = bootstrap_ranking(items if items is not None else table, lambda t: rank(t, "mwr"), n_boot=BOOTSTRAP,
                             seed=seed)
    intervals = boot.to_frame()
    ranks = ranks.reset_index()
    ranks["mwr rank 95% CI"] = ranks["competitor"].map(
        {c: f"{lo}–{hi}" for c, lo, hi in zip(intervals["competitor"], intervals["rank_low"], intervals["rank_high"])})
    return Section(
        "leaderboard", "Leaderboard under every ranking method",
        f"Rank of each model under each method (CSD: {CSD_SIMS} simulated Swiss tournaments), with a 95% interval "
        f"for the mean-win-rate rank from {BOOTSTRAP} bootstrap resamples over {boot.unit}.",
        tables=[("ranks", ranks), ("Kendall tau-b between methods", tau.reset_index(names="method"))],
        figures=[("rank confidence", _png(lambda p: plot_rank_intervals(intervals, p, "mean win rate")))],
    )


def csd_sensitivity(table: ScoreTable, seed: int) -> Section | None:
    from harness.report.csd_plot import plot_failure_sensitivity
    from tournaments.sensitivity import failure_sensitivity

    if table.n_competitors < 3:
        return None
    for schedules in ((0, 1, 2), (0, 1)):  # a small field cannot lose two competitors every round
        try:
            result = failure_sensitivity(table, schedules=schedules, n_sims=CSD_SIMS, seed=seed)
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
        figures=[("base score vs drop", _png(lambda p: plot_failure_sensitivity(result, p)))],
    )


def critical_difference(table: ScoreTable) -> Section | None:
    from harness.report.cd_diagram import plot_cd_diagram
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
        figures=[("critical difference", _png(lambda p: plot_cd_diagram(result, p, pairwise)))],
    )


def heatmap(table: ScoreTable) -> Section:
    from harness.report.plots import plot_heatmap

    return Section(
        "heatmap", "Scores per task",
        "Each model's primary score on each task; colour is its position between the task's worst and best model.",
        tables=[("scores", table.to_frame().reset_index(names="model"))],
        figures=[("heatmap", _png(lambda p: plot_heatmap(table, p)))],
    )


def snr(store: Store, snr_filter: int | None) -> Section | None:
    from harness.report.snr_plot import plot_snr_bars
    from harness.snr_inputs import benchmark_snr

    try:
        frame = benchmark_snr(store)
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
        figures=[("SNR per benchmark", _png(lambda p: plot_snr_bars(frame, p, dropped=dropped)))],
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
        figures.append(("quality vs sparsity", _png(lambda p: plot_quality_vs_sparsity(curve, p, label))))
    return Section(
        "variants", "Variants against their parents",
        "Each pruned or merged variant's score change on every task relative to the model it was made from "
        "(negative is worse for accuracy, positive is worse for bits per byte).",
        tables=[("delta vs parent", pd.DataFrame(deltas))], figures=figures,
    )


def footer(store: Store, db: Path) -> list[tuple[str, str]]:
    from harness.environment import environment

    env = environment()
    info = store.provenance()
    rows = [("database", str(db)), ("schema version", str(store.schema_version())),
            ("git commit", env.get("git_commit") or "unknown"), ("python", env["python"])]
    rows += [(f"package {name}", version) for name, version in sorted(env["packages"].items())]
    rows += [("command", command) for command in info["commands"]]
    rows += [(f"model {name}", fingerprint) for name, fingerprint in info["models"]]
    rows += [(f"task {name}", config_hash) for name, config_hash in info["tasks"]]
    return rows
