"""Task names to EvalTasks: built-in tasks and suites first, then lm-eval's registry and the user's include paths.

A name both sources know is refused; `builtin:NAME` or `lm-eval:NAME` says which is meant. lm-eval's registry is
indexed only when a name needs it (or an include path is given), so built-in suites stay fast and offline.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from harness.common.errors import HarnessError
from harness.tasks.spec import BuiltinTask
from harness.tasks.task import EvalTask, GroupMember

_MODULES = ("arithmetic", "facts", "words", "sequences", "comparisons", "english_text")
BUILTIN_PREFIX, LM_EVAL_PREFIX = "builtin:", "lm-eval:"


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


@dataclass(frozen=True)
class TaskPlan:
    """The leaves to evaluate (order kept, duplicates dropped) and the group edges above them."""

    tasks: list[EvalTask]
    members: list[GroupMember]


def resolve_builtin(names: list[str]) -> list[BuiltinTask]:
    """Expand suite names and check built-in task names; order kept, duplicates dropped."""
    tasks, groups = builtin_tasks(), suites()
    chosen: dict[str, BuiltinTask] = {}
    for name in names:
        if name in groups:
            chosen.update((n, tasks[n]) for n in groups[name])
        elif name in tasks:
            chosen[name] = tasks[name]
        else:
            raise HarnessError(f"unknown task '{name}'{_suggest(name, [*groups, *tasks])}")
    return list(chosen.values())


def resolve_tasks(names: list[str], tasks_dir: Path, include_paths: tuple[str, ...] = ()) -> TaskPlan:
    """Every name as leaf EvalTasks: built-in data is written under `tasks_dir`, lm-eval's is read by lm-eval."""
    from harness.tasks.lmeval import prepare

    builtin_names = {*builtin_tasks(), *suites()}
    needs_catalog = bool(include_paths) or any(_bare(n) not in builtin_names or n.startswith(LM_EVAL_PREFIX)
                                               for n in names)
    known = _catalog(include_paths) if needs_catalog else None
    chosen: dict[str, EvalTask] = {}
    members: list[GroupMember] = []
    for name in names:
        bare = _bare(name)
        in_builtin = bare in builtin_names and not name.startswith(LM_EVAL_PREFIX)
        in_lm_eval = known is not None and bare in known and not name.startswith(BUILTIN_PREFIX)
        if in_builtin and in_lm_eval:
            raise HarnessError(f"task '{bare}' is both a built-in task and an lm-eval {known.kind(bare)} "
                               f"({known.origin(bare)}); write '{BUILTIN_PREFIX}{bare}' or '{LM_EVAL_PREFIX}{bare}'")
        if in_builtin:
            for task in resolve_builtin([bare]):
                chosen.setdefault(task.name, prepare(task, tasks_dir))
        elif in_lm_eval:
            expansion = known.expand(bare)
            members.extend(m for m in expansion.members if m not in members)
            for leaf, overrides in expansion.leaves.items():
                chosen.setdefault(leaf, known.leaf(leaf, overrides))
        else:
            candidates = [*builtin_names, *(known.names() if known is not None else [])]
            raise HarnessError(f"unknown task '{bare}' (not built-in, not in lm-eval's registry"
                               f"{' or the include paths' if include_paths else ''}){_suggest(bare, candidates)}")
    return TaskPlan(list(chosen.values()), members)


def _bare(name: str) -> str:
    for prefix in (BUILTIN_PREFIX, LM_EVAL_PREFIX):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _catalog(include_paths: tuple[str, ...]):
    from harness.tasks.catalog import catalog

    return catalog(tuple(str(Path(p).resolve()) for p in include_paths))


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if close:
        return f"; did you mean {' or '.join(repr(c) for c in close)}?"
    return f"; known: {', '.join(known[:12])}{', ...' if len(known) > 12 else ''}"
