"""ScoreTable: the one shape every ranker accepts (competitors x benchmarks, optionally x replicates).

Models on benchmarks, optimizers on HPO tasks and imported leaderboards all become a ScoreTable, so
`tournaments/` never needs to know where numbers came from. Missing cells are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ScoreTable:
    """Scores of `competitors` on `benchmarks`.

    `values` has shape (n_competitors, n_benchmarks) or (n_competitors, n_benchmarks, n_replicates);
    replicates are items, seeds or checkpoints, NaN-padded where a benchmark has fewer of them.
    """

    competitors: tuple[str, ...]
    benchmarks: tuple[str, ...]
    values: np.ndarray
    higher_is_better: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=float)
        object.__setattr__(self, "competitors", tuple(str(c) for c in self.competitors))
        object.__setattr__(self, "benchmarks", tuple(str(b) for b in self.benchmarks))
        if values.ndim not in (2, 3):
            raise ValueError(f"values must be 2-D or 3-D, got shape {values.shape}")
        expected = (len(self.competitors), len(self.benchmarks))
        if values.shape[:2] != expected:
            raise ValueError(f"values shape {values.shape[:2]} does not match (competitors, benchmarks) {expected}")
        for label, names in (("competitor", self.competitors), ("benchmark", self.benchmarks)):
            if len(set(names)) != len(names):
                dupes = sorted({n for n in names if names.count(n) > 1})
                raise ValueError(f"duplicate {label} names: {', '.join(dupes)}")
        hib = self.higher_is_better
        hib = np.ones(expected[1], dtype=bool) if hib is None else np.asarray(hib, dtype=bool)
        if hib.shape != (expected[1],):
            raise ValueError(f"higher_is_better needs one flag per benchmark ({expected[1]}), got {hib.shape}")
        values.setflags(write=False)
        hib.setflags(write=False)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "higher_is_better", hib)

    # ------------------------------------------------------------------ shape
    @property
    def n_competitors(self) -> int:
        return len(self.competitors)

    @property
    def n_benchmarks(self) -> int:
        return len(self.benchmarks)

    @property
    def has_replicates(self) -> bool:
        return self.values.ndim == 3

    # ------------------------------------------------------------------ views
    def cell_means(self) -> np.ndarray:
        """(competitors, benchmarks) matrix; replicates averaged, NaN where nothing was observed."""
        if not self.has_replicates:
            return np.array(self.values)
        counts = np.sum(~np.isnan(self.values), axis=2)
        sums = np.nansum(self.values, axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)

    def oriented(self) -> np.ndarray:
        """Cell means with lower-is-better benchmarks negated, so larger is always better."""
        sign = np.where(self.higher_is_better, 1.0, -1.0)
        return self.cell_means() * sign

    @property
    def missing(self) -> np.ndarray:
        return np.isnan(self.cell_means())

    def select(
        self, competitors: Sequence[str] | None = None, benchmarks: Sequence[str] | None = None
    ) -> "ScoreTable":
        """A sub-table, in the order given; unknown names raise KeyError naming them."""
        ci = self._indices(self.competitors, competitors, "competitor")
        bi = self._indices(self.benchmarks, benchmarks, "benchmark")
        return ScoreTable(
            competitors=tuple(self.competitors[i] for i in ci),
            benchmarks=tuple(self.benchmarks[j] for j in bi),
            values=self.values[np.ix_(ci, bi)] if not self.has_replicates else self.values[ci][:, bi],
            higher_is_better=self.higher_is_better[bi],
        )

    @staticmethod
    def _indices(names: tuple[str, ...], wanted: Sequence[str] | None, label: str) -> list[int]:
        if wanted is None:
            return list(range(len(names)))
        position = {n: i for i, n in enumerate(names)}
        unknown = [w for w in wanted if w not in position]
        if unknown:
            raise KeyError(f"unknown {label}(s): {', '.join(map(str, unknown))}")
        return [position[w] for w in wanted]

    def to_frame(self) -> pd.DataFrame:
        """Cell means as a DataFrame (competitors as index, benchmarks as columns)."""
        return pd.DataFrame(self.cell_means(), index=list(self.competitors), columns=list(self.benchmarks))

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, higher_is_better: Mapping[str, bool] | Iterable[bool] | None = None
    ) -> "ScoreTable":
        """From a wide DataFrame: index = competitors, columns = benchmarks."""
        hib = _direction_flags(list(frame.columns), higher_is_better)
        return cls(tuple(frame.index), tuple(frame.columns), frame.to_numpy(dtype=float), hib)

    @classmethod
    def from_long(
        cls,
        frame: pd.DataFrame,
        competitor: str = "competitor",
        benchmark: str = "benchmark",
        value: str = "value",
        replicate: str | None = None,
        higher_is_better: Mapping[str, bool] | None = None,
    ) -> "ScoreTable":
        """From long rows (one per competitor, benchmark[, replicate]); duplicate keys raise."""
        keys = [competitor, benchmark] + ([replicate] if replicate else [])
        missing_cols = [c for c in keys + [value] if c not in frame.columns]
        if missing_cols:
            raise KeyError(f"missing column(s): {', '.join(missing_cols)}")
        dupes = frame.duplicated(subset=keys)
        if dupes.any():
            row = frame.loc[dupes, keys].iloc[0].to_dict()
            raise ValueError(f"duplicate score for {row}")
        competitors = list(dict.fromkeys(frame[competitor].astype(str)))
        benchmarks = list(dict.fromkeys(frame[benchmark].astype(str)))
        ci = frame[competitor].astype(str).map({c: i for i, c in enumerate(competitors)}).to_numpy()
        bi = frame[benchmark].astype(str).map({b: j for j, b in enumerate(benchmarks)}).to_numpy()
        vals = frame[value].to_numpy(dtype=float)
        hib = _direction_flags(benchmarks, higher_is_better)
        if replicate is None:
            out = np.full((len(competitors), len(benchmarks)), np.nan)
            out[ci, bi] = vals
            return cls(tuple(competitors), tuple(benchmarks), out, hib)
        # Replicates are positioned by their order of appearance within each benchmark.
        reps = frame[replicate].astype(str).to_numpy()
        rep_pos = np.empty(len(frame), dtype=int)
        per_bench: dict[int, dict[str, int]] = {}
        for row, (j, r) in enumerate(zip(bi, reps)):
            slots = per_bench.setdefault(int(j), {})
            rep_pos[row] = slots.setdefault(r, len(slots))
        n_rep = max((len(s) for s in per_bench.values()), default=0)
        out = np.full((len(competitors), len(benchmarks), n_rep), np.nan)
        out[ci, bi, rep_pos] = vals
        return cls(tuple(competitors), tuple(benchmarks), out, hib)


def _direction_flags(benchmarks: list[str], higher_is_better) -> np.ndarray:
    if higher_is_better is None:
        return np.ones(len(benchmarks), dtype=bool)
    if isinstance(higher_is_better, Mapping):
        return np.array([bool(higher_is_better.get(b, True)) for b in benchmarks], dtype=bool)
    return np.asarray(list(higher_is_better), dtype=bool)
