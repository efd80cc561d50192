"""PNG figures of an optimizer comparison: anytime rank and regret curves, performance profiles.

Files go where the caller says (no plt.show, no fixed folders); the Agg backend needs no display.
The critical-difference diagram is harness/report/cd_diagram.py, shared with model leaderboards.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def plot_anytime(curves: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Mean rank (left) and mean normalised regret with its bootstrap band (right) against budget."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for optimizer, curve in curves.groupby("optimizer", sort=True):
        left.plot(curve["x"], curve["mean_rank"], label=optimizer, drawstyle="steps-post")
        line, = right.plot(curve["x"], curve["regret"], label=optimizer, drawstyle="steps-post")
        right.fill_between(curve["x"], curve["regret_low"], curve["regret_high"], step="post",
                           color=line.get_color(), alpha=0.2)
    left.set(xlabel="budget used (share of trials)", ylabel="mean rank (1 = best)", title="rank over budget")
    left.invert_yaxis()
    right.set(xlabel="budget used (share of trials)", ylabel="normalised regret", title="regret over budget")
    if (curves["regret_low"] > 0).all():
        right.set_yscale("log")
    left.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_profile(profile: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Dolan-More curves: share of tasks within a factor tau of the best optimizer on that task."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for optimizer, curve in profile.groupby("optimizer", sort=True):
        ax.plot(curve["tau"], curve["share"], label=optimizer, drawstyle="steps-post")
    ax.set_xscale("log")
    ax.set(xlabel="tau (ratio to the best normalised cost)", ylabel="share of tasks", ylim=(-0.02, 1.02),
           title=title or "performance profile")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
