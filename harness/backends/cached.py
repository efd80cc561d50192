"""StoreCachedLM: any lm-eval LM, with every result written to the store chunk by chunk.

lm-eval hands a backend all requests of one type in a single call; we answer what the store
already holds, send the rest to the real model in explicit chunks, and commit each chunk as it
completes. A crash therefore loses at most the chunk in flight, and a re-run recomputes nothing
that was committed. The real model is built only when there is something to compute.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Callable

import pyarrow as pa
from lm_eval.api.model import LM

from harness.backends.sampling import is_sampled, sampling_error, with_request_seeds
from harness.store import Store

_WORDS = re.compile(r"\s+")

# lm-eval's request types, each answered by the LM method of the same name.
REQUEST_TYPES = ("loglikelihood", "loglikelihood_rolling", "generate_until")

REQUEST_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("req_hash", pa.string()), ("request_type", pa.string()),
    ("doc_id", pa.int32()), ("idx", pa.int32()), ("logprob", pa.float64()), ("is_greedy", pa.bool_()),
    ("n_tokens", pa.int32()), ("n_chars", pa.int32()), ("n_bytes", pa.int32()), ("n_words", pa.int32()),
    ("generation", pa.string()), ("context_sha", pa.string()), ("continuation_sha", pa.string()),
])
# What one committed chunk carries: the request rows, and beside their shas the texts themselves, which the store
# files under `texts` (so every stored answer can be read back with its prompt) and shard files pass on.
CHUNK_SCHEMA = REQUEST_SCHEMA.append(pa.field("context", pa.string())).append(pa.field("continuation", pa.string()))


def text_sha(text: str | None) -> str | None:
    """A text's address in the store's `texts` table."""
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def request_hash(request_type: str, args: tuple) -> str:
    """Identity of a request within a run: its type and its exact arguments."""
    return hashlib.sha256(json.dumps([request_type, *args], sort_keys=True, default=str).encode()).hexdigest()


class StoreCachedLM(LM):
    """Wraps an lm-eval LM built on demand by `inner_factory`; counts what it computed vs reused."""

    def __init__(
        self,
        inner_factory: Callable[[], LM],
        count_tokens: Callable[[str, str], int],
        store: Store,
        run_id: str,
        chunk_size: int = 256,
        on_total: Callable[[int], None] | None = None,
        on_advance: Callable[[int], None] | None = None,
        tokenizer: Callable[[], Any] | None = None,
        only_docs: frozenset[int] | None = None,
    ) -> None:
        super().__init__()
        self._only_docs = only_docs
        self._tokenizer = tokenizer
        self._inner_factory = inner_factory
        self._count_tokens = count_tokens
        self._store = store
        self._run_id = run_id
        self._chunk_size = max(1, chunk_size)
        self._on_total = on_total or (lambda n: None)
        self._on_advance = on_advance or (lambda n: None)
        self.n_requests = 0
        self.n_cached = 0
        self.n_computed = 0

    # lm-eval's three request types -------------------------------------------------
    def loglikelihood(self, requests, disable_tqdm: bool = False):
        return self._answer("loglikelihood", requests)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        return self._answer("loglikelihood_rolling", requests)

    def generate_until(self, requests, disable_tqdm: bool = False):
        errors = {error for req in requests if (error := sampling_error(req.args[1]))}
        if errors:
            raise ValueError(sorted(errors)[0])
        if any(is_sampled(req.args[1]) for req in requests) and len({id(r) for r in requests}) < len(requests):
            raise ValueError("sampled generation of a task that repeats each request (repeats > 1) is not supported")
        return self._answer("generate_until", requests)

    # chat templates: rendered from the tokenizer alone, so prompts are built without loading the model -----
    @property
    def tokenizer_name(self) -> str:
        return self._chat_tokenizer().name_or_path.replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        template = self._chat_tokenizer().chat_template
        if isinstance(template, dict):
            return template.get(chat_template if isinstance(chat_template, str) else "default")
        return template

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """As lm-eval's HFLM renders it; a template that rejects the system role gets the history without it."""
        import jinja2

        tokenizer = self._chat_tokenizer()
        options = dict(tokenize=False, add_generation_prompt=add_generation_prompt,
                       continue_final_message=not add_generation_prompt)
        try:
            return tokenizer.apply_chat_template(chat_history, **options)
        except jinja2.exceptions.TemplateError:
            return tokenizer.apply_chat_template([m for m in chat_history if m["role"] != "system"], **options)

    def _chat_tokenizer(self):
        if self._tokenizer is None:
            raise ValueError("this backend has no tokenizer for chat templates")
        tokenizer = self._tokenizer()
        if not tokenizer.chat_template:
            raise ValueError(f"--apply-chat-template: the tokenizer of {tokenizer.name_or_path} has no chat template")
        return tokenizer

    # -------------------------------------------------------------------------------
    def _answer(self, request_type: str, requests: list) -> list:
        if self._only_docs is not None:
            return self._answer_shard(request_type, requests)
        return self._answer_all(request_type, requests)

    def _answer_all(self, request_type: str, requests: list) -> list:
        hashes = [request_hash(request_type, req.args) for req in requests]
        known, stored_keys = self._stored(request_type)
        # Requests whose answer is known (a duplicate elsewhere in the run) but whose own row is missing.
        backfill = [i for i, h in enumerate(hashes)
                    if h in known and (requests[i].doc_id, requests[i].idx) not in stored_keys]
        self._write(request_type, [requests[i] for i in backfill], [hashes[i] for i in backfill], known)
        pending = [i for i, h in enumerate(hashes) if h not in known]
        self.n_requests += len(requests)
        self.n_cached += len(requests) - len(pending)
        self._on_total(len(requests))
        self._on_advance(len(requests) - len(pending))
        for start in range(0, len(pending), self._chunk_size):
            chunk = pending[start:start + self._chunk_size]
            todo = list({hashes[i]: i for i in chunk if hashes[i] not in known}.values())  # one per new hash
            outputs = self._compute(request_type, [requests[i] for i in todo], [hashes[i] for i in todo])
            known.update(zip((hashes[i] for i in todo), outputs))
            self._write(request_type, [requests[i] for i in chunk], [hashes[i] for i in chunk], known)
            self.n_computed += len(todo)
            self._on_advance(len(chunk))
        return [known[h] for h in hashes]

    def _answer_shard(self, request_type: str, requests: list) -> list:
        """Answer the requests of `only_docs` (a Ray shard), and give the others a placeholder that is neither
        computed nor stored: lm-eval builds every document's requests as a whole run does (few-shot examples drawn
        from one seeded sequence depend on the documents before), and only this shard's answers are kept."""
        mine = [i for i, req in enumerate(requests) if req.doc_id in self._only_docs]
        answers = dict(zip(mine, self._answer_all(request_type, [requests[i] for i in mine])))
        placeholder = {"loglikelihood": (0.0, False), "loglikelihood_rolling": 0.0, "generate_until": ""}[request_type]
        return [answers.get(i, placeholder) for i in range(len(requests))]

    def _compute(self, request_type: str, requests: list, hashes: list[str]) -> list:
        if request_type == "generate_until":
            requests = with_request_seeds(requests, hashes)
        return getattr(self._inner(), request_type)(requests, disable_tqdm=True)

    def _inner(self) -> LM:
        if not hasattr(self, "_inner_lm"):
            self._inner_lm = self._inner_factory()
        return self._inner_lm

    def _stored(self, request_type: str) -> tuple[dict[str, Any], set[tuple[int, int]]]:
        """Answers already in the store, by request hash, and the (doc_id, idx) rows that exist."""
        frame = self._store.cached_requests(self._run_id, request_type)
        keys = set(zip(frame["doc_id"].astype(int), frame["idx"].astype(int)))
        if request_type == "loglikelihood":
            values = zip(frame["logprob"].astype(float), frame["is_greedy"].astype(bool))
            return {h: (float(lp), bool(g)) for h, (lp, g) in zip(frame["req_hash"], values)}, keys
        if request_type == "loglikelihood_rolling":
            return {h: float(lp) for h, lp in zip(frame["req_hash"], frame["logprob"])}, keys
        return {h: g for h, g in zip(frame["req_hash"], frame["generation"]) if g is not None}, keys

    def _write(self, request_type: str, chunk: list, hashes: list[str], answers: dict[str, Any]) -> None:
        if chunk:
            outputs = [answers[h] for h in hashes]
            self._store.add_requests(self._rows(request_type, chunk, hashes, outputs))

    def _rows(self, request_type: str, chunk: list, hashes: list[str], outputs: list) -> pa.Table:
        """The chunk's rows with their texts: the prompt (`context`; none for rolling loglikelihood) and the scored
        continuation (none for generation, whose output is `generation` itself)."""
        columns: dict[str, list] = {name: [] for name in CHUNK_SCHEMA.names}
        for req, h, out in zip(chunk, hashes, outputs):
            if request_type == "loglikelihood":
                context, scored = req.args
                continuation = scored
                logprob, greedy, generation = float(out[0]), bool(out[1]), None
                n_tokens = self._count_tokens(context, scored)
            elif request_type == "loglikelihood_rolling":
                (scored,) = req.args
                context, continuation = None, scored
                logprob, greedy, generation = float(out), None, None
                n_tokens = self._count_tokens("", scored)
            else:
                context, continuation = req.args[0], None
                scored = generation = str(out)
                logprob = greedy = None
                n_tokens = self._count_tokens("", generation)
            row = {
                "run_id": self._run_id, "req_hash": h, "request_type": request_type,
                "doc_id": req.doc_id, "idx": req.idx, "logprob": logprob, "is_greedy": greedy,
                "n_tokens": n_tokens, "n_chars": len(scored), "n_bytes": len(scored.encode("utf-8")),
                "n_words": len(_WORDS.split(scored)), "generation": generation,
                "context_sha": text_sha(context), "continuation_sha": text_sha(continuation),
                "context": context, "continuation": continuation,
            }
            for name, value in row.items():
                columns[name].append(value)
        return pa.table(columns, schema=CHUNK_SCHEMA)
