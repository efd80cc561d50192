"""`harness irt fit`: item response models fitted on stored per-item results, stored with their provenance.

The reference is tournaments.irt.fit_irt called directly on the matrix read from the source file itself (eval-arena
MBPP per-example pass@1, ../shared/data/eval-arena-per-example), so the stored parameters must be exactly its output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli import app
from tournaments.irt import fit_irt

runner = CliRunner()


def _rows(db, sql, params=()):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_fit_on_an_item_import_stores_fit_irts_own_parameters(shared_data, tmp_path):
    path = shared_data / "eval-arena-per-example" / "mbpp.jsonl"
    db = str(tmp_path / "h.duckdb")
    assert runner.invoke(app, ["import", "items", str(path), "--name", "arena", "--db", db]).exit_code == 0
    fitted = runner.invoke(app, ["irt", "fit", "--source", "arena", "--db", db, "-f", "json"])
    assert fitted.exit_code == 0, fitted.output
    [row] = json.loads(fitted.stdout)["rows"]
    assert (row["task"], row["competitors"], row["items"]) == ("mbpp", 59, 378)

    frame = pd.read_json(path, lines=True)
    wide = frame.pivot(index="model", columns="example_id", values="pass1").sort_index().sort_index(axis=1)
    reference = fit_irt(wide.to_numpy(dtype=float), model="2pl", seed=0)
    stored = pd.DataFrame(_rows(db, "SELECT item, difficulty, discrimination FROM irt_items WHERE fit_id = ? "
                                    "ORDER BY item", [row["fit_id"]]), columns=["item", "difficulty", "discrimination"])
    assert list(stored["item"]) == sorted(map(str, wide.columns))
    order = np.argsort(np.asarray(wide.columns, dtype=str))
    np.testing.assert_allclose(stored["difficulty"], reference.difficulty[order], rtol=0, atol=1e-12)
    np.testing.assert_allclose(stored["discrimination"], reference.discrimination[order], rtol=0, atol=1e-12)
    abilities = dict(_rows(db, "SELECT competitor, ability FROM irt_abilities WHERE fit_id = ?", [row["fit_id"]]))
    assert abilities == pytest.approx(dict(zip(wide.index, reference.ability)), abs=1e-12)
    [(source, n_models, n_items, created)] = _rows(db, "SELECT source, n_competitors, n_items, created_at "
                                                       "FROM irt_fits")
    assert (source, n_models, n_items) == ("arena", 59, 378) and created is not None

    again = runner.invoke(app, ["irt", "fit", "--source", "arena", "--db", db, "-f", "json"])
    assert json.loads(again.stdout)["rows"][0]["fit_id"] == row["fit_id"]  # same data, model, seed: replaced
    assert _rows(db, "SELECT count(*) FROM irt_items") == [(378,)]
    one = runner.invoke(app, ["irt", "fit", "--source", "arena", "--model", "1pl", "--db", db, "-f", "json"])
    one_id = json.loads(one.stdout)["rows"][0]["fit_id"]
    assert one_id != row["fit_id"]
    assert _rows(db, "SELECT min(discrimination), max(discrimination) FROM irt_items WHERE fit_id = ?",
                 [one_id]) == [(1.0, 1.0)]
    bad = runner.invoke(app, ["irt", "fit", "--source", "arena", "--model", "3pl", "--db", db])
    assert bad.exit_code == 2 and "--model '3pl'" in bad.output


def test_fit_on_evaluated_runs_records_the_runs_it_used(tiny_model, tmp_path):
    from tests.tiny_model import build_tiny_llama

    other = build_tiny_llama(tmp_path / "tiny-b", seed=1)
    db = tmp_path / "h.duckdb"
    env = os.environ | {"HARNESS_RESULTS": str(tmp_path / "results"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "harness.cli", "eval", "--models", f"{tiny_model},{other}",
                           "--tasks", "arith_add_2d,english_flores", "--limit", "12", "--db", str(db),
                           "--display", "none"], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr
    fitted = runner.invoke(app, ["irt", "fit", "--db", str(db), "-f", "json"])
    assert fitted.exit_code == 0, fitted.output
    result = json.loads(fitted.stdout)
    assert [r["task"] for r in result["rows"]] == ["arith_add_2d"]
    assert any("english_flores" in note and "outside [0, 1]" in note for note in result["notes"])  # bits per byte
    [(run_ids,)] = _rows(db, "SELECT run_ids FROM irt_fits")
    expected = _rows(db, "SELECT run_id FROM runs JOIN tasks USING (task_id) WHERE name = 'arith_add_2d' ORDER BY 1")
    assert run_ids == [r for (r,) in expected]
    assert _rows(db, "SELECT count(*), count(DISTINCT item) FROM irt_items") == [(12, 12)]
