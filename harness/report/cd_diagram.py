"""Critical-difference diagram (Demsar 2006): mean ranks on one axis, groups that tests cannot split.

Competitors hang from their mean rank (best on the left); a thick bar joins each maximal group
of rank-neighbours that is not significantly different: by the Nemenyi CD (range of mean ranks
below CD) or, when the Wilcoxon-Holm table is given, by no significant pair inside the group.
The Agg backend writes the PNG without a display.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tournaments.stats import FriedmanResult  # noqa: E402

MAX_COMPETITORS = 40


def cliques(
    names: list[str], mean_ranks: np.ndarray, cd: float, pairwise: pd.DataFrame | None = None
) -> list[list[str]]:
    """Maximal runs of rank-neighbours with no significant difference inside, best first.

    Runs of one are dropped (nothing to join); a run contained in an earlier one is dropped too.
    """
    order = np.argsort(mean_ranks, kind="stable")
    ranked = [names[i] for i in order]
    r = mean_ranks[order]
    significant: set[frozenset[str]] = set()
    if pairwise is not None:
        hits = pairwise.loc[pairwise["significant"], ["a", "b"]].itertuples(index=False)
        significant = {frozenset(p) for p in hits}

    def same_group(i: int, j: int) -> bool:
        if pairwise is None:
            return r[j] - r[i] < cd
        return all(frozenset((ranked[a], ranked[b])) not in significant
                   for a in range(i, j + 1) for b in range(a + 1, j + 1))

    groups: list[list[str]] = []
    last_end = -1
    for start in range(len(ranked)):
        end = start
        while end + 1 < len(ranked) and same_group(start, end + 1):
            end += 1
        if end > start and end > last_end:
            groups.append(ranked[start: end + 1])
            last_end = end
    return groups


def plot_cd_diagram(
    result: FriedmanResult,
    path: str | Path,
    pairwise: pd.DataFrame | None = None,
    title: str | None = None,
) -> Path:
    """Draw the diagram for a Friedman result (and optionally Wilcoxon-Holm groups) into `path`."""
    names = list(result.competitors)
    k = len(names)
    if k > MAX_COMPETITORS:
        raise ValueError(f"{k} competitors make an unreadable CD diagram; select at most {MAX_COMPETITORS}")
    ranks = np.asarray(result.mean_ranks, dtype=float)
    order = np.argsort(ranks, kind="stable")
    groups = cliques(names, ranks, result.critical_difference, pairwise)
    half = (k + 1) // 2
    rows = max(half, k - half)
    top_row = 0.45 + 0.18 * len(groups)  # label rows start below the clique bars
    step = 0.55
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.3 * (top_row + rows * step)))
    low, high = 1, max(k, 2)
    ax.set_xlim(low - 0.5, high + 0.5)
    ax.set_ylim(-(top_row + rows * step + 0.2), 1.8)
    ax.axis("off")
    ax.hlines(0, low, high, color="black", lw=1)
    for t in range(low, high + 1):
        ax.vlines(t, 0, 0.15, color="black", lw=1)
        ax.text(t, 0.3, str(t), ha="center", va="bottom", fontsize=8)
    cd = result.critical_difference
    if cd < high - low:
        ax.hlines(1.2, low, low + cd, color="tab:red", lw=2)
        ax.text(low + cd / 2, 1.35, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8, color="tab:red")
    for slot, i in enumerate(order):
        left = slot < half
        y = -(top_row + (slot if left else k - 1 - slot) * step)
        x_text = low - 0.4 if left else high + 0.4
        ax.plot([ranks[i], ranks[i], x_text], [0, y, y], color="black", lw=0.7)
        ax.text(x_text + (-0.05 if left else 0.05), y, f"{names[i]} ({ranks[i]:.2f})", fontsize=8,
                ha="right" if left else "left", va="center")
    position = {n: ranks[i] for i, n in enumerate(names)}
    for g, members in enumerate(groups):
        y = -0.25 - 0.18 * g
        ax.hlines(y, position[members[0]] - 0.05, position[members[-1]] + 0.05, color="tab:blue", lw=3)
    how = "Wilcoxon-Holm" if pairwise is not None else "Nemenyi"
    ax.set_title(title or f"Critical difference ({how}, alpha={result.alpha:g}, {result.n_benchmarks} benchmarks)",
                 fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
