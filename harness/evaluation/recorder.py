"""A run's life in the store (started, done with its samples and scores, or failed), the same for every executor.

Executors decide where the model work happens; how a run is recorded, scored and finished is decided here once.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from harness.backends import StoreCachedLM
from harness.evaluation.config import EvalSettings
from harness.evaluation.environment import environment
from harness.evaluation.scoring import SAMPLE_SCHEMA, SCORE_SCHEMA, sample_rows, score_rows, to_arrow
from harness.store import Store
from harness.tasks.task import EvalTask
from harness.weights.models import ResolvedModel


@dataclass(frozen=True)
class Job:
    """One (model, task) run to compute."""

    model: ResolvedModel
    task: EvalTask
    run_id: str
    answer_scope: str

    @property
    def label(self) -> str:
        return f"{self.model.name} · {self.task.name}"


@dataclass(frozen=True)
class RunResult:
    model: str
    task: str
    status: str  # done | skipped | failed
    metric: str
    value: float | None
    n_cached: int = 0
    n_computed: int = 0
    seconds: float = 0.0
    error: str | None = None
    run_id: str | None = None


class RunRecorder:
    """Starts, finishes and fails runs in the store; `finish` scores a run through lm-eval from stored answers."""

    def __init__(self, store: Store, settings: EvalSettings, task_manager):
        self.store = store
        self.settings = settings
        self.task_manager = task_manager

    def start(self, job: Job) -> float:
        """Mark the run running; returns the start time its outcome's seconds count from."""
        self.store.start_run(job.run_id, job.model.model_id, job.task.task_id, self.settings.backend,
                             self.settings.model_dump(), self.settings.limit, environment(), job.answer_scope)
        return time.perf_counter()

    def finish(self, job: Job, lm: StoreCachedLM, progress, started: float, computed: int | None = None) -> RunResult:
        """Evaluate through `lm` (answers from the store, the rest computed), store samples and scores, mark
        the run done; any error marks it failed instead. `computed` replaces lm's count when the model work
        happened elsewhere (Ray workers); everything else was then answered from the store."""
        task, run_id = job.task, job.run_id
        try:
            results = lm_eval_run(lm, task.build_config(), self.task_manager, self.settings)
            logged, aggregates = results["samples"][task.name], results["results"][task.name]
            n_docs = int(results["n-samples"][task.name]["effective"])
            if task.n_items is None:
                self.store.set_task_items(task.task_id, int(results["n-samples"][task.name]["original"]))
            if self.settings.items is not None:  # the others were placeholders: only the items count
                items = set(self.settings.items)
                missing = items - {int(s["doc_id"]) for s in logged}
                if missing:
                    raise ValueError(f"items: doc id {min(missing)} is not in the task ({n_docs} items)")
                logged, aggregates, n_docs = [s for s in logged if int(s["doc_id"]) in items], {}, len(items)
            samples = sample_rows(run_id, logged, self.store.requests_for_run(run_id))
            scores = score_rows(run_id, aggregates, samples, n_docs)
            counts = {"requests": lm.n_requests, "cached": lm.n_cached, "computed": lm.n_computed}
            if computed is not None:
                counts |= {"cached": lm.n_requests - computed, "computed": computed}
            self.store.finish_run(run_id, to_arrow(samples, SAMPLE_SCHEMA), to_arrow(scores, SCORE_SCHEMA), counts)
        except Exception as exc:  # one bad job must not stop the others
            return self.fail(job, progress, started, error_line(exc, task.name), lm.n_cached, lm.n_computed)
        value = scores.loc[scores["metric"] == task.primary_metric, "value"]
        return RunResult(job.model.name, task.name, "done", task.primary_metric,
                          float(value.iloc[0]) if len(value) else None, counts["cached"], counts["computed"],
                          time.perf_counter() - started, run_id=run_id)

    def fail(self, job: Job, progress, started: float, message: str, n_cached: int = 0,
             n_computed: int = 0) -> RunResult:
        self.store.fail_run(job.run_id, message)
        progress.failed()
        return RunResult(job.model.name, job.task.name, "failed", job.task.primary_metric, None, n_cached,
                          n_computed, time.perf_counter() - started, message, job.run_id)


def error_line(exc: BaseException, task: str | None = None) -> str:
    """An exception as one line: its type and the first line of its message (missing task data: the fix)."""
    from harness.tasks.data import missing_data_hint

    if (hint := missing_data_hint(exc, task)) is not None:
        return hint
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def lm_eval_run(lm, config: dict, task_manager, settings: EvalSettings, requests_only: bool = False) -> dict:
    """lm-eval over the task's first `settings.limit` items, logged and with bootstrap; with `requests_only` (a Ray
    shard, whose LM answers only its own documents) neither, as only the requests matter; with `settings.items`
    (an LM that answers only those) no bootstrap, as lm-eval's aggregates include the placeholders."""
    from lm_eval import simple_evaluate

    prompting = dict(num_fewshot=settings.num_fewshot, fewshot_random_seed=settings.fewshot_seed,
                     apply_chat_template=settings.apply_chat_template, fewshot_as_multiturn=settings.multiturn,
                     system_instruction=settings.system_instruction, gen_kwargs=settings.gen_kwargs)
    with _without_environment_report():
        return simple_evaluate(model=lm, tasks=[config], task_manager=task_manager, limit=settings.limit,
                               log_samples=not requests_only,
                               bootstrap_iters=0 if requests_only or settings.items else settings.bootstrap_iters,
                               **prompting)


@contextmanager
def _without_environment_report() -> Iterator[None]:
    """simple_evaluate ends by collecting torch's environment report (`pip list` and friends in subprocesses):
    ~0.5 s per call, 85% of a cached task's cost (scripts/bench_task_overhead.py), paid per leaf of a group.
    Each run records its environment once (environment.py), so lm-eval's copy, which we drop, is skipped; so is its
    git hash, which is of the working folder (`git describe` there printed "fatal: not a git repository")."""
    import lm_eval.evaluator as evaluator

    collect, git_hash = evaluator.add_env_info, evaluator.get_git_commit_hash
    evaluator.add_env_info, evaluator.get_git_commit_hash = (lambda results: None), (lambda: None)
    try:
        yield
    finally:
        evaluator.add_env_info, evaluator.get_git_commit_hash = collect, git_hash


def quiet_lm_eval() -> None:
    """Library logs, warnings and tqdm bars as `harness -v` chose (harness.common.quiet), here and in workers."""
    from harness.common.quiet import quiet_libraries

    quiet_libraries()
