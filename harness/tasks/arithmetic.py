"""Generated arithmetic at two difficulties: the answer is the number after "=".

Distractors are the answer shifted by the slips people make (off by one, a lost or extra carry, a
wrong hundreds digit), so a model has to compute rather than spot the only plausible number.
"""

from __future__ import annotations

import random

from harness.tasks.mc_items import fresh_shots, mc_item, near_numbers, with_shots
from harness.tasks.spec import BuiltinTask

N_ITEMS = 300
_CARRY_SLIPS = [-11, -10, -9, -2, -1, 1, 2, 9, 10, 11]
_HUNDREDS_SLIPS = [*_CARRY_SLIPS, -100, 100, -110, 110]


def _add_2d(rng: random.Random) -> tuple[str, int]:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    return f"{a} + {b} =", a + b


def _mixed_3d(rng: random.Random) -> tuple[str, int]:
    op = rng.choice("+-*")
    if op == "*":
        a, b = rng.randint(12, 99), rng.randint(3, 9)
        return f"{a} * {b} =", a * b
    a, b = rng.randint(100, 999), rng.randint(100, 999)
    if op == "-":
        a, b = max(a, b), min(a, b)
        return f"{a} - {b} =", a - b
    return f"{a} + {b} =", a + b


def _build(seed: int, problem, slips: list[int]) -> list[dict]:
    """N_ITEMS distinct problems, each preceded by one solved problem of the same kind."""
    rng = random.Random(seed)
    items, seen = [], set()
    while len(items) < N_ITEMS:
        prompt, answer = problem(rng)
        if prompt in seen:
            continue
        seen.add(prompt)
        question = with_shots(fresh_shots(problem, rng, prompt), prompt)
        items.append(mc_item(question, str(answer), near_numbers(answer, slips, 3, rng), rng))
    return items


TASKS = [
    BuiltinTask(
        name="arith_add_2d",
        description=(
            "Two-digit addition (easy), 1-shot, 4 choices: the sum and three near misses (off by "
            "1-2 or a carry slip of 9-11). Multi-token answers (2-3 digit numbers)."
        ),
        version="1",
        output_type="multiple_choice",
        build=lambda: _build(2_001, _add_2d, _CARRY_SLIPS),
    ),
    BuiltinTask(
        name="arith_mixed_3d",
        description=(
            "Three-digit addition and subtraction, two-digit by one-digit multiplication (harder), "
            "1-shot, 4 choices: the result and three near misses (units, carry or hundreds slips). "
            "Multi-token answers (1-4 digit numbers)."
        ),
        version="1",
        output_type="multiple_choice",
        build=lambda: _build(2_002, _mixed_3d, _HUNDREDS_SLIPS),
    ),
]
