"""Parquet shards: how Ray workers hand request rows to the one process that may write DuckDB.

DuckDB allows one writer, so a worker never opens the store. Each committed chunk becomes one Parquet file,
written under a hidden temporary name and renamed into place, so a reader sees whole files or nothing and a
killed worker leaves at most a stray temporary. A shard that finished writes `done.json`. The driver ingests
files with INSERT OR IGNORE on the requests key (run, request type, doc, choice): the same key the store cache
uses, so ingesting a file twice, or two files holding the same row (a retried worker), adds nothing. Each row
carries its prompt and continuation text beside their shas; the store files them under `texts` in the same
transaction as the rows.

Layout: <results>/shards/<run_id>/<k>-of-<n>/<request type>-<random>.parquet and .../done.json.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.common.atomic import write_text
from harness.backends.cached import CHUNK_SCHEMA
from harness.common.errors import HarnessError

DONE = "done.json"


@dataclass(frozen=True)
class Shard:
    """Some documents of one task, by the task's own doc ids (ascending)."""

    index: int
    count: int
    docs: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"{self.index + 1}-of-{self.count}"


def split_docs(n_docs: int, n_shards: int) -> list[Shard]:
    """Interleaved shards (doc d goes to shard d mod n), so long and short items spread evenly; a shard
    that would be empty (more shards than documents) is left out."""
    n = max(1, min(n_shards, n_docs))
    return [Shard(k, n, tuple(range(k, n_docs, n))) for k in range(n)]


def run_folder(results_dir: Path, run_id: str) -> Path:
    return results_dir / "shards" / run_id


def shard_files(folder: Path) -> list[Path]:
    """Finished shard files under `folder` (any depth), in a stable order; temporaries are hidden names."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith("."))


# Columns a shard written before schema v3 lacks (the texts and their shas): read as nulls, so such a shard still
# resumes its run; its rows then have no texts, like any run from before v3.
_SINCE_V3 = ("context_sha", "continuation_sha", "context", "continuation")


def read_shards(paths: Sequence[Path]) -> pa.Table:
    """The request rows of these files, with the texts they carry, as one table (CHUNK_SCHEMA: the store's
    add_requests files the texts under `texts`); a file that is not a request shard is named."""
    tables = []
    for path in paths:
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise HarnessError(f"shard {path}: not readable as Parquet ({str(exc).splitlines()[0]})") from None
        missing = [name for name in CHUNK_SCHEMA.names if name not in table.column_names and name not in _SINCE_V3]
        if missing:
            raise HarnessError(f"shard {path}: not a request shard (missing column {missing[0]})")
        for name in _SINCE_V3:
            if name not in table.column_names:
                table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
        tables.append(table.select(CHUNK_SCHEMA.names).cast(CHUNK_SCHEMA))
    return pa.concat_tables(tables) if tables else CHUNK_SCHEMA.empty_table()


def write_shard(rows: pa.Table, folder: Path, stem: str) -> Path:
    """Write one file atomically: a hidden temporary in the same folder, then a rename."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{stem}-{uuid.uuid4().hex[:16]}.parquet"
    tmp = folder / f".{final.name}.tmp"
    pq.write_table(rows, tmp)
    os.replace(tmp, final)
    return final


def mark_done(folder: Path, counts: dict[str, int]) -> None:
    write_text(folder / DONE, json.dumps(counts))


def done_counts(folder: Path) -> dict[str, int] | None:
    """The counts a finished shard recorded, or None while it is not finished."""
    try:
        return json.loads((folder / DONE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


class ShardCache:
    """The part of Store that StoreCachedLM uses (`cached_requests`, `add_requests`), for a worker.

    Answers come from the rows the driver's store already held (`known`) plus this shard's own files (a worker
    retried after a crash picks up where the dead one stopped); each new chunk becomes one shard file. Rows of
    other shards' documents count as known answers only (doc id -1), never as rows of this shard.
    """

    def __init__(self, folder: Path, docs: Sequence[int], known: pd.DataFrame,
                 on_write: Callable[[int], None] | None = None):
        self.folder = folder
        self.docs = frozenset(docs)
        self._known = known
        self._on_write = on_write or (lambda n: None)
        self.files_written = 0

    def cached_requests(self, run_id: str, request_type: str) -> pd.DataFrame:
        own = read_shards(shard_files(self.folder)).to_pandas()
        frames = [f for f in (self._known, own) if len(f)]
        frame = pd.concat(frames, ignore_index=True) if frames else own
        frame = frame[(frame["run_id"] == run_id) & (frame["request_type"] == request_type)]
        mine = frame["doc_id"].where(frame["doc_id"].isin(self.docs), -1).astype(int)
        return frame.assign(doc_id=mine)[["req_hash", "doc_id", "idx", "logprob", "is_greedy", "generation"]]

    def add_requests(self, rows: pa.Table) -> None:
        write_shard(rows, self.folder, rows.column("request_type")[0].as_py())
        self.files_written += 1
        self._on_write(self.files_written)
