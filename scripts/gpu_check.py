"""GPU check: throughput and model FLOP utilisation of the harness HF backend's log-likelihood path.

Random Llama models of realistic shape (about 0.5B and 1.5B parameters, bf16) are built on the GPU and saved
as plain HF folders. Multiple-choice requests (half with single-token choices, half multi-token) then go
through the harness path: StoreCachedLM over build_hf's lm-eval HFLM, in store-sized chunks, each committed
to a DuckDB store, at several batch sizes. The same token rows that HFLM sent to the model are then run in
a bare torch forward loop (logits, log-softmax, gather) as the physical reference. MFU is counted against
the bf16 matmul peak measured in this same process, so it is comparable across machines.
`--cpu-smoke` shrinks everything so the code path runs on a CPU in a minute; its numbers mean nothing.
Writes <out>/gpu_check.json and prints a short table last. Run through scripts/gpu_check.sh.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

N_SPECIAL = 4  # <unk> (also HFLM's padding id 0, so padding is never a real token), <s>, </s>, <pad>


@dataclass(frozen=True)
class Shape:
    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int


GPU_SHAPES = [Shape("llama-0.5b", 1024, 24, 16, 8, 4096, 32000), Shape("llama-1.5b", 2048, 24, 16, 8, 7168, 32000)]
SMOKE_SHAPES = [Shape("smoke-a", 64, 2, 1, 1, 128, 600), Shape("smoke-b", 128, 2, 2, 1, 256, 600)]


def matmul_peak(device: str, dtype: torch.dtype, n: int, iters: int) -> float:
    """Best sustained FLOP/s of an n x n x n matmul in this dtype: the denominator of MFU."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = 0.0
    for _ in range(4):  # the first trial warms up kernels and clocks
        sync(device)
        start = time.perf_counter()
        for _ in range(iters):
            a @ b
        sync(device)
        best = max(best, 2 * n ** 3 * iters / (time.perf_counter() - start))
    return best


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def build_model(shape: Shape, out: Path, device: str, dtype: torch.dtype) -> dict:
    """A random Llama of this shape with a word-level tokenizer (one word, one token), saved as an HF folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3} | {f"w{i}": i for i in range(N_SPECIAL, shape.vocab)}
    words = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="<unk>", bos_token="<s>",
                                        eos_token="</s>", pad_token="<pad>")
    config = LlamaConfig(hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                         num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads,
                         intermediate_size=shape.intermediate, vocab_size=shape.vocab, max_position_embeddings=4096,
                         bos_token_id=1, eos_token_id=2, pad_token_id=3, tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=dtype)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    matmul = n_params - model.get_input_embeddings().weight.numel()  # the lookup is not a matmul
    matmul -= sum(p.numel() for name, p in model.named_parameters() if "norm" in name)
    del model
    return {"n_params": n_params, "matmul_params": matmul, "layers": shape.layers,
            "attn_dim": shape.hidden}


def make_requests(n_questions: int, context: tuple[int, int], vocab: int, seed: int = 0) -> list:
    """MC requests as lm-eval builds them: (question, " " + choice), 4 choices, half of them single tokens."""
    from lm_eval.api.instance import Instance

    rng = np.random.default_rng(seed)

    def words(n: int) -> str:
        return " ".join(f"w{t}" for t in rng.integers(N_SPECIAL, vocab, size=n))

    requests = []
    for doc in range(n_questions):
        question = words(int(rng.integers(*context)))
        lengths = [1] * 4 if doc % 2 == 0 else rng.integers(2, 9, size=4)
        for idx, length in enumerate(lengths):
            requests.append(Instance("loglikelihood", {}, (question, " " + words(int(length))), idx,
                                     ("gpu_check", doc, 1)))
    return requests


class RowRecorder:
    """Wraps HFLM._model_call to count padded tokens and, when asked, keep the exact rows it was sent."""

    def __init__(self):
        from lm_eval.models.huggingface import HFLM

        self.rows: list[list[int]] | None = None
        self.padded = 0
        original = HFLM._model_call

        def counted(lm, inps, *args, **kwargs):
            self.padded += inps.numel()
            if self.rows is not None:
                self.rows.extend([t for t in row if t != 0] for row in inps.tolist())
            return original(lm, inps, *args, **kwargs)

        HFLM._model_call = counted


def harness_pass(path: Path, requests: list, batch_size: int, chunk: int, device: str, dtype: str,
                 workdir: Path) -> float:
    """Seconds for StoreCachedLM(build_hf) to answer every request from an empty store."""
    from harness.backends import StoreCachedLM
    from transformers import AutoTokenizer

    from harness.backends.hf import build_hf, token_counter
    from harness.store import Store

    # plain HFLM: the torch reference recomputes the rows HFLM sends (bench_shared_prefix measures the shared path)
    inner = build_hf(path, batch_size, device, dtype, shared_prefix=False)
    count = token_counter(AutoTokenizer.from_pretrained(str(path)))
    store_path = workdir / f"check-{batch_size}-{time.monotonic_ns()}.duckdb"
    with Store.open(store_path) as store:
        lm = StoreCachedLM(lambda: inner, count, store, run_id="gpu_check", chunk_size=chunk)
        sync(device)
        start = time.perf_counter()
        lm.loglikelihood(requests)
        sync(device)
        seconds = time.perf_counter() - start
    store_path.unlink()
    del inner, lm
    if device == "cuda":
        torch.cuda.empty_cache()
    return seconds


def torch_pass(path: Path, rows: list[list[int]], batch_size: int, device: str, dtype: torch.dtype) -> float:
    """The same rows through a bare forward + log-softmax + gather, longest first, right-padded like HFLM."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    ordered = sorted(rows, key=len, reverse=True)
    sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(ordered), batch_size):
            batch = ordered[i:i + batch_size]
            ids = torch.zeros(len(batch), len(batch[0]), dtype=torch.long)
            for j, row in enumerate(batch):
                ids[j, :len(row)] = torch.tensor(row)
            ids = ids.to(device)
            logprobs = model(ids).logits.log_softmax(-1)
            logprobs[:, :-1].gather(-1, ids[:, 1:, None]).sum().item()
    sync(device)
    seconds = time.perf_counter() - start
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return seconds


def row_flops(rows: list[list[int]], info: dict) -> float:
    """Forward FLOPs: 2 per matmul weight per token, plus causal attention 2 * layers * dim * L^2 per row."""
    lengths = np.array([len(r) for r in rows], dtype=np.float64)
    return float(2 * info["matmul_params"] * lengths.sum() + 2 * info["layers"] * info["attn_dim"]
                 * (lengths ** 2).sum())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "results" / "gpu_check")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU: proves the code path")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated (default 8,32,64; smoke 4,8)")
    parser.add_argument("--questions", type=int, default=None, help="MC questions (default 512; smoke 12)")
    parser.add_argument("--chunk-size", type=int, default=256, help="requests per store chunk (harness default)")
    args = parser.parse_args()

    smoke = args.cpu_smoke
    if not smoke and not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible; use --cpu-smoke to exercise the code path on a CPU")
    device, dtype, dtype_name = ("cpu", torch.float32, "float32") if smoke else ("cuda", torch.bfloat16, "bfloat16")
    shapes = SMOKE_SHAPES if smoke else GPU_SHAPES
    batch_sizes = [int(b) for b in (args.batch_sizes or ("4,8" if smoke else "8,32,64")).split(",")]
    n_questions = args.questions or (12 if smoke else 512)
    context = (16, 48) if smoke else (256, 640)

    started = time.perf_counter()
    peak = matmul_peak(device, dtype, 256 if smoke else 8192, 4 if smoke else 50)
    recorder = RowRecorder()
    report = {"device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
              "torch": torch.__version__, "dtype": dtype_name, "cpu_smoke": smoke, "chunk_size": args.chunk_size,
              "matmul_peak_tflops": peak / 1e12, "questions": n_questions, "context_tokens": list(context),
              "flops_convention": "2 x matmul weights per token (lm_head included, embedding lookup not) "
                                  "+ causal attention 2 x layers x hidden x L^2 per row", "models": []}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for shape in shapes:
            path = workdir / shape.name
            info = build_model(shape, path, device, dtype)
            requests = make_requests(n_questions, context, shape.vocab)
            recorder.rows = []  # warm-up pass: records the rows HFLM computes (batching does not change them)
            harness_pass(path, requests, batch_sizes[0], args.chunk_size, device, dtype_name, workdir)
            rows, recorder.rows = recorder.rows, None
            tokens, flops = sum(len(r) for r in rows), row_flops(rows, info)
            runs = []
            for batch_size in batch_sizes:
                recorder.padded = 0
                harness_s = harness_pass(path, requests, batch_size, args.chunk_size, device, dtype_name, workdir)
                padded = recorder.padded
                torch_s = torch_pass(path, rows, batch_size, device, dtype)
                runs.append({"batch_size": batch_size, "harness_seconds": harness_s, "torch_seconds": torch_s,
                             "padded_tokens": padded, "harness_tokens_per_s": tokens / harness_s,
                             "torch_tokens_per_s": tokens / torch_s, "harness_mfu": flops / harness_s / peak,
                             "torch_mfu": flops / torch_s / peak, "harness_over_torch": torch_s / harness_s})
            report["models"].append({"name": shape.name, **info, "requests": len(requests), "rows": len(rows),
                                     "tokens": tokens, "flops": flops, "runs": runs})
    report["seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print_table(report)


def print_table(report: dict) -> None:
    print(f"\n{report['device']} · {report['dtype']} · matmul peak {report['matmul_peak_tflops']:.3g} TFLOP/s"
          f" · {report['seconds']:.0f} s")
    print(f"{'model':12} {'params':>7} {'batch':>5} {'harness tok/s':>14} {'MFU':>6} {'torch tok/s':>12} {'MFU':>6}"
          f" {'h/t':>5}")
    for model in report["models"]:
        for run in model["runs"]:
            print(f"{model['name']:12} {model['n_params'] / 1e9:6.2f}B {run['batch_size']:5d}"
                  f" {run['harness_tokens_per_s']:14,.0f} {run['harness_mfu']:6.1%}"
                  f" {run['torch_tokens_per_s']:12,.0f} {run['torch_mfu']:6.1%} {run['harness_over_torch']:5.2f}")


if __name__ == "__main__":
    main()
