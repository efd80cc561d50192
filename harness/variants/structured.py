"""Structured pruning that makes the model physically smaller: whole layers, or MLP neurons.

Both keep every layer the same shape (uniform widths), because transformers and vLLM load only one
global config per decoder stack; so the results load anywhere and really run faster.

- layer_drop (ShortGPT): Block Influence BI_i = 1 - mean over calibration tokens of cos(h_in, h_out)
  of block i; the n blocks with the lowest BI are removed and the rest renumbered.
- mlp_width: neuron j of a block's MLP scores ‖a_j‖₂·‖down_proj[:, j]‖₂ (a = the input of down_proj,
  i.e. act(gate·x)⊙(up·x)); every block keeps its top k = (1-ratio)·intermediate_size, rounded to a
  multiple, by slicing gate/up rows and down columns.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from harness.common.errors import HarnessError
from harness.variants.calibration import calibration_batch, decoder_layers, load_model, run_decoder
from harness.weights.folders import ShardWriter, WeightReader, copy_side_files, read_config, write_config
from harness.variants.manifest import MethodResult

LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
PER_LAYER_CONFIG = ("layer_types", "no_rope_layers")


def block_influence(model, input_ids: torch.Tensor) -> list[float]:
    """BI of every decoder block on one calibration batch."""
    layers, _ = decoder_layers(model)
    sums = [0.0] * len(layers)
    counts = [0] * len(layers)
    handles = []
    for index, layer in enumerate(layers):
        def hook(_module, args, kwargs, output, index=index):
            before = args[0] if args else kwargs["hidden_states"]
            after = output[0] if isinstance(output, tuple) else output
            cos = torch.nn.functional.cosine_similarity(before.float(), after.float(), dim=-1)
            sums[index] += float(cos.sum())
            counts[index] += cos.numel()
        handles.append(layer.register_forward_hook(hook, with_kwargs=True))
    try:
        run_decoder(model, input_ids)
    finally:
        for handle in handles:
            handle.remove()
    return [1.0 - total / count for total, count in zip(sums, counts)]


def layer_drop(spec, parent: Path, out: Path, steps) -> MethodResult:
    model, tokenizer = load_model(parent)
    n_layers = len(decoder_layers(model)[0])
    n_drop = spec.n_layers if spec.n_layers is not None else max(1, round(0.25 * n_layers))
    if n_drop >= n_layers:
        raise HarnessError(f"layer_drop: cannot drop {n_drop} of {n_layers} layers")
    calibration = calibration_batch(tokenizer, spec.n_samples, spec.seqlen, spec.seed)
    reader = WeightReader(parent)
    steps.start(len(reader.names()) + 1)
    influence = block_influence(model, calibration.input_ids)
    del model
    steps.advance()
    dropped = sorted(sorted(range(n_layers), key=lambda i: (influence[i], i))[:n_drop])
    renumber = {old: new for new, old in enumerate(i for i in range(n_layers) if i not in dropped)}

    writer = ShardWriter(out)
    for name in reader.names():
        match = LAYER.match(name)
        if match is None:
            writer.add(name, reader.get(name))
        elif int(match[1]) in renumber:
            writer.add(f"model.layers.{renumber[int(match[1])]}.{match[2]}", reader.get(name))
        steps.advance()
    writer.close()
    config = read_config(parent)
    config["num_hidden_layers"] = n_layers - n_drop
    for key in PER_LAYER_CONFIG:
        if isinstance(config.get(key), list):
            config[key] = [value for i, value in enumerate(config[key]) if i not in dropped]
    write_config(out, config)
    copy_side_files(parent, out)
    stats = {"n_layers_dropped": n_drop, "dropped_layers": dropped, "layers_before": n_layers,
             "layers_after": n_layers - n_drop, "block_influence": [round(v, 6) for v in influence],
             "param_count": writer.n_params, "parent_param_count": reader.n_params()}
    return MethodResult(stats, calibration=calibration.record, physical_shapes_equal_parent=False)


def neuron_scores(model, input_ids: torch.Tensor) -> list[torch.Tensor]:
    """‖a_j‖₂ over calibration tokens times ‖down_proj[:, j]‖₂, per block."""
    layers, _ = decoder_layers(model)
    downs = [_mlp(layer, "down_proj") for layer in layers]
    sq_sums: list[torch.Tensor | None] = [None] * len(layers)
    handles = []
    for index, down in enumerate(downs):
        def hook(_module, args, index=index):
            a = args[0].reshape(-1, args[0].shape[-1]).float()
            sq_sums[index] = (a * a).sum(dim=0) + (0 if sq_sums[index] is None else sq_sums[index])
        handles.append(down.register_forward_pre_hook(hook))
    try:
        run_decoder(model, input_ids)
    finally:
        for handle in handles:
            handle.remove()
    return [sq.sqrt() * down.weight.float().norm(dim=0) for sq, down in zip(sq_sums, downs)]


def _mlp(layer, name: str):
    module = getattr(getattr(layer, "mlp", None), name, None)
    if not isinstance(module, torch.nn.Linear):
        raise HarnessError("mlp_width: expected mlp.gate_proj/up_proj/down_proj Linear layers (Llama-style MLP)")
    return module


def kept_width(intermediate: int, ratio: float, multiple: int) -> int:
    """(1 - ratio)·width rounded to the nearest multiple, at least one multiple, and narrower than before."""
    width = max(multiple, round((1 - ratio) * intermediate / multiple) * multiple)
    if width >= intermediate:
        raise HarnessError(f"mlp_width: ratio {ratio} of {intermediate} neurons rounds to no removal "
                           f"at a multiple of {multiple}; use a larger ratio or a smaller multiple")
    return width


def mlp_width(spec, parent: Path, out: Path, steps) -> MethodResult:
    model, tokenizer = load_model(parent)
    intermediate = model.config.intermediate_size
    if not isinstance(intermediate, int):
        raise HarnessError("mlp_width: the parent has per-layer MLP widths; expected one intermediate_size")
    width = kept_width(intermediate, spec.ratio, spec.multiple)
    calibration = calibration_batch(tokenizer, spec.n_samples, spec.seqlen, spec.seed)
    reader = WeightReader(parent)
    steps.start(len(reader.names()) + 1)
    scores = neuron_scores(model, calibration.input_ids)
    del model
    steps.advance()
    keep = [score.argsort(descending=True, stable=True)[:width].sort().values for score in scores]

    writer = write_mlp_widths(parent, reader, out, steps, keep, width)
    removed = {str(i): sorted(set(range(intermediate)) - set(k.tolist())) for i, k in enumerate(keep)}
    stats = {"intermediate_size_before": intermediate, "intermediate_size_after": width,
             "removed_fraction": 1 - width / intermediate, "removed_neurons": removed,
             "param_count": writer.n_params, "parent_param_count": reader.n_params()}
    return MethodResult(stats, calibration=calibration.record, physical_shapes_equal_parent=False)


def write_mlp_widths(parent: Path, reader: WeightReader, out: Path, steps, keep: list[torch.Tensor],
                     physical: int) -> ShardWriter:
    """Write the parent's tensors with each block's MLP cut to its `keep` neurons (zero-padded up to `physical`
    where a block keeps fewer) and intermediate_size = physical; refuses a checkpoint whose gate/up/down weights
    are not stored as model.layers.N.mlp.*."""
    writer = ShardWriter(out)
    sliced = 0
    for name in reader.names():
        tensor = reader.get(name)
        narrow = mlp_slice(name, tensor, keep, physical)
        sliced += narrow is not tensor and name.endswith(".weight")
        writer.add(name, narrow)
        steps.advance()
    if sliced != 3 * len(keep):
        raise HarnessError(f"mlp_width: {parent} does not store gate/up/down weights as model.layers.N.mlp.*")
    writer.close()
    config = read_config(parent)
    config["intermediate_size"] = physical
    write_config(out, config)
    copy_side_files(parent, out)
    return writer


def mlp_slice(name: str, tensor: torch.Tensor, keep: list[torch.Tensor], physical: int) -> torch.Tensor:
    """gate/up rows and down columns of the kept neurons, then zeros up to `physical` (the same object for every
    other tensor)."""
    match = LAYER.match(name)
    if match is None:
        return tensor
    index, rest = int(match[1]), match[2]
    pad = physical - len(keep[index])
    if rest in ("mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.gate_proj.bias", "mlp.up_proj.bias"):
        narrow = tensor.index_select(0, keep[index])
        return torch.cat([narrow, narrow.new_zeros((pad, *narrow.shape[1:]))]) if pad else narrow
    if rest == "mlp.down_proj.weight":
        narrow = tensor.index_select(1, keep[index])
        return torch.cat([narrow, narrow.new_zeros((narrow.shape[0], pad))], dim=1) if pad else narrow
    return tensor
