"""SharedPrefixHFLM (harness/backends/shared_prefix.py) answers exactly what lm-eval's plain HFLM answers.

Every expected number comes from plain HFLM run on the same tiny model and requests; log-likelihoods must
agree within 1e-4 in fp32 (the tolerance of issue 19: the cached prefix and the full pass differ only in
floating-point summation order), is-greedy flags and per-item accuracy exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from harness.backends.shared_prefix import SharedPrefixHFLM, kept_context, plan

REPO = Path(__file__).resolve().parents[1]
TOL = 1e-4  # issue 19's fp32 tolerance for log-likelihoods
SHOTS = "\n\n".join(f"Country: {c}\nCapital: {k}" for c, k in [
    ("france", "paris"), ("the sun", "the moon"), ("red", "blue sky"), ("water", "fire earth"), ("one", "two")])


def pair(model_path: Path, batch_size: int, **kwargs) -> tuple[HFLM, SharedPrefixHFLM]:
    common = {"pretrained": str(model_path), "batch_size": batch_size, "device": "cpu", "dtype": "float32", **kwargs}
    return HFLM(**common), SharedPrefixHFLM(**common)


def instances(pairs: list[tuple[str, str]]) -> list[Instance]:
    return [Instance(request_type="loglikelihood", doc={}, arguments=p, idx=i) for i, p in enumerate(pairs)]


def mc(question: str, choices: list[str]) -> list[tuple[str, str]]:
    return [(question, " " + c) for c in choices]


def assert_same(plain: list, ours: list) -> None:
    assert len(plain) == len(ours)
    for n, ((p_ll, p_greedy), (o_ll, o_greedy)) in enumerate(zip(plain, ours)):
        assert o_ll == pytest.approx(p_ll, abs=TOL), n
        assert o_greedy == p_greedy, n


def text_requests() -> list[tuple[str, str]]:
    """Single- and multi-token choices, short and few-shot contexts, a lone request, a duplicate context."""
    return (mc("the cat sat on the", ["mat", "dog", "sun"])                          # mostly single tokens
            + mc("what is the capital of france ?", ["paris city", "the red moon", "blue", "one two three"])
            + mc(SHOTS + "\n\nCountry: earth\nCapital:", ["water", "fire and sun", "the sky is green"])
            + mc("which is larger , two or five ?", ["yes", "no"])
            + [("a lone context", " with one request")]
            + mc("the cat sat on the", ["mat is red", "dog"])                            # same context again
            + mc(SHOTS + "\n\nCountry: moon\nCapital:", ["sun", "earth water", "a b c d e"]))


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_loglikelihoods_equal_plain_hflm(tiny_model, batch_size):
    plain, ours = pair(tiny_model, batch_size)
    requests = text_requests()
    assert_same(plain.loglikelihood(instances(requests)), ours.loglikelihood(instances(requests)))


def test_shared_contexts_skip_the_plain_forward(tiny_model, monkeypatch):
    """Multi-token choices never reach HFLM's per-request forward; single-token ones still share it as before."""
    _, ours = pair(tiny_model, 8)
    calls = []
    original = ours._model_call
    monkeypatch.setattr(ours, "_model_call", lambda inps, **kw: calls.append(inps.shape) or original(inps, **kw))
    ours.loglikelihood(instances(mc(SHOTS + "\n\nCountry: sun\nCapital:", ["the moon", "blue sky", "fire"])))
    assert calls == []
    ours.loglikelihood(instances(mc("the cat sat on the", ["mat", "dog", "sun"])))
    assert len(calls) == 1


def greedy_tokens(model, context: list[int], n: int) -> list[int]:
    ids = list(context)
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(context):]


def test_greedy_flags_and_left_truncation(tiny_model):
    """Token-level requests with greedy continuations, over a max_length that cuts every long context."""
    plain, ours = pair(tiny_model, 3, max_length=32)
    short = plain.tok_encode("the cat sat on the")
    long = plain.tok_encode(" ".join([SHOTS] * 3))
    assert len(long) > 3 * 32
    requests = []
    for n, context in enumerate([short, long, long[:40], long[:34]]):
        g = greedy_tokens(plain.model, kept_context(context, [0] * 3, 32), 3)
        for continuation in (g, g[:2] + [(g[2] + 1) % 500], [5, 6, 7], g[:2], [5, 6], [7, 8, 9, 10],
                             [11, 12, 13, 14], [11]):
            requests.append(((f"ctx{n}", str(continuation)), list(context), list(continuation)))
    expected = plain._loglikelihood_tokens(requests)
    assert any(g for _, g in expected) and not all(g for _, g in expected)
    # A cut context keeps fewer tokens for a longer continuation, so each length is its own group.
    groups, _ = plan(requests, 32)
    kept = {}
    for group in groups:
        for i, _ in group.members:
            kept.setdefault(requests[i][0][0], set()).add(len(group.context))
    assert kept["ctx1"] == {33 - 4, 33 - 3, 33 - 2}  # 33 = max_length + 1; one-token continuations: plain path
    assert kept["ctx0"] == {len(short)}
    assert_same(expected, ours._loglikelihood_tokens(requests))


def test_rolling_loglikelihood_is_plain(tiny_model):
    """All windows of all documents in one scorer call (backends/rolling.py) = HFLM's windows in document order:
    documents of one window and of several (max_length 24), more windows than one batch, an empty-ish text."""
    plain, ours = pair(tiny_model, 4, max_length=24)
    texts = [SHOTS, "the cat sat", SHOTS[:70], "a", SHOTS[40:] + " " + SHOTS, "red blue sky water fire earth"]
    requests = [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(t,), idx=0) for t in texts]
    assert ours.loglikelihood_rolling(requests) == pytest.approx(plain.loglikelihood_rolling(requests), abs=TOL)


def test_harness_eval_stores_plain_per_item_acc(tiny_model, tmp_path):
    """`harness eval` (build_hf, now SharedPrefixHFLM) stores per-item acc and logprobs equal to plain lm-eval's."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from harness.tasks.lmeval import prepare
    from harness.tasks.registry import builtin_tasks

    task, limit = "facts_capitals", 16
    env = os.environ | {"HARNESS_RESULTS": str(tmp_path), "HARNESS_DB": str(tmp_path / "h.duckdb")}
    done = subprocess.run([sys.executable, "-m", "harness.cli", "eval", "--models", str(tiny_model), "--tasks", task,
                           "--limit", str(limit), "--batch-size", "8", "--display", "none"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    stored_acc = dict(con.execute("SELECT doc_id, value FROM samples WHERE metric = 'acc'").fetchall())
    stored_ll = {(d, i): lp for d, i, lp in con.execute("SELECT doc_id, idx, logprob FROM requests").fetchall()}
    con.close()
    config = prepare(builtin_tasks()[task], tmp_path / "tasks").build_config()
    out = simple_evaluate(model=HFLM(pretrained=str(tiny_model), batch_size=8, device="cpu", dtype="float32"),
                          tasks=[config], task_manager=TaskManager(include_defaults=False), limit=limit,
                          log_samples=True, bootstrap_iters=0)
    samples = out["samples"][task]
    assert stored_acc == {s["doc_id"]: s["acc"] for s in samples}
    plain_ll = {(s["doc_id"], i): r[0][0] for s in samples for i, r in enumerate(s["resps"])}
    assert stored_ll.keys() == plain_ll.keys()
    for key, value in plain_ll.items():
        assert stored_ll[key] == pytest.approx(value, abs=TOL), key
