"""Benchmark: `harness eval` vs plain lm-eval on the same model, tasks and batch size; store ingest speed.

Both sides run in this one process, alternately, so the ratio is measured under the same load.
Writes results/bench/eval.json. Usage: python scripts/bench_eval.py [--limit N] [--repeats R]
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from harness.evaluation.config import EvalSettings  # noqa: E402
from harness.evaluation.environment import environment  # noqa: E402
from harness.weights.models import materialize, resolve  # noqa: E402
from harness.evaluation.runner import Runner  # noqa: E402
from harness.store import Store  # noqa: E402
from harness.tasks.lmeval import prepare  # noqa: E402
from harness.tasks.registry import builtin_tasks  # noqa: E402

TASKS = ("compare_yes_no", "facts_capitals")  # one single-token, one multi-token MC task
RESULTS = Path("results")


def plain_lm_eval(model_path: Path, configs: list[dict], settings: EvalSettings) -> int:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=str(model_path), batch_size=settings.batch_size, device="cpu", dtype=settings.dtype)
    out = simple_evaluate(model=lm, tasks=configs, task_manager=TaskManager(include_defaults=False),
                          limit=settings.limit, log_samples=True, bootstrap_iters=settings.bootstrap_iters)
    return sum(len(s["resps"]) for samples in out["samples"].values() for s in samples)


def harness_eval(model_ref, prepared, settings: EvalSettings, workdir: Path) -> int:
    with Store.open(workdir / "bench.duckdb") as store:
        outcomes = Runner(store, settings, RESULTS).run([model_ref], prepared)
    assert all(o.status == "done" for o in outcomes), outcomes
    return sum(o.n_cached + o.n_computed for o in outcomes)  # requests answered, as lm-eval counts them


def bench_ingest(n_rows: int) -> dict:
    rng = np.random.default_rng(0)
    rows = pa.table({
        "run_id": pa.array(np.repeat([f"run{i:04d}" for i in range(n_rows // 10_000)], 10_000)),
        "doc_id": pa.array(np.tile(np.arange(2_500, dtype=np.int32), n_rows // 2_500)),
        "metric": pa.array(np.tile(["acc", "acc_norm", "acc_bytes", "acc_per_token"], n_rows // 4)),
        "value": pa.array(rng.random(n_rows)),
    })
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "ingest.duckdb") as store:
        start = time.perf_counter()
        store.ingest("samples", rows)
        seconds = time.perf_counter() - start
        assert store.count("samples") == n_rows
    return {"rows": n_rows, "seconds": seconds, "rows_per_second": n_rows / seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    settings = EvalSettings(batch_size=args.batch_size, limit=args.limit)
    ref = resolve("smollm2-135m")
    model = materialize(ref, RESULTS / "models")
    prepared = [prepare(builtin_tasks()[name], RESULTS / "tasks") for name in TASKS]
    timings: dict[str, list[float]] = {"harness": [], "lm_eval": []}
    n_requests = {}
    for _ in range(args.repeats):
        start = time.perf_counter()
        n_requests["lm_eval"] = plain_lm_eval(model.path, [p.build_config() for p in prepared], settings)
        timings["lm_eval"].append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            n_requests["harness"] = harness_eval(ref, prepared, settings, Path(tmp))
            timings["harness"].append(time.perf_counter() - start)
    rps = {k: n_requests[k] / statistics.median(v) for k, v in timings.items()}
    report = {
        "benchmark": "harness eval vs plain lm_eval.simple_evaluate (hf backend, same model/tasks/batch)",
        "model": "smollm2-135m", "tasks": list(TASKS), "limit": args.limit, "batch_size": args.batch_size,
        "repeats": args.repeats, "seconds": timings, "requests": n_requests, "requests_per_second": rps,
        "ratio_harness_over_lm_eval": rps["harness"] / rps["lm_eval"],
        "ingest": bench_ingest(2_000_000),
        "environment": environment(),
    }
    out = RESULTS / "bench" / "eval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("requests_per_second", "ratio_harness_over_lm_eval", "ingest")},
                     indent=2))


if __name__ == "__main__":
    main()
