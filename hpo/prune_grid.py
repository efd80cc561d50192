"""The cached pruning table behind the `prune-smollm2*` tasks, and its continuous interpolation.

hpo/data/prune_smollm2.csv holds real bits-per-byte of SmolLM2-135M with each of 4 layer groups
magnitude-pruned at one of 4 ratios, per evaluation item (made by scripts/make_hpo_prune_grid.py).
A lookup table keeps comparisons cheap and deterministic; multilinear interpolation between grid
points gives optimizers a continuous space without inventing values outside the measured range.
The fidelity is the number of items averaged, so cheaper, noisier evaluations are real subsets.
"""

from __future__ import annotations

import functools
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

GRID_FILE = Path(__file__).parent / "data" / "prune_smollm2.csv"


@dataclass(frozen=True)
class PruneGrid:
    levels: np.ndarray  # pruning ratios measured per group, increasing
    values: np.ndarray  # bits per byte, shape (len(levels),) * n_groups + (n_items,)
    group_params: np.ndarray  # prunable weights per group

    @property
    def n_groups(self) -> int:
        return self.values.ndim - 1

    @property
    def n_items(self) -> int:
        return self.values.shape[-1]

    def bits_per_byte(self, ratios: np.ndarray, fidelity: int | None = None) -> np.ndarray:
        """Mean bits per byte over the first `fidelity` items, multilinearly interpolated at (n, groups) ratios."""
        table = self.values[..., : fidelity or self.n_items].mean(axis=-1)
        ratios = np.clip(np.atleast_2d(ratios), self.levels[0], self.levels[-1])
        low = np.clip(np.searchsorted(self.levels, ratios, side="right") - 1, 0, len(self.levels) - 2)
        frac = (ratios - self.levels[low]) / (self.levels[low + 1] - self.levels[low])
        out = np.zeros(len(ratios))
        for corner in itertools.product((0, 1), repeat=self.n_groups):
            bits = np.array(corner)
            weight = np.prod(np.where(bits, frac, 1.0 - frac), axis=1)
            out += weight * table[tuple((low + bits).T)]
        return out

    def density(self, ratios: np.ndarray) -> np.ndarray:
        """Fraction of prunable weights kept."""
        return (1.0 - np.atleast_2d(ratios)) @ self.group_params / self.group_params.sum()

    def cost(self, ratios: np.ndarray, weight: float, fidelity: int | None) -> np.ndarray:
        """Quality against size: bits per byte plus `weight` times the kept fraction."""
        ratios = np.clip(np.atleast_2d(ratios), self.levels[0], self.levels[-1])
        return self.bits_per_byte(ratios, fidelity) + weight * self.density(ratios)

    def best_cost(self, weight: float) -> float:
        """Exact minimum of `cost` at full fidelity: a multilinear function peaks on grid vertices."""
        vertices = np.array(list(itertools.product(self.levels, repeat=self.n_groups)))
        return float(self.cost(vertices, weight, None).min())


@functools.cache
def load_grid(path: Path = GRID_FILE) -> PruneGrid:
    with path.open() as handle:
        meta = json.loads(handle.readline().lstrip("# "))
    frame = pd.read_csv(path, comment="#")
    levels = np.asarray(meta["levels"], dtype=float)
    groups = [c for c in frame.columns if c.startswith("r")]
    n_items = int(frame["item"].max()) + 1
    values = np.full((len(levels),) * len(groups) + (n_items,), np.nan)
    index = tuple(np.searchsorted(levels, frame[g].to_numpy()) for g in groups)
    values[index + (frame["item"].to_numpy(),)] = frame["bpb"].to_numpy()
    if np.isnan(values).any():
        raise ValueError(f"{path}: the grid has {int(np.isnan(values).sum())} missing cells")
    return PruneGrid(levels, values, np.asarray(meta["group_params"], dtype=float))
