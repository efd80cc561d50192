"""The transformers backend: lm-eval's own HFLM, built lazily, plus a token counter for the store."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable

from lm_eval.api.model import LM

from harness.backends.split import encode_pair


def build_hf(path: Path, batch_size: int, device: str, dtype: str, trust_remote_code: bool = False,
             shared_prefix: bool = True) -> LM:
    """lm-eval's HFLM over a local folder, scoring each multiple-choice context once (SharedPrefixHFLM; HFLM's
    own scoring with shared_prefix=False, for measurements against lm-eval's own rows); both seed each sampled
    generation request on its own and score rolling windows in one call (HarnessHFLM).

    lm-eval's own context grouping (logits_cache) stays on for what the shared path leaves to it. Both
    safety switches are explicit (never the library's default): remote code only when the user allowed it,
    and safetensors only (pickle checkpoints were converted by harness.weights.models first).
    """
    from harness.backends.hflm import HarnessHFLM
    from harness.backends.shared_prefix import SharedPrefixHFLM

    return (SharedPrefixHFLM if shared_prefix else HarnessHFLM)(
        pretrained=str(path), batch_size=batch_size, device=device, dtype=dtype, logits_cache=True,
        trust_remote_code=trust_remote_code, use_safetensors=True)


def token_counter(tokenizer) -> Callable[[str, str], int]:
    """Count continuation tokens the way lm-eval splits (context, continuation) for causal models."""

    @lru_cache(maxsize=4096)
    def encode(text: str) -> tuple[int, ...]:
        return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])

    def count(context: str, continuation: str) -> int:
        return len(encode_pair(encode, context, continuation)[1])

    return count
