"""The controller: plan models x tasks into jobs, skip finished runs, hand the rest to an executor.

A job that fails is recorded with its error and the others carry on; a Ctrl-C leaves the run
marked 'running' with its committed chunks, and the same command resumes it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness.backends import settle
from harness.common.display import Display
from harness.common.errors import HarnessError
from harness.evaluation.config import EvalSettings
from harness.evaluation.recorder import Job, RunResult, RunRecorder, quiet_lm_eval
from harness.executors import Executor
from harness.executors.local import LocalExecutor
from harness.store import ModelRecord, Store, TaskRecord
from harness.store.catalog import clash_error
from harness.tasks.task import EvalTask, GroupMember
from harness.weights.models import ModelRef, ResolvedModel, materialize


def run_id_for(model: ResolvedModel, task: EvalTask, settings: EvalSettings) -> str:
    """Same model files, same task config, same result-changing settings: same run (resume, don't redo)."""
    return _digest({"model": model.fingerprint, "task": task.config_hash, **settings.identity()})[:24]


def answer_scope_for(model: ResolvedModel, settings: EvalSettings) -> str:
    """Runs with the same scope share answers: the same request to the same model, asked the same way, is answered
    once, whichever run (another --limit, a subset of items, another task with shared items) asks it."""
    return _digest({"model": model.fingerprint, **settings.answer_identity()})


def _digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


class Runner:
    def __init__(self, store: Store, settings: EvalSettings, results_dir: Path, display: Display | None = None,
                 executor: Executor | None = None):
        self.store = store
        # 'auto' is settled once here, so run ids name the backend and dtype that actually compute.
        self.settings = settle(settings)
        self.results_dir = results_dir
        self.display = display or Display("none")
        self.executor = executor or LocalExecutor()

    def run(self, models: list[ModelRef | ResolvedModel], tasks: list[EvalTask],
            members: list[GroupMember] = ()) -> list[RunResult]:
        """Outcomes in (model, task) order: finished runs skipped, the others computed by the executor.

        Every model is materialised and checked against the others and the store before anything is written, so a
        refused model or a name clash leaves the store as it was."""
        resolved = [m if isinstance(m, ResolvedModel) else materialize(m, self.results_dir / "models") for m in models]
        check_names(resolved, self.store)
        task_manager = _task_manager()
        for model in resolved:
            self.store.register_model(_model_record(model))
        recorder = RunRecorder(self.store, self.settings, self._register_tasks(tasks, members, task_manager))
        outcomes: list[RunResult | None] = []
        jobs: list[Job] = []
        for model in resolved:
            for task in tasks:
                job = Job(model, task, run_id_for(model, task, self.settings), answer_scope_for(model, self.settings))
                outcomes.append(self._skipped(job))
                if outcomes[-1] is None:
                    jobs.append(job)
        with self.display.session():
            computed = iter(self.executor.execute(jobs, recorder, self.settings, self.display) if jobs else [])
        return [outcome or next(computed) for outcome in outcomes]

    def _register_tasks(self, tasks: list[EvalTask], members: list[GroupMember], task_manager):
        """Store the task records and group edges; returns the lm-eval TaskManager every job shares."""
        for task in tasks:
            self.store.register_task(_task_record(task))
        self.store.register_group_members(members)
        return task_manager

    def _skipped(self, job: Job) -> RunResult | None:
        """The outcome of a run that is already done (nothing to do), else None."""
        if self.store.run_status(job.run_id) != "done":
            return None
        metric = job.task.primary_metric
        return RunResult(job.model.name, job.task.name, "skipped", metric, self.store.score(job.run_id, metric),
                         run_id=job.run_id)


def check_names(models: list[ResolvedModel], store: Store | None = None) -> None:
    """Refuse, before anything is written, the clashes Store.register_model would refuse half-way through: one
    name for two sets of files, or one set of files under two names, within this command or against the store."""
    seen: dict[str, ResolvedModel] = {}
    for model in models:
        other = seen.setdefault(model.name, model)
        if other.fingerprint != model.fingerprint:
            raise HarnessError(f"model '{model.name}': named twice in this command for other files ({other.path} "
                               f"and {model.path}); give one another name (--models PATH=NAME)")
    twins = {}
    for model in seen.values():
        twin = twins.setdefault(model.model_id, model)
        if twin.name != model.name:
            raise HarnessError(f"model '{model.name}': the same files as '{twin.name}' in this command; evaluate "
                               "them once, under one name")
    for model in seen.values() if store is not None else ():
        clash = store.model_clash(model.model_id, model.name, model.fingerprint, model.weights_sha256)
        if clash is not None:
            raise clash_error(model.name, clash)


def _task_manager():
    """The lm-eval TaskManager every job shares (tasks reach lm-eval as full configs, so it needs no index)."""
    quiet_lm_eval()
    from lm_eval.tasks import TaskManager

    return TaskManager(include_defaults=False)


def _model_record(model: ResolvedModel) -> ModelRecord:
    return ModelRecord(model_id=model.model_id, name=model.name, kind=model.kind, origin=model.origin,
                       fingerprint=model.fingerprint, n_params=model.n_params, weights_sha256=model.weights_sha256)


def _task_record(task: EvalTask) -> TaskRecord:
    return TaskRecord(
        task_id=task.task_id, name=task.name, version=task.version, origin=task.origin,
        config_hash=task.config_hash, primary_metric=task.primary_metric,
        higher_is_better=task.higher_is_better, n_items=task.n_items, config=task.identity,
    )
