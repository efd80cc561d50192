"""Where a run's model work happens: `local` (this process, straight into DuckDB) or `ray` (one Ray task per
(model, task shard), writing Parquet shards that this process ingests; see ray_executor)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harness.evaluation.config import EvalSettings
from harness.common.errors import HarnessError

EXECUTORS = ("local", "ray")
RAY_MISSING = "--executor ray: ray is not installed (pip install -e '.[distributed]')"


def check_executor(executor: str, shards: int, address: str | None, settings: EvalSettings) -> None:
    """Refuse a bad executor choice in one line, before the store is opened."""
    if executor not in EXECUTORS:
        raise HarnessError(f"--executor '{executor}': choose one of {', '.join(EXECUTORS)}")
    if executor == "local":
        if shards != 1:
            raise HarnessError("--shards: only with --executor ray")
        if address:
            raise HarnessError("--ray-address: only with --executor ray")
        return
    if importlib.util.find_spec("ray") is None:
        raise HarnessError(RAY_MISSING)
    if settings.data_parallel_size > 1:
        raise HarnessError("--data-parallel-size with --executor ray: use --shards instead (each shard task is "
                           "one replica on its own GPUs)")


def make_runner(executor: str, store, settings: EvalSettings, results_dir: Path, display, shards: int = 1,
                address: str | None = None):
    from harness.evaluation.runner import Runner

    if executor == "ray":
        from harness.executors.ray_executor import RayRunner

        return RayRunner(store, settings, results_dir, display, shards=shards, address=address)
    return Runner(store, settings, results_dir, display)


__all__ = ["EXECUTORS", "RAY_MISSING", "check_executor", "make_runner"]
