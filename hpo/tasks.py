"""HPO tasks: what an optimizer minimises, with its space, default budget and stable anchors.

Three families, all offline and deterministic:
- `bbob-f<fid>-d<dim>[-i<instance>]`: BBOB-style test functions (hpo/bbob.py), the sanity suite;
- `sklearn-digits-svm`, `sklearn-wine-gbm`, `sklearn-breast_cancer-rf`: 3-fold CV error of a
  scikit-learn model on a bundled dataset (no downloads);
- `prune-smollm2`, `prune-smollm2-lean`: per-layer-group pruning ratios of the embedded model,
  looked up in a table of real evaluations (hpo/prune_grid.py), so CI never runs a model.

Stable anchors (best, reference) map a task's costs to "0 = best known, 1 = typical": they belong to
the task, not to whoever else was run, so leaderboard scores do not move when an optimizer joins.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from hpo.bbob import FUNCTIONS, BBOBFunction
from hpo.space import Param, Space

ANCHOR_SEEDS = 31  # random-search runs whose median final cost is a vectorisable task's anchor 1

Objective = Callable[[dict[str, Any], "int | None"], float]


def default_budget(dim: int) -> int:
    """carps' default number of trials: ceil(20 + 40 sqrt(d))."""
    return math.ceil(20 + 40 * math.sqrt(dim))


@dataclass(frozen=True)
class Task:
    """A minimisation problem. `objective(config, fidelity)` returns the cost (lower is better).

    `vectorised` maps an (n, dim) array of unit-cube points to costs at full fidelity; tasks that have
    it get the random-search median as anchor 1, the others the cost of `default` (untuned settings).
    """

    name: str
    space: Space
    objective: Objective
    max_fidelity: int | None = None
    best_known: float = 0.0
    vectorised: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    default: dict[str, Any] | None = None

    @property
    def dim(self) -> int:
        return self.space.dim

    @property
    def n_trials(self) -> int:
        return default_budget(self.dim)

    def evaluate(self, config: dict[str, Any], fidelity: int | None = None) -> float:
        return float(self.objective(config, fidelity if fidelity is not None else self.max_fidelity))

    def anchors(self) -> tuple[float, float]:
        """(cost mapped to 0, cost mapped to 1) for stable normalisation; computed once per task."""
        return _anchors(self.name)


@functools.cache
def _anchors(name: str) -> tuple[float, float]:
    task = make_task(name)
    if task.vectorised is not None:
        rng = np.random.default_rng(20250601)
        points = rng.random((ANCHOR_SEEDS * task.n_trials, task.dim))
        finals = task.vectorised(points).reshape(ANCHOR_SEEDS, task.n_trials).min(axis=1)
        reference = float(np.median(finals))
    else:
        reference = task.evaluate(task.default or {})
    if not reference > task.best_known:
        raise ValueError(f"task {name}: reference anchor {reference} is not above the best known {task.best_known}")
    return task.best_known, reference


# --------------------------------------------------------------------------- BBOB
_BBOB = re.compile(r"bbob-f(\d+)-d(\d+)(?:-i(\d+))?")


def _bbob_task(name: str, fid: int, dim: int, instance: int) -> Task:
    fn = BBOBFunction(fid, dim, instance)
    space = Space.box(dim, -5.0, 5.0)

    def objective(config: dict[str, Any], fidelity: int | None) -> float:
        return float(fn(np.array([config[n] for n in space.names]))[0])

    return Task(name, space, objective, best_known=fn.f_opt, vectorised=lambda u: fn(-5.0 + 10.0 * u))


# --------------------------------------------------------------------------- scikit-learn
def _svm(config: dict[str, Any]):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), SVC(**config))


def _gbm(config: dict[str, Any]):
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(random_state=0, **config)


def _forest(config: dict[str, Any]):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(random_state=0, n_jobs=1, **config)


SKLEARN = {
    "sklearn-digits-svm": ("load_digits", _svm, Space((
        Param("C", 1e-2, 1e3, log=True), Param("gamma", 1e-5, 1e-1, log=True)))),
    "sklearn-wine-gbm": ("load_wine", _gbm, Space((
        Param("n_estimators", 10, 100, integer=True), Param("learning_rate", 1e-3, 1.0, log=True),
        Param("max_depth", 1, 5, integer=True), Param("subsample", 0.3, 1.0)))),
    "sklearn-breast_cancer-rf": ("load_breast_cancer", _forest, Space((
        Param("n_estimators", 10, 100, integer=True), Param("max_depth", 1, 12, integer=True),
        Param("max_features", 0.05, 1.0), Param("min_samples_leaf", 1, 20, integer=True),
        Param("criterion", choices=("gini", "entropy"))))),
}


@functools.cache
def _dataset(loader: str) -> tuple[np.ndarray, np.ndarray]:
    import sklearn.datasets

    data = getattr(sklearn.datasets, loader)()
    return data.data, data.target


def _sklearn_task(name: str) -> Task:
    loader, build, space = SKLEARN[name]

    def objective(config: dict[str, Any], fidelity: int | None) -> float:
        from sklearn.model_selection import StratifiedKFold, cross_val_score

        x, y = _dataset(loader)
        folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
        return 1.0 - float(np.mean(cross_val_score(build(config), x, y, cv=folds)))

    return Task(name, space, objective, best_known=0.0, default={})


# --------------------------------------------------------------------------- pruning the embedded model
PRUNE = {"prune-smollm2": 0.5, "prune-smollm2-lean": 1.5}  # weight of the kept-weight fraction in the cost


def _prune_task(name: str) -> Task:
    from hpo.prune_grid import load_grid

    grid = load_grid()
    weight = PRUNE[name]
    space = Space(tuple(Param(f"ratio_{g}", grid.levels[0], grid.levels[-1]) for g in range(grid.n_groups)))

    def objective(config: dict[str, Any], fidelity: int | None) -> float:
        ratios = np.array([[config[n] for n in space.names]])
        return float(grid.cost(ratios, weight, fidelity)[0])

    def vectorised(u: np.ndarray) -> np.ndarray:
        return grid.cost(grid.levels[0] + u * (grid.levels[-1] - grid.levels[0]), weight, None)

    return Task(name, space, objective, max_fidelity=grid.n_items, best_known=grid.best_cost(weight),
                vectorised=vectorised)


# --------------------------------------------------------------------------- registry
def make_task(name: str) -> Task:
    """The task called `name`; unknown names raise ValueError listing the families."""
    match = _BBOB.fullmatch(name)
    if match:
        fid, dim, instance = int(match[1]), int(match[2]), int(match[3] or 0)
        if fid not in FUNCTIONS or not 2 <= dim <= 40:
            raise ValueError(f"task {name!r}: BBOB functions are f{sorted(FUNCTIONS)} in 2 to 40 dimensions")
        return _bbob_task(name, fid, dim, instance)
    if name in SKLEARN:
        return _sklearn_task(name)
    if name in PRUNE:
        return _prune_task(name)
    raise ValueError(f"unknown HPO task {name!r}: use bbob-f<fid>-d<dim>[-i<instance>] "
                     f"(fid in {sorted(FUNCTIONS)}), {', '.join(SKLEARN)} or {', '.join(PRUNE)}")
