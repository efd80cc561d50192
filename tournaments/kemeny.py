"""Kemeny-Young: the ranking that agrees with the most per-benchmark pairwise preferences.

Maximises sum over (i placed above j) of w[i, j], where w[i, j] counts the benchmarks on which i
beats j (ties half each), which is the same as minimising the total Kendall distance to the
per-benchmark rankings. NP-hard in general: small fields are solved exactly by dynamic programming
over subsets, larger ones by insertion local search started from Borda (a local optimum; the note
on the result says which one you got). Past LOCAL_DENSE_MAX competitors the n x n weights and the
O(n^2) sweeps no longer fit the budget, so moves are limited to a window of places and the weights
are computed from the table as needed: a documented approximation, said so in the note.
"""

from __future__ import annotations

import numpy as np

from tournaments.aggregate import borda
from tournaments.pairwise import table_battles
from tournaments.ranking import Ranking
from tournaments.table import ScoreTable

EXACT_LIMIT = 16  # 2^16 states x 16 rows of int32: ~4 MB and well under a second
HARD_LIMIT = 22   # beyond this the subset tables no longer fit in memory
LOCAL_DENSE_MAX = 2000  # n x n weights (32 MB) and full insertion sweeps up to here; windowed beyond
WINDOW_WORK = 2_000_000  # default window past LOCAL_DENSE_MAX: WINDOW_WORK // n places, so a sweep
WINDOW_MIN = 50           # costs about the same at any n (200 places, 6-8 s in all at 10,000 x 6)


def kemeny(
    table: ScoreTable, exact_max: int = EXACT_LIMIT, max_sweeps: int = 100, window: int | None = None
) -> Ranking:
    """Kemeny ranking; exact when the field has at most `exact_max` competitors.

    Larger fields get insertion local search from Borda; over LOCAL_DENSE_MAX competitors (or when
    `window` is given) each move may pass at most `window` competitors (WINDOW_WORK // n, at least
    WINDOW_MIN, by default), which keeps memory O(n) and a sweep O(n window b). `params["search"]`
    ("exact", "local" or "window") and the note say which ran.
    """
    if exact_max > HARD_LIMIT:
        raise ValueError(f"exact Kemeny is limited to {HARD_LIMIT} competitors, got exact_max={exact_max}")
    if window is not None and window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    n = table.n_competitors
    params: dict = {"exact": n <= exact_max, "exact_max": exact_max}
    if n <= exact_max or (n <= LOCAL_DENSE_MAX and window is None):
        weights = table_battles(table)
        if n <= exact_max:
            order, params["search"] = kemeny_exact(weights), "exact"
            how = f"exact (dynamic programming over subsets, {n} competitors)"
        else:
            start = np.argsort(-borda(table).scores, kind="stable")
            order, sweeps, converged = kemeny_local_search(weights, start, max_sweeps)
            state = "converged" if converged else f"stopped at max_sweeps={max_sweeps}"
            how = f"local search from Borda (insertion moves, {sweeps} sweep(s), {state}); not proven optimal"
            params["search"] = "local"
        agreement = kemeny_agreement(weights, order)
    else:
        reach = max(WINDOW_MIN, WINDOW_WORK // max(n, 1)) if window is None else int(window)
        reach = min(reach, max(n - 1, 1))
        start = np.argsort(-borda(table).scores, kind="stable")
        order, sweeps, converged = kemeny_window_search(table, start, reach, max_sweeps)
        state = "converged" if converged else f"stopped at max_sweeps={max_sweeps}"
        how = (f"approximate: local search from Borda with insertion moves of at most {reach} places "
               f"({n} competitors; {sweeps} sweep(s), {state}); not proven optimal, nor a full local optimum")
        agreement = table_agreement(table, order)
        params.update(search="window", window=reach)
    scores = np.empty(n)
    scores[order] = np.arange(n, 0, -1, dtype=float)
    params["agreement"] = agreement
    return Ranking("kemeny", table.competitors, scores, params=params, notes=(how,))


def kemeny_agreement(weights: np.ndarray, order: np.ndarray) -> float:
    """Sum of w[i, j] over pairs with i placed above j: the quantity Kemeny maximises."""
    w = np.asarray(weights, dtype=float)[np.ix_(order, order)]
    return float(np.triu(w, 1).sum())


def table_agreement(table: ScoreTable, order: np.ndarray) -> float:
    """`kemeny_agreement` of `order` straight from the table, O(b n log^2 n) time and O(n) memory.

    Per benchmark: pairs placed above-below with the upper one strictly better, plus half the tied
    pairs (absent cells count nothing), the same half-point sums the weight matrix would give.
    """
    x = table.oriented()[np.asarray(order, dtype=int)]
    total = 0.0
    for column in x.T:
        values = column[~np.isnan(column)]
        _, rank, counts = np.unique(values, return_inverse=True, return_counts=True)
        total += _strict_inversions(rank.ravel()) + 0.5 * float(np.sum(counts * (counts - 1) // 2))
    return total


def _strict_inversions(r: np.ndarray) -> int:
    """Pairs p < q with r[p] > r[q], by bottom-up merge sort: at each level every element of a right
    run counts the larger elements of the left run it merges with (one searchsorted per level)."""
    n = len(r)
    if n < 2:
        return 0
    span = int(r.max()) + 1
    r = np.asarray(r, dtype=np.int64)
    position = np.arange(n)
    total, width = 0, 1
    while width < n:
        block = position // (2 * width)
        right = (position // width) % 2 == 1
        key = block * span + r  # runs of `width` are sorted, so the left runs' keys are sorted overall
        left = key[~right]
        no_larger = np.searchsorted(left, key[right], side="right")
        run_end = np.searchsorted(left, (block[right] + 1) * span, side="left")
        total += int(np.sum(run_end - no_larger))
        r = np.sort(key) - block * span  # merged runs of 2 * width
        width *= 2
    return total


def kemeny_window_search(
    table: ScoreTable, start: np.ndarray, window: int, max_sweeps: int = 100
) -> tuple[np.ndarray, int, bool]:
    """`kemeny_local_search` with moves limited to `window` places, weights taken from the table.

    net[v, u] = benchmarks where v beats u minus those where u beats v (integers, so the gains are
    exact); with window >= n - 1 this makes exactly the moves `kemeny_local_search` makes. A
    competitor that found no move is not re-examined until a move touches its window (it would find
    none again), which makes the late sweeps nearly free without changing a single move.
    """
    order = np.array(start, dtype=int)
    n = len(order)
    placed = np.ascontiguousarray(table.oriented()[order].T)  # benchmarks x places, kept in step with order
    position = np.empty(n, dtype=int)
    position[order] = np.arange(n)
    touched = np.zeros(n, dtype=np.int64)  # per place: the number of the last move that changed it
    settled = np.full(n, -1, dtype=np.int64)  # per competitor: moves made when it last found none
    moves = 0
    for sweep in range(1, max_sweeps + 1):
        improved = False
        for v in order.copy():
            i = int(position[v])
            lo = max(0, i - window)
            if settled[v] >= 0 and touched[lo: i + window + 1].max() <= settled[v]:
                continue
            mine, others = placed[:, i, None], placed[:, lo: i + window + 1]
            d = np.sum(mine > others, axis=0) - np.sum(mine < others, axis=0)
            # passing up over others[t:k] gains prefix[k] - prefix[t]; down over others[k+1:t] gains
            # prefix[k] - prefix[t] too, since d[k] = 0 (itself); so the best move is the first argmin
            prefix = np.concatenate([[0], np.cumsum(d)])
            t, k = int(np.argmin(prefix)), i - lo
            if prefix[k] - prefix[t] > 0:
                j = lo + (t if t <= k else t - 1)
                column = placed[:, i].copy()
                if j < i:  # overlapping slice assignment is safe in numpy (it buffers)
                    order[j + 1: i + 1], placed[:, j + 1: i + 1] = order[j:i], placed[:, j:i]
                else:
                    order[i:j], placed[:, i:j] = order[i + 1: j + 1], placed[:, i + 1: j + 1]
                order[j], placed[:, j] = v, column
                a, b = min(i, j), max(i, j) + 1
                position[order[a:b]] = np.arange(a, b)
                moves += 1
                touched[a:b] = moves
                improved = True
            else:
                settled[v] = moves
        if not improved:
            return order, sweep, True
    return order, max_sweeps, False


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
