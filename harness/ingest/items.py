"""Per-item score files -> external-score rows (competitor = model, benchmark = task, replicate = item).

`harness import items` stores complete (models x items) matrices so `harness adaptive replay` can replay
efficient-evaluation methods on them. Long format: columns model, task, item, score (score in [0, 1]),
as CSV/TSV or JSON lines; Eval-Arena's per-example files (benchmark_id, model, example_id, pass1) are read
as they are. Anything malformed is one line naming the file, line and column, before anything is stored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from harness.ingest.cells import parse_number
from harness.ingest.parsers import MalformedFileError, _header

ITEMS = "items"
"""The snapshot label of every per-item import: it tells readers that replicates are items."""
LONG = ("model", "task", "item", "score")
EVAL_ARENA = {"model": "model", "benchmark_id": "task", "example_id": "item", "pass1": "score"}
JSON_SUFFIXES = {".jsonl", ".json", ".ndjson"}


def read_items(path: str | Path) -> pa.Table:
    """Rows (competitor, benchmark, replicate, value, higher_is_better, snapshot) of every item score."""
    path = Path(path)
    if not path.is_file():
        raise MalformedFileError(f"{path}: no such file")
    records = _json_records(path) if path.suffix.lower() in JSON_SUFFIXES else _csv_records(path)
    models, tasks, items, values = [], [], [], []
    first_line: dict[tuple[str, str, str], int] = {}
    for line, record in records:
        model, task, item = (_name(path, line, record, c) for c in ("model", "task", "item"))
        value = _score(path, line, record)
        key = (model, task, item)
        if key in first_line:
            raise MalformedFileError(f"{path}:{line}: model {model!r} task {task!r} item {item!r} already "
                                     f"given on line {first_line[key]}")
        first_line[key] = line
        models.append(model)
        tasks.append(task)
        items.append(item)
        values.append(value)
    if not values:
        raise MalformedFileError(f"{path}: no item scores found")
    return pa.table({
        "competitor": pa.array(models, pa.string()), "benchmark": pa.array(tasks, pa.string()),
        "replicate": pa.array(items, pa.string()), "value": pa.array(values, pa.float64()),
        "higher_is_better": pa.array([True] * len(values)), "snapshot": pa.array([ITEMS] * len(values)),
    })


def _layout(path: Path, line: int, columns: list[str]) -> dict[str, str]:
    """Source column -> long column name, for the long layout or Eval-Arena's."""
    if all(c in columns for c in LONG):
        return {c: c for c in LONG}
    if all(c in columns for c in EVAL_ARENA):
        return dict(EVAL_ARENA)
    missing = [c for c in LONG if c not in columns]
    raise MalformedFileError(f"{path}:{line}: missing column(s) {', '.join(missing)} (expected model, task, item, "
                             f"score, or Eval-Arena's benchmark_id, model, example_id, pass1)")


def _json_records(path: Path) -> Iterator[tuple[int, dict]]:
    layout = None
    with open(path, encoding="utf-8-sig") as handle:
        try:
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as err:
                    raise MalformedFileError(f"{path}:{line}: invalid JSON ({err.msg})") from None
                except RecursionError:
                    raise MalformedFileError(f"{path}:{line}: invalid JSON (nested too deeply)") from None
                if not isinstance(record, dict):
                    raise MalformedFileError(f"{path}:{line}: expected one JSON object per line")
                layout = layout or _layout(path, line, list(record))
                missing = [c for c in layout if c not in record]
                if missing:
                    raise MalformedFileError(f"{path}:{line}: column {missing[0]!r}: missing")
                yield line, {long: record[src] for src, long in layout.items()}
        except UnicodeDecodeError as err:
            raise MalformedFileError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def _csv_records(path: Path) -> Iterator[tuple[int, dict]]:
    """Rows read as leaderboard CSVs are (parsers._header: delimiter by suffix, blank rows skipped, UTF-8 and CSV
    errors in one line)."""
    rows, header = _header(path)
    layout = _layout(path, 1, header)
    where = {long: header.index(src) for src, long in layout.items()}
    for line, fields in rows:
        if len(fields) != len(header):
            raise MalformedFileError(f"{path}:{line}: expected {len(header)} fields, got {len(fields)}")
        yield line, {long: fields[i] for long, i in where.items()}


def _name(path: Path, line: int, record: dict, column: str) -> str:
    value = record[column]
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # item ids written as numbers
    if not isinstance(value, str) or not value.strip():
        raise MalformedFileError(f"{path}:{line}: column {column!r}: expected a non-empty name, got {value!r}")
    return value.strip()


def _score(path: Path, line: int, record: dict) -> float:
    raw = record["score"]
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        value = None
    else:
        value = parse_number(raw) if isinstance(raw, str) else float(raw)
    if value is None or math.isnan(value):
        raise MalformedFileError(f"{path}:{line}: column 'score': non-numeric value {raw!r}")
    if not 0.0 <= value <= 1.0:
        raise MalformedFileError(f"{path}:{line}: column 'score': {raw!r} is not in [0, 1]")
    return value
