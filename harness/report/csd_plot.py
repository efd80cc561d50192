"""Failure-sensitivity charts for CSD (csd.md section 1.5), on standalone Agg figures (no display,
no global pyplot state).

- the profile: E[S_m] under each elimination schedule, one line per competitor (the authors'
  "Expected Win Score" chart), with 95% error bars;
- the scatter: base E[S_m] (no elimination) against the drop under elimination (the paper's
  `two_dimension` chart), with 95% error bars and the median split lines that define the
  harness's generalist/specialist quadrant labels.
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


def plot_sensitivity_profile(result: FailureSensitivity, path: str | Path) -> Path:
    """E[S_m] against the schedule, competitors ordered by E[S_m] under the last schedule, coloured by
    quadrant label; writes a PNG at `path` and returns the path."""
    path = Path(path)
    expected, se = result.expected, result.se
    order = np.argsort(-expected[:, -1], kind="stable")
    x = np.arange(len(result.schedules))
    fig = Figure(figsize=(9, 5.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    shown = set()
    for rank, i in enumerate(order):
        label = result.labels[i]
        colour = _COLOURS.get(label, "grey")
        offset = (rank - (len(order) - 1) / 2) * min(0.02, 0.3 / max(len(order), 1))
        ax.errorbar(x + offset, expected[i], yerr=Z95 * se[i], fmt="o-", color=colour, alpha=0.8, linewidth=1,
                    markersize=3, capsize=2, label=None if label in shown else label)
        shown.add(label)
        ax.annotate(result.competitors[i], (x[-1] + offset, expected[i, -1]), xytext=(4, 0),
                    textcoords="offset points", fontsize=7, va="center")
    ax.set_xticks(x, result.schedule_names)
    ax.set_xlim(-0.3, x[-1] + 0.8)
    ax.set_xlabel("elimination schedule (competitors cut per round)")
    ax.set_ylabel("E[S_m] (expected Swiss-tournament wins)")
    ax.set_title("CSD failure-sensitivity profile (bars: 95% CI)")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


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
