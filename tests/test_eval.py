"""`harness eval` end to end on a real (tiny) model: correctness against transformers and lm-eval,
resume after SIGKILL, and a re-run that does no model work."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from harness.tasks.registry import builtin_tasks

REPO = Path(__file__).resolve().parents[1]
MC_TASK = "arith_add_2d"
PPL_TASK = "english_flores"


def harness(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO, capture_output=True, text=True,
                          env=env or os.environ.copy(), timeout=600, **kwargs)


@pytest.fixture(scope="module")
def evaluated(tiny_model, tmp_path_factory):
    """One evaluation of the tiny model on an MC task and the perplexity task, shared by the checks."""
    root = tmp_path_factory.mktemp("eval")
    env = os.environ | {"HARNESS_RESULTS": str(root), "HARNESS_DB": str(root / "h.duckdb")}
    done = harness("eval", "--models", str(tiny_model), "--tasks", f"{MC_TASK},{PPL_TASK}", "--limit", "24",
                   "--batch-size", "8", "--display", "none", env=env)
    assert done.returncode == 0, done.stderr
    return root / "h.duckdb", env


def test_stored_loglikelihoods_match_a_direct_forward_pass(evaluated, tiny_model):
    db, _ = evaluated
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("""SELECT q.doc_id, q.idx, q.logprob, q.n_tokens FROM requests q
                          JOIN runs USING (run_id) JOIN tasks t USING (task_id)
                          WHERE t.name = ? ORDER BY doc_id, idx""", [MC_TASK]).fetchall()
    con.close()
    items = builtin_tasks()[MC_TASK].build()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    assert len(rows) == sum(len(items[d]["choices"]) for d in range(24))
    for doc_id, idx, stored, n_tokens in rows:
        context = items[doc_id]["question"]
        whole = tokenizer(context + " " + items[doc_id]["choices"][idx])["input_ids"]
        n_context = len(tokenizer(context)["input_ids"])
        with torch.no_grad():
            logits = model(torch.tensor([whole])).logits[0].log_softmax(-1)
        expected = sum(logits[p - 1, whole[p]].item() for p in range(n_context, len(whole)))
        assert abs(stored - expected) < 1e-4, (doc_id, idx)
        assert n_tokens == len(whole) - n_context


def test_task_metrics_equal_plain_lm_eval(evaluated, tiny_model):
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from harness.tasks.lmeval import prepare

    db, _ = evaluated
    configs = [prepare(builtin_tasks()[name], db.parent / "tasks").build_config() for name in (MC_TASK, PPL_TASK)]
    plain = simple_evaluate(model=HFLM(pretrained=str(tiny_model), batch_size=8, device="cpu", dtype="float32"),
                            tasks=configs, task_manager=TaskManager(include_defaults=False), limit=24,
                            bootstrap_iters=0)["results"]
    con = duckdb.connect(str(db), read_only=True)
    ours = {(task, metric): value for task, metric, value in con.execute(
        "SELECT t.name, s.metric, s.value FROM scores s JOIN runs USING (run_id) JOIN tasks t USING (task_id)"
    ).fetchall()}
    con.close()
    for metric in ("acc", "acc_norm", "acc_bytes"):
        assert ours[(MC_TASK, metric)] == pytest.approx(plain[MC_TASK][f"{metric},none"], abs=1e-12)
    for metric in ("bits_per_byte", "word_perplexity", "byte_perplexity"):
        assert ours[(PPL_TASK, metric)] == pytest.approx(plain[PPL_TASK][f"{metric},none"], rel=1e-6)


def test_every_mc_normalisation_is_stored_per_sample(evaluated):
    db, _ = evaluated
    con = duckdb.connect(str(db), read_only=True)
    metrics = dict(con.execute("""SELECT metric, count(*) FROM samples JOIN runs USING (run_id)
                                  JOIN tasks t USING (task_id) WHERE t.name = ? GROUP BY metric""",
                               [MC_TASK]).fetchall())
    ppl = dict(con.execute("""SELECT metric, count(*) FROM samples JOIN runs USING (run_id)
                              JOIN tasks t USING (task_id) WHERE t.name = ? GROUP BY metric""",
                           [PPL_TASK]).fetchall())
    con.close()
    for metric in ("acc", "acc_norm", "acc_bytes", "acc_per_token", "bits_per_byte_gold", "logprob_gold"):
        assert metrics.get(metric) == 24, metric
    for metric in ("bits_per_byte", "loglikelihood", "n_bytes", "n_words"):
        assert ppl.get(metric) == 24, metric


def test_sigkill_mid_task_then_resume(tiny_model, tmp_path):
    env = os.environ | {"HARNESS_RESULTS": str(tmp_path), "HARNESS_DB": str(tmp_path / "h.duckdb")}
    args = [sys.executable, "-m", "harness.cli", "eval", "--models", str(tiny_model), "--tasks", MC_TASK,
            "--limit", "200", "--batch-size", "4", "--chunk-size", "8", "--display", "plain"]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    progress = re.compile(r": (\d+)/(\d+) requests")
    killed_at = None
    for line in proc.stderr:
        match = progress.search(line)
        if match and int(match.group(1)) >= 48:
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = int(match.group(1))
            break
    proc.wait(timeout=60)
    assert killed_at is not None and killed_at < int(match.group(2)), "the run finished before it could be killed"
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    saved, hashes_before = con.execute("SELECT count(*), count(DISTINCT req_hash) FROM requests").fetchone()
    assert con.execute("SELECT status FROM runs").fetchone()[0] == "running"
    con.close()
    assert saved >= 48

    resumed = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    total, distinct = con.execute(
        "SELECT count(*), count(DISTINCT (run_id, request_type, doc_id, idx)) FROM requests").fetchone()
    status, n_requests, n_cached, n_computed = con.execute(
        "SELECT status, n_requests, n_cached, n_computed FROM runs").fetchone()
    unique_hashes = con.execute("SELECT count(DISTINCT req_hash) FROM requests").fetchone()[0]
    con.close()
    assert status == "done"
    assert total == distinct == n_requests  # every request stored once, none twice
    assert n_cached >= saved  # everything committed before the kill was reused,
    assert n_computed == unique_hashes - hashes_before  # and only answers never stored were computed

    third = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr
    assert "skipped" in third.stdout and "requests" not in third.stderr  # no job ran, no model work
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM requests").fetchone()[0] == total
    assert con.execute("SELECT n_computed FROM runs").fetchone()[0] == n_computed
    con.close()

