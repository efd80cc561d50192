"""Data parallelism for the vLLM backend: one long-lived engine per replica as a Ray actor.

vllm.LLM refuses data_parallel_size > 1 inside one process, and lm-eval's answer (a fresh engine in a Ray
task on every call) pays engine start-up on every chunk. Here each replica is an actor that owns its LLM
and tensor_parallel_size GPUs for the whole model; a call deals its prompts out in interleaved shares, one
per replica, and puts the answers back in prompt order. Ray is the `distributed` extra; `ray.init()` joins
the cluster named by RAY_ADDRESS, or starts a local one.
"""

from __future__ import annotations

from typing import Any


class _Replica:
    """One engine, built inside its actor process."""

    def __init__(self, engine_args: dict[str, Any]):
        from vllm import LLM

        self.llm = LLM(**engine_args)

    def max_model_len(self) -> int:
        return self.llm.llm_engine.model_config.max_model_len

    def generate(self, prompts: list, params: list) -> list:
        return self.llm.generate(prompts, params, use_tqdm=False)


class ReplicatedLLM:
    """The slice of vllm.LLM that VllmLM uses (generate), spread over `replicas` engines."""

    def __init__(self, replicas: int, gpus_per_replica: int, engine_args: dict[str, Any]):
        import ray

        if not ray.is_initialized():
            ray.init()
        actor = ray.remote(num_gpus=gpus_per_replica)(_Replica)
        self._actors = [actor.remote(engine_args) for _ in range(replicas)]
        self.max_model_len = ray.get(self._actors[0].max_model_len.remote())

    def generate(self, prompts: list, params, use_tqdm: bool = False) -> list:
        import ray

        per_prompt = params if isinstance(params, list) else [params] * len(prompts)
        n = len(self._actors)
        shares = [(r, prompts[r::n], per_prompt[r::n]) for r in range(n) if prompts[r::n]]
        answers = ray.get([self._actors[r].generate.remote(p, s) for r, p, s in shares])
        ordered: list = [None] * len(prompts)
        for (r, _, _), outputs in zip(shares, answers):
            ordered[r::n] = outputs
        return ordered
