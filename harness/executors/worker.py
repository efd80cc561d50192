"""What one Ray task runs: one model on one shard of one task, through the same backend code as a local run.

Plain Python (Ray only calls it), so it runs and is tested without Ray. It never opens DuckDB: StoreCachedLM
gets a ShardCache, which answers from the rows the driver passed in and from this shard's own files, and
turns every computed chunk into a Parquet shard file. The model is built only if something is left to compute.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Callable

import pandas as pd

from harness.backends import StoreCachedLM
from harness.evaluation.config import EvalSettings
from harness.executors.shards import Shard, ShardCache, done_counts, mark_done
from harness.weights.models import ResolvedModel

# Test hook, read by the driver: "N" makes every shard's worker SIGKILL itself right after writing its N-th shard
# file (a real crash mid-run); "1-of-2:N" only the worker of that shard.
KILL_AFTER_ENV = "HARNESS_RAY_KILL_AFTER_FILES"


def compute_shard(model: ResolvedModel, build_config: Callable[[], dict], settings: EvalSettings, run_id: str,
                  shard: Shard, folder: str, known: pd.DataFrame, kill_after: int | None = None) -> dict[str, int]:
    """Compute every request of `shard` not already answered; returns counts (requests, cached, computed).
    The task config is built here (it may hold functions that only a live lm-eval registry can resolve)."""
    from lm_eval.tasks import TaskManager

    from harness.evaluation.recorder import lm_eval_run, quiet_lm_eval
    from harness.evaluation.session import ModelSession

    path = Path(folder)
    if (counts := done_counts(path)) is not None:  # a retry of a task whose worker died after finishing
        return counts | {"computed": 0, "cached": counts["requests"]}
    quiet_lm_eval()
    session = ModelSession(model, settings)
    cache = ShardCache(path, shard.docs, known, on_write=_kill_hook(kill_after))
    lm = StoreCachedLM(inner_factory=session.lm, count_tokens=session.count_tokens, store=cache, run_id=run_id,
                       chunk_size=settings.chunk_size, tokenizer=session.tokenizer, only_docs=frozenset(shard.docs))
    lm_eval_run(lm, build_config(), TaskManager(include_defaults=False), settings, requests_only=True)
    counts = {"requests": lm.n_requests, "cached": lm.n_cached, "computed": lm.n_computed}
    mark_done(path, counts)
    return counts


def kill_after_for(shard: Shard, spec: str | None) -> int | None:
    """The KILL_AFTER_ENV setting as it applies to one shard."""
    if not spec:
        return None
    name, _, count = spec.rpartition(":")
    return int(count) if name in ("", shard.name) else None


def _kill_hook(kill_after: int | None) -> Callable[[int], None]:
    def hook(files_written: int) -> None:
        if kill_after is not None and files_written == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook
