"""Benchmark: SNR of every benchmark and subtask in the Pythia folder, plus item-bootstrap noise.

Part 1 reads all Pythia checkpoint JSON files (all models, zero- and five-shot) and computes signal,
checkpoint noise (last 5 checkpoints of every model) and SNR for every (setting, task, metric).
Part 2 runs a 1,000-draw item bootstrap on a seeded 100-model x 5,000-item 0/1 matrix.
Target: under 5 s in total. Writes results/bench/snr.json.
Usage: python scripts/bench_snr.py [--data ../shared/data] [--repeats 3]
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
import pandas as pd  # noqa: E402

from harness.ingest.checkpoint_logs import read_pythia_evals  # noqa: E402
from tournaments.signal_noise import bootstrap_item_noise, snr_table  # noqa: E402
from tournaments.table import ScoreTable  # noqa: E402

N_LAST = 5


def pythia_snr(evals: pd.DataFrame) -> pd.DataFrame:
    """One SNR row per (setting, task, metric): population = every model's final checkpoint."""
    frames = []
    for setting, rows in evals[evals.setting.isin(["zero-shot", "five-shot"])].groupby("setting"):
        rows = rows.assign(benchmark=rows.task + "/" + rows.metric).sort_values("step")
        final = ScoreTable.from_long(rows.groupby(["model", "benchmark"]).tail(1), "model", "benchmark")
        curves = ScoreTable.from_long(rows, "model", "benchmark", replicate="step")
        frames.append(snr_table(final, curves, n=N_LAST).assign(setting=setting))
    return pd.concat(frames, ignore_index=True)


def timed(repeats: int, fn):
    """Wall times of `repeats` calls (the minimum is the least disturbed by other load) and the result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(round(time.perf_counter() - start, 3))
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("HARNESS_SHARED_DATA", ROOT.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    t_read, evals = timed(args.repeats, lambda: read_pythia_evals(args.data / "pythia-v1-evals"))
    t_snr, table = timed(args.repeats, lambda: pythia_snr(evals))
    items = (np.random.default_rng(0).random((100, 5000)) < 0.6).astype(float)
    t_boot, boot = timed(args.repeats, lambda: bootstrap_item_noise(items, n_boot=1000, seed=0))

    defined = table[table.snr.notna()]
    report = {
        "pythia": {
            "files": int(evals.groupby(["model", "setting", "step"]).ngroups),
            "benchmarks": int(len(table)),
            "snr_defined": int(len(defined)),
            "snr_undefined_reasons": table.loc[table.snr.isna(), "note"].value_counts().to_dict(),
            "noise": f"mean over models of rel. std of the last {N_LAST} checkpoints (ddof=1)",
            "top5": defined.nlargest(5, "snr")[["setting", "benchmark", "snr"]].round(2).to_dict("records"),
            "bottom5": defined.nsmallest(5, "snr")[["setting", "benchmark", "snr"]].round(2).to_dict("records"),
            "read_s": t_read,
            "snr_s": t_snr,
        },
        "item_bootstrap": {"models": 100, "items": 5000, "draws": 1000, "relative_noise": round(boot, 5),
                           "seconds": t_boot},
        "total_s": round(min(t_read) + min(t_snr) + min(t_boot), 3),
        "total_first_run_s": round(t_read[0] + t_snr[0] + t_boot[0], 3),
        "target_s": 5.0,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
    }
    out = ROOT / "results" / "bench" / "snr.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("total_s", "total_first_run_s", "target_s")} | {
        "read_s": min(t_read), "snr_s": min(t_snr), "bootstrap_s": min(t_boot), "benchmarks": len(table)}))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
