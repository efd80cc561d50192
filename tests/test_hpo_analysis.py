"""hpo/analysis.py on constructed trials where the right answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hpo import analysis
from hpo.report import compare, optimizer_table
from tournaments.methods import METHODS, rank_all

TASKS = [f"t{j}" for j in range(6)]
ANCHORS = {t: (0.0, 10.0) for t in TASKS}


def _trials(offsets: dict[str, float], n_trials: int = 12, seeds=(0, 1, 2), spread: float = 1.0) -> pd.DataFrame:
    """Each optimizer's costs are a shared random curve plus its offset, so offsets order them everywhere."""
    rows = []
    for j, task in enumerate(TASKS):
        for seed in seeds:
            base = np.random.default_rng([j, seed]).random(n_trials) * spread + 1.0 + j
            for optimizer, offset in offsets.items():
                for t, c in enumerate(base + offset):
                    rows.append((optimizer, task, seed, t + 1, float(c)))
    return pd.DataFrame(rows, columns=["optimizer", "task", "seed", "n_trials", "cost"])


DOMINANT = {"best": 0.0, "b": 0.5, "c": 0.7, "d": 1.1}


def test_strictly_better_optimizer_ranks_first_under_every_method():
    c = compare(_trials(DOMINANT), "carps", n_boot=200)
    ranks, _, _ = rank_all(c.table, params={"csd": {"n_sims": 2000}, "elo": {}, "openskill": {}})
    assert set(ranks.columns) == set(METHODS)
    for method in ranks.columns:
        assert ranks.loc["best", method] == 1 and (ranks[method] > 1).sum() == 3, method
    assert c.tests.mean_ranks["best"] == 1.0
    assert c.tests.friedman.p_value < 0.05
    assert optimizer_table(c)["optimizer"].iloc[0] == "best"
    at_end = c.curves[c.curves["x"] == 1.0].set_index("optimizer")
    assert at_end["mean_rank"].idxmin() == "best" and at_end.loc["best", "mean_rank"] == 1.0
    profile_at_one = c.profile[c.profile["tau"] == 1.0].set_index("optimizer")["share"]
    assert profile_at_one["best"] == 1.0 and (profile_at_one.drop("best") == 0.0).all()


def test_stable_scores_do_not_move_when_a_worse_optimizer_joins_but_carps_scores_do():
    before = _trials(DOMINANT)
    after = pd.concat([before, _trials({"worse": 9.0})], ignore_index=True)
    key = ["optimizer", "task", "seed"]
    stable = [analysis.final_performance(analysis.normalise(t, "stable", ANCHORS)).set_index(key)["cost_inc_norm"]
              for t in (before, after)]
    pd.testing.assert_series_equal(stable[0], stable[1].loc[stable[0].index])
    carps = [analysis.final_performance(analysis.normalise(t, "carps")).set_index(key)["cost_inc_norm"]
             for t in (before, after)]
    assert not np.allclose(carps[0].to_numpy(), carps[1].loc[carps[0].index].to_numpy())
    assert stable[1].xs("worse", level="optimizer").min() > stable[1].drop("worse", level="optimizer").max()


def test_stable_mode_needs_every_anchor():
    with pytest.raises(ValueError, match="t5"):
        analysis.normalise(_trials(DOMINANT), "stable", {t: (0.0, 1.0) for t in TASKS[:5]})


def test_anytime_uses_the_last_incumbent_not_an_interpolation():
    rows = pd.DataFrame({"optimizer": "a", "task": "t", "seed": 0, "n_trials": [1, 2, 3, 4, 5],
                         "cost": [8.0, 10.0, 4.0, 6.0, 0.0]})
    rows = pd.concat([rows, rows.assign(optimizer="b", cost=[7.0, 7.0, 7.0, 7.0, 7.0])])
    curves = analysis.anytime(analysis.normalise(rows, "carps"), n_points=9).set_index(["optimizer", "x"])
    # n_trials_norm of the 5 trials: 0, .25, .5, .75, 1; incumbents 8, 8, 4, 4, 0 out of [0, 10]
    expected = [0.8, 0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.4, 0.0]
    np.testing.assert_allclose(curves.loc["a", "regret"].to_numpy(), expected, atol=1e-7)
    assert curves.loc[("a", 0.125), "regret"] == pytest.approx(0.8, abs=1e-7)  # linear interpolation says 0.8 too
    assert curves.loc[("a", 0.375), "regret"] == pytest.approx(0.8, abs=1e-7)  # ... but 0.6 here
    assert list(curves.loc["a", "mean_rank"]) == [2.0] * 4 + [1.0] * 5  # b sits at 0.7 throughout


def test_final_performance_respects_the_budget_cut():
    rows = pd.DataFrame({"optimizer": "a", "task": "t", "seed": 0, "n_trials": [1, 2, 3, 4, 5],
                         "cost": [8.0, 10.0, 4.0, 6.0, 0.0]})
    norm = analysis.normalise(rows, "carps")
    assert analysis.final_performance(norm)["cost_inc"].item() == 0.0
    assert analysis.final_performance(norm, max_x=0.6)["cost_inc"].item() == 4.0


def test_performance_profile_by_hand():
    final = pd.DataFrame({"optimizer": ["a", "b", "a", "b"], "task": ["x", "x", "y", "y"], "seed": 0,
                          "cost_inc_norm": [0.1, 0.2, 0.4, 0.1]})
    profile = analysis.performance_profile(analysis.score_table(final), taus=np.array([1.0, 2.0, 4.0]), floor=0.0)
    share = profile.set_index(["optimizer", "tau"])["share"]
    # ratios to the best per task: a -> (1, 4), b -> (2, 1)
    assert share.loc[("a", 1.0)] == 0.5 and share.loc[("a", 2.0)] == 0.5 and share.loc[("a", 4.0)] == 1.0
    assert share.loc[("b", 1.0)] == 0.5 and share.loc[("b", 2.0)] == 1.0


def test_seed_ci_brackets_the_mean_and_is_empty_for_identical_seeds():
    final = pd.DataFrame({"optimizer": "a", "task": ["x"] * 4 + ["y"] * 4, "seed": [0, 1, 2, 3] * 2,
                          "cost_inc_norm": [0.1, 0.3, 0.2, 0.6, 0.5, 0.5, 0.5, 0.5]})
    cells = analysis.seed_summary(final, n_boot=500).set_index("task")
    assert cells.loc["x", "mean"] == pytest.approx(0.3)
    assert cells.loc["x", "ci_low"] < 0.3 < cells.loc["x", "ci_high"]
    assert cells.loc["y", "ci_low"] == cells.loc["y", "ci_high"] == 0.5


def test_rank_tests_fall_back_with_two_optimizers_or_few_tasks():
    two = analysis.rank_tests(analysis.score_table(
        analysis.final_performance(analysis.normalise(_trials({"a": 0.0, "b": 1.0}), "carps"))))
    assert two.friedman is None and len(two.wilcoxon) == 1
    few = _trials(DOMINANT)
    few = few[few["task"].isin(TASKS[:3])]
    tests = analysis.rank_tests(analysis.score_table(analysis.final_performance(analysis.normalise(few, "carps"))))
    assert tests.friedman is None and tests.wilcoxon is None and tests.mean_ranks["best"] == 1.0
    assert any("no significance test" in note for note in tests.notes)
