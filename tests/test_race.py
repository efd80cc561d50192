"""The race for the top K (tournaments/race.py) on real per-item results and on closed-form cases.

Real data: eval-arena's per-example pass@1 of the models that have both HumanEval (164 items) and MBPP (378),
../shared/data/eval-arena-per-example. The reference is the full-data ranking by mean win rate; the ≤ 30% cost goal
is issue 20's.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tournaments import ScoreTable, mean_win_rate
from tournaments.race import race

TASKS = ("humaneval", "mbpp")


@pytest.fixture(scope="module")
def arena(shared_data):
    data: dict = {}
    for task in TASKS:
        for line in (shared_data / "eval-arena-per-example" / f"{task}.jsonl").read_text().splitlines():
            row = json.loads(line)
            data.setdefault(task, {}).setdefault(row["model"], {})[row["example_id"]] = float(row["pass1"])
    models = sorted(set(data["humaneval"]) & set(data["mbpp"]))
    matrices = []
    for task in TASKS:
        items = sorted(set.intersection(*(set(data[task][m]) for m in models)))
        order = np.random.default_rng(0).permutation(len(items))  # the race reads a task's first n items
        matrices.append(np.array([[data[task][m][items[i]] for i in order] for m in models]))
    return models, matrices


def _full_top(matrices, k: int) -> set[int]:
    means = np.stack([x.mean(axis=1) for x in matrices], axis=1)
    names = tuple(map(str, range(len(means))))
    scores = mean_win_rate(ScoreTable(names, TASKS, means, np.array([True, True]))).scores
    assert len(set(np.sort(scores)[-k - 1:])) == k + 1  # the full-data top k is unambiguous
    return set(np.argsort(-scores)[:k])


def _run(matrices, k: int, **options):
    asked = []

    def oracle(requests: list[tuple[int, int, int]]) -> list[np.ndarray]:
        asked.extend(requests)
        return [matrices[task][model, :n] for model, task, n in requests]

    result = race(oracle, len(matrices[0]), [x.shape[1] for x in matrices], [True, True], k, **options)
    return result, asked


def test_race_finds_the_full_top_3_of_real_code_benchmarks_at_under_30_percent(arena):
    models, matrices = arena
    assert len(models) == 37
    result, asked = _run(matrices, 3, seed=1)
    assert set(result.top) == _full_top(matrices, 3)
    cost = result.cost([x.shape[1] for x in matrices])
    assert cost <= 0.30
    # the cost counts exactly the items the oracle was asked for (each model's largest n per task)
    largest = {}
    for model, task, n in asked:
        largest[model, task] = max(n, largest.get((model, task), 0))
    assert sum(largest.values()) == result.items.sum()
    again, _ = _run(matrices, 3, seed=1)
    assert again.top == result.top and np.array_equal(again.items, result.items)  # deterministic given a seed


def test_a_budget_stops_the_race_and_full_budget_is_the_upper_bound(arena):
    _, matrices = arena
    sizes = [x.shape[1] for x in matrices]
    small, _ = _run(matrices, 3, seed=1, budget=0.05)
    assert small.cost(sizes) <= 0.05 and not small.settled


def test_separated_models_settle_early_and_identical_models_never_do():
    rng = np.random.default_rng(3)
    n = 400
    # four models far apart (success rates 0.9, 0.7, 0.3, 0.1 on two tasks): top 2 is clear after a few items
    apart = [np.array([rng.random(n) < p for p in (0.9, 0.7, 0.3, 0.1)], dtype=float) for _ in range(2)]
    result, _ = _run(apart, 2, seed=0)
    assert result.settled and set(result.top) == {0, 1} and result.cost([n, n]) < 0.25
    # four copies of one model: no item can separate them, so every item is spent and nothing settles
    same = [np.tile(rng.random(n) < 0.5, (4, 1)).astype(float) for _ in range(2)]
    tied, _ = _run(same, 2, seed=0)
    assert not tied.settled and tied.cost([n, n]) == 1.0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="0 < K"):
        race(lambda asked: [np.ones(n) for *_, n in asked], 3, [10], [True], k=3)
    with pytest.raises(ValueError, match="confidence"):
        race(lambda asked: [np.ones(n) for *_, n in asked], 3, [10], [True], k=1, confidence=0.4)


def test_adaptive_race_cli_on_imported_items(shared_data, tmp_path):
    from typer.testing import CliRunner

    from harness.cli import app

    runner = CliRunner()
    db = str(tmp_path / "h.duckdb")
    imported = runner.invoke(app, ["import", "items", str(shared_data / "eval-arena-per-example" / "mbpp.jsonl"),
                                   "--name", "arena", "--db", db])
    assert imported.exit_code == 0, imported.output
    raced = runner.invoke(app, ["adaptive", "race", "--source", "arena", "--top", "3", "--db", db, "-f", "json"])
    assert raced.exit_code == 0, raced.output
    result = json.loads(raced.stdout)
    rows = result["rows"]
    assert len(rows) == 59
    full_top = {r["competitor"] for r in sorted(rows, key=lambda r: -r["full_mwr"])[:3]}
    assert {r["competitor"] for r in rows if r["raced_top"]} == full_top
    assert sum(r["items"] for r in rows) < 0.30 * 59 * 378  # issue 20's goal: under 30% of a full evaluation
    assert any("equals the full-data top 3" in note for note in result["notes"])
    refused = runner.invoke(app, ["adaptive", "race", "--source", "arena", "--top", "59", "--db", db])
    assert refused.exit_code == 2 and "--top 59" in refused.output


def test_live_race_evaluates_through_the_store_within_budget_and_resumes(tiny_model, tmp_path):
    """`harness race` with the runner as its oracle (three tiny models, two built-in tasks): the cost stays within
    the budget, every race item is a stored answer, and the same race again computes nothing and says the same."""
    import os
    import subprocess
    import sys

    from tests.tiny_model import build_tiny_llama

    others = [build_tiny_llama(tmp_path / f"tiny{seed}", seed=seed) for seed in (1, 2)]
    env = os.environ | {"HARNESS_RESULTS": str(tmp_path / "results"), "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-m", "harness.cli", "race", "--models", ",".join(map(str, [tiny_model, *others])),
            "--tasks", "arith_add_2d,compare_yes_no", "--top", "1", "--budget", "0.3", "--db", str(tmp_path / "h.duckdb"),
            "--display", "none", "-f", "json"]
    first = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    assert first.returncode == 0, first.stderr
    raced = json.loads(first.stdout)
    total = int(raced["notes"][0].split(" of ")[2].split()[0])  # "(384 of 1800 model-items ..."
    used = sum(r["items"] for r in raced["rows"])
    assert used <= 0.3 * total and sum(r["in_top"] for r in raced["rows"]) == 1
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    assert again.returncode == 0, again.stderr
    repeated = json.loads(again.stdout)
    assert repeated["rows"] == raced["rows"]
    assert "; 0 requests computed" in repeated["notes"][0]

    # adaptive replay without --source reads the evaluated runs: here the race's first round (--limit 8, all three
    # models); the same replay on the (models x items) matrices read from the samples table gives the same rows
    import duckdb
    import pandas as pd
    from typer.testing import CliRunner

    from harness.cli import app
    from tournaments.adaptive import replay

    db = str(tmp_path / "h.duckdb")
    replayed = CliRunner().invoke(app, ["adaptive", "replay", "--limit", "8", "--budget", "0.25", "--folds", "3",
                                        "--repeats", "2", "--db", db, "-f", "json"])
    assert replayed.exit_code == 0, replayed.output
    rows = pd.DataFrame(json.loads(replayed.stdout)["rows"])
    with duckdb.connect(db, read_only=True) as con:
        samples = con.execute("""SELECT m.name AS model, t.name AS task, s.doc_id, s.value FROM samples s
                                 JOIN runs r USING (run_id) JOIN models m USING (model_id) JOIN tasks t USING (task_id)
                                 WHERE r.item_limit = 8 AND s.metric = t.primary_metric""").df()
    assert sorted(rows["task"].unique()) == ["arith_add_2d", "compare_yes_no"] and set(rows["models"]) == {3}
    for task, part in samples.groupby("task"):
        matrix = part.pivot(index="model", columns="doc_id", values="value").sort_index().to_numpy(float)
        expected = replay(matrix, 0.25, folds=3, split="random", seed=0, repeats=2, task=task)
        got = rows[rows["task"] == task].reset_index(drop=True)
        np.testing.assert_allclose(got["mae"], expected["mae"], rtol=1e-12)
    one = sorted(samples["model"].unique())[0]
    refused = CliRunner().invoke(app, ["adaptive", "replay", "--limit", "8", "--budget", "0.25", "--models",
                                       f"{one},nobody", "--db", db])
    assert refused.exit_code == 2 and "--models 'nobody'" in refused.output
