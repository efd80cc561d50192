"""Report figures that no other module draws: the score heatmap, rank intervals, variant curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tournaments import ScoreTable


def _figure(width: float, height: float):
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_heatmap(table: ScoreTable, path: Path) -> Path:
    """Models x tasks; colour is the per-task min-max position (best = dark), text the raw score."""
    values = table.cell_means()
    oriented = table.oriented()
    low, high = np.nanmin(oriented, axis=0), np.nanmax(oriented, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        position = np.where(high > low, (oriented - low) / (high - low), 0.5)
    fig, ax = _figure(1.2 + 0.9 * table.n_benchmarks, 1.2 + 0.4 * table.n_competitors)
    ax.imshow(np.ma.masked_invalid(position), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(table.n_competitors):
        for j in range(table.n_benchmarks):
            if not np.isnan(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.3g}", ha="center", va="center", fontsize=8,
                        color="white" if position[i, j] > 0.6 else "black")
    labels = [b + ("" if hib else " ↓") for b, hib in zip(table.benchmarks, table.higher_is_better)]
    ax.set_xticks(range(table.n_benchmarks), labels, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(table.n_competitors), list(table.competitors), fontsize=8)
    return _save(fig, path)


def plot_rank_intervals(frame: pd.DataFrame, path: Path) -> Path:
    """Point rank and 95% bootstrap rank interval per competitor under each method, best at the top.

    `frame` is long: competitor, method, rank, rank_low, rank_high; competitors keep their order of
    first appearance (the leaderboard's), methods sit side by side within a competitor's row.
    """
    competitors = list(dict.fromkeys(frame["competitor"]))
    methods = list(dict.fromkeys(frame["method"]))
    row = {c: len(competitors) - 1 - i for i, c in enumerate(competitors)}
    step = 0.7 / max(len(methods), 1)
    fig, ax = _figure(8, 1.2 + (0.2 + 0.05 * len(methods)) * len(competitors))
    for k, method in enumerate(methods):
        part = frame[frame["method"] == method]
        y = part["competitor"].map(row).to_numpy(dtype=float) + 0.35 - step * (k + 0.5)
        ax.hlines(y, part["rank_low"], part["rank_high"], color=f"C{k % 10}", linewidth=2.5, alpha=0.5)
        ax.plot(part["rank"], y, "o", color=f"C{k % 10}", markersize=4, label=method)
    ax.set_yticks([row[c] for c in competitors], [str(c) for c in competitors], fontsize=8)
    ax.set_xlabel("rank (dot) and 95% bootstrap interval (bar); 1 = best")
    ax.invert_xaxis()
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


def plot_quality_vs_sparsity(frame: pd.DataFrame, path: Path, ylabel: str) -> Path:
    """A quality score against achieved sparsity, one line per (parent, method), the parent at 0."""
    fig, ax = _figure(7, 4.5)
    for (parent, method), group in frame.groupby(["parent", "method"]):
        group = group.sort_values("sparsity")
        ax.plot(group["sparsity"], group["score"], "o-", label=f"{method} ({parent})")
    ax.set_xlabel("achieved sparsity")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _save(fig, path)
