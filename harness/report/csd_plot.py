"""Failure-sensitivity scatter for CSD: base E[S_m] (no elimination) against the drop under elimination.

The paper's `two_dimension` chart, with what it lacked: 95% error bars and the median split lines
that define the harness's quadrant labels. Drawn on a standalone Agg figure, so no display or
global pyplot state is involved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tournaments.sensitivity import FailureSensitivity
from tournaments.swiss import Z95

_COLOURS = {
    "robust generalist": "tab:green",
    "aggressive specialist": "tab:red",
    "steady underdog": "tab:blue",
    "fragile underdog": "tab:orange",
}


def plot_failure_sensitivity(result: FailureSensitivity, path: str | Path) -> Path:
    """Writes the scatter as a PNG at `path` and returns the path."""
    path = Path(path)
    base, drop, labels = result.base, result.drop, result.labels
    fig = Figure(figsize=(9, 6.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for label, colour in _COLOURS.items():
        mask = np.array([lab == label for lab in labels])
        if mask.any():
            ax.errorbar(
                base[mask], drop[mask], xerr=Z95 * result.results[0].se[mask], yerr=Z95 * result.drop_se[mask],
                fmt="o", color=colour, ecolor=colour, elinewidth=0.8, capsize=2, label=label,
            )
    for x, y, name in zip(base, drop, result.competitors):
        ax.annotate(name, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
    ax.axvline(np.median(base), color="grey", linestyle="--", linewidth=0.8)
    ax.axhline(np.median(drop), color="grey", linestyle="--", linewidth=0.8)
    names = result.schedule_names
    ax.set_xlabel(f"Base performance: E[S_m] at {names[0]}")
    ax.set_ylabel(f"Performance drop: E[S_m] at {names[-1]} minus {names[0]}")
    ax.set_title("CSD failure sensitivity (bars: 95% CI; dashed: medians)")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
