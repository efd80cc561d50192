"""Reference code that only the tests need: published-number checks of formulas production never uses.

- Judgment-record rankers (a, b, outcome) reproduce the LLMFAO and AlpacaEval leaderboards: outcome = 1
  when a wins, 0 when b wins, 0.5 for a tie, or any probability in between (AlpacaEval 2's weighted judge).
  They feed the package's own Bradley-Terry fit and Elo step, so those are what the published numbers check;
  the harness itself ranks ScoreTables only (`tournaments.pairwise.bradley_terry`, `elo`).
- Zhang & Hardt's ordinal win rate reproduces their IIA tables; majority 3-cycles reproduce the counts of
  ranking.md A10.
- The SNR paper's subtask prefix curves (section 5.1: SNR and decision accuracy of each top-k prefix of
  subtasks by SNR, against random orders) check `tournaments.subtask_filter` on Pythia's MMLU.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from tournaments.pairwise import _bt_total_notes, _elo_scale, _elo_step, fit_bradley_terry, pairwise_counts
from tournaments.ranking import Ranking
from tournaments.signal_noise import PAPER_DDOF, decision_accuracy, mean_checkpoint_noise, signal, snr
from tournaments.table import ScoreTable


# --------------------------------------------------------------------------- from a score table
def win_fraction_matrix(table: ScoreTable, tie_credit: float = 0.5) -> np.ndarray:
    """P[i, j] = share of shared benchmarks i wins against j (ties earn `tie_credit`); NaN if none shared."""
    wins, ties = pairwise_counts(table)
    shared = wins + wins.T + ties
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (wins + tie_credit * ties) / shared
    p[shared == 0] = np.nan
    np.fill_diagonal(p, np.nan)
    return p


def zhang_hardt_win_rate(table: ScoreTable) -> Ranking:
    """Zhang & Hardt (2024) ordinal win rate, to reproduce their published IIA tables.

    Per opponent: the share of shared benchmarks won outright (ties earn nothing, no shared
    benchmark counts 0); summed over opponents and divided by n, the competitor itself included,
    which is a factor (n-1)/n away from the mean over opponents and leaves the order unchanged.
    """
    p = win_fraction_matrix(table, tie_credit=0.0)
    n = table.n_competitors
    scores = np.nansum(p, axis=1) / n if n else np.zeros(0)
    return Ranking("zh_win_rate", table.competitors, scores)


def majority_matrix(table: ScoreTable) -> np.ndarray:
    """M[i, j] = 1 when i beats j on more shared benchmarks than j beats i (strict majority)."""
    wins, _ = pairwise_counts(table)
    return (wins > wins.T).astype(int)


def count_three_cycles(table: ScoreTable) -> int:
    """Number of non-transitive triples (a beats b beats c beats a) in the strict majority relation."""
    m = majority_matrix(table).astype(float)
    return int(round(np.trace(m @ m @ m) / 3.0))


# --------------------------------------------------------------------------- judgment records
def _index_records(
    a: Sequence, b: Sequence, outcome: Sequence[float], competitors: Sequence[str] | None
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    a = np.asarray([str(v) for v in a])
    b = np.asarray([str(v) for v in b])
    y = np.asarray(outcome, dtype=float)
    if not (len(a) == len(b) == len(y)):
        raise ValueError(f"a, b and outcome must have equal lengths, got {len(a)}, {len(b)}, {len(y)}")
    if np.any(~np.isfinite(y)) or np.any((y < 0) | (y > 1)):
        raise ValueError("outcome must lie in [0, 1] (1 = a wins, 0.5 = tie, 0 = b wins)")
    if np.any(a == b):
        raise ValueError(f"a competitor cannot play itself (record {int(np.flatnonzero(a == b)[0])})")
    names = tuple(competitors) if competitors is not None else tuple(sorted(set(a) | set(b)))
    position = {c: i for i, c in enumerate(names)}
    unknown = sorted((set(a) | set(b)) - set(position))
    if unknown:
        raise KeyError(f"records name competitors not listed: {', '.join(unknown[:5])}")
    ia = np.array([position[v] for v in a], dtype=int)
    ib = np.array([position[v] for v in b], dtype=int)
    return names, ia, ib, y


def _records_to_wins(n: int, ia: np.ndarray, ib: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    wins = np.zeros((n, n))
    np.add.at(wins, (ia, ib), weight * y)
    np.add.at(wins, (ib, ia), weight * (1.0 - y))
    return wins


def bradley_terry_pairs(
    a: Sequence,
    b: Sequence,
    outcome: Sequence[float],
    competitors: Sequence[str] | None = None,
    l2: float = 1e-4,
    n_boot: int = 0,
    seed: int = 0,
    level: float = 0.95,
) -> Ranking:
    """Bradley-Terry MLE from judgment records, with percentile CIs from resampling records.

    Records are resampled with replacement (multinomial weights over records, as FastChat does),
    the model refitted `n_boot` times, and the (1-level)/2 quantiles reported.
    """
    names, ia, ib, y = _index_records(a, b, outcome, competitors)
    n = len(names)
    wins = _records_to_wins(n, ia, ib, y, np.ones(len(y)))
    scores = _elo_scale(fit_bradley_terry(wins, l2))
    low = high = None
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        draws = np.empty((n_boot, n))
        for r in range(n_boot):
            weight = rng.multinomial(len(y), np.full(len(y), 1.0 / len(y))).astype(float)
            draws[r] = _elo_scale(fit_bradley_terry(_records_to_wins(n, ia, ib, y, weight), l2))
        tail = (1.0 - level) / 2.0
        low, high = np.quantile(draws, [tail, 1.0 - tail], axis=0)
    params = {"l2": l2, "n_boot": n_boot, "seed": seed, "level": level, "n_records": len(y)}
    notes = _bt_total_notes(wins.sum(axis=1), wins.T.sum(axis=1), names, l2)
    return Ranking("bt", names, scores, low, high, params, notes)


def pairwise_win_rates(
    a: Sequence, b: Sequence, outcome: Sequence[float], competitors: Sequence[str] | None = None
) -> Ranking:
    """Each competitor's mean outcome over the records it appears in (from its own side).

    Against a fixed baseline (AlpacaEval) this is the leaderboard's win rate; scores are in [0, 1].
    """
    names, ia, ib, y = _index_records(a, b, outcome, competitors)
    n = len(names)
    total = np.bincount(ia, y, n) + np.bincount(ib, 1.0 - y, n)
    count = np.bincount(ia, minlength=n) + np.bincount(ib, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return Ranking("win_rate", names, scores, params={"n_records": len(y)})


def elo_pairs(
    a: Sequence,
    b: Sequence,
    outcome: Sequence[float],
    competitors: Sequence[str] | None = None,
    k: float = 4.0,
    n_orders: int = 100,
    seed: int = 0,
) -> Ranking:
    """Online Elo over judgment records, averaged over `n_orders` random record orders."""
    names, ia, ib, y = _index_records(a, b, outcome, competitors)
    rng = np.random.default_rng(seed)
    ratings = np.full((n_orders, len(names)), 1000.0)
    perms = np.stack([rng.permutation(len(y)) for _ in range(n_orders)]) if len(y) else np.zeros((n_orders, 0), int)
    rows = np.arange(n_orders)
    for t in range(len(y)):
        idx = perms[:, t]
        _elo_step(ratings, ia[idx], ib[idx], y[idx], k, rows)
    scores = ratings.mean(axis=0)
    low, high = (np.quantile(ratings, [0.025, 0.975], axis=0) if n_orders > 1 else (None, None))
    params = {"k": k, "n_orders": n_orders, "seed": seed, "n_records": len(y)}
    notes = ("mean rating over random record orders; interval = order dispersion, not a sampling CI",)
    return Ranking("elo", names, scores, low, high, params, notes)


# --------------------------------------------------------------------------- SNR subtask prefixes
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
