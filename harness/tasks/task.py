"""EvalTask: one leaf task as lm-eval runs it, whatever its source (built-in, lm-eval's registry, an include path).

Runner, executors, scoring and store see only this. Its `config_hash` covers everything that changes its
answers: the resolved config, the source of every function the config calls, and the data it reads.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class GroupMember:
    """One edge of a task group: `member` (a leaf or another group) belongs to `group`, which aggregates
    its members by `rule` (lm-eval's aggregate_metric_list entries: metric, aggregation, weight_by_size, filters)."""

    group: str
    member: str
    rule: tuple[dict, ...]


@dataclass(frozen=True)
class EvalTask:
    """A task ready to evaluate. `build_config` returns the lm-eval config dict (it may hold callables, so it is
    rebuilt in each process that needs it, e.g. a Ray worker); `identity` is its JSON form, the stored config."""

    name: str
    origin: str  # builtin | lm-eval | include
    version: str
    output_type: str
    primary_metric: str
    higher_is_better: bool
    identity: dict
    config_hash: str
    n_items: int | None  # None until the data is loaded (lm-eval tasks)
    build_config: Callable[[], dict]

    @property
    def task_id(self) -> str:
        return f"{self.name}@{self.config_hash[:12]}"


def metric_key(metric: str, filter_name: str) -> str:
    """One convention for every stored metric: lm-eval's `metric,filter`, shortened to `metric` for 'none'."""
    return metric if filter_name == "none" else f"{metric},{filter_name}"


def config_identity(config: Any) -> Any:
    """The config as JSON-able data: every function replaced by its qualified name and its module file's sha256
    (so editing a task's `!function` code makes a new task version), paths by their names."""
    if isinstance(config, dict):
        return {str(k): config_identity(v) for k, v in config.items() if k != "config_source"}
    if isinstance(config, (list, tuple)):
        return [config_identity(v) for v in config]
    if callable(config):
        return {"function": getattr(config, "__qualname__", repr(config)), "sha256": _source_hash(config)}
    if isinstance(config, Path):
        return config.name
    if config is None or isinstance(config, (str, int, float, bool)):
        return config
    return repr(config)


def hash_identity(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def _source_hash(function: Callable) -> str | None:
    try:
        source = inspect.getsourcefile(function)
    except TypeError:
        return None
    if source is None or not Path(source).is_file():
        return None
    return hashlib.sha256(Path(source).read_bytes()).hexdigest()
