"""Benchmark: `harness view` page render times on a large synthetic store, and the server's peak memory.

Builds a store of MODELS x TASKS finished runs (one in ten models a pruned variant of a base model; the tasks in
groups of ten, stored as lm-eval groups) with ITEMS per-item 0/1 samples per run, and prompts and choices for the
first REQUEST_MODELS models; then starts `harness view` on it in its own process and times each page over HTTP: the
first request (which computes what the page derives from the store: the comparable runs and items, the ranking) and
the median of the next REPEATS. The server's peak RSS is read from /proc (VmHWM) at the end.
Writes results/bench/view.json.
Usage: python scripts/bench_view.py [--models 10000] [--tasks 60] [--items 17] [--request-models 100] [--repeats 3]
(the default 10,000 x 60 x 17 is 10.2M samples; --keep keeps the store for `harness view --db`).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from harness.store import Store  # noqa: E402

GROUP_SIZE = 10
CHOICES = 4
SETTINGS = json.dumps({"dtype": "float32", "device": "cpu", "num_fewshot": 0})


def build(db: Path, n_models: int, n_tasks: int, n_items: int, request_models: int, seed: int = 0) -> dict:
    """Write the synthetic store in bulk (Arrow); returns its row counts."""
    rng = np.random.default_rng(seed)
    models = [f"model-{i:05d}" for i in range(n_models)]
    tasks = [f"task_{i:02d}" for i in range(n_tasks)]
    groups = [f"group_{i // GROUP_SIZE}" for i in range(n_tasks)]
    base = [i - i % 10 for i in range(n_models)]  # model 10k+j (j > 0) is a variant of model 10k
    ids = [f"id-{i:05d}" for i in range(n_models)]
    with Store.open(db) as store:
        store._insert("models", pa.table({
            "model_id": ids, "name": models, "namespace": [""] * n_models,
            "kind": ["base" if base[i] == i else "variant" for i in range(n_models)],
            "origin": ["synthetic"] * n_models, "fingerprint": [f"fp-{i:05d}" for i in range(n_models)],
            "n_params": pa.array([135_000_000] * n_models, pa.int64()),
            "parents": pa.array([[] if base[i] == i else [ids[base[i]]] for i in range(n_models)], pa.list_(pa.string())),
            "recipe": [None if base[i] == i else json.dumps({"method": "wanda", "achieved_sparsity": 0.1 * (i % 10)})
                       for i in range(n_models)]}))
        store._insert("tasks", pa.table({
            "task_id": [f"{t}@h" for t in tasks], "name": tasks, "version": ["1"] * n_tasks,
            "origin": ["builtin"] * n_tasks, "config_hash": [f"h-{t}" for t in tasks],
            "primary_metric": ["acc"] * n_tasks, "higher_is_better": [True] * n_tasks,
            "n_items": pa.array([n_items] * n_tasks, pa.int32()), "config": ["{}"] * n_tasks}))
        rule = json.dumps([{"metric": "acc", "aggregation": "mean", "weight_by_size": True}])
        store._insert("task_groups", pa.table({"group_name": groups, "member": tasks, "rule": [rule] * n_tasks}))
        skill = rng.normal(0, 1, n_models)
        difficulty = rng.normal(0, 1, (n_tasks, n_items))
        samples = runs = 0
        now = int(time.time())
        for m0 in range(0, n_models, 500):  # 500 models at a time keeps memory small
            block = range(m0, min(m0 + 500, n_models))
            run_ids = [f"r{m:05d}-{t:02d}" for m in block for t in range(n_tasks)]
            logits = skill[list(block), None, None] - difficulty[None, :, :]
            right = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype(np.float64)
            n = len(run_ids)
            store._insert("runs", pa.table({
                "run_id": run_ids, "model_id": [ids[m] for m in block for _ in range(n_tasks)],
                "task_id": [f"{t}@h" for _ in block for t in tasks], "backend": ["hf"] * n,
                "backend_args": [SETTINGS] * n, "item_limit": pa.array([None] * n, pa.int32()),
                "status": ["done"] * n, "started_at": pa.array([now - 60] * n, pa.timestamp("s", tz="UTC")),
                "finished_at": pa.array([now] * n, pa.timestamp("s", tz="UTC")), "n_requests": pa.array([n_items * CHOICES] * n, pa.int32()),
                "n_cached": pa.array([0] * n, pa.int32()), "n_computed": pa.array([n_items * CHOICES] * n, pa.int32()),
                "answer_scope": run_ids}))
            flat = right.reshape(n, n_items)
            store.ingest("samples", pa.table({
                "run_id": np.repeat(np.array(run_ids), n_items), "doc_id": pa.array(np.tile(np.arange(n_items), n),
                                                                                    pa.int32()),
                "metric": ["acc"] * flat.size, "value": flat.ravel()}))
            store.ingest("scores", pa.table({
                "run_id": run_ids, "metric": ["acc"] * n, "value": flat.mean(axis=1),
                "stderr": flat.std(axis=1) / np.sqrt(n_items), "n": pa.array([n_items] * n, pa.int32())}))
            if m0 < request_models:
                _requests(store, [r for r in run_ids if int(r[1:6]) < request_models], flat, run_ids, n_items)
            samples += flat.size
            runs += n
    return {"models": n_models, "tasks": n_tasks, "items_per_task": n_items, "runs": runs, "samples": samples,
            "models_with_prompts": min(request_models, n_models)}


def _requests(store: Store, wanted: list[str], flat: np.ndarray, run_ids: list[str], n_items: int) -> None:
    """Prompts and four choices per item (the gold one the likeliest where the sample is right)."""
    import hashlib

    index = {r: i for i, r in enumerate(run_ids)}
    texts, rows = {}, {k: [] for k in ("run_id", "req_hash", "request_type", "doc_id", "idx", "logprob", "is_greedy",
                                       "context_sha", "continuation_sha")}
    for run in wanted:
        task = int(run[-2:])
        for doc in range(n_items):
            prompt = f"Question {doc} of task {task}: what is {doc} + {task}?\nAnswer:"
            psha = hashlib.sha256(prompt.encode()).hexdigest()
            texts[psha] = prompt
            right = flat[index[run], doc] == 1.0
            for idx in range(CHOICES):
                choice = f" {doc + task + idx}"
                csha = hashlib.sha256(choice.encode()).hexdigest()
                texts[csha] = choice
                rows["run_id"].append(run)
                rows["req_hash"].append(f"{run}-{doc}-{idx}")
                rows["request_type"].append("loglikelihood")
                rows["doc_id"].append(doc)
                rows["idx"].append(idx)
                rows["logprob"].append(-1.0 - idx * 0.5 if right else -1.0 - (CHOICES - idx) * 0.5)
                rows["is_greedy"].append(False)
                rows["context_sha"].append(psha)
                rows["continuation_sha"].append(csha)
    rows["doc_id"] = pa.array(rows["doc_id"], pa.int32())
    rows["idx"] = pa.array(rows["idx"], pa.int32())
    store.ingest("requests", pa.table(rows))
    store._insert("texts", pa.table({"text_sha": list(texts), "text": list(texts.values())}), ignore_duplicates=True)
    gold = pa.table({"run_id": [r for r in wanted for _ in range(n_items)],
                     "doc_id": pa.array([d for _ in wanted for d in range(n_items)], pa.int32()),
                     "metric": ["gold_index"] * (len(wanted) * n_items), "value": [0.0] * (len(wanted) * n_items)})
    store.ingest("samples", gold)


def trials(db: Path) -> None:
    rng = np.random.default_rng(1)
    rows = [("bench", opt, f"bbob-f{t}-d2", seed, trial, "{}", float(rng.random() * (1 + k)), 1.0, 0.01)
            for k, opt in enumerate(["random", "optuna-tpe", "optuna-cmaes"]) for t in (1, 6, 8, 12, 15)
            for seed in range(3) for trial in range(20)]
    names = ["study", "optimizer", "task", "seed", "trial", "config", "cost", "budget", "wall_time"]
    with Store.open(db) as store:
        store.ingest("hpo_trials", pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)}))


def pages(n_models: int, n_tasks: int) -> list[tuple[str, str]]:
    last = f"model-{n_models - 1:05d}"
    variant = "model-00001" if n_models > 1 else "model-00000"
    return [
        ("leaderboard (mwr, first page; cold = comparable runs and items + ranking)", "/"),
        ("leaderboard, last page", f"/?page={max(1, -(-n_models // 50))}"),
        ("leaderboard sorted by a task", "/?" + urlencode({"sort": "task:task_07", "order": "desc"})),
        ("leaderboard filtered by name", "/?q=model-0004"),
        ("leaderboard variants only", "/?kind=variant"),
        ("leaderboard mean", "/?method=mean"),
        ("leaderboard borda", "/?method=borda"),
        ("leaderboard one group (group level)", "/?" + urlencode({"tasks": "group_0"})),
        ("leaderboard one group (leaf level)", "/?" + urlencode({"tasks": "group_0", "level": "leaf"})),
        ("model page (a base model with 9 variants)", "/model?name=model-00000"),
        ("model page (a variant)", f"/model?name={variant}"),
        ("tasks page", "/tasks"),
        ("task page (SNR, distribution, difficulty, separating items)", "/task?name=task_03"),
        ("samples page (prompts and choices)", "/samples?model=model-00000&task=task_00"),
        ("samples page, wrong answers", "/samples?model=model-00000&task=task_00&wrong=1"),
        ("samples page (a model without stored prompts)", f"/samples?model={last}&task=task_01"),
        ("diff page (paired tests on every task)", f"/diff?a=model-00000&b={variant}"),
        ("optimizers page", "/optimizers"),
    ]


def fetch(url: str) -> tuple[float, int, int]:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=1800) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    return time.perf_counter() - start, status, len(body)


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--items", type=int, default=17, help="items per task (samples = models x tasks x items)")
    parser.add_argument("--request-models", type=int, default=100, help="models whose prompts and choices are stored")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default="", help="extra methods to time on the leaderboard, e.g. bt,csd")
    parser.add_argument("--keep", type=Path, default=None, help="build the store here and keep it")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "view.json")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-view-"))
    db = args.keep or folder / "view.duckdb"
    start = time.perf_counter()
    if not db.exists():
        counts = build(db, args.models, args.tasks, args.items, args.request_models)
        trials(db)
    else:
        with Store.open(db, read_only=True) as store:
            counts = {"reused": str(db), "models": store.count("models"), "tasks": store.count("tasks"),
                      "samples": store.count("samples")}
        args.models, args.tasks = counts["models"], counts["tasks"]
    build_s = time.perf_counter() - start
    print(f"store: {counts} in {build_s:.1f} s ({db.stat().st_size / 2**20:.0f} MiB)", flush=True)
    server = subprocess.Popen([sys.executable, "-m", "harness.cli", "view", "--db", str(db), "--port", "0", "--quiet"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    results = []
    try:
        url = re.search(r"(http://127\.0\.0\.1:\d+)/", server.stdout.readline()).group(1)
        todo = pages(args.models, args.tasks)
        todo += [(f"leaderboard {m}", f"/?method={m}") for m in filter(None, args.methods.split(","))]
        for name, path in todo:
            cold, status, size = fetch(url + path)
            warm = [fetch(url + path)[0] for _ in range(args.repeats)]
            results.append({"page": name, "path": path, "status": status, "bytes": size, "first_s": round(cold, 3),
                            "warm_median_s": round(statistics.median(warm), 3) if warm else None})
            print(f"{status} {cold:8.3f} s first, {results[-1]['warm_median_s']:.3f} s warm  {name}", flush=True)
        peak = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()
    report = {"store": counts, "store_mib": round(db.stat().st_size / 2**20, 1), "build_s": round(build_s, 1),
              "server_peak_rss_mib": round(peak, 1) if peak else None, "pages": results,
              "slowest_warm_s": max(r["warm_median_s"] for r in results),
              "note": "first_s: first request after start (computes and caches what the page derives from this state "
                      "of the store); warm: later requests of the same page (any write to the store starts over)"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"server peak RSS {report['server_peak_rss_mib']} MiB; wrote {args.out}")
    if args.keep is None:
        db.unlink(missing_ok=True)
        for extra in folder.iterdir():
            extra.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
