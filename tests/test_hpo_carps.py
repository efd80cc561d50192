"""Cross-check against carps itself: its stored logs in, its own analysis numbers out.

tests/data/carps holds trials that carps 1.1.0 ran (3 optimizers x 6 BBOB tasks x 3 seeds) and
the normalised final performance, mean ranks and Friedman/Nemenyi numbers carps computed from
them (see tests/data/carps/README.md). Our analysis of the same trials must agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hpo import analysis

FIXTURE = Path(__file__).parent / "data" / "carps"


def from_carps(logs: pd.DataFrame) -> pd.DataFrame:
    """carps' gathered logs (optimizer_id, task_id, seed, n_trials, trial_value__cost) to analysis rows."""
    frame = logs.rename(columns={"optimizer_id": "optimizer", "task_id": "task", "trial_value__cost": "cost"})
    return frame[analysis.RUN + ["n_trials", "cost"]].copy()


@pytest.fixture(scope="module")
def ours():
    rows = from_carps(pd.read_csv(FIXTURE / "trials.csv"))
    final = analysis.final_performance(analysis.normalise(rows, "carps"))
    return final, analysis.rank_tests(analysis.score_table(final))


def test_fixture_is_the_documented_size():
    trials = pd.read_csv(FIXTURE / "trials.csv")
    runs = trials.groupby(["optimizer_id", "task_id", "seed"]).size()
    assert len(runs) == 3 * 6 * 3 and set(runs) == {77}


def test_normalised_final_performance_matches_carps(ours):
    final, _ = ours
    mine = final.groupby(["task", "optimizer"])["cost_inc_norm"].mean()
    expected = pd.read_csv(FIXTURE / "expected_final.csv").set_index(["task_id", "optimizer_id"])["cost_inc_norm"]
    assert len(expected) == 18
    np.testing.assert_allclose(mine.loc[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-9, atol=1e-15)


def test_mean_ranks_and_friedman_match_carps(ours):
    _, tests = ours
    expected = pd.read_csv(FIXTURE / "expected_ranks.csv").set_index("optimizer_id")["meanrank"]
    np.testing.assert_allclose(tests.mean_ranks.loc[expected.index].to_numpy(), expected.to_numpy())
    numbers = json.loads((FIXTURE / "expected_tests.json").read_text())
    # autorank takes q_alpha from statsmodels' studentized-range approximation, scipy computes it: 1e-6 apart
    assert tests.friedman.critical_difference == pytest.approx(numbers["cd"], rel=1e-5)
    assert tests.friedman.p_value == pytest.approx(numbers["pvalue"], rel=1e-9)
