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


def below_and_tied(oriented: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: how many other present competitors score strictly lower, and how many score the same.

    One sort per benchmark, O(n log n), so win rates and win totals never need the n x n x benchmarks
    comparison cube (10 GB at 10,000 competitors). Absent cells (NaN) get 0 for both.
    """
    below = np.zeros(oriented.shape, dtype=np.int64)
    tied = np.zeros(oriented.shape, dtype=np.int64)
    for j, column in enumerate(oriented.T):
        present = np.flatnonzero(~np.isnan(column))
        values = column[present]
        ordered = np.sort(values)
        low = np.searchsorted(ordered, values, side="left")
        below[present, j] = low
        tied[present, j] = np.searchsorted(ordered, values, side="right") - low - 1  # not itself
    return below, tied


def win_rate_matrix(table: ScoreTable) -> tuple[np.ndarray, np.ndarray]:
    """Per-benchmark win rates as in HELM: (strictly worse + half of tied others) / (n_b - 1).

    Returns (rates, defined): rates is (competitors, benchmarks); defined marks cells that count,
    i.e. the competitor has a value and at least one other competitor does too.
    """
    x = table.oriented()
    present = ~np.isnan(x)
    n_present = present.sum(axis=0)
    wins, ties = below_and_tied(x)
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


def normalized_mean(table: ScoreTable, how: str = "zscore") -> Ranking:
    """Mean after putting every benchmark on one scale, so no benchmark dominates by its units.

    `how="minmax"` maps each benchmark's observed range to [0, 1]; `how="zscore"` subtracts the
    benchmark mean and divides by its (population) standard deviation. A benchmark on which every
    present competitor scores the same carries no information and maps to 0.5 (minmax) or 0 (z).
    Both depend on which competitors are in the table (an IIA violation by construction).
    """
    if how not in ("minmax", "zscore"):
        raise ValueError(f"how must be 'minmax' or 'zscore', got {how!r}")
    x = table.oriented()
    with np.errstate(invalid="ignore", divide="ignore"):
        if how == "minmax":
            low, high = np.nanmin(x, axis=0), np.nanmax(x, axis=0)
            span = high - low
            z = np.where(span > 0, (x - low) / np.where(span > 0, span, 1.0), 0.5)
        else:
            centre, spread = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
            z = np.where(spread > 0, (x - centre) / np.where(spread > 0, spread, 1.0), 0.0)
    z = np.where(np.isnan(x), np.nan, z)
    counts = np.sum(~np.isnan(z), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(counts > 0, np.nansum(z, axis=1) / np.maximum(counts, 1), np.nan)
    name = "mean_minmax" if how == "minmax" else "mean_z"
    return Ranking(name, table.competitors, scores, params={"how": how})


def borda(table: ScoreTable) -> Ranking:
    """Borda count: on each benchmark a competitor earns one point per competitor it beats, half per tie.

    A competitor missing from a benchmark is treated as tied last on that ballot (the usual rule for
    truncated ballots), so missing results cost points; HELM's mean win rate instead averages only
    over present benchmarks. With no missing cells the two order competitors identically.
    """
    x = table.oriented()
    worst = np.nanmin(np.where(np.isnan(x), np.inf, x), axis=0) if x.size else np.zeros(0)
    filled = np.where(np.isnan(x), np.minimum(worst, 0) - np.abs(worst) - 1.0, x)
    filled = np.where(np.isfinite(filled), filled, -1.0)  # benchmark with no values: all tied
    points = np.zeros(table.n_competitors)
    for column in filled.T:
        order = np.sort(column)
        below = np.searchsorted(order, column, side="left")
        tied = np.searchsorted(order, column, side="right") - below - 1
        points += below + 0.5 * tied
    n_missing = int(np.isnan(x).sum())
    notes = (f"{n_missing} missing cell(s) counted as tied last on their benchmark",) if n_missing else ()
    return Ranking("borda", table.competitors, points, notes=notes)


def openskill_ranking(
    table: ScoreTable,
    n_orders: int = 20,
    seed: int = 0,
    order: str = "random",
    engine: str = "numpy",
    beta: float = 25.0 / 6.0,
    kappa: float = 1e-4,
) -> Ranking:
    """OpenSkill Plackett-Luce (Weng & Lin 2011): each benchmark is one free-for-all game.

    An online filter depends on the order of games, so the score is the final mu averaged over
    `n_orders` random benchmark orders (`order="given"` plays the table's order once). tau = 0
    because a static table has no skill drift. ci_low/ci_high are the 2.5/97.5 % quantiles of mu
    over orders: order dispersion, not a sampling interval. `engine="openskill"` runs the
    reference package (quadratic per game); `"numpy"` is our O(n log n) form of the same update,
    needed for thousand-competitor tables and checked against the package in the tests.
    """
    if order not in ("random", "given"):
        raise ValueError(f"order must be 'random' or 'given', got {order!r}")
    if engine not in ("numpy", "openskill"):
        raise ValueError(f"engine must be 'numpy' or 'openskill', got {engine!r}")
    x = table.oriented()
    rng = np.random.default_rng(seed)
    n_runs = 1 if order == "given" else int(n_orders)
    if n_runs < 1:
        raise ValueError("n_orders must be at least 1")
    finals = np.empty((n_runs, table.n_competitors))
    for run in range(n_runs):
        sequence = np.arange(table.n_benchmarks) if order == "given" else rng.permutation(table.n_benchmarks)
        mu = np.full(table.n_competitors, 25.0)
        sigma = np.full(table.n_competitors, 25.0 / 3.0)
        for b in sequence:
            players = np.flatnonzero(~np.isnan(x[:, b]))
            if players.size < 2:
                continue
            update = _plackett_luce_update if engine == "numpy" else _openskill_package_update
            mu[players], sigma[players] = update(mu[players], sigma[players], x[players, b], beta, kappa)
        finals[run] = mu
    scores = finals.mean(axis=0)
    low, high = (np.quantile(finals, [0.025, 0.975], axis=0) if n_runs > 1 else (None, None))
    params = {"n_orders": n_runs, "seed": seed, "order": order, "engine": engine, "beta": beta, "kappa": kappa,
              "tau": 0.0}
    notes = ("score = mean of mu over benchmark orders; interval = order dispersion, not a sampling CI",)
    return Ranking("openskill", table.competitors, scores, low, high, params, notes)


def _plackett_luce_update(
    mu: np.ndarray, sigma: np.ndarray, score: np.ndarray, beta: float, kappa: float
) -> tuple[np.ndarray, np.ndarray]:
    """One Weng-Lin Plackett-Luce game among one-player teams, higher score = better place.

    Sums over "teams placed no better than q" become suffix sums after sorting by score, and the
    sums over "q placed no worse than i" become prefix sums, so the update is O(n log n).
    """
    c = np.sqrt(np.sum(sigma**2 + beta**2))
    strength = np.exp(mu / c)
    order = np.argsort(-score, kind="stable")
    s = score[order]
    e = strength[order]
    # group boundaries of tied scores (in sorted order)
    first = np.searchsorted(-s, -s, side="left")
    last = np.searchsorted(-s, -s, side="right") - 1
    a = (last - first + 1).astype(float)
    suffix = np.cumsum(e[::-1])[::-1]
    sum_q = suffix[first]  # strengths of everyone tied with or behind q
    inv1 = np.cumsum(1.0 / (sum_q * a))
    inv2 = np.cumsum(1.0 / (sum_q**2 * a))
    through = last  # q counts for i when q is placed no worse than i, ties included
    c1, c2 = inv1[through], inv2[through]
    omega = 1.0 / a - e * c1
    delta = e * c1 - e**2 * c2
    var = sigma[order] ** 2
    new_mu_sorted = mu[order] + var / c * omega
    gamma = np.sqrt(var) / c
    shrink = np.maximum(1.0 - var / c**2 * gamma * delta, kappa)
    new_sigma_sorted = sigma[order] * np.sqrt(shrink)
    new_mu, new_sigma = np.empty_like(mu), np.empty_like(sigma)
    new_mu[order], new_sigma[order] = new_mu_sorted, new_sigma_sorted
    return new_mu, new_sigma


def _openskill_package_update(
    mu: np.ndarray, sigma: np.ndarray, score: np.ndarray, beta: float, kappa: float
) -> tuple[np.ndarray, np.ndarray]:
    """The same game through the `openskill` package (the reference implementation)."""
    from openskill.models import PlackettLuce

    model = PlackettLuce(beta=beta, kappa=kappa, tau=0.0)
    teams = [[model.rating(mu=float(m), sigma=float(s))] for m, s in zip(mu, sigma)]
    rated = model.rate(teams, scores=[float(v) for v in score])
    return np.array([t[0].mu for t in rated]), np.array([t[0].sigma for t in rated])
