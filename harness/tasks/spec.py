"""BuiltinTask: what a built-in task is (name, prompt shape, items), independent of lm-eval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from harness.common.errors import HarnessError

OutputType = Literal["multiple_choice", "loglikelihood_rolling"]
HELD_OUT_SPLITS = ("train", "validation")


@dataclass(frozen=True)
class BuiltinTask:
    """A deterministic, offline task.

    Multiple-choice items are dicts {"question": str, "choices": [str, ...], "answer": int}; the
    question is the whole prompt and ends where the answer starts (lm-eval inserts one space
    between prompt and choice, so choices carry no leading space). Perplexity items are
    {"text": str}. `build()` must return the same items on every call (fixed seeds, no clock).

    `build()` is the test split, the only one evaluated and stored. Tasks with enough distinct items
    also have `build_held_out(split)` for "train" and "validation" (for fine-tuning experts and
    tuning merge coefficients): the same format, none of their open questions among the test ones or
    each other's, so training on them never touches what is scored. Adding them changes no test item.
    """

    name: str
    description: str
    version: str
    output_type: OutputType
    build: Callable[[], list[dict]]
    build_held_out: Callable[[str], list[dict]] | None = None

    def items(self, split: str = "test") -> list[dict]:
        """The items of one split: "test" (what `harness eval` scores), "train" or "validation"."""
        if split == "test":
            return self.build()
        if split not in HELD_OUT_SPLITS:
            raise HarnessError(f"task '{self.name}': unknown split '{split}' (test, {', '.join(HELD_OUT_SPLITS)})")
        if self.build_held_out is None:
            raise HarnessError(f"task '{self.name}' has only a test split (tasks with train and validation "
                               f"splits: {', '.join(tasks_with_held_out())})")
        return self.build_held_out(split)

    @property
    def primary_metric(self) -> str:
        return "acc" if self.output_type == "multiple_choice" else "bits_per_byte"

    @property
    def higher_is_better(self) -> bool:
        return self.output_type == "multiple_choice"


def tasks_with_held_out() -> list[str]:
    from harness.tasks.registry import builtin_tasks

    return [name for name, task in builtin_tasks().items() if task.build_held_out is not None]
