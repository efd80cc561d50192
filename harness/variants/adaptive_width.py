"""`mlp_width` with `adaptive = true`: per-layer MLP widths found by AMP's search, under the uniform budget.

AMP (Adaptive MLP Pruning, arXiv 2603.08100; reference variants.md §3.6; re-implemented from the paper's
description, none of its CC-BY-NC code is used):

- Neuron score: first-order Taylor on the input a of the MLP output projection (for SwiGLU
  a = act(gate·x) ⊙ (up·x)): s_j = mean over tokens of |a_j · ∂L/∂a_j|, with L the label-free entropy of
  the model's own next-token predictions (AMP's loss; no labels are read).
- Width search: blocks from last to first; in each, neurons sorted by score, the kept width is
  binary-searched (at most 6 steps, as AMP) for the smallest width whose calibration loss exceeds the
  loss before this block was pruned by at most a tolerance ε (AMP: ε = log 1.02, i.e. 2% perplexity per
  block). The loss is the language-model cross-entropy on calibration windows (our LM reading of AMP's
  validation loss). Blocks before the current one are still dense, so each candidate is evaluated by
  running only the blocks from the current one onward, from cached inputs.
- Budget (ours: the issue asks for the uniform run's parameter count): AMP fixes ε and lets the total
  fall where it may; here ε is bracketed from AMP's value outwards and bisected (`search_rounds` steps;
  ε may go negative, as pruning sometimes lowers the loss) for the smallest ε whose
  widths fit in L·k neurons, k the uniform `mlp_width` width at the same `ratio` and `multiple`. Any
  neurons left over (the budget minus that total, a multiple of `multiple`) go back, one `multiple`
  at a time, to the blocks whose accepted loss increase was largest. So Σ widths = L·k exactly.

Widths are multiples of `multiple`. Llama-style configs hold one `intermediate_size` (reference §4.3:
transformers and vLLM reject per-layer widths), so the export is physically as wide as the widest
block and the narrower blocks are zero-padded to it (zero gate/up rows and down columns: exactly
equivalent to removing the neurons); the manifest says so (`zero_padded`, `effective_param_count`).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from harness.common.errors import HarnessError
from harness.variants.calibration import calibration_batch, decoder_layers, first_block_inputs, load_model, run_block
from harness.variants.manifest import MethodResult
from harness.variants.structured import _mlp, kept_width, write_mlp_widths
from harness.weights.folders import WeightReader, read_config

AMP_TOLERANCE = math.log(1.02)  # AMP's per-block loss tolerance
AMP_MAX_STEPS = 6  # AMP's binary-search steps per block


def taylor_entropy_scores(model, input_ids: torch.Tensor) -> list[torch.Tensor]:
    """s_j = mean over tokens of |a_j·∂H/∂a_j| per block, H the mean next-token entropy (one window at a time)."""
    layers, _ = decoder_layers(model)
    downs = [_mlp(layer, "down_proj") for layer in layers]
    sums = [torch.zeros(down.in_features, dtype=torch.float64) for down in downs]
    handles = []
    for index, down in enumerate(downs):
        def pre_hook(_module, args, index=index):
            a = args[0]

            def accumulate(grad, a=a, index=index) -> None:  # returns None: the gradient flows on unchanged
                sums[index].add_((a.detach() * grad).abs().reshape(-1, grad.shape[-1]).sum(dim=0).double())

            a.register_hook(accumulate)
        handles.append(down.register_forward_pre_hook(pre_hook))
    embed = model.get_input_embeddings()
    handles.append(embed.register_forward_hook(lambda _m, _a, out: out.requires_grad_(True)))
    for param in model.parameters():
        param.requires_grad_(False)
    try:
        for row in input_ids:
            logits = model(input_ids=row.unsqueeze(0), use_cache=False).logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            entropy = -(logp.exp() * logp).sum(dim=-1).mean()
            entropy.backward()
    finally:
        for handle in handles:
            handle.remove()
    n_tokens = input_ids.numel()
    return [(total / n_tokens).float() for total in sums]


class _Masks:
    """0/1 masks on the input of every block's down_proj (a neuron masked out contributes nothing)."""

    def __init__(self, downs):
        self.masks: list[torch.Tensor | None] = [None] * len(downs)
        self.handles = [down.register_forward_pre_hook(
            lambda _m, args, index=index: None if self.masks[index] is None else (args[0] * self.masks[index],))
            for index, down in enumerate(downs)]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def search_widths(model, input_ids: torch.Tensor, scores: list[torch.Tensor], budget: int, multiple: int,
                  rounds: int) -> dict:
    """Per-block widths (multiples of `multiple`, summing to `budget`) by AMP's last-to-first search."""
    layers, _ = decoder_layers(model)
    downs = [_mlp(layer, "down_proj") for layer in layers]
    width = downs[0].in_features
    grid = list(range(multiple, width + 1, multiple))
    if width % multiple:
        grid.append(width)
    orders = [score.argsort(descending=True, stable=True) for score in scores]
    hidden, kwargs = first_block_inputs(model, input_ids)
    inputs = [hidden]
    for layer in layers[:-1]:
        inputs.append(run_block(layer, inputs[-1], kwargs))
    masks = _Masks(downs)
    targets = input_ids[:, 1:].reshape(-1)

    def loss_from(start: int) -> float:
        h = inputs[start]
        for layer in layers[start:]:
            h = run_block(layer, h, kwargs)
        with torch.no_grad():
            logits = model.lm_head(model.model.norm(h))[:, :-1].float()
            return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets).item()

    def mask(index: int, kept: int) -> torch.Tensor:
        m = torch.zeros(width)
        m[orders[index][:kept]] = 1
        return m

    def one_pass(tolerance: float) -> tuple[list[int], list[float]]:
        masks.masks = [None] * len(layers)
        widths, increases = [width] * len(layers), [0.0] * len(layers)
        previous = loss_from(0) if not dense_loss else dense_loss[0]
        dense_loss[:] = [previous]
        for index in reversed(range(len(layers))):
            low, high = 0, len(grid) - 1  # grid[high] = full width: always within tolerance
            accepted = previous
            for _ in range(AMP_MAX_STEPS):
                if low >= high:
                    break
                middle = (low + high) // 2
                masks.masks[index] = mask(index, grid[middle])
                loss = loss_from(index)
                if loss - previous <= tolerance:
                    high, accepted = middle, loss
                else:
                    low = middle + 1
            widths[index] = grid[high]
            if grid[high] == width:
                masks.masks[index], accepted = None, previous
            else:
                masks.masks[index] = mask(index, grid[high])
                if accepted == previous:  # high never moved onto an evaluated width
                    accepted = loss_from(index)
            increases[index] = accepted - previous
            previous = accepted
        return widths, increases

    dense_loss: list[float] = []
    trace = []

    def attempt(tolerance: float) -> tuple[float, list[int], list[float]]:
        widths, increases = one_pass(tolerance)
        trace.append({"tolerance": tolerance, "total": sum(widths)})
        return tolerance, widths, increases

    try:
        # Bracket: total(ε) falls as ε grows; ε may be negative (on some models pruning lowers the loss), and
        # ε → -inf keeps every block whole. Start at AMP's tolerance and step away from it, doubling.
        fitted = attempt(AMP_TOLERANCE)
        step = AMP_TOLERANCE
        if sum(fitted[1]) <= budget:
            for _ in range(40):
                lower = attempt(fitted[0] - step)
                if sum(lower[1]) > budget:
                    break
                fitted, step = lower, 2 * step
            else:
                raise HarnessError("mlp_width: the search found no tolerance that keeps more than the budget")
            low_t = lower[0]
        else:
            for _ in range(40):  # at worst every block at one `multiple`, which always fits the budget
                low_t, step = fitted[0], 2 * step
                fitted = attempt(fitted[0] + step)
                if sum(fitted[1]) <= budget:
                    break
            else:
                raise HarnessError(f"mlp_width: no tolerance fits {budget} neurons")
        for _ in range(rounds):  # the smallest tolerance that still fits: as little loss as the budget allows
            candidate = attempt((low_t + fitted[0]) / 2)
            if sum(candidate[1]) <= budget:
                fitted = candidate
            else:
                low_t = candidate[0]
    finally:
        masks.remove()
    tolerance, widths, increases = fitted
    widths = list(widths)
    leftover = budget - sum(widths)
    by_increase = sorted(range(len(widths)), key=lambda i: (-increases[i], i))
    while leftover > 0:
        grown = False
        for index in by_increase:
            step = min(multiple, width - widths[index], leftover)
            if step > 0:
                widths[index] += step
                leftover -= step
                grown = True
            if leftover == 0:
                break
        if not grown:
            raise HarnessError(f"mlp_width: budget {budget} exceeds the parent's {len(widths) * width} neurons")
    return {"widths": widths, "tolerance": tolerance, "loss_increases": [round(v, 6) for v in increases],
            "dense_loss": round(dense_loss[0], 6), "search_trace": trace, "orders": orders}


def adaptive_mlp_width(spec, parent: Path, out: Path, steps) -> MethodResult:
    model, tokenizer = load_model(parent)
    intermediate = model.config.intermediate_size
    if not isinstance(intermediate, int):
        raise HarnessError("mlp_width: the parent has per-layer MLP widths; expected one intermediate_size")
    uniform = kept_width(intermediate, spec.ratio, spec.multiple)
    layers, _ = decoder_layers(model)
    budget = uniform * len(layers)
    calibration = calibration_batch(tokenizer, spec.n_samples, spec.seqlen, spec.seed)
    reader = WeightReader(parent)
    steps.start(len(reader.names()) + 2)
    scores = taylor_entropy_scores(model, calibration.input_ids)
    steps.advance()
    found = search_widths(model, calibration.input_ids[:spec.search_samples], scores, budget, spec.multiple,
                          spec.search_rounds)
    del model
    steps.advance()
    widths = found["widths"]
    physical = max(widths)
    keep = [order[:w].sort().values for order, w in zip(found["orders"], widths)]

    writer = write_mlp_widths(parent, reader, out, steps, keep, physical)
    hidden = read_config(parent)["hidden_size"]
    padded = sum(physical - w for w in widths)
    removed = {str(i): sorted(set(range(intermediate)) - set(k.tolist())) for i, k in enumerate(keep)}
    stats = {"adaptive": True, "score": "AMP Taylor |a_j·dH/da_j|, H = next-token entropy of the parent",
             "intermediate_size_before": intermediate, "intermediate_size_after": physical,
             "widths": widths, "budget": budget, "kept_neurons": sum(widths), "uniform_width": uniform,
             "removed_fraction": 1 - sum(widths) / (intermediate * len(widths)),
             "zero_padded": padded > 0, "padded_neurons": padded,
             "effective_param_count": writer.n_params - 3 * hidden * padded,
             "tolerance": found["tolerance"], "amp_tolerance": AMP_TOLERANCE,
             "loss_increases": found["loss_increases"], "dense_search_loss": found["dense_loss"],
             "search_trace": found["search_trace"], "removed_neurons": removed,
             "param_count": writer.n_params, "parent_param_count": reader.n_params()}
    result = MethodResult(stats, calibration=calibration.record, physical_shapes_equal_parent=physical == intermediate)
    if padded:
        result.notes.append(f"per-layer MLP widths {widths} do not load as one intermediate_size: blocks narrower "
                            f"than {physical} are zero-padded ({padded} neurons of zeros, exactly equivalent)")
    return result
