"""SparseGPT (Frantar & Alistarh 2023, arXiv:2301.00774): prune each decoder Linear and update its kept
weights so the layer's output on the calibration tokens changes as little as possible.

For one matrix W (rows x cols) with calibration inputs X (cols x tokens) the target is
min ‖WX − ŴX‖²_F over masked Ŵ. Its Hessian is H = 2XXᵀ (the same for every row), so every row can be
solved with the same inverse: the OBS step (Optimal Brain Surgeon) removes weight j and moves the
others by −w_j/[H_F⁻¹]_jj · [H_F⁻¹]_{j,:}, where F is the set of columns not yet fixed. Sweeping the
columns left to right makes F shrink by one column at a time, and the rows of the upper Cholesky factor
U of H⁻¹ (H⁻¹ = UᵀU) are exactly those successive inverses, scaled: U[j, j:] = [H_F⁻¹]_{j,j:}/√[H_F⁻¹]_jj.

- Dampening: H += λ·mean(diag H)·I, λ a fraction (default 0.01), so the Cholesky never fails on
  correlated or rank-deficient inputs. Inputs that never fire (diag 0) get H_jj = 1 and their weights 0.
- Columns are taken in blocks of `block_size`; inside a block the updates are applied column by column,
  the block's accumulated errors are applied to all later columns in one matrix product (lazy batch
  update: same result, far fewer passes over W).
- Mask: score w²/U_jj² (= w²/[H_F⁻¹]_jj, the OBS saliency) on the current, already-updated weights.
  Unstructured: the lowest-scoring entries of the whole rows x block slice, chosen when the block starts
  (so per-row sparsity adapts), with counts rounded cumulatively so each matrix loses exactly
  floor(s·rows·cols) weights, like magnitude. N:M: when a group of M columns starts, each row loses the
  N lowest scores of the group.
- Blocks of the decoder are pruned in order and the calibration activations re-run through each pruned
  block, as for Wanda, so later blocks are fitted to the earlier ones' pruned outputs.

Arithmetic is float64 on CPU, so the Cholesky does not fail for want of precision (a whole SmolLM2-135M
variant took 81 s on one thread); the weights written keep the parent's dtype.
"""

from __future__ import annotations

from pathlib import Path

import torch

from harness.common.errors import HarnessError
from harness.variants.calibration import each_linear_input
from harness.variants.manifest import MethodResult
from harness.variants.prune import _floor, calibrated_prune, prune_mask


def sparsegpt(spec, parent: Path, out: Path, steps) -> MethodResult:
    def prune(weight: torch.Tensor, hessian: torch.Tensor) -> torch.Tensor:
        return prune_matrix(weight, hessian, spec.sparsity, spec.n_m, spec.block_size, spec.dampening)

    return calibrated_prune("sparsegpt", spec, parent, out, steps, input_hessians, prune)


def input_hessians(layer, linears: dict, hidden: torch.Tensor, kwargs: dict) -> dict[str, torch.Tensor]:
    """H = (2/n)·Σ x xᵀ over the n calibration tokens entering every Linear of the block (float64).

    q, k and v (and gate and up) are called one after another on the same tensor: its H is computed once
    and shared. The last input is held, so its identity cannot pass to a new tensor in the meantime."""
    hessians: dict[str, torch.Tensor] = {}
    last: list = [None, None]  # [input tensor, its H]

    def take(name: str, inputs: torch.Tensor) -> None:
        if inputs is not last[0]:
            x = inputs.reshape(-1, inputs.shape[-1]).double()
            last[:] = [inputs, x.T @ x * (2 / x.shape[0])]
        hessians[name] = last[1]

    each_linear_input(layer, linears, hidden, kwargs, take)
    return hessians


def prune_matrix(weight: torch.Tensor, hessian: torch.Tensor, sparsity: float, n_m: tuple[int, int] | None,
                 block_size: int, dampening: float) -> torch.Tensor:
    """The pruned and updated copy of `weight` (float64): the column sweep described in the module doc."""
    w = weight.double().clone()
    rows, cols = w.shape
    if n_m is not None and cols % n_m[1]:
        raise HarnessError(f"pattern {n_m[0]}:{n_m[1]}: a matrix has {cols} input columns, not a multiple of {n_m[1]}")
    if n_m is not None and block_size % n_m[1]:
        raise HarnessError(f"block_size {block_size} is not a multiple of M={n_m[1]}: groups would straddle blocks")
    h = hessian.double().clone()
    dead = torch.diagonal(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h += dampening * torch.diagonal(h).mean() * torch.eye(cols, dtype=h.dtype)
    u = _inverse_cholesky_upper(h)
    # Work on Wᵀ: column j of W is then the contiguous row j, and each OBS step is one in-place rank-1
    # update (addr_) of the block's remaining rows.
    t = w.T.contiguous()
    removed_before = 0
    for start in range(0, cols, block_size):
        end = min(start + block_size, cols)
        block = t[start:end]  # a view: updates land in t
        u_block = u[start:end, start:end]
        diagonal = torch.diagonal(u_block).unsqueeze(1)
        mask = torch.zeros_like(block, dtype=torch.bool)  # [column, row], like block
        if n_m is None:
            # cumulative rounding: the blocks' counts add up to floor(s·rows·cols) exactly
            removed_by_end = _floor(sparsity * rows * end)
            mask = _lowest((block**2 / diagonal**2).T, removed_by_end - removed_before).T
            removed_before = removed_by_end
        # error_j = w_j/U_jj where w_j is removed, 0 where kept; subtracting error_j·U[j, j:] also zeroes w_j
        # itself up to round-off, made exact by the masked_fill after the sweep
        scaled_mask = mask / diagonal
        errors = torch.empty_like(block)
        for j in range(end - start):
            if n_m is not None and j % n_m[1] == 0:
                group = slice(j, j + n_m[1])
                mask[group] = prune_mask((block[group] ** 2 / diagonal[group] ** 2).T, 0.0, n_m, per_row=True).T
                scaled_mask[group] = mask[group] / diagonal[group]
            torch.mul(block[j], scaled_mask[j], out=errors[j])
            block[j:].addr_(u_block[j, j:], errors[j], alpha=-1)
        block.masked_fill_(mask, 0)
        t[end:].addmm_(u[start:end, end:].T, errors, alpha=-1)  # the lazy update of all later columns
    return t.T.contiguous()


def _inverse_cholesky_upper(h: torch.Tensor) -> torch.Tensor:
    """U upper-triangular with H⁻¹ = UᵀU; one line of refusal if H is not positive definite."""
    lower, info = torch.linalg.cholesky_ex(h)
    if int(info):
        raise HarnessError("sparsegpt: the dampened input Hessian is not positive definite; raise dampening")
    upper, info = torch.linalg.cholesky_ex(torch.cholesky_inverse(lower), upper=True)
    if int(info):
        raise HarnessError("sparsegpt: the inverse input Hessian is not positive definite; raise dampening")
    return upper


def _lowest(scores: torch.Tensor, count: int) -> torch.Tensor:
    """True at the `count` lowest scores of the whole slice; ties fall to the lower flat index (stable)."""
    order = scores.reshape(-1).argsort(stable=True)[:count]
    return torch.zeros(scores.numel(), dtype=torch.bool).scatter_(0, order, True).reshape(scores.shape)
