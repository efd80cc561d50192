"""BuiltinTask: what a built-in task is (name, prompt shape, items), independent of lm-eval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

OutputType = Literal["multiple_choice", "loglikelihood_rolling"]


@dataclass(frozen=True)
class BuiltinTask:
    """A deterministic, offline task.

    Multiple-choice items are dicts {"question": str, "choices": [str, ...], "answer": int}; the
    question is the whole prompt and ends where the answer starts (lm-eval inserts one space
    between prompt and choice, so choices carry no leading space). Perplexity items are
    {"text": str}. `build()` must return the same items on every call (fixed seeds, no clock).
    """

    name: str
    description: str
    version: str
    output_type: OutputType
    build: Callable[[], list[dict]]

    @property
    def primary_metric(self) -> str:
        return "acc" if self.output_type == "multiple_choice" else "bits_per_byte"

    @property
    def higher_is_better(self) -> bool:
        return self.output_type == "multiple_choice"
