"""Build hpo/data/prune_smollm2.csv: bits per byte of SmolLM2-135M under per-group magnitude pruning.

The `prune-smollm2` HPO task (hpo/tasks.py) looks its costs up in this table, so optimizer comparisons
on the project's own domain never run a model in CI. Every grid point is a real evaluation: the 30
decoder layers are split into 4 contiguous groups, each group's linear weights (q, k, v, o, gate, up,
down) are magnitude-pruned per matrix at one ratio from LEVELS, and each of the first N_ITEMS FLORES+
English sentences is scored as bits per byte. Hidden states are cached per prefix of group ratios
(layers run in order), which makes the 4^4 grid cost about a third of 256 full forward passes.

Run once (about 10-20 min on one CPU thread): python scripts/make_hpo_prune_grid.py
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from harness.weights.models import materialize, resolve
from harness.common.paths import results_dir
from harness.tasks.english_text import flores_sentences

LEVELS = (0.0, 0.2, 0.4, 0.6)
GROUPS = ((0, 8), (8, 15), (15, 23), (23, 30))
N_ITEMS = 8
MATRICES = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
OUT = Path(__file__).resolve().parents[1] / "hpo" / "data" / "prune_smollm2.csv"


def _linears(model, layer: int) -> list[torch.nn.Linear]:
    block = model.model.layers[layer]
    return [block.get_submodule(name) for name in MATRICES]


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    resolved = materialize(resolve("smollm2-135m"), results_dir() / "models")
    tok = AutoTokenizer.from_pretrained(resolved.path)
    model = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=torch.float32).eval()
    sentences = flores_sentences()[:N_ITEMS]
    ids = [[tok.bos_token_id or tok.eos_token_id] + tok(s)["input_ids"] for s in sentences]
    width = max(len(x) for x in ids)
    input_ids = torch.tensor([x + [tok.pad_token_id] * (width - len(x)) for x in ids])
    real = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids], dtype=torch.bool)
    n_bytes = torch.tensor([len(s.encode("utf-8")) for s in sentences], dtype=torch.float64)

    originals = {(layer, i): lin.weight.detach().clone()
                 for layer in range(len(model.model.layers)) for i, lin in enumerate(_linears(model, layer))}
    group_params = [sum(originals[(layer, i)].numel() for layer in range(a, b) for i in range(len(MATRICES)))
                    for a, b in GROUPS]

    def prune_group(group: int, ratio: float) -> None:
        a, b = GROUPS[group]
        for layer in range(a, b):
            for i, lin in enumerate(_linears(model, layer)):
                w = originals[(layer, i)]
                k = int(round(ratio * w.numel()))
                if k == 0:
                    lin.weight.data.copy_(w)
                    continue
                threshold = w.abs().flatten().kthvalue(k).values
                lin.weight.data.copy_(torch.where(w.abs() > threshold, w, torch.zeros_like(w)))

    position_ids = torch.arange(width).unsqueeze(0)
    rows = []
    started = time.time()
    with torch.no_grad():
        hidden0 = model.model.embed_tokens(input_ids)
        rope = model.model.rotary_emb(hidden0, position_ids=position_ids)

        def run_group(hidden: torch.Tensor, group: int) -> torch.Tensor:
            a, b = GROUPS[group]
            for layer in model.model.layers[a:b]:
                hidden = layer(hidden, attention_mask=None, position_ids=position_ids, position_embeddings=rope)
            return hidden

        def bits_per_byte(logits: torch.Tensor) -> torch.Tensor:
            logp = torch.log_softmax(logits[:, :-1].double(), dim=-1).gather(-1, input_ids[:, 1:, None])[..., 0]
            nats = -(logp * real[:, 1:]).sum(dim=1)
            return nats / math.log(2) / n_bytes

        def head(hidden: torch.Tensor) -> torch.Tensor:
            return model.lm_head(model.model.norm(hidden))

        # The layer-by-layer path must agree with the model's own forward before the grid is trusted.
        manual = hidden0
        for group in range(len(GROUPS)):
            manual = run_group(manual, group)
        reference = bits_per_byte(model(input_ids=input_ids).logits)
        manual_bpb = bits_per_byte(head(manual))
        assert torch.allclose(manual_bpb, reference, atol=1e-5), (manual_bpb, reference)

        # Depth-first over groups: the state after group g depends only on the ratios of groups 0..g.
        def descend(hidden: torch.Tensor, group: int, prefix: tuple[float, ...]) -> None:
            for ratio in LEVELS:
                prune_group(group, ratio)
                out = run_group(hidden, group)
                if group + 1 < len(GROUPS):
                    descend(out, group + 1, prefix + (ratio,))
                else:
                    bpb = bits_per_byte(head(out))
                    rows.extend((*prefix, ratio, item, float(v)) for item, v in enumerate(bpb))
                    done = len(rows) // N_ITEMS
                    if done % 16 == 0:
                        print(f"{done}/{len(LEVELS) ** len(GROUPS)} configs, {time.time() - started:.0f}s", flush=True)

        descend(hidden0, 0, ())

    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="") as handle:
        handle.write("# " + json.dumps({
            "model": "smollm2-135m", "fingerprint": resolved.weights_sha256, "groups": GROUPS,
            "group_params": group_params, "levels": LEVELS, "items": "first FLORES+ devtest English sentences",
            "metric": "bits_per_byte", "pruning": "unstructured magnitude per matrix",
        }) + "\n")
        writer = csv.writer(handle)
        writer.writerow([f"r{g}" for g in range(len(GROUPS))] + ["item", "bpb"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {OUT} in {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
