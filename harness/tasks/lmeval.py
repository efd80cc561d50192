"""A built-in task as an EvalTask: its items written once to a local JSONL file, read by an lm-eval config."""

from __future__ import annotations

import hashlib
import json
from functools import partial
from pathlib import Path

from harness.common.atomic import write_text
from harness.tasks.spec import BuiltinTask
from harness.tasks.task import EvalTask, hash_identity

_METRICS = {
    "multiple_choice": ["acc", "acc_norm", "acc_bytes"],
    "loglikelihood_rolling": ["word_perplexity", "byte_perplexity", "bits_per_byte"],
}


def prepare(task: BuiltinTask, tasks_dir: Path) -> EvalTask:
    """Write the items once (content-addressed, atomic) and describe the lm-eval config that reads them."""
    items = task.build()
    payload = "".join(json.dumps(item, sort_keys=True, ensure_ascii=False) + "\n" for item in items)
    items_hash = hashlib.sha256(payload.encode()).hexdigest()
    path = (tasks_dir / f"{task.name}-v{task.version}-{items_hash[:12]}.jsonl").resolve()
    if not path.is_file():
        write_text(path, payload)
    config = lm_eval_config(task, path)
    # The data file's location is not part of the identity; its content is.
    identity = {k: v for k, v in config.items() if k != "dataset_kwargs"} | {"items_sha256": items_hash}
    return EvalTask(name=task.name, origin="builtin", version=task.version, output_type=task.output_type,
                    primary_metric=task.primary_metric, higher_is_better=task.higher_is_better, identity=identity,
                    config_hash=hash_identity(identity), n_items=len(items),
                    build_config=partial(lm_eval_config, task, path))


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
