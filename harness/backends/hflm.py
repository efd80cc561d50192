"""lm-eval's HFLM, generating each sampled request with its own seed (see backends/sampling.py), and scoring all
rolling windows in one call (see backends/rolling.py)."""

from __future__ import annotations

import torch
from lm_eval.models.huggingface import HFLM

from harness.backends.rolling import rolling_loglikelihoods


class HarnessHFLM(HFLM):
    """HFLM's answers, two things done differently. A request whose generation arguments carry a `seed` (put there by
    StoreCachedLM) is its own batch, as HFLM batches only equal arguments, so seeding torch right before it makes its
    sample independent of every other request. Rolling log-likelihoods score every window in one call."""

    def _model_generate(self, context, max_length: int, stop: list[str], **generation_kwargs):
        seed = generation_kwargs.pop("seed", None)
        if seed is not None:
            torch.manual_seed(seed)
        return super()._model_generate(context, max_length, stop, **generation_kwargs)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        if self.backend != "causal":  # seq2seq windows are HFLM's own business
            return super().loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)
        return rolling_loglikelihoods([req.args[0] for req in requests], self.tok_encode, self.prefix_token_id,
                                      self.max_length, self._score_windows)

    def _score_windows(self, windows) -> list[tuple[float, bool]]:
        """Without HFLM's logits cache: windows are never one-token continuations of a shared context, and with
        many documents' windows in one call the cache handed one document another's logits (a first window that is
        a prefix of another document's: tests/test_shared_prefix.py::test_rolling_loglikelihood_is_plain)."""
        cache, self.logits_cache = self.logits_cache, False
        try:
            return self._loglikelihood_tokens(windows, disable_tqdm=True)
        finally:
            self.logits_cache = cache
