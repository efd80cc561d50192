"""CSD engine: invariants, agreement with a plain per-tournament loop, real leaderboards, bad input."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest

from tournaments.ranking import Ranking
from tournaments.rounds import Round, auto_rounds, parse_rounds
from tournaments.swiss import csd_ranking, pair_starts, round_strengths, simulate
from tournaments.table import ScoreTable


# ------------------------------------------------------------------------------ independent reference
def plain_csd(strength, eliminate, n_sims, seed, tiebreak="random"):
    """Deliberately plain CSD (csd.md §1.6): one tournament at a time, Python lists and `random`.

    `strength[m][k]` is competitor m's round-k strength (NaN compares False, so the pair's second
    member wins: a coin flip). Returns (E[S_m], SE, per-simulation totals).
    """
    rng = random.Random(seed)
    m, n_rounds = len(strength), len(strength[0])
    schedule = [eliminate] * n_rounds if isinstance(eliminate, int) else list(eliminate)
    total, square, totals = [0.0] * m, [0.0] * m, []
    for _ in range(n_sims):
        score = [0] * m
        alive = list(range(m))
        for k in range(n_rounds):
            if len(alive) <= 1:
                break
            buckets = {}
            for i in alive:
                buckets.setdefault(score[i], []).append(i)
            for members in buckets.values():
                rng.shuffle(members)
                for j in range(0, len(members) - 1, 2):
                    a, b = members[j], members[j + 1]
                    winner = a if strength[a][k] > strength[b][k] else b
                    score[winner] += 1
            if schedule[k]:
                if tiebreak == "index":
                    order = sorted(alive, key=lambda i: (score[i], i))
                else:
                    coin = {i: rng.random() for i in alive}
                    order = sorted(alive, key=lambda i: (score[i], coin[i]))
                gone = set(order[: schedule[k]])
                alive = [i for i in alive if i not in gone]
        for i in range(m):
            total[i] += score[i]
            square[i] += score[i] ** 2
        totals.append(sum(score))
    mean = [t / n_sims for t in total]
    se = [math.sqrt(max(sq / n_sims - mu**2, 0.0) * n_sims / (n_sims - 1) / n_sims) for sq, mu in zip(square, mean)]
    return np.array(mean), np.array(se), np.array(totals)


def plain_strengths(table, rounds, missing):
    """Round strength = plain mean of oriented scores over the round's benchmarks."""
    out = []
    for c in range(table.n_competitors):
        row = []
        for r in rounds:
            vals = []
            for b in r.benchmarks:
                j = table.benchmarks.index(b)
                v = float(table.values[c, j])
                vals.append(v if table.higher_is_better[j] else -v)
            mean = sum(vals) / len(vals)
            row.append(-math.inf if (missing == "loss" and math.isnan(mean)) else mean)
        out.append(row)
    return out


def assert_agree(result, mean, se, k=4.0):
    """Every E[S_m] within k combined standard errors (exact where both are deterministic)."""
    gap = np.abs(result.expected - mean)
    tol = k * np.sqrt(result.se**2 + se**2) + 1e-12
    bad = np.flatnonzero(gap > tol)
    assert bad.size == 0, [(result.competitors[i], result.expected[i], mean[i], tol[i]) for i in bad]


def random_table(m, n_rounds, seed, ties=False, nan_cells=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m, 1)) + 0.8 * rng.normal(size=(m, n_rounds))
    if ties:
        x = np.round(x)  # many exact ties -> coin flips
    if nan_cells:
        x.flat[rng.choice(x.size, nan_cells, replace=False)] = np.nan
    return ScoreTable([f"m{i:02d}" for i in range(m)], [f"b{k:02d}" for k in range(n_rounds)], x)


def identical_table(m, n_rounds):
    return ScoreTable([f"m{i:02d}" for i in range(m)], [f"b{k:02d}" for k in range(n_rounds)], np.ones((m, n_rounds)))


# ------------------------------------------------------------------------------ invariants
@pytest.mark.parametrize("t, bound", [(0, 168), (1, 138), (2, 102)])
def test_total_score_equals_games_and_stays_under_bound(t, bound):
    table = random_table(29, 12, seed=1)
    result = simulate(table, eliminate=t, n_sims=3000, seed=5)
    assert result.games_check
    assert len(result.total_score) == 3000 and np.all(result.total_score == result.games_played)
    assert result.games_played <= bound
    assert result.expected.sum() <= bound + 1e-9
    # bucket sizes, hence games, are the same in every tournament; the plain loop counts them itself
    _, _, plain_totals = plain_csd(plain_strengths(table, auto_rounds(table), "error"), t, 50, seed=1)
    assert set(plain_totals) == {result.games_played}
    assert len(pair_starts(29, [t] * 12)[0]) == 14  # round 1: one bucket of 29, 14 games and a bye


def test_games_per_round_are_fixed_by_field_size_and_schedule():
    rng = np.random.default_rng(8)
    for m, schedule in [(7, [0, 1, 0, 2]), (12, [2, 2, 2, 2, 1]), (30, [3, 0, 4, 1, 0, 2, 5, 0]), (5, [0] * 9)]:
        strength = np.round(rng.normal(size=(m, len(schedule)))).tolist()
        _, _, totals = plain_csd(strength, schedule, 200, seed=m)
        assert set(totals) == {sum(len(p) for p in pair_starts(m, schedule))}


def test_survival_rank_and_probability_bookkeeping():
    table = random_table(29, 12, seed=2)
    schedule = [0, 3, 0, 1, 2, 0, 0, 4, 0, 1, 0, 2]
    result = simulate(table, eliminate=schedule, n_sims=2000, seed=1)
    assert np.allclose(result.survival.sum(axis=0), 29 - np.cumsum(schedule))
    assert np.allclose(result.rank_probs.sum(axis=1), 1.0)
    assert result.p_first.sum() >= 1.0 - 1e-12
    assert np.all(simulate(table, eliminate=0, n_sims=200, seed=1).survival == 1.0)


def test_dominant_competitor_wins_every_round():
    # 16 competitors, 4 rounds: every bucket is even, so nobody ever gets a bye
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 4))
    x[5] = x.max(axis=0) + 1.0
    x[9] = x.min(axis=0) - 1.0
    table = ScoreTable([f"m{i}" for i in range(16)], [f"b{k}" for k in range(4)], x)
    result = simulate(table, n_sims=2000, seed=0)
    assert result.expected[5] == 4.0 and result.se[5] == 0.0
    assert result.p_first[5] == 1.0
    assert result.expected[9] == 0.0
    eliminated = simulate(table, eliminate=2, n_sims=2000, seed=0)
    assert np.all(eliminated.survival[5] == 1.0) and eliminated.expected[5] == 4.0


def test_lower_is_better_benchmarks_are_negated():
    x = np.arange(16.0)[:, None] * np.ones((1, 4))  # competitor 0 has the lowest value everywhere
    table = ScoreTable([f"m{i}" for i in range(16)], [f"b{k}" for k in range(4)], x, [False] * 4)
    result = simulate(table, n_sims=500, seed=0)
    assert result.expected[0] == 4.0 and result.expected[15] == 0.0


def test_round_strength_is_the_unweighted_group_mean():
    x = np.array([[10.0, 0.0, 1.0], [4.0, 4.0, 2.0]])
    table = ScoreTable(["a", "b"], ["x", "y", "z"], x, [True, True, False])
    rounds = [Round("xy", ("x", "y")), Round("z", ("z",))]
    assert np.allclose(round_strengths(table, rounds), [[5.0, -1.0], [4.0, -2.0]])


def test_identical_competitors_have_equal_expectation():
    for t in (0, 2):
        result = simulate(identical_table(29, 12), eliminate=t, n_sims=6000, seed=2)
        centre = result.expected.mean()
        assert np.all(np.abs(result.expected - centre) <= 4 * result.se)
        assert np.isclose(result.expected.sum(), result.games_played)


def test_permuting_competitors_changes_nothing():
    table = random_table(29, 12, seed=4)
    perm = np.random.default_rng(0).permutation(29)
    permuted = ScoreTable([table.competitors[i] for i in perm], table.benchmarks, table.values[perm])
    for t in (0, 2):
        base = simulate(table, eliminate=t, n_sims=8000, seed=1)
        moved = simulate(permuted, eliminate=t, n_sims=8000, seed=2)
        back = np.empty(29, dtype=int)
        back[perm] = np.arange(29)
        assert np.all(np.abs(moved.expected[back] - base.expected) <= 4 * np.hypot(moved.se[back], base.se))


def test_index_tiebreak_reproduces_the_reference_bias():
    # All equal: after round 1, 15 competitors share score 0 (14 losers and the bye). The index rule
    # always cuts competitor 0 among them, so it survives the first cut only by winning round 1
    # (14/29); a random tie-break spares each of them with probability 1 - 1/15, i.e. 28/29 overall.
    table = identical_table(29, 12)
    index = simulate(table, eliminate=1, n_sims=6000, seed=0, tiebreak="index")
    fair = simulate(table, eliminate=1, n_sims=6000, seed=0, tiebreak="random")
    n = 6000
    assert abs(index.survival[0, 0] - 14 / 29) < 4 * math.sqrt(14 / 29 * 15 / 29 / n)
    assert index.survival[28, 0] == 1.0
    assert np.all(np.abs(fair.survival[:, 0] - 28 / 29) < 4 * math.sqrt(28 / 29 / 29 / n))
    assert index.expected[:3].mean() < index.expected[-3:].mean() - 1.0  # low index loses points
    assert np.all(np.abs(fair.expected - fair.expected.mean()) <= 4 * fair.se)


def test_same_seed_same_result():
    table = random_table(12, 6, seed=5, ties=True)
    one = simulate(table, eliminate=1, n_sims=3000, seed=11, batch_size=700)
    two = simulate(table, eliminate=1, n_sims=3000, seed=11, batch_size=700)
    other = simulate(table, eliminate=1, n_sims=3000, seed=12, batch_size=700)
    assert np.array_equal(one.expected, two.expected) and np.array_equal(one.rank_probs, two.rank_probs)
    assert not np.array_equal(one.expected, other.expected)


# ------------------------------------------------------------------------------ plain loop agreement
@pytest.mark.parametrize(
    "t, tiebreak, missing, nan_cells",
    [
        (0, "random", "error", 0),
        (1, "random", "error", 0),
        (2, "random", "error", 0),
        (1, "index", "error", 0),
        (2, "index", "error", 0),
        (2, "random", "coin", 25),
        (1, "random", "loss", 25),
        ([0, 2, 0, 3, 1, 0, 0, 2, 0, 1, 0, 0], "random", "error", 0),
    ],
)
def test_vectorised_engine_matches_plain_loop_on_random_tables(t, tiebreak, missing, nan_cells):
    table = random_table(29, 12, seed=7, ties=True, nan_cells=nan_cells)
    result = simulate(table, eliminate=t, n_sims=20000, seed=3, tiebreak=tiebreak, missing=missing)
    mean, se, _ = plain_csd(plain_strengths(table, auto_rounds(table), missing), t, 1200, seed=9, tiebreak=tiebreak)
    assert_agree(result, mean, se)


def _wide_csv(path, drop):
    frame = pd.read_csv(path, na_values=["-"]).drop_duplicates("model").set_index("model")
    return ScoreTable.from_frame(frame.drop(columns=drop).astype(float))


def test_plain_loop_agreement_on_open_llm_leaderboard_v2(shared_data):
    path = shared_data / "ibm-benchbench" / "benchmarks_old" / "hf_open_llm_v2_240829.csv"
    table = _wide_csv(path, ["hf_open_llm_v2", "HFV2_BBH Raw"])
    table = table.select(competitors=table.competitors[:40])
    rounds = auto_rounds(table)
    for t in (0, 2):
        result = simulate(table, rounds, eliminate=t, n_sims=20000, seed=1)
        mean, se, _ = plain_csd(plain_strengths(table, rounds, "error"), t, 1000, seed=2)
        assert_agree(result, mean, se)
        assert result.games_check


def test_plain_loop_agreement_on_helm_lite_grouped_rounds(shared_data):
    path = shared_data / "ibm-benchbench" / "benchmarks_old" / "helm_lite_240829.csv"
    table = _wide_csv(path, ["helm_lite"])  # one '-' cell: a real missing score
    b = table.benchmarks
    groups = {"qa": b[0:3], "knowledge": b[3:5], "math": b[5:7], "domain": b[7:9], "mt": b[9:]}
    rounds = [Round(name, members) for name, members in groups.items()]
    with pytest.raises(ValueError, match="GSM8K"):
        simulate(table, rounds, n_sims=10)
    for t, missing in ((0, "coin"), (3, "loss")):
        result = simulate(table, rounds, eliminate=t, n_sims=20000, seed=4, missing=missing)
        mean, se, _ = plain_csd(plain_strengths(table, rounds, missing), t, 800, seed=5)
        assert_agree(result, mean, se)


def test_helm_lite_top_models_lead(shared_data):
    path = shared_data / "ibm-benchbench" / "benchmarks_old" / "helm_lite_240829.csv"
    frame = pd.read_csv(path, na_values=["-"]).set_index("model")
    table = ScoreTable.from_frame(frame.drop(columns=["helm_lite"]).astype(float))
    ranking = csd_ranking(table, n_sims=4000, seed=0, missing="loss")
    top_by_csd = set(ranking.order()[:10])
    top_by_helm = set(frame["helm_lite"].sort_values(ascending=False).index[:10])
    assert len(top_by_csd & top_by_helm) >= 6  # CSD and HELM's mean win rate broadly agree at the top


# ------------------------------------------------------------------------------ missing policies
def test_missing_policies():
    x = np.random.default_rng(0).normal(size=(16, 4))
    x[3] = np.nan
    table = ScoreTable([f"m{i:02d}" for i in range(16)], [f"b{k}" for k in range(4)], x)
    with pytest.raises(ValueError, match=r"'m03'.*round 'b0'"):
        simulate(table, n_sims=10)
    assert simulate(table, n_sims=2000, seed=0, missing="loss").expected[3] == 0.0
    coin = simulate(table, n_sims=2000, seed=0, missing="coin")
    assert abs(coin.expected[3] - 2.0) < 4 * coin.se[3] + 0.2  # every game a coin flip: ~ half of 4


# ------------------------------------------------------------------------------ item bootstrap
def _item_table(item_noise, seed=0):
    rng = np.random.default_rng(seed)
    skill = np.linspace(0.45, 0.55, 10)[:, None, None]
    items = rng.random((10, 4, 60)) < skill + item_noise * rng.normal(size=(1, 4, 60))
    return ScoreTable([f"m{i}" for i in range(10)], [f"b{k}" for k in range(4)], items.astype(float))


def test_item_bootstrap_widens_ci_and_estimates_item_spread():
    table = _item_table(0.3)
    boot = simulate(table, n_sims=8000, seed=0, item_bootstrap=True)
    plain = simulate(table, n_sims=8000, seed=0)
    assert boot.item_sd is not None and plain.item_sd is None
    assert np.all(boot.ci_widening > 1.5) and np.mean(boot.item_sd**2) > 0.04
    assert np.allclose(plain.ci_widening, 1.0)
    # brute force: E[S_m] on separate item resamples, each with its own Monte Carlo run
    rng = np.random.default_rng(1)
    draws = []
    for _ in range(30):
        pick = rng.integers(0, 60, size=60)
        resampled = ScoreTable(table.competitors, table.benchmarks, table.values[:, :, pick].mean(axis=2))
        draws.append(simulate(resampled, n_sims=1500, seed=int(rng.integers(1 << 30))).expected)
    brute = np.std(draws, axis=0, ddof=1)
    ratio = np.median(boot.item_sd / brute)
    assert 0.6 < ratio < 1.6


def test_item_bootstrap_without_item_noise_agrees_with_cell_means():
    x = np.repeat(np.random.default_rng(2).normal(size=(10, 4, 1)), 30, axis=2)  # every item identical
    table = ScoreTable([f"m{i}" for i in range(10)], [f"b{k}" for k in range(4)], x)
    boot = simulate(table, n_sims=20000, seed=0, item_bootstrap=True)
    plain = simulate(table, n_sims=20000, seed=1)
    assert np.all(np.abs(boot.expected - plain.expected) <= 4 * np.hypot(boot.se, plain.se))
    assert np.mean(boot.item_sd**2) < 0.015  # only estimator noise (the noisy table above gives ~0.07)


def test_item_bootstrap_bad_input():
    with pytest.raises(ValueError, match="replicates"):
        simulate(random_table(6, 3, seed=0), n_sims=10, item_bootstrap=True)
    x = np.ones((4, 2, 5))
    x[1, 0, 2] = np.nan
    table = ScoreTable(["a", "b", "c", "d"], ["x", "y"], x)
    with pytest.raises(ValueError, match=r"'b' has 4 of 5 items of 'x'"):
        simulate(table, n_sims=10, item_bootstrap=True)


@pytest.mark.parametrize("se_b, closed_form", [
    (0.05, 0.9213504),  # Phi(0.1 / sqrt(0.05^2 + 0.05^2))
    (np.nan, 0.9772499),  # Phi(0.1 / 0.05): an exact cell (NaN se) is never drawn
])
def test_cell_stderr_draws_estimated_cells(se_b, closed_form):
    """Two competitors, one round: A = 0.60 +- 0.05 beats B = 0.50 +- se_b with the closed-form probability, so
    E[S_A] is that share of A's score when it always wins; the pairs' covariance estimates the spread of E[S_A]
    over draws, W * sqrt(p (1 - p)). 20,000 simulations in 10,000 pairs: Monte Carlo sd of the share
    sqrt(p (1 - p) / 10,000) <= 0.0027, bounds at 4 of those; the spread within 10% (the covariance of 10,000
    pairs has relative sd about sqrt(2 / 10,000) = 1.4%, plus the share's own error)."""
    table = ScoreTable(["A", "B"], ["t"], np.array([[0.6], [0.5]]))
    always = simulate(table, n_sims=100, seed=0).expected[0]
    drawn = simulate(table, n_sims=20000, seed=3, cell_stderr=np.array([[0.05], [se_b]]))
    share = drawn.expected[0] / always
    assert share == pytest.approx(closed_form, abs=4 * math.sqrt(closed_form * (1 - closed_form) / 10000))
    assert drawn.item_sd[0] / always == pytest.approx(math.sqrt(closed_form * (1 - closed_form)), rel=0.1)
    with pytest.raises(ValueError, match="not both"):
        simulate(table, n_sims=10, item_bootstrap=True, cell_stderr=np.array([[0.05], [0.05]]))
    with pytest.raises(ValueError, match="competitors x benchmarks"):
        simulate(table, n_sims=10, cell_stderr=np.array([0.05, 0.05]))


# ------------------------------------------------------------------------------ bad input and API
def test_bad_input_gives_clear_errors():
    table = random_table(6, 3, seed=0)
    with pytest.raises(KeyError, match="'later'.*nope"):
        simulate(table, [Round("first", ("b00",)), Round("later", ("nope",))], n_sims=10)
    with pytest.raises(ValueError, match="removes 6 of 6"):
        simulate(table, eliminate=2, n_sims=10)
    with pytest.raises(ValueError, match="2 entries for 3 rounds"):
        simulate(table, eliminate=[1, 1], n_sims=10)
    with pytest.raises(ValueError, match="non-negative"):
        simulate(table, eliminate=-1, n_sims=10)
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="n_sims"):
            simulate(table, n_sims=bad)
    with pytest.raises(ValueError, match="tiebreak"):
        simulate(table, n_sims=10, tiebreak="first")
    with pytest.raises(ValueError, match="missing"):
        simulate(table, n_sims=10, missing="skip")


def test_csd_ranking_is_a_generic_ranking():
    table = random_table(8, 5, seed=3)
    ranking = csd_ranking(table, eliminate=1, n_sims=3000, seed=0, tiebreak="index")
    result = simulate(table, eliminate=1, n_sims=3000, seed=0, tiebreak="index")
    assert isinstance(ranking, Ranking) and ranking.method == "csd"
    assert np.array_equal(ranking.scores, result.expected)
    assert np.all(ranking.ci_low <= ranking.scores) and np.all(ranking.scores <= ranking.ci_high)
    assert np.allclose(ranking.ci_high - ranking.scores, 1.96 * result.se, rtol=1e-3)
    assert ranking.params["eliminate"] == [1] * 5 and ranking.params["tiebreak"] == "index"
    assert any("index" in note for note in ranking.notes)
    frame = result.to_frame()
    assert list(frame["competitor"]) == ranking.order()
    assert list(frame.columns) == ["competitor", "expected", "se", "ci_low", "ci_high", "p_first", "p_survive"]


# ------------------------------------------------------------------------------ round configuration
def test_rounds_parse_every_loaded_shape():
    table = random_table(4, 5, seed=0)
    expected = (Round("easy", ("b00", "b01")), Round("hard", ("b02",)))
    toml_like = {"rounds": [{"name": "easy", "benchmarks": ["b00", "b01"]}, {"name": "hard", "benchmarks": "b02"}]}
    assert parse_rounds(toml_like, table) == expected
    assert parse_rounds({"easy": ["b00", "b01"], "hard": "b02"}, table) == expected
    assert parse_rounds({"rounds": {"easy": ["b00", "b01"], "hard": ["b02"]}}, table) == expected
    assert parse_rounds(["b03", ["b00", "b04"]]) == (Round("b03", ("b03",)), Round("round 2", ("b00", "b04")))
    assert auto_rounds(table) == tuple(Round(b, (b,)) for b in table.benchmarks)


def test_rounds_validation_names_the_problem():
    table = random_table(4, 5, seed=0)
    with pytest.raises(KeyError, match=r"round 'hard' names unknown benchmark\(s\): b99"):
        parse_rounds({"easy": "b00", "hard": ["b01", "b99"]}, table)
    with pytest.raises(ValueError, match="'b00' is in both round 'a' and round 'b'"):
        parse_rounds({"a": "b00", "b": ["b00"]})
    with pytest.raises(ValueError, match="duplicate round name"):
        parse_rounds([{"name": "x", "benchmarks": ["b00"]}, {"name": "x", "benchmarks": ["b01"]}])
    with pytest.raises(ValueError, match="round 2: needs a non-empty"):
        parse_rounds([["b00"], []])
    with pytest.raises(ValueError, match="expected keys"):
        parse_rounds([{"name": "x", "tasks": ["b00"]}])
    with pytest.raises(ValueError, match="at least one round"):
        parse_rounds([])
    with pytest.raises(ValueError, match="list or a mapping"):
        parse_rounds("b00")
