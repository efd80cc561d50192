"""The CLI verbs on a real store: rank (mean, HELM mean win rate), query, lists, and bad input."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.store import ModelRecord, Store, TaskRecord

runner = CliRunner()

# (model, task, higher_is_better, value); model C has no result on t2.
CELLS = [("A", "t1", True, 0.9), ("B", "t1", True, 0.5), ("C", "t1", True, 0.5),
         ("A", "t2", True, 0.2), ("B", "t2", True, 0.8),
         ("A", "t3", False, 1.0), ("B", "t3", False, 2.0), ("C", "t3", False, 0.5)]


def fill_store(path) -> None:
    """Finished runs with known primary scores, written through the store's own API."""
    with Store.open(path) as store:
        for name in "ABC":
            store.register_model(ModelRecord(f"id-{name}", name, "base", "test", f"fp-{name}" * 8, 10))
        for task in ("t1", "t2", "t3"):
            metric = "acc" if task != "t3" else "bits_per_byte"
            store.register_task(TaskRecord(f"tid-{task}", task, "1", "builtin", f"h-{task}", metric,
                                           task != "t3", 10, {}))
        for model, task, _, value in CELLS:
            run_id = f"{model}-{task}"
            metric = "acc" if task != "t3" else "bits_per_byte"
            store.start_run(run_id, f"id-{model}", f"tid-{task}", "hf", {}, None, {})
            samples = pa.table({"run_id": [run_id], "doc_id": pa.array([0], pa.int32()), "metric": [metric],
                                "value": [value]})
            scores = pa.table({"run_id": [run_id], "metric": [metric], "value": [value], "stderr": [0.01],
                               "n": pa.array([10], pa.int32())})
            store.finish_run(run_id, samples, scores, {"requests": 1, "cached": 0, "computed": 1})


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def filled_db(tmp_path):
    path = tmp_path / "h.duckdb"
    fill_store(path)
    return path


def test_rank_mean_and_mean_win_rate_by_hand(filled_db):
    result = runner.invoke(app, ["rank", "--db", str(filled_db), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["competitor"]: row for row in json.loads(result.stdout)["rows"]}
    # Per-task win rates (ties half, missing cells skipped, t3 lower-is-better):
    # A: t1 1, t2 0, t3 .5 -> .5; B: t1 .25, t2 1, t3 0 -> .41667; C: t1 .25, t3 1 -> .625
    assert rows["A"]["mwr"] == pytest.approx(0.5)
    assert rows["B"]["mwr"] == pytest.approx(1.25 / 3)
    assert rows["C"]["mwr"] == pytest.approx(0.625)
    assert [rows[m]["rank"] for m in "CAB"] == [1, 2, 3]
    assert rows["A"]["mean"] == pytest.approx((0.9 + 0.2 - 1.0) / 3)
    assert rows["C"]["mean"] == pytest.approx(0.0)
    assert rows["C"]["t2"] is None


def test_rank_tasks_takes_a_suite_name(tmp_path):
    """--tasks core means the built-in suite's tasks, as in `harness eval`: a stored task outside it is left out."""
    from harness.tasks.registry import suites

    core = suites()["core"]
    path = tmp_path / "h.duckdb"
    with Store.open(path) as store:
        for name in "AB":
            store.register_model(ModelRecord(f"id-{name}", name, "base", "test", f"fp-{name}" * 8, 10))
        for task in [*core, "extra"]:
            store.register_task(TaskRecord(f"tid-{task}", task, "1", "builtin", f"h-{task}", "acc", True, 10, {}))
            for name, value in (("A", 0.7), ("B", 0.4 if task != "extra" else 0.9)):
                run_id = f"{name}-{task}"
                store.start_run(run_id, f"id-{name}", f"tid-{task}", "hf", {}, None, {})
                store.finish_run(run_id, pa.table({"run_id": [run_id], "doc_id": pa.array([0], pa.int32()),
                                                   "metric": ["acc"], "value": [value]}),
                                 pa.table({"run_id": [run_id], "metric": ["acc"], "value": [value], "stderr": [0.01],
                                           "n": pa.array([10], pa.int32())}),
                                 {"requests": 1, "cached": 0, "computed": 1})
    result = runner.invoke(app, ["rank", "--tasks", "core", "--method", "mean", "--db", str(path), "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["competitor"]: row for row in json.loads(result.stdout)["rows"]}
    assert rows["A"]["mean"] == pytest.approx(0.7) and rows["B"]["mean"] == pytest.approx(0.4)  # "extra" left out
    assert set(core) <= set(rows["A"]) and "extra" not in rows["A"]


@pytest.mark.parametrize("fmt,marker", [("md", "| rank |"), ("csv", "rank,competitor,"), ("table", "evaluated models")])
def test_rank_formats(filled_db, fmt, marker):
    result = runner.invoke(app, ["rank", "--db", str(filled_db), "--format", fmt, "--method", "mean"])
    assert result.exit_code == 0, result.output
    assert marker in result.stdout


def test_query_prints_rows_and_csv(filled_db):
    sql = "SELECT model, value FROM leaderboard WHERE task = 't1' ORDER BY model"
    result = runner.invoke(app, ["query", sql, "--db", str(filled_db), "--csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["model,value", "A,0.9", "B,0.5", "C,0.5"]
    bad = runner.invoke(app, ["query", "SELEC nonsense", "--db", str(filled_db)])
    assert bad.exit_code != 0 and "query failed" in bad.stderr


def test_query_is_read_only_unless_write(filled_db):
    before = digest(filled_db)
    refused = runner.invoke(app, ["query", "DELETE FROM scores", "--db", str(filled_db)])
    one_line_error(refused, "read-only", "--write")
    assert digest(filled_db) == before
    done = runner.invoke(app, ["query", "DELETE FROM scores WHERE run_id = 'A-t1'", "--db", str(filled_db), "--write"])
    assert done.exit_code == 0, done.output
    left = runner.invoke(app, ["query", "SELECT count(*) AS n FROM scores", "--db", str(filled_db), "--csv"])
    assert left.stdout.splitlines() == ["n", str(len(CELLS) - 1)]


def test_tasks_and_models_list(filled_db):
    tasks = runner.invoke(app, ["tasks", "list"])
    assert tasks.exit_code == 0 and "suite core" in tasks.stdout
    models = runner.invoke(app, ["models", "list", "--db", str(filled_db)])
    assert models.exit_code == 0 and "smollm2-135m" in models.stdout and "fp-A" in models.stdout


def one_line_error(result, *culprits: str) -> None:
    assert result.exit_code != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for culprit in culprits:
        assert culprit in lines[0], lines[0]


def test_missing_model_folder(filled_db, tmp_path, results_env):
    before = digest(filled_db)
    result = runner.invoke(app, ["eval", "--models", str(tmp_path / "nope"), "--db", str(filled_db)])
    one_line_error(result, str(tmp_path / "nope"), "no such folder")
    assert digest(filled_db) == before


def test_unknown_task_suggests(filled_db, results_env):
    before = digest(filled_db)
    result = runner.invoke(app, ["eval", "--tasks", "arith_add2d", "--db", str(filled_db)])
    one_line_error(result, "arith_add2d", "did you mean 'arith_add_2d'")
    assert digest(filled_db) == before


@pytest.mark.parametrize("text,culprit", [
    ("[[models]\nname = 'x'\n", "not valid TOML"),
    ("[[models]]\nnam = 'x'\n", "models.0.nam"),
    ("tasks = ['core']\n", "'models'"),
    ("[[models]]\nname = 'x'\n[settings]\nbatch_size = 0\n", "settings.batch_size"),
])
def test_malformed_suite(filled_db, tmp_path, results_env, text, culprit):
    suite = tmp_path / "suite.toml"
    suite.write_text(text)
    before = digest(filled_db)
    result = runner.invoke(app, ["eval", "--suite", str(suite), "--db", str(filled_db)])
    one_line_error(result, str(suite), culprit)
    assert digest(filled_db) == before


def test_db_that_is_not_duckdb(tmp_path, results_env, tiny_model):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 50)
    before = digest(notes)
    result = runner.invoke(app, ["eval", "--models", str(tiny_model), "--tasks", "seq_next", "--db", str(notes)])
    one_line_error(result, str(notes), "not a DuckDB database")
    assert digest(notes) == before


def test_locked_db(filled_db, results_env, tiny_model):
    before = digest(filled_db)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(filled_db)!r}); print('ok', flush=True);"
                               " time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        result = runner.invoke(app, ["eval", "--models", str(tiny_model), "--tasks", "seq_next",
                                     "--db", str(filled_db)])
        one_line_error(result, str(filled_db), "database is busy")
        ranked = runner.invoke(app, ["rank", "--db", str(filled_db)])
        one_line_error(ranked, "database is busy")
    finally:
        holder.kill()
        holder.wait()
    assert digest(filled_db) == before


def test_rank_from_real_csv_every_method(shared_data):
    csv = shared_data / "ibm-benchbench" / "benchmarks_old" / "hf_open_llm_v2_240829.csv"
    result = runner.invoke(app, ["rank", "--from", str(csv), "--on-duplicate", "first", "--method", "all",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    tables = json.loads(result.stdout)["tables"]  # one document: several tables by name
    header = list(tables["ranks"]["rows"][0])
    assert header[0] == "competitor" and {"mean", "mwr", "borda", "copeland", "bt", "elo"} <= set(header)
    tau_rows = [list(row.values()) for row in tables["kendall_tau"]["rows"]]
    diagonal = [float(row[1 + i]) for i, row in enumerate(tau_rows)]
    assert diagonal == [1.0] * len(tau_rows)
    assert all(0.3 < float(v) <= 1.0 for row in tau_rows for v in row[1:])  # methods broadly agree


def test_rank_published_aggregate_and_bootstrap(shared_data):
    csv = shared_data / "ibm-benchbench" / "benchmarks_old" / "hf_open_llm_v2_240829.csv"
    result = runner.invoke(app, ["rank", "--from", str(csv), "--on-duplicate", "number", "--method", "mean",
                                 "--bootstrap", "200", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert all(row["published"] is not None for row in rows)  # the leaderboard's own average, kept aside
    top = rows[0]
    low, high = (float(x) for x in top["mean 95% CI"].split(" – "))
    assert low <= top["mean"] <= high
    duplicate = [row for row in rows if row["competitor"] == "microsoft/Phi-3-mini-4k-instruct#2"]
    assert len(duplicate) == 1


def test_rank_robustness_tables(filled_db):
    result = runner.invoke(app, ["rank", "--db", str(filled_db), "--robustness", "--format", "md"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("## robustness:") == 4  # iia, rescaling, order, perturbation (no CSD round order)
    # C leads by mwr (the leaderboard's method); its strongest benchmark t3 set to the worst there sinks it to 3rd
    assert "## robustness: perturbation (C, the mwr leader," in result.stdout
    assert "| mwr | C | t3 | 1 | 3 | 2 |" in result.stdout


def test_rank_unknown_method_suggests(filled_db):
    result = runner.invoke(app, ["rank", "--db", str(filled_db), "--method", "bordaa"])
    one_line_error(result, "bordaa", "did you mean 'borda'")


def test_compare_paired_on_shared_items(tmp_path):
    from scipy.stats import binomtest

    rng = __import__("numpy").random.default_rng(0)
    a1 = (rng.random(200) < 0.8).astype(float)
    b1 = a1.copy()
    flip = rng.choice(200, 40, replace=False)
    b1[flip[:35]] = 0.0  # B loses 35 items A got, wins 5 back: a clear paired gap
    b1[flip[35:]] = 1.0
    a2 = (rng.random(150) < 0.5).astype(float)
    path = tmp_path / "h.duckdb"
    store_items(path, {"A": {"t1": a1, "t2": a2}, "B": {"t1": b1, "t2": a2}})
    result = runner.invoke(app, ["compare", "A", "B", "--db", str(path), "--format", "json", "--n-boot", "500"])
    assert result.exit_code == 0, result.output
    rows = {row["task"]: row for row in json.loads(result.stdout)["rows"]}
    a_only, b_only = int(((a1 == 1) & (b1 == 0)).sum()), int(((a1 == 0) & (b1 == 1)).sum())
    exact = binomtest(b_only, a_only + b_only, 0.5).pvalue  # McNemar's exact test: binomial on discordant pairs
    assert rows["t1"]["p_value"] == pytest.approx(exact, rel=1e-6)
    assert rows["t1"]["diff"] == pytest.approx((a_only - b_only) / 200)
    assert rows["t1"]["better"] == "A" and rows["t2"]["better"] == "–"
    assert rows["t2"]["diff"] == 0.0
    missing = runner.invoke(app, ["compare", "A", "Z", "--db", str(path)])
    one_line_error(missing, "model 'Z'")


def test_rank_csd_with_failure_sensitivity_and_plot(shared_data, tmp_path):
    csv = shared_data / "ibm-benchbench" / "benchmarks_old" / "hf_open_llm_v2_240829.csv"
    plot = tmp_path / "fsa.png"
    result = runner.invoke(app, ["rank", "--from", str(csv), "--on-duplicate", "first", "--method", "csd",
                                 "--eliminate", "0,1,2", "--n-sims", "4000", "--plot", str(plot), "--format", "json"])
    assert result.exit_code == 0, result.output
    tables = json.loads(result.stdout)["tables"]
    leaderboard, sensitivity = tables["csd"], tables["csd_sensitivity"]
    rows = leaderboard["rows"]
    n, k = len(rows), 7  # competitors; rounds = benchmarks (auto)
    # Every game hands out exactly one point, so expected scores add up to the games in a tournament
    # (fewer than k * n/2 when odd score buckets hand out byes).
    games = int(re.search(r"played (\d+) games", leaderboard["notes"][0]).group(1))
    assert sum(row["expected"] for row in rows) == pytest.approx(games)
    assert 0 < games <= k * (n // 2)
    assert all(row["ci_low"] <= row["expected"] <= row["ci_high"] for row in rows)
    assert {row["label"] for row in sensitivity["rows"]} <= {
        "robust generalist", "aggressive specialist", "steady underdog", "fragile underdog"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rank_csd_bad_rounds_and_schedule(shared_data, tmp_path):
    csv = shared_data / "ibm-benchbench" / "benchmarks_old" / "hf_open_llm_v2_240829.csv"
    rounds = tmp_path / "rounds.toml"
    rounds.write_text('[[rounds]]\nname = "r1"\nbenchmarks = ["HFV2_IFEval", "HFV2_NOPE"]\n')
    result = runner.invoke(app, ["rank", "--from", str(csv), "--on-duplicate", "first", "--method", "csd",
                                 "--rounds", str(rounds), "--n-sims", "100"])
    one_line_error(result, str(rounds), "HFV2_NOPE")
    result = runner.invoke(app, ["rank", "--from", str(csv), "--on-duplicate", "first", "--method", "csd",
                                 "--eliminate", "one", "--n-sims", "100"])
    one_line_error(result, "--eliminate 'one'")


def store_items(path, per_model: dict) -> None:
    """Finished runs with per-item acc samples: {model: {task: values}}, through the store's API."""
    with Store.open(path) as store:
        tasks = sorted({task for by_task in per_model.values() for task in by_task})
        for task in tasks:
            store.register_task(TaskRecord(f"tid-{task}", task, "1", "builtin", f"h-{task}", "acc", True, 10, {}))
        for model, by_task in per_model.items():
            store.register_model(ModelRecord(f"id-{model}", model, "base", "test", f"fp-{model}" * 8, 10))
            for task, values in by_task.items():
                run_id, n = f"{model}-{task}", len(values)
                store.start_run(run_id, f"id-{model}", f"tid-{task}", "hf", {}, None, {})
                samples = pa.table({"run_id": [run_id] * n, "doc_id": pa.array(range(n), pa.int32()),
                                    "metric": ["acc"] * n, "value": values})
                scores = pa.table({"run_id": [run_id], "metric": ["acc"], "value": [values.mean()],
                                   "stderr": [0.0], "n": pa.array([n], pa.int32())})
                store.finish_run(run_id, samples, scores, {"requests": n, "cached": 0, "computed": n})


def test_rank_snr_filter_drops_the_noisy_task(tmp_path):
    import numpy as np

    rng = np.random.default_rng(1)
    clear = {m: (rng.random(300) < p).astype(float) for m, p in (("A", 0.9), ("B", 0.55), ("C", 0.2))}
    noisy = {m: (rng.random(300) < 0.5).astype(float) for m in "ABC"}
    path = tmp_path / "h.duckdb"
    store_items(path, {m: {"clear": clear[m], "noisy": noisy[m]} for m in "ABC"})
    result = runner.invoke(app, ["rank", "--db", str(path), "--snr-filter", "1", "--method", "mean",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    tables = json.loads(result.stdout)["tables"]
    dropped, board = tables["snr_filter"], tables["leaderboard"]
    assert [row["benchmark"] for row in dropped["rows"]] == ["noisy"]
    assert "clear" in board["rows"][0] and "noisy" not in board["rows"][0]
    assert [row["competitor"] for row in board["rows"]] == ["A", "B", "C"]
