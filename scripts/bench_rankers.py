"""Benchmark: every classic ranker and a 1,000-sample bootstrap on Open LLM Leaderboard v1 (1,804 x 6).

Times each method of the registry once (Kemeny runs its local search: 1,804 competitors are far
beyond exact), the whole `rank_all` table, and 1,000-sample benchmark bootstraps of the scale-based
rankers. Target: the `--method all` table (no exact Kemeny) in under 10 s on a 2-core machine.

Then 10,000 x 6 synthetic competitors (seeded normal scores, issue 19): wall time and peak RSS per
method, each in a fresh child process so one method's memory does not hide another's; the whole
`rank_all` without CSD (target: 60 s and 2 GB in all); CSD with --csd-sims simulations (it may take
longer, but its memory must not grow with the field squared). `--baseline DIR` also times the
`tournaments` package in DIR (e.g. a git worktree of an older commit) in the same run.
Writes results/bench/rankers.json (the synthetic case under "synthetic", merged into the file).
Usage: python scripts/bench_rankers.py [--data ../shared/data] [--n-boot 1000] [--synthetic-only]
       [--csd-sims 2000] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

BOOTSTRAPPED = ("mean", "mean_minmax", "mean_z", "borda")
SYNTHETIC = (10_000, 6)
TARGET_SECONDS, TARGET_GB = 60, 2


def seconds(fn):
    start = time.perf_counter()
    result = fn()
    return round(time.perf_counter() - start, 3), result


def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_table(n: int, n_bench: int, seed: int = 0):
    from tournaments.table import ScoreTable

    rng = np.random.default_rng(seed)
    return ScoreTable([f"model-{i:05d}" for i in range(n)], [f"bench-{j}" for j in range(n_bench)],
                      rng.normal(size=(n, n_bench)))


def child(method: str, n: int, n_bench: int, csd_sims: int, src: Path) -> None:
    """Run one method (or "rank_all" without CSD) on the synthetic table; print one JSON line."""
    sys.path.insert(0, str(src))  # ahead of ROOT, so a baseline's `tournaments` is the one imported
    from tournaments import methods

    table = synthetic_table(n, n_bench)
    before = peak_rss_mb()
    if method == "rank_all":
        names = [m for m in methods.METHODS if m != "csd"]
        t, (_, _, rankings) = seconds(lambda: methods.rank_all(table, names))
        notes = [f"{name}: {note}" for name, r in rankings.items() for note in r.notes]
    else:
        params = {"n_sims": csd_sims} if method == "csd" else {}
        t, ranking = seconds(lambda: methods.rank(table, method, **params))
        notes = list(ranking.notes)
    peak = peak_rss_mb()
    print(json.dumps({"seconds": t, "peak_rss_mb": round(peak), "rss_growth_mb": round(peak - before), "notes": notes,
                      "package": str(Path(methods.__file__).parent)}))


def run_child(method: str, args, src: Path) -> dict:
    """The child's JSON, or why there is none (timeout, crash)."""
    command = [sys.executable, __file__, "--child", method, "--src", str(src), "--n", str(args.n),
               "--benchmarks", str(args.benchmarks), "--csd-sims", str(args.csd_sims)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.child_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {args.child_timeout} s"}
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def synthetic(args) -> dict:
    """Each method, the rank_all table and a short CSD run on n x b synthetic competitors."""
    from tournaments.methods import METHODS

    sources = {"current": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    report: dict = {"n_competitors": args.n, "n_benchmarks": args.benchmarks, "scores": "seeded normal (seed 0)",
                    "target": {"seconds": TARGET_SECONDS, "peak_gb": TARGET_GB, "scope": "every method but CSD"},
                    "csd_sims": args.csd_sims}
    for label, src in sources.items():
        rows = {}
        for name in [m for m in METHODS if m != "csd"] + ["rank_all", "csd"]:
            rows[name] = row = run_child(name, args, src)
            shown = f"{row['seconds']:8.2f} s {row['peak_rss_mb']:7.0f} MB peak" if "error" not in row else row["error"]
            print(f"{args.n} x {args.benchmarks} {label:8s} {name:12s} {shown}")
        if "seconds" in rows["csd"]:
            rows["csd"]["seconds_per_1000_sims"] = round(1000 * rows["csd"]["seconds"] / args.csd_sims, 3)
        if "seconds" in rows["rank_all"]:
            whole = rows["rank_all"]
            whole["within_target"] = whole["seconds"] <= TARGET_SECONDS and whole["peak_rss_mb"] <= TARGET_GB * 1024
        report[label] = rows
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("HARNESS_SHARED_DATA", ROOT.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "rankers.json")
    parser.add_argument("--synthetic-only", action="store_true", help="only the 10,000 x 6 synthetic case")
    parser.add_argument("--skip-synthetic", action="store_true", help="only the Open LLM Leaderboard v1 case")
    parser.add_argument("--n", type=int, default=SYNTHETIC[0], help="synthetic competitors")
    parser.add_argument("--benchmarks", type=int, default=SYNTHETIC[1], help="synthetic benchmarks")
    parser.add_argument("--csd-sims", type=int, default=2000, help="CSD simulations in the synthetic case")
    parser.add_argument("--baseline", type=Path, help="folder holding an older `tournaments` package to time too")
    parser.add_argument("--child-timeout", type=int, default=900, help="seconds per method and source")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--src", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.n, args.benchmarks, args.csd_sims, args.src)

    report = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if not args.skip_synthetic:
        report["synthetic"] = synthetic(args)
    if not args.synthetic_only:
        report.update(leaderboard_v1(args))
    report["machine"] = {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


def leaderboard_v1(args) -> dict:
    """The 1,804 x 6 Open LLM Leaderboard v1 case: every method, rank_all, bootstraps."""
    from harness.ingest.parsers import read_wide_csv
    from tournaments.methods import METHODS, rank, rank_all
    from tournaments.stats import bootstrap_ranking

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

    return {
        "data": str(path.relative_to(args.data)),
        "n_competitors": table.n_competitors,
        "n_benchmarks": table.n_benchmarks,
        "read_seconds": t_read,
        "methods": per_method,
        "rank_all_seconds": t_all,
        "rank_all_target_seconds": 10,
        "bootstrap": {"n_boot": args.n_boot, "unit": "benchmarks", "methods": boot},
        "kendall_tau": {a: {b: round(float(tau.loc[a, b]), 4) for b in tau.columns} for a in tau.index},
    }


if __name__ == "__main__":
    main()
