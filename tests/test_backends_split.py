"""The one (context, continuation) split matches lm-eval's own, so stored token counts and the
fine-tuning/PCB scorer see the tokens the evaluation scores."""

from __future__ import annotations

import pytest

from harness.backends.hf import token_counter
from harness.backends.split import encode_pair
from harness.variants import answers

PAIRS = [
    ("the cat sat", " on the mat"),
    ("Question: what is 2 + 2?\nAnswer: ", "4"),
    ("Question: what is 2 + 2?\nAnswer:\n", "four"),
    ("Question: which city?\tAnswer:\t", "paris"),
    ("the sky is \n\t ", "blue"),
    ("  \n", "the moon"),
]


def characters(text: str) -> list[int]:
    return [ord(c) for c in text]


def test_all_trailing_whitespace_moves_to_the_continuation():
    context, continuation = encode_pair(characters, "Answer: \n\t", "yes")
    assert "".join(map(chr, context)) == "Answer:"
    assert "".join(map(chr, continuation)) == " \n\tyes"
    assert encode_pair(characters, " \n", "x") == ([], characters(" \nx"))


@pytest.fixture(scope="module")
def hflm(tiny_model):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(tiny_model), device="cpu", batch_size=1)


@pytest.mark.parametrize("context,continuation", PAIRS)
def test_split_matches_lm_eval_encode_pair(hflm, context, continuation):
    tokenizer = hflm.tokenizer
    expected = hflm._encode_pair(context, continuation)
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]
    assert encode_pair(encode, context, continuation) == expected
    assert token_counter(tokenizer)(context, continuation) == len(expected[1])


@pytest.mark.parametrize("question", ["What is the capital of france?", "Answer:\n", "Answer:\t", "Answer: "])
def test_answer_pairs_are_the_ids_lm_eval_scores(hflm, question):
    context_ids, answer_ids = hflm._encode_pair(question, " paris")
    pair = answers.encode(hflm.tokenizer, question, "paris")
    assert pair.ids == tuple(context_ids + answer_ids) and pair.n_answer == len(answer_ids)
