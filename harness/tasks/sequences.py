"""Generated number sequences: four terms are shown, the answer is the fifth.

Four rules (counting up, counting down, doubling or tripling, squares) so that the model has to
infer the rule rather than always add. The main distractor for every rule is the answer a wrong
rule gives (continuing the last difference of a geometric sequence, skipping a term), next to small
slips.
"""

from __future__ import annotations

import random

from harness.tasks.mc_items import fresh_shots, mc_item, near_numbers, with_shots
from harness.tasks.spec import BuiltinTask

N_ITEMS = 300


def _sequence(rng: random.Random) -> list[int]:
    """Five terms of a random sequence of a random rule."""
    rule = rng.choice(("up", "down", "times", "squares"))
    if rule == "up":
        start, step = rng.randint(1, 60), rng.randint(2, 13)
        return [start + step * i for i in range(5)]
    if rule == "down":
        start, step = rng.randint(60, 120), rng.randint(2, 11)
        return [start - step * i for i in range(5)]
    if rule == "times":
        start, ratio = rng.randint(1, 9), rng.choice((2, 2, 3))
        return [start * ratio**i for i in range(5)]
    start = rng.randint(1, 15)
    return [(start + i) ** 2 for i in range(5)]


def _prompt(terms: list[int]) -> str:
    return ", ".join(str(t) for t in terms[:4]) + ","


def _solved(rng: random.Random) -> tuple[str, int]:
    terms = _sequence(rng)
    return _prompt(terms), terms[4]


def _build() -> list[dict]:
    rng = random.Random(5_001)
    items, seen = [], set()
    while len(items) < N_ITEMS:
        terms = _sequence(rng)
        prompt = _prompt(terms)
        if prompt in seen:
            continue
        seen.add(prompt)
        last_step = terms[3] - terms[2]
        answer = terms[4]
        wrong_rule = terms[3] + last_step - answer
        offsets = [wrong_rule, last_step, -1, 1, -2, 2, 10, -10]
        question = with_shots(fresh_shots(_solved, rng, prompt), prompt)
        items.append(mc_item(question, str(answer), near_numbers(answer, offsets, 3, rng), rng))
    return items


TASKS = [
    BuiltinTask(
        name="seq_next",
        description=(
            "Next term of a number sequence (counting up or down by a constant, doubling or "
            "tripling, squares), 1-shot, 4 choices: the fifth term, the result of a wrong rule or "
            "a skipped term, and slips of 1, 2 or 10. Multi-token answers (1-5 digit numbers)."
        ),
        version="1",
        output_type="multiple_choice",
        build=_build,
    ),
]
