"""Rolling log-likelihood (perplexity tasks) as lm-eval's HFLM defines it, with every document's windows scored in
one pass over the backend's token scorer.

A document is split into disjoint windows of at most `max_len` tokens, the first opened by the prefix token (lm-eval's
get_rolling_token_windows with context_len=1); its log-likelihood is the sum over its windows. HFLM 0.4.13 hands its
scorer batch_size windows at a time in document order, so each batch is padded to its longest window; scoring them all
in one call lets the scorer batch windows of similar length together (HFLM and vLLM both sort a call's requests
longest first). Each document is tokenised once.
"""

from __future__ import annotations

from typing import Callable

from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

Window = tuple[None, list[int], list[int]]


def rolling_loglikelihoods(texts: list[str], encode: Callable[[str], list[int]], prefix_token: int, max_len: int,
                           score: Callable[[list[Window]], list[tuple[float, bool]]]) -> list[float]:
    """Each text's summed log-likelihood over its windows; `score` answers all windows of all texts in one call."""
    windows: list[Window] = []
    owners: list[int] = []
    for owner, text in enumerate(texts):
        for context, continuation in map(make_disjoint_window, get_rolling_token_windows(
                token_list=encode(text), prefix_token=prefix_token, max_seq_len=max_len, context_len=1)):
            windows.append((None, context, continuation))
            owners.append(owner)
    totals = [0.0] * len(texts)
    for owner, (logprob, _) in zip(owners, score(windows) if windows else []):
        totals[owner] += logprob
    return totals
