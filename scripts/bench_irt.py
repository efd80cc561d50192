"""Benchmark: tournaments.irt.fit_irt (2PL, float32 work arrays) on synthetic binary matrices of growing size.

Each size is simulated from a known 2PL (theta, b ~ N(0, 1), log a ~ N(0, 0.3^2), seed 0) and fitted once;
the script records wall time, peak memory of the process so far, alternating sweeps, and the correlation of
recovered vs true abilities and difficulties. Sizes go from small to large and the script stops before a size
whose predicted time (per-cell-sweep cost of the last size x cells x its sweeps) exceeds --max-seconds, so it
says which was the largest that fitted. Writes results/bench/irt.json.
Usage: python scripts/bench_irt.py [--sizes 1000x3000,2000x6000,5000x15000] [--max-seconds 120]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from tournaments.irt import fit_irt  # noqa: E402


def simulate(models: int, items: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 1, models).astype(np.float32)
    b = rng.normal(0, 1, items).astype(np.float32)
    a = np.exp(rng.normal(0, 0.3, items)).astype(np.float32)
    z = np.multiply.outer(theta, a)
    z -= a * b
    y = (rng.random((models, items), dtype=np.float32) * (1 + np.exp(-z)) < 1).astype(np.float32)
    return y, theta, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500x1500,1000x3000,2000x6000,5000x15000")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--out", default=str(ROOT / "results" / "bench" / "irt.json"))
    args = parser.parse_args()
    runs, skipped, per_cell_sweep = [], [], None
    for size in args.sizes.split(","):
        models, items = (int(v) for v in size.lower().split("x"))
        if per_cell_sweep is not None and per_cell_sweep * models * items * runs[-1]["sweeps"] > args.max_seconds:
            skipped.append(size)
            continue
        y, theta, b = simulate(models, items)
        start = time.perf_counter()
        fit = fit_irt(y, seed=0, dtype=np.float32)
        seconds = time.perf_counter() - start
        per_cell_sweep = seconds / (models * items * fit.n_iter)
        runs.append({"models": models, "items": items, "seconds": round(seconds, 2), "sweeps": fit.n_iter,
                     "converged": fit.converged, "ns_per_cell_per_sweep": round(per_cell_sweep * 1e9, 1),
                     "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                     "corr_ability": round(float(np.corrcoef(fit.ability, theta)[0, 1]), 4),
                     "corr_difficulty": round(float(np.corrcoef(fit.difficulty, b)[0, 1]), 4)})
        print(json.dumps(runs[-1]), flush=True)
        del y
    result = {"benchmark": "irt_fit", "model": "2pl", "dtype": "float32", "cpus": os.cpu_count(),
              "load_average_1min": round(os.getloadavg()[0], 2), "max_seconds": args.max_seconds,
              "largest_fitted": f"{runs[-1]['models']}x{runs[-1]['items']}", "skipped_as_too_slow": skipped,
              "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}))


if __name__ == "__main__":
    main()
