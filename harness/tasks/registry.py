"""The task registry: built-in tasks by name, suites, and "did you mean" for typos."""

from __future__ import annotations

import difflib
import importlib
from functools import lru_cache

from harness.errors import HarnessError
from harness.tasks.spec import BuiltinTask

_MODULES = ("arithmetic", "facts", "words", "sequences", "comparisons", "english_text")


@lru_cache(maxsize=1)
def builtin_tasks() -> dict[str, BuiltinTask]:
    tasks: dict[str, BuiltinTask] = {}
    for module_name in _MODULES:
        module = importlib.import_module(f"harness.tasks.{module_name}")
        for task in module.TASKS:
            if task.name in tasks:
                raise RuntimeError(f"duplicate built-in task name {task.name!r}")
            tasks[task.name] = task
    return tasks


def suites() -> dict[str, list[str]]:
    return {"core": list(builtin_tasks())}


def resolve_tasks(names: list[str]) -> list[BuiltinTask]:
    """Expand suite names and check task names; order kept, duplicates dropped."""
    tasks = builtin_tasks()
    groups = suites()
    chosen: dict[str, BuiltinTask] = {}
    for name in names:
        if name in groups:
            chosen.update((n, tasks[n]) for n in groups[name])
        elif name in tasks:
            chosen[name] = tasks[name]
        else:
            raise HarnessError(f"unknown task '{name}'{_suggest(name, [*groups, *tasks])}")
    return list(chosen.values())


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if close:
        return f"; did you mean {' or '.join(repr(c) for c in close)}?"
    return f"; known: {', '.join(known[:12])}{', ...' if len(known) > 12 else ''}"
