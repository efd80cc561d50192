"""Where a run's model work happens: `local` (this process, straight into DuckDB) or `ray` (one Ray task per
(model, task shard), writing Parquet shards that this process ingests; see ray_executor).

A new executor implements `Executor`: it computes the jobs the runner could not skip and records each through
the RunRecorder it is given, so starting, scoring, finishing and failing a run stay the same everywhere.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from harness.common.errors import HarnessError
from harness.evaluation.config import EvalSettings

if TYPE_CHECKING:
    from harness.common.display import Display
    from harness.evaluation.recorder import Job, RunResult, RunRecorder


class Executor(Protocol):
    def execute(self, jobs: list[Job], recorder: RunRecorder, settings: EvalSettings,
                display: Display) -> list[RunResult]:
        """One outcome per job, in the jobs' order."""

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
    if settings.items is not None:
        raise HarnessError("--adaptive with --executor ray: adaptive rounds are small; use --executor local")
    if importlib.util.find_spec("ray") is None:
        raise HarnessError(RAY_MISSING)
    if settings.data_parallel_size > 1:
        raise HarnessError("--data-parallel-size with --executor ray: use --shards instead (each shard task is "
                           "one replica on its own GPUs)")


def make_executor(executor: str, results_dir: Path, shards: int = 1, address: str | None = None) -> Executor:
    if executor == "ray":
        from harness.executors.ray_executor import RayExecutor

        return RayExecutor(results_dir, shards=shards, address=address)
    from harness.executors.local import LocalExecutor

    return LocalExecutor()


__all__ = ["EXECUTORS", "RAY_MISSING", "Executor", "check_executor", "make_executor"]
