"""Signal, noise and signal-to-noise ratio of benchmarks (Heineman et al. 2025, arXiv 2508.13144).

A benchmark is useful for choosing between models when the spread of scores across models (signal)
is large compared with the wobble of one model's score between neighbouring checkpoints (noise).
Formulas, and where the paper's text and its released code differ, are in
`../shared/reference/signal_noise.md`.

Degenerate inputs never produce a silent number: scalar functions raise ValueError (too few values,
NaN, zero mean, zero noise); `snr_table` turns such a benchmark into NaN and says why in `note`.
"""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np
import pandas as pd

from tournaments.table import ScoreTable

PAPER_DDOF = 1
"""Noise std as the paper writes it (sample std, ddof=1). The released code uses np.std (ddof=0),
i.e. noise x sqrt((n-1)/n): 0.894 at n=5, 0.983 at n=30, so code SNRs are 11.8 % (n=5) and 1.7 %
(n=30) higher than paper-formula SNRs. Pass ddof=0 to reproduce released numbers."""


def _clean(scores, what: str, minimum: int) -> np.ndarray:
    """1-D finite float array with at least `minimum` values, or a ValueError saying what is wrong."""
    arr = np.asarray(scores, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D sequence, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "inf"
        raise ValueError(f"{what}: contains {bad} ({int((~np.isfinite(arr)).sum())} of {arr.size} values); "
                         "drop or impute first")
    if arr.size < minimum:
        raise ValueError(f"{what}: needs at least {minimum} values, got {arr.size}")
    return arr


def _abs_mean(arr: np.ndarray, what: str) -> float:
    """|mean| as the normaliser (log-prob metrics are negative); a zero mean makes 'relative' undefined."""
    mean = abs(float(np.mean(arr)))
    if mean == 0.0:
        raise ValueError(f"{what}: mean is 0, so a relative measure is undefined")
    return mean


# ---------------------------------------------------------------------------------------- signal
def _pairwise_abs(x: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(x.size, k=1)
    return np.abs(x[i] - x[j])


def _iqr(x: np.ndarray) -> float:
    q1, q3 = np.percentile(x, [25, 75])
    return float(q3 - q1)


_MEASURES: dict[str, tuple[Callable[[np.ndarray], float], bool]] = {
    # name: (spread, divide by |population mean|). Paper Table 3 order; rel_dispersion won.
    "rel_dispersion": (lambda x: float(np.ptp(x)), True),
    "rel_std": (lambda x: float(np.std(x, ddof=1)), True),
    "rel_mean_pairwise_distance": (lambda x: float(np.mean(_pairwise_abs(x))), True),
    "iqr": (_iqr, False),
    "rms_deviation": (lambda x: float(np.sqrt(np.mean((x - x.mean()) ** 2))), False),
    "mean_pairwise_distance": (lambda x: float(np.mean(_pairwise_abs(x))), False),
    "dispersion": (lambda x: float(np.ptp(x)), False),
    "quartile_deviation": (lambda x: _iqr(x) / 2.0, False),
    "average_absolute_deviation": (lambda x: float(np.mean(np.abs(x - x.mean()))), False),
    "median_absolute_deviation": (lambda x: float(np.median(np.abs(x - np.median(x)))), False),
    "rel_mean_squared_pairwise_distance": (lambda x: float(np.mean(_pairwise_abs(x) ** 2)), True),
    "mean_squared_pairwise_distance": (lambda x: float(np.mean(_pairwise_abs(x) ** 2)), False),
    "gini": (lambda x: float(np.mean(_pairwise_abs(x))) / 2.0, True),  # mean difference / (2 mean)
}
SIGNAL_MEASURES = tuple(_MEASURES)
"""Spread measures the paper compared (Appendix A.4), by name. The depth / discrepancy variants
(R^2 ~ 0.03 there) are not offered. All are normalised by the population mean where relative."""


def signal(scores, measure: str = "rel_dispersion") -> float:
    """Spread of a population's final scores; default (max - min) / |mean|, the paper's choice.

    A population that does not separate (all scores equal) has signal 0, not an error.
    """
    if measure not in _MEASURES:
        raise ValueError(f"unknown signal measure {measure!r}; choose from {', '.join(SIGNAL_MEASURES)}")
    x = _clean(scores, "signal", 2)
    spread, relative = _MEASURES[measure]
    value = spread(x)
    return value / _abs_mean(x, "signal") if relative else value


# ----------------------------------------------------------------------------------------- noise
def relative_std(scores, ddof: int = PAPER_DDOF) -> float:
    """std / |mean|; ddof=1 (paper text) by default, ddof=0 reproduces the released code."""
    x = _clean(scores, "relative std", ddof + 1)
    return float(np.std(x, ddof=ddof)) / _abs_mean(x, "relative std")


def checkpoint_noise(curve, n: int = 30, ddof: int = PAPER_DDOF) -> float:
    """Relative std of the last `n` checkpoints of one run (`curve` ordered by step).

    A curve shorter than n raises: silently using fewer checkpoints would change the estimate.
    """
    if n < 2:
        raise ValueError(f"checkpoint noise: n must be >= 2, got {n}")
    x = _clean(curve, "checkpoint noise", n)
    return relative_std(x[-n:], ddof)


def mean_checkpoint_noise(curves, n: int = 30, ddof: int = PAPER_DDOF) -> float:
    """Average over runs of each run's last-n relative std (paper 4.1; never pooled across runs,
    because a pooled std measures the spread between runs, not the wobble within one)."""
    curves = list(curves)
    if not curves:
        raise ValueError("checkpoint noise: no runs given")
    return float(np.mean([checkpoint_noise(c, n, ddof) for c in curves]))


def bootstrap_item_noise(item_scores, n_boot: int = 1000, seed: int = 0, ddof: int = PAPER_DDOF) -> float:
    """Item-sampling noise: relative std of each model's mean score under resampling of items,
    averaged over models. A different quantity from checkpoint noise (it measures how much the
    finite test set, not training, moves the score); use it when only final per-item results exist.

    `item_scores` is (models, items) with no NaN. All models share each bootstrap draw of items,
    which is what a paired comparison on one test set sees.
    """
    x = np.asarray(item_scores, dtype=float)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"item bootstrap: expected (models, items>=2) scores, got shape {x.shape}")
    if np.isnan(x).any():
        raise ValueError("item bootstrap: item scores contain NaN; every model needs every item")
    if n_boot < 2:
        raise ValueError(f"item bootstrap: n_boot must be >= 2, got {n_boot}")
    n_models, n_items = x.shape
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_items, size=(n_boot, n_items))
    # Counts of each item per draw turn the resampled means into one matrix product.
    offsets = (np.arange(n_boot) * n_items)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=n_boot * n_items).reshape(n_boot, n_items)
    means = x @ counts.T / n_items  # (models, n_boot)
    centre = np.abs(x.mean(axis=1))
    if np.any(centre == 0):
        raise ValueError("item bootstrap: a model has mean score 0, so its relative noise is undefined")
    return float(np.mean(np.std(means, axis=1, ddof=ddof) / centre))


# ------------------------------------------------------------------------------------------- SNR
def snr(signal_value: float, noise_value: float) -> float:
    """signal / noise; zero or undefined noise raises instead of returning inf."""
    if np.isnan(signal_value) or np.isnan(noise_value):
        raise ValueError(f"SNR undefined: signal={signal_value}, noise={noise_value}")
    if noise_value <= 0:
        raise ValueError(f"SNR undefined: noise is {noise_value} (constant scores over the noise window?)")
    return float(signal_value) / float(noise_value)


NoiseSource = Literal["checkpoints", "seeds", "items"]


def snr_table(
    final: ScoreTable,
    noise: ScoreTable,
    source: NoiseSource = "checkpoints",
    n: int = 30,
    ddof: int = PAPER_DDOF,
    measure: str = "rel_dispersion",
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per benchmark of `final`: signal, noise, snr, the noise source, and a note.

    `final`: the population (competitors) on benchmarks; replicates, if any, are averaged.
    `noise` (replicate axis = the noise dimension), by `source`:
      - "checkpoints": competitors are runs, replicates their checkpoints in step order; the last
        `n` observed checkpoints of each run give its relative std, averaged over runs;
      - "seeds": competitors are configurations, replicates their seed runs' final scores;
      - "items": competitors are models, replicates per-item scores; bootstrap item noise.
    A benchmark whose numbers are degenerate gets NaN and the reason in `note`.
    """
    if source not in ("checkpoints", "seeds", "items"):
        raise ValueError(f"unknown noise source {source!r}; use checkpoints, seeds or items")
    if not noise.has_replicates:
        raise ValueError("noise table needs a replicate axis (checkpoints, seeds or items)")
    label = {"checkpoints": f"checkpoints (last {n}, ddof={ddof})", "seeds": f"seeds (ddof={ddof})",
             "items": f"item bootstrap ({n_boot} draws)"}[source]
    means = final.cell_means()
    rows = []
    for j, bench in enumerate(final.benchmarks):
        row = dict(benchmark=bench, signal=np.nan, noise=np.nan, snr=np.nan, noise_source=label, note="")
        try:
            population = means[:, j]
            row["n_models"] = int(np.sum(~np.isnan(population)))
            row["signal"] = signal(population[~np.isnan(population)], measure)
            if bench not in noise.benchmarks:
                raise ValueError("no noise data for this benchmark")
            reps = noise.values[:, noise.benchmarks.index(bench), :]
            row["noise"] = _noise_of(reps, source, n, ddof, n_boot, seed)
            row["snr"] = snr(row["signal"], row["noise"])
        except ValueError as err:
            row["note"] = str(err)
        rows.append(row)
    cols = ["benchmark", "signal", "noise", "snr", "noise_source", "n_models", "note"]
    return pd.DataFrame(rows).reindex(columns=cols)


def _noise_of(reps: np.ndarray, source: str, n: int, ddof: int, n_boot: int, seed: int) -> float:
    """Noise of one benchmark from its (competitors, replicates) block; NaN-padding is skipped."""
    observed = [r[~np.isnan(r)] for r in reps]
    observed = [r for r in observed if r.size]
    if not observed:
        raise ValueError("no noise observations")
    if source == "checkpoints":
        return mean_checkpoint_noise(observed, n, ddof)
    if source == "seeds":
        return float(np.mean([relative_std(r, ddof) for r in observed]))
    keep = ~np.all(np.isnan(reps), axis=0)
    return bootstrap_item_noise(reps[:, keep], n_boot, seed, ddof)


# -------------------------------------------------------------------------- checkpoint averaging
def rolling_average(curve, n: int = 5) -> np.ndarray:
    """Trailing mean of each checkpoint with the n - 1 before it: the score a user would report at
    every step if they always averaged the last n checkpoints. Its first n - 1 points are dropped."""
    if n < 1:
        raise ValueError(f"rolling average: n must be >= 1, got {n}")
    x = _clean(curve, "rolling average", n)
    # each window summed on its own: a running cumsum would leave a constant curve ~1e-16 of fake noise
    return np.lib.stride_tricks.sliding_window_view(x, n).mean(axis=1)


def average_checkpoints(curves: ScoreTable, n: int = 5) -> tuple[ScoreTable, ScoreTable]:
    """Checkpoint averaging (paper 5.2): (final, curves) with each run's curve replaced by its
    `rolling_average` over n checkpoints (replicates in step order, NaN padding skipped) and each
    final score by the mean of its last n checkpoints (the averaged curve's last point).

    Cells with fewer than n observed checkpoints become NaN (missing), not a shorter average.
    """
    if not curves.has_replicates:
        raise ValueError("checkpoint averaging needs a replicate axis of checkpoints")
    if n < 1:
        raise ValueError(f"checkpoint averaging: n must be >= 1, got {n}")
    shape = curves.values.shape
    rolled = np.full((shape[0], shape[1], max(shape[2] - n + 1, 1)), np.nan)
    final = np.full(shape[:2], np.nan)
    for idx in np.ndindex(*shape[:2]):
        cell = curves.values[idx]
        cell = cell[~np.isnan(cell)]
        if cell.size >= n:
            averaged = rolling_average(cell, n)
            rolled[idx][: averaged.size] = averaged
            final[idx] = averaged[-1]
    return tuple(ScoreTable(curves.competitors, curves.benchmarks, values, curves.higher_is_better)
                 for values in (final, rolled))


# -------------------------------------------------------------------------------- bits per byte
LN2 = float(np.log(2.0))


def bits_per_byte(logprob, n_bytes, aggregate: Literal["items", "corpus"] = "items") -> float:
    """Bits per UTF-8 byte of the correct continuation: -sum(log p, nats) / (bytes * ln 2).

    "items" averages the per-item BPB (OLMo's downstream BPB, the paper's BPB metric); "corpus"
    divides total nats by total bytes (perplexity-style corpora). Lower is better.
    """
    lp = np.atleast_1d(np.asarray(logprob, dtype=float))
    nb = np.atleast_1d(np.asarray(n_bytes, dtype=float))
    if lp.shape != nb.shape or lp.size == 0:
        raise ValueError(f"bits per byte: logprob {lp.shape} and n_bytes {nb.shape} must be equal, non-empty")
    if np.isnan(lp).any() or np.isnan(nb).any():
        raise ValueError("bits per byte: NaN log-probability or byte count")
    if np.any(nb <= 0):
        raise ValueError("bits per byte: every continuation needs a positive byte count")
    if np.any(lp > 0):
        raise ValueError("bits per byte: log-probabilities must be <= 0 (natural-log, summed over tokens)")
    if aggregate == "items":
        return float(np.mean(-lp / (nb * LN2)))
    if aggregate == "corpus":
        return float(-lp.sum() / (nb.sum() * LN2))
    raise ValueError(f"bits per byte: aggregate must be 'items' or 'corpus', got {aggregate!r}")


# --------------------------------------------------------------------------- decision accuracy
TiePolicy = Literal["drop", "half", "code"]


def decision_accuracy(
    small,
    large,
    small_higher_is_better: bool = True,
    large_higher_is_better: bool = True,
    ties: TiePolicy = "drop",
) -> float:
    """Share of model pairs ordered the same by `small` (cheap experiments) and `large` (target).

    Entries are aligned: position i is the same recipe at both scales. Directions let a
    lower-is-better metric (BPB) at one scale predict a higher-is-better one at the other.
    Ties (the paper assumes none):
      - "drop" (default): pairs tied at either scale carry no decision and are left out;
      - "half": a pair tied at either scale scores 0.5, as a coin flip would;
      - "code": the released code's `decision_acc_fast`: agreement iff (s_i > s_j) == (t_i > t_j)
        for i < j in input order, so ties are scored by input order.
    Without ties all three equal (Kendall tau + 1) / 2.
    """
    s = _clean(small, "decision accuracy (small)", 2) * (1.0 if small_higher_is_better else -1.0)
    t = _clean(large, "decision accuracy (large)", 2) * (1.0 if large_higher_is_better else -1.0)
    if s.size != t.size:
        raise ValueError(f"decision accuracy: {s.size} small scores vs {t.size} large scores")
    i, j = np.triu_indices(s.size, k=1)
    if ties == "code":
        return float(np.mean((s[i] > s[j]) == (t[i] > t[j])))
    ds, dt = np.sign(s[i] - s[j]), np.sign(t[i] - t[j])
    tied = (ds == 0) | (dt == 0)
    agree = (ds == dt) & ~tied
    if ties == "half":
        return float(np.mean(np.where(tied, 0.5, agree)))
    if ties == "drop":
        if tied.all():
            raise ValueError("decision accuracy: every pair is tied at one scale; nothing to decide")
        return float(np.mean(agree[~tied]))
    raise ValueError(f"unknown tie policy {ties!r}; use drop, half or code")
