"""Domain-aware unstructured pruning with a D-Pruner-style dual importance.

D-Pruner (arXiv 2405.06275; reference variants.md §3.7; its code is not released and its exact
equations are unverified there) scores weights under a refined loss: the loss on a domain calibration
set plus a regulariser, weighted by each weight's importance to an open-domain calibration set, that
charges removing weights general ability needs. Prune by the result.

Our reading, stated so it can be checked, with the layer-wise reconstruction loss Wanda and SparseGPT
prune by in place of the next-token loss:
- For one Linear layer and a text set X, removing weight w_ij changes the squared output error
  ‖WX − ŴX‖² by w_ij²·Σ_t x_tj² (the diagonal of its Hessian 2XXᵀ; cross terms dropped, as in OBD).
  Per calibration token that is w_ij²·E_X[x_j²], whose square root is Wanda's score on X.
- The refined loss is the domain's error plus λ (`general_weight`) times the general text's, so removing
  w_ij costs S_ij = w_ij²·(E_domain[x_j²] + λ·E_general[x_j²]); λ = 0 is Wanda on the domain text
  alone, λ → ∞ Wanda on the general text alone. Both expectations are per token, so λ = 1 weighs a
  token of either text alike whatever the two sets' sizes.
- As Wanda: each output row (or N:M group) loses its lowest scores, no weight update, and blocks are
  pruned in order, each seeing the outputs of the blocks already pruned (both texts go through them).

Why not gradients: our first reading scored weights by a second-order Taylor estimate of the
next-token loss (mean gradient and empirical Fisher from per-window, then per-token gradients) on both
texts. On SmolLM2-135M at 50% it kept less of arith_add_2d than plain Wanda (0.17 and 0.23–0.24
against 0.23 on 100 test items) and cost more on FLORES+; this reading keeps more (README), needs only
forward passes, and so runs at Wanda's cost on any size.
"""

from __future__ import annotations

from pathlib import Path

import torch

from harness.variants.calibration import (
    Calibration, calibration_batch, each_linear_input, source_text, text_windows,
)
from harness.variants.manifest import MethodResult
from harness.variants.prune import calibrated_prune, wanda_prune


def domain_batch(tokenizer, domain: str, n_samples: int, seqlen: int, seed: int) -> Calibration:
    """Windows of the domain text: a built-in task's train split (question and correct answer) or a file."""
    from harness.tasks.registry import builtin_tasks

    if domain in builtin_tasks():
        describe = {"dataset": f"built-in task {domain}, train split (question and correct answer per item)"}
    else:
        describe = {"dataset": f"text file {domain}"}
    # another seed than the general windows': the two sets are drawn independently
    return text_windows(tokenizer, source_text(domain), n_samples, seqlen, seed + 1, describe, label="domain")


def dual_batch(spec):
    """Both calibration sets in one batch, general windows first: (tokenizer) -> Calibration."""
    def calibrate(tokenizer) -> Calibration:
        general = calibration_batch(tokenizer, spec.n_samples, spec.seqlen, spec.seed)
        domain = domain_batch(tokenizer, spec.domain, spec.n_samples, spec.seqlen, spec.seed)
        return Calibration(torch.cat([general.input_ids, domain.input_ids]),
                           {"general": general.record, "domain": domain.record})
    return calibrate


def dual_square_norms(n_general: int, general_weight: float):
    """statistics(layer, linears, hidden, kwargs) -> per Linear E_domain[x_j²] + λ·E_general[x_j²], the
    first `n_general` windows of the batch being the general text."""
    def statistics(layer, linears: dict, hidden: torch.Tensor, kwargs: dict) -> dict[str, torch.Tensor]:
        sums: dict[str, torch.Tensor] = {}

        def take(name: str, x: torch.Tensor) -> None:
            x = x.double()
            general = (x[:n_general] ** 2).reshape(-1, x.shape[-1]).mean(dim=0)
            domain = (x[n_general:] ** 2).reshape(-1, x.shape[-1]).mean(dim=0)
            sums[name] = domain + general_weight * general

        each_linear_input(layer, linears, hidden, kwargs, take)
        return sums
    return statistics


def domain_prune(spec, parent: Path, out: Path, steps) -> MethodResult:
    result = calibrated_prune("domain_prune", spec, parent, out, steps,
                              dual_square_norms(spec.n_samples, spec.general_weight), wanda_prune(spec),
                              calibrate=dual_batch(spec))
    result.stats.update({
        "score": "|W_ij| * sqrt(E_domain[x_j^2] + general_weight * E_general[x_j^2]) (layer-wise, block by block)",
        "comparison_group": "output row" if spec.n_m is None else f"{spec.pattern} groups"})
    return result
