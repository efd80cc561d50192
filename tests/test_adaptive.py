"""tournaments.adaptive.replay and `harness import items` / `harness adaptive replay`: deterministic given a
seed, exact where a closed form exists (all items = no error), blind to held-out models' rows in the fit,
and runnable end to end on Eval-Arena's real per-example files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.store import Store
from tournaments import adaptive
from tournaments.adaptive import METHODS, holdout_sets, replay, replay_fold

runner = CliRunner()


def simulated(seed: int = 0, models: int = 40, items: int = 120) -> np.ndarray:
    """Binary answers from a 2PL (theta, b ~ N(0, 1), log a ~ N(0, 0.3^2))."""
    rng = np.random.default_rng(seed)
    theta, b, a = rng.normal(0, 1, models), rng.normal(0, 1, items), np.exp(rng.normal(0, 0.3, items))
    p = 1 / (1 + np.exp(-(np.outer(theta, a) - a * b)))
    return (rng.random((models, items)) < p).astype(float)


def test_replay_is_deterministic_given_seed():
    y = simulated()
    one = replay(y, 0.1, folds=4, seed=3, repeats=3)
    two = replay(y, 0.1, folds=4, seed=3, repeats=3)
    pd.testing.assert_frame_equal(one, two)
    assert list(one["method"]) == list(METHODS)
    assert not one["mae"].equals(replay(y, 0.1, folds=4, seed=4, repeats=3)["mae"])


def test_full_budget_is_exact():
    """Closed form: with every item asked, each estimator returns the full score (random: the mean itself;
    regression: training subset score = full score, so slope 1 and intercept 0; IRT/CAT: nothing left to
    predict), so MAE is 0 up to float rounding and tau is 1."""
    table = replay(simulated(1), 1.0, folds=4, seed=0, repeats=2)
    assert table["mae"].max() < 1e-12
    assert np.allclose(table["tau"], 1.0)


def test_random_is_its_own_reference_and_top_split_holds_out_the_best():
    y = simulated(2)
    table = replay(y, 0.1, folds=5, split="top", seed=0, repeats=4).set_index("method")
    assert table.loc["random", "ess"] == pytest.approx(1.0)  # same draws as the reference curve
    assert table.loc["random", "heldout"] == math.ceil(40 / 5)
    best = np.argsort(-y.mean(axis=1), kind="stable")[:8]
    np.testing.assert_array_equal(holdout_sets(y.mean(axis=1), 5, "top", 0)[0], np.sort(best))


def test_poisoned_heldout_rows_in_the_training_part_change_nothing(monkeypatch):
    """Every fold's training matrix gets the held-out models' rows replaced by noise: if any fit read them,
    the results would move. They must be bit-identical."""
    y = simulated(3)
    clean = replay(y, 0.1, folds=5, seed=0, repeats=3)
    real_fold = adaptive.replay_fold
    noise = np.random.default_rng(99)
    calls = []

    def poisoned(training, answers, heldout, *args, **kwargs):
        dirty = training.copy()
        dirty[heldout] = noise.random((heldout.size, training.shape[1]))
        calls.append(heldout)
        return real_fold(dirty, answers, heldout, *args, **kwargs)

    monkeypatch.setattr(adaptive, "replay_fold", poisoned)
    dirty = replay(y, 0.1, folds=5, seed=0, repeats=3)
    assert len(calls) == 5
    pd.testing.assert_frame_equal(clean, dirty)
    # and the poison would be seen if held-out rows were read: poisoning a training row does move the fit
    heldout = holdout_sets(y.mean(axis=1), 5, "random", 0)[0]
    moved = y.copy()
    moved[np.setdiff1d(np.arange(40), heldout)[0]] = noise.random(y.shape[1])
    base = replay_fold(y, y, heldout, 12, seed=0, repeats=2)
    other = replay_fold(moved, y, heldout, 12, seed=0, repeats=2)
    assert not np.array_equal(base["irt"], other["irt"])


# ------------------------------------------------------------------------------------------------ CLI
def invoke(*args) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_import_eval_arena_and_replay_at_budget_0_1(shared_data, tmp_path):
    db = tmp_path / "h.duckdb"
    arena = shared_data / "eval-arena-per-example"
    code, stdout, _ = invoke("import", "items", arena / "humaneval.jsonl", "--name", "ea", "--db", db)
    assert code == 0 and "49 models x 1 tasks, 8036 item scores" in stdout  # README: 49 models x 164 problems
    code, stdout, _ = invoke("import", "items", arena / "mbpp.jsonl", "--name", "ea-mbpp", "--db", db)
    assert code == 0 and "59 models x 1 tasks" in stdout
    with Store.open(db, read_only=True) as store:
        rows = store.external_rows("ea")
    assert rows["replicate"].nunique() == 164 and set(rows["value"]) <= {0.0, 1.0}
    code, stdout, stderr = invoke("adaptive", "replay", "--source", "ea", "--budget", "0.1", "--repeats", "2",
                                  "--format", "json", "--db", db)
    assert code == 0, stderr
    table = pd.DataFrame(json.loads(stdout)["rows"])
    assert list(table["method"]) == list(METHODS)
    assert set(table["items"]) == {16} and set(table["models"]) == {49} and set(table["heldout"]) == {49}
    assert table["mae"].between(0, 0.3).all() and table["tau"].between(-1, 1).all()


def test_missing_cells_drop_models_with_a_note(tmp_path):
    y = simulated(4, models=12, items=30)
    records = [{"model": f"m{i}", "task": "t", "item": f"q{j}", "score": y[i, j]}
               for i in range(12) for j in range(30) if not (i == 0 and j == 5)]
    path = tmp_path / "items.csv"
    pd.DataFrame(records).to_csv(path, index=False)
    db = tmp_path / "h.duckdb"
    assert invoke("import", "items", path, "--name", "s", "--db", db)[0] == 0
    code, stdout, stderr = invoke("adaptive", "replay", "--source", "s", "--budget", "0.2", "--folds", "3",
                                  "--repeats", "1", "--methods", "random,random+regression", "--format", "json",
                                  "--db", db)
    assert code == 0, stderr
    document = json.loads(stdout)
    assert document["notes"] == ["t: 1 of 12 models miss some of its 30 items and were left out"]
    assert {row["models"] for row in document["rows"]} == {11}


@pytest.mark.parametrize("text, where", [
    ("model,task,item,score\na,t,1,0.5\na,t,2,1.5\n", ":3: column 'score': '1.5' is not in [0, 1]"),
    ("model,task,item,score\na,t,1,0.5\na,t,1,1\n", ":3: model 'a' task 't' item '1' already given on line 2"),
    ("model,task,score\na,t,0.5\n", ":1: missing column(s) item"),
    ("model,task,item,score\na,t,1,x\n", ":2: column 'score': non-numeric value 'x'"),
])
def test_malformed_items_file_is_one_line_and_store_unchanged(tmp_path, text, where):
    db = tmp_path / "h.duckdb"
    good = tmp_path / "good.csv"
    good.write_text("model,task,item,score\na,t,1,1\nb,t,1,0\n")
    assert invoke("import", "items", good, "--name", "s", "--db", db)[0] == 0
    before = db.read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    code, _, stderr = invoke("import", "items", bad, "--name", "s", "--db", db)
    assert code == 2 and stderr.count("\n") == 1 and f"{bad}{where}" in stderr
    assert db.read_bytes() == before


def test_malformed_json_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"model": "a", "task": "t", "item": 1, "score": 1}\n{"model": "a", "task"\n')
    code, _, stderr = invoke("import", "items", bad, "--name", "s", "--db", tmp_path / "h.duckdb")
    assert code == 2 and f"{bad}:2: invalid JSON" in stderr


def test_a_method_worse_than_random_is_named_in_the_output(shared_data, tmp_path):
    """AlpacaEval 2 with its best models held out is the README's failure case: the notes must name exactly the
    methods whose MAE in the rows exceeds uniform random's (the check is between the command's own rows and notes)."""
    wide = pd.read_csv(shared_data / "alpacaeval-items" / "weighted_alpaca_eval_gpt4_turbo_matrix.csv")
    long = wide.drop(columns="dataset").melt("item_sha1", var_name="model", value_name="s").dropna()
    path = tmp_path / "ae2.csv"
    pd.DataFrame({"model": long["model"], "task": "ae2", "item": long["item_sha1"],
                  "score": long["s"] - 1}).to_csv(path, index=False)  # preference in [1, 2] -> [0, 1]
    db = tmp_path / "h.duckdb"
    assert invoke("import", "items", path, "--name", "ae2", "--db", db)[0] == 0
    code, stdout, stderr = invoke("adaptive", "replay", "--source", "ae2", "--budget", "0.1", "--split", "top",
                                  "--repeats", "2", "--format", "json", "--db", db)
    assert code == 0, stderr
    document = json.loads(stdout)
    rows = pd.DataFrame(document["rows"]).set_index("method")["mae"]
    worse = [m for m in METHODS if rows[m] > rows["random"]]
    assert worse  # on this split at least regression loses (README: MAE 0.095 vs 0.026)
    [note] = [n for n in document["notes"] if "WORSE than uniform random" in n]
    assert note.startswith("ae2: ") and all(f"{m} {rows[m]:.3f}" in note for m in worse)
    assert not any(f" {m} " in note.split("(MAE")[1].split(" vs ")[0] for m in set(METHODS) - set(worse) - {"random"})


def test_anchor_points_recover_item_clusters_and_their_weights():
    """Items that are three repeated columns (5, 3 and 2 copies; tinyBenchmarks' correctness clusters): k-means with
    k = 3 finds one anchor per group, weighted 0.5 / 0.3 / 0.2, so the anchor estimate is every model's exact mean;
    with k = number of items every item is its own anchor at weight 1/n."""
    from tournaments.adaptive import anchor_points

    rng = np.random.default_rng(5)
    patterns = (rng.random((12, 3)) < 0.5).astype(float)
    patterns[:, 0], patterns[:, 1] = 1.0, 0.0  # three distinct columns
    matrix = np.repeat(patterns, [5, 3, 2], axis=1)
    anchors, weights = anchor_points(matrix, 3, np.random.default_rng(0))
    assert sorted(np.round(weights, 12)) == [0.2, 0.3, 0.5]
    np.testing.assert_allclose(matrix[:, anchors] @ weights, matrix.mean(axis=1), atol=1e-12)
    every, flat = anchor_points(simulated(1, models=10, items=15), 15, np.random.default_rng(0))
    assert sorted(every) == list(range(15)) and np.allclose(flat, 1 / 15)
