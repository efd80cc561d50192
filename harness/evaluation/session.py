"""One model's backend and tokenizer, built once and only when a job needs them."""

from __future__ import annotations

from typing import Callable

from harness.common.display import Display
from harness.evaluation.config import EvalSettings
from harness.weights.models import ResolvedModel


class ModelSession:
    """Builds the backend model and its tokenizer once per model, and only when work needs them."""

    def __init__(self, model: ResolvedModel, settings: EvalSettings):
        self.model = model
        self.settings = settings
        self._lm = None
        self._tokenizer = None
        self._counter: Callable[[str, str], int] | None = None

    def lm(self):
        if self._lm is None:
            if self.settings.backend == "vllm":
                from harness.backends.vllm import build_vllm

                self._lm = build_vllm(self.model.path, self.settings, self.model.policy.trust_remote_code)
            else:
                from harness.backends.hf import build_hf

                self._lm = build_hf(self.model.path, self.settings.batch_size, self.settings.device,
                                    self.settings.dtype, self.model.policy.trust_remote_code)
        return self._lm

    def tokenizer(self):
        """The model's tokenizer alone (chat templates, token counts), without loading any weights."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(self.model.path),
                                                            trust_remote_code=self.model.policy.trust_remote_code)
        return self._tokenizer

    def count_tokens(self, context: str, continuation: str) -> int:
        if self._counter is None:
            from harness.backends.hf import token_counter

            self._counter = token_counter(self.tokenizer())
        return self._counter(context, continuation)


def warn_chat_model(model: ResolvedModel, settings: EvalSettings, display: Display) -> None:
    """One line when a model made for chat is evaluated without its chat template (as lm-eval warns)."""
    name = f"{model.name} {model.origin}".lower()
    if settings.apply_chat_template or not any(word in name for word in ("instruct", "chat", "-it")):
        return
    display.note(f"{model.name} looks like a chat/instruct model but no chat template is applied "
                 "(--apply-chat-template); scores may differ a lot either way")
