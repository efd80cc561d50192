"""A race for the top K: spend items only on models whose place on either side of the top-K boundary is unsure.

Each round every model still racing gets more items (the first n of each task, n growing geometrically, so a later
round reuses every answer of the earlier ones). After each round an item bootstrap (each model's per-task items
resampled on their own) gives every model's probability of being in the top K by mean win rate over the tasks; a
model whose probability is at least `confidence`, or at most 1 - `confidence`, is settled and gets no more items.
The race ends when every model is settled, the budget is spent, or the racing models have every item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from tournaments.aggregate import mean_win_rate
from tournaments.table import ScoreTable

Oracle = Callable[[list[tuple[int, int, int]]], list[np.ndarray]]
"""oracle([(model, task, n), ...]) -> for each, the per-item scores of that model's first n items of that task
(asked once per round, so a live oracle can evaluate a round's models together)."""


@dataclass(frozen=True)
class RaceResult:
    top: list[int]                 # the K models ranked highest by mean win rate on the items evaluated
    mwr: np.ndarray                # each model's mean win rate on its evaluated items
    p_top: np.ndarray              # each model's bootstrap probability of being in the top K
    items: np.ndarray              # (models, tasks): items evaluated
    rounds: int
    settled: bool                  # every model settled at the stated confidence

    def cost(self, n_items: Sequence[int]) -> float:
        """Items evaluated as a fraction of a full evaluation (every model on every item)."""
        return float(self.items.sum() / (len(self.items) * np.sum(n_items)))


def top_k_probability(values: list[list[np.ndarray]], higher_is_better: Sequence[bool], k: int, n_boot: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(mean win rates, probability of a top-k place) from values[model][task], each model's items bootstrapped."""
    n_models, n_tasks = len(values), len(higher_is_better)
    names, tasks = tuple(map(str, range(n_models))), tuple(map(str, range(n_tasks)))

    def mwr(scores: np.ndarray) -> np.ndarray:
        return mean_win_rate(ScoreTable(names, tasks, scores, np.asarray(higher_is_better))).scores

    draws = np.empty((n_boot, n_models, n_tasks))
    for m, row in enumerate(values):
        for t, v in enumerate(row):
            draws[:, m, t] = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    boot = np.array([mwr(draw) for draw in draws])
    # a model with `a` models strictly ahead and `t` tied with it takes each place a .. a+t with equal chance
    ahead = (boot[:, None, :] > boot[:, :, None]).sum(-1)
    tied = (boot[:, None, :] == boot[:, :, None]).sum(-1) - 1
    p_top = np.clip((k - ahead) / (tied + 1), 0.0, 1.0).mean(axis=0)
    return mwr(np.array([[v.mean() for v in row] for row in values])), p_top


def race(oracle: Oracle, n_models: int, n_items: Sequence[int], higher_is_better: Sequence[bool], k: int,
         confidence: float = 0.95, budget: float = 1.0, start: int = 8, growth: float = 2.0, n_boot: int = 1000,
         seed: int = 0) -> RaceResult:
    if not 0 < k < n_models:
        raise ValueError(f"top {k}: give 0 < K < the number of models ({n_models})")
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence {confidence}: give a value between 0.5 and 1")
    rng = np.random.default_rng(seed)
    full = np.asarray(n_items)
    items = np.tile(np.minimum(full, max(2, start)), (n_models, 1))
    values = _ask(oracle, items, range(n_models))
    rounds = 1
    while True:
        mwr, p_top = top_k_probability(values, higher_is_better, k, n_boot, rng)
        racing = (p_top < confidence) & (p_top > 1 - confidence)
        grown = np.minimum(full, np.ceil(items * growth).astype(int))
        can_grow = racing & (grown > items).any(axis=1)
        extra = ((grown - items) * can_grow[:, None]).sum()
        if not can_grow.any() or (items.sum() + extra) / (n_models * full.sum()) > budget + 1e-12:
            break
        items[can_grow] = grown[can_grow]
        for m, row in zip(np.flatnonzero(can_grow), _ask(oracle, items, np.flatnonzero(can_grow))):
            values[m] = row
        rounds += 1
    top = sorted(range(n_models), key=lambda m: -mwr[m])[:k]
    return RaceResult(top, mwr, p_top, items, rounds, bool(not racing.any()))


def _ask(oracle: Oracle, items: np.ndarray, models) -> list[list[np.ndarray]]:
    """One oracle call for every task of `models` at their item counts; rows in the order of `models`."""
    asked = [(int(m), t, int(items[m, t])) for m in models for t in range(items.shape[1])]
    answers = iter(oracle(asked))
    return [[next(answers) for _ in range(items.shape[1])] for _ in models]
