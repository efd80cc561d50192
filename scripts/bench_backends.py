"""Benchmark: requests/s of harness-hf, harness-vllm, plain lm-eval hf and plain lm-eval vllm, per task kind.

Same model (SmolLM2-135M, float32), same tasks and items for all four. Models and engines are built once
and left out of the timing (a warm-up job runs first on every system); each task is timed on its own, so the
single-token MC task, the multi-token MC task and perplexity each get their own ratios. vLLM here is the
CPU build: when this venv has no vllm, the vLLM half runs in .venv-vllm (`make test-vllm` builds it) as a
subprocess of this script. Writes results/bench/backends.json.
Usage: python scripts/bench_backends.py [--limit N] [--repeats R]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# lm-eval's VLLM turns on vLLM's progress bar, which divides by its elapsed time: a disabled tqdm reports 0.
# tqdm reads TQDM_* once, at import, so it is cleared before anything imports it.
os.environ.pop("TQDM_DISABLE", None)
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.config import EvalSettings  # noqa: E402
from harness.environment import environment  # noqa: E402
from harness.models import materialize, resolve  # noqa: E402
from harness.runner import Runner  # noqa: E402
from harness.store import Store  # noqa: E402
from harness.tasks.lmeval import PreparedTask, prepare  # noqa: E402
from harness.tasks.registry import builtin_tasks  # noqa: E402
from harness.tasks.spec import BuiltinTask  # noqa: E402

TASKS = {"compare_yes_no": "single-token MC", "facts_capitals": "multi-token MC", "english_flores": "perplexity"}
RESULTS = REPO / "results"
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
WARMUP = BuiltinTask("bench_warmup", "builds the model before the timed jobs", "1", "multiple_choice",
                     lambda: [{"question": "Is the sky blue?", "choices": ["yes", "no"], "answer": 0}] * 2)


def time_harness(backend: str, model_ref, prepared: list[PreparedTask], args) -> dict[str, tuple[float, int]]:
    """Seconds and requests per task, from the runner's own per-job timing (the warm-up job builds the model)."""
    settings = EvalSettings(backend=backend, batch_size=args.batch_size, limit=args.limit, enforce_eager=True)
    warmup = prepare(WARMUP, RESULTS / "tasks")
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "bench.duckdb") as store:
        outcomes = Runner(store, settings, RESULTS).run([model_ref], [warmup, *prepared])
    assert all(o.status == "done" for o in outcomes), outcomes
    return {o.task: (o.seconds, o.n_cached + o.n_computed) for o in outcomes[1:]}


def time_lm_eval(lm, prepared: list[PreparedTask], args) -> dict[str, tuple[float, int]]:
    """Plain lm_eval.simple_evaluate on an already built LM, one task at a time, after the same warm-up job."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    simple_evaluate(model=lm, tasks=[prepare(WARMUP, RESULTS / "tasks").config],
                    task_manager=TaskManager(include_defaults=False), bootstrap_iters=0)
    timings = {}
    for task in prepared:
        start = time.perf_counter()
        out = simple_evaluate(model=lm, tasks=[task.config], task_manager=TaskManager(include_defaults=False),
                              limit=args.limit, log_samples=True, bootstrap_iters=0)
        seconds = time.perf_counter() - start
        timings[task.task.name] = (seconds, sum(len(s["resps"]) for s in out["samples"][task.task.name]))
    return timings


def plain_lm(backend: str, path: Path, args):
    if backend == "hf":
        from lm_eval.models.huggingface import HFLM

        return HFLM(pretrained=str(path), batch_size=args.batch_size, device="cpu", dtype="float32")
    from lm_eval.models.vllm_causallms import VLLM

    return VLLM(pretrained=str(path), dtype="float32", enforce_eager=True, batch_size="auto")


def measure(backend: str, args) -> dict:
    """Both systems on one backend, alternating per repeat; median seconds per task."""
    ref = resolve("smollm2-135m")
    model = materialize(ref, RESULTS / "models")
    prepared = [prepare(builtin_tasks()[name], RESULTS / "tasks") for name in TASKS]
    lm = plain_lm(backend, model.path, args)
    runs: dict[str, list[dict]] = {"harness": [], "lm_eval": []}
    for _ in range(args.repeats):
        runs["lm_eval"].append(time_lm_eval(lm, prepared, args))
        runs["harness"].append(time_harness(backend, ref, prepared, args))
    report = {}
    for system, timings in runs.items():
        for task in TASKS:
            seconds = statistics.median(t[task][0] for t in timings)
            requests = timings[0][task][1]
            report[f"{system}-{backend}/{task}"] = {"seconds": [t[task][0] for t in timings], "requests": requests,
                                                    "requests_per_second": requests / seconds}
    return report


def vllm_half(args) -> dict:
    if importlib.util.find_spec("vllm") is not None:
        return measure("vllm", args)
    if not VLLM_PYTHON.is_file():
        raise SystemExit(f"no vllm here and no {VLLM_PYTHON}: run `make test-vllm` once to build it")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "vllm.json"
        subprocess.run([str(VLLM_PYTHON), __file__, "--only-vllm", str(out), "--limit", str(args.limit),
                        "--repeats", str(args.repeats), "--batch-size", str(args.batch_size)], check=True)
        return json.loads(out.read_text())


def ratios(rates: dict) -> dict:
    """Per task: every system's requests/s over plain lm-eval hf, and each harness backend over its plain twin."""
    table = {}
    for task in TASKS:
        rps = {system: rates[f"{system}/{task}"]["requests_per_second"]
               for system in ("harness-hf", "harness-vllm", "lm_eval-hf", "lm_eval-vllm")}
        table[task] = {
            "kind": TASKS[task],
            "harness-hf / lm_eval-hf": rps["harness-hf"] / rps["lm_eval-hf"],
            "harness-vllm / lm_eval-vllm": rps["harness-vllm"] / rps["lm_eval-vllm"],
            "harness-vllm / lm_eval-hf": rps["harness-vllm"] / rps["lm_eval-hf"],
            "lm_eval-vllm / lm_eval-hf": rps["lm_eval-vllm"] / rps["lm_eval-hf"],
            "best harness / best lm_eval": max(rps["harness-hf"], rps["harness-vllm"])
            / max(rps["lm_eval-hf"], rps["lm_eval-vllm"]),
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--only-vllm", type=Path, help=argparse.SUPPRESS)  # the subprocess half
    args = parser.parse_args()
    if args.only_vllm:
        args.only_vllm.write_text(json.dumps(measure("vllm", args)))
        return
    rates = measure("hf", args) | vllm_half(args)
    report = {
        "benchmark": "requests/s per task: harness eval (hf, vllm) vs plain lm_eval.simple_evaluate (hf, vllm); "
                     "models built outside the timing; vLLM is the CPU build (vllm-cpu), in-process engine",
        "model": "smollm2-135m", "dtype": "float32", "tasks": TASKS, "limit": args.limit,
        "batch_size_hf": args.batch_size, "repeats": args.repeats, "systems": rates, "ratios": ratios(rates),
        "environment": environment(),
    }
    out = RESULTS / "bench" / "backends.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({task: {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}
                      for task, row in report["ratios"].items()}, indent=2))


if __name__ == "__main__":
    main()
