"""Benchmark the vectorised CSD engine against the plain per-tournament loop from the tests.

N simulations, 29 competitors, 12 rounds, T = 0, 1, 2, on one core; the plain loop runs fewer
simulations in the same process and is extrapolated linearly (its cost is per tournament).
Writes JSON (default results/bench/csd.json) and prints it.

    python scripts/bench_csd.py [--n-sims 100000] [--plain-sims 1000] [--out results/bench/csd.json]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before numpy loads

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_swiss import plain_csd  # noqa: E402
from tournaments.swiss import round_strengths, simulate  # noqa: E402
from tournaments.rounds import auto_rounds  # noqa: E402
from tournaments.table import ScoreTable  # noqa: E402

SCHEDULES = (0, 1, 2)


def synthetic_table(m: int = 29, n_rounds: int = 12, seed: int = 0) -> ScoreTable:
    """csd.md's synthetic setting: skill ~ N(0, 1) plus round noise of SD 0.8."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m, 1)) + 0.8 * rng.normal(size=(m, n_rounds))
    return ScoreTable([f"m{i:02d}" for i in range(m)], [f"r{k:02d}" for k in range(n_rounds)], x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-sims", type=int, default=100_000)
    parser.add_argument("--plain-sims", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "csd.json")
    args = parser.parse_args()

    table = synthetic_table()
    load_before = os.getloadavg()
    simulate(table, n_sims=2000, seed=0, batch_size=args.batch_size)  # warm-up: imports, allocator

    vector = {}
    results = {}
    for t in SCHEDULES:
        wall, cpu = time.perf_counter(), time.process_time()
        results[t] = simulate(table, eliminate=t, n_sims=args.n_sims, seed=t, batch_size=args.batch_size)
        vector[t] = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}

    tracemalloc.start()
    simulate(table, eliminate=2, n_sims=args.n_sims, seed=2, batch_size=args.batch_size)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    strength = round_strengths(table, auto_rounds(table)).tolist()
    plain = {}
    agreement = {}
    for t in SCHEDULES:
        wall, cpu = time.perf_counter(), time.process_time()
        mean, se, _ = plain_csd(strength, t, args.plain_sims, seed=t)
        plain[t] = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
        z = np.abs(results[t].expected - mean) / np.sqrt(results[t].se ** 2 + se**2)
        agreement[t] = float(z.max())

    scale = args.n_sims / args.plain_sims
    vector_cpu = sum(v["cpu_s"] for v in vector.values())
    plain_cpu = scale * sum(p["cpu_s"] for p in plain.values())
    report = {
        "setup": {
            "competitors": table.n_competitors,
            "rounds": table.n_benchmarks,
            "n_sims": args.n_sims,
            "plain_sims": args.plain_sims,
            "batch_size": args.batch_size,
            "schedules": list(SCHEDULES),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpu_count": os.cpu_count(),
            "load_avg_1min_before_after": [load_before[0], os.getloadavg()[0]],
        },
        "vectorised": {
            f"T={t}": {**v, "sum_E": float(results[t].expected.sum()), "games_check": results[t].games_check}
            for t, v in vector.items()
        },
        "vectorised_total_wall_s": sum(v["wall_s"] for v in vector.values()),
        "vectorised_total_cpu_s": vector_cpu,
        "peak_traced_memory_mb": traced_peak / 2**20,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "plain_loop_ms_per_tournament": {f"T={t}": 1000 * p["cpu_s"] / args.plain_sims for t, p in plain.items()},
        "plain_loop_extrapolated_cpu_s": plain_cpu,
        "speedup_cpu": plain_cpu / vector_cpu,
        "max_abs_z_vectorised_vs_plain": {f"T={t}": z for t, z in agreement.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
