"""Plots for benchmark quality: SNR per benchmark, and SNR / decision accuracy against top-k subtasks.

Both take the DataFrames the tournaments functions return (`snr_table`, `prefix_curve`,
`random_order_baseline`) and write a PNG; the Agg backend keeps them usable without a display.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def plot_snr_bars(table: pd.DataFrame, path: str | Path, title: str = "Signal-to-noise ratio per benchmark",
                  dropped: frozenset[str] = frozenset()) -> Path:
    """Horizontal bars of SNR, highest at the top; benchmarks with undefined SNR are listed as 'n/a',
    and those in `dropped` (removed by an SNR filter) are drawn in grey."""
    path = Path(path)
    rows = table.sort_values("snr", ascending=True, na_position="first")
    values = rows["snr"].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(rows) + 1)))
    colours = ["lightgrey" if b in dropped else "tab:blue" for b in rows["benchmark"].astype(str)]
    ax.barh(np.arange(len(rows)), np.nan_to_num(values), color=colours)
    for y, v in enumerate(values):
        if np.isnan(v):
            ax.text(0, y, " n/a", va="center", fontsize=8, color="tab:red")
    ax.set_yticks(np.arange(len(rows)), rows["benchmark"].astype(str).tolist(), fontsize=8)
    source = rows["noise_source"].dropna().unique() if "noise_source" in rows else []
    ax.set_xlabel("SNR (signal / noise)" + (f"; noise: {source[0]}" if len(source) == 1 else ""))
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_subtask_filtering(
    curve: pd.DataFrame,
    path: str | Path,
    baseline: pd.DataFrame | None = None,
    title: str = "Top-k subtasks by SNR",
) -> Path:
    """SNR (left axis) and decision accuracy (right axis) of the top-k subtask aggregate against k,
    with the random-order baseline (mean +/- 1 std) when given; the full-set SNR is a dashed line."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(curve["k"], curve["snr"], color="tab:blue", label="SNR, top-k by SNR")
    ax.axhline(curve["snr"].iloc[-1], color="tab:blue", linestyle="--", linewidth=0.8, label="SNR, all subtasks")
    if baseline is not None:
        ax.plot(baseline["k"], baseline["snr_mean"], color="tab:blue", alpha=0.5, linestyle=":",
                label="SNR, random order")
        ax.fill_between(baseline["k"], baseline["snr_mean"] - baseline["snr_std"],
                        baseline["snr_mean"] + baseline["snr_std"], color="tab:blue", alpha=0.1)
    ax.set_xlabel("k (subtasks kept)")
    ax.set_ylabel("SNR", color="tab:blue")
    handles, labels = ax.get_legend_handles_labels()
    if curve["decision_accuracy"].notna().any():
        ax2 = ax.twinx()
        ax2.plot(curve["k"], curve["decision_accuracy"], color="tab:orange", label="decision accuracy, top-k")
        if baseline is not None:
            ax2.plot(baseline["k"], baseline["decision_accuracy_mean"], color="tab:orange", alpha=0.5,
                     linestyle=":", label="decision accuracy, random order")
        ax2.set_ylabel("decision accuracy", color="tab:orange")
        more_h, more_l = ax2.get_legend_handles_labels()
        handles, labels = handles + more_h, labels + more_l
    ax.legend(handles, labels, fontsize=7, loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
