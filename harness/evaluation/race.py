"""A live race for the top K: tournaments.race, with the runner as its oracle.

Each round evaluates the models still racing on each task's first n items (`--limit n`), through the normal
runner, cache and store: answers are shared by request, so going from 8 to 16 items computes only the 8 new ones,
and a race that is stopped and run again recomputes nothing. Items are each task's first n in the task's own order.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from harness.common.errors import HarnessError
from harness.evaluation.config import EvalSettings, ModelSpec
from tournaments.race import RaceResult, race


@dataclass(frozen=True)
class LiveRace:
    models: list[str]        # stored model names, in the order of RaceResult's rows
    tasks: list[str]
    sizes: list[int]         # each task's full number of items
    result: RaceResult
    computed: int            # requests the model computed during the race (the rest came from the store)

    @property
    def cost(self) -> float:
        return self.result.cost(self.sizes)


def race_models(models: Sequence[str], tasks: Sequence[str], k: int, db: str | Path, settings: EvalSettings, *,
                confidence: float = 0.95, budget: float = 1.0, start: int = 8, seed: int = 0, display="none",
                **evaluate_options) -> LiveRace:
    from harness.api import evaluate
    from harness.store import Store

    if settings.limit is not None:
        raise HarnessError("--limit: a race chooses how many items each model gets")
    from harness.weights.models import resolve

    specs = [ModelSpec.parse(m) for m in models]
    targets = [spec.target for spec in specs]
    names = [resolve(spec.target, name=spec.name if spec.named else None).name for spec in specs]  # as stored
    computed = 0

    def run(model_ids: list[int], task_names: list[str], n: int) -> None:
        nonlocal computed
        outcomes = evaluate([targets[m] for m in model_ids], task_names, db, display=display,
                            settings=settings.model_copy(update={"limit": n}), **evaluate_options)
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            raise HarnessError(f"race: {failed[0].model} · {failed[0].task} failed: {failed[0].error}")
        computed += sum(o.n_computed for o in outcomes)

    first = max(2, start)
    run(list(range(len(targets))), list(tasks), first)  # also registers every leaf task and its size
    with Store.open(db, read_only=True) as store:
        rows = store.leaderboard_rows(models=names, limit=first)
        if rows.empty:
            raise HarnessError(f"race: no finished runs of {', '.join(names)} on {first} items")
        leaves = list(dict.fromkeys(rows["task"]))
        by_task = rows.drop_duplicates("task").set_index("task")
        sizes = store.task_items(list(by_task["task_id"]))
    n_items = [int(sizes[by_task.at[t, "task_id"]] or 0) for t in leaves]
    if not all(n_items):
        raise HarnessError(f"race: the size of task {leaves[n_items.index(0)]!r} is not known")

    def oracle(asked: list[tuple[int, int, int]]) -> list[np.ndarray]:
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for model, task, n in asked:
            groups[task, n].append(model)
        for (task, n), model_ids in groups.items():
            run(model_ids, [leaves[task]], n)
        return [_item_values(db, names[model], leaves[task], n) for model, task, n in asked]

    higher = [bool(by_task.at[t, "higher_is_better"]) for t in leaves]
    result = race(oracle, len(names), n_items, higher, k, confidence=confidence, budget=budget, start=first,
                  seed=seed)
    return LiveRace(names, leaves, n_items, result, computed)


def _item_values(db, model: str, task: str, n: int) -> np.ndarray:
    """The primary metric per item of the latest finished run of (model, task) on its first n items."""
    from harness.store import Store
    from harness.tables.items import latest_item_values

    with Store.open(db, read_only=True) as store:
        values = latest_item_values(store, model, task, n).to_numpy()
    if len(values) == 0:
        raise HarnessError(f"race: no per-item results for {model} · {task} on {n} items")
    return values
