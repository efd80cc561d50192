"""`harness rank --save NAME`: the stored rows are the printed ranking, with what was ranked (input hash), how
(method and parameters) and by which command; saving NAME again replaces it; `harness query` reads it back."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.store.rankings import table_hash

REPO = Path(__file__).resolve().parents[1]


def harness(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture()
def setup(shared_data, tmp_path):
    csv = shared_data / "ibm-benchbench" / "benchmarks_old" / "hf_open_llm_v2_240829.csv"
    return csv, os.environ | {"HARNESS_DB": str(tmp_path / "h.duckdb"), "HARNESS_RESULTS": str(tmp_path)}


def saved(env: dict, where: str = "") -> pd.DataFrame:
    done = harness("query", "SELECT r.name, r.method, r.params, r.input_hash, r.command, w.* FROM rankings r "
                   f"JOIN ranking_rows w USING (ranking_id) {where} ORDER BY r.name, w.rank, w.competitor",
                   "--csv", env=env)
    assert done.returncode == 0, done.stderr
    return pd.read_csv(io.StringIO(done.stdout))


def test_saved_rows_are_the_printed_ranking_and_a_second_save_replaces_them(setup):
    from harness.api._rank import csv_scores

    csv, env = setup
    args = ["rank", "--from", str(csv), "--on-duplicate", "first", "--format", "json"]
    printed = harness(*args, "--method", "mean", "--bootstrap", "30", "--seed", "3", "--save", "top", env=env)
    assert printed.returncode == 0, printed.stderr
    rows = json.loads(printed.stdout)["rows"]
    stored = saved(env)
    assert stored["name"].unique().tolist() == ["top"] and stored["method"].unique().tolist() == ["mean"]
    assert len(stored) == len(rows)
    by_name = stored.set_index("competitor")
    for row in rows:
        mine = by_name.loc[row["competitor"]]
        assert mine["rank"] == row["rank"] and mine["score"] == pytest.approx(row["mean"], abs=1e-12)
        assert f"{mine['ci_low']:.4f} – {mine['ci_high']:.4f}" == row["mean 95% CI"]  # as printed
    assert json.loads(stored["params"].iloc[0]) == {"bootstrap": 30, "seed": 3}
    table, _ = csv_scores(csv, "first")
    assert stored["input_hash"].unique().tolist() == [table_hash(table)]
    assert stored["command"].iloc[0].endswith("rank --from " + str(csv) + " --on-duplicate first --format json "
                                              "--method mean --bootstrap 30 --seed 3 --save top")

    again = harness(*args, "--method", "borda", "--save", "top", env=env)
    assert again.returncode == 0, again.stderr
    rows = json.loads(again.stdout)["rows"]
    stored = saved(env)
    assert stored["method"].unique().tolist() == ["borda"] and stored["ranking_id"].nunique() == 1
    assert stored["competitor"].tolist() == [r["competitor"] for r in rows]
    assert stored["score"].tolist() == pytest.approx([r["borda"] for r in rows], abs=1e-12)
    assert stored["ci_low"].isna().all()
    count = harness("query", "SELECT count(*) AS n FROM rankings", "--csv", env=env)
    assert count.stdout.splitlines()[1] == "1"


def test_method_all_saves_one_ranking_per_method(setup):
    csv, env = setup
    done = harness("rank", "--from", str(csv), "--on-duplicate", "first", "--method", "all", "--n-sims", "2000",
                   "--format", "json", "--save", "every", env=env)
    assert done.returncode == 0, done.stderr
    ranks = pd.DataFrame(json.loads(done.stdout)["tables"]["ranks"]["rows"])
    stored = saved(env)
    methods = [c for c in ranks.columns if c != "competitor"]
    assert sorted(stored["name"].unique()) == sorted(f"every/{m}" for m in methods)
    for method in methods:
        mine = stored[stored["method"] == method].set_index("competitor")["rank"]
        assert mine.loc[ranks["competitor"]].tolist() == ranks[method].tolist()
    csd = json.loads(stored.loc[stored["method"] == "csd", "params"].iloc[0])
    assert csd["n_sims"] == 2000 and csd["seed"] == 0 and csd["tiebreak"] == "random"


def test_an_empty_save_name_is_refused(setup):
    csv, env = setup
    done = harness("rank", "--from", str(csv), "--on-duplicate", "first", "--save", " ", env=env)
    assert done.returncode == 2 and "--save ' ': give the ranking a name" in done.stderr
    assert not Path(env["HARNESS_DB"]).exists()
