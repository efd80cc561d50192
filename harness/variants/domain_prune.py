"""Domain-aware unstructured pruning with a D-Pruner-style dual importance.

D-Pruner (arXiv 2405.06275; reference variants.md §3.7; its code is not released and its exact
equations are unverified there) scores weights in two steps: (1) a general importance G from the
loss change that removing each weight causes on an open-domain calibration set, by a Taylor /
empirical-Fisher approximation; (2) the importance of each weight for a domain calibration set under a
refined loss = next-token loss + a regulariser weighted by G that penalises changing weights general
ability needs. Prune by the result.

Our reading, stated so it can be checked:
- Importance of weight m on text set X (LLM-Pruner's element-wise second-order Taylor, which D-Pruner
  builds on): removing w_m changes the mean next-token loss by ΔL ≈ −ḡ_m·w_m + ½·F_m·w_m², with ḡ the
  mean gradient and F the empirical Fisher (mean over calibration windows of the squared per-window
  gradient); I_X(m) = |ΔL|.
- General importance G = I_FLORES+ (the general corpus). The refined loss L_domain + λ·R, whose
  regulariser charges G_m for removing weight m, has removal cost S_m = I_domain(m) + λ·G_m, λ the
  recipe's `general_weight` (0: domain only; large: general only). Both terms are in nats, so λ = 1
  weighs a unit of general loss like a unit of domain loss.
- Comparison group: each output row (as Wanda), so every row of every decoder Linear loses exactly
  ⌊s·columns⌋ weights; N:M patterns work as for Wanda. No weight update (one shot, as D-Pruner).

Gradients come from whole-model backward passes on `n_samples` windows of `seqlen` tokens of each set,
one window at a time (the per-window gradients give the Fisher), in float32 on CPU.
"""

from __future__ import annotations

from pathlib import Path

import torch

from harness.variants.calibration import calibration_batch, load_model, source_text, text_windows
from harness.variants.manifest import MethodResult
from harness.variants.prune import _write_masked, is_target, prune_mask
from harness.weights.folders import WeightReader


def taylor_importance(model, input_ids: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """|−ḡ·w + ½·F·w²| for every named weight over the windows of `input_ids` (one backward per window)."""
    params = dict(model.named_parameters())
    for param in model.parameters():
        param.requires_grad_(False)
    for name in names:
        params[name].requires_grad_(True)
    grad_sum = {name: torch.zeros_like(params[name], dtype=torch.float64) for name in names}
    fisher_sum = {name: torch.zeros_like(params[name], dtype=torch.float64) for name in names}
    for row in input_ids:
        model.zero_grad(set_to_none=True)
        ids = row.unsqueeze(0)
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        for name in names:
            grad = params[name].grad.double()
            grad_sum[name] += grad
            fisher_sum[name] += grad * grad
    n = len(input_ids)
    out = {}
    for name in names:
        w = params[name].detach().double()
        params[name].grad = None
        params[name].requires_grad_(False)
        out[name] = (-(grad_sum.pop(name) / n) * w + 0.5 * (fisher_sum.pop(name) / n) * w * w).abs()
    return out


def domain_batch(tokenizer, domain: str, n_samples: int, seqlen: int, seed: int):
    """Windows of the domain text: a built-in task's train split (question and correct answer) or a file."""
    from harness.tasks.registry import builtin_tasks

    if domain in builtin_tasks():
        describe = {"dataset": f"built-in task {domain}, train split (question and correct answer per item)"}
    else:
        describe = {"dataset": f"text file {domain}"}
    # another seed than the general windows': the two sets are drawn independently
    return text_windows(tokenizer, source_text(domain), n_samples, seqlen, seed + 1, describe, label="domain")


def dual_scores(model, general_ids: torch.Tensor, domain_ids: torch.Tensor, general_weight: float,
                names: list[str]) -> tuple[dict[str, torch.Tensor], dict]:
    """S = I_domain + general_weight·I_general per weight, and summary statistics of both terms."""
    general = taylor_importance(model, general_ids, names)
    domain = taylor_importance(model, domain_ids, names)
    totals = {"general_importance_sum": sum(float(t.sum()) for t in general.values()),
              "domain_importance_sum": sum(float(t.sum()) for t in domain.values())}
    return {name: domain[name] + general_weight * general.pop(name) for name in names}, totals


def domain_prune(spec, parent: Path, out: Path, steps) -> MethodResult:
    model, tokenizer = load_model(parent)
    general = calibration_batch(tokenizer, spec.n_samples, spec.seqlen, spec.seed)
    domain = domain_batch(tokenizer, spec.domain, spec.n_samples, spec.seqlen, spec.seed)
    names = [name for name, param in model.named_parameters() if is_target(name, tuple(param.shape))]
    reader = WeightReader(parent)
    steps.start(len(reader.names()) + 1)
    scores, totals = dual_scores(model, general.input_ids, domain.input_ids, spec.general_weight, names)
    del model
    steps.advance()

    def masked(name: str, tensor: torch.Tensor) -> torch.Tensor:
        if name not in scores:
            return tensor
        return tensor.masked_fill(prune_mask(scores.pop(name).float(), spec.sparsity, spec.n_m, per_row=True), 0)

    stats = _write_masked(reader, parent, out, masked, steps.advance)
    stats.update({"score": "|dL_domain| + general_weight * |dL_general| (second-order Taylor, empirical Fisher)",
                  "comparison_group": "output row" if spec.n_m is None else f"{spec.pattern} groups", **totals})
    return MethodResult(stats, calibration={"general": general.record, "domain": domain.record})
