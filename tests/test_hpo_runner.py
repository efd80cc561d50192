"""Optimizers and the study loop: seeds, stored rows and resuming."""

from __future__ import annotations

import json

import pytest

from harness.store import Store
from hpo.config import StudySpec
from hpo.optimizers import OPTIMIZERS
from hpo.runner import run_one, run_study
from hpo.tasks import make_task


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_seeds_reproduce_trials(optimizer):
    task = make_task("bbob-f15-d3")
    first, _ = run_one("s", task, optimizer, seed=3, n_trials=12)
    again, _ = run_one("s", task, optimizer, seed=3, n_trials=12)
    assert first.column("config").to_pylist() == again.column("config").to_pylist()
    assert first.column("cost").to_pylist() == again.column("cost").to_pylist()
    configs = [json.loads(c) for c in first.column("config").to_pylist()]
    assert all(set(c) == set(task.space.names) and all(-5 <= v <= 5 for v in c.values()) for c in configs)


@pytest.mark.parametrize("optimizer", ["random", "optuna-tpe"])
def test_other_seeds_give_other_trials(optimizer):
    task = make_task("bbob-f1-d2")
    a, _ = run_one("s", task, optimizer, seed=0, n_trials=5)
    b, _ = run_one("s", task, optimizer, seed=1, n_trials=5)
    assert a.column("config").to_pylist() != b.column("config").to_pylist()


def test_study_stores_one_row_per_trial_and_resumes(tmp_path):
    db = tmp_path / "h.duckdb"
    small = StudySpec(study="s", optimizers=("random", "optuna-cmaes"), tasks=("bbob-f1-d2", "bbob-f8-d3"),
                      seeds=(0,), n_trials=6)
    with Store.open(db) as store:
        first = run_study(store, small)
        assert len(first.ran) == 4 and not first.skipped
        trials = store.hpo_trials("s")
    assert len(trials) == 4 * 6
    assert sorted(trials.groupby(["optimizer", "task", "seed"])["trial"].apply(list).iloc[0]) == list(range(6))
    assert trials["budget"].isna().all() and (trials["wall_time"] > 0).all()

    wider = small.model_copy(update={"seeds": (0, 1)})
    heard = []
    with Store.open(db) as store:
        second = run_study(store, wider, on_run=lambda o, t, s, status, sec: heard.append((o, t, s, status)))
        again = store.hpo_trials("s")
    assert sorted(second.skipped) == sorted(first.ran)
    assert {k[2] for k in second.ran} == {1} and len(second.ran) == 4
    assert sum(1 for h in heard if h[3] == "skipped") == 4
    assert len(again) == 8 * 6
    old = again.merge(trials, on=["optimizer", "task", "seed", "trial"], suffixes=("", "_first"))
    assert (old["config"] == old["config_first"]).all() and (old["cost"] == old["cost_first"]).all()
