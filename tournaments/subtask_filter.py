"""Subtask filtering by SNR (paper section 5.1): keep the subtasks that separate models.

A benchmark made of many subtasks (MMLU's 57) can gain SNR and decision accuracy by dropping
subtasks whose own SNR is low. The paper sorts subtasks by SNR and reports each top-k prefix; it is
not a greedy search on the aggregate. `snr_filter` is the same idea applied to a ScoreTable before
ranking.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from tournaments.signal_noise import PAPER_DDOF, decision_accuracy, mean_checkpoint_noise, signal, snr
from tournaments.table import ScoreTable


def rank_by_snr(snr_by_subtask: Mapping[str, float]) -> list[str]:
    """Subtask names by descending SNR; ties keep the mapping's order; NaN SNRs are left out."""
    finite = [(name, float(v)) for name, v in snr_by_subtask.items() if not np.isnan(v)]
    return [name for name, _ in sorted(finite, key=lambda item: -item[1])]


def _weights(order: Sequence[str], weights: Mapping[str, float] | None) -> np.ndarray:
    w = np.ones(len(order)) if weights is None else np.array([float(weights[s]) for s in order])
    if np.any(w <= 0) or np.isnan(w).any():
        raise ValueError("subtask weights must be positive numbers")
    return w / w.sum()


def _aggregate(table: ScoreTable, subtasks: Sequence[str], w: np.ndarray, per_checkpoint: bool = False) -> np.ndarray:
    """Weighted mean over subtasks: (competitors,), or (competitors, checkpoints) when
    `per_checkpoint`; NaN stays NaN."""
    sub = table.select(benchmarks=list(subtasks))
    if len(set(sub.higher_is_better.tolist())) > 1:
        raise ValueError("cannot average subtasks with different directions")
    values = sub.values if per_checkpoint else sub.cell_means()
    return np.tensordot(np.moveaxis(values, 1, -1), w, axes=([-1], [0]))


def prefix_curve(
    order: Sequence[str],
    final: ScoreTable,
    curves: ScoreTable,
    n: int = 5,
    ddof: int = PAPER_DDOF,
    measure: str = "rel_dispersion",
    small: ScoreTable | None = None,
    large: ScoreTable | None = None,
    weights: Mapping[str, float] | None = None,
    ties: str = "drop",
) -> pd.DataFrame:
    """Signal, noise, SNR (and decision accuracy) of the aggregate of each prefix order[:k].

    `final`: population x subtasks (signal). `curves`: runs x subtasks x checkpoints, the
    checkpoint axis aligned across subtasks (noise of the aggregate curve, last n, averaged over
    runs). `small`/`large`: the same recipes (matched by competitor name) at two scales, for
    decision accuracy. The aggregate is the mean over subtasks, weighted by `weights` (e.g. item
    counts, giving the instance-level mean the paper uses) or equal. A prefix whose numbers are
    degenerate gets NaN and the reason in `note`.
    """
    if not curves.has_replicates:
        raise ValueError("curves need a checkpoint (replicate) axis")
    if (small is None) != (large is None):
        raise ValueError("decision accuracy needs both `small` and `large`")
    if small is not None and large is not None:
        large = large.select(competitors=list(small.competitors))
    rows = []
    for k in range(1, len(order) + 1):
        chosen = list(order[:k])
        row = dict(k=k, added=chosen[-1], signal=np.nan, noise=np.nan, snr=np.nan, decision_accuracy=np.nan, note="")
        try:
            w = _weights(chosen, weights)
            row["signal"] = signal(_aggregate(final, chosen, w), measure)
            runs = _aggregate(curves, chosen, w, per_checkpoint=True)
            row["noise"] = mean_checkpoint_noise([r[~np.isnan(r)] for r in runs], n, ddof)
            row["snr"] = snr(row["signal"], row["noise"])
            if small is not None and large is not None:
                row["decision_accuracy"] = decision_accuracy(
                    _aggregate(small, chosen, w), _aggregate(large, chosen, w), ties=ties
                )
        except ValueError as err:
            row["note"] = str(err)
        rows.append(row)
    return pd.DataFrame(rows)


def random_order_baseline(
    subtasks: Sequence[str], n_shuffles: int = 10, seed: int = 0, **curve_args
) -> pd.DataFrame:
    """Mean and std over random subtask orders of each prefix's SNR and decision accuracy (the
    paper's baseline, 10 shuffles), so a top-k gain can be told apart from 'fewer subtasks'."""
    rng = np.random.default_rng(seed)
    runs = [prefix_curve(list(rng.permutation(list(subtasks))), **curve_args) for _ in range(n_shuffles)]
    stacked = pd.concat(runs)
    out = stacked.groupby("k")[["snr", "decision_accuracy"]].agg(["mean", "std"])
    out.columns = [f"{metric}_{stat}" for metric, stat in out.columns]
    return out.reset_index()


def snr_filter(
    table: ScoreTable, snr: Mapping[str, float], k: int | None = None, min_snr: float | None = None
) -> tuple[ScoreTable, list[tuple[str, float, str]]]:
    """Drop low-SNR benchmarks from `table` before ranking; returns (kept table, dropped).

    `k` keeps the k highest-SNR benchmarks (ties broken by table order); `min_snr` keeps those with
    SNR >= min_snr; both may be given. A benchmark with no SNR in the mapping, or a NaN SNR, is
    dropped too: without an estimate it cannot be vouched for. `dropped` lists
    (benchmark, snr, reason); kept benchmarks stay in table order. Keeping nothing raises.
    """
    if k is None and min_snr is None:
        raise ValueError("snr_filter needs k or min_snr")
    if k is not None and k < 1:
        raise ValueError(f"snr_filter: k must be >= 1, got {k}")
    if min_snr is not None and np.isnan(min_snr):
        raise ValueError("snr_filter: min_snr is NaN")
    dropped: list[tuple[str, float, str]] = []
    candidates = []
    for bench in table.benchmarks:
        value = float(snr.get(bench, np.nan))
        if bench not in snr:
            dropped.append((bench, value, "no SNR estimate"))
        elif np.isnan(value):
            dropped.append((bench, value, "SNR undefined (NaN)"))
        elif min_snr is not None and value < min_snr:
            dropped.append((bench, value, f"SNR {value:.3g} < min {min_snr:.3g}"))
        else:
            candidates.append(bench)
    if k is not None:
        ordered = rank_by_snr({b: snr[b] for b in candidates})
        for rank, bench in enumerate(ordered[k:], start=k + 1):
            dropped.append((bench, float(snr[bench]), f"SNR rank {rank}, outside top {k}"))
        candidates = [b for b in candidates if b in set(ordered[:k])]
    if not candidates:
        raise ValueError(f"snr_filter kept no benchmark; dropped: {', '.join(b for b, _, _ in dropped)}")
    return table.select(benchmarks=candidates), dropped
