"""Prompt + answer token batches for built-in multiple-choice items, scored with plain torch.

Fine-tuning an expert trains on exactly what `harness eval` scores, log p(" answer" | question), and
the PCB coefficient search scores candidates by the same rule lm-eval's `acc` uses (the choice with
the highest summed log-probability). Pairs are tokenized by lm-eval's own rule (harness.backends.split),
no special tokens.
Only answer positions go through the output layer, which is most of the cost of a short prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.backends.split import encode_pair


@dataclass(frozen=True)
class Pair:
    ids: tuple[int, ...]  # question then answer tokens
    n_answer: int


def encode(tokenizer, question: str, choice: str) -> Pair:
    """The ids lm-eval's HFLM feeds the model for this pair: its context tokens, then its continuation's."""
    question_ids, answer_ids = encode_pair(lambda text: tokenizer(text, add_special_tokens=False)["input_ids"],
                                           question, " " + choice)
    if not answer_ids:
        raise ValueError(f"answer {choice!r} adds no tokens to {question[-40:]!r}")
    return Pair(tuple(question_ids + answer_ids), len(answer_ids))


def correct_pairs(tokenizer, items: list[dict]) -> list[Pair]:
    return [encode(tokenizer, item["question"], item["choices"][item["answer"]]) for item in items]


def _batch(pairs: list[Pair], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask, and a mask of the positions whose next token is an answer token."""
    length = max(len(p.ids) for p in pairs)
    ids = torch.full((len(pairs), length), pad_id, dtype=torch.long)
    attention = torch.zeros((len(pairs), length), dtype=torch.long)
    predicts_answer = torch.zeros((len(pairs), length), dtype=torch.bool)
    for row, pair in enumerate(pairs):
        n = len(pair.ids)
        ids[row, :n] = torch.tensor(pair.ids)
        attention[row, :n] = 1
        predicts_answer[row, n - pair.n_answer - 1:n - 1] = True
    return ids, attention, predicts_answer


def answer_logprobs(model, pairs: list[Pair], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of every answer token of the batch (flat, row by row) and each token's row."""
    ids, attention, predicts_answer = _batch(pairs, pad_id)
    hidden = model.base_model(input_ids=ids, attention_mask=attention, use_cache=False).last_hidden_state
    logits = model.get_output_embeddings()(hidden[predicts_answer]).float()
    targets = ids[:, 1:][predicts_answer[:, :-1]]
    rows = predicts_answer.nonzero()[:, 0]
    return torch.log_softmax(logits, dim=-1).gather(1, targets.unsqueeze(1)).squeeze(1), rows


def answer_loss(model, pairs: list[Pair], pad_id: int) -> torch.Tensor:
    """Mean negative log-likelihood per answer token: the fine-tuning loss."""
    logprobs, _ = answer_logprobs(model, pairs, pad_id)
    return -logprobs.mean()


@torch.no_grad()
def mean_loss(model, pairs: list[Pair], pad_id: int, batch_size: int = 32) -> float:
    total, count = 0.0, 0
    for start in range(0, len(pairs), batch_size):
        logprobs, _ = answer_logprobs(model, pairs[start:start + batch_size], pad_id)
        total, count = total - logprobs.sum().item(), count + logprobs.numel()
    return total / count


def accuracy(model, tokenizer, items: list[dict], pad_id: int, batch_size: int = 32) -> float:
    """Share of items whose correct choice has the highest summed log-probability (lm-eval's acc)."""
    return sum(correct(model, tokenizer, items, pad_id, batch_size)) / len(items)


@torch.no_grad()
def correct(model, tokenizer, items: list[dict], pad_id: int, batch_size: int = 32) -> list[bool]:
    """Per item: does its correct choice have the highest summed log-probability (lm-eval's acc)."""
    pairs = [encode(tokenizer, item["question"], choice) for item in items for choice in item["choices"]]
    scores = torch.empty(len(pairs), dtype=torch.float64)
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        logprobs, rows = answer_logprobs(model, chunk, pad_id)
        scores[start:start + len(chunk)] = torch.zeros(len(chunk), dtype=torch.float64).index_add_(
            0, rows, logprobs.double())
    out, offset = [], 0
    for item in items:
        n = len(item["choices"])
        out.append(scores[offset:offset + n].argmax().item() == item["answer"])
        offset += n
    return out


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
