"""Evaluation backends: where log-likelihoods come from. Heavy imports happen only when one is built."""

import importlib.util

from harness.backends.cached import StoreCachedLM, request_hash

BACKENDS = ("hf", "vllm", "auto")


def resolve_backend(name: str) -> str:
    """'auto' is vllm when vllm is installed and a CUDA device is visible, else hf; others are kept."""
    if name != "auto":
        return name
    if importlib.util.find_spec("vllm") is None:
        return "hf"
    import torch

    return "vllm" if torch.cuda.is_available() else "hf"


__all__ = ["BACKENDS", "StoreCachedLM", "request_hash", "resolve_backend"]
