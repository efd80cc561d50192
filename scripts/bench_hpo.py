"""Benchmark: a full optimizer comparison, 4 optimizers x 10 cheap or cached tasks x 5 seeds, plus analysis.

Tasks are 8 BBOB-style functions in 2 to 10 dimensions and the two cached pruning tasks of the
embedded model, each at carps' default budget ceil(20 + 40 sqrt(d)). Reports the study's wall time,
per-trial time split into the optimizer's ask/tell, the objective, and our loop's own overhead
(bookkeeping plus one bulk store insert per run; target under 1 ms per trial), then the analysis
time in both normalisation modes with every figure. Writes results/bench/hpo.json.
Usage: python scripts/bench_hpo.py [--seeds 5] [--out results/bench/hpo.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.store import Store  # noqa: E402
from hpo.analysis import from_trials  # noqa: E402
from hpo.config import StudySpec  # noqa: E402
from harness.report.optimizer_files import write  # noqa: E402
from hpo.report import compare, optimizer_table  # noqa: E402
from hpo.runner import run_study  # noqa: E402
from hpo.tasks import make_task  # noqa: E402

OPTIMIZERS = ("random", "optuna-tpe", "optuna-cmaes", "nevergrad-ngopt")
TASKS = ("bbob-f1-d2", "bbob-f6-d3", "bbob-f8-d4", "bbob-f10-d5", "bbob-f12-d2", "bbob-f13-d3",
         "bbob-f14-d6", "bbob-f15-d10", "prune-smollm2", "prune-smollm2-lean")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "hpo.json")
    args = parser.parse_args()
    spec = StudySpec(study="bench", optimizers=OPTIMIZERS, tasks=TASKS, seeds=tuple(range(args.seeds)))

    per_optimizer: dict[str, dict[str, float]] = {o: {"trials": 0, "optimizer_s": 0.0, "evaluate_s": 0.0,
                                                      "overhead_s": 0.0, "store_s": 0.0} for o in OPTIMIZERS}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with Store.open(Path(tmp) / "bench.duckdb") as store:
            result = run_study(store, spec)
            study_s = time.perf_counter() - started
            trials = store.hpo_trials("bench")
        for (optimizer, _task, _seed), timing in zip(result.ran, result.timings):
            cell = per_optimizer[optimizer]
            cell["trials"] += timing.trials
            cell["optimizer_s"] += timing.optimizer_s
            cell["evaluate_s"] += timing.evaluate_s
            cell["overhead_s"] += timing.overhead_s
            cell["store_s"] += timing.store_s
        print(f"study: {len(result.ran)} runs, {len(trials)} trials in {study_s:.1f} s")

        analysis = {}
        anchors = {t: make_task(t).anchors() for t in TASKS}
        for mode in ("carps", "stable"):
            t0 = time.perf_counter()
            comparison = compare(from_trials(trials), mode, anchors if mode == "stable" else None)
            t1 = time.perf_counter()
            write(comparison, Path(tmp) / mode, f"bench ({mode})")
            t2 = time.perf_counter()
            board = optimizer_table(comparison)
            friedman = comparison.tests.friedman
            analysis[mode] = {
                "compute_s": round(t1 - t0, 3), "figures_and_tables_s": round(t2 - t1, 3),
                "mean_ranks": {r.optimizer: round(float(r.mean_rank), 3) for r in board.itertuples()},
                "norm_cost": {r.optimizer: round(float(r.norm_cost), 5) for r in board.itertuples()},
                "friedman_p": friedman.p_value, "nemenyi_cd": friedman.critical_difference,
            }
            print(f"analysis ({mode}): {t1 - t0:.2f} s compute, {t2 - t1:.2f} s figures; "
                  f"ranks {analysis[mode]['mean_ranks']}")

    total_trials = sum(c["trials"] for c in per_optimizer.values())
    total_overhead = sum(c["overhead_s"] for c in per_optimizer.values())
    total_store = sum(c["store_s"] for c in per_optimizer.values())
    report = {
        "optimizers": OPTIMIZERS, "tasks": TASKS, "seeds": args.seeds, "runs": len(result.ran),
        "trials": total_trials, "study_wall_s": round(study_s, 2),
        "loop_overhead_ms_per_trial": round(1000 * total_overhead / total_trials, 4),
        "of_which_store_insert_ms_per_trial": round(1000 * total_store / total_trials, 4),
        "per_optimizer_ms_per_trial": {
            o: {k: round(1000 * c[k] / c["trials"], 4)
                for k in ("optimizer_s", "evaluate_s", "overhead_s", "store_s")}
            for o, c in per_optimizer.items()},
        "analysis": analysis,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"loop overhead {report['loop_overhead_ms_per_trial']:.3f} ms per trial (store insert "
          f"{report['of_which_store_insert_ms_per_trial']:.3f} ms of it); wrote {args.out}")


if __name__ == "__main__":
    main()
