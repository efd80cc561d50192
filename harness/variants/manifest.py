"""manifest.json: what a variant is and how to make it again, stored next to its weights.

`variant_id` hashes exactly the inputs that determine the weights (method and its version, every
parameter with defaults, seed, each parent's weight hash, the calibration text hash), so a recipe
re-run can tell "already made" from "same name, different variant". `output_sha256` is the weight
hash; the store's fingerprint covers it and the config and tokenizer files (weights.models.fingerprint).
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from harness.evaluation.environment import environment, package_versions
from harness.weights.variant_folders import MANIFEST as FILE
from harness.weights.variant_folders import variants_dir

FORMAT = 1
# Bump a method's version whenever a change to its code could change its output.
METHOD_VERSIONS = {"linear": 1, "task_arithmetic": 1, "ties": 1, "dare_ties": 1, "pcb": 1,
                   "magnitude": 1, "wanda": 1, "sparsegpt": 1, "layer_drop": 1, "mlp_width": 1, "finetune": 1,
                   "domain_prune": 2, "expert_merging": 1}
IMPLEMENTATIONS = {"linear": "mergekit", "task_arithmetic": "mergekit", "ties": "mergekit", "dare_ties": "mergekit",
                   "pcb": "harness (registered as a mergekit method)"}
_LIBRARIES = ("torch", "transformers", "mergekit", "safetensors", "numpy", "harness")


@dataclass
class MethodResult:
    """What a merge or prune method reports about its output, for the manifest."""

    stats: dict
    calibration: dict | None = None
    physical_shapes_equal_parent: bool = True
    notes: list[str] = field(default_factory=list)


def variant_inputs(spec, parents: list[dict], calibration_text_sha256: str | None) -> dict:
    """Everything the output depends on; hashed into variant_id."""
    return {"method": spec.method, "method_version": METHOD_VERSIONS[spec.method], "params": spec.params(),
            "seed": spec.seed, "parents": [{"role": p["role"], "sha256": p["sha256"]} for p in parents],
            "calibration_text_sha256": calibration_text_sha256}


def variant_id(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def build(spec, parents: list[dict], inputs: dict, output_sha256: str, result: MethodResult, dtype: str | None,
          wall_time_s: float) -> dict:
    stats = result.stats
    return {
        "format": FORMAT,
        "name": spec.name,
        "variant_id": variant_id(inputs),
        "kind": spec.kind,
        "method": spec.method,
        "method_version": METHOD_VERSIONS[spec.method],
        "implementation": IMPLEMENTATIONS.get(spec.method, "harness"),
        "params": spec.params(),
        "seed": spec.seed,
        "parents": parents,
        "calibration": result.calibration,
        "output_sha256": output_sha256,
        "dtype": dtype,
        "achieved_sparsity": stats.get("achieved_sparsity"),
        "param_count": stats.get("param_count"),
        "physical_shapes_equal_parent": result.physical_shapes_equal_parent,
        "result": {key: value for key, value in stats.items() if key not in ("achieved_sparsity", "param_count")},
        "notes": result.notes,
        "library_versions": _versions(),
        "device": "cpu",
        "platform": platform.platform(),
        "wall_time_s": round(wall_time_s, 3),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _versions() -> dict:
    versions = package_versions(_LIBRARIES)
    versions["harness_git_commit"] = environment()["git_commit"]
    return versions


def write(folder: Path, manifest: dict) -> None:
    (folder / FILE).write_text(json.dumps(manifest, indent=2) + "\n")


def read(folder: Path) -> dict:
    return json.loads((folder / FILE).read_text())


def all_manifests() -> list[dict]:
    root = variants_dir()
    if not root.is_dir():
        return []
    return [read(folder) for folder in sorted(root.iterdir())
            if not folder.name.startswith(".") and (folder / FILE).is_file()]
