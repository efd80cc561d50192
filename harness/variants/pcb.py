"""PCB-Merging (Parameter Competition Balancing, arXiv 2410.02396), as a mergekit merge method.

Follows the authors' released algorithm, applied per tensor (scope "local": quantiles and min-max
are taken within each tensor rather than over the whole flattened model, which is what lets it stream
like every other mergekit method). For task vectors τ_i = θ_i - θ_base of N experts:

1. clamp |τ_i| between its sorted values at positions ⌊d·1e-4⌋ and ⌊d·(1-1e-4)⌋-1; τ̃_i = sign(τ_i)·that;
2. intra_i = exp(N · minmax(|τ̃_i|)²) (self-awareness: large entries of a task matter more);
3. inter_i = tanh(τ_i ⊙ Σ_j τ_j) (cross-awareness: negative where τ_i opposes the consensus);
4. raise every score_i = intra_i ⊙ inter_i below its value at position ⌊d·(1-r)⌋ to that value, then
   min-max to [0, 1]: scale_i is 0 on the dropped fraction and in (0, 1] on the kept top r;
5. θ = θ_base + λ · Σ_i w_i·scale_i⊙τ̃_i / max(Σ_i scale_i, 1e-12), w_i the per-model weights (the
   paper's evolutionary-search coefficients; 1 by default).

Tensors whose name contains an `exclude` entry (embeddings, lm_head, norms by default) keep the base.
"""

from __future__ import annotations

import torch
from mergekit.merge_methods import (
    BasePolicy, GroupMergeMethod, InputContract, MergeMethodSpec, ParameterScope, TensorGroup, get,
    register, registered_methods,
)
from mergekit.merge_methods.base import ParameterSpec

NAME = "pcb"
DEFAULT_EXCLUDE = ("embed_tokens", "lm_head", "norm")
OUTLIER_FRACTION = 1e-4


def _clamp_rows(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Clamp each row to its own sorted values at positions ⌊d·low⌋ and ⌊d·(1-high)⌋-1 (found by
    selection, not a full sort; a position of -1 means the last, as in Python indexing)."""
    d = x.shape[1]
    lower = x.kthvalue(int(d * low) + 1, dim=1, keepdim=True).values
    upper = x.kthvalue((int(d * (1 - high)) - 1) % d + 1, dim=1, keepdim=True).values
    return torch.clamp(x, lower, upper)


def _minmax_rows(x: torch.Tensor) -> torch.Tensor:
    """Min-max each row to [0, 1]; a constant row (nothing to rank) becomes all zeros."""
    low = x.min(dim=1, keepdim=True).values
    span = x.max(dim=1, keepdim=True).values - low
    return torch.where(span > 0, (x - low) / torch.where(span > 0, span, 1), torch.zeros_like(x))


def pcb_terms(deltas: torch.Tensor, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Everything of PCB but the weights, from the stacked task vectors [N, *shape]: each task's scale
    and its clamped task vector, both [N, numel]. The coefficient search computes these once."""
    n = deltas.shape[0]
    flat = deltas.reshape(n, -1)
    magnitude = _clamp_rows(flat.abs(), OUTLIER_FRACTION, OUTLIER_FRACTION)
    clamped = flat.sign() * magnitude
    intra = torch.exp(n * _minmax_rows(magnitude) ** 2)
    inter = torch.tanh(flat * flat.sum(dim=0))
    scale = _minmax_rows(_clamp_rows(intra * inter, 1 - ratio, 0))
    return scale, clamped


def combine(scale: torch.Tensor, clamped: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """The merged (flat) task vector: Σ_i w_i·scale_i⊙τ̃_i / max(Σ_i scale_i, 1e-12)."""
    coefficients = torch.tensor(weights, dtype=clamped.dtype).unsqueeze(1)
    return (coefficients * scale * clamped).sum(dim=0) / scale.sum(dim=0).clamp_min(1e-12)


def excluded(name: str, exclude) -> bool:
    return any(part in name for part in exclude)


def tensor_terms(base: torch.Tensor, experts: list[torch.Tensor], ratio: float):
    """pcb_terms of one parameter tensor, in float32 (float64 if the base is)."""
    work = torch.float64 if base.dtype == torch.float64 else torch.float32
    return pcb_terms(torch.stack([expert.to(work) - base.to(work) for expert in experts]), ratio)


def apply(base: torch.Tensor, terms, weights: list[float], lambda_: float) -> torch.Tensor:
    """θ_base + λ·(merged task vector), back in the base's dtype."""
    scale, clamped = terms
    delta = combine(scale, clamped, weights).reshape(base.shape)
    return (base.to(clamped.dtype) + lambda_ * delta).to(base.dtype)


class PCBMerge(GroupMergeMethod):
    """mergekit's view of PCB: one output tensor at a time, base required."""

    spec = MergeMethodSpec(
        name=NAME,
        pretty_name="PCB-Merging",
        reference_url="https://arxiv.org/abs/2410.02396",
        contract=InputContract(base=BasePolicy.REQUIRED, min_non_base=1),
        parameters=(
            ParameterSpec("ratio", float, ParameterScope.SHARED, default=0.1),
            ParameterSpec("lambda", float, ParameterScope.SHARED, default=1.0),
            ParameterSpec("exclude", tuple[str, ...], ParameterScope.SHARED, default=DEFAULT_EXCLUDE),
            ParameterSpec("weight", float, ParameterScope.NON_BASE, default=1.0),
        ),
    )

    def merge_group(self, group: TensorGroup, /, **parameters) -> torch.Tensor:
        base = group.base.tensor
        if excluded(group.metadata.name or "", parameters["exclude"]):
            return base
        experts = group.non_base
        terms = tensor_terms(base, [entry.tensor for entry in experts], parameters["ratio"])
        return apply(base, terms, parameters["weight"].values_for(experts), parameters["lambda"])


def ensure_registered():
    """Register PCB with mergekit once per process, so `merge_method: pcb` works there like any method."""
    if NAME not in {method.spec.name for method in registered_methods()}:
        register(PCBMerge())
    return get(NAME)
