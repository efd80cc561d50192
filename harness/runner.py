"""The controller: plan models x tasks into jobs, skip finished runs, resume partial ones.

A job that fails is recorded with its error and the others carry on; a Ctrl-C leaves the run
marked 'running' with its committed chunks, and the same command resumes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


from harness.backends import StoreCachedLM, resolve_backend
from harness.config import EvalSettings
from harness.display import Display
from harness.environment import environment
from harness.models import ModelRef, ResolvedModel, materialize
from harness.scoring import SAMPLE_SCHEMA, SCORE_SCHEMA, sample_rows, score_rows, to_arrow
from harness.store import ModelRecord, Store, TaskRecord
from harness.tasks.lmeval import PreparedTask


@dataclass(frozen=True)
class JobOutcome:
    model: str
    task: str
    status: str  # done | skipped | failed
    metric: str
    value: float | None
    n_cached: int = 0
    n_computed: int = 0
    seconds: float = 0.0
    error: str | None = None


def run_id_for(model: ResolvedModel, task: PreparedTask, settings: EvalSettings) -> str:
    """Same weights, same task config, same result-changing settings: same run (resume, don't redo)."""
    key = {"model": model.fingerprint, "task": task.config_hash, **settings.identity()}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


class ModelSession:
    """Builds the backend model and its tokenizer once per model, and only when work needs them."""

    def __init__(self, model: ResolvedModel, settings: EvalSettings):
        self.model = model
        self.settings = settings
        self._lm = None
        self._counter: Callable[[str, str], int] | None = None

    def lm(self):
        if self._lm is None:
            if self.settings.backend == "vllm":
                from harness.backends.vllm import build_vllm

                self._lm = build_vllm(self.model.path, self.settings, self.model.policy.trust_remote_code)
            else:
                from harness.backends.hf import build_hf

                self._lm = build_hf(self.model.path, self.settings.batch_size, self.settings.device,
                                    self.settings.dtype, self.model.policy.trust_remote_code)
        return self._lm

    def count_tokens(self, context: str, continuation: str) -> int:
        if self._counter is None:
            from harness.backends.hf import token_counter

            self._counter = token_counter(self.model.path, self.model.policy.trust_remote_code)
        return self._counter(context, continuation)


class Runner:
    def __init__(self, store: Store, settings: EvalSettings, results_dir: Path, display: Display | None = None):
        self.store = store
        # 'auto' is settled once here, so run ids name the backend that actually computes.
        self.settings = settings.model_copy(update={"backend": resolve_backend(settings.backend)})
        self.results_dir = results_dir
        self.display = display or Display("none")

    def run(self, models: list[ModelRef], tasks: list[PreparedTask]) -> list[JobOutcome]:
        task_manager = self._register_tasks(tasks)
        outcomes: list[JobOutcome] = []
        with self.display.session():
            for ref in models:
                resolved = self._register(ref)
                session = ModelSession(resolved, self.settings)
                for task in tasks:
                    outcomes.append(self._job(session, task, task_manager))
        return outcomes

    def _register_tasks(self, tasks: list[PreparedTask]):
        """Store the task records; returns the lm-eval TaskManager every job shares."""
        quiet_lm_eval()
        from lm_eval.tasks import TaskManager

        for task in tasks:
            self.store.register_task(_task_record(task))
        return TaskManager(include_defaults=False)

    def _register(self, ref: ModelRef) -> ResolvedModel:
        resolved = materialize(ref, self.results_dir / "models")
        self.store.register_model(ModelRecord(
            model_id=resolved.model_id, name=resolved.name, kind=resolved.kind, source=resolved.source,
            fingerprint=resolved.fingerprint, n_params=resolved.n_params,
        ))
        return resolved

    def _job(self, session: ModelSession, task: PreparedTask, task_manager) -> JobOutcome:
        model = session.model
        run_id = run_id_for(model, task, self.settings)
        if (skipped := self._skipped(model, task, run_id)) is not None:
            return skipped
        started = time.perf_counter()
        self._start(model, task, run_id)
        job = self.display.job(f"{model.name} · {task.task.name}")
        lm = StoreCachedLM(
            inner_factory=session.lm, count_tokens=session.count_tokens, store=self.store, run_id=run_id,
            chunk_size=self.settings.chunk_size,
            on_total=job.add_total, on_advance=job.advance,
        )
        return self._finish(model, task, run_id, lm, task_manager, job, started)

    def _skipped(self, model: ResolvedModel, task: PreparedTask, run_id: str) -> JobOutcome | None:
        """The outcome of a run that is already done (nothing to do), else None."""
        if self.store.run_status(run_id) != "done":
            return None
        metric = task.task.primary_metric
        value = self.store.con.execute(
            "SELECT value FROM scores WHERE run_id = ? AND metric = ?", [run_id, metric]).fetchone()
        return JobOutcome(model.name, task.task.name, "skipped", metric, value[0] if value else None)

    def _start(self, model: ResolvedModel, task: PreparedTask, run_id: str) -> None:
        self.store.start_run(run_id, model.model_id, task.task_id, self.settings.backend,
                             self.settings.model_dump(), self.settings.limit, environment())

    def _finish(self, model: ResolvedModel, task: PreparedTask, run_id: str, lm: StoreCachedLM, task_manager,
                job, started: float, computed: int | None = None) -> JobOutcome:
        """Evaluate through `lm` (answers from the store, the rest computed), store samples and scores, mark
        the run done; any error marks it failed instead. `computed` replaces lm's count when the model work
        happened elsewhere (Ray workers); everything else was then answered from the store."""
        name, metric = task.task.name, task.task.primary_metric
        try:
            results = lm_eval_run(lm, task.config, task_manager, self.settings)
            samples = sample_rows(run_id, results["samples"][name], self.store.requests_for_run(run_id))
            n_docs = int(results["n-samples"][name]["effective"])
            scores = score_rows(run_id, results["results"][name], samples, n_docs)
            counts = {"requests": lm.n_requests, "cached": lm.n_cached, "computed": lm.n_computed}
            if computed is not None:
                counts |= {"cached": lm.n_requests - computed, "computed": computed}
            self.store.finish_run(run_id, to_arrow(samples, SAMPLE_SCHEMA), to_arrow(scores, SCORE_SCHEMA), counts)
        except Exception as exc:  # one bad job must not stop the others
            return self._failed(model, task, run_id, job, started, error_line(exc), lm.n_cached, lm.n_computed)
        value = scores.loc[scores["metric"] == metric, "value"]
        return JobOutcome(model.name, name, "done", metric, float(value.iloc[0]) if len(value) else None,
                          counts["cached"], counts["computed"], time.perf_counter() - started)

    def _failed(self, model: ResolvedModel, task: PreparedTask, run_id: str, job, started: float, message: str,
                n_cached: int = 0, n_computed: int = 0) -> JobOutcome:
        self.store.fail_run(run_id, message)
        job.failed()
        return JobOutcome(model.name, task.task.name, "failed", task.task.primary_metric, None, n_cached, n_computed,
                          time.perf_counter() - started, message)


def error_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def lm_eval_run(lm, config: dict, task_manager, settings: EvalSettings, docs: list[int] | None = None) -> dict:
    """lm-eval over the task's first `settings.limit` items (logged, with bootstrap), or, for a Ray shard, over
    exactly `docs` (sorted; lm-eval numbers them 0..m-1), where only the requests matter."""
    from lm_eval import simple_evaluate

    if docs is not None:
        return simple_evaluate(model=lm, tasks=[config], task_manager=task_manager, samples={config["task"]: docs},
                               log_samples=False, bootstrap_iters=0)
    return simple_evaluate(model=lm, tasks=[config], task_manager=task_manager, limit=settings.limit,
                           log_samples=True, bootstrap_iters=settings.bootstrap_iters)


def _task_record(task: PreparedTask) -> TaskRecord:
    return TaskRecord(
        task_id=task.task_id, name=task.task.name, version=task.task.version, source="builtin",
        config_hash=task.config_hash, primary_metric=task.task.primary_metric,
        higher_is_better=task.task.higher_is_better, n_items=task.n_items, config=task.config,
    )


def quiet_lm_eval() -> None:
    for name in ("lm_eval", "lm-eval", "datasets", "transformers", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
