"""Wall time and peak memory of every merge and prune method on SmolLM2-135M (the embedded model), Expert
Merging, SparseGPT, domain pruning and adaptive MLP widths included.

Each operation runs in its own child process, which reports its RSS after imports (baseline) and
its peak during the operation, twice: peak RSS (VmHWM, which includes the input files' pages that
safetensors maps in) and peak anonymous memory (sampled RssAnon: what the method itself holds).
The method's memory as a fraction of the model's size is (peak anon - baseline anon) / model size.
Merges run twice: with the default shard size (the whole output is held before it is written) and
with 64 MiB shards (streamed: only one shard of output is held). The two experts are the base plus
small seeded noise: merge cost does not depend on what the experts learned.

Writes results/bench/variants.json.   Run: python scripts/bench_variants.py [OPERATION ...]
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MERGES = {
    "linear": {"method": "linear"},
    "task_arithmetic": {"method": "task_arithmetic"},
    "ties": {"method": "ties", "density": 0.2},
    "dare_ties": {"method": "dare_ties", "density": 0.5},
    "pcb": {"method": "pcb", "ratio": 0.1},
    # each expert's prompts from a task's train questions, as examples/merging.toml: FLORES+ windows (the
    # default) are 4x the tokens per step and did not finish in 9 CPU-minutes here
    "expert_merging": {"method": "expert_merging", "calibration": ["arith_add_2d", "compare_numbers"]},
}
PRUNES = {
    "magnitude-50": {"method": "magnitude", "sparsity": 0.5},
    "magnitude-2:4": {"method": "magnitude", "pattern": "2:4"},
    "wanda-50": {"method": "wanda", "sparsity": 0.5},
    "wanda-2:4": {"method": "wanda", "pattern": "2:4"},
    "sparsegpt-50": {"method": "sparsegpt", "sparsity": 0.5},
    "sparsegpt-2:4": {"method": "sparsegpt", "pattern": "2:4"},
    "domain_prune-50": {"method": "domain_prune", "sparsity": 0.5, "domain": "arith_add_2d"},
    "layer_drop": {"method": "layer_drop"},
    "mlp_width": {"method": "mlp_width"},
    "mlp_width-adaptive": {"method": "mlp_width", "adaptive": True},
}
STREAM_SHARD = 64 << 20


def _status_mb(field: str) -> float:
    """VmRSS / VmHWM of this process (ru_maxrss would carry the parent's peak across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    """Start the peak-RSS watermark from the current RSS (Linux clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")


class _AnonPeak(threading.Thread):
    """Samples RssAnon every 5 ms: memory the process owns, without the mmap'd input pages that VmHWM
    counts (those are page cache the kernel can drop, so they do not limit model size)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = _status_mb("RssAnon")
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.005):
            self.peak = max(self.peak, _status_mb("RssAnon"))

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return max(self.peak, _status_mb("RssAnon"))


class _Quiet:
    def start(self, total: int) -> None:
        pass

    def advance(self) -> None:
        pass


def child(kind: str, name: str, base: str, experts: list[str], out: str, shard: int) -> None:
    """One operation in this process; prints a JSON line with its time and memory."""
    from harness.variants import adaptive_width, domain_prune, expert_merging, merge, prune, sparsegpt  # noqa: F401
    from harness.variants import structured  # noqa: F401  (imports count as baseline)
    from harness.variants.build import make_weights
    from harness.variants.recipe import parse_recipe

    _reset_peak()
    baseline, anon_baseline = _status_mb("VmRSS"), _status_mb("RssAnon")
    sampler = _AnonPeak()
    sampler.start()
    table = MERGES if kind == "merge" else PRUNES
    entry = {"name": "bench", **table[name]}
    if kind == "merge":
        entry.update({"models": experts} if name == "linear" else {"base": base, "models": experts})
    else:
        entry["parent"] = base
    (spec,) = parse_recipe({"variant": [entry]})
    parents = [Path(e) for e in experts] if name == "linear" else [Path(base), *map(Path, experts)]
    started = time.perf_counter()
    result = make_weights(spec, parents, Path(out), _Quiet(), shard)
    wall = time.perf_counter() - started
    anon_peak = sampler.stop()
    print(json.dumps({"wall_s": round(wall, 2), "baseline_rss_mb": round(baseline, 1),
                      "peak_rss_mb": round(_status_mb("VmHWM"), 1), "baseline_anon_mb": round(anon_baseline, 1),
                      "peak_anon_mb": round(anon_peak, 1), "params": spec.params(),
                      "achieved_sparsity": result.stats.get("achieved_sparsity"),
                      "param_count": result.stats.get("param_count")}))


def _make_experts(base: Path, root: Path) -> list[str]:
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    weights = load_file(base / "model.safetensors")
    paths = []
    for seed in (1, 2):
        out = root / f"expert{seed}"
        shutil.copytree(base, out, ignore=shutil.ignore_patterns("*.safetensors"))
        noise = torch.Generator().manual_seed(seed)
        save_file({k: v + 1e-3 * torch.randn(v.shape, generator=noise) for k, v in weights.items()},
                  str(out / "model.safetensors"), metadata={"format": "pt"})
        paths.append(str(out))
    return paths


def _run_child(kind: str, name: str, base: Path, experts: list[str], shard: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-variant-") as out:
        done = subprocess.run([sys.executable, __file__, "--child", kind, name, str(base), ",".join(experts), out,
                               str(shard)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{kind} {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(only: list[str]) -> None:
    """Run every operation, or only the named ones (updating their entries in an existing report)."""
    from harness.weights import models
    from harness.common.paths import results_dir
    from harness.weights.folders import DEFAULT_SHARD_BYTES

    unknown = sorted(set(only) - set(MERGES) - set(PRUNES))
    if unknown:
        raise SystemExit(f"unknown operation {unknown[0]}; choose from {', '.join([*MERGES, *PRUNES])}")
    base = models.materialize(models.resolve(models.DEFAULT_MODEL), results_dir() / "models")
    model_mb = sum(f.stat().st_size for f in base.path.glob("*.safetensors")) / 2**20
    out = results_dir() / "bench" / "variants.json"
    report = json.loads(out.read_text()) if only and out.is_file() else {"merges": {}, "prunes": {}}
    report.update({"model": base.name, "params": base.n_params, "model_mb": round(model_mb, 1),
                   "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0],
                               "platform": platform.platform(), "python": platform.python_version()}})
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every operation, so a stopped run keeps what it measured
        out.write_text(json.dumps(report, indent=2) + "\n")

    merges = [name for name in MERGES if not only or name in only]
    prunes = [name for name in PRUNES if not only or name in only]
    with tempfile.TemporaryDirectory(prefix="bench-experts-", dir=results_dir()) as root:
        experts = _make_experts(base.path, Path(root)) if merges else []
        for name in merges:
            for label, shard in (("whole", DEFAULT_SHARD_BYTES), ("streamed_64MiB", STREAM_SHARD)):
                row = _run_child("merge", name, base.path, experts, shard)
                row["method_memory_fraction_of_model"] = round(
                    (row["peak_anon_mb"] - row["baseline_anon_mb"]) / model_mb, 3)
                report["merges"][f"{name}/{label}"] = row
                save()
                print(f"merge {name:16s} {label:15s} {row['wall_s']:7.1f} s  peak rss {row['peak_rss_mb']:6.0f} MB  "
                      f"x{row['method_memory_fraction_of_model']:.2f} model", flush=True)
    for name in prunes:
        row = _run_child("prune", name, base.path, [], DEFAULT_SHARD_BYTES)
        row["method_memory_fraction_of_model"] = round((row["peak_anon_mb"] - row["baseline_anon_mb"]) / model_mb, 3)
        report["prunes"][name] = row
        save()
        print(f"prune {name:16s} {row['wall_s']:7.1f} s  peak rss {row['peak_rss_mb']:6.0f} MB  "
              f"x{row['method_memory_fraction_of_model']:.2f} model", flush=True)
    save()
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, name, base, experts, out, shard = sys.argv[2:8]
        child(kind, name, base, [e for e in experts.split(",") if e], out, int(shard))
    else:
        main(sys.argv[1:])
