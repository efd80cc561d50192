"""The Python API (`import harness`): evaluate, read back and rank without the CLI, on the real tiny model."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import harness
from harness.common.errors import HarnessError

TASKS = ["arith_add_2d", "compare_numbers"]


@pytest.fixture(scope="module")
def evaluated(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    mp = pytest.MonkeyPatch()
    mp.setenv("HARNESS_RESULTS", str(root / "results"))
    db = root / "h.duckdb"
    results = harness.evaluate([str(tiny_model)], TASKS, db, limit=12, batch_size=8)
    yield db, results
    mp.undo()


def test_evaluate_returns_one_result_per_task_and_stores_what_it_returns(evaluated):
    db, results = evaluated
    assert [(r.task, r.status) for r in results] == [(t, "done") for t in TASKS]
    with harness.open_store(db) as store:
        # acc recomputed from the stored per-item values, not read from the scores table
        per_item = store.query("""SELECT t.name AS task, avg(s.value) AS acc, count(*) AS n FROM samples s
                                  JOIN runs r USING (run_id) JOIN tasks t USING (task_id)
                                  WHERE s.metric = 'acc' GROUP BY t.name""").set_index("task")
    for r in results:
        assert r.metric == "acc" and per_item.loc[r.task, "n"] == 12
        assert r.value == pytest.approx(per_item.loc[r.task, "acc"], abs=1e-12)


def test_a_second_evaluate_skips_and_reports_the_stored_value(evaluated, tiny_model):
    db, first = evaluated
    again = harness.evaluate([str(tiny_model)], TASKS, db, limit=12, batch_size=8)
    assert [r.status for r in again] == ["skipped", "skipped"]
    assert [r.value for r in again] == [r.value for r in first]


def test_scores_and_rank_read_the_store(evaluated):
    db, results = evaluated
    table = harness.scores(db)
    assert isinstance(table, harness.ScoreTable) and list(table.benchmarks) == TASKS
    assert np.allclose(table.cell_means()[0], [r.value for r in results])
    ranking = harness.rank(method="mean", db=db)
    assert isinstance(ranking, harness.Ranking)
    assert ranking.scores[0] == pytest.approx(np.mean([r.value for r in results]))  # the mean over the two tasks


def test_rank_takes_a_csv_file_or_a_table(shared_data, tmp_path):
    small = tmp_path / "board.csv"
    small.write_text("model,a,b\nx,1,3\ny,2,2\nz,0,1\n")
    assert harness.rank(small, "mean").scores.tolist() == [2.0, 2.0, 0.5]  # row means, by hand
    assert harness.rank(str(small), "mean").ranks.tolist() == [1, 1, 3]
    csv = shared_data / "ibm-benchbench" / "benchmarks_old" / "hf_open_llm_v2_240829.csv"
    table = harness.csv_scores(csv, on_duplicate="first")[0]  # the file lists one model twice
    ranking = harness.rank(table, "mean")
    assert len(ranking.competitors) == table.n_competitors > 50
    assert np.allclose(ranking.scores, np.nanmean(table.cell_means(), axis=1))


def test_bad_calls_fail_in_one_line(tmp_path):
    with pytest.raises(HarnessError, match="not both"):
        harness.evaluate(["smollm2-135m"], ["core"], tmp_path / "h.duckdb",
                         settings=harness.EvalSettings(), limit=3)
    with pytest.raises(ValueError, match="did you mean 'mwr'"):
        harness.rank(harness.ScoreTable.from_long(
            __import__("pandas").DataFrame({"c": ["a", "b"], "b": ["x", "x"], "v": [1.0, 2.0]}),
            competitor="c", benchmark="b", value="v"), "mrw")
    assert not (tmp_path / "h.duckdb").exists()


def test_import_harness_is_cheap():
    """The CLI and Ray workers import harness; the API must not pull in torch or lm-eval until used."""
    code = "import sys, harness; harness.__version__; print(sorted(m for m in ('torch', 'lm_eval', 'duckdb') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
