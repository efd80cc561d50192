"""Bootstrap intervals, paired tests, Friedman/Nemenyi, Wilcoxon-Holm, rank agreement, CD diagram."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from harness.report.cd_diagram import cliques, plot_cd_diagram
from tournaments import ScoreTable, mean_score
from tournaments.aggregate import borda
from tournaments.ranking import Ranking
from tournaments.stats import (
    bootstrap_floor_note,
    bootstrap_ranking,
    clopper_pearson,
    compare_on_tasks,
    compare_paired,
    friedman,
    holm,
    kendall_tau,
    mcnemar,
    min_bootstrap_resamples,
    nemenyi_q,
    paired_bootstrap,
    resample_table,
    wilcoxon_holm,
)


def small(values) -> ScoreTable:
    values = np.asarray(values, dtype=float)
    return ScoreTable([f"m{i}" for i in range(values.shape[0])], [f"b{j}" for j in range(values.shape[1])], values)


@pytest.fixture(scope="module")
def code_items(shared_data) -> ScoreTable:
    """HumanEval and MBPP pass/fail per item for the models evaluated on both (a replicate table)."""
    folder = shared_data / "eval-arena-per-example"
    frame = pd.concat([pd.read_json(folder / "humaneval.jsonl", lines=True),
                       pd.read_json(folder / "mbpp.jsonl", lines=True)])
    both = set.intersection(*(set(g["model"]) for _, g in frame.groupby("benchmark_id")))
    frame = frame[frame["model"].isin(both)]
    return ScoreTable.from_long(frame, competitor="model", benchmark="benchmark_id", value="pass1",
                                replicate="example_id")


# --------------------------------------------------------------------------- paired tests
def test_mcnemar_by_hand():
    a = np.array([1] * 8 + [0] * 1 + [1] * 5 + [0] * 6)
    b = np.array([0] * 8 + [1] * 1 + [1] * 5 + [0] * 6)
    r = mcnemar(a, b)
    assert r.statistic == 9 and r.n_items == 20
    assert r.p_value == pytest.approx(2 * (1 + 9) / 2**9)  # two-sided exact binomial, 8 of 9 discordant
    assert r.diff == pytest.approx((8 - 1) / 20) and r.ci_low < r.diff < r.ci_high
    assert mcnemar(a, a).p_value == 1.0
    with pytest.raises(ValueError, match="binary"):
        mcnemar([0.5, 1], [0, 1])
    with pytest.raises(ValueError, match="equal-length"):
        mcnemar([0, 1], [1])


def test_mcnemar_interval_is_exact_clopper_pearson():
    """Issue 18's case: 5 vs 0 discordant of 20, exact p = 2 / 2^5 = 0.0625. The Wald interval was
    [0.060, 0.440] (excludes 0); the exact conditional one must contain it."""
    a = np.array([1] * 5 + [1] * 5 + [0] * 10)
    b = np.array([0] * 5 + [1] * 5 + [0] * 10)
    r = mcnemar(a, b)
    assert r.p_value == pytest.approx(0.0625, rel=1e-12)  # closed form 2 * 0.5^5
    # Clopper-Pearson closed form at x = n: lower = (alpha/2)^(1/n), upper = 1; difference = (2 share - 1) * 5/20.
    # Only float rounding separates the beta quantile from the closed form, hence rel=1e-9.
    assert r.ci_low == pytest.approx((2 * 0.025 ** (1 / 5) - 1) * 5 / 20, rel=1e-9)  # -0.0109
    assert r.ci_high == pytest.approx(0.25, rel=1e-12) and r.ci_low <= 0 <= r.ci_high
    assert "Clopper-Pearson" in r.interval
    # the 8-of-9 case: scipy's exact binomial interval, mapped to the difference (same quantiles, rel=1e-9)
    ci = sps.binomtest(8, 9).proportion_ci(0.95, method="exact")
    r = mcnemar(np.array([1] * 8 + [0] + [1] * 5 + [0] * 6), np.array([0] * 8 + [1] + [1] * 5 + [0] * 6))
    assert (r.ci_low, r.ci_high) == pytest.approx(((2 * ci.low - 1) * 9 / 20, (2 * ci.high - 1) * 9 / 20), rel=1e-9)


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_mcnemar_interval_agrees_with_exact_p_over_a_grid(level):
    """Over every split of 0-40 discordant items, the interval excludes 0 exactly when the exact p < 1 - level.
    At share 1/2 the binomial is symmetric, so the two-sided exact p is twice the smaller tail, which is the
    test that Clopper-Pearson inverts. No tail of a Binomial(n, 1/2) equals 0.025 or 0.005 (they are multiples
    of 2^-n), so there is no tie at the boundary for rounding to break."""
    checked = 0
    for only_a in range(41):
        for only_b in range(41 - only_a):
            a = np.array([1] * only_a + [0] * only_b + [1] * 7 + [0] * 5)
            b = np.array([0] * only_a + [1] * only_b + [1] * 7 + [0] * 5)
            r = mcnemar(a, b, level=level)
            assert (r.p_value >= 1 - level) == (r.ci_low <= 0 <= r.ci_high), (only_a, only_b, r)
            assert r.ci_low <= r.diff <= r.ci_high
            checked += 1
    assert checked == 41 * 42 // 2


def test_clopper_pearson_matches_scipy():
    for x, n in [(0, 10), (3, 10), (10, 10), (17, 40), (1, 1)]:
        ci = sps.binomtest(x, n).proportion_ci(0.95, method="exact")  # scipy's Clopper-Pearson
        assert clopper_pearson(x, n) == pytest.approx((ci.low, ci.high), rel=1e-9, abs=1e-15)
    assert clopper_pearson(0, 0) == (0.0, 1.0)


def test_paired_bootstrap_by_hand():
    rng = np.random.default_rng(0)
    a = rng.normal(0.5, 0.1, 400)
    r = paired_bootstrap(a + 0.05, a - 0.0, n_boot=2000, seed=1)
    assert r.diff == pytest.approx(0.05) and r.ci_low == pytest.approx(0.05) == r.ci_high
    assert r.p_value == pytest.approx(1 / 2001)  # a constant shift: no resample is as far from 0.05 as 0
    noise = paired_bootstrap(a + rng.normal(0, 0.1, 400), a, n_boot=2000, seed=1)
    assert noise.ci_low < noise.diff < noise.ci_high and noise.p_value > 0.05
    same = paired_bootstrap(a, a, n_boot=200)
    assert same.diff == 0 and same.p_value == 1.0
    assert paired_bootstrap(a, a + 0.01, n_boot=300, seed=4) == paired_bootstrap(a, a + 0.01, n_boot=300, seed=4)


def test_holm_by_hand():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])


def test_paired_comparison_on_real_code_items(code_items):
    """The compare flow: per-task McNemar on shared items, Holm across tasks."""
    strong, weak = "deepseek-coder-33b-instruct", "code-llama-multi-13b"
    i, j = code_items.competitors.index(strong), code_items.competitors.index(weak)
    pairs = {task: (code_items.values[i, b], code_items.values[j, b]) for b, task in enumerate(code_items.benchmarks)}
    frame = compare_on_tasks(pairs)
    assert list(frame["test"]) == ["mcnemar", "mcnemar"] and list(frame["n_items"]) == [164, 378]
    assert frame["significant"].all() and (frame["diff"] > 0.1).all()
    np.testing.assert_allclose(frame["p_holm"], holm(frame["p_value"]))
    assert (frame["ci_low"] < frame["diff"]).all() and (frame["diff"] < frame["ci_high"]).all()
    close = compare_on_tasks({"humaneval": (code_items.values[i, 0], code_items.values[i, 0])})
    assert close.loc[0, "p_value"] == 1.0 and close.loc[0, "diff"] == 0 and not close.loc[0, "significant"]
    continuous = compare_paired(code_items.values[i, 0] * 0.5 + 0.25, code_items.values[j, 0], n_boot=500)
    assert continuous.test == "paired_bootstrap"


def test_bootstrap_floor_is_reported_when_holm_cannot_reach_alpha():
    """Six tasks whose differences are constant shifts: no resample is as far from the mean as 0, so each
    bootstrap p is its floor 1/(B+1). Holm multiplies the smallest by m = 6, so B = 100 gives 6/101 = 0.059
    and nothing is significant; B = 120 gives 6/121 = 0.0496 (closed form m / (B + 1) < 0.05 <=> B >= 120)."""
    base = np.random.default_rng(5).normal(0.5, 0.1, 60)
    pairs = {f"t{i}": (base + 0.01 * (i + 1), base) for i in range(6)}
    few = compare_on_tasks(pairs, n_boot=100, seed=0)
    assert list(few["test"].unique()) == ["paired_bootstrap"]
    np.testing.assert_allclose(few["p_value"], 1 / 101)
    np.testing.assert_allclose(few["p_holm"], 6 / 101)
    assert not few["significant"].any()
    note = bootstrap_floor_note(few, n_boot=100)
    assert note is not None and "\n" not in note and "6 bootstrap task(s)" in note and "--n-boot 120" in note
    assert min_bootstrap_resamples(6) == 120 and min_bootstrap_resamples(1) == 20 and min_bootstrap_resamples(7) == 140
    enough = compare_on_tasks(pairs, n_boot=120, seed=0)
    assert enough["significant"].all() and bootstrap_floor_note(enough, n_boot=120) is None
    binary = compare_on_tasks({"t": (np.array([1.0, 0, 1, 1]), np.array([0.0, 0, 1, 0]))}, n_boot=100)
    assert binary.loc[0, "test"] == "mcnemar" and bootstrap_floor_note(binary, n_boot=100) is None
    assert list(few["interval"].unique()) == ["percentile bootstrap"]


# --------------------------------------------------------------------------- bootstrap
def test_resampling_keeps_shapes_and_pairs():
    rng = np.random.default_rng(0)
    t = small(np.arange(12).reshape(3, 4))
    r = resample_table(t, "benchmarks", rng)
    assert r.values.shape == (3, 4) and len(set(r.benchmarks)) == 4
    # every resampled column is an original column, identical for all competitors (paired)
    assert all(any(np.array_equal(r.values[:, j], t.values[:, k]) for k in range(4)) for j in range(4))
    with pytest.raises(ValueError, match="replicates"):
        resample_table(t, "items", rng)


def test_bootstrap_over_benchmarks_is_seeded_and_brackets_the_point():
    x = np.random.default_rng(1).normal(size=(10, 8)) + np.linspace(2, 0, 10)[:, None]
    a = bootstrap_ranking(small(x), borda, n_boot=200, seed=5)
    b = bootstrap_ranking(small(x), borda, n_boot=200, seed=5)
    np.testing.assert_array_equal(a.rank_samples, b.rank_samples)
    assert a.unit == "benchmarks"
    assert np.all(a.rank_low <= a.ranking.ranks) and np.all(a.ranking.ranks <= a.rank_high)
    assert np.all(a.score_low <= a.score_high)
    frame = a.to_frame()
    assert list(frame.columns[:3]) == ["competitor", "score", "rank"] and frame["rank"].is_monotonic_increasing


def test_item_bootstrap_on_real_code_items(code_items):
    result = bootstrap_ranking(code_items, mean_score, n_boot=200, seed=0)
    assert result.unit == "items"
    point = result.ranking.scores
    assert np.all(result.score_low <= point + 1e-12) and np.all(point <= result.score_high + 1e-12)
    width = result.score_high - result.score_low
    assert 0.01 < np.median(width) < 0.1  # ~540 binary items per model: a few points of accuracy


def test_alpacaeval_item_bootstrap_rank_intervals(shared_data):
    m = pd.read_csv(shared_data / "alpacaeval-items" / "weighted_alpaca_eval_gpt4_turbo_matrix.csv")
    models = [c for c in m.columns if c not in ("item_sha1", "dataset", "NullModel")]
    table = ScoreTable(models, ["ae2"], m[models].to_numpy(float).T[:, None, :] - 1.0)
    widths = [bootstrap_ranking(table, mean_score, n_boot=1000, seed=s) for s in (0,)]
    w = widths[0].rank_high - widths[0].rank_low
    # ranking.md A10: median 95 % rank-interval width 10 positions, maximum 15 (57 models x 805 items)
    assert 8 <= np.median(w) <= 11 and 13 <= w.max() <= 17


# --------------------------------------------------------------------------- Friedman / Nemenyi / Wilcoxon
def test_friedman_matches_scipy_and_the_cd_formula():
    x = np.random.default_rng(2).normal(size=(4, 10)) + np.array([0.0, 0.3, 0.6, 1.5])[:, None]
    r = friedman(small(x))
    ref = sps.friedmanchisquare(*x)
    assert r.chi2 == pytest.approx(ref.statistic) and r.p_value == pytest.approx(ref.pvalue)
    assert r.q_alpha == pytest.approx(2.569, abs=5e-4)  # Demsar's table, k = 4
    assert r.critical_difference == pytest.approx(2.569 * np.sqrt(4 * 5 / 60), abs=1e-3)
    assert np.argmin(r.mean_ranks) == 3 and r.mean_ranks.mean() == pytest.approx(2.5)
    assert 0 <= r.p_value_iman_davenport <= 1
    with pytest.raises(ValueError, match="complete table"):
        friedman(small([[1, np.nan], [2, 3]]))


def test_friedman_tie_correction_matches_scipy():
    """Issue 18's case: 3 models x 6 binary benchmarks. Uncorrected chi2 was 1.750 (p 0.417); scipy and R's
    friedman.test divide by C = 1 - sum(t^3 - t) / (N k (k^2 - 1)) = 1 - 54/144 = 0.625 and give 2.800."""
    x = np.array([[1, 1, 1, 1, 0, 1], [1, 0, 1, 0, 0, 1], [0, 0, 1, 0, 1, 0]], dtype=float)
    r = friedman(small(x))
    ref = sps.friedmanchisquare(*x)
    # same closed form evaluated in another order: agreement to float rounding, rel=1e-9
    assert r.chi2 == pytest.approx(ref.statistic, rel=1e-9) and r.chi2 == pytest.approx(2.8, rel=1e-9)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)  # 0.2466
    assert r.tie_correction == pytest.approx(0.625, rel=1e-12)
    # Iman-Davenport from the corrected chi2 (Demsar 2006 eq.): F = (N-1) chi2 / (N(k-1) - chi2) = 14 / 9.2
    assert r.iman_davenport == pytest.approx(14 / 9.2, rel=1e-9)
    assert r.p_value_iman_davenport == pytest.approx(sps.f.sf(14 / 9.2, 2, 10), rel=1e-9)
    # many ties: integer scores 0-2 for 5 competitors on 12 benchmarks
    ints = np.random.default_rng(7).integers(0, 3, size=(5, 12)).astype(float)
    ref = sps.friedmanchisquare(*ints)
    assert friedman(small(ints)).chi2 == pytest.approx(ref.statistic, rel=1e-9)
    assert friedman(small(ints)).p_value == pytest.approx(ref.pvalue, rel=1e-9)
    flat = friedman(small(np.ones((3, 4))))  # every benchmark ties everyone: scipy gives nan, we say no evidence
    assert flat.chi2 == 0 and flat.p_value == 1.0


def test_nemenyi_q_table_and_reference_cds():
    expected = [1.960, 2.344, 2.569, 2.728, 2.850, 2.948, 3.031, 3.102, 3.164]
    np.testing.assert_allclose([nemenyi_q(k) for k in range(2, 11)], expected, atol=1e-3)
    # ranking.md A7: k = 30, N = 6 gives CD ~ 19 ranks; 71 models x 10 scenarios gives ~ 38
    assert nemenyi_q(30) * np.sqrt(30 * 31 / 36) == pytest.approx(19, abs=0.5)
    assert nemenyi_q(71) * np.sqrt(71 * 72 / 60) == pytest.approx(38, abs=0.5)


def test_wilcoxon_holm_against_scipy():
    x = np.random.default_rng(3).normal(size=(3, 12)) + np.array([0, 0.1, 2.0])[:, None]
    frame = wilcoxon_holm(small(x))
    assert len(frame) == 3
    row = frame[(frame["a"] == "m0") & (frame["b"] == "m2")].iloc[0]
    assert row["p_value"] == pytest.approx(sps.wilcoxon(x[0], x[2]).pvalue)
    assert row["significant"] and not frame.iloc[0]["significant"]
    np.testing.assert_allclose(frame["p_holm"], holm(frame["p_value"]))
    tied = wilcoxon_holm(small([[1, 2, 3], [1, 2, 3]]))
    assert tied["p_value"].iloc[0] == 1.0


# --------------------------------------------------------------------------- agreement
def test_kendall_matches_by_name():
    a = Ranking("x", ("p", "q", "r", "s"), np.array([4.0, 3, 2, 1]))
    b = Ranking("y", ("s", "r", "q", "p", "extra"), np.array([1.0, 2, 3, 4, 9]))
    assert kendall_tau(a, b) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert kendall_tau([1.0, 0.1 + 0.2, 2.0], [1.0, 1.0, 2.0]) == pytest.approx(kendall_tau([1.0, 0.3, 2.0], [1, 1, 2]))


# --------------------------------------------------------------------------- CD diagram
def test_cd_cliques_by_hand():
    names = ["a", "b", "c", "d"]
    ranks = np.array([1.0, 1.5, 3.0, 3.4])
    assert cliques(names, ranks, cd=1.0) == [["a", "b"], ["c", "d"]]
    assert cliques(names, ranks, cd=2.2) == [["a", "b", "c"], ["b", "c", "d"]]
    wil = pd.DataFrame({"a": ["a", "a", "b"], "b": ["b", "c", "c"], "significant": [False, True, False]})
    assert cliques(["a", "b", "c"], np.array([1.0, 2.0, 3.0]), cd=0.0, pairwise=wil) == [["a", "b"], ["b", "c"]]


def test_cd_diagram_writes_a_png(tmp_path):
    x = np.random.default_rng(4).normal(size=(7, 12)) + np.linspace(0, 2, 7)[:, None]
    table = small(x)
    out = plot_cd_diagram(friedman(table), tmp_path / "cd.png", pairwise=wilcoxon_holm(table))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    with pytest.raises(ValueError, match="unreadable"):
        plot_cd_diagram(friedman(small(np.random.default_rng(0).normal(size=(45, 3)))), tmp_path / "big.png")
