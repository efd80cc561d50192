"""Unstructured and N:M pruning of the decoder's Linear weights: magnitude and Wanda.

Targets are the 2-D weights inside the decoder blocks (q, k, v, o, gate, up, down); embeddings,
lm_head and norms are never touched. Zeros are stored densely: vLLM and transformers gain no speed
from them, so these variants differ from their parents in quality only.

- magnitude: score |W|; unstructured compares over the whole matrix (Wanda's baseline); no data, so
  it streams tensor by tensor from the parent's safetensors.
- wanda: score |W_ij|·‖X_j‖₂ over the calibration tokens, compared within each output row; blocks
  are pruned in order and the calibration activations re-run through each pruned block, so later
  blocks see the earlier ones already pruned.
- N:M (either score): in every row, each group of M consecutive inputs loses its N lowest scores.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from harness.common.errors import HarnessError
from harness.variants.calibration import (
    calibration_batch, decoder_layers, each_linear_input, first_block_inputs, load_model, run_block,
)
from harness.weights.folders import ShardWriter, WeightReader, copy_side_files, read_config, write_config
from harness.variants.manifest import MethodResult

DECODER_WEIGHT = re.compile(r"^model\.layers\.\d+\..+\.weight$")


def is_target(name: str, shape: tuple[int, ...]) -> bool:
    return len(shape) == 2 and DECODER_WEIGHT.match(name) is not None


def prune_mask(scores: torch.Tensor, sparsity: float, n_m: tuple[int, int] | None, per_row: bool) -> torch.Tensor:
    """True where a weight is removed. Ties fall to the lower index (stable sort), so masks are exact
    and reproducible: unstructured removes floor(s·count) per comparison group, N:M exactly N of M."""
    rows, cols = scores.shape
    if n_m is not None:
        n, m = n_m
        if cols % m:
            raise HarnessError(f"pattern {n}:{m}: a matrix has {cols} input columns, not a multiple of {m}")
        groups = scores.reshape(rows, cols // m, m)
        order = groups.argsort(dim=-1, stable=True)[..., :n]
        return torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, order, True).reshape(rows, cols)
    if per_row:
        k = _floor(sparsity * cols)
        order = scores.argsort(dim=1, stable=True)[:, :k]
        return torch.zeros_like(scores, dtype=torch.bool).scatter_(1, order, True)
    k = _floor(sparsity * scores.numel())
    order = scores.reshape(-1).argsort(stable=True)[:k]
    return torch.zeros(scores.numel(), dtype=torch.bool).scatter_(0, order, True).reshape(rows, cols)


def _floor(count: float) -> int:
    """floor, forgiving float error: 0.29 * 100 is 28.999999999999996 but means 29 weights."""
    return math.floor(count + 1e-9)


def magnitude(spec, parent: Path, out: Path, steps) -> MethodResult:
    reader = WeightReader(parent)
    names = reader.names()
    steps.start(len(names))

    def masked(name: str, tensor: torch.Tensor) -> torch.Tensor:
        if not is_target(name, tuple(tensor.shape)):
            return tensor
        return tensor.masked_fill(prune_mask(tensor.abs().float(), spec.sparsity, spec.n_m, per_row=False), 0)

    return MethodResult(_write_masked(reader, parent, out, masked, steps.advance))


def wanda(spec, parent: Path, out: Path, steps) -> MethodResult:
    return calibrated_prune("wanda", spec, parent, out, steps, _input_square_norms, wanda_prune(spec))


def wanda_prune(spec):
    """prune(weight, Σ x_j²) for Wanda's score |W_ij|·‖X_j‖₂, per output row or N:M group."""
    def prune(weight: torch.Tensor, sq_norm: torch.Tensor) -> torch.Tensor:
        return weight.masked_fill_(prune_mask(weight.abs() * sq_norm.sqrt(), spec.sparsity, spec.n_m, per_row=True), 0)
    return prune


def calibrated_prune(method: str, spec, parent: Path, out: Path, steps, statistics, prune,
                     calibrate=None) -> MethodResult:
    """Pruning from calibration activations, decoder block by block (Wanda, SparseGPT, domain pruning):
    `statistics(layer, linears, hidden, kwargs)` gathers, per Linear, what the method needs from the block's
    inputs, and `prune(weight, statistic)` returns the pruned weight; the next block then sees the pruned
    block's outputs. `calibrate(tokenizer)` gives the windows (default: FLORES+ as the spec says)."""
    model, tokenizer = load_model(parent)
    if calibrate is None:
        calibration = calibration_batch(tokenizer, spec.n_samples, spec.seqlen, spec.seed)
    else:
        calibration = calibrate(tokenizer)
    layers, prefix = decoder_layers(model)
    steps.start(len(layers) + 1)
    pruned: dict[str, torch.Tensor] = {}
    hidden, kwargs = first_block_inputs(model, calibration.input_ids)
    for index, layer in enumerate(layers):
        linears = {name: module for name, module in layer.named_modules() if isinstance(module, torch.nn.Linear)}
        gathered = statistics(layer, linears, hidden, kwargs)
        for name, linear in linears.items():
            linear.weight.data = prune(linear.weight.data, gathered.pop(name)).to(linear.weight.dtype)
            pruned[f"{prefix}.{index}.{name}.weight"] = linear.weight.data
        hidden = run_block(layer, hidden, kwargs)
        steps.advance()
    reader = WeightReader(parent)
    missing = sorted(set(pruned) - set(reader.names()))
    if missing:
        raise HarnessError(f"{method}: {parent} stores no tensor '{missing[0]}' (unexpected checkpoint layout)")

    def replaced(name: str, tensor: torch.Tensor) -> torch.Tensor:  # float32 back to the parent's dtype: exact
        return pruned[name].to(tensor.dtype) if name in pruned else tensor

    stats = _write_masked(reader, parent, out, replaced, lambda: None)
    steps.advance()
    return MethodResult(stats, calibration=calibration.record)


def _input_square_norms(layer, linears: dict, hidden: torch.Tensor, kwargs: dict) -> dict[str, torch.Tensor]:
    """Σ over calibration tokens of x_j² for the input of every Linear in the block."""
    sums: dict[str, torch.Tensor] = {}

    def take(name: str, x: torch.Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).float()
        sums[name] = sums.get(name, 0) + (x * x).sum(dim=0)

    each_linear_input(layer, linears, hidden, kwargs, take)
    return sums


def _write_masked(reader: WeightReader, parent: Path, out: Path, transform, advance) -> dict:
    """Stream every tensor through `transform` into `out`; count zeros over the targeted matrices."""
    writer = ShardWriter(out)
    zeros = total = 0
    for name in reader.names():
        tensor = transform(name, reader.get(name))
        if is_target(name, tuple(tensor.shape)):
            zeros += int((tensor == 0).sum())
            total += tensor.numel()
        writer.add(name, tensor)
        advance()
    writer.close()
    write_config(out, read_config(parent))
    copy_side_files(parent, out)
    if total == 0:
        raise HarnessError(f"{parent}: no decoder Linear weights (model.layers.N.*.weight) to prune")
    return {"achieved_sparsity": zeros / total, "target_weights": total, "param_count": writer.n_params}
