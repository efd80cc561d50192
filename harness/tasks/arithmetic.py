"""Generated arithmetic at two difficulties: the answer is the number after "=".

Distractors are the answer shifted by the slips people make (off by one, a lost or extra carry, a
wrong hundreds digit), so a model has to compute rather than spot the only plausible number.
"""

from __future__ import annotations

import random
from functools import partial

from harness.tasks.mc_items import fresh_shots, held_out, mc_item, near_numbers, with_shots
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


def _build(seed: int, problem, slips: list[int], n: int = N_ITEMS, exclude: frozenset[str] = frozenset()) -> list[dict]:
    """n distinct problems not in `exclude`, each preceded by one solved problem of the same kind."""
    rng = random.Random(seed)
    items, seen = [], set(exclude)
    while len(items) < n:
        prompt, answer = problem(rng)
        if prompt in seen:
            continue
        seen.add(prompt)
        question = with_shots(fresh_shots(problem, rng, prompt), prompt)
        items.append(mc_item(question, str(answer), near_numbers(answer, slips, 3, rng), rng))
    return items


def _task_splits(seed: int, problem, slips: list[int]):
    """(test builder, held-out builder) of one generator: the test split is the one at `seed`."""
    test = partial(_build, seed, problem, slips)

    def generate(split_seed: int, n: int, exclude: frozenset[str]) -> list[dict]:
        return _build(split_seed, problem, slips, n, exclude)

    return test, lambda split: held_out(generate, seed, test(), split)


_ADD_2D = _task_splits(2_001, _add_2d, _CARRY_SLIPS)
_MIXED_3D = _task_splits(2_002, _mixed_3d, _HUNDREDS_SLIPS)

TASKS = [
    BuiltinTask(
        name="arith_add_2d",
        description=(
            "Two-digit addition (easy), 1-shot, 4 choices: the sum and three near misses (off by "
            "1-2 or a carry slip of 9-11). Multi-token answers (2-3 digit numbers)."
        ),
        version="1",
        output_type="multiple_choice",
        build=_ADD_2D[0],
        build_held_out=_ADD_2D[1],
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
        build=_MIXED_3D[0],
        build_held_out=_MIXED_3D[1],
    ),
]
