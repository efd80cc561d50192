"""Robustness checks, including Zhang & Hardt's published sensitivity tables reproduced exactly."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from harness.ingest.parsers import read_wide_csv
from tests.oracles import zhang_hardt_win_rate
from tournaments import ScoreTable, mean_score, mean_win_rate
from tournaments.aggregate import borda
from tournaments.kemeny import kemeny
from tournaments.pairwise import copeland, elo
from tournaments.robustness import (
    iia_check,
    order_sensitivity,
    perturbation_check,
    rank_vector,
    rescale_rank_changes,
    rescaling_check,
    subset_rank_changes,
)

ZH = "zhang-hardt-benchbench"
ORDINAL = {"mwr": mean_win_rate, "borda": borda, "copeland": copeland, "kemeny": kemeny}


def numbered(names) -> list[str]:
    """Zhang & Hardt's tables repeat some model names (re-runs); keep every row."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


@pytest.mark.parametrize("name", ["OpenLLM", "MMLU", "BigBenchHard"])
def test_zhang_hardt_cardinal_rescaling_is_reproduced(shared_data, name):
    """sensitivity_after = the same models ranked by mean after rescaling each task; ours must match."""
    before = pd.read_csv(shared_data / ZH / "sensitivity_before" / f"{name}.csv")
    after = pd.read_csv(shared_data / ZH / "sensitivity_after" / f"{name}.csv")
    tasks = [c for c in before.columns if c not in ("Model", "Rank", "Average")]
    scaled = [c for c in after.columns if c not in ("Model", "Rank", "Rank-Before", "Average", "Average-Before")]
    assert [re.sub(r" \(× [0-9.]+\)$", "", c) for c in scaled] == tasks
    table = ScoreTable(numbered(before["Model"]), tasks, before[tasks].to_numpy(float))
    # rows of `after` back to rows of `before` (name + original average identify a row)
    slots: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(before["Model"], before["Average"].round(6))):
        slots.setdefault(key, []).append(i)
    rows = [slots[key].pop(0) for key in zip(after["Model"], after["Average-Before"].round(6))]
    with np.errstate(invalid="ignore", divide="ignore"):  # tasks where a model scored 0
        ratio = after[scaled].to_numpy(float) / before[tasks].to_numpy(float)[rows]
    factors = np.nanmedian(ratio, axis=0)  # the exact factors (headers show them to 4 decimals)
    np.testing.assert_allclose(ratio[np.isfinite(ratio).all(axis=1)], np.broadcast_to(factors, ratio.shape)
                               [np.isfinite(ratio).all(axis=1)], rtol=1e-9)
    header = np.array([float(re.search(r"× ([0-9.]+)\)", c).group(1)) for c in scaled])
    np.testing.assert_allclose(factors, header, atol=5e-5)

    frame = rescale_rank_changes(table, factors, mean_score, rank_method="average")
    np.testing.assert_array_equal(frame["rank_before"], before["Rank"])
    np.testing.assert_allclose(frame["score_before"], before["Average"], rtol=1e-12)
    np.testing.assert_array_equal(frame["rank_after"].to_numpy()[rows], after["Rank"])
    np.testing.assert_array_equal(frame["rank_before"].to_numpy()[rows], after["Rank-Before"])
    np.testing.assert_allclose(frame["score_after"].to_numpy()[rows], after["Average"], rtol=1e-12)
    # ordinal methods cannot be moved by rescaling at all
    summary = rescaling_check(table, {"mean": mean_score, "copeland": copeland, "borda": borda}, factors=factors)
    assert summary.set_index("method").loc[["copeland", "borda"], "rank_changes"].eq(0).all()


def test_zhang_hardt_open_llm_winner_changes_under_mean_only(shared_data):
    after = pd.read_csv(shared_data / ZH / "sensitivity_after" / "OpenLLM.csv")
    assert after.iloc[0]["Model"] == "moreh/MoMo-70B-lora-1.8.4-DPO" and after.iloc[0]["Rank-Before"] == 4
    before = pd.read_csv(shared_data / ZH / "sensitivity_before" / "OpenLLM.csv")
    tasks = [c for c in before.columns if c not in ("Model", "Rank", "Average")]
    table = ScoreTable(numbered(before["Model"]), tasks, before[tasks].to_numpy(float))
    factors = [0.0216, 0.0440, 0.0117, 0.0106, 0.0368, 1.0]  # the published header factors
    summary = rescaling_check(table, {"mean": mean_score, **ORDINAL}, factors=factors).set_index("method")
    assert summary.loc["mean", "winner_changed"] == 1.0 and summary.loc["mean", "rank_changes"] > 50
    assert (summary.loc[list(ORDINAL), "rank_changes"] == 0).all()


@pytest.mark.parametrize("name, added", [("HELM-accuracy", 39), ("HELM-fairness", 43), ("HELM-robustness", 44),
                                         ("BigCode", 18)])
def test_zhang_hardt_ordinal_iia_is_reproduced(shared_data, name, added):
    """sensitivity_after = protected models re-ranked after adding others; their win rate, exactly."""
    before = pd.read_csv(shared_data / ZH / "sensitivity_before" / f"{name}.csv")
    after = pd.read_csv(shared_data / ZH / "sensitivity_after" / f"{name}.csv")
    tasks = [c for c in after.columns if c not in ("Model", "Rank", "Rank-Before", "WinRate", "WinRate-Before")]
    table = ScoreTable(after["Model"], tasks, after[tasks].to_numpy(float))
    assert table.n_competitors - len(before) == added
    frame = subset_rank_changes(table, list(before["Model"]), zhang_hardt_win_rate, rank_method="average")
    published = after.set_index("Model").loc[before["Model"]]
    np.testing.assert_array_equal(frame["rank_alone"], before["Rank"])
    np.testing.assert_array_equal(frame["rank_in_full"], published["Rank"])
    np.testing.assert_allclose(frame["score_alone"], before["WinRate"], atol=1e-12)
    np.testing.assert_allclose(frame["score_in_full"], published["WinRate"], atol=1e-12)
    assert (frame["shift"] != 0).sum() >= 2


def test_helm_lite_top10_iia_demo(shared_data):
    """ranking.md A9: MWR on HELM Lite's top 10 alone changes 6 of 10 positions (tau 0.64); the mean none."""
    table, _ = read_wide_csv(shared_data / "ibm-benchbench" / "benchmarks_old" / "helm_lite_240829.csv")
    top = mean_win_rate(table).order()[:10]
    summary = iia_check(table, {"mean": mean_score, "mwr": mean_win_rate}, protected=top).set_index("method")
    assert summary.loc["mwr", "rank_changes"] == 6 and summary.loc["mwr", "tau"] == pytest.approx(0.644, abs=0.001)
    assert summary.loc["mean", "rank_changes"] == 0
    random_drops = iia_check(table, {"mean": mean_score, "copeland": copeland}, n_trials=4, seed=1)
    assert random_drops.loc[0, "rank_changes"] == 0 and random_drops.loc[1, "rank_changes"] > 0
    assert random_drops.loc[0, "kept"] == 58


def test_perturbation_by_hand():
    # m0 leads on three benchmarks by small margins and collapses on one when zeroed
    x = np.array([[90, 52, 51, 50], [80, 50, 50, 50], [70, 49, 49, 49], [60, 48, 48, 48]], dtype=float)
    table = ScoreTable(["m0", "m1", "m2", "m3"], ["a", "b", "c", "d"], x)
    frame = perturbation_check(table, "m0", {"mean": mean_score, "mwr": mean_win_rate}, k=1).set_index("method")
    assert frame.loc["mean", "zeroed"] == "a"  # its strongest benchmark (ties broken by column order)
    assert frame.loc["mean", "rank_before"] == 1 and frame.loc["mean", "rank_after"] == 4
    assert frame.loc["mwr", "rank_after"] == 2  # still wins b, c and ties d: a bounded drop
    chosen = perturbation_check(table, "m1", {"mean": mean_score}, benchmarks=["d"], fill=None)
    assert chosen.loc[0, "zeroed"] == "d" and chosen.loc[0, "drop"] == 0  # worst observed = 48: still ahead
    with pytest.raises(KeyError):
        perturbation_check(table, "nobody", {"mean": mean_score})


def test_order_sensitivity_separates_online_from_order_free():
    x = np.random.default_rng(0).normal(size=(12, 6))
    table = ScoreTable([f"m{i}" for i in range(12)], [f"b{j}" for j in range(6)], x)
    methods = {"mean": mean_score, "kemeny": kemeny, "elo_given": lambda t: elo(t, n_orders=1, order="given")}
    frame = order_sensitivity(table, methods, n_perms=4, seed=0).set_index("method")
    assert frame.loc["mean", "max_rank_range"] == 0 and frame.loc["kemeny", "max_rank_range"] == 0
    assert frame.loc["elo_given", "max_rank_range"] > 0


def test_rank_vector_treats_float_noise_as_ties():
    assert list(rank_vector(np.array([0.3, 0.1 + 0.2, 0.5]), "average")) == [2.5, 2.5, 1.0]
    assert list(rank_vector(np.array([1.0, np.nan, 2.0]))) == [2, 3, 1]
