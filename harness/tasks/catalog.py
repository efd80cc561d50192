"""lm-eval's task registry (its shipped YAMLs plus the user's include paths) as EvalTasks and group edges.

Indexing every shipped YAML takes seconds, so a Catalog is built only when a name is not a built-in task, and once
per process and include-path list. A group expands to its leaves the way lm-eval's TaskFactory builds it (group-level
keys are overrides for every member, a dict member adds its own, a tag stands for its tasks), so each leaf is run
alone with exactly the config it would have inside the group.
"""

from __future__ import annotations

import logging
from copy import deepcopy
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from harness.common.errors import HarnessError
from harness.tasks.task import EvalTask, GroupMember, config_identity, hash_identity, metric_key

_STRUCTURAL = ("tag", "group", "task_list")


@lru_cache(maxsize=4)
def catalog(include_paths: tuple[str, ...] = ()) -> "Catalog":
    return Catalog(include_paths)


@dataclass
class Expansion:
    leaves: dict[str, dict] = field(default_factory=dict)  # leaf name -> overrides it gets from its groups
    members: list[GroupMember] = field(default_factory=list)


class Catalog:
    def __init__(self, include_paths: tuple[str, ...] = ()):
        for path in include_paths:
            if not Path(path).is_dir():
                raise HarnessError(f"--include-path {path}: no such folder")
        from lm_eval.tasks import TaskManager

        logging.getLogger("lm_eval").setLevel(logging.ERROR)
        self.include_paths = include_paths
        self.manager = TaskManager(include_path=list(include_paths) or None)
        self.index = self.manager.task_index

    def __contains__(self, name: str) -> bool:
        return name in self.index

    def kind(self, name: str) -> str:
        return self.index[name].kind.name.lower().replace("py_task", "task")

    def names(self) -> list[str]:
        return self.manager.all_tasks

    def origin(self, name: str) -> str:
        path = self.index[name].yaml_path
        inside = path is not None and any(Path(p).resolve() in Path(path).resolve().parents for p in self.include_paths)
        return "include" if inside else "lm-eval"

    def groups_of(self, name: str) -> list[str]:
        """Tags naming this task (groups list their members, not the other way round)."""
        return sorted(self.index[name].tags)

    # ------------------------------------------------------------------ expansion
    def expand(self, name: str) -> Expansion:
        """The leaves of a task, group or tag, each with the overrides its groups give it, and the group edges."""
        found = Expansion()
        self._expand(name, {}, found)
        return found

    def _expand(self, name: str, overrides: dict, found: Expansion) -> None:
        entry = self.index[name]
        if entry.kind.name == "TAG":
            for task in self._tagged(name):
                found.leaves[task] = overrides
            return
        if entry.kind.name != "GROUP":
            found.leaves[name] = overrides
            return
        raw = self._raw(name)
        from lm_eval.tasks._factory import GROUP_FIELD_NAMES

        inherited = {**{k: v for k, v in raw.items() if k not in GROUP_FIELD_NAMES}, **overrides}
        rule = _rule(raw.get("aggregate_metric_list"))
        members = raw.get("task") or []
        for item in members if isinstance(members, list) else [members]:
            child, extra = (item, {}) if isinstance(item, str) else (item.get("task") or item.get("group"), item)
            extra = {k: v for k, v in extra.items() if k not in ("task", "group")}
            if child not in self.index:
                raise HarnessError(f"task group '{name}': member '{child}' is not a known task (inline group "
                                   "members are not supported; define the member in an --include-path YAML)")
            # A tag among a group's members stands for its tasks, each a direct member (as lm-eval builds mmlu_stem
            # from the tag mmlu_stem_tasks); the tag itself has no score of its own.
            for member in self._tagged(child) if self.index[child].kind.name == "TAG" else [child]:
                found.members.append(GroupMember(name, member, rule))
                self._expand(member, {**inherited, **extra}, found)

    def _tagged(self, tag: str) -> list[str]:
        return [task for task in sorted(self.index[tag].tags) if task in self.index]

    def _raw(self, name: str) -> dict:
        entry = self.index[name]
        if entry.yaml_path is None:
            return deepcopy(entry.cfg or {})
        from lm_eval.tasks._yaml_loader import load_yaml

        return deepcopy(load_yaml(entry.yaml_path, resolve_func=True))

    # ------------------------------------------------------------------ leaves
    def leaf_config(self, name: str, overrides: dict) -> dict:
        """The config lm-eval runs for this leaf (functions resolved), as a standalone task."""
        config = {**self._raw(name), **deepcopy(overrides), "task": name}
        for key in _STRUCTURAL:
            config.pop(key, None)
        return config

    def leaf(self, name: str, overrides: dict) -> EvalTask:
        config = self.leaf_config(name, overrides)
        identity = config_identity(config)
        metric, higher = primary_metric(config)
        version = (config.get("metadata") or {}).get("version", "")
        return EvalTask(name=name, origin=self.origin(name), version=str(version),
                        output_type=str(config.get("output_type", "generate_until")), primary_metric=metric,
                        higher_is_better=higher, identity=identity, config_hash=hash_identity(identity), n_items=None,
                        build_config=partial(_leaf_config, self.include_paths, name, overrides))


def _leaf_config(include_paths: tuple[str, ...], name: str, overrides: dict) -> dict:
    """Module-level (picklable) rebuild of a leaf's config, for a process other than the one that planned it."""
    return catalog(include_paths).leaf_config(name, overrides)


def _rule(raw: Any) -> tuple[dict, ...]:
    """lm-eval's aggregate_metric_list with its defaults filled in (mean, unweighted, the 'none' filter)."""
    if raw is None:
        return ()
    entries = raw if isinstance(raw, list) else [raw]
    return tuple({"metric": e["metric"], "aggregation": e.get("aggregation", "mean"),
                  "weight_by_size": bool(e.get("weight_by_size", False)),
                  "filter_list": list(_as_list(e.get("filter_list", "none")))} for e in entries)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def primary_metric(config: dict) -> tuple[str, bool]:
    """A leaf's first metric under its first filter, keyed as the store keys it (`metric` for lm-eval's 'none'
    filter, else `metric,filter`), and its direction from the task itself, else lm-eval's metric registry."""
    metrics = config.get("metric_list") or []
    if not metrics:
        default = {"multiple_choice": "acc", "loglikelihood": "perplexity",
                   "loglikelihood_rolling": "word_perplexity"}.get(config.get("output_type"), "exact_match")
        metrics = [{"metric": default}]
    first = metrics[0]
    name = first["metric"] if isinstance(first["metric"], str) else getattr(first["metric"], "__name__", "metric")
    filters = config.get("filter_list") or []
    filter_name = filters[0].get("name", "none") if filters else "none"
    higher = first.get("higher_is_better")
    if higher is None:
        from lm_eval.api.registry import is_higher_better

        higher = is_higher_better(name)
    return metric_key(name, filter_name), True if higher is None else bool(higher)
