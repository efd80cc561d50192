"""Competitive Swiss-System Dynamics (CSD): a Monte Carlo Swiss tournament over benchmark rounds.

Semantics follow the authors' reference implementation (../shared/reference/csd.md, §1):

- Round strength: the unweighted mean of a competitor's oriented scores over the round's benchmark
  group; NaN when any benchmark of the group is missing for that competitor.
- Each round, active competitors are grouped into buckets of exactly equal cumulative score. Each
  bucket is shuffled uniformly and neighbours are paired (1st-2nd, 3rd-4th, ...). In an odd bucket
  the last competitor after the shuffle, i.e. a uniformly random member, gets a zero-point bye and
  stays at its score. No floats between buckets, no rematch avoidance.
- In a pair (a, b) in shuffled order, a wins iff strength(a) > strength(b), else b wins; so exact
  ties are a fair coin. Missing strength: ``missing="error"`` refuses, ``"coin"`` keeps NaN (every
  comparison is False, so the pair is a coin flip, as the reference does silently), ``"loss"`` makes
  the missing side lose (two missing sides: coin).
- After round k, the T_k lowest-scoring active competitors are eliminated; their scores freeze. The
  cut may reach past the lowest bucket, and it also runs after the last round (matters only for
  survival). ``tiebreak="random"`` orders equal scores at random (the paper's text);
  ``tiebreak="index"`` orders them by position in the table, earliest eliminated first (the
  reference code). The index rule is biased: after round 1 about half the field shares score 0, so
  the first rows of the table are cut far more often than chance, costing them up to ~2 points of
  E[S_m] at T=1-2 in the reference's synthetic check. Use it only to reproduce the paper.

Vectorisation: a batch of tournaments advances together. Each competitor's state is one int64 key
``[inactive | score | random | index]``; a row-wise sort orders a batch by (active first, score,
random), which forms the buckets and shuffles each uniformly in one call (at least 32 random bits
per key, 53 for 29 competitors and 12 rounds; with the random field zeroed the same sort gives the
index tie-break). How many active competitors hold each score is the same in every tournament
(`pair_starts`), so after the sort every bucket, pair and bye sits at fixed columns; one column
gather lines the pairs up and a table lookup scores them (past LOOKUP_MAX competitors the m x m
table would dominate memory, so the pair's two strengths are gathered and compared instead: the same
outcomes). Results depend on (seed, batch_size); past BATCH_ELEMENTS // m competitors the batch is
capped so a batch's work arrays stay ~32 MB each, and the Ranking's params and note say so. Rank
probabilities are tallied only for the ranks that occur (a simulation's final scores take at most
rounds + 1 values, with the same counts every time), so memory is O(batch x m + m x rounds), never
m x m.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from tournaments.ranking import Ranking
from tournaments.rounds import Round, auto_rounds, check_rounds
from tournaments.table import ScoreTable

MISSING_POLICIES = ("error", "coin", "loss")
TIEBREAKS = ("random", "index")
Z95 = 1.959963984540054
_BOOTSTRAP_CHUNK = 1 << 22  # elements per item-resampling block, bounds its memory (~32 MB)
LOOKUP_MAX = 256  # pair outcomes from an m x m lookup table up to here (fastest for small fields)
BATCH_ELEMENTS = 1 << 22  # cap on tournaments x competitors per batch: ~32 MB per int64 work array


@dataclass(frozen=True)
class CSDResult:
    """Monte Carlo summary of one CSD configuration.

    `expected` is E[S_m]; `se` its Monte Carlo standard error. With item bootstrap, `item_sd` is the
    standard deviation of E[S_m] over item resamples (the data's own uncertainty) and the CI covers
    both sources. Ranks are competition ranks per simulation (ties share the best rank), so
    `p_first` can sum to more than 1 when simulations end with a shared top score. Only ranks that
    occur are stored: `rank_values` (0-based, ascending) and `rank_value_probs` (competitors x those);
    `rank_probs` spreads them over all m ranks (m x m: for small fields).
    """

    competitors: tuple[str, ...]
    rounds: tuple[Round, ...]
    schedule: tuple[int, ...]
    tiebreak: str
    missing: str
    item_bootstrap: bool
    n_sims: int
    expected: np.ndarray
    se: np.ndarray
    item_sd: np.ndarray | None
    rank_values: np.ndarray  # 0-based ranks that occurred
    rank_value_probs: np.ndarray  # (competitors, len(rank_values)): P(rank == rank_values[r] + 1)
    survival: np.ndarray  # (competitors, rounds): P(still active after round k's cut)
    total_score: np.ndarray  # per simulation: sum of final scores
    games_played: int  # games in every simulation: fixed by the field size and schedule (`pair_starts`)

    @property
    def rank_probs(self) -> np.ndarray:
        """(competitors, ranks): P(rank == r + 1), as a dense m x m array."""
        m = len(self.competitors)
        dense = np.zeros((m, m))
        dense[:, self.rank_values] = self.rank_value_probs
        return dense

    @property
    def p_first(self) -> np.ndarray:
        if len(self.rank_values) and self.rank_values[0] == 0:
            return self.rank_value_probs[:, 0]
        return np.zeros(len(self.competitors))

    @property
    def ci_half_width(self) -> np.ndarray:
        item_var = 0.0 if self.item_sd is None else self.item_sd**2
        return Z95 * np.sqrt(self.se**2 + item_var)

    @property
    def ci_low(self) -> np.ndarray:
        return self.expected - self.ci_half_width

    @property
    def ci_high(self) -> np.ndarray:
        return self.expected + self.ci_half_width

    @property
    def ci_widening(self) -> np.ndarray:
        """CI width over the Monte-Carlo-only width: how much item resampling widens it (1 without)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.se > 0, self.ci_half_width / (Z95 * self.se), np.nan)

    def to_frame(self) -> pd.DataFrame:
        """Leaderboard rows, best E[S_m] first: E, SE, 95% CI, P(rank 1), P(never cut)."""
        frame = pd.DataFrame(
            {
                "competitor": list(self.competitors),
                "expected": self.expected,
                "se": self.se,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "p_first": self.p_first,
                "p_survive": self.survival[:, -1],
            }
        )
        if self.item_sd is not None:
            frame.insert(3, "item_sd", self.item_sd)
        return frame.sort_values("expected", ascending=False, kind="stable").reset_index(drop=True)

    @property
    def games_check(self) -> bool:
        """Every simulation's total score equals the games it played (one point per game)."""
        return bool(np.all(self.total_score == self.games_played))


def elimination_schedule(eliminate: int | Sequence[int], n_rounds: int, n_competitors: int) -> tuple[int, ...]:
    """T_k per round from a constant or a per-round list; refuses schedules that leave nobody."""
    if np.ndim(eliminate) == 0:
        values = [eliminate] * n_rounds
    else:
        values = list(eliminate)  # type: ignore[arg-type]
        if len(values) != n_rounds:
            raise ValueError(f"elimination schedule has {len(values)} entries for {n_rounds} rounds")
    if any(isinstance(t, bool) or int(t) != t or t < 0 for t in values):
        raise ValueError(f"elimination counts must be non-negative integers, got {values}")
    schedule = tuple(int(t) for t in values)
    if sum(schedule) >= n_competitors:
        raise ValueError(
            f"elimination schedule {list(schedule)} removes {sum(schedule)} of {n_competitors} competitors "
            f"(a cut also follows the last round); at most {n_competitors - 1} may be eliminated"
        )
    return schedule


def round_strengths(table: ScoreTable, rounds: Sequence[Round], missing: str = "error") -> np.ndarray:
    """(competitors, rounds) strengths: oriented means over each round's group, missing policy applied."""
    _check_choice("missing", missing, MISSING_POLICIES)
    check_rounds(rounds, table)
    oriented = table.oriented()
    groups = _round_columns(table, rounds)
    strength = np.stack([oriented[:, g].mean(axis=1) for g in groups], axis=1)
    if missing == "error" and np.isnan(strength).any():
        where = np.argwhere(np.isnan(strength))
        m, k = where[0]
        gaps = [b for b, j in zip(rounds[k].benchmarks, groups[k]) if np.isnan(oriented[m, j])]
        more = f" ({len(where) - 1} more competitor-round gaps)" if len(where) > 1 else ""
        raise ValueError(
            f"competitor {table.competitors[m]!r} has no score in round {rounds[k].name!r} "
            f"(missing: {', '.join(gaps)}){more}; pass missing='coin' or missing='loss' to proceed"
        )
    return _missing_as(strength, missing)


def simulate(
    table: ScoreTable,
    rounds: Sequence[Round] | None = None,
    *,
    eliminate: int | Sequence[int] = 0,
    n_sims: int = 100_000,
    seed: Any = 0,
    tiebreak: str = "random",
    missing: str = "error",
    item_bootstrap: bool = False,
    batch_size: int = 2048,
    cell_stderr: np.ndarray | None = None,
) -> CSDResult:
    """Run `n_sims` CSD tournaments; `seed` is anything `numpy.random.default_rng` accepts.

    With `item_bootstrap`, the items (replicates) of every benchmark are resampled with replacement,
    jointly for all competitors, once per pair of simulations; the two tournaments of a pair share
    the resample, which makes their covariance an unbiased estimate of the item variance of E[S_m].
    With `cell_stderr` (competitors x benchmarks: the standard errors of estimated scores, NaN or 0 for
    exact ones) every cell is drawn from N(value, se) instead, once per pair of simulations in the same way.
    """
    if isinstance(n_sims, bool) or int(n_sims) != n_sims or n_sims <= 0:
        raise ValueError(f"n_sims must be a positive integer, got {n_sims!r}")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    _check_choice("tiebreak", tiebreak, TIEBREAKS)
    rounds = auto_rounds(table) if rounds is None else tuple(rounds)
    if not rounds:
        raise ValueError("CSD needs at least one round (a table with no benchmarks has none)")
    strength = round_strengths(table, rounds, missing)
    schedule = elimination_schedule(eliminate, len(rounds), table.n_competitors)
    if item_bootstrap and cell_stderr is not None:
        raise ValueError("item_bootstrap and cell_stderr: resample items or draw estimated cells, not both")
    draw = (_item_resampler(table, rounds, missing) if item_bootstrap
            else _normal_resampler(table, cell_stderr, rounds, missing) if cell_stderr is not None else None)
    rng = np.random.default_rng(seed)
    n_sims, batch_size = int(n_sims), effective_batch_size(int(batch_size), table.n_competitors)
    if draw is not None:
        batch_size += batch_size % 2  # pairs of simulations share a resample
    tally = _Tally(table.n_competitors, len(rounds), n_sims)
    by_round = np.ascontiguousarray(strength.T)
    layout = round_layout(table.n_competitors, schedule, tiebreak)
    scratch = _Scratch()
    for start in range(0, n_sims, batch_size):
        n = min(batch_size, n_sims - start)
        batch_strength = by_round if draw is None else np.repeat(draw(rng, (n + 1) // 2), 2, axis=0)[:n]
        scores, cut = _play(batch_strength, schedule, layout, n, rng, tiebreak, scratch)
        tally.add(start, scores, cut, paired=draw is not None)
    games = sum(p for p, _ in layout)
    return tally.result(table.competitors, rounds, schedule, tiebreak, missing, item_bootstrap, games,
                        resampled=draw is not None)


def effective_batch_size(batch_size: int, m: int) -> int:
    """`batch_size`, capped so that a batch holds at most BATCH_ELEMENTS competitor slots (at least 2)."""
    return min(batch_size, max(2, BATCH_ELEMENTS // max(m, 1)))


def csd_ranking(
    table: ScoreTable,
    rounds: Sequence[Round] | None = None,
    *,
    eliminate: int | Sequence[int] = 0,
    n_sims: int = 100_000,
    seed: Any = 0,
    tiebreak: str = "random",
    missing: str = "error",
    item_bootstrap: bool = False,
    batch_size: int = 2048,
    cell_stderr: np.ndarray | None = None,
) -> Ranking:
    """CSD as a generic leaderboard `Ranking`: score = E[S_m], CI = 95% interval of it."""
    result = simulate(
        table, rounds, eliminate=eliminate, n_sims=n_sims, seed=seed, tiebreak=tiebreak,
        missing=missing, item_bootstrap=item_bootstrap, batch_size=batch_size, cell_stderr=cell_stderr,
    )
    notes = []
    if tiebreak == "index":
        notes.append("tiebreak=index (reference semantics): earlier table rows are eliminated first on ties")
    gaps = int(np.isnan(round_strengths(table, result.rounds, "coin")).sum())
    if gaps:
        notes.append(f"{gaps} missing competitor-round strengths settled by missing={missing}")
    if item_bootstrap or cell_stderr is not None:
        what = "item resampling" if item_bootstrap else "estimated cells drawn from N(estimate, se)"
        notes.append(f"CI includes {what} (median widening x{np.nanmedian(result.ci_widening):.1f})")
    used_batch = effective_batch_size(int(batch_size), table.n_competitors)
    if used_batch < batch_size:
        notes.append(f"batch_size {batch_size} capped at {used_batch} for {table.n_competitors} competitors "
                     f"(memory bound); the seed reproduces results with that batch size")
    params = {
        "rounds": [list(r.benchmarks) for r in result.rounds],
        "eliminate": list(result.schedule),
        "n_sims": result.n_sims,
        "seed": seed if isinstance(seed, (int, type(None))) else repr(seed),
        "tiebreak": tiebreak,
        "missing": missing,
        "item_bootstrap": item_bootstrap,
        "batch_size": used_batch,
        **({} if cell_stderr is None else {"cell_stderr": np.nan_to_num(np.asarray(cell_stderr, dtype=float)).tolist()}),
    }
    return Ranking("csd", result.competitors, result.expected, result.ci_low, result.ci_high, params, tuple(notes))


# ---------------------------------------------------------------------------------------------- engine
def _play(
    strength: np.ndarray,
    schedule: tuple[int, ...],
    layout: list[tuple[int, np.ndarray]],
    n: int,
    rng: np.random.Generator,
    tiebreak: str,
    buf: "_Scratch",
) -> tuple[np.ndarray, np.ndarray]:
    """Plays `n` tournaments; strength is (rounds, M) shared or (n, rounds, M) per simulation.

    `layout` comes from `round_layout`. Returns final scores (n, M) in competitor order and per
    round the number of times each competitor was cut (rounds, M).
    """
    n_rounds, m = strength.shape[-2:]
    idx_bits = max(1, (m - 1).bit_length())
    score_shift = 62 - n_rounds.bit_length()
    if score_shift - idx_bits < 32:
        raise ValueError(f"{m} competitors x {n_rounds} rounds leave too few random bits for shuffling")
    inactive = 1 << 62
    idx_mask = (1 << idx_bits) - 1
    rand_field = (1 << score_shift) - 1 - idx_mask
    point = np.int64(1 << score_shift)
    fused = tiebreak == "random"

    def resort(keys: np.ndarray, shuffle: bool) -> None:
        if shuffle:  # fresh uniform bits XOR the old field: uniform and independent of the past
            fresh = rng.bit_generator.random_raw(keys.shape).view(np.int64)
            fresh &= rand_field
            keys ^= fresh
        else:
            keys &= ~rand_field
        keys.sort(axis=1)

    def cut_front(keys: np.ndarray, t: int, k: int) -> None:
        cut[k] = np.bincount((keys[:, :t] & idx_mask).ravel(), minlength=m)
        keys[:, :t] |= inactive

    keys, spare = buf("keys", (n, m)), buf("spare", (n, m))
    keys[:] = np.arange(m)
    cut = np.zeros((n_rounds, m), dtype=np.int64)
    for k, (p, order) in enumerate(layout):
        resort(keys, shuffle=True)
        if fused and k and schedule[k - 1]:
            cut_front(keys, schedule[k - 1], k - 1)
        np.take(keys, order, axis=1, out=spare, mode="clip")  # [first of each pair | second | idle]
        keys, spare = spare, keys
        ka, kb = keys[:, :p], keys[:, p : 2 * p]
        pair, won = buf("pair", (n, p)), buf("won", (n, p))
        if strength.ndim == 2 and m > LOOKUP_MAX:  # compare the pair's two strengths
            level = strength[k]
            first = np.take(level, np.bitwise_and(ka, idx_mask, out=pair))
            second = np.take(level, np.bitwise_and(kb, idx_mask, out=pair))
            np.multiply(first > second, point, out=won)
        elif strength.ndim == 2:  # look the pair up in a table of first-beats-second points
            level = strength[k]
            beats = np.where(level[:, None] > level[None, :], point, 0).ravel()
            np.bitwise_and(ka, idx_mask, out=pair)
            pair *= m
            pair += np.bitwise_and(kb, idx_mask, out=won)
            np.take(beats, pair, out=won, mode="clip")
        else:
            level = strength[:, k]
            a_wins = np.take_along_axis(level, ka & idx_mask, 1) > np.take_along_axis(level, kb & idx_mask, 1)
            np.multiply(a_wins, point, out=won)
        ka += won  # the pair's first gains a point where it won, its opponent where it did not
        kb += point
        kb -= won
        if schedule[k] and not fused:
            resort(keys, shuffle=False)
            cut_front(keys, schedule[k], k)
    if fused and schedule[-1]:
        resort(keys, shuffle=True)
        cut_front(keys, schedule[-1], n_rounds - 1)
    scores = np.empty((n, m), dtype=np.int64)
    np.put_along_axis(scores, keys & idx_mask, (keys & ~inactive) >> score_shift, axis=1)
    return scores, cut


class _Scratch:
    """Reusable contiguous work arrays by name: large temporaries come from mmap and are
    page-faulted afresh on every numpy call, which can cost more than the arithmetic."""

    def __init__(self) -> None:
        self._flat: dict[str, np.ndarray] = {}

    def __call__(self, name: str, shape: tuple[int, int], dtype: type = np.int64) -> np.ndarray:
        size = shape[0] * shape[1]
        flat = self._flat.get(name)
        if flat is None or flat.size < size:
            flat = self._flat[name] = np.empty(size, dtype=dtype)
        return flat[:size].reshape(shape)


def round_layout(m: int, schedule: Sequence[int], tiebreak: str) -> list[tuple[int, np.ndarray]]:
    """Per round: the number of games p and a column order putting each pair's first member in
    columns [0, p), its opponent in [p, 2p), and byes and inactive competitors after them.

    With random tie-breaks the cut owed by round k-1 sits at the front of round k's sort (the
    lowest active), so that round's pairs start after it.
    """
    out = []
    for k, firsts in enumerate(pair_starts(m, schedule)):
        owed = schedule[k - 1] if tiebreak == "random" and k else 0
        a = firsts + owed
        idle = np.setdiff1d(np.arange(m), np.concatenate([a, a + 1]))
        out.append((len(a), np.concatenate([a, a + 1, idle])))
    return out


def pair_starts(m: int, schedule: Sequence[int]) -> list[np.ndarray]:
    """Per round, the sorted positions (among active competitors) that open a pair.

    How many active competitors hold each score is the same in every simulation: a bucket of size s
    sends s // 2 winners up one level and keeps the rest, and the cut removes the lowest levels
    first. So in the score-sorted order the buckets, and the pair slots inside them, sit at fixed
    positions; only who lands where is random. Games per round = number of slots.
    """
    counts = np.zeros(len(schedule) + 1, dtype=np.int64)  # active competitors per score level
    counts[0] = m
    out = []
    for t in schedule:
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        out.append(np.concatenate([s + 2 * np.arange(c // 2) for s, c in zip(starts, counts)]).astype(np.int64))
        winners = counts // 2
        counts -= winners
        counts[1:] += winners[:-1]
        for v in range(len(counts)):
            taken = min(t, counts[v])
            counts[v] -= taken
            t -= taken
    return out


class _Tally:
    """Running sums over batches, so memory stays O(batch) whatever n_sims is."""

    def __init__(self, m: int, n_rounds: int, n_sims: int) -> None:
        self.n = 0
        self.total = np.zeros(m)
        self.square = np.zeros(m)
        self.rank_values = np.zeros(0, dtype=np.int64)
        self.rank_counts = np.zeros((m, 0), dtype=np.int64)
        self.cut = np.zeros((n_rounds, m), dtype=np.int64)
        self.total_score = np.zeros(n_sims, dtype=np.int64)
        self.pairs = 0
        self.pair_x = np.zeros(m)
        self.pair_y = np.zeros(m)
        self.pair_xy = np.zeros(m)

    def add(self, start: int, scores: np.ndarray, cut: np.ndarray, paired: bool) -> None:
        n, m = scores.shape
        self.n += n
        self.total += scores.sum(axis=0)
        self.square += (scores**2).sum(axis=0)
        self.cut += cut
        self.total_score[start : start + n] = scores.sum(axis=1)
        # competition rank = 1 + number of competitors with a strictly higher score
        levels = int(scores.max()) + 2
        hist = np.bincount((scores + levels * np.arange(n)[:, None]).ravel(), minlength=n * levels)
        above = np.cumsum(hist.reshape(n, levels)[:, ::-1], axis=1)[:, ::-1]
        rank = np.take_along_axis(above, scores + 1, axis=1)  # counts at levels > score
        self._count_ranks(rank, np.unique(above[:, 1:]))  # every rank is one of above's columns
        if paired:
            x, y = scores[0 : n - 1 : 2], scores[1:n:2]
            self.pairs += len(y)
            self.pair_x += x.sum(axis=0)
            self.pair_y += y.sum(axis=0)
            self.pair_xy += (x * y).sum(axis=0)

    def _count_ranks(self, rank: np.ndarray, values: np.ndarray) -> None:
        """Add one batch's ranks to per-(competitor, rank value) counts; `values`: sorted, a superset."""
        m = rank.shape[1]
        column = np.searchsorted(values, rank)
        counts = np.bincount((np.arange(m) * len(values) + column).ravel(), minlength=m * len(values))
        union = np.union1d(self.rank_values, values)
        merged = np.zeros((m, len(union)), dtype=np.int64)
        merged[:, np.searchsorted(union, self.rank_values)] = self.rank_counts
        merged[:, np.searchsorted(union, values)] += counts.reshape(m, len(values))
        self.rank_values, self.rank_counts = union, merged

    def result(self, competitors, rounds, schedule, tiebreak, missing, item_bootstrap, games,
               resampled: bool) -> CSDResult:
        n = self.n
        mean = self.total / n
        var = (self.square - n * mean**2) / (n - 1) if n > 1 else np.zeros_like(mean)
        item_sd = None
        if resampled:
            p = self.pairs
            cov = (self.pair_xy - self.pair_x * self.pair_y / p) / (p - 1) if p > 1 else np.full_like(mean, np.nan)
            item_sd = np.sqrt(np.maximum(cov, 0.0))
        occurred = self.rank_counts.sum(axis=0) > 0
        return CSDResult(
            competitors=tuple(competitors),
            rounds=tuple(rounds),
            schedule=schedule,
            tiebreak=tiebreak,
            missing=missing,
            item_bootstrap=item_bootstrap,
            n_sims=n,
            expected=mean,
            se=np.sqrt(np.maximum(var, 0.0) / n),
            item_sd=item_sd,
            rank_values=self.rank_values[occurred],
            rank_value_probs=self.rank_counts[:, occurred] / n,
            survival=1.0 - np.cumsum(self.cut, axis=0).T / n,
            total_score=self.total_score,
            games_played=games,
        )


# ---------------------------------------------------------------------------------------------- inputs
def _item_resampler(
    table: ScoreTable, rounds: Sequence[Round], missing: str
) -> Callable[[np.random.Generator, int], np.ndarray]:
    """draw(rng, n) -> (n, rounds, M) strengths, each from one joint resample of every benchmark's items."""
    if not table.has_replicates:
        raise ValueError("item_bootstrap needs a ScoreTable with replicates (per-item scores)")
    column = {b: j for j, b in enumerate(table.benchmarks)}
    used = list(dict.fromkeys(b for r in rounds for b in r.benchmarks))
    items: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for b in used:
        j = column[b]
        x = table.values[:, j, :] * (1.0 if table.higher_is_better[j] else -1.0)
        x = x[:, ~np.all(np.isnan(x), axis=0)]
        present = ~np.isnan(x)
        partial = np.flatnonzero(present.any(axis=1) & ~present.all(axis=1))
        if partial.size:
            c = partial[0]
            raise ValueError(
                f"item_bootstrap needs each competitor to have all items of a benchmark or none: "
                f"{table.competitors[c]!r} has {present[c].sum()} of {x.shape[1]} items of {b!r}"
            )
        items[b] = (np.nan_to_num(x).T, present.all(axis=1))

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        means = {b: _resampled_means(rng, n, x, has) for b, (x, has) in items.items()}
        strength = np.stack([np.mean([means[b] for b in r.benchmarks], axis=0) for r in rounds], axis=1)
        return _missing_as(strength, missing)

    return draw


def _normal_resampler(
    table: ScoreTable, stderr: np.ndarray, rounds: Sequence[Round], missing: str
) -> Callable[[np.random.Generator, int], np.ndarray]:
    """draw(rng, n) -> (n, rounds, M) strengths from cells drawn independently from N(value, se)."""
    se = np.asarray(stderr, dtype=float)
    if se.shape != (table.n_competitors, table.n_benchmarks):
        raise ValueError(f"cell_stderr must be competitors x benchmarks {(table.n_competitors, table.n_benchmarks)}, "
                         f"got {se.shape}")
    if np.any(se < 0):
        raise ValueError("cell_stderr must not be negative")
    values, se = table.oriented(), np.nan_to_num(se)
    groups = _round_columns(table, rounds)

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        cells = values + se * rng.standard_normal((n, *values.shape))  # (n, M, B)
        strength = np.stack([cells[:, :, g].mean(axis=2) for g in groups], axis=1)
        return _missing_as(strength, missing)

    return draw


def _resampled_means(rng: np.random.Generator, n: int, x: np.ndarray, has: np.ndarray) -> np.ndarray:
    """(n, M) means of the items x (items, M) under n bootstrap resamples, in memory-bounded blocks."""
    n_items = x.shape[0]
    out = np.empty((n, x.shape[1]))
    block = max(1, _BOOTSTRAP_CHUNK // n_items)
    for lo in range(0, n, block):
        c = min(block, n - lo)
        picks = rng.integers(0, n_items, size=(c, n_items)) + n_items * np.arange(c)[:, None]
        counts = np.bincount(picks.ravel(), minlength=c * n_items).reshape(c, n_items)
        out[lo : lo + c] = counts @ x / n_items
    out[:, ~has] = np.nan
    return out


def _round_columns(table: ScoreTable, rounds: Sequence[Round]) -> list[list[int]]:
    """Each round's benchmark columns in the table."""
    column = {b: j for j, b in enumerate(table.benchmarks)}
    return [[column[b] for b in r.benchmarks] for r in rounds]


def _missing_as(strength: np.ndarray, missing: str) -> np.ndarray:
    """NaN stays NaN under "coin" (comparisons with NaN are False); becomes -inf under "loss"."""
    return np.where(np.isnan(strength), -np.inf, strength) if missing == "loss" else strength


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
