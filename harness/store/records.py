"""What the store is told about a model and a task when they are registered."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelRecord:
    model_id: str
    name: str
    kind: str
    origin: str  # where the weights came from: a folder, hub:org/name@commit, embedded:NAME
    fingerprint: str
    n_params: int | None
    parents: tuple[str, ...] = ()
    recipe: dict | None = None
    namespace: str = ""  # '' for models evaluated here; an import's models live in the importer's namespace
    weights_sha256: str | None = None  # the weights alone (fingerprint also covers config and tokenizer files)



@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    name: str
    version: str
    origin: str  # builtin | lm-eval | include
    config_hash: str
    primary_metric: str
    higher_is_better: bool
    n_items: int
    config: dict

