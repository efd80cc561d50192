"""`harness import` end to end on real data: leaderboards rank like their publishers rank them,
lm-eval output becomes runs with per-item samples, training curves land as checkpoints, and a
malformed file is refused with file:line:column while the store stays byte-identical."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.tables.checkpoints import final_checkpoints
from harness.ingest.parsers import read_long_leaderboard, read_wide_leaderboard
from harness.store import ModelRecord, Store
from harness.tables.scores import imported_table

runner = CliRunner()
IBM = Path("ibm-benchbench") / "benchmarks_old"
CODE_MODELS = ["claude-3-opus-20240229", "claude-3-haiku-20240307", "codegemma-7b", "phi-2", "octocoder", "openchat"]
STAMP = "2024-10-29T00-00-00.000000"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def query(db: Path, sql: str) -> pd.DataFrame:
    with Store.open(db, read_only=True) as store:
        return store.query(sql)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def code_outcomes(shared_data: Path, models: list[str]) -> pd.DataFrame:
    """Real per-problem pass@1 of `models` on HumanEval (164) and MBPP (378) from eval-arena."""
    frames = [pd.read_json(shared_data / "eval-arena-per-example" / f"{bench}.jsonl", lines=True)
              for bench in ("humaneval", "mbpp")]
    rows = pd.concat(frames)
    return rows[rows["model"].isin(models)].reset_index(drop=True)


def doc_id(example_id: str) -> int:
    """The dataset index lm-eval would log: 'HumanEval/12' -> 12, 'Mbpp/2' -> 2."""
    return int(example_id.rsplit("/", 1)[1])


def write_lm_eval_output(root: Path, outcomes: pd.DataFrame) -> None:
    """One lm-eval 0.4 `--output_path --log_samples` folder per model, as lm-eval lays it out."""
    for model, rows in outcomes.groupby("model"):
        folder = root / model
        folder.mkdir(parents=True)
        tasks = {task: part.reset_index(drop=True) for task, part in rows.groupby("benchmark_id")}
        results = {
            "results": {t: {"alias": t, "pass@1,create_test": float(p["pass1"].mean()),
                            "pass@1_stderr,create_test": float(p["pass1"].std(ddof=1) / np.sqrt(len(p)))}
                        for t, p in tasks.items()}
            | {"code": {"alias": "code", "pass@1,create_test": float(rows["pass1"].mean())}},
            "group_subtasks": {"code": sorted(tasks)} | {t: [] for t in tasks},
            "versions": {t: 1.0 for t in tasks},
            "n-shot": {t: 0 for t in tasks},
            "higher_is_better": {t: {"pass@1": True} for t in tasks},
            "n-samples": {t: {"original": len(p), "effective": len(p)} for t, p in tasks.items()},
            "config": {"model": "hf", "model_args": f"pretrained=org/{model}"},
            "lm_eval_version": "0.4.13",
            "model_name": model,
        }
        (folder / f"results_{STAMP}.json").write_text(json.dumps(results))
        for task, part in tasks.items():
            lines = [json.dumps({"doc_id": doc_id(r.example_id), "doc": {"id": r.example_id}, "filter": "create_test",
                                 "metrics": ["pass@1"], "pass@1": float(r.pass1)}) for r in part.itertuples()]
            (folder / f"samples_{task}_{STAMP}.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture()
def db(tmp_path) -> Path:
    return tmp_path / "h.duckdb"


# ------------------------------------------------------------------------------- leaderboards
def test_wide_leaderboard_imports_and_ranks_like_its_publisher(shared_data, db):
    code, out, err = invoke("import", "csv", shared_data / IBM / "helm_lite_240829.csv", "--wide",
                            "--name", "helm", "--db", db)
    assert code == 0, err
    assert "72 competitors x 10 benchmarks" in out and "'helm_lite' kept apart" in out
    counts = query(db, "SELECT is_aggregate, count(*) AS n FROM external_scores GROUP BY ALL ORDER BY 1")
    assert counts["n"].tolist() == [72 * 10 - 1, 72]  # one '-' cell (Phi-3 7B on GSM8K) is not stored
    code, out, _ = invoke("query", "SELECT value FROM external_scores WHERE is_aggregate AND "
                          "competitor = 'GPT-4o (2024-05-13)'", "--db", db, "--csv")
    assert code == 0 and out.split() == ["value", "0.963"]
    # ranked like an evaluated leaderboard: HELM's mean win rate, recomputed from the imported
    # scenarios, beside the published one (rounded to 3 decimals, hence the tolerance)
    code, out, err = invoke("rank", "--source", "helm", "--method", "mwr", "--format", "json", "--db", db)
    assert code == 0, err
    rows = pd.DataFrame(json.loads(out)["rows"])
    expected = read_wide_leaderboard(shared_data / IBM / "helm_lite_240829.csv")
    assert len(rows) == 72 and "helm_lite" not in rows.columns and set(expected.benchmarks) <= set(rows.columns)
    np.testing.assert_allclose(rows["mwr"], rows["published"], atol=0.005)
    assert rows["competitor"].iloc[0] == "GPT-4o (2024-05-13)"
    # importing again under the same name replaces, never duplicates
    assert invoke("import", "csv", shared_data / IBM / "helm_lite_240829.csv", "--wide", "--name", "helm",
                  "--db", db)[0] == 0
    assert query(db, "SELECT count(*) AS n FROM external_scores")["n"].item() == 791


def test_long_leaderboard_with_directions(shared_data, db):
    code, _, err = invoke("import", "csv", shared_data / IBM / "livebench_240701.csv", "--long", "--lower-is-better",
                          "language_average,mathematics_average", "--name", "livebench", "--db", db)
    assert code == 0, err
    directions = query(db, "SELECT DISTINCT benchmark, higher_is_better FROM external_scores "
                           "WHERE NOT is_aggregate ORDER BY 1")
    assert dict(zip(directions["benchmark"], directions["higher_is_better"])) == {
        "coding_average": True, "data_analysis_average": True, "if_average": True, "language_average": False,
        "mathematics_average": False, "reasoning_average": True}
    code, out, err = invoke("rank", "--source", "livebench", "--method", "mean", "--format", "json", "--db", db)
    assert code == 0, err
    rows = pd.DataFrame(json.loads(out)["rows"]).set_index("competitor")
    assert rows.shape[0] == 52 and "livebench_average" not in rows.columns
    # the published LiveBench average is the plain mean of its six categories (to its 2 decimals)
    categories = [c for c in rows.columns if c.rstrip(" ↓").endswith("_average")]
    assert len(categories) == 6 and {"language_average ↓", "mathematics_average ↓"} <= set(categories)
    np.testing.assert_allclose(rows[categories].mean(axis=1), rows["published"], atol=0.01)


def test_the_ranked_table_is_built_from_the_stored_records(shared_data, db):
    """Import stores records; the table `rank --source` ranks holds exactly those cells and directions."""
    for name, file, layout, read in [("helm", "helm_lite_240829.csv", "--wide", read_wide_leaderboard),
                                     ("livebench", "livebench_240701.csv", "--long", read_long_leaderboard)]:
        board = read(shared_data / IBM / file, lower_is_better=["language_average"] if name == "livebench" else [])
        options = ["--lower-is-better", "language_average"] if name == "livebench" else []
        assert invoke("import", "csv", shared_data / IBM / file, layout, *options, "--name", name, "--db", db)[0] == 0
        with Store.open(db, read_only=True) as store:
            table, published = imported_table(store, name)
        rows = board.rows.to_pandas()
        cells, total = rows[~rows["is_aggregate"]], rows[rows["is_aggregate"]]
        assert set(table.competitors) == set(board.competitors) and set(table.benchmarks) == set(board.benchmarks)
        frame = table.to_frame().rename_axis("competitor").reset_index()
        stored = frame.melt(id_vars="competitor", var_name="benchmark").dropna()
        key = ["competitor", "benchmark"]
        pd.testing.assert_frame_equal(stored.sort_values(key, ignore_index=True),
                                      cells[key + ["value"]].sort_values(key, ignore_index=True))
        assert dict(zip(table.benchmarks, table.higher_is_better.tolist())) == dict(
            zip(cells["benchmark"], cells["higher_is_better"]))
        assert published.to_dict() == dict(zip(total["competitor"], total["value"]))


# ----------------------------------------------------------------------------- lm-eval output
def test_lm_eval_output_becomes_runs_with_items(shared_data, tmp_path, db):
    outcomes = code_outcomes(shared_data, CODE_MODELS)
    write_lm_eval_output(tmp_path / "out", outcomes)
    code, out, err = invoke("import", "lm-eval", tmp_path / "out", "--db", db)
    assert code == 0, err
    assert "12 runs (2 tasks" in out and "skipped group tasks code" in out
    models = query(db, "SELECT name, kind FROM models ORDER BY name")
    assert models["name"].tolist() == sorted(CODE_MODELS) and set(models["kind"]) == {"external"}
    board = query(db, "SELECT model, task, metric, value, n FROM leaderboard ORDER BY model, task")
    expected = outcomes.groupby(["model", "benchmark_id"])["pass1"].agg(["mean", "size"])
    assert len(board) == 12 and set(board["metric"]) == {"pass@1,create_test"}
    np.testing.assert_allclose(board["value"], expected["mean"].to_numpy())
    assert board["n"].tolist() == expected["size"].tolist()
    items = query(db, "SELECT count(*) AS n, sum(value) AS passed FROM samples")
    assert items["n"].item() == len(outcomes) == 6 * (164 + 378)
    assert items["passed"].item() == pytest.approx(outcomes["pass1"].sum())
    # the evaluated-runs leaderboard ranks the imports
    code, out, err = invoke("rank", "--method", "mean", "--format", "json", "--db", db)
    assert code == 0, err
    top = json.loads(out)["rows"][0]
    assert top["competitor"] == expected["mean"].groupby(level=0).mean().idxmax() == "claude-3-opus-20240229"
    # a second import of the same output replaces the runs rather than adding to them
    before = query(db, "SELECT (SELECT count(*) FROM runs) AS r, (SELECT count(*) FROM samples) AS s")
    assert invoke("import", "lm-eval", tmp_path / "out", "--db", db)[0] == 0
    after = query(db, "SELECT (SELECT count(*) FROM runs) AS r, (SELECT count(*) FROM samples) AS s")
    assert before.equals(after)


def test_lm_eval_name_needs_one_model(shared_data, tmp_path, db):
    write_lm_eval_output(tmp_path / "two", code_outcomes(shared_data, CODE_MODELS[:2]))
    code, _, err = invoke("import", "lm-eval", tmp_path / "two", "--name", "mine", "--db", db)
    assert code == 2 and "--name needs one model, found 2" in err and not db.exists()
    write_lm_eval_output(tmp_path / "one", code_outcomes(shared_data, CODE_MODELS[2:3]))
    assert invoke("import", "lm-eval", tmp_path / "one", "--name", "mine", "--db", db)[0] == 0
    assert query(db, "SELECT name FROM models")["name"].tolist() == ["mine"]
    # a name an evaluated model has: the import lives in its own namespace beside it (issue 15), and is told apart
    # in rankings only where the names meet
    with Store.open(db) as store:
        store.register_model(ModelRecord("b" * 16, "ours", "base", "test", "b" * 64, 135))
    assert invoke("import", "lm-eval", tmp_path / "one", "--name", "ours", "--db", db)[0] == 0
    assert query(db, "SELECT namespace, name FROM models ORDER BY ALL").values.tolist() == [
        ["", "ours"], ["lm-eval", "mine"], ["lm-eval", "ours"]]
    assert set(query(db, "SELECT DISTINCT model FROM leaderboard")["model"]) == {"mine", "ours [lm-eval]"}


# --------------------------------------------------------------------------------- checkpoints
def test_checkpoint_import_keeps_every_step(shared_data, tmp_path, db):
    ladder = tmp_path / "ladder"
    ladder.mkdir()
    for run in ("190M-5xC", "370M-5xC"):
        shutil.copy(shared_data / "olmo-ladder-peteish-moreeval" / f"{run}.csv", ladder)
    code, out, err = invoke("import", "checkpoints", ladder, "--layout", "olmo", "--name", "ladder", "--db", db)
    assert code == 0, err
    logs = [pd.read_csv(ladder / f"{run}.csv") for run in ("190M-5xC", "370M-5xC")]
    scored = [c for c in logs[0].columns if c.startswith("eval/")]  # every eval column is a benchmark
    observed = sum(int(log[scored].notna().sum().sum()) for log in logs)
    assert f"2 runs x {len(scored)} benchmarks, {observed} checkpoint scores" in out
    raw = logs[0]
    column = "eval/downstream_bpb/hellaswag_val_rc_5shot_bpb"
    stored = query(db, "SELECT replicate, value, higher_is_better, snapshot FROM external_scores "
                       "WHERE competitor = '190M-5xC' AND benchmark = 'hellaswag_val_rc_5shot:bpb' "
                       "ORDER BY try_cast(replicate AS BIGINT)")
    kept = raw[["_step", column]].dropna()
    assert stored["replicate"].astype(int).tolist() == kept["_step"].tolist()
    np.testing.assert_allclose(stored["value"], kept[column])
    assert not stored["higher_is_better"].any() and set(stored["snapshot"]) == {"checkpoints"}
    with Store.open(db, read_only=True) as store:
        final = final_checkpoints(store, "ladder")  # each run where it ended, for signal and ranking
    assert final.to_frame().loc["190M-5xC", "hellaswag_val_rc_5shot:bpb"] == kept[column].iloc[-1]
    code, out, err = invoke("rank", "--source", "ladder", "--method", "mwr", "--format", "json", "--db", db)
    assert code == 0, err
    row = next(r for r in json.loads(out)["rows"] if r["competitor"] == "190M-5xC")
    assert row["hellaswag_val_rc_5shot:bpb ↓"] == kept[column].iloc[-1]  # ranked where it ended


# ----------------------------------------------------------------------------- malformed input
def broken_copy(src: Path, dst: Path, line: int, column: str, cell: str) -> Path:
    """`src` copied with the cell of `column` on `line` (1-based, header = 1) replaced by `cell`."""
    lines = src.read_text().splitlines()
    header, fields = lines[0].split(","), lines[line - 1].split(",")
    fields[header.index(column)] = cell
    lines[line - 1] = ",".join(fields)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(lines) + "\n")
    return dst


def test_malformed_files_say_where_and_store_nothing(shared_data, tmp_path, db):
    helm = shared_data / IBM / "helm_lite_240829.csv"
    assert invoke("import", "csv", helm, "--wide", "--name", "helm", "--db", db)[0] == 0
    ladder_log = shared_data / "olmo-ladder-peteish-moreeval" / "190M-5xC.csv"
    bad_column = "eval/downstream/hellaswag_val_rc_5shot_len_norm"
    bad_log = broken_copy(ladder_log, tmp_path / "ladder" / "190M-5xC.csv", 5, bad_column, "oops")
    pythia = tmp_path / "pythia" / "pythia-160m" / "five-shot"
    shutil.copytree(shared_data / "pythia-v1-evals" / "pythia-160m" / "five-shot", pythia)
    (pythia / "160m-5shot_step13000.json").write_text('{"results": {"arc_easy": {"acc": 0.4,}}}')
    strings = tmp_path / "strings" / "m1"  # lm-eval's layout with every metric a string (was a KeyError)
    strings.mkdir(parents=True)
    (strings / "results_2024.json").write_text(json.dumps({
        "results": {"arc_easy": {"alias": "arc_easy", "acc,none": "0.5", "acc_stderr,none": "N/A"}},
        "versions": {"arc_easy": 1}, "model_name": "m1"}))
    cases = [
        (["csv", shared_data / IBM / "opencompass_academic_240829.csv", "--wide"],
         "opencompass_academic_240829.csv:21: expected 10 fields, got 5"),
        (["csv", shared_data / "open-llm-leaderboard-v1-snapshots" / "20231031.csv", "--wide"],
         "20231031.csv:2: column 'URL': non-numeric value 'https://"),
        (["csv", shared_data / IBM / "hf_open_llm_v1_240829_frozen.csv", "--wide"],
         "frozen.csv:113: duplicate competitor 'gagan3012/MetaModel_moe' (first at line 100)"),
        (["csv", helm, "--wide", "--lower-is-better", "HELM_Lite_Nope"],
         "helm_lite_240829.csv:1: unknown column 'HELM_Lite_Nope' given as an option"),
        (["csv", helm, "--long"], "helm_lite_240829.csv:1: no benchmark column"),
        (["checkpoints", bad_log.parent, "--layout", "olmo"],
         f"190M-5xC.csv:5: column '{bad_column}': non-numeric value 'oops'"),
        (["checkpoints", tmp_path / "pythia", "--layout", "lm-eval"],
         "160m-5shot_step13000.json:1: column 38: invalid JSON (Expecting property name"),
        (["lm-eval", tmp_path / "strings"], "strings: no task reports a numeric metric"),
    ]
    before = digest(db)
    for args, message in cases:
        code, out, err = invoke("import", *args, "--name", "helm", "--db", db)
        assert code == 2, (args, out)
        assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err
        assert digest(db) == before, args
    assert query(db, "SELECT count(*) AS n FROM external_scores")["n"].item() == 791
