"""Sampled generation that is reproducible and cacheable.

A sampled request (`do_sample=true`, or a temperature above 0 with do_sample unset, as lm-eval reads them) must
carry the user's `seed` in its generation arguments. Each request is then generated with its own seed, derived
from the request's hash (which covers the user's seed, the prompt and every generation argument), so an answer
never depends on batch size, chunking, resuming, which Ray shard computed it, or the requests around it; the
cache can keep it like a greedy answer, and another seed is another request.
"""

from __future__ import annotations

import dataclasses

SEED_HINT = "add seed=N to --gen-kwargs (or to the task's generation_kwargs)"


def is_sampled(gen_kwargs: dict) -> bool:
    """lm-eval 0.4.13's rule (models.utils.normalize_gen_kwargs): do_sample when given, else temperature > 0."""
    if gen_kwargs.get("do_sample") is not None:
        return bool(gen_kwargs["do_sample"])
    return float(gen_kwargs.get("temperature") or 0.0) > 0.0


def sampling_error(gen_kwargs: dict) -> str | None:
    """Why these generation arguments cannot be sampled reproducibly, or None."""
    if not is_sampled(gen_kwargs):
        return None
    if "seed" not in gen_kwargs:
        return f"sampled generation (do_sample/temperature) needs a seed to be reproducible: {SEED_HINT}"
    seed = gen_kwargs["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        return f"gen_kwargs seed={seed!r}: give an integer from 0 to 2^32-1"
    if float(gen_kwargs.get("temperature") or 0.0) <= 0.0:
        return "sampled generation needs temperature > 0 (lm-eval samples nothing at temperature 0)"
    return None


def request_seed(req_hash: str) -> int:
    """The seed one sampled request is generated with: 32 bits of its hash."""
    return int(req_hash[:8], 16)


def with_request_seeds(requests: list, hashes: list[str]) -> list:
    """Copies of sampled generate_until requests whose `seed` is their own; greedy requests pass unchanged."""
    seeded = []
    for req, req_hash in zip(requests, hashes):
        context, gen_kwargs = req.args
        if is_sampled(gen_kwargs):
            gen_kwargs = {**gen_kwargs, "do_sample": True, "seed": request_seed(req_hash)}
            req = dataclasses.replace(req, arguments=(context, gen_kwargs))
        seeded.append(req)
    return seeded
