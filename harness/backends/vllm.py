"""The vLLM backend: an lm-eval TemplateLM over one `vllm.LLM`, scoring single-token choices in one step.

Why our own TemplateLM rather than lm-eval's VLLM class: that class sends every choice of a question as
its own full prefill (`prompt_logprobs` over context + choice), rebuilds the engine on every call when
data parallel, and refuses to import unless a distribution is named `vllm`. Here the engine is built once
per model, every call is one store chunk (see StoreCachedLM), and within a chunk the requests that share a
context (the choices of one question) and are all single tokens get one generation step over that context,
whose top-k log-probabilities score every choice at once. A choice outside the top k (possible on weak models)
falls back to the plain path, so results never depend on k.

Tokenisation, the prefix token and the rolling windows follow lm-eval's HFLM, so the same request gives
the same tokens on both backends (the parity tests check the log-likelihoods).

One engine per process at a time: freeing any vLLM engine tears down vLLM's process-wide parallel state and
breaks every other engine still alive in that process (the runner holds one model's engine at a time).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from lm_eval.api.model import TemplateLM

from harness.backends.rolling import rolling_loglikelihoods

TokenRequest = tuple[tuple[str, str], list[int], list[int]]


class VllmLM(TemplateLM):
    """lm-eval LM over vllm.LLM (one per data-parallel replica, see vllm_replicas); `fast_mc=False` scores every
    request with a full prefill (the plain path)."""

    def __init__(self, path: Path | str, *, dtype: str = "auto", tensor_parallel_size: int = 1,
                 data_parallel_size: int = 1, gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                 enforce_eager: bool = False, seed: int = 1234, fast_mc: bool = True, top_k: int = 20,
                 trust_remote_code: bool = False, **engine_args: Any) -> None:
        super().__init__()
        self.fast_mc = fast_mc
        self.top_k = top_k
        engine = dict(model=str(path), dtype=dtype, tensor_parallel_size=tensor_parallel_size,
                      gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                      enforce_eager=enforce_eager, seed=seed, max_logprobs=top_k,
                      trust_remote_code=trust_remote_code, load_format="safetensors", **engine_args)
        if data_parallel_size > 1:
            import torch
            from transformers import AutoTokenizer

            from harness.backends.vllm_replicas import ReplicatedLLM

            gpus = tensor_parallel_size if torch.cuda.is_available() else 0
            self.llm = ReplicatedLLM(data_parallel_size, gpus, engine)
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
            model_len = self.llm.max_model_len
        else:
            from vllm import LLM

            self.llm = LLM(**engine)
            self.tokenizer = self.llm.get_tokenizer()
            model_len = self.llm.llm_engine.model_config.max_model_len
        # A prompt plus the one step vLLM always generates must fit the model length.
        self.max_prompt_len = model_len - 1
        # A rolling window is the tokens it predicts plus the one before them: it must fit a prompt.
        self.window = self.max_prompt_len - 1
        self._prefix_text = self.tokenizer.decode([self.prefix_token_id])
        self.n_prompts = 0

    # tokenisation, as HFLM does it ------------------------------------------------------
    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.tokenizer.eos_token_id

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        if add_special_tokens is None and self._prefix_text and string.startswith(self._prefix_text):
            add_special_tokens = False  # the text already carries its BOS
        if add_special_tokens is None:
            return self.tokenizer.encode(string)
        return self.tokenizer.encode(string, add_special_tokens=add_special_tokens)

    # log-likelihoods -----------------------------------------------------------------------
    def _loglikelihood_tokens(self, requests: list[TokenRequest], disable_tqdm: bool = False,
                              **kwargs) -> list[tuple[float, bool]]:
        pairs = [self._fit(context, continuation) for _, context, continuation in requests]
        questions: dict[tuple[int, ...], list[int]] = defaultdict(list)  # requests sharing a context
        for i, (context, _) in enumerate(pairs):
            questions[context].append(i)
        single_token = [group for group in questions.values()
                        if self.fast_mc and all(len(pairs[i][1]) == 1 for i in group)]
        answers = self._score_single_tokens(pairs, single_token)
        answers.update(self._score_full(pairs, [i for i in range(len(pairs)) if i not in answers]))
        return [answers[i] for i in range(len(pairs))]

    def _fit(self, context: list[int], continuation: list[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Left-truncate context + continuation to the prompt length, keeping at least one context token."""
        if len(continuation) >= self.max_prompt_len:
            raise ValueError(f"continuation of {len(continuation)} tokens does not fit max_model_len "
                             f"{self.max_prompt_len + 1}")
        whole = (context + continuation)[-self.max_prompt_len:]
        return tuple(whole[:len(whole) - len(continuation)]), tuple(continuation)

    def _score_single_tokens(self, pairs, questions: list[list[int]]) -> dict[int, tuple[float, bool]]:
        """One generation step per question (shared context); each choice token read from the top-k log-probs."""
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=self.top_k, detokenize=False)
        outputs = self._generate([pairs[group[0]][0] for group in questions], params)
        answers = {}
        for group, output in zip(questions, outputs):
            top = output.outputs[0].logprobs[0]
            for i in group:
                entry = top.get(pairs[i][1][0])
                if entry is not None:  # outside the top k: left for the plain path
                    answers[i] = (float(entry.logprob), entry.rank == 1)
        return answers

    def _score_full(self, pairs, indices: list[int]) -> dict[int, tuple[float, bool]]:
        """One prefill of context + continuation per distinct pair, summing the continuation's prompt log-probs."""
        from vllm import SamplingParams

        distinct = list(dict.fromkeys(pairs[i] for i in indices))
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
        outputs = self._generate([context + continuation for context, continuation in distinct], params)
        scores = {}
        for (context, continuation), output in zip(distinct, outputs):
            positions = range(len(context), len(context) + len(continuation))
            entries = [output.prompt_logprobs[p][output.prompt_token_ids[p]] for p in positions]
            scores[(context, continuation)] = (float(sum(e.logprob for e in entries)),
                                               all(e.rank == 1 for e in entries))
        return {i: scores[pairs[i]] for i in indices}

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Disjoint windows predicting at most `window` tokens each, the first opened by the prefix token, as HFLM
        does with its max_length; documents within one window score identically on both backends."""
        return rolling_loglikelihoods([req.args[0] for req in requests], self.tok_encode, self.prefix_token_id,
                                      self.window, self._loglikelihood_tokens)

    # generation ------------------------------------------------------------------------
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Generation up to each request's stop strings (vLLM cuts the text at the first one): greedy, or sampled
        with the request's own seed when StoreCachedLM gave it one (backends/sampling.py)."""
        from vllm import SamplingParams

        prompts, params = [], []
        for context, gen_kwargs in (req.args for req in requests):
            until = gen_kwargs.get("until") or []
            max_tokens = int(gen_kwargs.get("max_gen_toks", 256))
            prompts.append(tuple(self.tok_encode(context)[-max(1, self.max_prompt_len + 1 - max_tokens):]))
            sampling = {} if "seed" not in gen_kwargs else {
                "temperature": float(gen_kwargs["temperature"]), "seed": int(gen_kwargs["seed"]),
                "top_p": float(gen_kwargs.get("top_p", 1.0)), "top_k": int(gen_kwargs.get("top_k", 0)) or -1}
            params.append(SamplingParams(max_tokens=max_tokens, stop=[until] if isinstance(until, str) else list(until),
                                         **({"temperature": 0.0} | sampling)))
        return [output.outputs[0].text for output in self._generate(prompts, params)]

    def _generate(self, prompts: list[tuple[int, ...]], params) -> list:
        if not prompts:
            return []
        self.n_prompts += len(prompts)
        return self.llm.generate([{"prompt_token_ids": list(p)} for p in prompts], params, use_tqdm=False)


def build_vllm(path: Path, settings, trust_remote_code: bool = False) -> VllmLM:
    """The engine for one model, from the run's EvalSettings (pass-through of the vLLM engine options)."""
    return VllmLM(path, dtype=settings.dtype, tensor_parallel_size=settings.tensor_parallel_size,
                  data_parallel_size=settings.data_parallel_size,
                  gpu_memory_utilization=settings.gpu_memory_utilization, max_model_len=settings.max_model_len,
                  enforce_eager=settings.enforce_eager, trust_remote_code=trust_remote_code)
