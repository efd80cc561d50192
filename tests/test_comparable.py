"""Comparable or refused (issue 15): rank, compare, snr and report compare models only on one task version, one run
setting and the same items; a task's direction comes from its stored task record, never from the last row read.

Every store here is real DuckDB, written through the store's own API; every expected score is a mean over items
counted by hand in the comment beside it.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from harness.api import scores
from harness.cli import app
from harness.common.errors import HarnessError
from harness.store import ModelRecord, Store, TaskRecord

runner = CliRunner()


def model(store: Store, name: str, parent: str | None = None) -> None:
    store.register_model(ModelRecord(f"id-{name}", name, "variant" if parent else "base", "test", f"fp-{name}" * 8,
                                     10, parents=(f"id-{parent}",) if parent else ()))


def task(store: Store, name: str, config_hash: str = "h1" * 8, metric: str = "acc", higher: bool = True) -> str:
    task_id = f"{name}@{config_hash[:12]}"
    store.register_task(TaskRecord(task_id, name, "1", "builtin", config_hash, metric, higher, 40, {}))
    return task_id


def run(store: Store, run_id: str, name: str, task_id: str, values: dict[int, float], metric: str = "acc",
        item_limit: int | None = None, dtype: str = "float32", samples: bool = True, n: int | None = None) -> None:
    """A finished run whose score is the mean of `values` (doc_id -> value), as scoring.score_rows stores it."""
    store.start_run(run_id, f"id-{name}", task_id, "hf", {"dtype": dtype, "device": "cpu"}, item_limit, {})
    docs = sorted(values) if samples else []
    sample_table = pa.table({"run_id": [run_id] * len(docs), "doc_id": pa.array(docs, pa.int32()),
                             "metric": [metric] * len(docs), "value": [float(values[d]) for d in docs]})
    score = sum(values.values()) / len(values)
    score_table = pa.table({"run_id": [run_id], "metric": [metric], "value": [score], "stderr": [0.01],
                            "n": pa.array([n or len(values)], pa.int32())})
    store.finish_run(run_id, sample_table, score_table, {"requests": 1, "cached": 0, "computed": 1})


def ones(docs, where) -> dict[int, float]:
    """1.0 on the docs where `where(doc)` holds, else 0.0."""
    return {d: 1.0 if where(d) else 0.0 for d in docs}


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def one_line_error(args, *culprits: str) -> str:
    code, _, err = invoke(*args)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1, err
    for culprit in culprits:
        assert culprit in lines[0], lines[0]
    return lines[0]


def ranked(*args) -> dict:
    code, out, err = invoke("rank", *args, "--method", "mean", "--format", "json")
    assert code == 0, err
    return json.loads(out)


# ------------------------------------------------------------------------ (a) the same items
@pytest.fixture()
def parent_and_variant(tmp_path):
    """P on items 0..39, its variant V on --limit 20 (items 0..19) of the same task version and settings."""
    db = tmp_path / "h.duckdb"
    with Store.open(db) as store:
        model(store, "P")
        model(store, "V", parent="P")
        t = task(store, "t")
        # P: 1 on items 0..9 and 20..39, 0 on 10..19 -> 30/40 = 0.75 stored; 10/20 = 0.5 over items 0..19
        run(store, "P-full", "P", t, ones(range(40), lambda d: d < 10 or d >= 20))
        # V: 1 on items 0..14, 0 on 15..19 -> 15/20 = 0.75
        run(store, "V-20", "V", t, ones(range(20), lambda d: d < 15), item_limit=20)
    return db


def test_parent_and_limited_variant_are_compared_on_the_same_items(parent_and_variant):
    db = parent_and_variant
    doc = ranked("--db", db)
    rows = {row["competitor"]: row for row in doc["rows"]}
    assert rows["P"]["t"] == pytest.approx(10 / 20)  # P's mean over items 0..19, not its stored 30/40
    assert rows["V"]["t"] == pytest.approx(15 / 20)
    assert [row["competitor"] for row in doc["rows"]] == ["V", "P"]
    assert "task t: scored on the 20 of 40 items shared by all 2 models" in doc["notes"]
    table = scores(db)  # the Python API compares them the same way
    assert table.to_frame().loc[["P", "V"], "t"].tolist() == pytest.approx([0.5, 0.75])
    items = scores(db, items=True)
    assert items.values.shape == (2, 1, 20)  # one replicate per shared item, none beyond item 19
    # compare pairs the 20 shared items: P - V = 0.5 - 0.75
    code, out, err = invoke("compare", "P", "V", "--db", db, "--format", "json", "--n-boot", "200")
    assert code == 0, err
    assert json.loads(out)["rows"][0]["diff"] == pytest.approx(-0.25)


def test_allow_mixed_keeps_each_models_own_score(parent_and_variant):
    doc = ranked("--db", parent_and_variant, "--allow-mixed")
    rows = {row["competitor"]: row for row in doc["rows"]}
    assert rows["P"]["t"] == pytest.approx(30 / 40) and rows["V"]["t"] == pytest.approx(15 / 20)
    assert any("each model's own score (--allow-mixed)" in note for note in doc["notes"])
    assert scores(parent_and_variant, allow_mixed=True).to_frame().loc["P", "t"] == pytest.approx(0.75)


def test_corpus_metric_on_other_items_is_refused(tmp_path):
    """Bits per byte is summed log-likelihood over summed bytes: the mean of per-document values is another number."""
    db = tmp_path / "h.duckdb"
    with Store.open(db) as store:
        model(store, "P")
        model(store, "V", parent="P")
        t = task(store, "text", metric="bits_per_byte", higher=False)
        run(store, "P-full", "P", t, {d: 1.0 for d in range(40)}, metric="bits_per_byte")
        run(store, "V-20", "V", t, {d: 2.0 for d in range(20)}, metric="bits_per_byte", item_limit=20)
    one_line_error(["rank", "--db", db], "task text", "bits_per_byte is not a mean over items", "--allow-mixed")
    assert ranked("--db", db, "--allow-mixed")["rows"][0]["competitor"] == "P"  # lower is better: 1.0 beats 2.0


def test_runs_without_items_need_the_same_item_count(tmp_path):
    """Imported runs without per-item samples keep their stored score, but only where both counted the same items."""
    db = tmp_path / "h.duckdb"
    with Store.open(db) as store:
        for name in "AB":
            model(store, name)
        t, u = task(store, "t"), task(store, "u")
        run(store, "A-t", "A", t, ones(range(40), lambda d: d < 30), samples=False)  # 30/40 = 0.75
        run(store, "B-t", "B", t, ones(range(20), lambda d: d < 10), samples=False)  # 10/20 = 0.5
        run(store, "A-u", "A", u, ones(range(20), lambda d: d < 10), samples=False)  # 10/20 = 0.5
        run(store, "B-u", "B", u, ones(range(20), lambda d: d < 4), samples=False)  # 4/20 = 0.2
    one_line_error(["rank", "--db", db], "task t", "(A 40, B 20)", "no per-item values", "--allow-mixed")
    rows = {row["competitor"]: row["u"] for row in ranked("--db", db, "--tasks", "u")["rows"]}
    assert rows == pytest.approx({"A": 0.5, "B": 0.2})  # the same count of items: stored scores kept


# ------------------------------------------------------------------------ (b) one task version and settings
@pytest.fixture()
def two_versions(tmp_path):
    """A and B on version 'aaaaaa…' of task t, C on version 'bbbbbb…'; all on items 0..19."""
    db = tmp_path / "h.duckdb"
    with Store.open(db) as store:
        for name in "ABC":
            model(store, name)
        old, new = task(store, "t", "aaaaaa" * 4), task(store, "t", "bbbbbb" * 4)
        run(store, "A-t", "A", old, ones(range(20), lambda d: d < 10))  # 10/20 = 0.5
        run(store, "B-t", "B", old, ones(range(20), lambda d: d < 5))  # 5/20 = 0.25
        run(store, "C-t", "C", new, ones(range(20), lambda d: d < 20))  # 20/20 = 1.0
    return db


def test_two_task_versions_are_refused_in_one_line(two_versions):
    db = two_versions
    message = ("task t: model C was evaluated with another task version (config bbbbbb) than A, B (aaaaaa); "
               "evaluate them alike, or pass --allow-mixed")
    assert one_line_error(["rank", "--db", db], message) == f"error: {message}"
    # one model per version: the later run's version leads (C ran last), and the message names both
    one_line_error(["compare", "A", "C", "--db", db], "task t: model A was evaluated with another task version "
                   "(config aaaaaa) than C (bbbbbb)")
    one_line_error(["snr", "--db", db], "task t", "model C", "another task version")
    one_line_error(["report", "--db", db, "--out", db.parent / "r.html"], "task t", "another task version")
    with pytest.raises(HarnessError, match="another task version"):
        scores(db)
    assert not (db.parent / "r.html").exists()


def test_allow_mixed_accepts_two_task_versions(two_versions):
    doc = ranked("--db", two_versions, "--allow-mixed")
    assert {row["competitor"]: row["t"] for row in doc["rows"]} == pytest.approx({"A": 0.5, "B": 0.25, "C": 1.0})
    assert "task t: models ran other task versions or run settings; each model's own score (--allow-mixed)" \
        in doc["notes"]
    code, out, err = invoke("compare", "A", "C", "--db", two_versions, "--allow-mixed", "--format", "json",
                            "--n-boot", "200")
    assert code == 0, err
    assert json.loads(out)["rows"][0]["diff"] == pytest.approx(0.5 - 1.0)
    # Models of one version alone are comparable without the flag.
    assert [row["competitor"] for row in ranked("--db", two_versions, "--models", "A,B")["rows"]] == ["A", "B"]


def test_other_run_settings_are_refused(tmp_path):
    db = tmp_path / "h.duckdb"
    with Store.open(db) as store:
        for name in "AB":
            model(store, name)
        t = task(store, "t")
        run(store, "A-t", "A", t, ones(range(20), lambda d: d < 10))
        run(store, "B-t", "B", t, ones(range(20), lambda d: d < 10), dtype="bfloat16")
    one_line_error(["rank", "--db", db], "task t: model", "evaluated with other run settings (settings ",
                   "--allow-mixed")
    assert len(ranked("--db", db, "--allow-mixed")["rows"]) == 2


# ------------------------------------------------------------------------ (c) rank --limit N
def test_rank_limit_picks_the_limited_runs(tmp_path):
    db = tmp_path / "h.duckdb"
    with Store.open(db) as store:
        for name in "AB":
            model(store, name)
        t = task(store, "t")
        a = ones(range(40), lambda d: d >= 20 or d % 2 == 0)  # full: (20 + 10)/40 = 0.75; items 0..19: 10/20 = 0.5
        b = ones(range(40), lambda d: d < 20 and d % 4 == 0)  # full: 5/40 = 0.125; items 0..19: 5/20 = 0.25
        for name, values in (("A", a), ("B", b)):
            run(store, f"{name}-full", name, t, values)
            run(store, f"{name}-20", name, t, {d: values[d] for d in range(20)}, item_limit=20)
    by_default = {row["competitor"]: row["t"] for row in ranked("--db", db)["rows"]}
    assert by_default == pytest.approx({"A": 0.75, "B": 0.125})  # each model's run covering the most items
    limited = {row["competitor"]: row["t"] for row in ranked("--db", db, "--limit", 20)["rows"]}
    assert limited == pytest.approx({"A": 0.5, "B": 0.25})
    assert scores(db, limit=20).to_frame()["t"].tolist() == pytest.approx([0.5, 0.25])
    one_line_error(["rank", "--db", db, "--limit", 5], "no finished runs made with --limit 5")


# ------------------------------------------------------------------------ (d) direction from the task record
def lm_eval_folder(root, name: str, task_name: str, higher: bool, values: dict[int, float], stamp: str) -> None:
    """One lm-eval 0.4 results file with its samples, as `lm_eval --log_samples` writes them."""
    root.mkdir(parents=True, exist_ok=True)
    results = {
        "results": {task_name: {"alias": task_name, "acc,none": sum(values.values()) / len(values),
                                "acc_stderr,none": 0.1}},
        "higher_is_better": {task_name: {"acc": higher}},
        "versions": {task_name: 1.0}, "n-shot": {task_name: 0},
        "n-samples": {task_name: {"original": len(values), "effective": len(values)}},
        "config": {"model": "hf", "model_args": f"pretrained=org/{name}"}, "lm_eval_version": "0.4.13",
        "model_name": name,
    }
    (root / f"results_{stamp}.json").write_text(json.dumps(results))
    lines = [json.dumps({"doc_id": d, "filter": "none", "metrics": ["acc"], "acc": v}) for d, v in values.items()]
    (root / f"samples_{task_name}_{stamp}.jsonl").write_text("\n".join(lines) + "\n")


def test_an_import_saying_lower_is_better_does_not_flip_the_task(tmp_path):
    db = tmp_path / "h.duckdb"
    with Store.open(db) as store:
        for name in "AB":
            model(store, name)
        t = task(store, "arith")
        run(store, "A-t", "A", t, ones(range(20), lambda d: d < 15))  # 15/20 = 0.75
        run(store, "B-t", "B", t, ones(range(20), lambda d: d < 5))  # 5/20 = 0.25
    lm_eval_folder(tmp_path / "out", "Z", "arith", False, ones(range(20), lambda d: d < 10), "2024-01-01T00-00-00")
    code, _, err = invoke("import", "lm-eval", tmp_path / "out", "--db", db)
    assert code == 0, err
    for extra in ([], ["--allow-mixed"]):
        line = one_line_error(["rank", "--db", db, *extra], "task arith", "disagree on direction",
                              "builtin record arith@h1h1h1h1h1h1 (higher is better; models A, B)",
                              "import record arith@", "(lower is better; model Z)")
        assert line.index("builtin") < line.index("import")
    # The stored models keep their task's direction: higher is better, so A (0.75) ranks above B (0.25).
    doc = ranked("--db", db, "--models", "A,B")
    assert [row["competitor"] for row in doc["rows"]] == ["A", "B"] and "arith" in doc["rows"][0]
    assert scores(db, models=["A", "B"]).higher_is_better.tolist() == [True]


def test_one_import_with_two_directions_for_one_task_is_refused(tmp_path):
    values = ones(range(10), lambda d: d < 5)
    lm_eval_folder(tmp_path / "out" / "one", "X", "arith", True, values, "2024-01-01T00-00-00")
    lm_eval_folder(tmp_path / "out" / "two", "Y", "arith", False, values, "2024-01-02T00-00-00")
    db = tmp_path / "h.duckdb"
    one_line_error(["import", "lm-eval", tmp_path / "out", "--db", db], "task 'arith' says lower is better",
                   "one/results_2024-01-01T00-00-00.json says higher is better")


# ------------------------------------------------------------------------ (e) items that do not meet
def test_an_empty_item_intersection_is_refused_naming_the_models(tmp_path):
    db = tmp_path / "h.duckdb"
    with Store.open(db) as store:
        for name in "ABC":
            model(store, name)
        t = task(store, "t")
        run(store, "A-t", "A", t, ones(range(0, 20), lambda d: d < 10))  # items 0..19
        run(store, "B-t", "B", t, ones(range(20, 40), lambda d: d < 30))  # items 20..39: none shared with A
    message = ("task t: models A, B share no items (items: A 20, B 20; at least half of the smallest run's are "
               "needed); evaluate them on the same items, or pass --allow-mixed")
    assert one_line_error(["rank", "--db", db], message) == f"error: {message}"
    one_line_error(["compare", "A", "B", "--db", db], "task t: models A, B share no items")


def test_too_few_shared_items_are_refused(tmp_path):
    """MIN_SHARED: at least half of the smallest run's items. A on 0..19 and B on 15..34 share 5 of 20 (refused);
    with C on 10..29, A and C share 10 of 20, exactly half (accepted)."""
    db = tmp_path / "h.duckdb"
    with Store.open(db) as store:
        for name in "ABC":
            model(store, name)
        t = task(store, "t")
        run(store, "A-t", "A", t, {d: 1.0 for d in range(0, 20)})
        run(store, "B-t", "B", t, {d: 0.0 for d in range(15, 35)})
        run(store, "C-t", "C", t, ones(range(10, 30), lambda d: d < 15))  # over 10..19: 5/10 = 0.5
    one_line_error(["rank", "--db", db, "--models", "A,B"], "task t: models A, B share 5 items")
    rows = {row["competitor"]: row["t"] for row in ranked("--db", db, "--models", "A,C")["rows"]}
    assert rows == pytest.approx({"A": 1.0, "C": 0.5})
