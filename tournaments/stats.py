"""Uncertainty and significance: bootstrap rank intervals, paired tests, Friedman/Nemenyi, rank agreement.

Whether a gap between two competitors is real depends on what was sampled: benchmarks (few, so
intervals are wide), items within benchmarks (where per-item results exist), or both. Every
resampling function takes a seed and is deterministic given it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from tournaments.ranking import Ranking, ranks_from_scores
from tournaments.table import ScoreTable

Ranker = Callable[[ScoreTable], Ranking]


# --------------------------------------------------------------------------- bootstrap of a ranker
@dataclass(frozen=True)
class BootstrapResult:
    """Point ranking plus percentile intervals for scores and ranks over resampled tables."""

    ranking: Ranking
    unit: str
    n_boot: int
    score_low: np.ndarray
    score_high: np.ndarray
    rank_low: np.ndarray
    rank_high: np.ndarray
    rank_samples: np.ndarray  # (n_boot, n_competitors)

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({
            "competitor": list(self.ranking.competitors),
            "score": self.ranking.scores,
            "rank": self.ranking.ranks,
            "score_low": self.score_low,
            "score_high": self.score_high,
            "rank_low": self.rank_low,
            "rank_high": self.rank_high,
        })
        return frame.sort_values(["rank", "competitor"], kind="stable").reset_index(drop=True)


def resample_table(table: ScoreTable, unit: str, rng: np.random.Generator,
                   stderr: np.ndarray | None = None) -> ScoreTable:
    """One bootstrap replicate of `table`, paired across competitors.

    unit="benchmarks": draw benchmarks with replacement (copies get distinct names).
    unit="items": keep the benchmarks and draw replicate slots with replacement within each
    benchmark, among the slots that hold any value; the table keeps its replicate axis.
    unit="normal" (a parametric bootstrap, for cells that are estimates with a standard error, such as
    adaptive evaluation's): every cell drawn independently from N(value, stderr), `stderr` shaped like the
    2-D values (NaN: the cell is taken as exact).
    """
    if unit == "normal":
        if stderr is None or np.shape(stderr) != table.values.shape:
            raise ValueError("a normal bootstrap needs one standard error per cell")
        noise = rng.standard_normal(table.values.shape) * np.nan_to_num(np.asarray(stderr, dtype=float))
        return ScoreTable(table.competitors, table.benchmarks, table.values + noise, table.higher_is_better)
    if unit == "benchmarks":
        pick = rng.integers(0, table.n_benchmarks, table.n_benchmarks)
        values = table.values[:, pick]
        names = tuple(f"{table.benchmarks[j]}#{k}" for k, j in enumerate(pick))
        return ScoreTable(table.competitors, names, values, table.higher_is_better[pick])
    if unit == "items":
        if not table.has_replicates:
            raise ValueError("item bootstrap needs a table with replicates (per-item results)")
        out = np.full_like(table.values, np.nan)
        for j in range(table.n_benchmarks):
            slots = np.flatnonzero(np.any(~np.isnan(table.values[:, j, :]), axis=0))
            if slots.size:
                draw = slots[rng.integers(0, slots.size, slots.size)]
                out[:, j, : slots.size] = table.values[:, j, draw]
        return ScoreTable(table.competitors, table.benchmarks, out, table.higher_is_better)
    raise ValueError(f"unit must be 'benchmarks', 'items' or 'normal', got {unit!r}")


def bootstrap_ranking(
    table: ScoreTable,
    ranker: Ranker,
    n_boot: int = 1000,
    seed: int = 0,
    unit: str = "auto",
    level: float = 0.95,
    stderr: np.ndarray | None = None,
) -> BootstrapResult:
    """Percentile intervals of any ranker's scores and ranks.

    unit="auto" draws each cell from N(value, stderr) when `stderr` is given, else resamples items when the
    table has replicates (per-item results), else benchmarks. Ranks use the leaderboard convention (ties
    share the best rank).
    """
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    if unit == "auto":
        unit = "normal" if stderr is not None else "items" if table.has_replicates else "benchmarks"
    rng = np.random.default_rng(seed)
    point = ranker(table)
    scores = np.empty((n_boot, table.n_competitors))
    for r in range(n_boot):
        scores[r] = ranker(resample_table(table, unit, rng, stderr)).scores
    ranks = np.stack([ranks_from_scores(s) for s in scores])
    tail = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        score_low, score_high = np.nanquantile(scores, [tail, 1.0 - tail], axis=0)
    rank_low, rank_high = np.quantile(ranks, [tail, 1.0 - tail], axis=0, method="nearest")
    return BootstrapResult(point, unit, n_boot, score_low, score_high, rank_low.astype(int),
                           rank_high.astype(int), ranks)


# --------------------------------------------------------------------------- paired tests
@dataclass(frozen=True)
class PairedResult:
    """Difference mean(a) - mean(b) on shared items, its interval and a two-sided p-value."""

    test: str
    n_items: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    statistic: float | None = None
    interval: str = ""  # how ci_low/ci_high were made, named in `harness compare` output


def _shared(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired tests need two equal-length 1-D arrays, got {a.shape} and {b.shape}")
    keep = ~np.isnan(a) & ~np.isnan(b)
    if not keep.any():
        raise ValueError("no item has a value for both models")
    return a[keep], b[keep]


def mcnemar(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> PairedResult:
    """Exact McNemar test for two models' 0/1 outcomes on the same items.

    Only discordant items carry information: under H0 the n01 + n10 of them split 50/50, so the
    p-value is a two-sided exact binomial test (valid for any count, no continuity correction
    needed). The interval is the exact conditional one: the Clopper-Pearson interval of the share
    of discordant items that A wins, mapped to the accuracy difference (2 share - 1) * discordant / n.
    At share 1/2 the binomial is symmetric, so the test's two-sided p is twice the smaller tail and
    the interval excludes 0 exactly when p < 1 - level (a Wald interval can exclude 0 at p = 0.06).
    With no discordant item the interval is [0, 0]: given the items, the models never differ.
    """
    x, y = _shared(a, b)
    if not np.all(np.isin(x, (0.0, 1.0)) & np.isin(y, (0.0, 1.0))):
        raise ValueError("McNemar needs binary (0/1) outcomes; use paired_bootstrap for continuous ones")
    n = len(x)
    only_a = int(np.sum((x == 1) & (y == 0)))
    only_b = int(np.sum((x == 0) & (y == 1)))
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(sps.binomtest(only_a, discordant, 0.5).pvalue)
    diff = (only_a - only_b) / n
    low, high = clopper_pearson(only_a, discordant, level)
    scale = discordant / n
    return PairedResult("mcnemar", n, float(x.mean()), float(y.mean()), diff, (2 * low - 1) * scale,
                        (2 * high - 1) * scale, p, float(discordant), "exact Clopper-Pearson")


def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval: the proportions whose one-sided tail tests at (1 - level) / 2 keep
    `successes`; beta quantiles give them in closed form. [0, 1] when there are no trials."""
    if trials == 0:
        return 0.0, 1.0
    tail = (1.0 - level) / 2.0
    low = 0.0 if successes == 0 else float(sps.beta.ppf(tail, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(sps.beta.ppf(1.0 - tail, successes + 1, trials - successes))
    return low, high


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], n_boot: int = 10000, seed: int = 0, level: float = 0.95
) -> PairedResult:
    """Paired bootstrap over items for the difference in means of any per-item metric.

    Items are resampled with replacement (the same items for both models). The interval is the
    percentile interval; the p-value counts resampled differences at least as far from the
    observed one as the observed one is from 0 (the null-centred bootstrap), with the +1
    correction so it is never exactly 0.
    """
    x, y = _shared(a, b)
    d = x - y
    n = len(d)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, 256):  # bounded memory for long item lists
        stop = min(start + 256, n_boot)
        means[start:stop] = d[rng.integers(0, n, (stop - start, n))].mean(axis=1)
    observed = float(d.mean())
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    extreme = np.sum(np.abs(means - observed) >= abs(observed) - 1e-12)
    p = float((extreme + 1) / (n_boot + 1))
    return PairedResult("paired_bootstrap", n, float(x.mean()), float(y.mean()), observed, float(low),
                        float(high), min(p, 1.0), interval="percentile bootstrap")


def compare_paired(a: Sequence[float], b: Sequence[float], n_boot: int = 10000, seed: int = 0,
                   level: float = 0.95) -> PairedResult:
    """McNemar when both outcome vectors are 0/1, otherwise the paired bootstrap."""
    x, y = _shared(a, b)
    binary = np.all(np.isin(x, (0.0, 1.0))) and np.all(np.isin(y, (0.0, 1.0)))
    return mcnemar(x, y, level) if binary else paired_bootstrap(x, y, n_boot, seed, level)


def compare_on_tasks(
    pairs: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    n_boot: int = 10000,
    seed: int = 0,
    level: float = 0.95,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Model A against model B task by task (`harness compare`), Holm-corrected across tasks.

    `pairs` maps a task to the two models' per-item values on that task, aligned item by item
    (NaN where an item is missing for one of them). One row per task.
    """
    rows = []
    for task, (a, b) in pairs.items():
        r = compare_paired(a, b, n_boot, seed, level)
        rows.append((task, r.test, r.n_items, r.mean_a, r.mean_b, r.diff, r.ci_low, r.ci_high, r.interval, r.p_value))
    frame = pd.DataFrame(rows, columns=["task", "test", "n_items", "mean_a", "mean_b", "diff", "ci_low", "ci_high",
                                        "interval", "p_value"])
    frame["p_holm"] = holm(frame["p_value"].to_numpy()) if len(frame) else []
    frame["significant"] = frame["p_holm"] < alpha
    return frame


def bootstrap_floor_note(frame: pd.DataFrame, n_boot: int, alpha: float = 0.05) -> str | None:
    """One line when the bootstrap's resolution, not the data, kept a task from significance.

    A paired-bootstrap p-value cannot go below 1/(n_boot + 1); Holm multiplies the smallest of m
    p-values by m, so with m / (n_boot + 1) >= alpha a task whose resamples were never as extreme as
    0 can still miss alpha. Returns None when no bootstrap task sits at that floor unresolved.
    """
    floor = 1.0 / (n_boot + 1)
    boot = frame["test"] == "paired_bootstrap"
    stuck = boot & (frame["p_value"] <= floor * (1 + 1e-9)) & ~frame["significant"]
    if not stuck.any():
        return None
    m = len(frame)
    return (f"{int(stuck.sum())} bootstrap task(s) sit at the p-value floor 1/(n_boot+1) = {floor:.2g}, and Holm "
            f"over {m} tasks leaves them at p_holm >= {frame.loc[stuck, 'p_holm'].min():.2g}, not below {alpha:g}: "
            f"too few resamples to tell; rerun with --n-boot {min_bootstrap_resamples(m, alpha)} or more")


def min_bootstrap_resamples(m: int, alpha: float = 0.05) -> int:
    """Smallest n_boot with m / (n_boot + 1) < alpha: below it, Holm over m tasks can keep a bootstrap
    task that beat every resample at p_holm >= alpha."""
    n_boot = max(int(np.floor(m / alpha)) - 1, 1)
    while m / (n_boot + 1) >= alpha:  # floor() may land one short through rounding
        n_boot += 1
    return n_boot


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error control, no independence assumption)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out = np.empty(m)
    out[order] = adjusted
    return out


# --------------------------------------------------------------------------- Friedman / Nemenyi
@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over benchmarks (blocks) and the Nemenyi critical difference of mean ranks."""

    competitors: tuple[str, ...]
    mean_ranks: np.ndarray  # 1 = best
    n_benchmarks: int
    chi2: float
    p_value: float
    iman_davenport: float
    p_value_iman_davenport: float
    critical_difference: float
    q_alpha: float
    alpha: float
    tie_correction: float = 1.0  # C that divided chi2; 1 without ties


def within_benchmark_ranks(table: ScoreTable) -> np.ndarray:
    """(competitors, benchmarks) ranks, 1 = best, ties averaged; the table must be complete."""
    x = table.oriented()
    if np.isnan(x).any():
        rows = [table.competitors[i] for i in np.flatnonzero(np.isnan(x).any(axis=1))[:3]]
        raise ValueError(f"rank tests need a complete table; {int(np.isnan(x).sum())} missing cell(s), "
                         f"e.g. for {', '.join(rows)} (select complete competitors or benchmarks first)")
    return np.column_stack([sps.rankdata(-col, method="average") for col in x.T]) if x.size else x


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Critical value q_alpha of the Nemenyi test: the studentized range quantile over sqrt(2)."""
    return float(sps.studentized_range.ppf(1.0 - alpha, k, np.inf) / np.sqrt(2.0))


def friedman(table: ScoreTable, alpha: float = 0.05) -> FriedmanResult:
    """Friedman chi-square, its Iman-Davenport F form, and the Nemenyi CD (Demsar 2006).

    Competitors are the treatments and benchmarks the blocks. Tied scores share an average rank,
    which shrinks the rank variance; chi2 is divided by C = 1 - sum(t^3 - t) / (N k (k^2 - 1)) over
    the tie groups t (Hollander & Wolfe; scipy and R do the same), and the F form uses that chi2.
    Without it binary or rounded scores understate chi2. CD = q_alpha sqrt(k(k+1)/(6N)): mean ranks
    further apart than CD differ at level alpha. With many competitors and few benchmarks CD is
    huge; report Wilcoxon-Holm alongside. If every benchmark ties every competitor, chi2 = 0, p = 1.
    """
    ranks = within_benchmark_ranks(table)
    k, n = ranks.shape
    if k < 2 or n < 2:
        raise ValueError(f"Friedman needs at least 2 competitors and 2 benchmarks, got {k} x {n}")
    mean_ranks = ranks.mean(axis=1)
    chi2 = 12.0 * n / (k * (k + 1)) * (np.sum(mean_ranks**2) - k * (k + 1) ** 2 / 4.0)
    ties = sum(float(np.sum(t**3 - t)) for t in (np.unique(col, return_counts=True)[1] for col in ranks.T))
    correction = 1.0 - ties / (n * k * (k * k - 1.0))
    chi2 = chi2 / correction if correction > 1e-12 else 0.0
    p = float(sps.chi2.sf(chi2, k - 1))
    denominator = n * (k - 1) - chi2
    f = (n - 1) * chi2 / denominator if denominator > 1e-12 * n * k else np.inf
    p_f = float(sps.f.sf(f, k - 1, (k - 1) * (n - 1))) if np.isfinite(f) else 0.0
    q = nemenyi_q(k, alpha)
    cd = q * np.sqrt(k * (k + 1) / (6.0 * n))
    return FriedmanResult(table.competitors, mean_ranks, n, float(chi2), p, float(f), p_f, float(cd), q, alpha,
                          float(correction))


def wilcoxon_holm(table: ScoreTable, alpha: float = 0.05) -> pd.DataFrame:
    """Wilcoxon signed-rank test for every pair over benchmarks, Holm-corrected across pairs.

    Unlike Nemenyi, A-vs-B here does not depend on which other competitors are in the table.
    A pair with identical scores everywhere gets p = 1. Rows are sorted as the pairs are listed.
    """
    x = table.oriented()
    if np.isnan(x).any():
        within_benchmark_ranks(table)  # raises the complete-table message
    rows = []
    for i, j in combinations(range(table.n_competitors), 2):
        d = x[i] - x[j]
        if np.all(d == 0):
            stat, p = 0.0, 1.0
        else:
            result = sps.wilcoxon(x[i], x[j], zero_method="zsplit")
            stat, p = float(result.statistic), float(result.pvalue)
        rows.append((table.competitors[i], table.competitors[j], float(np.median(d)), stat, p))
    frame = pd.DataFrame(rows, columns=["a", "b", "median_diff", "statistic", "p_value"])
    frame["p_holm"] = holm(frame["p_value"].to_numpy()) if len(frame) else []
    frame["significant"] = frame["p_holm"] < alpha
    return frame


# --------------------------------------------------------------------------- rank agreement
def snap_float_noise(scores: np.ndarray) -> np.ndarray:
    """Scores rounded to 12 digits relative to the largest magnitude.

    Two competitors with the same average summed in another order differ by ~1e-15; without
    this they would count as ordered pairs, not ties, in tau and in rank comparisons.
    """
    scores = np.asarray(scores, dtype=float)
    finite = np.abs(scores[np.isfinite(scores)])
    scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return np.round(scores / scale, 12) * scale


def _aligned(a: Ranking | Sequence[float], b: Ranking | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(a, Ranking) and isinstance(b, Ranking):
        shared = [c for c in a.competitors if c in set(b.competitors)]
        if len(shared) < 2:
            raise ValueError("the two rankings share fewer than 2 competitors")
        pa = {c: i for i, c in enumerate(a.competitors)}
        pb = {c: i for i, c in enumerate(b.competitors)}
        return (np.array([a.scores[pa[c]] for c in shared], float),
                np.array([b.scores[pb[c]] for c in shared], float))
    sa = a.scores if isinstance(a, Ranking) else np.asarray(a, dtype=float)
    sb = b.scores if isinstance(b, Ranking) else np.asarray(b, dtype=float)
    if sa.shape != sb.shape:
        raise ValueError(f"score vectors differ in length: {sa.shape} vs {sb.shape}")
    return sa, sb


def kendall_tau(a: Ranking | Sequence[float], b: Ranking | Sequence[float]) -> float:
    """Kendall tau-b between two rankings (Rankings are matched by competitor name)."""
    x, y = _aligned(a, b)
    return float(sps.kendalltau(snap_float_noise(x), snap_float_noise(y)).statistic)
