"""lm-eval's HFLM, generating each sampled request with its own seed (see backends/sampling.py)."""

from __future__ import annotations

import torch
from lm_eval.models.huggingface import HFLM


class SeededHFLM(HFLM):
    """Identical to HFLM for greedy generation and log-likelihoods. A request whose generation arguments carry a
    `seed` (put there by StoreCachedLM) is its own batch, as HFLM batches only equal arguments, so seeding torch
    right before it makes its sample independent of every other request."""

    def _model_generate(self, context, max_length: int, stop: list[str], **generation_kwargs):
        seed = generation_kwargs.pop("seed", None)
        if seed is not None:
            torch.manual_seed(seed)
        return super()._model_generate(context, max_length, stop, **generation_kwargs)
