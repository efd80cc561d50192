"""Subtask filtering by SNR (paper section 5.1): keep the subtasks that separate models.

A benchmark made of many subtasks (MMLU's 57) can gain SNR and decision accuracy by dropping
subtasks whose own SNR is low. The paper sorts subtasks by SNR and reports each top-k prefix; it is
not a greedy search on the aggregate. `snr_filter` is that idea applied to a ScoreTable before
ranking (the paper's prefix curves, which check it on Pythia's MMLU, live with that test in tests/oracles.py).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from tournaments.table import ScoreTable


def rank_by_snr(snr_by_subtask: Mapping[str, float]) -> list[str]:
    """Subtask names by descending SNR; ties keep the mapping's order; NaN SNRs are left out."""
    finite = [(name, float(v)) for name, v in snr_by_subtask.items() if not np.isnan(v)]
    return [name for name, _ in sorted(finite, key=lambda item: -item[1])]


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
