"""Star discrepancy against values worked out by hand, and subset selection against random subsets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hpo.subset import choose_subsets, select_subset, star_discrepancy


@pytest.mark.parametrize("points, expected", [
    # One point x: the closed box [0, x] holds everything but has volume x1*x2 (excess 1 - x1*x2);
    # the open box [0, x1) x [0, 1] holds nothing but has volume x1 (deficit), likewise for x2.
    ([[0.5, 0.5]], 0.75),
    ([[0.2, 0.7]], max(1 - 0.14, 0.7)),
    ([[0.9, 0.9]], max(1 - 0.81, 0.9)),
    # Two points (0.25, 0.75) and (0.75, 0.25): the open box [0, 0.75)^2 holds neither (each has one
    # coordinate equal to 0.75) but has volume 0.5625; the closed [0, 0.75]^2 holds both (excess 0.4375),
    # [0, 1) x [0, 0.25) is empty with volume 0.25. The largest is 0.5625.
    ([[0.25, 0.75], [0.75, 0.25]], 0.5625),
    # Three points in 3-D at (1/2, 1/2, 1/2) and the corner (1, 1, 1): [0, 1/2]^3 holds 1/2 of the
    # points with volume 1/8 (excess 3/8); [0,1)^3 holds only one (volume 1, deficit 1/2).
    ([[0.5, 0.5, 0.5], [1.0, 1.0, 1.0]], 0.5),
])
def test_star_discrepancy_by_hand(points, expected):
    assert star_discrepancy(np.array(points)) == pytest.approx(expected)


def test_one_dimension_matches_niederreiter_closed_form():
    # D*_n = 1/(2n) + max_i |x_(i) - (2i - 1)/(2n)| for sorted points in [0, 1]
    x = np.sort(np.random.default_rng(3).random(17))
    n = len(x)
    closed_form = 1 / (2 * n) + np.max(np.abs(x - (2 * np.arange(1, n + 1) - 1) / (2 * n)))
    assert star_discrepancy(x[:, None]) == pytest.approx(closed_form)


def test_selected_subset_beats_the_median_random_subset():
    rng = np.random.default_rng(7)
    # a clumped pool, as normalised scores are: most tasks easy for everyone, a few spread out
    pool = np.vstack([rng.beta(0.6, 3.0, size=(50, 3)), rng.random((10, 3))])
    chosen, value = select_subset(pool, 8, seed=0, restarts=4)
    assert len(set(chosen)) == 8 and value == pytest.approx(star_discrepancy(pool[chosen]))
    random_values = [star_discrepancy(pool[rng.choice(len(pool), 8, replace=False)]) for _ in range(101)]
    assert value < np.median(random_values)
    assert select_subset(pool, 8, seed=0, restarts=4) == (chosen, value)  # seeded: same answer


def test_dev_and_test_are_disjoint_and_follow_the_decision_rule():
    rng = np.random.default_rng(11)
    n = 24
    # Reference optimizers with a consistent order (a < b < c in cost) plus task-to-task variation.
    base = rng.random(n)
    scores = pd.DataFrame({"a": 0.3 * base, "b": 0.3 * base + 0.2 + 0.1 * rng.random(n),
                           "c": 0.3 * base + 0.5 + 0.1 * rng.random(n)}, index=[f"task{i}" for i in range(n)])
    choice = choose_subsets(scores, ks=[6, 8], seed=0, restarts=2)
    assert len(choice.candidates) == 4  # two sizes x (raw, log)
    assert choice.dev is not None and not set(choice.dev) & set(choice.test)
    winner = choice.candidates[choice.candidates["valid"]].sort_values("disc_sum").iloc[0]
    assert sorted(choice.dev) == sorted(winner["dev"]) and winner["order_dev"] == "a < b < c"
    assert (choice.candidates.loc[choice.candidates["valid"], ["p_dev", "p_test"]] < 0.05).all().all()
