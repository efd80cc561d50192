"""lm-eval output folders -> finished runs of external models, with per-item samples.

So results produced elsewhere rank, compare (paired tests on shared items) and feed item-bootstrap
noise exactly like our own evaluations. Parsing is harness.ingest.parsers'; this module maps its frames
onto the store's records and checks what the store cannot (repeated items, ambiguous names) first.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa

from harness.ingest.checkpoint_curves import LOWER_IS_BETTER
from harness.ingest.parsers import MalformedFileError, load_results_json, read_lm_eval_dir
from harness.evaluation.scoring import SAMPLE_SCHEMA, SCORE_SCHEMA
from harness.store import ModelRecord, TaskRecord
from harness.tasks.task import metric_key

BACKEND = "lm-eval (imported)"
RUN_SCHEMA = pa.schema([("run_id", pa.string()), ("model_id", pa.string()), ("task_id", pa.string()),
                        ("backend", pa.string()), ("backend_args", pa.string()), ("status", pa.string()),
                        ("finished_at", pa.timestamp("us", tz="UTC")), ("environment", pa.string())])


@dataclass(frozen=True)
class ImportedRuns:
    """Everything `Store.import_runs` writes, built and checked before the store is opened."""

    models: list[ModelRecord]
    tasks: list[TaskRecord]
    runs: pa.Table
    samples: pa.Table
    scores: pa.Table
    skipped_groups: list[str]


def _json(value: object) -> str:
    """JSON text of plain values and numpy scalars alike (pandas hands out either)."""
    return json.dumps(value, sort_keys=True, default=lambda v: v.item() if hasattr(v, "item") else str(v))


def _sha(*parts: object) -> str:
    return hashlib.sha256(_json(parts).encode()).hexdigest()


def external_model(name: str, folder: Path) -> ModelRecord:
    """The same name always maps to the same external model, whichever folder it came from."""
    fingerprint = _sha("external", name)
    return ModelRecord(fingerprint[:16], name, "external", f"lm-eval output: {folder}", fingerprint, None,
                       namespace="lm-eval")


def _metric_keys(frame: pd.DataFrame) -> list[str]:
    """Each row's stored metric key, by the one convention (harness.tasks.task.metric_key)."""
    return [metric_key(metric, filter_name) for metric, filter_name in zip(frame["metric"], frame["filter"])]


def _groups(root: Path, result_files: list[str]) -> dict[str, set[str]]:
    """Per results file, the tasks that only aggregate subtasks (ranking them too would count twice)."""
    groups = {}
    for rel in result_files:
        subtasks = load_results_json(root / rel).get("group_subtasks") or {}
        if not isinstance(subtasks, dict):
            raise MalformedFileError(f"{root / rel}:1: 'group_subtasks' is not an object")
        groups[rel] = {task for task, members in subtasks.items() if members}
    return groups


def read_lm_eval_runs(path: str | Path, name: str | None = None) -> ImportedRuns:
    """Models, tasks, runs, samples and scores for every (results file, task) under `path`.

    `name` renames the model; allowed only when the folder holds one. Group tasks are skipped (their
    subtasks are imported). A task's primary metric is its first reported metric.
    """
    root = Path(path)
    runs, samples = read_lm_eval_dir(root)
    if name is not None:
        found = sorted(runs["model"].unique())
        if len(found) > 1:
            raise MalformedFileError(f"{root}: --name needs one model, found {len(found)}: {', '.join(found)}")
        runs, samples = runs.assign(model=name), samples.assign(model=name)
    twice = samples.duplicated(["run", "task", "doc_id", "filter", "metric"])
    if twice.any():
        row = samples[twice].iloc[0]
        raise MalformedFileError(f"{root / row.run}: task {row.task!r}: doc_id {row.doc_id} appears twice "
                                 f"for metric {row.metric!r}")
    if runs.empty:  # every metric a string, a list or NaN: nothing to rank
        raise MalformedFileError(f"{root}: no task reports a numeric metric (values that are not one number are "
                                 "left out)")
    groups = _groups(root, sorted(runs["run"].unique()))
    is_group = pd.Series([task in groups[run] for run, task in zip(runs["run"], runs["task"])], index=runs.index)
    skipped = sorted(set(runs.loc[is_group, "task"]))
    runs = runs[~is_group].assign(key=_metric_keys)
    if runs.empty:
        raise MalformedFileError(f"{root}: no task results besides groups ({', '.join(skipped)})")
    models = {m: external_model(m, root) for m in runs["model"].unique()}
    tasks, run_rows, score_rows, run_ids = {}, [], [], {}
    for (rel, model, task), rows in runs.groupby(["run", "model", "task"], sort=False):
        first = rows.iloc[0]
        record = _task_record(task, first)
        known, where = tasks.setdefault(record.task_id, (record, rel))
        if known.higher_is_better != record.higher_is_better:
            raise MalformedFileError(f"{root / rel}: task {task!r} says {_direction(record)}, but {root / where} "
                                     f"says {_direction(known)} for the same task version; import them apart")
        run_id = _sha("lm-eval import", models[model].fingerprint, record.task_id, rel)[:24]
        run_ids[(rel, task)] = run_id
        args = {"results_file": rel, "model_args": first["model_args"], "n_shot": first["n_shot"]}
        run_rows.append((run_id, models[model].model_id, record.task_id, BACKEND, _json(args),
                         "done", datetime.now(timezone.utc),
                         _json({"lm_eval_version": first["lm_eval_version"], "date": first["date"]})))
        for row in rows.itertuples():
            score_rows.append((run_id, row.key, row.value, _float(row.stderr), _count(row.n_samples)))
    samples = samples.assign(run_id=[run_ids.get((r, t)) for r, t in zip(samples["run"], samples["task"])])
    samples = samples[samples["run_id"].notna()]
    return ImportedRuns(
        models=list(models.values()),
        tasks=[record for record, _ in tasks.values()],
        runs=pa.Table.from_pylist([dict(zip(RUN_SCHEMA.names, r)) for r in run_rows], schema=RUN_SCHEMA),
        samples=pa.Table.from_pandas(
            pd.DataFrame({"run_id": samples["run_id"], "doc_id": samples["doc_id"].astype("int32"),
                          "metric": _metric_keys(samples), "value": samples["value"].astype(float)}),
            schema=SAMPLE_SCHEMA, preserve_index=False),
        scores=pa.Table.from_pylist([dict(zip(SCORE_SCHEMA.names, r)) for r in score_rows], schema=SCORE_SCHEMA),
        skipped_groups=skipped,
    )


def _direction(record: TaskRecord) -> str:
    return "higher is better" if record.higher_is_better else "lower is better"


def _task_record(task: str, first: pd.Series) -> TaskRecord:
    """One task per (name, version, shots): the same task imported for many models is stored once, with one
    direction, the one lm-eval's task definition reports for its primary metric (else the metric's usual one)."""
    config = json.loads(_json({"source": "lm-eval", "task": task, "version": first["version"],
                               "n_shot": first["n_shot"]}))
    config_hash = _sha(config)
    direction = first["higher_is_better"]
    known = direction is not None and not pd.isna(direction)
    higher = bool(direction) if known else first["metric"] not in LOWER_IS_BETTER
    n_items = _count(first["n_samples"])
    return TaskRecord(f"{task}@{config_hash[:12]}", task, str(first["version"]), "import", config_hash, first["key"],
                      higher, n_items if n_items is not None else 0, config)


def _float(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _count(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)
