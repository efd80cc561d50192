"""Benchmark: `adaptive replay` (tournaments.adaptive.replay) of every method on every published per-item matrix
(eval-arena HumanEval, HumanEval base, MBPP; the AlpacaEval 2 judge matrix), wall time and peak traced memory per
(matrix, method), at the README's settings (budget 0.1, 5 folds, 10 repeats, seed 0, split random and top).

The matrices are read straight from ../shared/data (models missing an item are left out, as the import does).
Peak memory is tracemalloc's peak during the call (numpy's allocations included), not the process RSS.
Writes results/bench/replay.json.   Usage: python scripts/bench_replay.py [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tournaments.adaptive import METHODS, replay  # noqa: E402


def matrices(data: Path) -> dict[str, np.ndarray]:
    """(models x items) score matrices of the complete models, by name."""
    out = {}
    for name in ("humaneval", "humaneval_hf", "mbpp"):
        rows = pd.read_json(data / "eval-arena-per-example" / f"{name}.jsonl", lines=True)
        out[f"eval-arena {name}"] = rows.pivot(index="model", columns="example_id", values="pass1").dropna().to_numpy(float)
    wide = pd.read_csv(data / "alpacaeval-items" / "weighted_alpaca_eval_gpt4_turbo_matrix.csv").drop(columns="dataset")
    judged = wide.set_index("item_sha1").T.dropna().sort_index().sort_index(axis=1)  # as the import orders them
    out["alpacaeval2"] = (judged - 1.0).to_numpy(float)  # preference [1, 2] -> [0, 1]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("HARNESS_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--out", default=str(ROOT / "results" / "bench" / "replay.json"))
    args = parser.parse_args()
    runs = []
    for name, matrix in matrices(Path(args.data)).items():
        for split in ("random", "top"):
            for method in METHODS:
                tracemalloc.start()
                start = time.perf_counter()
                row = replay(matrix, 0.1, folds=5, split=split, seed=0, methods=[method], repeats=10).iloc[0]
                seconds = time.perf_counter() - start
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                runs.append({"matrix": name, "models": matrix.shape[0], "items": matrix.shape[1], "split": split,
                             "method": method, "seconds": round(seconds, 3), "peak_traced_mb": round(peak / 2**20, 1),
                             "mae": round(float(row["mae"]), 4)})
                print(json.dumps(runs[-1]), flush=True)
    result = {"benchmark": "adaptive_replay", "budget": 0.1, "folds": 5, "repeats": 10, "seed": 0,
              "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2), "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
