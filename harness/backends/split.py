"""How a (context, continuation) pair becomes tokens: lm-eval's own rule, in one place.

The store's token counts and the fine-tuning/PCB scorer must split a pair exactly as the evaluation does,
else a trailing space or newline of the prompt is counted (or scored) on the wrong side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def encode_pair(encode: Callable[[str], Sequence[int]], context: str,
                continuation: str) -> tuple[list[int], list[int]]:
    """(context tokens, continuation tokens) as lm-eval 0.4.13 computes them for causal models.

    Mirrors `TemplateLM._encode_pair` in lm_eval/api/model.py (which HFLM inherits): all trailing
    whitespace of the context (`str.rstrip()`: spaces, newlines, tabs) moves to the front of the
    continuation; the continuation's tokens are those of the whole text after the context's own tokens.
    A context that is empty or only whitespace leaves the whole text to the continuation when `encode`
    adds no special tokens.
    """
    n_moved = len(context) - len(context.rstrip())
    if n_moved:
        context, continuation = context[:-n_moved], context[-n_moved:] + continuation
    context_ids = list(encode(context))
    return context_ids, list(encode(context + continuation))[len(context_ids):]
