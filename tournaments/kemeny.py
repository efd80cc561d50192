"""Kemeny-Young: the ranking that agrees with the most per-benchmark pairwise preferences.

Maximises sum over (i placed above j) of w[i, j], where w[i, j] counts the benchmarks on which i
beats j (ties half each), which is the same as minimising the total Kendall distance to the
per-benchmark rankings. NP-hard in general: small fields are solved exactly by dynamic programming
over subsets, larger ones by insertion local search started from Borda (a local optimum; the note
on the result says which one you got).
"""

from __future__ import annotations

import numpy as np

from tournaments.aggregate import borda
from tournaments.pairwise import table_battles
from tournaments.ranking import Ranking
from tournaments.table import ScoreTable

EXACT_LIMIT = 16  # 2^16 states x 16 rows of int32: ~4 MB and well under a second
HARD_LIMIT = 22   # beyond this the subset tables no longer fit in memory


def kemeny(table: ScoreTable, exact_max: int = EXACT_LIMIT, max_sweeps: int = 100) -> Ranking:
    """Kemeny ranking; exact when the field has at most `exact_max` competitors."""
    if exact_max > HARD_LIMIT:
        raise ValueError(f"exact Kemeny is limited to {HARD_LIMIT} competitors, got exact_max={exact_max}")
    weights = table_battles(table)
    n = table.n_competitors
    if n <= exact_max:
        order = kemeny_exact(weights)
        how = f"exact (dynamic programming over subsets, {n} competitors)"
    else:
        start = np.argsort(-borda(table).scores, kind="stable")
        order, sweeps, converged = kemeny_local_search(weights, start, max_sweeps)
        state = "converged" if converged else f"stopped at max_sweeps={max_sweeps}"
        how = f"local search from Borda (insertion moves, {sweeps} sweep(s), {state}); not proven optimal"
    scores = np.empty(n)
    scores[order] = np.arange(n, 0, -1, dtype=float)
    agreement = kemeny_agreement(weights, order)
    params = {"exact": n <= exact_max, "agreement": agreement, "exact_max": exact_max}
    return Ranking("kemeny", table.competitors, scores, params=params, notes=(how,))


def kemeny_agreement(weights: np.ndarray, order: np.ndarray) -> float:
    """Sum of w[i, j] over pairs with i placed above j: the quantity Kemeny maximises."""
    w = np.asarray(weights, dtype=float)[np.ix_(order, order)]
    return float(np.triu(w, 1).sum())


def kemeny_exact(weights: np.ndarray) -> np.ndarray:
    """Optimal order (indices, best first) by DP over the set S of competitors already placed.

    best[S + v] = max over v of best[S] + sum over u outside S + v of w[v, u]: placing v next puts
    it above everyone not yet placed. Ties between optimal orders go to the lowest index first.
    """
    w2 = np.rint(2.0 * np.asarray(weights, dtype=float)).astype(np.int64)  # half-points -> integers
    n = w2.shape[0]
    if n == 0:
        return np.zeros(0, dtype=int)
    full = 1 << n
    # inside[v, S] = sum of w2[v, u] for u in S, built by adding the top bit of S
    inside = np.zeros((n, full), dtype=np.int64 if n > 16 else np.int32)
    for bit in range(n):
        lo = 1 << bit
        inside[:, lo: 2 * lo] = inside[:, :lo] + w2[:, bit][:, None]
    total = w2.sum(axis=1)
    best = np.full(full, -1, dtype=np.int64)
    best[0] = 0
    last = np.zeros(full, dtype=np.int8)
    states = np.arange(full)
    size = np.bitwise_count(states) if hasattr(np, "bitwise_count") else np.array([bin(s).count("1") for s in states])
    for k in range(1, n + 1):
        layer = states[size == k]
        for v in range(n - 1, -1, -1):  # lowest v written last wins ties below via >=
            has = layer[(layer >> v) & 1 == 1]
            prev = has ^ (1 << v)
            gain = best[prev] + total[v] - inside[v, prev]
            improve = gain >= best[has]
            best[has[improve]] = gain[improve]
            last[has[improve]] = v
    order = []
    state = full - 1
    while state:
        v = int(last[state])
        order.append(v)
        state ^= 1 << v
    return np.array(order[::-1], dtype=int)


def kemeny_local_search(
    weights: np.ndarray, start: np.ndarray, max_sweeps: int = 100
) -> tuple[np.ndarray, int, bool]:
    """Improve `start` by moving one competitor at a time to its best position.

    Moving v from position i up to j < i gains sum over the passed competitors u of
    (w[v, u] - w[u, v]); moving it down loses the same sum. A sweep tries every competitor once;
    stop when a sweep finds no strict improvement. Returns (order, sweeps, converged).
    """
    w = np.asarray(weights, dtype=float)
    net = w - w.T
    order = np.array(start, dtype=int)
    n = len(order)
    for sweep in range(1, max_sweeps + 1):
        improved = False
        for v in order.copy():
            i = int(np.flatnonzero(order == v)[0])
            d = net[v, order]
            prefix = np.concatenate([[0.0], np.cumsum(d)])  # prefix[p] = sum of d[:p]
            gains = np.empty(n)
            gains[:i] = prefix[i] - prefix[:i]            # move up to position j < i
            gains[i] = 0.0
            gains[i + 1:] = -(prefix[i + 2:] - prefix[i + 1])  # move down to position j > i
            j = int(np.argmax(gains))
            if gains[j] > 1e-9:
                order = np.insert(np.delete(order, i), j, v)
                improved = True
        if not improved:
            return order, sweep, True
    return order, max_sweeps, False
