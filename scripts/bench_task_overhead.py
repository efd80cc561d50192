"""Benchmark: the fixed cost of one task beyond the model work (issue 16: a 57-leaf group must not pay a
per-leaf overhead; target <= 0.1 s per leaf).

Every answer is in the store first, so each timed call is lm-eval building the task, its requests and its
metrics around StoreCachedLM, and nothing else. `harness` is our lm_eval_run; `lm_eval_default` is the same
simple_evaluate call with lm-eval's per-call environment report left on, side by side in this process.
Writes results/bench/task_overhead.json. Usage: python scripts/bench_task_overhead.py [--limit N] [--repeats R]
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

from harness.backends import StoreCachedLM  # noqa: E402
from harness.evaluation.config import EvalSettings  # noqa: E402
from harness.evaluation.environment import environment  # noqa: E402
from harness.evaluation.recorder import lm_eval_run, quiet_lm_eval  # noqa: E402
from harness.evaluation.runner import Runner  # noqa: E402
from harness.store import Store  # noqa: E402
from harness.tasks.lmeval import prepare  # noqa: E402
from harness.tasks.registry import builtin_tasks  # noqa: E402
from harness.weights.models import resolve  # noqa: E402

RESULTS = Path("results")


def _no_model():
    raise RuntimeError("an answer was missing: the benchmark must time scoring only")


def timed_calls(store: Store, run_ids: dict[str, str], configs: dict[str, dict], settings: EvalSettings,
                plain: bool) -> dict[str, float]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_defaults=False)
    seconds = {}
    for name, config in configs.items():
        lm = StoreCachedLM(_no_model, lambda a, b: 0, store, run_ids[name], chunk_size=settings.chunk_size)
        start = time.perf_counter()
        if plain:
            simple_evaluate(model=lm, tasks=[config], task_manager=manager, limit=settings.limit, log_samples=True,
                            bootstrap_iters=settings.bootstrap_iters)
        else:
            lm_eval_run(lm, config, manager, settings)
        seconds[name] = time.perf_counter() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    quiet_lm_eval()
    settings = EvalSettings(limit=args.limit, batch_size=16, backend="hf", dtype="float32")
    tasks = [prepare(task, RESULTS / "tasks") for task in builtin_tasks().values()]
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "bench.duckdb") as store:
        outcomes = Runner(store, settings, RESULTS).run([resolve("smollm2-135m")], tasks)  # every answer stored
        assert all(o.status == "done" for o in outcomes), outcomes
        runs = store.query("SELECT t.name, r.run_id FROM runs r JOIN tasks t USING (task_id)")
        run_ids = dict(zip(runs["name"], runs["run_id"]))
        configs = {task.name: task.build_config() for task in tasks}
        per_task: dict[str, list[float]] = {"harness": [], "lm_eval_default": []}
        for _ in range(args.repeats):  # alternate, so both see the same load
            for side in per_task:
                calls = timed_calls(store, run_ids, configs, settings, plain=side == "lm_eval_default")
                per_task[side].append(statistics.median(calls.values()))
    report = {
        "benchmark": "fixed cost per task beyond model work (every answer cached), median over tasks",
        "tasks": len(tasks), "limit": args.limit, "repeats": args.repeats, "seconds_per_task": per_task,
        "median_seconds_per_task": {k: statistics.median(v) for k, v in per_task.items()},
        "target_seconds_per_leaf": 0.1, "environment": environment(),
    }
    out = RESULTS / "bench" / "task_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["median_seconds_per_task"], indent=2))


if __name__ == "__main__":
    main()
