"""Adaptive evaluation (`harness eval --adaptive`): each model answers a task's items in small batches, chosen by
what its answers so far say, until the budget is spent or the estimate is precise enough.

With an item response fit of the task in the store (`harness irt fit`), batches are chosen by Fisher information
at the model's current ability (tournaments.cat) and the estimate is p-IRT with its standard error; without one,
the items are a seeded uniform random subset and the estimate is their mean with the finite-population standard
error. Every batch goes through the normal runner, cache and store (a run over the items chosen so far; runs over
chosen items are left out of the leaderboard), so a later full run recomputes none of these answers and the same
command run again computes nothing. The estimate is stored in `estimates` beside the items and the method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from harness.common.errors import HarnessError
from harness.evaluation.config import EvalSettings
from tournaments.adaptive import budget_items
from tournaments.cat import irt_estimate, next_items, subset_estimate
from tournaments.irt import IRTFit

CAT_ROUNDS = 8
"""Without --batch, a budget of n items is asked in batches of ceil(n / CAT_ROUNDS), at least MIN_BATCH."""
MIN_BATCH = 4


@dataclass(frozen=True)
class Estimate:
    model: str
    task: str
    metric: str
    method: str            # cat-2pl (from an item response fit) or random
    estimate: float        # the task's mean primary metric over all its items, estimated
    stderr: float
    items: tuple[int, ...]  # the doc ids answered
    n_total: int           # the task's items
    computed: int          # requests the model computed (the rest came from the store)
    run_id: str
    fit_id: str | None


def evaluate_adaptive(models: Sequence[str], tasks: Sequence[str], db: str | Path, settings: EvalSettings, *,
                      budget: float, target_se: float | None = None, batch: int | None = None, seed: int = 0,
                      display="none", **evaluate_options) -> list[Estimate]:
    """One Estimate per (model, leaf task), stored; see the module docstring."""
    from harness.api import evaluate

    if settings.limit is not None or settings.items is not None:
        raise HarnessError("--limit: an adaptive evaluation chooses its own items")
    if target_se is not None and not target_se > 0:
        raise HarnessError(f"--target-se {target_se:g}: a standard error above 0")
    if batch is not None and batch < 1:
        raise HarnessError(f"--adaptive-batch {batch}: at least 1 item")

    def run(model: str, task: str, items: tuple[int, ...]):
        [outcome] = evaluate([model], [task], db, display=display,
                             settings=settings.model_copy(update={"items": items}), **evaluate_options)
        if outcome.status == "failed":
            raise HarnessError(f"adaptive: {outcome.model} · {outcome.task} failed: {outcome.error}")
        return outcome

    estimates = []
    for task in _leaf_tasks(tasks, evaluate_options.get("include_path", ())):
        for model in models:
            estimates.append(_adaptive_task(run, model, task, db, budget, target_se, batch, seed))
    return estimates


def _adaptive_task(run, model: str, task, db, budget: float, target_se: float | None, batch: int | None,
                   seed: int) -> Estimate:
    from harness.store import Store

    found, size = None, task.n_items
    if Path(db).exists():  # else the first round creates the store: nothing fitted, no size known
        with Store.open(db, read_only=True) as store:
            found, size = store.latest_irt_fit(task.name), store.task_items([task.task_id]).get(task.task_id) or size
    if found is not None:
        fit_id, params = found
        items, fit = _fit_items(task.name, fit_id, params, size)
        method, n_total = "cat-2pl" if not np.allclose(fit.discrimination, 1.0) else "cat-1pl", len(items)
    elif size is None:
        raise HarnessError(f"--adaptive: task '{task.name}' has no item response fit and its size is not known yet; "
                           "fit one (harness irt fit) or evaluate it once with --limit 1")
    else:
        fit_id, fit, items, method, n_total = None, None, np.arange(size), "random", size
    try:
        wanted = budget_items(budget, n_total)
    except ValueError as exc:
        raise HarnessError(f"--budget: {exc}") from None
    step = batch or max(MIN_BATCH, math.ceil(wanted / CAT_ROUNDS))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    order = rng.permutation(n_total) if fit is None else None
    seen = np.full(n_total, np.nan)
    asked: list[int] = []
    computed = 0
    while len(asked) < wanted:
        take = min(step, wanted - len(asked))
        pick = order[len(asked):len(asked) + take] if fit is None else next_items(fit, seen, take, rng)
        asked += [int(i) for i in pick]
        chosen = tuple(sorted(int(items[i]) for i in asked))
        outcome = run(model, task.name, chosen)
        computed += outcome.n_computed
        values = _item_values(db, outcome.run_id, task.name)
        seen[asked] = [values[int(items[i])] for i in asked]
        value, stderr = irt_estimate(fit, seen) if fit is not None else subset_estimate(seen[asked], n_total)
        if target_se is not None and stderr <= target_se:
            break
    with Store.open(db) as store:
        store.save_estimate({"run_id": outcome.run_id, "metric": outcome.metric, "method": method, "fit_id": fit_id,
                             "estimate": value, "stderr": None if math.isnan(stderr) else stderr,
                             "n_items": len(chosen), "items": list(chosen), "budget": wanted, "target_se": target_se,
                             "seed": seed})
    return Estimate(outcome.model, task.name, outcome.metric, method, value, stderr, chosen, n_total, computed,
                    outcome.run_id, fit_id)


def _leaf_tasks(tasks: Sequence[str], include_path) -> list:
    from harness.common.paths import results_dir
    from harness.tasks.registry import resolve_tasks

    return resolve_tasks(list(tasks), results_dir() / "tasks", tuple(str(p) for p in include_path)).tasks


def _fit_items(task: str, fit_id: str, params, size: int | None) -> tuple[np.ndarray, IRTFit]:
    """The fit's items as doc ids (numeric order) and the fit itself; a fit whose items are not this task's doc ids
    (an import's example ids) is refused in one line."""
    try:
        doc_ids = np.array([int(item) for item in params["item"]])
    except ValueError:
        raise HarnessError(f"--adaptive: the item response fit {fit_id} of '{task}' names items that are not doc ids "
                           f"(e.g. {params['item'].iloc[0]!r}); fit one on evaluated runs or an import of doc ids")
    if size is not None and (doc_ids.min() < 0 or doc_ids.max() >= size):
        raise HarnessError(f"--adaptive: the item response fit {fit_id} of '{task}' names doc id "
                           f"{int(doc_ids.max())}, but the task has {size} items")
    order = np.argsort(doc_ids, kind="stable")
    return doc_ids[order], IRTFit(ability=np.zeros(0), difficulty=params["difficulty"].to_numpy(float)[order],
                                  discrimination=params["discrimination"].to_numpy(float)[order], converged=True,
                                  n_iter=0, objective=math.nan)


def _item_values(db, run_id: str, task: str) -> dict[int, float]:
    """The primary metric per doc id of one run; scores in [0, 1] only (what an item response model predicts)."""
    from harness.store import Store

    with Store.open(db, read_only=True) as store:
        rows = store.item_rows([run_id])
    values = dict(zip(rows["doc_id"].astype(int), rows["value"].astype(float)))
    outside = [v for v in values.values() if not 0.0 <= v <= 1.0]
    if outside:
        raise HarnessError(f"--adaptive: task '{task}' scores items outside [0, 1] (e.g. {outside[0]:g}); adaptive "
                           "evaluation needs a per-item score such as accuracy")
    return values
