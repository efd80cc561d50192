"""The sequential study loop: every (optimizer, task, seed) run, one stored row per trial, resumable.

A run's trials are written in one bulk insert when the run ends, so the store never holds half a
run; a rerun of the same study skips runs that already have their full budget of trials. Seeds make
runs reproducible, so a run lost to a crash is simply redone.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable

import pyarrow as pa

from hpo.config import StudySpec
from hpo.optimizers import make_optimizer
from hpo.tasks import Task, make_task


@dataclass(frozen=True)
class RunTiming:
    """Where one run's wall time went; `overhead` is ours (bookkeeping plus `store_s`, the insert)."""

    trials: int
    total_s: float
    optimizer_s: float
    evaluate_s: float
    store_s: float = 0.0

    @property
    def overhead_s(self) -> float:
        return self.total_s - self.optimizer_s - self.evaluate_s


@dataclass
class StudyResult:
    ran: list[tuple[str, str, int]] = field(default_factory=list)
    skipped: list[tuple[str, str, int]] = field(default_factory=list)
    timings: list[RunTiming] = field(default_factory=list)


def run_one(study: str, task: Task, optimizer: str, seed: int, n_trials: int) -> tuple[pa.Table, RunTiming]:
    """Run one optimizer on one task for `n_trials` trials; the rows for `hpo_trials` and the timing."""
    started = time.perf_counter()
    opt = make_optimizer(optimizer, task.space, seed, n_trials)
    optimizer_s = time.perf_counter() - started  # building the optimizer is the optimizer's cost too
    evaluate_s = 0.0
    configs, costs, walls = [], [], []
    for _ in range(n_trials):
        t0 = time.perf_counter()
        config = opt.ask()
        t1 = time.perf_counter()
        cost = task.evaluate(config)
        t2 = time.perf_counter()
        opt.tell(config, cost)
        t3 = time.perf_counter()
        optimizer_s += (t1 - t0) + (t3 - t2)
        evaluate_s += t2 - t1
        configs.append(json.dumps(config))
        costs.append(cost)
        walls.append(t3 - t0)
    rows = pa.table({
        "study": pa.array([study] * n_trials, pa.string()),
        "optimizer": pa.array([optimizer] * n_trials, pa.string()),
        "task": pa.array([task.name] * n_trials, pa.string()),
        "seed": pa.array([seed] * n_trials, pa.int32()),
        "trial": pa.array(range(n_trials), pa.int32()),
        "config": pa.array(configs, pa.string()),
        "cost": pa.array(costs, pa.float64()),
        "budget": pa.array([task.max_fidelity] * n_trials, pa.float64()),
        "wall_time": pa.array(walls, pa.float64()),
    })
    return rows, RunTiming(n_trials, time.perf_counter() - started, optimizer_s, evaluate_s)


def run_study(store, spec: StudySpec,
              on_run: Callable[[str, str, int, str, float], None] | None = None) -> StudyResult:
    """Run every missing (optimizer, task, seed) of `spec` into `store`; `on_run` hears about each."""
    tasks = [make_task(name) for name in spec.tasks]
    done = store.hpo_runs(spec.study)
    finished = {(r.optimizer, r.task, int(r.seed)): int(r.n_trials) for r in done.itertuples()}
    result = StudyResult()
    for task in tasks:
        budget = spec.budget(task)
        for optimizer in spec.optimizers:
            for seed in spec.seeds:
                key = (optimizer, task.name, seed)
                if finished.get(key, 0) >= budget:
                    result.skipped.append(key)
                    if on_run:
                        on_run(optimizer, task.name, seed, "skipped", 0.0)
                    continue
                started = time.perf_counter()
                rows, timing = run_one(spec.study, task, optimizer, seed, budget)
                inserting = time.perf_counter()
                store.ingest("hpo_trials", rows)
                done_at = time.perf_counter()
                timing = RunTiming(timing.trials, done_at - started, timing.optimizer_s, timing.evaluate_s,
                                   done_at - inserting)
                result.ran.append(key)
                result.timings.append(timing)
                if on_run:
                    on_run(optimizer, task.name, seed, "done", timing.total_s)
    return result
