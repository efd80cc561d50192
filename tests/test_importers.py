"""Importers: real leaderboard files parse, their aggregates are set aside, malformed files say where."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.ingest.leaderboards import Leaderboard
from harness.ingest.parsers import MalformedFileError, read_lm_eval_dir, read_long_leaderboard, read_wide_leaderboard
from tournaments.stats import compare_paired

IBM = Path("ibm-benchbench") / "benchmarks_old"


def scores(board: Leaderboard) -> pd.DataFrame:
    """The stored benchmark records as competitors x benchmarks in file order, NaN where no row is stored."""
    rows = board.rows.to_pandas()
    cells = rows[~rows["is_aggregate"]].pivot(index="competitor", columns="benchmark", values="value")
    return cells.reindex(index=list(board.competitors), columns=list(board.benchmarks))


def published(board: Leaderboard) -> pd.Series:
    """The stored published-aggregate records, by competitor."""
    rows = board.rows.to_pandas()
    part = rows[rows["is_aggregate"]]
    assert set(part["benchmark"]) <= {board.aggregate}
    return pd.Series(part["value"].to_numpy(), index=part["competitor"].tolist(), name=board.aggregate)


# --------------------------------------------------------------------------- real files
def test_wide_ibm_file_sets_its_named_aggregate_aside(shared_data):
    board = read_wide_leaderboard(shared_data / IBM / "helm_lite_240829.csv")
    assert len(board.competitors) == 72 and len(board.benchmarks) == 10
    assert "helm_lite" not in board.benchmarks and board.aggregate == "helm_lite"
    assert published(board)["GPT-4o (2024-05-13)"] == pytest.approx(0.963)
    assert int(scores(board).isna().sum().sum()) == 1  # Phi-3 (7B) has no GSM8K ('-'), so no row
    assert set(board.rows.column("snapshot").to_pylist()) == {"helm_lite_240829.csv"}


def test_open_llm_v1_has_repeated_models(shared_data):
    path = shared_data / IBM / "hf_open_llm_v1_240829_frozen.csv"
    with pytest.raises(MalformedFileError, match=r"frozen\.csv:113: duplicate competitor 'gagan3012/MetaModel_moe' "
                                                 r"\(first at line 100\)"):
        read_wide_leaderboard(path)
    board = read_wide_leaderboard(path, on_duplicate="number")
    assert (len(board.competitors), len(board.benchmarks)) == (1804, 6)
    assert "gagan3012/MetaModel_moe#2" in board.competitors and board.aggregate == "hf_open_llm_v1"
    first = read_wide_leaderboard(path, on_duplicate="first")
    assert len(first.competitors) == 1804 - 48


def test_long_ibm_file_and_its_aggregate_scenario(shared_data):
    board = read_long_leaderboard(shared_data / IBM / "livebench_240701.csv")
    assert (len(board.competitors), len(board.benchmarks)) == (52, 6)
    assert board.aggregate == "livebench_average" and "livebench_average" not in board.benchmarks
    total = published(board)
    assert total["claude_3_5_sonnet_20240620"] == pytest.approx(61.16)
    # the mean of the six categories is the published LiveBench average (to its 2 decimals)
    means = scores(board).mean(axis=1)
    np.testing.assert_allclose(means[total.index], total, atol=0.01)


def test_generic_and_prefixed_aggregates_are_detected(shared_data):
    helm = read_wide_leaderboard(shared_data / "zhang-hardt-benchbench" / "raw" / "helm_accuracy.tsv",
                                 competitor_col="Model/adapter")
    assert helm.aggregate == "Mean win rate"
    agent = read_long_leaderboard(shared_data / IBM / "agentbench_240720.csv")
    assert agent.aggregate == "agentbench_overall"
    none = read_long_leaderboard(shared_data / IBM / "mmlu_pro_240610.csv")
    assert none.aggregate is None and none.benchmarks == ("mmlu_pro",)  # a one-score leaderboard keeps its score
    assert not any(none.rows.column("is_aggregate").to_pylist())
    given = read_wide_leaderboard(shared_data / IBM / "helm_lite_240829.csv", aggregate_col="HELM_Lite_WMT2014")
    assert given.aggregate == "HELM_Lite_WMT2014"


def test_real_ragged_file_names_the_line(shared_data):
    with pytest.raises(MalformedFileError, match=r"opencompass_academic_240829\.csv:21: expected 10 fields, got 5"):
        read_wide_leaderboard(shared_data / IBM / "opencompass_academic_240829.csv")


def test_snapshot_with_text_columns(shared_data):
    path = shared_data / "open-llm-leaderboard-v1-snapshots" / "20231031.csv"
    with pytest.raises(MalformedFileError, match=r"20231031\.csv:2: column 'URL': non-numeric value 'https://"):
        read_wide_leaderboard(path)
    board = read_wide_leaderboard(path, ignore_cols=["Parameters", "URL"], on_duplicate="number")
    assert board.aggregate == "Average" and len(board.benchmarks) == 4
    assert board.competitors[0] == "ValiantLabs/ShiningValiant"


# --------------------------------------------------------------------------- malformed files
def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_malformed_wide_files(tmp_path):
    bad_cell = write(tmp_path, "lb.csv", "model,arc,mmlu\na,1,2\nb,3,abc\n")
    with pytest.raises(ValueError, match=r"lb\.csv:3: column 'mmlu': non-numeric value 'abc'"):
        read_wide_leaderboard(bad_cell)
    ragged = write(tmp_path, "r.csv", "model,arc,mmlu\na,1,2,3\n")
    with pytest.raises(ValueError, match=r"r\.csv:2: expected 3 fields, got 4"):
        read_wide_leaderboard(ragged)
    good = write(tmp_path, "g.csv", "model,arc,mmlu\na,1,2\nb,3,-\n")
    with pytest.raises(ValueError, match=r"g\.csv:1: unknown column 'MMLU ' given as an option"):
        read_wide_leaderboard(good, lower_is_better=["MMLU "])
    with pytest.raises(ValueError, match="unknown column 'avg'"):
        read_wide_leaderboard(good, aggregate_col="avg")
    board = read_wide_leaderboard(good, lower_is_better=["mmlu"])
    assert board.aggregate is None and board.benchmarks == ("arc", "mmlu")
    assert board.rows.to_pylist() == [  # b's '-' on mmlu stores no row
        {"competitor": c, "benchmark": b, "value": v, "higher_is_better": b == "arc", "is_aggregate": False,
         "snapshot": "g.csv"} for c, b, v in [("a", "arc", 1.0), ("a", "mmlu", 2.0), ("b", "arc", 3.0)]]
    dupe = write(tmp_path, "d.csv", "model,x,y\na,1,2\nb,1,2\na,3,4\n")
    with pytest.raises(ValueError, match=r"d\.csv:4: duplicate competitor 'a' \(first at line 2\)"):
        read_wide_leaderboard(dupe)
    with pytest.raises(ValueError, match="column 'x' appears more than once"):
        read_wide_leaderboard(write(tmp_path, "h.csv", "model,x,x\na,1,2\n"))
    with pytest.raises(ValueError, match="empty file"):
        read_wide_leaderboard(write(tmp_path, "e.csv", ""))


def test_malformed_long_files(tmp_path):
    dupe = write(tmp_path, "l.csv", "model,scenario,score\na,x,1\na,y,2\na,x,3\n")
    with pytest.raises(ValueError, match=r"l\.csv:4: duplicate score for competitor 'a' on 'x' \(first at line 2\)"):
        read_long_leaderboard(dupe)
    with pytest.raises(ValueError, match=r"no value column"):
        read_long_leaderboard(write(tmp_path, "n.csv", "model,scenario,points\na,x,1\n"))
    with pytest.raises(ValueError, match=r"unknown benchmark 'z'"):
        read_long_leaderboard(write(tmp_path, "ok.csv", "model,scenario,score\na,x,1\n"), lower_is_better=["z"])
    with pytest.raises(ValueError, match=r"m\.csv:3: column 'score': non-numeric value 'high'"):
        read_long_leaderboard(write(tmp_path, "m.csv", "model,scenario,score\na,x,1\nb,x,high\n"))


# --------------------------------------------------------------------------- lm-eval folders
def lm_eval_run(root: Path, model: str, stamp: str, outcomes: dict[str, list[int]]) -> None:
    """Write one lm-eval 0.4 output folder the way `--output_path OUT --log_samples` lays it out."""
    folder = root / model.replace("/", "__")
    folder.mkdir(parents=True)
    results = {
        "results": {task: {"alias": task, "acc,none": float(np.mean(v)), "acc_stderr,none": 0.1,
                           "acc_norm,none": float(np.mean(v)), "acc_norm_stderr,none": "N/A"}
                    for task, v in outcomes.items()},
        "group_subtasks": {task: [] for task in outcomes},
        "versions": {task: 1.0 for task in outcomes},
        "n-shot": {task: 0 for task in outcomes},
        "higher_is_better": {task: {"acc": True, "acc_norm": True} for task in outcomes},
        "n-samples": {task: {"original": len(v), "effective": len(v)} for task, v in outcomes.items()},
        "config": {"model": "hf", "model_args": {"pretrained": model, "dtype": "float32"}},
        "lm_eval_version": "0.4.13",
        "model_name": model,
        "model_name_sanitized": model.replace("/", "__"),
    }
    (folder / f"results_{stamp}.json").write_text(json.dumps(results, indent=2))
    for task, values in outcomes.items():
        lines = [json.dumps({"doc_id": i, "doc": {"q": i}, "target": "0", "filter": "none",
                             "metrics": ["acc", "acc_norm"], "resps": [[["-1.5", "False"]]],
                             "acc": float(v), "acc_norm": float(v)}) for i, v in enumerate(values)]
        (folder / f"samples_{task}_{stamp}.jsonl").write_text("\n".join(lines) + "\n")


def test_lm_eval_folders_become_runs_and_per_item_samples(tmp_path):
    rng = np.random.default_rng(0)
    def outcomes(p_arith: float, p_facts: float) -> dict[str, list[int]]:
        return {"arith": (rng.random(60) < p_arith).astype(int).tolist(),
                "facts": (rng.random(40) < p_facts).astype(int).tolist()}

    strong, weak = outcomes(0.9, 0.8), outcomes(0.3, 0.4)
    lm_eval_run(tmp_path, "org/strong", "2026-01-01T00-00-00.000001", strong)
    lm_eval_run(tmp_path, "org/weak", "2026-01-02T00-00-00.000001", weak)
    runs, samples = read_lm_eval_dir(tmp_path)
    assert len(runs) == 2 * 2 * 2  # models x tasks x metrics
    acc = runs[(runs["metric"] == "acc") & (runs["model"] == "org/strong") & (runs["task"] == "arith")].iloc[0]
    assert acc["value"] == pytest.approx(np.mean(strong["arith"])) and acc["n_samples"] == 60
    assert acc["higher_is_better"] and acc["stderr"] == pytest.approx(0.1) and acc["filter"] == "none"
    norm = runs[(runs["metric"] == "acc_norm")].iloc[0]
    assert np.isnan(norm["stderr"]) or norm["stderr"] is None  # "N/A" in the file
    assert len(samples) == 2 * (60 + 40) * 2
    # the paired statistics run on the imported items
    pivot = samples[samples["metric"] == "acc"].pivot_table(index=["task", "doc_id"], columns="model", values="value")
    arith = pivot.loc["arith"]
    result = compare_paired(arith["org/strong"].to_numpy(), arith["org/weak"].to_numpy())
    assert result.test == "mcnemar" and result.diff > 0.3 and result.p_value < 1e-4


def test_lm_eval_malformed_output(tmp_path):
    lm_eval_run(tmp_path, "m", "2026-01-01T00-00-00.000001", {"t": [1, 0, 1]})
    samples = tmp_path / "m" / "samples_t_2026-01-01T00-00-00.000001.jsonl"
    lines = samples.read_text().splitlines()
    samples.write_text("\n".join(lines[:2] + ['{"doc_id": 2, "metrics": ["acc"], "acc": 1'] ) + "\n")
    with pytest.raises(ValueError, match=r"samples_t_.*\.jsonl:3: column \d+: invalid JSON"):
        read_lm_eval_dir(tmp_path)
    samples.write_text("\n".join(lines[:1] + ['{"doc_id": 1, "metrics": ["acc"]}']) + "\n")
    with pytest.raises(ValueError, match=r"\.jsonl:2: metric 'acc' listed but missing"):
        read_lm_eval_dir(tmp_path)
    (tmp_path / "m" / "results_2026-01-01T00-00-00.000001.json").write_text('{"results": {"t": ')
    with pytest.raises(ValueError, match=r"results_.*\.json:1: column \d+: invalid JSON"):
        read_lm_eval_dir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no lm-eval results"):
        read_lm_eval_dir(tmp_path / "empty")
    with pytest.raises(ValueError, match="not a directory"):
        read_lm_eval_dir(tmp_path / "missing")


# --------------------------------------------------------------------------- inputs wrong without an error (issue 17)
@pytest.mark.parametrize("cell", ["1_000", "٣", "１２", "0x10", "1,5", "12%%", "nan%", "."])
def test_numbers_are_ascii_only(tmp_path, cell):
    """float() takes `1_000` and Arabic-Indic or full-width digits; a typo would be stored as a plausible score."""
    path = write(tmp_path, "lb.csv", f'model,arc\na,0.5\nb,"{cell}"\n')
    with pytest.raises(MalformedFileError, match=r"lb\.csv:3: column 'arc': non-numeric value"):
        read_wide_leaderboard(path)
    long = write(tmp_path, "long.csv", f'model,scenario,score\na,x,0.5\nb,x,"{cell}"\n')
    with pytest.raises(MalformedFileError, match=r"long\.csv:3: column 'score': non-numeric value"):
        read_long_leaderboard(long)


def test_a_column_of_percentages_is_stored_as_fractions_and_noted(tmp_path):
    path = write(tmp_path, "lb.csv", "model,arc,mmlu,Average\na,71.2%,0.5,60.5 %\nb,-,0.25,\nc,+5e1%,1e-1,12%\n")
    board = read_wide_leaderboard(path)
    assert scores(board).fillna(-1).to_dict("list") == {"arc": [0.712, -1, 0.5], "mmlu": [0.5, 0.25, 0.1]}
    assert published(board).to_dict() == {"a": 0.605, "c": 0.12}
    assert board.notes == ("column 'arc' is written in percentages: stored as fractions (12% -> 0.12)",
                           "column 'Average' is written in percentages: stored as fractions (12% -> 0.12)")
    assert read_wide_leaderboard(write(tmp_path, "plain.csv", "model,arc\na,71.2\n")).notes == ()
    long = read_long_leaderboard(write(tmp_path, "long.csv", "model,scenario,score\na,x,50%\nb,x,n/a\n"))
    assert long.rows.column("value").to_pylist() == [0.5] and len(long.notes) == 1


def test_a_column_mixing_percentages_and_plain_numbers_is_refused(tmp_path):
    """Before: `50%` was stored as 50 beside 0.4 in one column, with no error."""
    mixed = write(tmp_path, "lb.csv", "model,arc,mmlu\na,1%,0.4\nb,2%,-\nc,3%,50%\n")
    with pytest.raises(MalformedFileError, match=r"^[^\n]*lb\.csv:4: column 'mmlu': percentage '50%' in a column of "
                                                 r"plain numbers \('0\.4' at line 2\)"):
        read_wide_leaderboard(mixed)
    other_way = write(tmp_path, "lb2.csv", "model,arc,Average\na,1,50%\nb,2,0.4\n")
    with pytest.raises(MalformedFileError, match=r"lb2\.csv:3: column 'Average': plain number '0\.4' in a column "
                                                 r"of percentages \('50%' at line 2\)"):
        read_wide_leaderboard(other_way)
    long = write(tmp_path, "long.csv", "model,scenario,score\na,x,0.4\na,y,50%\n")
    with pytest.raises(MalformedFileError, match=r"long\.csv:3: column 'score': percentage '50%'"):
        read_long_leaderboard(long)


def test_numbering_duplicates_never_takes_a_name_the_file_uses(tmp_path):
    """Before: a real `A#2` listed after a repeated `A` was renamed `A#2#2` and its name went to the repeat."""
    path = write(tmp_path, "d.csv", "model,x\nA,1\nA,2\nA#2,3\nA,4\nA#3,5\nA#2,6\n")
    board = read_wide_leaderboard(path, on_duplicate="number")
    assert board.competitors == ("A", "A#4", "A#2", "A#5", "A#3", "A#2#2")
    assert scores(board)["x"].to_dict() == {"A": 1, "A#4": 2, "A#2": 3, "A#5": 4, "A#3": 5, "A#2#2": 6}
    assert len(set(board.competitors)) == len(board.competitors)


def test_olmo_log_with_a_repeated_column_is_refused(tmp_path):
    """Before: pandas renamed the second column `NAME.1` and its scores silently vanished from the import."""
    from harness.ingest.checkpoint_curves import read_checkpoints

    column = "eval/downstream/arc_easy_val_rc_5shot_acc"
    log = write(tmp_path, "190M-1xC.csv", f"_step,{column},eval/c4_en-validation/CrossEntropyLoss,{column}\n"
                                          f"0,0.25,3.0,0.5\n100,0.3,2.9,0.6\n")
    for path in (log, tmp_path):
        with pytest.raises(MalformedFileError, match=rf"^[^\n]*190M-1xC\.csv:1: column '{column}' appears more than "
                                                     r"once$"):
            read_checkpoints(path, "olmo")


@pytest.mark.parametrize("column,cell", [("_step", "1_000"), ("eval/downstream/arc_easy_val_rc_5shot_acc", "٣"),
                                         ("throughput/total_tokens", "4_096")])
def test_olmo_log_numbers_are_ascii_only(tmp_path, column, cell):
    from harness.ingest.checkpoint_curves import read_checkpoints

    header = ["_step", "throughput/total_tokens", "eval/downstream/arc_easy_val_rc_5shot_acc"]
    row = {"_step": "200", "throughput/total_tokens": "8192", "eval/downstream/arc_easy_val_rc_5shot_acc": "0.5"}
    row[column] = cell
    log = write(tmp_path, "190M-1xC.csv", ",".join(header) + "\n100,4096,0.25\n" + ",".join(row.values()) + "\n")
    with pytest.raises(MalformedFileError, match=rf"190M-1xC\.csv:3: column '{column}': non-numeric value '{cell}'"):
        read_checkpoints(log, "olmo")


def test_olmo_log_scores_of_true_and_false_are_refused(tmp_path):
    """pandas reads a column of True/False as booleans, which float() turns into 1.0 and 0.0."""
    from harness.ingest.checkpoint_curves import read_checkpoints

    log = write(tmp_path, "190M-1xC.csv", "_step,eval/downstream/arc_easy_val_rc_5shot_acc\n0,True\n100,False\n")
    with pytest.raises(MalformedFileError, match=r"190M-1xC\.csv:2: column 'eval/downstream/arc_easy_val_rc_5shot_acc': "
                                                 r"non-numeric value 'True'"):
        read_checkpoints(log, "olmo")


def test_pythia_string_scores_are_ascii_only(tmp_path):
    from harness.ingest.checkpoint_curves import read_checkpoints

    doc = {"results": {"arc_easy": {"acc": "١٢", "acc_stderr": 0.01}}, "config": {"num_fewshot": 0}}
    (tmp_path / "pythia-70m" / "zero-shot").mkdir(parents=True)
    write(tmp_path / "pythia-70m" / "zero-shot", "pythia-70m_arc_easy_step1000.json", json.dumps(doc))
    with pytest.raises(MalformedFileError, match=r"non-numeric value '١٢'"):
        read_checkpoints(tmp_path, "lm-eval")


@pytest.mark.parametrize("name, text, says", [
    ("lb.csv", "model;arc;mmlu\na;0.5;0.6\n", "holds semicolons; a .csv file must be separated by commas"),
    ("lb.csv", "model\tarc\na\t0.5\n", "holds tabs; a .csv file must be separated by commas"),
    ("lb.tsv", "model,arc\na,0.5\n", "holds commas; a .tsv file must be separated by tabs"),
])
def test_another_delimiter_is_named_in_one_line(tmp_path, name, text, says):
    path = write(tmp_path, name, text)
    with pytest.raises(MalformedFileError, match=re.escape(f"{path}:1: one column whose header {says}")):
        read_wide_leaderboard(path)
