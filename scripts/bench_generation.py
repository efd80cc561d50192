"""Benchmark: `generate_until` through `harness eval` vs plain `lm_eval.simple_evaluate` (issue 16: >= 0.9x the
plain generations per second), same model (SmolLM2-135M), backend (hf), batch size and items, alternately in one
process so the ratio is measured under the same load.

The task is lm-eval's own gsm8k YAML, unmodified, on made-up rows in gsm8k's schema written to a temporary datasets
cache (tests/fake_datasets.py), so it runs offline. Writes results/bench/generation.json.
Usage: python scripts/bench_generation.py [--items N] [--max-gen-toks T] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

CACHE = tempfile.mkdtemp(prefix="bench-datasets-")
os.environ["HF_DATASETS_CACHE"] = CACHE  # read by `datasets` at import
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.evaluation.config import EvalSettings  # noqa: E402
from harness.evaluation.environment import environment  # noqa: E402
from harness.evaluation.recorder import quiet_lm_eval  # noqa: E402
from harness.evaluation.runner import Runner  # noqa: E402
from harness.store import Store  # noqa: E402
from harness.tasks.registry import resolve_tasks  # noqa: E402
from harness.weights.models import materialize, resolve  # noqa: E402
from tests.fake_datasets import gsm8k_rows, write_prepared  # noqa: E402

RESULTS = Path("results")


def plain(model_path: Path, settings: EvalSettings) -> int:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(model_path), batch_size=settings.batch_size, device="cpu", dtype=settings.dtype)
    out = simple_evaluate(model=lm, tasks=["gsm8k"], num_fewshot=0, gen_kwargs=settings.gen_kwargs,
                          limit=settings.limit, log_samples=True, bootstrap_iters=settings.bootstrap_iters)
    return len({s["doc_id"] for s in out["samples"]["gsm8k"]})  # a sample per doc and filter: count docs


def ours(ref, settings: EvalSettings, workdir: Path) -> int:
    plan = resolve_tasks(["gsm8k"], RESULTS / "tasks", ())
    with Store.open(workdir / "bench.duckdb") as store:
        [outcome] = Runner(store, settings, RESULTS).run([ref], plan.tasks, plan.members)
    assert outcome.status == "done" and outcome.n_cached == 0, outcome
    return outcome.n_computed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--max-gen-toks", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    quiet_lm_eval()
    write_prepared(Path(CACHE), "openai/gsm8k", "main", {"train": gsm8k_rows(8), "test": gsm8k_rows(args.items)})
    settings = EvalSettings(backend="hf", dtype="float32", batch_size=args.batch_size, limit=args.items,
                            num_fewshot=0, gen_kwargs={"max_gen_toks": args.max_gen_toks}, bootstrap_iters=0)
    ref = resolve("smollm2-135m")
    model = materialize(ref, RESULTS / "models")
    seconds: dict[str, list[float]] = {"harness": [], "lm_eval": []}
    generations = {}
    for _ in range(args.repeats):
        start = time.perf_counter()
        generations["lm_eval"] = plain(model.path, settings)
        seconds["lm_eval"].append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            generations["harness"] = ours(ref, settings, Path(tmp))
            seconds["harness"].append(time.perf_counter() - start)
    per_second = {side: generations[side] / statistics.median(s) for side, s in seconds.items()}
    report = {
        "benchmark": "generate_until (lm-eval's gsm8k YAML) through harness eval vs plain simple_evaluate, hf backend",
        "model": "smollm2-135m", "items": args.items, "max_gen_toks": args.max_gen_toks,
        "batch_size": args.batch_size, "repeats": args.repeats, "seconds": seconds, "generations": generations,
        "generations_per_second": per_second, "ratio_harness_over_lm_eval": per_second["harness"] / per_second["lm_eval"],
        "target_ratio": 0.9, "environment": environment(),
    }
    out = RESULTS / "bench" / "generation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("generations_per_second", "ratio_harness_over_lm_eval")}, indent=2))


if __name__ == "__main__":
    main()
