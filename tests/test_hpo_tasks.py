"""Tasks: BBOB functions, spaces, the scikit-learn CV tasks and the cached pruning table."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hpo.bbob import FUNCTIONS, BBOBFunction
from hpo.config import StudySpec
from hpo.prune_grid import load_grid
from hpo.space import Param, Space
from hpo.tasks import default_budget, make_task


def test_budget_rule_is_carps():
    assert [default_budget(d) for d in (2, 7, 16)] == [77, 126, 180]
    assert make_task("bbob-f15-d5").n_trials == 110


@pytest.mark.parametrize("fid", sorted(FUNCTIONS))
def test_bbob_functions_reach_f_opt_at_x_opt_only(fid):
    fn = BBOBFunction(fid, 4, instance=1)
    assert fn(fn.x_opt)[0] == pytest.approx(fn.f_opt, abs=1e-9)
    others = fn(np.random.default_rng(fid).uniform(-5, 5, (200, 4)))
    assert (others > fn.f_opt).all()


def test_space_round_trips_and_respects_types():
    space = Space((Param("lr", 1e-4, 1.0, log=True), Param("depth", 1, 6, integer=True),
                   Param("kind", choices=("a", "b", "c"))))
    config = space.from_unit(np.array([0.5, 0.99, 0.4]))
    assert config["lr"] == pytest.approx(1e-2) and config["depth"] == 6 and config["kind"] == "b"
    assert space.from_unit(space.to_unit(config)) == config


def test_sklearn_task_is_deterministic_cv_error():
    task = make_task("sklearn-breast_cancer-rf")
    config = {"n_estimators": 10, "max_depth": 3, "max_features": 0.3, "min_samples_leaf": 2, "criterion": "entropy"}
    cost = task.evaluate(config)
    assert 0.0 < cost < 0.2 and task.evaluate(config) == cost


def test_unknown_names_say_what_exists():
    with pytest.raises(ValueError, match="bbob-f<fid>"):
        make_task("bbob-sphere")
    with pytest.raises(ValueError, match="BBOB functions are"):
        make_task("bbob-f99-d2")
    with pytest.raises(ValueError, match="optuna-tpe"):
        StudySpec(study="x", optimizers=("tpe",), tasks=("bbob-f1-d2",))


def test_prune_table_is_complete_and_pruning_hurts():
    grid = load_grid()
    assert grid.values.shape == (4, 4, 4, 4, 8) and np.isfinite(grid.values).all()
    dense, sparse = grid.values[0, 0, 0, 0].mean(), grid.values[-1, -1, -1, -1].mean()
    assert 0.3 < dense < 3.0 and sparse > dense


def test_prune_interpolation_hits_the_table_and_averages_between_points():
    grid = load_grid()
    for idx in itertools.product(range(4), repeat=4):
        ratios = grid.levels[list(idx)]
        assert grid.bits_per_byte(ratios)[0] == pytest.approx(grid.values[idx].mean())
        assert grid.bits_per_byte(ratios, fidelity=3)[0] == pytest.approx(grid.values[idx][:3].mean())
    a, b = (0, 1, 2, 3), (1, 1, 2, 3)
    middle = (grid.levels[list(a)] + grid.levels[list(b)]) / 2
    assert grid.bits_per_byte(middle)[0] == pytest.approx((grid.values[a].mean() + grid.values[b].mean()) / 2)


def test_prune_task_cost_anchors_and_fidelity():
    task = make_task("prune-smollm2")
    grid = load_grid()
    config = {f"ratio_{g}": 0.2 for g in range(4)}
    assert task.evaluate(config) == pytest.approx(grid.values[1, 1, 1, 1].mean() + 0.5 * 0.8)
    assert task.evaluate(config, fidelity=1) == pytest.approx(grid.values[1, 1, 1, 1, 0] + 0.5 * 0.8)
    best, reference = task.anchors()
    vertices = np.array(list(itertools.product(grid.levels, repeat=4)))
    assert best == pytest.approx(grid.cost(vertices, 0.5, None).min()) and reference > best
    samples = task.vectorised(np.random.default_rng(0).random((500, 4)))
    assert samples.min() >= best - 1e-12
    lean_best = make_task("prune-smollm2-lean").anchors()[0]
    assert lean_best != best
