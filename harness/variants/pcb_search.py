"""PCB-Merging's optional search of per-model coefficients, scored on held-out data.

The PCB paper tunes one coefficient λ_i per expert with an evolution strategy that maximises
validation accuracy (its code: nevergrad, bounds [0.8, 1.3], start 1.0). Here it is a seeded (1+λ)
evolution strategy: every generation draws `population` candidates around the best so far (Gaussian
steps of `sigma`, clipped to [low, high], rounded to 4 decimals) and keeps the best of them only if it
scores strictly higher. So the result never scores below the starting coefficients on the search's own
score, and the same seed gives the same trace.

The score is mean accuracy on the validation split of the chosen built-in tasks (disjoint from their
train and test items). PCB's scales do not depend on the coefficients, so they are computed once per
tensor; a candidate is then just a weighted sum, loaded into one in-memory model. The chosen
coefficients are merged the normal way (the registered mergekit method), which gives exactly the
tensors of the winning candidate; the trace and scores go into the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from harness.variants import answers, pcb
from harness.weights.folders import DEFAULT_SHARD_BYTES, WeightReader
from harness.variants.finetune import items_sha256, task_items
from harness.variants.manifest import MethodResult


def evolve(score: Callable[[list[float]], float], start: list[float], search, seed: int,
           advance: Callable[[], None] = lambda: None) -> tuple[list[float], float, list[dict]]:
    """(1+λ)-ES from `start`: the best coefficients, their score, and every evaluation in order."""
    rng = np.random.default_rng(seed)
    best = [float(w) for w in start]
    best_score = score(best)
    advance()
    trace = [{"generation": 0, "weights": best, "score": best_score, "kept": True}]
    for generation in range(1, search.generations + 1):
        steps = search.sigma * rng.standard_normal((search.population, len(best)))
        candidates = np.clip(np.asarray(best) + steps, search.low, search.high).round(4)
        scored = []
        for candidate in candidates:
            weights = [float(w) for w in candidate]
            scored.append((score(weights), weights))
            advance()
            trace.append({"generation": generation, "weights": weights, "score": scored[-1][0], "kept": False})
        top = max(range(len(scored)), key=lambda i: scored[i][0])  # first of equals: deterministic
        if scored[top][0] > best_score:
            best_score, best = scored[top]
            trace[len(trace) - len(scored) + top]["kept"] = True
    return best, best_score, trace


def evaluations(search) -> int:
    return 1 + search.generations * search.population


class Candidates:
    """PCB's per-tensor terms of one base and its experts, and the weights a candidate gives them."""

    def __init__(self, spec, base: Path, models: list[Path], advance: Callable[[], None] = lambda: None):
        self.spec = spec
        self.base = WeightReader(base)
        experts = [WeightReader(path) for path in models]
        self.terms: dict[str, tuple[torch.Tensor, torch.Tensor] | None] = {}
        for name in self.base.names():
            if pcb.excluded(name, spec.exclude):
                self.terms[name] = None
            else:
                self.terms[name] = pcb.tensor_terms(self.base.get(name), [e.get(name) for e in experts], spec.ratio)
            advance()

    def tensors(self, weights: list[float]) -> dict[str, torch.Tensor]:
        """What the merge with these coefficients writes, tensor by tensor."""
        return {name: self.base.get(name) if terms is None else pcb.apply(self.base.get(name), terms, weights,
                                                                            self.spec.lambda_)
                for name, terms in self.terms.items()}


def validation_scorer(base: Path, tasks: list[str], limit: int | None, batch_size: int = 32):
    """score(tensors) = mean accuracy over `tasks` of a model holding those tensors (one model, reused)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    pad = answers.pad_id(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    state = model.state_dict()
    items = {task: task_items(task, "validation", limit) for task in tasks}

    @torch.no_grad()
    def score(tensors: dict[str, torch.Tensor]) -> float:
        for name, tensor in tensors.items():
            state[name].copy_(tensor)
        return round(sum(answers.accuracy(model, tokenizer, chosen, pad, batch_size) for chosen in items.values())
                     / len(items), 6)

    return score, items


class _OneBar:
    """One progress bar over the terms, the search and the final merge (merge() restarts its own)."""

    def __init__(self, steps, total: int):
        self.steps = steps
        steps.start(total)

    def start(self, total: int) -> None:
        pass

    def advance(self) -> None:
        self.steps.advance()


def search_then_merge(spec, base: Path, models: list[Path], out: Path, steps,
                      max_shard_bytes: int = DEFAULT_SHARD_BYTES,
                      score_fn: Callable[[dict[str, torch.Tensor]], float] | None = None) -> MethodResult:
    """Search the coefficients, then merge with the best ones; `score_fn` replaces the validation score."""
    from harness.variants.merge import merge

    search = spec.search
    n_tensors = len(WeightReader(base).names())
    bar = _OneBar(steps, 2 * n_tensors + evaluations(search))
    candidates = Candidates(spec, base, models, bar.advance)
    items = None
    if score_fn is None:
        score_fn, items = validation_scorer(base, search.tasks, search.limit)
    start = spec.weights or [1.0] * len(models)
    best, best_score, trace = evolve(lambda w: score_fn(candidates.tensors(w)), start, search, spec.seed, bar.advance)
    del candidates
    result = merge(spec.model_copy(update={"weights": best}), base, models, out, bar, max_shard_bytes)
    result.stats["search"] = {
        "algorithm": "(1+lambda)-ES", "score": "mean validation accuracy" if items is not None else "custom",
        "tasks": search.tasks, "split": "validation", "limit": search.limit,
        "validation_items_sha256": items_sha256([i for chosen in items.values() for i in chosen]) if items else None,
        "start_weights": [float(w) for w in start], "start_score": trace[0]["score"],
        "chosen_weights": best, "chosen_score": best_score, "evaluations": len(trace), "trace": trace,
    }
    return result
