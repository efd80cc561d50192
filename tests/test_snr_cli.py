"""`harness snr` end to end: imported training curves (OLMo ladder, Pythia) give exactly the numbers
`snr_table` gives on the checkpoint_data readers; per-item results give labelled item-bootstrap
noise; `filter_for_ranking` drops what `snr_filter` would."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.ingest.checkpoint_logs import read_olmo_ladder, read_pythia_evals
from harness.tables.checkpoints import final_checkpoints
from harness.cli import app
from harness.common.errors import HarnessError
from harness.tables.scores import stored_table
from harness.tables.snr import filter_for_ranking
from harness.store import Store
from tests.test_import_cli import CODE_MODELS, code_outcomes, doc_id, write_lm_eval_output
from tournaments import ScoreTable
from tournaments.signal_noise import bootstrap_item_noise, snr_table

runner = CliRunner()
LADDER_RUNS = ("190M-5xC", "370M-5xC", "760M-5xC", "1B-5xC")
PYTHIA_MODELS = ("pythia-160m", "pythia-410m", "pythia-1.4b", "pythia-2.8b")


def snr_rows(*args: str) -> pd.DataFrame:
    result = runner.invoke(app, ["snr", "--format", "json", *map(str, args)])
    assert result.exit_code == 0, result.stderr
    return pd.DataFrame(json.loads(result.stdout)["rows"]).set_index("benchmark")


def direct_snr(long: pd.DataFrame, run: str, n: int) -> pd.DataFrame:
    """snr_table on the reader's own frame: final = each run's last step, noise = its curve by step."""
    long = long.sort_values([run, "benchmark", "step"])
    final = ScoreTable.from_long(long.groupby([run, "benchmark"]).tail(1), run, "benchmark")
    curves = ScoreTable.from_long(long, run, "benchmark", replicate="step")
    return snr_table(final, curves, source="checkpoints", n=n).set_index("benchmark")


def assert_same(ours: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert sorted(ours.index) == sorted(expected.index)
    expected = expected.loc[ours.index]
    for column in ("signal", "noise", "snr"):
        np.testing.assert_allclose(ours[column].astype(float), expected[column], rtol=1e-9, err_msg=column)
    assert (ours["n_models"] == expected["n_models"]).all()
    assert set(ours["noise_source"]) == set(expected["noise_source"])


def import_checkpoints(folder: Path, layout: str, name: str, db: Path) -> None:
    result = runner.invoke(app, ["import", "checkpoints", str(folder), "--layout", layout, "--name", name,
                                 "--db", str(db)])
    assert result.exit_code == 0, result.stderr


@pytest.fixture(scope="module")
def pythia(shared_data, tmp_path_factory) -> tuple[Path, Path]:
    """(folder, db): four Pythia sizes, five-shot, 15 checkpoints each, imported as 'pythia'."""
    root = tmp_path_factory.mktemp("pythia")
    for model in PYTHIA_MODELS:
        shutil.copytree(shared_data / "pythia-v1-evals" / model / "five-shot", root / "evals" / model / "five-shot")
    import_checkpoints(root / "evals", "lm-eval", "pythia", root / "h.duckdb")
    return root / "evals", root / "h.duckdb"


def test_olmo_ladder_snr_equals_snr_table_on_the_reader(shared_data, tmp_path):
    folder, db = tmp_path / "ladder", tmp_path / "h.duckdb"
    folder.mkdir()
    for run in LADDER_RUNS:
        shutil.copy(shared_data / "olmo-ladder-peteish-moreeval" / f"{run}.csv", folder)
    import_checkpoints(folder, "olmo", "ladder", db)
    long = read_olmo_ladder(folder)
    lm = long["format"] == "lm"
    long["benchmark"] = (long["task"] + "_" + long["split"] + "_" + long["format"] + "_" + long["shots"].astype(str)
                         + "shot").where(~lm, long["task"]) + ":" + long["metric"]
    for last in (5, 30):
        ours = snr_rows("--source", "ladder", "--last", last, "--db", db)
        assert_same(ours, direct_snr(long, "run", last))
        assert ours["snr"].notna().all() and set(ours["noise_source"]) == {f"checkpoints (last {last}, ddof=1)"}
        assert (ours["n_models"] == 4).all()
    # the rows come sorted by SNR, highest first
    assert ours["snr"].is_monotonic_decreasing


def test_pythia_snr_equals_snr_table_on_the_reader(pythia):
    folder, db = pythia
    long = read_pythia_evals(folder)
    long["benchmark"] = long["task"] + "_5shot:" + long["metric"]
    ours = snr_rows("--source", "pythia", "--db", db)
    assert_same(ours, direct_snr(long, "model", 5))
    assert len(ours) == 6 * 2 + 2 + 57 * 2  # winogrande and wsc report acc only; lambada acc and ppl
    assert ours.loc["lambada_openai_5shot:ppl", "snr"] > ours.loc["lambada_openai_5shot:acc", "snr"]


def test_pythia_snr_with_checkpoint_averaging(pythia):
    """--average 3: each run's curve becomes its trailing 3-checkpoint mean (pandas' rolling mean here),
    signal is (max - min) / |mean| of those curves' last points, noise the mean over runs of the last
    5 averaged points' relative std (ddof 1)."""
    folder, db = pythia
    long = read_pythia_evals(folder)
    long["benchmark"] = long["task"] + "_5shot:" + long["metric"]
    rolled = (long.sort_values("step").groupby(["benchmark", "model"])["value"]
              .apply(lambda c: c.rolling(3).mean().dropna().to_numpy()))
    final = rolled.map(lambda c: c[-1]).unstack("model")
    noise = rolled.map(lambda c: np.std(c[-5:], ddof=1) / abs(np.mean(c[-5:]))).unstack("model")
    ours = snr_rows("--source", "pythia", "--average", 3, "--db", db)
    expected = final.max(axis=1).sub(final.min(axis=1)).div(final.mean(axis=1).abs())
    assert sorted(ours.index) == sorted(expected.index)
    flat = noise.mean(axis=1) == 0  # wsc: every averaged curve constant over its last 5 points
    assert list(flat[flat].index) == ["wsc_5shot:acc"] and ours.loc["wsc_5shot:acc", "note"].startswith("SNR undefined")
    assert ours["snr"].isna().equals(flat.loc[ours.index])
    np.testing.assert_allclose(ours["signal"].astype(float), expected.loc[ours.index], rtol=1e-9)
    np.testing.assert_allclose(ours["noise"].astype(float), noise.mean(axis=1).loc[ours.index], rtol=1e-9)
    assert set(ours["noise_source"]) == {"checkpoints (last 5, ddof=1), each a mean of 3 checkpoints"}
    plain = snr_rows("--source", "pythia", "--db", db)
    assert (ours["noise"] < plain.loc[ours.index, "noise"]).mean() > 0.9  # averaging smooths the curves
    result = runner.invoke(app, ["snr", "--average", "3", "--db", str(db)])
    assert result.exit_code != 0 and "--average 3: averages a per-checkpoint import's curves; give --source" in result.stderr


def test_pythia_too_few_checkpoints_is_a_documented_nan(pythia):
    _, db = pythia
    result = runner.invoke(app, ["snr", "--source", "pythia", "--last", "20", "--db", str(db), "--format", "table"])
    assert result.exit_code == 0, result.stderr
    rows = snr_rows("--source", "pythia", "--last", "20", "--db", db)
    assert rows["snr"].isna().all() and rows["note"].str.contains("needs at least 20 values, got 15").all()
    assert "without a defined SNR" in result.stdout


def test_snr_plot_and_markdown(pythia, tmp_path):
    _, db = pythia
    png = tmp_path / "plots" / "snr.png"
    result = runner.invoke(app, ["snr", "--source", "pythia", "--format", "md", "--plot", str(png), "--db", str(db)])
    assert result.exit_code == 0, result.stderr
    assert "| benchmark | signal | noise | snr | noise_source |" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_filter_for_ranking_keeps_the_highest_snr(pythia):
    _, db = pythia
    snrs = snr_rows("--source", "pythia", "--db", db)["snr"]
    with Store.open(db, read_only=True) as store:
        table = final_checkpoints(store, "pythia")
        kept, dropped = filter_for_ranking(store, table, k=3, source="pythia")
        assert list(kept.benchmarks) == [b for b in table.benchmarks if b in set(snrs.index[:3])]
        assert len(dropped) == table.n_benchmarks - 3
        reasons = pd.Series([reason for _, _, reason in dropped])
        undefined = int(snrs.isna().sum())  # constant over the last checkpoints: no estimate, so dropped
        assert undefined >= 1 and (reasons == "SNR undefined (NaN)").sum() == undefined
        assert reasons.str.endswith("outside top 3").sum() == table.n_benchmarks - 3 - undefined
        threshold = float(snrs.iloc[10])
        kept, dropped = filter_for_ranking(store, table, min_snr=threshold, source="pythia")
        assert set(kept.benchmarks) == set(snrs.index[snrs >= threshold]) and len(kept.benchmarks) == 11
        assert all(reason.startswith("SNR") for _, _, reason in dropped)
        with pytest.raises(HarnessError, match="SNR filter: snr_filter kept no benchmark"):
            filter_for_ranking(store, table, min_snr=float(snrs.max()) * 2, source="pythia")


def test_item_bootstrap_noise_from_imported_items(shared_data, tmp_path):
    outcomes = code_outcomes(shared_data, CODE_MODELS)
    limited = (outcomes["model"] == "phi-2") & (outcomes["benchmark_id"] == "mbpp")
    outcomes = outcomes[~limited | (outcomes.groupby(["model", "benchmark_id"]).cumcount() < 300)]
    write_lm_eval_output(tmp_path / "out", outcomes)
    db = tmp_path / "h.duckdb"
    assert runner.invoke(app, ["import", "lm-eval", str(tmp_path / "out"), "--db", str(db)]).exit_code == 0
    rows = snr_rows("--db", db)
    assert sorted(rows.index) == ["humaneval", "mbpp"]
    assert set(rows["noise_source"]) == {"item bootstrap (1000 draws)"} and (rows["n_models"] == 6).all()
    for task, n_items in (("humaneval", 164), ("mbpp", 300)):
        part = outcomes[outcomes["benchmark_id"] == task].assign(doc=lambda f: f["example_id"].map(doc_id))
        matrix = part.pivot(index="model", columns="doc", values="pass1").dropna(axis=1)  # items all six have
        assert matrix.shape == (6, n_items)
        means = matrix.mean(axis=1)  # each model scored on the items all six share, as comparable() scores them
        signal = (means.max() - means.min()) / abs(means.mean())  # relative dispersion
        assert rows.loc[task, "signal"] == pytest.approx(signal, rel=1e-12)
        assert rows.loc[task, "noise"] == pytest.approx(bootstrap_item_noise(matrix.to_numpy(), 1000, 0), rel=1e-12)
    assert rows.loc["mbpp", "note"] == "scored on the 300 of 378 items shared by all 6 models"
    with Store.open(db, read_only=True) as store:
        kept, dropped = filter_for_ranking(store, stored_table(store), k=1)
    best = rows["snr"].idxmax()
    assert kept.benchmarks == (best,) and [b for b, _, _ in dropped] == [b for b in rows.index if b != best]


def test_snr_errors_name_what_is_missing(shared_data, tmp_path):
    db = tmp_path / "h.duckdb"
    helm = shared_data / "ibm-benchbench" / "benchmarks_old" / "helm_lite_240829.csv"
    assert runner.invoke(app, ["import", "csv", str(helm), "--wide", "--name", "helm", "--db", str(db)]).exit_code == 0
    for args, message in (
        ([], "no finished runs with per-item samples; run `harness eval`, `harness import lm-eval`, or pass "
             "--source (imported: helm)"),
        (["--source", "helm"], "--source 'helm': a leaderboard import, not a per-checkpoint one"),
        (["--source", "nope"], "--source 'nope': no such import (imported: helm)"),
        (["--format", "xml"], "--format 'xml': choose one of table, md, json, csv"),
        (["--plot", str(tmp_path / "snr.svg")], ".svg: give a .png path"),
    ):
        result = runner.invoke(app, ["snr", "--db", str(db), *args])
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
