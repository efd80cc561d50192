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


def plot_rank_intervals(frame: pd.DataFrame, path: Path, method: str) -> Path:
    """Point rank and bootstrap rank interval per competitor, best at the top."""
    rows = frame.sort_values(["rank", "competitor"], ascending=[False, False])
    fig, ax = _figure(7, 1.0 + 0.3 * len(rows))
    y = np.arange(len(rows))
    ax.hlines(y, rows["rank_low"], rows["rank_high"], color="tab:blue", linewidth=3, alpha=0.5)
    ax.plot(rows["rank"], y, "o", color="tab:blue")
    ax.set_yticks(y, rows["competitor"].astype(str).tolist(), fontsize=8)
    ax.set_xlabel(f"rank under {method} (95% bootstrap interval)")
    ax.invert_xaxis()
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
