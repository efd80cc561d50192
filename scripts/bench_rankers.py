"""Benchmark: every classic ranker and a 1,000-sample bootstrap on Open LLM Leaderboard v1 (1,804 x 6).

Times each method of the registry once (Kemeny runs its local search: 1,804 competitors are far
beyond exact), the whole `rank_all` table, and 1,000-sample benchmark bootstraps of the scale-based
rankers. Target: the `--method all` table (no exact Kemeny) in under 10 s on a 2-core machine.
Writes results/bench/rankers.json.
Usage: python scripts/bench_rankers.py [--data ../shared/data] [--n-boot 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from harness.importers import read_wide_csv  # noqa: E402
from tournaments.methods import METHODS, rank, rank_all  # noqa: E402
from tournaments.stats import bootstrap_ranking  # noqa: E402

BOOTSTRAPPED = ("mean", "mean_minmax", "mean_z", "borda")


def seconds(fn):
    start = time.perf_counter()
    result = fn()
    return round(time.perf_counter() - start, 3), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("HARNESS_SHARED_DATA", ROOT.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "rankers.json")
    args = parser.parse_args()

    path = args.data / "ibm-benchbench" / "benchmarks_old" / "hf_open_llm_v1_240829_frozen.csv"
    t_read, (table, published) = seconds(lambda: read_wide_csv(path, on_duplicate="number"))
    print(f"read {table.n_competitors} x {table.n_benchmarks} in {t_read:.2f} s")

    per_method = {}
    for name in METHODS:
        t, ranking = seconds(lambda: rank(table, name))
        per_method[name] = {"seconds": t, "top3": ranking.order()[:3], "notes": list(ranking.notes)}
        print(f"{name:12s} {t:7.3f} s  top: {ranking.order()[0]}")

    t_all, (ranks, tau, _) = seconds(lambda: rank_all(table))
    print(f"rank_all     {t_all:7.3f} s  (target < 10 s)")

    boot = {}
    for name in BOOTSTRAPPED:
        t, result = seconds(lambda: bootstrap_ranking(table, METHODS[name], n_boot=args.n_boot, seed=0))
        width = result.rank_high - result.rank_low
        boot[name] = {"seconds": t, "median_rank_interval": float(np.median(width)),
                      "max_rank_interval": int(width.max())}
        print(f"bootstrap {name:12s} {args.n_boot} samples {t:7.3f} s, "
              f"median rank-interval width {np.median(width):.0f}")

    report = {
        "data": str(path.relative_to(args.data)),
        "n_competitors": table.n_competitors,
        "n_benchmarks": table.n_benchmarks,
        "read_seconds": t_read,
        "methods": per_method,
        "rank_all_seconds": t_all,
        "rank_all_target_seconds": 10,
        "bootstrap": {"n_boot": args.n_boot, "unit": "benchmarks", "methods": boot},
        "kendall_tau": {a: {b: round(float(tau.loc[a, b]), 4) for b in tau.columns} for a in tau.index},
        "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
