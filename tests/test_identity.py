"""Issue 15: a result is keyed by everything that changes it. Each reproduction from the issue, on the real tiny
model and a real store: changed files are another model, one name never means two models, answers are shared by
request (not by run), and a store from schema v2 keeps every row and answer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import harness
from harness.common.errors import HarnessError
from harness.store import Store, schema
from harness.weights.models import fingerprint, weights_sha256

REPO = Path(__file__).resolve().parents[1]
TASK = "arith_add_2d"


@pytest.fixture()
def results(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HARNESS_RESULTS", str(tmp_path / "results"))
    return tmp_path


def copy_model(tiny_model: Path, to: Path, **config_changes) -> Path:
    shutil.copytree(tiny_model, to)
    if config_changes:
        config = json.loads((to / "config.json").read_text())
        (to / "config.json").write_text(json.dumps(config | config_changes))
    return to


def requests(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("""SELECT r.run_id, q.doc_id, q.idx, q.logprob FROM requests q JOIN runs r USING (run_id)
                              ORDER BY ALL""").fetchall()


def test_a_changed_config_is_another_model_never_a_stale_skip(tiny_model, results):
    db = results / "h.duckdb"
    folder = copy_model(tiny_model, results / "tiny")
    [first] = harness.evaluate([str(folder)], [TASK], db, limit=6, batch_size=8)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"rms_norm_eps": 0.5}))  # same weights, other outputs
    with pytest.raises(HarnessError, match="'tiny' is already in the store with other files"):
        harness.evaluate([str(folder)], [TASK], db, limit=6, batch_size=8)
    [changed] = harness.evaluate([f"{folder}=tiny-eps"], [TASK], db, limit=6, batch_size=8)
    assert first.status == changed.status == "done" and changed.n_computed > 0 and changed.n_cached == 0
    logprobs = {}
    for run_id, doc, idx, logprob in requests(db):
        logprobs.setdefault((doc, idx), []).append(logprob)
    assert all(len(v) == 2 and abs(v[0] - v[1]) > 1e-6 for v in logprobs.values())  # really other answers
    assert len(logprobs) > 0


def test_tokenizer_and_chat_template_files_are_in_the_fingerprint(tiny_model, tmp_path):
    folder = copy_model(tiny_model, tmp_path / "m")
    weights = weights_sha256(folder)
    before = fingerprint(folder, weights)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps(config | {"chat_template": "{{ messages }}"}))
    after_template = fingerprint(folder, weights)
    (folder / "chat_template.jinja").write_text("{{ messages[0].content }}")
    assert len({before, after_template, fingerprint(folder, weights)}) == 3
    assert weights_sha256(folder) == weights  # the weights did not change


def test_the_same_files_under_a_second_name_is_one_line(tiny_model, results):
    db = results / "h.duckdb"
    harness.evaluate([str(copy_model(tiny_model, results / "first"))], [TASK], db, limit=4, batch_size=8)
    second = copy_model(tiny_model, results / "second")
    done = subprocess.run([sys.executable, "-m", "harness.cli", "eval", "--models", str(second), "--tasks", TASK,
                           "--limit", "4", "--db", str(db), "--display", "none"], cwd=REPO, capture_output=True,
                          text=True, env=os.environ | {"HARNESS_RESULTS": str(results / "results")}, timeout=600)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "the same files are already in the store as 'first'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_imported_model_never_blocks_evaluating_a_real_one_of_that_name(tiny_model, results):
    db = results / "h.duckdb"
    with Store.open(db) as store:  # what `harness import lm-eval` registers for a model named 'tiny'
        from harness.ingest.lm_eval_runs import external_model

        store.register_model(external_model("tiny", results))
    [outcome] = harness.evaluate([f"{tiny_model}=tiny"], [TASK], db, limit=4, batch_size=8)
    assert outcome.status == "done"
    with Store.open(db, read_only=True) as store:
        assert store.query("SELECT namespace, name FROM models ORDER BY ALL").values.tolist() == [
            ["", "tiny"], ["lm-eval", "tiny"]]


def test_answers_are_shared_by_request_across_runs(tiny_model, results):
    """--limit 8 then --limit 12: the second run computes only the 4 new items' requests (4 choices each for
    arith_add_2d, a closed count), and reads the other 8 items' answers from the first run."""
    db = results / "h.duckdb"
    [small] = harness.evaluate([str(tiny_model)], [TASK], db, limit=8, batch_size=8)
    [large] = harness.evaluate([str(tiny_model)], [TASK], db, limit=12, batch_size=8)
    with Store.open(db, read_only=True) as store:
        choices = store.query("""SELECT doc_id, count(*) AS n FROM requests q JOIN runs r USING (run_id)
                                 WHERE r.item_limit = 12 GROUP BY doc_id ORDER BY doc_id""")
    assert small.n_computed == small.n_cached + small.n_computed == choices["n"][:8].sum()
    assert large.n_computed == choices["n"][8:].sum() and large.n_cached == choices["n"][:8].sum()
    by_item: dict[tuple, set] = {}
    for run_id, doc, idx, logprob in requests(db):
        by_item.setdefault((doc, idx), set()).add(logprob)
    assert len(by_item) == choices["n"].sum() and all(len(v) == 1 for v in by_item.values())


def test_batch_size_does_not_change_loglikelihoods(tiny_model, results):
    """Proof that batch size may stay out of the run identity: padding to 8 vs no padding moves no log-likelihood
    by more than 1e-4 on the tiny model in float32 (the issue's tolerance)."""
    from harness.backends.hf import build_hf
    from harness.tasks.lmeval import prepare
    from harness.tasks.registry import builtin_tasks

    from lm_eval.api.instance import Instance

    items = builtin_tasks()[TASK].build()[:16]
    reqs = [Instance("loglikelihood", {}, (item["question"], " " + choice), idx)
            for item in items for idx, choice in enumerate(item["choices"])]
    prepare(builtin_tasks()[TASK], results / "tasks")
    one = build_hf(tiny_model, 1, "cpu", "float32").loglikelihood(reqs, disable_tqdm=True)
    eight = build_hf(tiny_model, 8, "cpu", "float32").loglikelihood(reqs, disable_tqdm=True)
    assert len(reqs) > 32
    assert max(abs(a[0] - b[0]) for a, b in zip(one, eight)) < 1e-4
    settings = harness.EvalSettings(batch_size=1), harness.EvalSettings(batch_size=8)
    assert settings[0].identity() == settings[1].identity()


def test_an_unavailable_device_is_one_line_and_touches_nothing(tiny_model, results):
    import torch

    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    db = results / "h.duckdb"
    with pytest.raises(HarnessError, match=r"--device cuda:7: not available here"):
        harness.evaluate([str(tiny_model)], [TASK], db, limit=4, device="cuda:7")
    assert not db.exists()


def v2_store(path: Path, source: Path) -> None:
    """A store as schema v2 wrote it: v2's tables, filled with the rows of `source` (a v3 store) under v2's columns,
    and the model's fingerprint over its weights only, as v2 computed it."""
    con = duckdb.connect(str(path))
    for statement in (s for step in schema.MIGRATIONS[:2] for s in step):
        con.execute(statement)
    con.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
    for table in ("tasks", "runs", "requests", "samples", "scores", "task_groups"):
        names = ", ".join(r[0] for r in con.execute(f"DESCRIBE main.{table}").fetchall())
        picked = names.replace("source", "origin")  # v4 renamed tasks.source
        con.execute(f"INSERT INTO main.{table} ({names}) SELECT {picked} FROM src.{table}")
    con.execute("""INSERT INTO main.models (model_id, name, kind, source, fingerprint, n_params, parents, recipe,
                                            created_at)
                   SELECT left(weights_sha256, 16), name, kind, origin, weights_sha256, n_params, parents, recipe,
                          created_at FROM src.models""")
    con.execute("UPDATE main.runs SET model_id = (SELECT model_id FROM main.models)")
    for table in ("runs", "requests", "samples", "scores"):  # v2 run ids hashed the weights-only fingerprint
        con.execute(f"UPDATE main.{table} SET run_id = 'v2-' || run_id")
    con.close()


def test_a_v2_store_keeps_every_row_and_answer_and_its_model_is_adopted(tiny_model, results):
    scratch = results / "scratch.duckdb"
    harness.evaluate([f"{tiny_model}=tiny"], [TASK], scratch, limit=6, batch_size=8)
    old = results / "old.duckdb"
    v2_store(old, scratch)
    with duckdb.connect(str(old), read_only=True) as con:
        before = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                  for t in ("tasks", "runs", "requests", "samples", "scores")}
        legacy_id = con.execute("SELECT model_id FROM models").fetchone()[0]
    with Store.open(old) as store:  # migrated to v3, with a byte-exact backup beside it
        assert store.schema_version() == schema.SCHEMA_VERSION == 4
        for table, rows in before.items():
            kept = store.con.execute(f"SELECT {_v2_columns(table)} FROM {table} ORDER BY ALL").fetchall()
            assert kept == rows, table
        assert store.query("SELECT answer_scope = run_id AS own FROM runs")["own"].all()
    assert (results / "old.duckdb.v2.bak").is_file()
    [again] = harness.evaluate([f"{tiny_model}=tiny"], [TASK], old, limit=6, batch_size=8)
    assert again.status == "done"  # the same weights adopt the v2 row instead of being refused
    assert again.n_cached == 0  # v2 answers stay with their run: v2 did not know the model's other files
    with Store.open(old, read_only=True) as store:
        models = store.query("SELECT model_id, fingerprint, weights_sha256 FROM models")
        runs = store.query("SELECT model_id, count(*) AS n FROM runs GROUP BY ALL")
    assert len(models) == 1 and models["model_id"][0] != legacy_id
    assert models["weights_sha256"][0] == weights_sha256(tiny_model)
    assert runs.values.tolist() == [[models["model_id"][0], 2]]  # the v2 run kept, re-pointed; one new run


def _v2_columns(table: str) -> str:
    v2 = {"tasks": "*", "samples": "*", "scores": "*",
          "runs": "* EXCLUDE (answer_scope)", "requests": "* EXCLUDE (context_sha, continuation_sha)"}
    return v2[table]


def test_suite_settings_give_way_to_flags_typed_on_the_command_line(tiny_model, results):
    """--suite plus command-line settings: what is typed overrides the file, what is not typed keeps the file's."""
    from typer.testing import CliRunner

    from harness.cli import app

    suite = results / "suite.toml"
    suite.write_text(f'tasks = ["{TASK}"]\n[[models]]\nname = "tiny"\npath = "{tiny_model}"\n'
                     "[settings]\nlimit = 5\nbatch_size = 3\nnum_fewshot = 0\n")
    db = results / "h.duckdb"
    done = CliRunner().invoke(app, ["eval", "--suite", str(suite), "--limit", "2", "--db", str(db), "--display", "none"])
    assert done.exit_code == 0, done.output
    with Store.open(db, read_only=True) as store:
        [(limit, args)] = store.con.execute("SELECT item_limit, backend_args FROM runs").fetchall()
    settings = json.loads(args)
    assert limit == 2 and settings["limit"] == 2  # typed: the flag wins
    assert settings["batch_size"] == 3 and settings["num_fewshot"] == 0  # not typed: the file's
