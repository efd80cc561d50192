"""Auditable samples: `harness eval` stores every prompt and continuation (content-addressed, once each), Ray shard
files carry them to the store, and `harness samples` reads a run back item by item, as lm-eval scored it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from harness.backends.cached import CHUNK_SCHEMA, REQUEST_SCHEMA, text_sha
from harness.executors.shards import read_shards, shard_files, write_shard
from harness.store import Store
from harness.tasks.registry import builtin_tasks

REPO = Path(__file__).resolve().parents[1]
MC_TASK = "arith_add_2d"
LIMIT = 6


def harness(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def evaluated(tiny_model, tmp_path_factory):
    """The tiny model on one built-in MC task, --limit 6, through the CLI."""
    root = tmp_path_factory.mktemp("samples")
    env = os.environ | {"HARNESS_RESULTS": str(root), "HARNESS_DB": str(root / "h.duckdb")}
    done = harness("eval", "--models", str(tiny_model), "--tasks", MC_TASK, "--limit", str(LIMIT),
                   "--batch-size", "8", "--display", "none", env=env)
    assert done.returncode == 0, done.stderr
    return root / "h.duckdb", env


def samples_json(env: dict, *args: str) -> dict:
    done = harness("samples", "tiny", MC_TASK, "--format", "json", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_samples_show_the_task_prompts_choices_and_stored_loglikelihoods(evaluated):
    db, env = evaluated
    shown = samples_json(env)
    items = builtin_tasks()[MC_TASK].build()
    con = duckdb.connect(str(db), read_only=True)
    stored = {(d, i): lp for d, i, lp in con.execute("SELECT doc_id, idx, logprob FROM requests").fetchall()}
    acc = dict(con.execute("SELECT doc_id, value FROM samples WHERE metric = 'acc'").fetchall())
    con.close()
    assert [item["item"] for item in shown["items"]] == list(range(LIMIT)) and shown["notes"] == []
    for item in shown["items"]:
        expected = items[item["item"]]
        assert item["prompt"] == expected["question"]
        assert [c["continuation"] for c in item["choices"]] == [" " + c for c in expected["choices"]]
        assert [c["loglikelihood"] for c in item["choices"]] == [stored[(item["item"], c["choice"])]
                                                                for c in item["choices"]]
        lls = [c["loglikelihood"] for c in item["choices"]]
        assert item["chosen"] == lls.index(max(lls))  # lm-eval's acc: the first argmax
        assert item["gold"] == expected["answer"]
        assert item["correct"] is (acc[item["item"]] == 1.0) is (item["chosen"] == item["gold"])


def test_wrong_item_and_limit_select_items(evaluated):
    db, env = evaluated
    con = duckdb.connect(str(db), read_only=True)
    wrong = [d for (d,) in con.execute("SELECT doc_id FROM samples WHERE metric = 'acc' AND value = 0 "
                                       "ORDER BY doc_id").fetchall()]
    con.close()
    assert 0 < len(wrong) < LIMIT  # both kinds present, so the filter is tested
    assert [i["item"] for i in samples_json(env, "--wrong")["items"]] == wrong
    assert [i["item"] for i in samples_json(env, "--wrong", "--limit", "1")["items"]] == wrong[:1]
    assert [i["item"] for i in samples_json(env, "--item", "3")["items"]] == [3]
    assert [i["item"] for i in samples_json(env, "--limit", "2")["items"]] == [0, 1]
    table = harness("samples", "tiny", MC_TASK, "--item", str(wrong[0]), env=env)
    assert table.returncode == 0 and f"item {wrong[0]} — wrong" in table.stdout
    assert builtin_tasks()[MC_TASK].build()[wrong[0]]["question"].splitlines()[0] in table.stdout


def test_texts_are_stored_once_each_and_named_by_their_sha256(evaluated):
    db, _ = evaluated
    items = builtin_tasks()[MC_TASK].build()[:LIMIT]
    distinct = {item["question"] for item in items} | {" " + c for item in items for c in item["choices"]}
    con = duckdb.connect(str(db), read_only=True)
    texts = dict(con.execute("SELECT text_sha, text FROM texts").fetchall())
    named = con.execute("SELECT context_sha, continuation_sha FROM requests").fetchall()
    con.close()
    assert len(texts) == len(distinct) and set(texts.values()) == distinct
    assert all(sha == hashlib.sha256(text.encode()).hexdigest() for sha, text in texts.items())
    assert {sha for pair in named for sha in pair} == set(texts)


def test_unknown_names_and_bad_values_are_one_line(evaluated):
    _, env = evaluated
    for args, message in ((["tiyn", MC_TASK], "model 'tiyn': no finished run; did you mean 'tiny'? (known: tiny)"),
                          (["tiny", "arith_add"], f"did you mean '{MC_TASK}'?"),
                          (["tiny", MC_TASK, "--item", "99"], "--item 99: not an item of this run (items 0–5)"),
                          (["tiny", MC_TASK, "--format", "csv"], "--format 'csv': choose table or json")):
        done = harness("samples", *args, env=env)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_a_run_from_before_v3_says_its_prompts_are_not_stored(evaluated, tmp_path):
    """Rows written before schema v3 name no text, and the gold index was not recorded: gold then comes from the
    stored gold log-likelihood."""
    db, env = evaluated
    old = tmp_path / "old.duckdb"
    shutil.copy(db, old)
    con = duckdb.connect(str(old))
    con.execute("UPDATE requests SET context_sha = NULL, continuation_sha = NULL")
    con.execute("DELETE FROM texts")
    con.execute("DELETE FROM samples WHERE metric = 'gold_index'")
    con.close()
    env = env | {"HARNESS_DB": str(old)}
    shown = samples_json(env)
    assert shown["notes"][0] == "prompt text not stored (run predates schema v3)"
    assert all(item["prompt"] is None for item in shown["items"])
    assert [i["gold"] for i in shown["items"]] == [item["answer"] for item in builtin_tasks()[MC_TASK].build()[:LIMIT]]
    table = harness("samples", "tiny", MC_TASK, "--limit", "1", env=env)
    assert table.returncode == 0 and "prompt text not stored (run predates schema v3)" in table.stdout


def _chunk(run_id: str, docs: list[int], context: str | None) -> pa.Table:
    n = len(docs)
    continuation = [f" {d}" for d in docs]
    return pa.table({
        "run_id": [run_id] * n, "req_hash": [f"h{d}" for d in docs], "request_type": ["loglikelihood"] * n,
        "doc_id": docs, "idx": [0] * n, "logprob": [-1.0] * n, "is_greedy": [False] * n, "n_tokens": [1] * n,
        "n_chars": [2] * n, "n_bytes": [2] * n, "n_words": [1] * n, "generation": [None] * n,
        "context_sha": [text_sha(context)] * n, "continuation_sha": [text_sha(c) for c in continuation],
        "context": [context] * n, "continuation": continuation,
    }, schema=CHUNK_SCHEMA)


def test_shard_files_carry_the_texts_into_the_store(tmp_path):
    """A worker's chunk keeps its texts through the Parquet file; ingesting twice stores each text once; a shard
    written before v3 (no text columns) still reads, its rows naming no text."""
    folder = tmp_path / "shards" / "run1" / "1-of-1"
    write_shard(_chunk("run1", [0, 1], "Q?"), folder, "loglikelihood")
    write_shard(_chunk("run1", [1, 2], "Q?"), folder, "loglikelihood")  # doc 1 again, as a retried worker writes it
    before_v3 = [name for name in REQUEST_SCHEMA.names if not name.endswith("_sha")]
    write_shard(_chunk("run1", [3], None).select(before_v3), folder, "loglikelihood")  # a shard from before v3
    with Store.open(tmp_path / "h.duckdb") as store:
        for _ in range(2):
            store.add_requests(read_shards(shard_files(tmp_path / "shards")))
        assert store.count("requests") == 4
        texts = store.query("SELECT text FROM texts ORDER BY text")["text"].tolist()
        assert texts == [" 0", " 1", " 2", "Q?"]
        rows = store.query("SELECT doc_id, context_sha FROM requests ORDER BY doc_id")
        assert rows["context_sha"].tolist()[:3] == [text_sha("Q?")] * 3 and rows["context_sha"].isna().tolist()[3]
