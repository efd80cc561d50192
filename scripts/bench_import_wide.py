"""Benchmark: reading a wide leaderboard CSV with 10,000 / 50,000 / 100,000 benchmark columns (issue 17).

The reader was quadratic in the columns (a repeated-name check counted every name against the whole
header: 100,000 columns took 96 s). Each size is a seeded file of --rows competitors; the time is the
median of --repeats reads by read_wide_leaderboard, then one whole `harness import csv` into a fresh
store. `--baseline FILE` also times an older harness/ingest/parsers.py (e.g. saved with
`git show REV:harness/ingest/parsers.py > /tmp/old_parsers.py`) on the same files in the same run,
alternating with the current one, and reports old/new.
Writes results/bench/import_wide.json.
Usage: python scripts/bench_import_wide.py [--sizes 10000 50000 100000] [--rows 5] [--repeats 3] [--baseline FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def wide_file(folder: Path, columns: int, rows: int, seed: int = 0) -> Path:
    """A wide CSV: a model column, `columns` benchmarks, `rows` competitors with seeded 4-decimal scores."""
    rng = np.random.default_rng(seed)
    path = folder / f"wide_{columns}.csv"
    lines = ["model," + ",".join(f"bench_{j:06d}" for j in range(columns))]
    for i in range(rows):
        lines.append(f"model-{i}," + ",".join(f"{v:.4f}" for v in rng.random(columns)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_baseline(file: Path):
    """An older parsers.py as its own module, importing the current harness for everything else."""
    spec = importlib.util.spec_from_file_location("baseline_parsers", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.read_wide_leaderboard


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cli_import(path: Path, db: Path) -> float:
    from typer.testing import CliRunner

    from harness.cli import app

    start = time.perf_counter()
    result = CliRunner().invoke(app, ["import", "csv", str(path), "--wide", "--name", "wide", "--db", str(db)])
    elapsed = time.perf_counter() - start
    if result.exit_code != 0:
        raise SystemExit(f"harness import csv failed: {result.output}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--rows", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="an older harness/ingest/parsers.py to time side by side")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "import_wide.json")
    args = parser.parse_args()

    from harness.ingest.parsers import read_wide_leaderboard

    readers = {"current": read_wide_leaderboard}
    if args.baseline:
        readers["baseline"] = load_baseline(args.baseline)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for columns in args.sizes:
            path = wide_file(Path(tmp), columns, args.rows)
            times = {name: [] for name in readers}
            for _ in range(args.repeats):  # alternate, so load on a shared machine hits both alike
                for name, read in readers.items():
                    times[name].append(seconds(lambda: read(path)))
            row = {"columns": columns, "rows": args.rows, "file_mb": round(path.stat().st_size / 2**20, 2)}
            row |= {f"{name}_s": round(statistics.median(t), 3) for name, t in times.items()}
            row["current_import_csv_s"] = round(cli_import(path, Path(tmp) / f"store_{columns}.duckdb"), 3)
            if args.baseline:
                row["baseline_over_current"] = round(row["baseline_s"] / row["current_s"], 1)
            results.append(row)
            print(json.dumps(row), flush=True)
    current = [r["current_s"] / r["columns"] * 1e6 for r in results]
    report = {"benchmark": "read_wide_leaderboard on a wide CSV", "repeats": args.repeats,
              "baseline": str(args.baseline) if args.baseline else None, "sizes": results,
              "current_us_per_column": [round(c, 2) for c in current]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
