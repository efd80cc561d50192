"""`harness eval --adaptive` (issue 20) on the tiny model, through the real runner, cache and store.

The item response fit comes from a synthetic per-item import for arith_add_2d's 300 test items (30 models drawn from
a 2PL with known parameters), fitted by `harness irt fit`. What is checked against closed forms written out here,
not against the harness's own functions: the p-IRT estimate (the answers given plus the 2PL prediction at the MAP
ability for every item not asked, Maia Polo et al. 2024) with its delta-method standard error, and the random
fallback's mean with the finite-population standard error s/sqrt(n) * sqrt(1 - n/N).
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pytest
from scipy import optimize
from scipy.special import expit
from typer.testing import CliRunner

from harness.cli import app

runner = CliRunner()
TASK, N_ITEMS = "arith_add_2d", 300  # the built-in task's test split


def harness(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def sql(db, query: str, params=()):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(query, list(params)).fetchall()


@pytest.fixture(scope="module")
def store(tiny_model, tmp_path_factory):
    """A store with a 2PL fit of arith_add_2d (from a synthetic import) and a first adaptive evaluation of tiny."""
    root = tmp_path_factory.mktemp("adaptive")
    db = root / "h.duckdb"
    rng = np.random.default_rng(11)
    theta, b, a = rng.normal(0, 1, 30), rng.normal(0, 1.5, N_ITEMS), np.exp(rng.normal(0, 0.3, N_ITEMS))
    y = (rng.random((30, N_ITEMS)) < expit(a * (theta[:, None] - b))).astype(float)
    lines = [f"m{i},{TASK},{j},{y[i, j]:g}" for i in range(30) for j in range(N_ITEMS)]
    (root / "items.csv").write_text("model,task,item,score\n" + "\n".join(lines) + "\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARNESS_RESULTS", str(root / "results"))
        harness("import", "items", str(root / "items.csv"), "--name", "syn", "--db", str(db))
        harness("irt", "fit", "--source", "syn", "--tasks", TASK, "--db", str(db))
        first = harness("eval", "--models", f"{tiny_model}=tiny", "--tasks", TASK, "--adaptive", "--budget", "0.1",
                        "--seed", "3", "--db", str(db), "--display", "none")
        yield db, tiny_model, first


def _estimate(db, model: str = "tiny", task: str = TASK):
    rows = sql(db, """SELECT e.method, e.fit_id, e.estimate, e.stderr, e.n_items, e.items, e.budget, e.run_id, e.metric
                      FROM estimates e JOIN models m USING (model_id) JOIN tasks t USING (task_id)
                      WHERE m.name = ? AND t.name = ? ORDER BY e.created_at""", [model, task])
    assert rows, "no estimate stored"
    return rows[-1]


def _values(db, run_id: str) -> dict[int, float]:
    return dict(sql(db, """SELECT s.doc_id, s.value FROM samples s JOIN runs r USING (run_id)
                           JOIN tasks t USING (task_id) WHERE s.run_id = ? AND s.metric = t.primary_metric""",
                    [run_id]))


def test_cat_answers_its_budget_and_the_estimate_is_p_irt(store):
    db, _, _ = store
    method, fit_id, estimate, stderr, n_items, items, budget, run_id, metric = _estimate(db)
    assert (method, metric, n_items, budget) == ("cat-2pl", "acc", 30, 30) and len(set(items)) == 30
    values = _values(db, run_id)
    assert sorted(values) == sorted(items)  # the run scored exactly the chosen items
    [args] = sql(db, "SELECT backend_args FROM runs WHERE run_id = ?", [run_id])
    assert json.loads(args[0])["items"] == sorted(items)
    params = sql(db, "SELECT item, difficulty, discrimination FROM irt_items WHERE fit_id = ?", [fit_id])
    b = np.zeros(N_ITEMS)
    a = np.zeros(N_ITEMS)
    for item, difficulty, discrimination in params:
        b[int(item)], a[int(item)] = difficulty, discrimination
    asked = np.array(sorted(items))
    y = np.array([values[i] for i in asked])

    def neg_log_posterior(t):  # Bernoulli likelihood of the answers, N(0, 1) prior on theta
        p = expit(a[asked] * (t[0] - b[asked]))
        return -(y @ np.log(p) + (1 - y) @ np.log(1 - p)) + t[0] ** 2 / 2

    theta = optimize.minimize(neg_log_posterior, [0.0], method="BFGS", options={"gtol": 1e-10}).x[0]
    p = expit(a * (theta - b))
    unasked = np.setdiff1d(np.arange(N_ITEMS), asked)
    assert estimate == pytest.approx((y.sum() + p[unasked].sum()) / N_ITEMS, abs=1e-6)
    theta_se = 1 / np.sqrt((a[asked] ** 2 * p[asked] * (1 - p[asked])).sum() + 1)
    slope = (a[unasked] * p[unasked] * (1 - p[unasked])).sum() / N_ITEMS
    spread = (p[unasked] * (1 - p[unasked])).sum() / N_ITEMS**2
    assert stderr == pytest.approx(np.sqrt((slope * theta_se) ** 2 + spread), rel=1e-4)


def test_partial_runs_stay_off_the_leaderboard_and_a_rerun_computes_nothing(store):
    db, tiny, _ = store
    assert sql(db, "SELECT count(*) FROM leaderboard WHERE model = 'tiny'") == [(0,)]
    assert sql(db, "SELECT count(*) FROM runs r JOIN models m USING (model_id) WHERE m.name = 'tiny'")[0][0] >= 2
    before = _estimate(db)
    again = harness("eval", "--models", f"{tiny}=tiny", "--tasks", TASK, "--adaptive", "--budget", "0.1", "--seed",
                    "3", "--db", str(db), "--display", "none")
    row = next(line for line in again.splitlines() if "tiny" in line and TASK in line)
    assert row.split("│")[-2].strip() == "0", again  # computed: every answer came from the store
    assert _estimate(db)[2:6] == before[2:6]
    assert sql(db, "SELECT count(*) FROM estimates") == [(1,)]


def test_another_seed_asks_other_items(store):
    db, tiny, _ = store
    harness("eval", "--models", f"{tiny}=tiny", "--tasks", TASK, "--adaptive", "--budget", "0.1", "--seed", "4",
            "--db", str(db), "--display", "none")
    seeds = dict(sql(db, "SELECT seed, items FROM estimates WHERE seed IN (3, 4)"))
    assert len(seeds[3]) == len(seeds[4]) == 30 and set(seeds[3]) != set(seeds[4])


def test_a_full_run_reuses_the_adaptive_answers(store):
    db, tiny, _ = store
    chosen = set().union(*(set(items) for (items,) in sql(db, "SELECT items FROM estimates")))
    full = harness("eval", "--models", f"{tiny}=tiny", "--tasks", TASK, "--limit", "60", "--db", str(db),
                   "--display", "none")
    row = next(line for line in full.splitlines() if "tiny" in line and TASK in line)
    cached, computed = (int(cell.strip()) for cell in row.split("│")[-4:-2])
    reused = len([i for i in chosen if i < 60])
    assert (cached, computed) == (4 * reused, 4 * (60 - reused)), full  # four choices per item
    [(run_id,)] = sql(db, """SELECT run_id FROM runs r JOIN models m USING (model_id)
                             WHERE m.name = 'tiny' AND item_limit = 60""")
    full_values = _values(db, run_id)
    adaptive = _values(db, _estimate(db)[7])
    assert all(full_values[i] == adaptive[i] for i in adaptive if i < 60)


def test_without_a_fit_a_random_subset_and_its_finite_population_error(store):
    db, tiny, _ = store
    harness("eval", "--models", f"{tiny}=tiny", "--tasks", "compare_numbers", "--adaptive", "--budget", "0.2",
            "--db", str(db), "--display", "none")
    method, fit_id, estimate, stderr, n_items, items, _, run_id, _ = _estimate(db, task="compare_numbers")
    [(n_total,)] = sql(db, "SELECT n_items FROM tasks WHERE name = 'compare_numbers'")
    assert (method, fit_id, n_items) == ("random", None, round(0.2 * n_total))
    y = np.array(list(_values(db, run_id).values()))
    assert estimate == pytest.approx(y.mean(), abs=1e-12)
    assert stderr == pytest.approx(y.std(ddof=1) / np.sqrt(y.size) * np.sqrt(1 - y.size / n_total), rel=1e-9)


def test_target_se_stops_before_the_budget(store):
    db, tiny, _ = store
    out = harness("eval", "--models", f"{tiny}=tiny", "--tasks", TASK, "--adaptive", "--budget", "1.0",
                  "--target-se", "0.08", "--adaptive-batch", "8", "--seed", "5", "--db", str(db), "--display", "none")
    [(stderr, n_items)] = sql(db, "SELECT stderr, n_items FROM estimates WHERE seed = 5")
    assert stderr <= 0.08 and n_items < N_ITEMS and n_items % 8 == 0, out


@pytest.mark.parametrize("extra, culprit", [
    (["--limit", "5"], "--limit: an adaptive evaluation chooses its own items"),
    (["--target-se", "0"], "--target-se 0: a standard error above 0"),
])
def test_bad_adaptive_options_are_one_line(store, extra, culprit):
    db, tiny, _ = store
    result = runner.invoke(app, ["eval", "--models", f"{tiny}=tiny", "--tasks", TASK, "--adaptive", *extra,
                                 "--db", str(db), "--display", "none"])
    assert result.exit_code == 2 and culprit in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_target_se_without_adaptive_is_refused(store):
    db, tiny, _ = store
    result = runner.invoke(app, ["eval", "--models", f"{tiny}=tiny", "--tasks", TASK, "--target-se", "0.1",
                                 "--db", str(db), "--display", "none"])
    assert result.exit_code == 2 and "only with --adaptive" in result.stderr


def test_normal_bootstrap_matches_the_closed_form_probability():
    """Two estimates 0.60 ± 0.05 and 0.50 ± 0.05: A ranks first with probability Phi(0.1 / sqrt(2 * 0.05^2)) =
    0.9214; 4,000 draws give it within 4 Monte Carlo standard errors (4 * 0.0043)."""
    from scipy.stats import norm

    from tournaments import ScoreTable
    from tournaments.methods import rank
    from tournaments.stats import bootstrap_ranking

    table = ScoreTable(("A", "B"), ("t",), np.array([[0.6], [0.5]]))
    boot = bootstrap_ranking(table, lambda t: rank(t, "mean"), n_boot=4000, seed=1, stderr=np.array([[0.05], [0.05]]))
    assert boot.unit == "normal"
    assert (boot.rank_samples[:, 0] == 1).mean() == pytest.approx(norm.cdf(0.1 / np.sqrt(2 * 0.05**2)), abs=4 * 0.0043)


def test_rank_estimates_shows_each_cell_with_its_error(store):
    db, _, _ = store
    from harness.store import ModelRecord, Store

    with Store.open(db) as s:  # a second model's run over 30 items and its estimate, through the store's API
        [(task_id, backend, args)] = s.con.execute("""SELECT e.task_id, r.backend, r.backend_args FROM estimates e
                                                      JOIN runs r USING (run_id) WHERE e.seed = 3""").fetchall()
        s.register_model(ModelRecord("id-other", "other", "base", "test", "fp-other" * 8, 10))
        # the same task version and run settings as tiny's estimate: comparable
        s.start_run("run-other", "id-other", task_id, backend, {**json.loads(args), "items": list(range(30))}, None, {})
        s.save_estimate({"run_id": "run-other", "metric": "acc", "method": "random", "fit_id": None,
                         "estimate": 0.99, "stderr": 0.01, "n_items": 30, "items": list(range(30)), "budget": 30,
                         "target_se": None, "seed": 0})
    out = harness("rank", "--estimates", "--tasks", TASK, "--method", "mean", "--bootstrap", "200", "--db", str(db),
                  "-f", "json")
    ranked = json.loads(out)
    rows = {r["competitor"]: r for r in ranked["rows"]}
    tiny = [e for e in sql(db, """SELECT e.estimate, e.stderr FROM estimates e JOIN models m USING (model_id)
                                  WHERE m.name = 'tiny' AND e.task_id = ? ORDER BY e.created_at""", [task_id])][-1]
    assert rows["other"]["rank"] == 1 and rows["tiny"][TASK] == pytest.approx(tiny[0])
    assert rows["tiny"][f"{TASK} se"] == pytest.approx(tiny[1]) and rows["other"][f"{TASK} se"] == 0.01
    assert any("estimates from chosen items" in n for n in ranked["notes"])
    assert any("N(estimate, se)" in n for n in ranked["notes"])
    refused = runner.invoke(app, ["rank", "--estimates", "--limit", "30", "--db", str(db)])
    assert refused.exit_code == 2 and "--estimates with --limit" in refused.stderr


def test_rank_estimates_beside_a_full_run(store):
    """A full run of every item replaces the same model's estimate (exact, no se) and ranks beside the other model's
    estimate; CSD's --item-bootstrap then draws only the estimated cell."""
    db, tiny, _ = store
    harness("eval", "--models", f"{tiny}=tiny", "--tasks", TASK, "--db", str(db), "--display", "none")
    [(full_value,)] = sql(db, "SELECT value FROM leaderboard WHERE model = 'tiny' AND task = ? AND item_limit IS NULL",
                          [TASK])
    ranked = json.loads(harness("rank", "--estimates", "--tasks", TASK, "--method", "mean", "--bootstrap", "100",
                                "--db", str(db), "-f", "json"))
    rows = {r["competitor"]: r for r in ranked["rows"]}
    assert rows["tiny"][TASK] == pytest.approx(full_value) and rows["tiny"][f"{TASK} se"] is None
    assert rows["other"][TASK] == 0.99 and rows["other"][f"{TASK} se"] == 0.01
    assert any("1 cells are full runs" in n and "in place of an estimate" in n for n in ranked["notes"])
    csd = runner.invoke(app, ["rank", "--estimates", "--tasks", TASK, "--method", "csd", "--item-bootstrap",
                              "--n-sims", "2000", "--db", str(db), "-f", "json"])
    assert csd.exit_code == 0, csd.output
    assert [r["competitor"] for r in json.loads(csd.stdout)["rows"]][0] == "other"
    from harness.store import ModelRecord, Store

    with Store.open(db) as s:  # an estimate made with other run settings (no dtype, no device) is not comparable
        [(task_id,)] = s.con.execute("SELECT task_id FROM tasks WHERE name = ?", [TASK]).fetchall()
        s.register_model(ModelRecord("id-third", "third", "base", "test", "fp-third" * 8, 10))
        s.start_run("run-third", "id-third", task_id, "hf", {"items": list(range(30))}, None, {})
        s.save_estimate({"run_id": "run-third", "metric": "acc", "method": "random", "fit_id": None, "estimate": 0.5,
                         "stderr": 0.05, "n_items": 30, "items": list(range(30)), "budget": 30, "target_se": None,
                         "seed": 0})
    refused = runner.invoke(app, ["rank", "--estimates", "--tasks", TASK, "--db", str(db)])
    assert refused.exit_code == 2 and "estimated at two task versions or run settings" in refused.stderr


def test_a_killed_adaptive_run_resumes_without_asking_any_item_twice(tiny_model, tmp_path):
    """SIGKILL in the middle of a batch, then the same command: every request of the chosen items is computed exactly
    once over the two processes (answers committed before the kill are read back, none is recomputed), and the
    estimate is the one an uninterrupted run stores."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "HARNESS_RESULTS": str(tmp_path / "results"), "PYTHONPATH": str(repo)}

    def command(db):
        return [sys.executable, "-m", "harness.cli", "eval", "--models", f"{tiny_model}=tiny", "--tasks", TASK,
                "--adaptive", "--budget", "0.1", "--chunk-size", "4", "--seed", "9", "--display", "plain",
                "--db", str(db)]

    killed = subprocess.Popen(command(tmp_path / "k.duckdb"), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    seen = [killed.stderr.readline() for _ in range(12)]  # a few batches in: one line per committed chunk
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL and all("requests" in line for line in seen), seen
    [(before,)] = sql(tmp_path / "k.duckdb", "SELECT count(DISTINCT req_hash) FROM requests")
    assert 0 < before < 4 * 30
    again = subprocess.run(command(tmp_path / "k.duckdb"), env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    row = next(line for line in again.stdout.splitlines() if "tiny" in line and TASK in line)
    assert int(row.split("│")[-2]) == 4 * 30 - before  # computed now: only what the killed run had not committed
    whole = subprocess.run(command(tmp_path / "w.duckdb"), env=env, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr
    query = "SELECT estimate, stderr, items FROM estimates"
    assert sql(tmp_path / "k.duckdb", query) == sql(tmp_path / "w.duckdb", query)
