"""Cost of letting readers in during `harness eval` (issue 17): the eval closes its DuckDB connection after each
committed chunk and reopens it for the next (Connection.release / WriterLock), instead of holding the file.

Runs the same evaluation (the tiny test Llama on arith_add_2d, N items, small chunks so reopening is as frequent as
it gets) into fresh stores with sharing on and off, alternating, and prints the wall times and their ratio.
Sharing off is what the harness did before: WriterLock.available() -> False keeps one connection for the whole run.
Beside the wall times, the seconds spent opening and closing DuckDB connections (and how many opens) in each mode:
the direct cost of sharing, which the wall times on a loaded machine may hide.

    python scripts/bench_shared_store.py --limit 200 --chunk-size 8 --repeats 2   (writes results/bench/shared_store.json)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = """
import sys, time
from harness.store import connection
if sys.argv[1] == "off":
    connection.WriterLock.available = staticmethod(lambda: False)
spent = {"reopen": 0.0, "n": 0}
def timed(function):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent["reopen"] += time.perf_counter() - started
            spent["n"] += function.__name__ == "_connect"
    return wrapper
connection.Connection._connect = staticmethod(timed(connection.Connection._connect))
connection.Connection.release = timed(connection.Connection.release)
from harness.api import evaluate
started = time.perf_counter()
evaluate([f"{sys.argv[2]}=tiny"], ["arith_add_2d"], sys.argv[3], limit=int(sys.argv[4]), chunk_size=int(sys.argv[5]),
         display="none")
print(time.perf_counter() - started, spent["reopen"], spent["n"])
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                        "PYTHONPATH": str(REPO)}
    times: dict[str, list[float]] = {"on": [], "off": []}
    opening: dict[str, list[tuple[float, int]]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as work:
        sys.path.insert(0, str(REPO))
        from tests.tiny_model import build_tiny_llama

        model = build_tiny_llama(Path(work) / "tiny")
        env["HARNESS_RESULTS"] = str(Path(work) / "results")
        for repeat in range(args.repeats):
            for mode in ("off", "on") if repeat % 2 == 0 else ("on", "off"):
                db = Path(work) / f"{mode}{repeat}.duckdb"
                done = subprocess.run([sys.executable, "-c", RUN, mode, str(model), str(db), str(args.limit),
                                       str(args.chunk_size)], env=env, capture_output=True, text=True, check=True)
                wall, reopen, n = done.stdout.strip().splitlines()[-1].split()
                times[mode].append(float(wall))
                opening[mode].append((round(float(reopen), 3), int(n)))
    result = {"limit": args.limit, "chunk_size": args.chunk_size, "requests": args.limit * 4,
              "seconds_shared": times["on"], "seconds_held": times["off"],
              "connect_and_release_seconds_and_connects_shared": opening["on"],
              "connect_and_release_seconds_and_connects_held": opening["off"],
              "ratio_median": statistics.median(times["on"]) / statistics.median(times["off"])}
    out = REPO / "results" / "bench" / "shared_store.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
