"""What the store is told about a model and a task when they are registered."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelRecord:
    model_id: str
    name: str
    kind: str
    source: str
    fingerprint: str
    n_params: int | None
    parents: tuple[str, ...] = ()
    recipe: dict | None = None



@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    name: str
    version: str
    source: str
    config_hash: str
    primary_metric: str
    higher_is_better: bool
    n_items: int
    config: dict

