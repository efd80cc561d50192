"""lm-eval's HFLM, scoring a multiple-choice question's context once for all of its choices.

HFLM shares a forward pass between requests only when their inputs (context + continuation[:-1]) are the same,
which happens only for single-token choices; a multi-token choice recomputes the whole context, so a 5-shot
4-choice question pays for its prompt four times. Here each distinct context runs once (all but its last
token, with the KV cache kept), and every continuation of it runs on that cache: the suffix
[last context token] + continuation[:-1] yields exactly the logits HFLM reads for the continuation.

Several questions go in one batch: prefixes are right-padded (harmless under causal attention, as in HFLM),
and in the suffix pass a 2D attention mask hides each row's padded cache slots while explicit position ids
continue each row from its own prefix length. lm-eval's token rules are kept: the input is
(context + continuation)[-(max_length + 1):][:-1], so only the context is ever cut, from the left, and a
context is shared only between requests that keep the same tokens of it.

Everything else goes to HFLM's own path unchanged: contexts whose requests HFLM already shares (one distinct
input, e.g. all single-token choices), one-token contexts, rolling log-likelihood, seq2seq models,
automatic batch sizes, and models whose cache is not a plain full-attention DynamicCache (sliding windows,
recurrent state), where a cache of padded prefixes would not be exact.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm import tqdm

from harness.backends.hflm import HarnessHFLM

Request = tuple[tuple[str, str] | None, list[int], list[int]]


@dataclass
class PrefixGroup:
    """Requests that keep the same context tokens; `rows` are their distinct continuation[:-1]."""

    context: tuple[int, ...]
    rows: list[tuple[int, ...]] = field(default_factory=list)
    members: list[tuple[int, int]] = field(default_factory=list)  # (request index, row index)


def kept_context(context: list[int], continuation: list[int], max_length: int) -> tuple[int, ...]:
    """The context tokens HFLM feeds: (context + continuation)[-(max_length + 1):] cuts only the context."""
    cut = max(0, len(context) + len(continuation) - (max_length + 1))
    return tuple(context[cut:])


def plan(requests: list[Request], max_length: int) -> tuple[list[PrefixGroup], list[int]]:
    """Groups worth sharing (sorted longest context first), and the indices left to HFLM's own path.

    A group is worth it when its requests need at least two different inputs (HFLM already runs one input
    once) and its context has a token before the last, so there is a prefix to cache.
    """
    groups: dict[tuple[int, ...], PrefixGroup] = {}
    for i, (_, context, continuation) in enumerate(requests):
        key = kept_context(context, continuation, max_length)
        group = groups.setdefault(key, PrefixGroup(key))
        row = tuple(continuation[:-1])
        if row not in group.rows:
            group.rows.append(row)
        group.members.append((i, group.rows.index(row)))
    shared = [g for g in groups.values() if len(g.rows) > 1 and len(g.context) > 1]
    taken = {i for g in shared for i, _ in g.members}
    shared.sort(key=lambda g: (-len(g.context), g.context))
    return shared, [i for i in range(len(requests)) if i not in taken]


class _Unsupported(Exception):
    """The model's cache cannot be reused exactly; HFLM's own path answers instead."""


class SharedPrefixHFLM(HarnessHFLM):
    """HFLM whose log-likelihoods compute each shared context once; results equal HFLM's (fp rounding aside)."""

    _sharing: bool | None = None  # None: not yet known for this model

    def _loglikelihood_tokens(self, requests: list[Request], disable_tqdm: bool = False,
                              override_bs: int | None = None) -> list[tuple[float, bool]]:
        plain = super()._loglikelihood_tokens
        rolling = bool(requests) and requests[0][0] is None  # rolling windows (backends/rolling.py): no shared context
        if rolling or override_bs is not None or not self._can_share():
            return plain(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        groups, rest = plan(requests, self.max_length)
        if not groups:
            return plain(requests, disable_tqdm=disable_tqdm)
        answers: list[tuple[float, bool] | None] = [None] * len(requests)
        try:
            self._score_groups(requests, groups, answers, disable_tqdm)
        except _Unsupported:
            self._sharing = False
            return plain(requests, disable_tqdm=disable_tqdm)
        if rest:
            for i, answer in zip(rest, plain([requests[i] for i in rest], disable_tqdm=disable_tqdm)):
                answers[i] = answer
        return answers  # type: ignore[return-value]

    def _can_share(self) -> bool:
        if self._sharing is None:
            params = inspect.signature(self.model.forward).parameters
            self._sharing = (self.backend == "causal" and isinstance(self.batch_size, int)
                             and all(p in params for p in ("past_key_values", "position_ids", "attention_mask")))
            # The prefix pass needs no logits but the last: skip the vocabulary projection where the model can.
            self._prefix_kwargs = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        return self._sharing

    def _score_groups(self, requests: list[Request], groups: list[PrefixGroup],
                      answers: list, disable_tqdm: bool) -> None:
        pbar = tqdm(total=sum(len(g.members) for g in groups), disable=disable_tqdm or self.rank != 0,
                    desc="Running loglikelihood requests (shared prefixes)")
        for first in range(0, len(groups), self.batch_size):
            # batch_size contexts per prefix pass and batch_size rows per suffix pass: HFLM's batch shape,
            # and less memory than its batch (no logits over the context).
            chunk = groups[first:first + self.batch_size]
            keys, values, lengths = self._prefix_cache(chunk)
            rows = [(g, r) for g, group in enumerate(chunk) for r in range(len(group.rows))]
            for start in range(0, len(rows), self.batch_size):
                part = rows[start:start + self.batch_size]
                logprobs = self._suffix_logprobs(chunk, part, keys, values, lengths)
                where = {(g, r): n for n, (g, r) in enumerate(part)}
                for g, group in enumerate(chunk):
                    for i, r in group.members:
                        if (g, r) not in where:
                            continue
                        answers[i] = self._answer(requests[i], logprobs[where[g, r]])
                        pbar.update(1)
        pbar.close()

    def _forward(self, **kwargs):
        """The model call as HFLM's _model_call makes it: no gradients, its optional autocast."""
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            return self.model(**kwargs)

    def _prefix_cache(self, chunk: list[PrefixGroup]):
        """Every group's context but its last token, right-padded, in one pass; the per-layer keys/values."""
        from transformers.cache_utils import DynamicCache, DynamicLayer

        prefixes = [g.context[:-1] for g in chunk]
        ids = torch.zeros(len(prefixes), max(map(len, prefixes)), dtype=torch.long)
        for n, prefix in enumerate(prefixes):
            ids[n, :len(prefix)] = torch.tensor(prefix)
        cache = self._forward(input_ids=ids.to(self.device), use_cache=True, **self._prefix_kwargs).past_key_values
        if type(cache) is not DynamicCache or not all(type(layer) is DynamicLayer for layer in cache.layers):
            raise _Unsupported(type(cache).__name__)
        return ([layer.keys for layer in cache.layers], [layer.values for layer in cache.layers],
                [len(p) for p in prefixes])

    def _suffix_logprobs(self, chunk, part, keys, values, lengths) -> torch.Tensor:
        """Log-probabilities [rows, suffix, vocab] of [last context token] + continuation[:-1] on the cache."""
        from transformers.cache_utils import DynamicCache

        suffixes = [(chunk[g].context[-1], *chunk[g].rows[r]) for g, r in part]
        width, cached = max(map(len, suffixes)), keys[0].shape[-2]
        ids = torch.zeros(len(part), width, dtype=torch.long)
        mask = torch.zeros(len(part), cached + width, dtype=torch.long)
        positions = torch.empty(len(part), width, dtype=torch.long)
        for n, ((g, _), suffix) in enumerate(zip(part, suffixes)):
            ids[n, :len(suffix)] = torch.tensor(suffix)
            mask[n, :lengths[g]] = 1
            mask[n, cached:cached + len(suffix)] = 1
            positions[n] = torch.arange(lengths[g], lengths[g] + width)
        index = torch.tensor([g for g, _ in part], device=self.device)
        cache = DynamicCache()
        for layer, (k, v) in enumerate(zip(keys, values)):
            cache.update(k.index_select(0, index), v.index_select(0, index), layer)
        logits = self._forward(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                               position_ids=positions.to(self.device), past_key_values=cache,
                               use_cache=True).logits
        return F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)

    def _answer(self, request: Request, logprobs: torch.Tensor) -> tuple[float, bool]:
        """(log-likelihood, is greedy) from one suffix row, as HFLM computes them; reported to the cache hook."""
        request_str, _, continuation = request
        target = torch.tensor(continuation, dtype=torch.long, device=logprobs.device)
        logprobs = logprobs[:len(continuation)]
        answer = (float(logprobs.gather(1, target[:, None]).sum()), bool((logprobs.argmax(-1) == target).all()))
        if request_str is not None:
            self.cache_hook.add_partial("loglikelihood", request_str, answer)
        return answer
