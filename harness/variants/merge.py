"""Merging through mergekit (pinned at 0.1.5): linear, task arithmetic, TIES, DARE-TIES and our PCB.

Each output tensor is merged on its own with mergekit's `merge_tensors`, reading the inputs lazily and
writing shards as they fill, so memory stays near (number of inputs) x (largest tensor) plus one shard.
Merging tensor by tensor is also what makes DARE reproducible regardless of order: its Bernoulli
draws come from torch's global generator, which is reseeded for every tensor from (seed, tensor name).
mergekit trims TIES/DARE per tensor, not over the whole model as the TIES paper does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from mergekit.merge_methods import get, merge_tensors

from harness.common.errors import HarnessError
from harness.weights.folders import (
    DEFAULT_SHARD_BYTES, ShardWriter, WeightReader, copy_side_files, read_config, tokenizer_digest, write_config,
)
from harness.variants.manifest import MethodResult
from harness.variants.pcb import ensure_registered

ARCHITECTURE_KEYS = ("architectures", "model_type", "hidden_size", "num_hidden_layers", "intermediate_size",
                     "num_attention_heads", "num_key_value_heads", "vocab_size", "tie_word_embeddings")


def tensor_seed(seed: int, name: str) -> int:
    """A per-tensor seed: the same tensor gets the same draws whatever order tensors are merged in."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little") & (2**63 - 1)


def check_compatible(parents: dict[str, Path]) -> None:
    """Refuse parents that differ in architecture, tensor shapes or tokenizer, naming the first pair."""
    (first_name, first), *rest = parents.items()
    config, reader, tokens = read_config(first), WeightReader(first), tokenizer_digest(first)
    for name, path in rest:
        other = read_config(path)
        for key in ARCHITECTURE_KEYS:
            if config.get(key) != other.get(key):
                raise HarnessError(f"cannot merge '{first_name}' and '{name}': different architectures "
                                   f"({key} {config.get(key)!r} vs {other.get(key)!r})")
        shapes = WeightReader(path).shapes
        if shapes != reader.shapes:
            differing = sorted(set(shapes) ^ set(reader.shapes)) or sorted(
                key for key in shapes if shapes[key] != reader.shapes[key])
            raise HarnessError(f"cannot merge '{first_name}' and '{name}': different tensors ({differing[0]})")
        if tokenizer_digest(path) != tokens:
            raise HarnessError(f"cannot merge '{first_name}' and '{name}': different tokenizers")


def mergekit_parameters(spec) -> dict:
    """The recipe's parameters under mergekit's names."""
    params = spec.params()
    params.pop("search", None)  # how PCB's weights were chosen, not a merge parameter
    mapped = {"weight": params.pop("weights")}
    if spec.method == "pcb":
        params["exclude"] = tuple(params["exclude"])
    mapped.update(params)
    return mapped


def merge(spec, base: Path | None, models: list[Path], out: Path, steps,
          max_shard_bytes: int = DEFAULT_SHARD_BYTES) -> MethodResult:
    """Merge `models` (onto `base`, for task-vector methods) into `out`; returns output statistics."""
    ensure_registered()
    method = get(spec.method)
    inputs = ([base] if base is not None else []) + models
    readers = [WeightReader(path) for path in inputs]
    parameters = mergekit_parameters(spec)
    names = readers[0].names()
    steps.start(len(names))
    writer = ShardWriter(out, max_shard_bytes)
    for name in names:
        tensors = [reader.get(name) for reader in readers]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(tensor_seed(spec.seed, name))
            try:
                merged = merge_tensors(tensors, method, parameters=parameters, name=name,
                                       base_index=0 if base is not None else None, out_dtype=tensors[0].dtype)
            except (ValueError, TypeError) as exc:
                raise HarnessError(f"variant '{spec.name}': mergekit refused tensor {name}: {exc}") from None
        writer.add(name, merged)
        del tensors, merged
        steps.advance()
    writer.close()
    write_config(out, read_config(inputs[0]))
    copy_side_files(inputs[0], out)
    return MethodResult({"param_count": writer.n_params, "merged_tensors": len(names),
                         "mergekit_method": method.spec.name, "mergekit_parameters": _plain(parameters)})


def _plain(parameters: dict) -> dict:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in parameters.items()}
