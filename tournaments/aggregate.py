"""Score aggregation rankers: one number per competitor from a whole ScoreTable."""

from __future__ import annotations

import numpy as np

from tournaments.ranking import Ranking
from tournaments.table import ScoreTable


def mean_score(table: ScoreTable) -> Ranking:
    """Plain mean over the benchmarks a competitor has, lower-is-better benchmarks negated.

    Scale-sensitive by design (the widest benchmark dominates); it is the baseline users expect.
    """
    oriented = table.oriented()
    counts = np.sum(~np.isnan(oriented), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(counts > 0, np.nansum(oriented, axis=1) / np.maximum(counts, 1), np.nan)
    flipped = [b for b, hib in zip(table.benchmarks, table.higher_is_better) if not hib]
    notes = (f"lower-is-better benchmarks negated: {', '.join(flipped)}",) if flipped else ()
    return Ranking("mean", table.competitors, scores, notes=notes)


def win_rate_matrix(table: ScoreTable) -> tuple[np.ndarray, np.ndarray]:
    """Per-benchmark win rates as in HELM: (strictly worse + half of tied others) / (n_b - 1).

    Returns (rates, defined): rates is (competitors, benchmarks); defined marks cells that count,
    i.e. the competitor has a value and at least one other competitor does too.
    """
    x = table.oriented()
    present = ~np.isnan(x)
    n_present = present.sum(axis=0)
    a = x[:, None, :]
    b = x[None, :, :]
    both = present[:, None, :] & present[None, :, :]
    wins = np.sum((a > b) & both, axis=1)
    ties = np.sum((a == b) & both, axis=1) - present  # a competitor ties with itself
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = (wins + 0.5 * ties) / (n_present[None, :] - 1)
    defined = present & (n_present[None, :] >= 2)
    return np.where(defined, rates, np.nan), defined


def mean_win_rate(table: ScoreTable) -> Ranking:
    """HELM mean win rate: the mean of per-benchmark win rates over benchmarks the competitor appears in."""
    rates, defined = win_rate_matrix(table)
    counts = defined.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(counts > 0, np.nansum(rates, axis=1) / np.maximum(counts, 1), np.nan)
    return Ranking("mwr", table.competitors, scores)
