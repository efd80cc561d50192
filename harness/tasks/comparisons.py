"""Comparisons of everyday things along one property (size, weight, speed, duration, temperature).

The authored scales (data/comparisons.json) order things so that every pair has one clear answer.
Each pair is asked with both comparative words ("heavier", "lighter") and both orders, so a model
that always says "yes", always picks the first thing or always picks the bigger-sounding one stays at
chance. Number comparisons were tried first: SmolLM2-135M was at chance on them (48-54%), so they
could not rank small models.
"""

from __future__ import annotations

import random

from harness.tasks.mc_items import fresh_shots, load_json, with_shots
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
        questions["yes"] += [f"Is {greater} {more} than {lesser}?", f"Is {lesser} {less} than {greater}?"]
        questions["no"] += [f"Is {lesser} {more} than {greater}?", f"Is {greater} {less} than {lesser}?"]
    return questions


def _build_yes_no() -> list[dict]:
    """Exactly as many yes as no answers, in a seeded random order."""
    rng = random.Random(6_001)
    questions = _yes_no_questions()
    solved = [(f"{q}\nAnswer:", answer) for answer, qs in questions.items() for q in qs]
    drawn = [(q, answer) for answer in ("yes", "no") for q in rng.sample(questions[answer], N_ITEMS // 2)]
    rng.shuffle(drawn)
    items = []
    for text, answer in drawn:
        prompt = f"{text}\nAnswer:"
        question = with_shots(fresh_shots(lambda r: r.choice(solved), rng, prompt), prompt)
        items.append({"question": question, "choices": ["yes", "no"], "answer": ["yes", "no"].index(answer)})
    return items


def _pick(rng: random.Random, scale: dict, lesser: str, greater: str, relation: str) -> tuple[str, str, list[str]]:
    """'Which is heavier, x or y?' with its answer and the two things in the order asked."""
    answer = greater if relation == scale["more"] else lesser
    first, second = (lesser, greater) if rng.random() < 0.5 else (greater, lesser)
    return f"Which is {relation}, {first} or {second}?\nAnswer:", answer, [first, second]


def _build_pick() -> list[dict]:
    rng = random.Random(6_002)
    asked = [(s, lo, hi, rel) for s, lo, hi in _pairs() for rel in (s["more"], s["less"])]

    def solved(r: random.Random) -> tuple[str, str]:
        return _pick(r, *r.choice(asked))[:2]

    items = []
    for scale, lesser, greater, relation in rng.sample(asked, N_ITEMS):
        prompt, answer, choices = _pick(rng, scale, lesser, greater, relation)
        question = with_shots(fresh_shots(solved, rng, prompt), prompt)
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
        name="compare_pick",
        description=(
            "Which of two everyday things is bigger/heavier/faster/longer/hotter (or the "
            "opposite)? 1-shot, the 2 choices are the two things in the order asked. Multi-token "
            "answers (noun phrases such as 'a grain of sand')."
        ),
        version="1",
        output_type="multiple_choice",
        build=_build_pick,
    ),
]
