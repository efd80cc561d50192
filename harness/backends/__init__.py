"""Evaluation backends: where log-likelihoods come from. Heavy imports happen only when one is built."""

from harness.backends.cached import StoreCachedLM, request_hash

BACKENDS = ("hf",)

__all__ = ["BACKENDS", "StoreCachedLM", "request_hash"]
