"""Benchmark: requests/s of harness-hf, harness-vllm, plain lm-eval hf and plain lm-eval vllm, per task kind.

Same model (SmolLM2-135M, float32), same tasks and items for all four. Each system runs in its own child
process, the four in turn, `repeats` times; models and engines are built and warmed up (one small job) outside
the timing, and each task is timed on its own, so the single-token MC task, the multi-token MC task and
perplexity each get their own ratios (medians over repeats). vLLM here is the CPU build: when this venv has no
vllm, the vLLM children run in .venv-vllm (`make test-vllm` builds it). Writes results/bench/backends.json.
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

from harness.evaluation.config import EvalSettings  # noqa: E402
from harness.evaluation.environment import environment  # noqa: E402
from harness.weights.models import materialize, resolve  # noqa: E402
from harness.evaluation.runner import Runner  # noqa: E402
from harness.store import Store  # noqa: E402
from harness.tasks.lmeval import prepare  # noqa: E402
from harness.tasks.registry import builtin_tasks  # noqa: E402
from harness.tasks.spec import BuiltinTask  # noqa: E402

MODEL = "smollm2-135m"
SYSTEMS = ("lm_eval-hf", "harness-hf", "lm_eval-vllm", "harness-vllm")
TASKS = {"compare_yes_no": "single-token MC", "facts_capitals": "multi-token MC", "english_flores": "perplexity"}
RESULTS = REPO / "results"
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
WARMUP = BuiltinTask("bench_warmup", "builds the model before the timed jobs", "1", "multiple_choice",
                     lambda: [{"question": "Is the sky blue?", "choices": ["yes", "no"], "answer": 0}] * 2)


def warmup_then_tasks() -> list:
    return [prepare(task, RESULTS / "tasks") for task in [WARMUP, *(builtin_tasks()[name] for name in TASKS)]]


def time_harness(backend: str, args) -> dict[str, tuple[float, int]]:
    """Seconds and requests per task, from the runner's own per-job timing (the warm-up job builds the model)."""
    settings = EvalSettings(backend=backend, batch_size=args.batch_size, limit=args.limit, enforce_eager=True)
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "bench.duckdb") as store:
        outcomes = Runner(store, settings, RESULTS).run([resolve(MODEL)], warmup_then_tasks())
    assert all(o.status == "done" for o in outcomes), outcomes
    return {o.task: (o.seconds, o.n_cached + o.n_computed) for o in outcomes[1:]}


def time_lm_eval(backend: str, args) -> dict[str, tuple[float, int]]:
    """Plain lm_eval.simple_evaluate on an LM built beforehand, the same warm-up job first, one task at a time."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    path = materialize(resolve(MODEL), RESULTS / "models").path
    if backend == "hf":
        from lm_eval.models.huggingface import HFLM

        lm = HFLM(pretrained=str(path), batch_size=args.batch_size, device="cpu", dtype="float32")
    else:
        from lm_eval.models.vllm_causallms import VLLM

        lm = VLLM(pretrained=str(path), dtype="float32", enforce_eager=True, batch_size="auto")
    timings = {}
    for task in warmup_then_tasks():
        start = time.perf_counter()
        out = simple_evaluate(model=lm, tasks=[task.build_config()], task_manager=TaskManager(include_defaults=False),
                              limit=args.limit, log_samples=True, bootstrap_iters=0)
        seconds = time.perf_counter() - start
        timings[task.name] = (seconds, sum(len(s["resps"]) for s in out["samples"][task.name]))
    return {name: timings[name] for name in TASKS}


def run_system(system: str, args) -> dict[str, tuple[float, int]]:
    """One pass of one system in a fresh process: vLLM tears down process-wide state when an engine is freed,
    so two engines must never share a process. The vLLM systems use .venv-vllm when vllm is not here."""
    python = sys.executable
    if system.endswith("vllm") and importlib.util.find_spec("vllm") is None:
        if not VLLM_PYTHON.is_file():
            raise SystemExit(f"no vllm here and no {VLLM_PYTHON}: run `make test-vllm` once to build it")
        python = str(VLLM_PYTHON)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "timings.json"
        subprocess.run([python, __file__, "--system", system, "--system-out", str(out), "--limit", str(args.limit),
                        "--batch-size", str(args.batch_size)], check=True)
        return {task: tuple(value) for task, value in json.loads(out.read_text()).items()}


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
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)  # a child: one pass of one system
    parser.add_argument("--system-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.system:
        runner, backend = args.system.split("-")
        timings = (time_harness if runner == "harness" else time_lm_eval)(backend, args)
        args.system_out.write_text(json.dumps(timings))
        return
    materialize(resolve(MODEL), RESULTS / "models")  # convert once, before any child needs it
    passes: dict[str, list[dict]] = {system: [] for system in SYSTEMS}
    for _ in range(args.repeats):  # systems alternate, so a change in machine load hits all of them
        for system in SYSTEMS:
            passes[system].append(run_system(system, args))
    rates = {}
    for system, timings in passes.items():
        for task in TASKS:
            seconds = [t[task][0] for t in timings]
            requests = timings[0][task][1]
            rates[f"{system}/{task}"] = {"seconds": seconds, "requests": requests,
                                         "requests_per_second": requests / statistics.median(seconds)}
    report = {
        "benchmark": "requests/s per task: harness eval (hf, vllm) vs plain lm_eval.simple_evaluate (hf, vllm); "
                     "models built and warmed up outside the timing; vLLM is the CPU build (vllm-cpu), "
                     "in-process engine, enforce_eager",
        "model": MODEL, "dtype": "float32", "tasks": TASKS, "limit": args.limit, "batch_size_hf": args.batch_size,
        "repeats": args.repeats, "systems": rates, "ratios": ratios(rates), "environment": environment(),
    }
    out = RESULTS / "bench" / "backends.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({task: {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}
                      for task, row in report["ratios"].items()}, indent=2))


if __name__ == "__main__":
    main()
