"""Bridge from a BuiltinTask to an lm-eval task config with a local JSONL file (no hub)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from harness.atomic import write_text
from harness.tasks.spec import BuiltinTask

_METRICS = {
    "multiple_choice": ["acc", "acc_norm", "acc_bytes"],
    "loglikelihood_rolling": ["word_perplexity", "byte_perplexity", "bits_per_byte"],
}


@dataclass(frozen=True)
class PreparedTask:
    """A task whose items are on disk, with the lm-eval config that reads them."""

    task: BuiltinTask
    data_path: Path
    config: dict
    config_hash: str
    n_items: int

    @property
    def task_id(self) -> str:
        return f"{self.task.name}@{self.config_hash[:12]}"


def prepare(task: BuiltinTask, tasks_dir: Path) -> PreparedTask:
    """Write the items once (content-addressed, atomic) and build the lm-eval config."""
    items = task.build()
    payload = "".join(json.dumps(item, sort_keys=True, ensure_ascii=False) + "\n" for item in items)
    items_hash = hashlib.sha256(payload.encode()).hexdigest()
    path = tasks_dir / f"{task.name}-v{task.version}-{items_hash[:12]}.jsonl"
    if not path.is_file():
        write_text(path, payload)
    config = lm_eval_config(task, path)
    identity = {k: v for k, v in config.items() if k != "dataset_kwargs"} | {"items_sha256": items_hash}
    config_hash = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return PreparedTask(task, path, config, config_hash, len(items))


def lm_eval_config(task: BuiltinTask, data_path: Path) -> dict:
    common = {
        "task": task.name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_path)}},
        "test_split": "test",
        "output_type": task.output_type,
        "metric_list": [{"metric": m} for m in _METRICS[task.output_type]],
        "metadata": {"version": float(task.version)},
    }
    if task.output_type == "multiple_choice":
        return common | {
            "doc_to_text": "{{question}}",
            "doc_to_choice": "{{choices}}",
            "doc_to_target": "{{answer}}",
        }
    return common | {"doc_to_text": "", "doc_to_target": "{{text}}"}
