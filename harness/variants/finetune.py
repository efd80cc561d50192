"""Fine-tuned experts: a short AdamW loop on the train split of one built-in task.

Merging is about combining what experts learnt, so the reproduction needs experts that differ from
their base in a known, measurable way. Each step trains on a batch of (question, correct answer)
pairs with the loss on the answer tokens only: exactly the log-probability multiple-choice scoring
reads. Embeddings, the output layer and norms are frozen by default (`frozen`), the tensors PCB
leaves at the base, so every merge method sees the same task vectors.

Deterministic: the batch order comes from the seed, there is no dropout, and torch runs with
deterministic algorithms; the same recipe on the same machine and thread count gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import random
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from harness.variants import answers
from harness.weights.folders import (
    DEFAULT_SHARD_BYTES, ShardWriter, WeightReader, copy_side_files, read_config, write_config,
)
from harness.variants.manifest import MethodResult

N_CHECK = 64  # train items whose answer loss is measured before and after
TRACE_POINTS = 20


def task_items(task: str, split: str, limit: int | None = None) -> list[dict]:
    from harness.tasks.registry import builtin_tasks

    items = builtin_tasks()[task].items(split)
    return items[:limit] if limit is not None else items


def items_sha256(items: list[dict]) -> str:
    payload = "".join(json.dumps(item, sort_keys=True, ensure_ascii=False) + "\n" for item in items)
    return hashlib.sha256(payload.encode()).hexdigest()


def batches(n_items: int, steps: int, batch_size: int, seed: int) -> list[list[int]]:
    """`steps` batches of item indices: seeded shuffles of all items, one after another (epochs)."""
    rng = random.Random(seed)
    order: list[int] = []
    while len(order) < steps * batch_size:
        epoch = list(range(n_items))
        rng.shuffle(epoch)
        order += epoch
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(steps)]


def _lr_factor(step: int, steps: int, warmup: float) -> float:
    """Linear warm-up over the first `warmup` share of steps, then linear decay to zero."""
    ramp = max(1, round(warmup * steps))
    return (step + 1) / ramp if step < ramp else max(0.0, (steps - step) / max(1, steps - ramp))


@contextmanager
def _deterministic() -> Iterator[None]:
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def finetune(spec, parent: Path, out: Path, steps, max_shard_bytes: int = DEFAULT_SHARD_BYTES) -> MethodResult:
    """Train a copy of `parent` as the spec says and write it to `out` with the parent's tensor names and dtypes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    items = task_items(spec.task, "train")
    tokenizer = AutoTokenizer.from_pretrained(parent)
    pad = answers.pad_id(tokenizer)
    pairs = answers.correct_pairs(tokenizer, items)
    model = AutoModelForCausalLM.from_pretrained(parent, dtype=torch.float32)
    trained = []
    for name, param in model.named_parameters():
        param.requires_grad_(not any(part in name for part in spec.frozen))
        if param.requires_grad:
            trained.append(name)
    params = [param for param in model.parameters() if param.requires_grad]
    check = pairs[:N_CHECK]
    model.eval()
    loss_before = answers.mean_loss(model, check, pad)
    optimizer = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, spec.steps, spec.warmup))
    losses: list[float] = []
    steps.start(spec.steps)
    model.train()
    with _deterministic():
        torch.manual_seed(spec.seed)
        for batch in batches(len(pairs), spec.steps, spec.batch_size, spec.seed):
            loss = answers.answer_loss(model, [pairs[i] for i in batch], pad)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            steps.advance()
    model.eval()
    loss_after = answers.mean_loss(model, check, pad)
    n_params = _write(model, parent, out, max_shard_bytes)
    every = max(1, len(losses) // TRACE_POINTS)
    return MethodResult({
        "param_count": n_params,
        "training": {"task": spec.task, "split": "train", "n_items": len(items), "items_sha256": items_sha256(items),
                     "examples_seen": spec.steps * spec.batch_size, "trained_tensors": len(trained),
                     "torch_threads": torch.get_num_threads()},
        "answer_loss_before": round(loss_before, 6),
        "answer_loss_after": round(loss_after, 6),
        "loss_trace": [round(sum(chunk) / len(chunk), 4)
                       for chunk in (losses[i:i + every] for i in range(0, len(losses), every))],
    })


def _write(model, parent: Path, out: Path, max_shard_bytes: int) -> int:
    """The trained tensors under the parent's names (a tied output layer stays unsaved) and dtypes."""
    state = model.state_dict()
    reader = WeightReader(parent)
    writer = ShardWriter(out, max_shard_bytes)
    for name in reader.names():
        writer.add(name, state[name].detach().to(reader.get(name).dtype).clone())
    writer.close()
    write_config(out, read_config(parent))
    copy_side_files(parent, out)
    return writer.n_params
