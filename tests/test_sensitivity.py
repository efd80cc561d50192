"""Failure sensitivity, quadrant labels, round-order sensitivity and the scatter plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.report.csd_plot import plot_failure_sensitivity
from tournaments.rounds import Round
from tournaments.sensitivity import failure_sensitivity, quadrant_labels, round_order_sensitivity
from tournaments.table import ScoreTable


def specialist_table():
    """m00 is a generalist (second best everywhere); m01 loses the first three rounds, then wins all."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(29, 12))
    top = x.max(axis=0)
    x[0] = top + 1.0
    x[1, :3] = x.min(axis=0)[:3] - 1.0
    x[1, 3:] = top[3:] + 2.0
    return ScoreTable([f"m{i:02d}" for i in range(29)], [f"b{k:02d}" for k in range(12)], x)


def test_failure_sensitivity_drop_and_labels():
    result = failure_sensitivity(specialist_table(), n_sims=4000, seed=0)
    assert result.schedules == (0, 1, 2)
    assert result.expected.shape == (29, 3)
    assert np.allclose(result.drop, result.results[2].expected - result.results[0].expected)
    assert np.allclose(result.drop_se, np.hypot(result.results[2].se, result.results[0].se))
    assert result.labels[0] == "robust generalist"
    assert result.labels[1] == "aggressive specialist"
    assert result.drop[1] < -4.0 < result.drop[0]
    assert result.expected.sum(axis=0)[2] < result.expected.sum(axis=0)[0]
    frame = result.to_frame()
    assert list(frame.columns[:3]) == ["competitor", "E[T=0]", "SE[T=0]"]
    quadrants = ["robust generalist", "aggressive specialist", "steady underdog", "fragile underdog"]
    assert frame["label"].isin(quadrants).all()


def test_quadrant_rule_splits_at_medians():
    base = np.array([1.0, 2.0, 3.0, 4.0])
    drop = np.array([-1.0, -3.0, -0.5, -4.0])
    labels = quadrant_labels(base, drop)
    assert labels == ("steady underdog", "fragile underdog", "robust generalist", "aggressive specialist")


def test_failure_sensitivity_schedules_and_errors():
    table = specialist_table()
    per_round = [0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0]
    result = failure_sensitivity(table, schedules=[0, per_round], n_sims=500, seed=1)
    assert result.schedule_names == ["T=0", "T=" + "/".join(map(str, per_round))]
    with pytest.raises(ValueError, match="base"):
        failure_sensitivity(table, schedules=[1, 2], n_sims=10)
    with pytest.raises(ValueError, match="two schedules"):
        failure_sensitivity(table, schedules=[0], n_sims=10)


def test_round_order_sensitivity():
    table = specialist_table()
    rounds = [Round(f"r{k}", (b,)) for k, b in enumerate(table.benchmarks)]
    result = round_order_sensitivity(table, rounds, n_orders=5, n_sims=3000, seed=0, eliminate=2)
    assert result.orders[0] == tuple(r.name for r in rounds)
    assert len(set(result.orders)) == 5
    # the specialist is cut early when its weak rounds come first, so its E swings with the order;
    # the generalist, beaten only by the specialist, hardly moves
    assert result.spread[1] > 5.0 > 0.5 > result.spread[0]
    assert result.expected[0, 1] == 0.0
    with pytest.raises(ValueError, match="n_orders"):
        round_order_sensitivity(table, n_orders=0)


def test_real_leaderboard_failure_profile(shared_data):
    path = shared_data / "ibm-benchbench" / "benchmarks_old" / "hf_open_llm_v2_240829.csv"
    frame = pd.read_csv(path).drop_duplicates("model").set_index("model").head(29)
    table = ScoreTable.from_frame(frame.drop(columns=["hf_open_llm_v2", "HFV2_BBH Raw"]))
    result = failure_sensitivity(table, n_sims=4000, seed=0)
    assert np.all(np.isfinite(result.drop))
    assert np.median(result.drop) < 0  # elimination freezes scores, so most competitors lose points
    assert len(set(result.labels)) >= 3


def test_plot_writes_png(tmp_path):
    result = failure_sensitivity(specialist_table(), n_sims=300, seed=0)
    out = plot_failure_sensitivity(result, tmp_path / "fsa.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000
