"""Shared building blocks for the built-in multiple-choice generators.

Every generator needs the same three things: put the answer at a seeded random position among
distinct distractors, pick plausible numeric neighbours, and prefix a solved example (one shot) so a
small model knows the answer format. One shot, not more: every shot is paid for in every choice's
forward pass, and the whole suite has to run in minutes on a CPU. Keeping them here keeps the task
modules about content only.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Callable

# Held-out split sizes, and what is added to a task's seed to draw them (the test split uses the seed).
HELD_OUT = {"train": (1_000, 1_000_003), "validation": (200, 2_000_003)}

DATA_DIR = Path(__file__).resolve().parent / "data"


def mc_item(question: str, answer: str, distractors: list[str], rng: random.Random) -> dict:
    """An item with the answer inserted at a seeded random position among the distractors."""
    if answer in distractors or len(set(distractors)) != len(distractors):
        raise ValueError(f"distractors {distractors!r} repeat each other or the answer {answer!r}")
    position = rng.randrange(len(distractors) + 1)
    choices = [*distractors[:position], answer, *distractors[position:]]
    return {"question": question, "choices": choices, "answer": position}


def mixed_order(items: list[dict], seed: int) -> list[dict]:
    """`items` in a seeded random order: generators that walk their data in order (by atomic number,
    country by country, plurals before verbs) would otherwise make `--limit N` test one kind only."""
    mixed = list(items)
    random.Random(seed).shuffle(mixed)
    return mixed


def near_numbers(answer: int, offsets: list[int], k: int, rng: random.Random) -> list[str]:
    """k distinct non-negative numbers answer+offset: the slips a model (or a person) would make."""
    pool = sorted({answer + off for off in offsets if off != 0 and answer + off >= 0})
    if len(pool) < k:
        raise ValueError(f"only {len(pool)} distinct neighbours of {answer} for {k} distractors")
    return [str(n) for n in rng.sample(pool, k)]


def fresh_shots(draw, rng: random.Random, prompt: str, n: int = 1) -> list[tuple[str, str]]:
    """n solved examples from draw(rng) -> (prompt, answer), none of them the open question."""
    shots: list[tuple[str, str]] = []
    while len(shots) < n:
        shot_prompt, shot_answer = draw(rng)
        if shot_prompt != prompt:
            shots.append((shot_prompt, str(shot_answer)))
    return shots


def with_shots(shots: list[tuple[str, str]], prompt: str) -> str:
    """Solved (prompt, answer) examples, a blank line apart, then the open prompt."""
    solved = "".join(f"{p} {a}\n\n" for p, a in shots)
    return solved + prompt


def load_json(name: str):
    """An authored data file under harness/tasks/data/."""
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


def open_prompt(question: str) -> str:
    """The question an item asks, without its solved shots: what must differ between splits."""
    return question.rsplit("\n\n", 1)[-1]


def held_out(generate: Callable[[int, int, frozenset[str]], list[dict]], seed: int, test: list[dict],
             split: str) -> list[dict]:
    """The train or validation items of a generated task: `generate(seed, n, exclude)` draws n items
    whose open prompts avoid `exclude`; train avoids the test prompts, validation avoids both."""
    exclude = {open_prompt(item["question"]) for item in test}
    if split == "validation":
        exclude |= {open_prompt(item["question"]) for item in held_out(generate, seed, test, "train")}
    n, offset = HELD_OUT[split]
    return generate(seed + offset, n, frozenset(exclude))
