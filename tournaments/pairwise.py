"""Pairwise rankers: head-to-head counts, Copeland, Bradley-Terry (maximum likelihood) and Elo.

A ScoreTable becomes per-benchmark battles (i beats j on benchmark b when its oriented score is
strictly larger; equal scores are a tie worth half to each side). `fit_bradley_terry` takes any win
matrix; the tests feed it judgment records (LLMFAO) to reproduce published leaderboards.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy.signal import convolve
from scipy.special import expit

from tournaments.aggregate import below_and_tied
from tournaments.ranking import Ranking
from tournaments.table import ScoreTable

LOG10 = np.log(10.0)
BLOCK_ELEMENTS = 1 << 22  # pairs compared per block in Copeland: bounds memory (~20 MB) at any field size
BT_DENSE_MAX = 1500  # larger tables fit Bradley-Terry from win totals (`solver="grid"`), no n x n matrix


# --------------------------------------------------------------------------- counts from a table
def pairwise_counts(table: ScoreTable) -> tuple[np.ndarray, np.ndarray]:
    """(wins, ties): wins[i, j] = benchmarks where i strictly beats j; ties[i, j] = equal scores.

    Only benchmarks where both have a value count (any comparison with NaN is False). The
    diagonal is zero.
    """
    x = table.oriented()
    n = table.n_competitors
    wins = np.zeros((n, n))
    ties = np.zeros((n, n))
    for column in x.T:
        wins += column[:, None] > column[None, :]
        ties += column[:, None] == column[None, :]
    np.fill_diagonal(ties, 0.0)
    return wins, ties


def copeland(table: ScoreTable) -> Ranking:
    """Copeland: pairwise-majority wins minus losses. Condorcet-consistent and scale-free.

    Exact at any size: the majority between i and j needs their whole score vectors, so the pairs
    are compared block by block (O(n^2 b) time, O(n) memory per block row) instead of materialising
    the n x n win matrix; 10,000 competitors take about a second and ~20 MB.
    """
    x = table.oriented()
    n, n_bench = x.shape
    scores = np.zeros(n)
    dtype = np.int16 if n_bench < 2**15 else np.int64
    rows = max(1, BLOCK_ELEMENTS // max(n, 1))
    columns = [np.ascontiguousarray(c) for c in x.T]
    for lo in range(0, n, rows):
        block = x[lo: lo + rows]
        margin = np.zeros((len(block), n), dtype=dtype)  # benchmarks won minus lost, NaN counts neither
        for j, column in enumerate(columns):
            mine = block[:, j, None]
            margin += mine > column
            margin -= mine < column
        scores[lo: lo + rows] = np.count_nonzero(margin > 0, axis=1) - np.count_nonzero(margin < 0, axis=1)
    return Ranking("copeland", table.competitors, scores)


# --------------------------------------------------------------------------- Bradley-Terry
def fit_bradley_terry(wins: np.ndarray, l2: float = 1e-4, tol: float = 1e-10, max_iter: int = 100) -> np.ndarray:
    """Maximum-likelihood log-strengths beta for P(i beats j) = sigmoid(beta_i - beta_j).

    `wins[i, j]` is the (possibly fractional) number of times i beat j; a tie contributes 0.5 to
    both cells, which is the weighted-logistic form of FastChat's tie handling. The ridge `l2`
    (> 0) keeps undefeated or winless competitors finite and the Hessian invertible. Damped
    Newton (Hessian = a weighted graph Laplacian plus the ridge, solved by conjugate gradients)
    converges in a handful of steps; memory is O(n^2), fine for thousands of competitors. The
    result has mean 0.
    """
    if l2 <= 0:
        raise ValueError("l2 must be positive (it makes the maximum likelihood finite and unique)")
    wins = np.asarray(wins, dtype=float)
    n = wins.shape[0]
    if n == 0:
        return np.zeros(0)
    games = wins + wins.T
    won, played = wins.sum(axis=1), games.sum(axis=1)
    beta = np.log((won + 0.5) / (played - won + 0.5))  # empirical log-odds: a close start
    beta -= beta.mean()

    def strengths(b: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """exp(beta - max) and the pairwise sums e_i + e_j; exp/log beat tanh/logaddexp ~4x here."""
        top = float(b.max())
        e = np.exp(b - top)
        return e, np.maximum(e[:, None] + e[None, :], 1e-300), top

    def objective(b: np.ndarray) -> float:
        # -sum w_ij log sigmoid(b_i - b_j) = sum w_ij log(e^b_i + e^b_j) - sum_i won_i b_i
        _, pair_sum, top = strengths(b)
        return float(np.sum(wins * (np.log(pair_sum) + top)) - won @ b + 0.5 * l2 * b @ b)

    current = objective(beta)
    for _ in range(max_iter):
        e, pair_sum, _ = strengths(beta)
        s = e[:, None] / pair_sum  # sigmoid(beta_i - beta_j)
        grad = np.sum(games * s, axis=1) - won + l2 * beta
        curvature = games * s * (1.0 - s)
        # inexact Newton: a loose linear solve far from the optimum, a tight one near it
        rtol = min(0.1, float(np.sqrt(np.linalg.norm(grad))))
        step = _solve_laplacian(curvature, curvature.sum(axis=1) + l2, grad, rtol)
        size = 1.0
        while True:  # backtracking keeps every step a descent step
            candidate = beta - size * step
            value = objective(candidate)
            if value <= current or size < 1e-8:
                break
            size *= 0.5
        beta, current = candidate, value
        if np.max(np.abs(size * step)) < tol:
            break
    return beta - beta.mean()


def _solve_laplacian(off: np.ndarray, diag: np.ndarray, rhs: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """Solve (diag(diag) - off) x = rhs by Jacobi-preconditioned conjugate gradients.

    The Newton matrix is a ridge-shifted weighted Laplacian, symmetric positive definite; on the
    dense comparison graphs a score table produces CG needs few matrix-vector products, which is
    far cheaper than factorising the n x n matrix.
    """
    return _conjugate_gradients(lambda p: diag * p - off @ p, diag, rhs, rtol)


def _conjugate_gradients(
    matvec: Callable[[np.ndarray], np.ndarray], diag: np.ndarray, rhs: np.ndarray, rtol: float
) -> np.ndarray:
    """Jacobi-preconditioned CG for a symmetric positive definite operator given as a product."""
    x = np.zeros_like(rhs)
    r = rhs.copy()
    z = r / diag
    p = z.copy()
    rz = r @ z
    stop = rtol * max(np.linalg.norm(rhs), 1e-300)
    for _ in range(max(10, 2 * len(rhs))):
        if np.linalg.norm(r) <= stop:
            break
        ap = matvec(p)
        alpha = rz / (p @ ap)
        x += alpha * p
        r -= alpha * ap
        z = r / diag
        rz_next = r @ z
        p = z + (rz_next / rz) * p
        rz = rz_next
    return x


def _bt_total_notes(won: np.ndarray, lost: np.ndarray, competitors: Sequence[str], l2: float) -> tuple[str, ...]:
    """Say which ratings exist only because of the ridge (Arena's advice: regularise and report), from
    per-competitor totals: games won and lost (ties half each)."""
    played = (won + lost) > 0
    undefeated = [c for c, l, p in zip(competitors, lost, played) if p and l == 0]
    winless = [c for c, w, p in zip(competitors, won, played) if p and w == 0]
    notes = []
    if undefeated or winless:
        notes.append(
            f"infinite MLE without the ridge (l2={l2:g}): {len(undefeated)} undefeated, {len(winless)} winless "
            f"competitor(s): {', '.join((undefeated + winless)[:5])}"
        )
    if not played.all():
        notes.append(f"{int((~played).sum())} competitor(s) without games: rating is the ridge's prior (the mean)")
    return tuple(notes)


def _elo_scale(beta: np.ndarray) -> np.ndarray:
    """Natural-log strengths on the familiar Elo scale (400 points = 10x odds), centred at 1000."""
    return 1000.0 + 400.0 * beta / LOG10


def table_battles(table: ScoreTable) -> np.ndarray:
    """Win matrix (ties half each) from per-benchmark outcomes: the input Bradley-Terry sees."""
    wins, ties = pairwise_counts(table)
    return wins + 0.5 * ties


def bradley_terry(table: ScoreTable, l2: float = 1e-4, solver: str = "auto") -> Ranking:
    """Bradley-Terry MLE on per-benchmark battles of a ScoreTable, ratings on the Elo scale.

    `solver="dense"` fits the n x n win matrix; `"grid"` fits the same likelihood from win totals and
    the presence pattern (`fit_bradley_terry_totals`) in O(n) memory; `"auto"` takes dense up to
    BT_DENSE_MAX competitors. Both reach the same maximum (within 1e-6 Elo points in the tests).
    """
    if solver not in ("auto", "dense", "grid"):
        raise ValueError(f"solver must be 'auto', 'dense' or 'grid', got {solver!r}")
    if solver == "dense" or (solver == "auto" and table.n_competitors <= BT_DENSE_MAX):
        wins = table_battles(table)
        beta, won, lost, used = fit_bradley_terry(wins, l2), wins.sum(axis=1), wins.T.sum(axis=1), "dense"
    else:
        x = table.oriented()
        presence = ~np.isnan(x)
        below, tied = below_and_tied(x)
        won = np.sum(below + 0.5 * tied, axis=1)
        lost = presence @ (presence.sum(axis=0) - 1.0) - won
        beta, used = fit_bradley_terry_totals(won, presence, l2), "grid"
    params = {"l2": l2, "scale": 400, "centre": 1000, "solver": used}
    return Ranking("bt", table.competitors, _elo_scale(beta), params=params,
                   notes=_bt_total_notes(won, lost, table.competitors, l2))


def fit_bradley_terry_totals(
    won: np.ndarray, presence: np.ndarray, l2: float = 1e-4, tol: float = 1e-10, max_iter: int = 100
) -> np.ndarray:
    """`fit_bradley_terry` for battles from a score table, without the n x n win matrix.

    On a table every pair plays once per benchmark both have, so the log-likelihood
    sum_(i<j) games_ij log(e^b_i + e^b_j) - sum_i won_i b_i depends on the data only through each
    competitor's win total `won` (ties half) and `presence` (n, benchmarks): games = P P^T. The pair
    sums over everyone present on a benchmark are kernel sums of b_i - b_j, evaluated in O(n) per
    distinct presence column by `_GridPairSums`. Damped Newton as in the dense fit, with the
    gradient norm as merit (the objective itself is a sum of n^2 logs). Mean-zero result.
    """
    if l2 <= 0:
        raise ValueError("l2 must be positive (it makes the maximum likelihood finite and unique)")
    won = np.asarray(won, dtype=float)
    presence = np.asarray(presence, dtype=bool)
    n = len(won)
    if n == 0:
        return np.zeros(0)
    columns, counts = np.unique(presence.T, axis=0, return_counts=True)  # identical columns play alike
    keep = columns.sum(axis=1) >= 2
    columns, counts = columns[keep], counts[keep].astype(float)
    own = counts @ columns  # benchmarks a competitor is on: its self-pairs, taken out of every sum
    played = counts @ (columns * (columns.sum(axis=1, keepdims=True) - 1.0))
    beta = np.log((won + 0.5) / (played - won + 0.5))
    beta -= beta.mean()

    def gradient(b: np.ndarray) -> tuple[np.ndarray, "_GridPairSums"]:
        sums = _GridPairSums(b, columns, counts)
        return sums(expit, np.ones(n)) - 0.5 * own - won + l2 * b, sums

    grad, sums = gradient(beta)
    norm = float(np.linalg.norm(grad))
    for _ in range(max_iter):
        diag = sums(_logistic_slope, np.ones(n)) - 0.25 * own + l2
        rtol = min(0.1, float(np.sqrt(norm)))
        step = _conjugate_gradients(
            lambda v, s=sums, d=diag: d * v - s(_logistic_slope, v) + 0.25 * own * v, diag, grad, rtol)
        size = 1.0
        while True:  # backtracking keeps every step a descent step for |gradient|
            candidate = beta - size * step
            cand_grad, cand_sums = gradient(candidate)
            cand_norm = float(np.linalg.norm(cand_grad))
            if cand_norm <= norm or size < 1e-8:
                break
            size *= 0.5
        beta, grad, sums, norm = candidate, cand_grad, cand_sums, cand_norm
        if np.max(np.abs(size * step)) < tol:
            break
    return beta - beta.mean()


def _logistic_slope(t: np.ndarray) -> np.ndarray:
    """sigma'(t) = sigma(t) sigma(-t): the curvature of one Bradley-Terry game."""
    return expit(t) * expit(-t)


class _GridPairSums:
    """sum over j in column c of k(b_i - b_j) v_j, for each presence column c, in O(n + G log G).

    Both ends of every pair are interpolated onto a uniform grid (local Lagrange, ORDER points,
    spacing STEP), the grid-to-grid sums are one convolution with the kernel sampled at the grid
    offsets, and the result is interpolated back. The Bradley-Terry kernels are analytic in the
    strip |Im t| < pi, so the interpolation error is ~(STEP/pi)^ORDER: below 1e-13 per pair.
    """

    ORDER = 8
    STEP = 1.0 / 32.0

    def __init__(self, beta: np.ndarray, columns: np.ndarray, counts: np.ndarray) -> None:
        p, h = self.ORDER, self.STEP
        offsets = np.arange(-p // 2 + 1, p // 2 + 1)
        origin = np.floor(beta.min() / h) - p  # grid nodes sit at multiples of h, so the grid is stable
        u = beta / h - origin
        cell = np.floor(u).astype(np.int64)
        frac = u - cell
        self.nodes = cell[:, None] + offsets[None, :]
        self.size = int(self.nodes.max()) + 1
        weights = np.ones((len(beta), p))
        for a, m in enumerate(offsets):
            for other in offsets[offsets != m]:
                weights[:, a] *= (frac - other) / (m - other)
        self.weights = weights
        self.columns, self.counts = columns, counts
        self.lags = h * np.arange(-(self.size - 1), self.size)
        self._kernels: dict = {}

    def __call__(self, kernel: Callable[[np.ndarray], np.ndarray], charges: np.ndarray) -> np.ndarray:
        if kernel not in self._kernels:
            self._kernels[kernel] = kernel(self.lags)
        sampled, g = self._kernels[kernel], self.size
        out = np.zeros(len(charges))
        for members, count in zip(self.columns, self.counts):
            nodes, weights = self.nodes[members], self.weights[members]
            grid = np.bincount(nodes.ravel(), (weights * charges[members, None]).ravel(), minlength=g)
            at_nodes = convolve(grid, sampled)[g - 1: 2 * g - 1]
            out[members] += count * np.sum(weights * at_nodes[nodes], axis=1)
        return out


# --------------------------------------------------------------------------- Elo
def _elo_step(ratings: np.ndarray, ra: np.ndarray, rb: np.ndarray, y: np.ndarray, k, rows: np.ndarray) -> None:
    """Apply one set of simultaneous games to `ratings` in place.

    Every competitor appears at most once per row, so buffered fancy-index updates are exact. Flat
    indices into the C-ordered array: 2-D fancy indexing costs about twice as much.
    """
    flat = ratings.reshape(-1)
    ia, ib = rows * ratings.shape[1] + ra, rows * ratings.shape[1] + rb
    expected = 1.0 / (1.0 + 10.0 ** ((flat[ib] - flat[ia]) / 400.0))
    change = k * (y - expected)
    flat[ia] += change
    flat[ib] -= change


def elo(
    table: ScoreTable,
    k: float = 4.0,
    n_orders: int = 20,
    seed: int = 0,
    order: str = "random",
    max_rounds: int | None = 100,
) -> Ranking:
    """Online Elo over per-benchmark battles, averaged over random battle orders.

    Deliberately order-sensitive (the foil to Bradley-Terry). Each order plays benchmarks one
    after another (shuffled, or the table's order with `order="given"`). Inside a benchmark the
    games are round-robin rounds (no one plays twice per round, so a round's games commute) with
    shuffled seating and round order; all pairs meet when the field has at most max_rounds + 1
    competitors, otherwise each competitor meets `max_rounds` random distinct opponents per
    benchmark, which keeps large tables linear in the field size. All orders advance together as
    rows of one array. FastChat constants: K=4, initial 1000, scale 400, base 10. The interval is
    the 2.5/97.5 % spread over orders.
    """
    if order not in ("random", "given"):
        raise ValueError(f"order must be 'random' or 'given', got {order!r}")
    if n_orders < 1:
        raise ValueError("n_orders must be at least 1")
    n = table.n_competitors
    x = np.vstack([table.oriented(), np.full((1, table.n_benchmarks), np.nan)])  # row n: phantom seat
    by_bench = np.ascontiguousarray(x.T).reshape(-1)  # x[seat, b] at b * (n + 1) + seat
    rng = np.random.default_rng(seed)
    ratings = np.full((n_orders, n + 1), 1000.0)
    size = n + (n % 2)  # with an odd field the phantom seat gives one competitor a bye per round
    n_rounds = size - 1 if size >= 2 else 0
    rows = np.arange(n_orders)[:, None]
    if order == "given":
        bench_order = np.tile(np.arange(table.n_benchmarks), (n_orders, 1))
    else:
        bench_order = np.stack([rng.permutation(table.n_benchmarks) for _ in range(n_orders)])
    for step in range(table.n_benchmarks):
        bench = bench_order[:, step][:, None] * (n + 1)
        seats = np.stack([rng.permutation(size) for _ in range(n_orders)])
        for r in rng.permutation(n_rounds)[:max_rounds]:
            pairs = _round_robin_round(size, int(r))
            pa, pb = seats[:, pairs[:, 0]], seats[:, pairs[:, 1]]
            va, vb = by_bench[bench + pa], by_bench[bench + pb]
            played = ~np.isnan(va) & ~np.isnan(vb)
            y = (va > vb) + 0.5 * (va == vb)  # 1, 0 or 0.5; a NaN pair's 0 is multiplied by k * 0 below
            _elo_step(ratings, pa, pb, y, k * played, rows)
    ratings = ratings[:, :n]
    scores = ratings.mean(axis=0)
    low, high = (np.quantile(ratings, [0.025, 0.975], axis=0) if n_orders > 1 else (None, None))
    params = {"k": k, "n_orders": n_orders, "seed": seed, "order": order, "initial": 1000, "scale": 400,
              "max_rounds": max_rounds}
    notes = ["mean rating over random battle orders; interval = order dispersion, not a sampling CI"]
    if max_rounds is not None and n_rounds > max_rounds:
        notes.append(f"large field: {max_rounds} of {n_rounds} round-robin rounds played per benchmark")
    return Ranking("elo", table.competitors, scores, low, high, params, tuple(notes))


def _round_robin_round(size: int, r: int) -> np.ndarray:
    """Round r of the circle-method schedule for an even `size`: size/2 pairs x 2 seats.

    Built on demand: the whole schedule is (size-1) x size/2 pairs, 800 MB at 10,000 competitors.
    """
    rotated = np.concatenate([[0], np.roll(np.arange(1, size), r)])
    return np.stack([rotated[: size // 2], rotated[size // 2:][::-1]], axis=1)
