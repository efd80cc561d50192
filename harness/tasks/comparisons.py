"""Comparisons: is one everyday thing bigger (heavier, faster...) than another, and which of two
numbers is larger (or smaller).

Every question is asked in both directions ("larger" and "smaller", both orders), so a model that
always says "yes", always picks the first choice or always picks the bigger-looking one stays at
chance. SmolLM2-135M is at chance on both tasks in every wording tried (yes/no, pick one,
true/false, cloze, single digits): it answers "no" to every yes/no question. They are kept because
comparing is a basic skill that larger models do have, so the tasks separate those.
"""

from __future__ import annotations

import random

from harness.tasks.mc_items import fresh_shots, held_out, load_json, with_shots
from harness.tasks.spec import BuiltinTask

N_ITEMS = 300


def _pairs() -> list[tuple[dict, str, str]]:
    """Every (scale, lesser, greater) pair of things on the same scale."""
    return [
        (scale, lesser, greater)
        for scale in load_json("comparisons.json")["scales"]
        for i, lesser in enumerate(scale["order"])
        for greater in scale["order"][i + 1 :]
    ]


def _yes_no_questions() -> dict[str, list[str]]:
    """All yes/no questions, keyed by their answer."""
    questions: dict[str, list[str]] = {"yes": [], "no": []}
    for scale, lesser, greater in _pairs():
        more, less = scale["more"], scale["less"]
        questions["yes"] += [
            f"Is {greater} {more} than {lesser}?",
            f"Is {lesser} {less} than {greater}?",
        ]
        questions["no"] += [
            f"Is {lesser} {more} than {greater}?",
            f"Is {greater} {less} than {lesser}?",
        ]
    return questions


def _build_yes_no() -> list[dict]:
    """Exactly as many yes as no answers, in a seeded random order."""
    rng = random.Random(6_001)
    questions = _yes_no_questions()
    solved = [(f"{q}\nAnswer:", answer) for answer, qs in questions.items() for q in qs]
    drawn = [(q, a) for a in ("yes", "no") for q in rng.sample(questions[a], N_ITEMS // 2)]
    rng.shuffle(drawn)
    items = []
    for text, answer in drawn:
        prompt = f"{text}\nAnswer:"
        question = with_shots(fresh_shots(lambda r: r.choice(solved), rng, prompt), prompt)
        choices = ["yes", "no"]
        items.append({"question": question, "choices": choices, "answer": choices.index(answer)})
    return items


def _number_pair(rng: random.Random) -> tuple[int, int]:
    """Two different numbers of the same length (2-4 digits), the second usually a near copy of the
    first (two digits swapped or one changed), so the length of a number gives nothing away."""
    digits = rng.randint(2, 4)
    first = rng.randint(10 ** (digits - 1), 10**digits - 1)
    while True:
        text = list(str(first))
        how = rng.choice(("swap", "change", "random"))
        if how == "swap":
            i, j = rng.sample(range(digits), 2)
            text[i], text[j] = text[j], text[i]
        elif how == "change":
            i = rng.randrange(digits)
            text[i] = str(rng.randint(1 if i == 0 else 0, 9))
        else:
            text = list(str(rng.randint(10 ** (digits - 1), 10**digits - 1)))
        if text[0] != "0" and int("".join(text)) != first:
            return first, int("".join(text))


def _pick_number(rng: random.Random) -> tuple[str, str, list[str]]:
    """'Which is larger, a or b?', its answer, and the two numbers in the order asked; the answer
    comes first or second by a fair coin."""
    low, high = sorted(_number_pair(rng))
    relation = rng.choice(("larger", "smaller"))
    answer, other = (high, low) if relation == "larger" else (low, high)
    first, second = (answer, other) if rng.random() < 0.5 else (other, answer)
    prompt = f"Which is {relation}, {first} or {second}?\nAnswer:"
    return prompt, str(answer), [str(first), str(second)]


def _build_numbers(seed: int = 6_002, n: int = N_ITEMS, exclude: frozenset[str] = frozenset()) -> list[dict]:
    rng = random.Random(seed)
    items, seen = [], set(exclude)
    while len(items) < n:
        prompt, answer, choices = _pick_number(rng)
        if prompt in seen:
            continue
        seen.add(prompt)
        question = with_shots(fresh_shots(lambda r: _pick_number(r)[:2], rng, prompt), prompt)
        items.append({"question": question, "choices": choices, "answer": choices.index(answer)})
    return items


TASKS = [
    BuiltinTask(
        name="compare_yes_no",
        description=(
            "Is one everyday thing bigger/heavier/faster/longer/hotter (or the opposite) than "
            "another? 1-shot, 2 fixed choices yes/no, exactly half of the answers yes. "
            "Single-token answers."
        ),
        version="1",
        output_type="multiple_choice",
        build=_build_yes_no,
    ),
    BuiltinTask(
        name="compare_numbers",
        description=(
            "Which of two numbers of the same length (2-4 digits, often the same digits swapped) "
            "is larger (or smaller)? 1-shot, the 2 choices are the two numbers in the order asked. "
            "Multi-token answers."
        ),
        version="1",
        output_type="multiple_choice",
        build=_build_numbers,
        build_held_out=lambda split: held_out(_build_numbers, 6_002, _build_numbers(), split),
    ),
]
