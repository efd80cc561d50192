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


from harness.backends import StoreCachedLM, settle
from harness.evaluation.config import EvalSettings
from harness.common.display import Display
from harness.evaluation.environment import environment
from harness.weights.models import ModelRef, ResolvedModel, materialize
from harness.evaluation.scoring import SAMPLE_SCHEMA, SCORE_SCHEMA, sample_rows, score_rows, to_arrow
from harness.store import ModelRecord, Store, TaskRecord
from harness.tasks.task import EvalTask, GroupMember


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


def run_id_for(model: ResolvedModel, task: EvalTask, settings: EvalSettings) -> str:
    """Same weights, same task config, same result-changing settings: same run (resume, don't redo)."""
    key = {"model": model.fingerprint, "task": task.config_hash, **settings.identity()}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


class ModelSession:
    """Builds the backend model and its tokenizer once per model, and only when work needs them."""

    def __init__(self, model: ResolvedModel, settings: EvalSettings):
        self.model = model
        self.settings = settings
        self._lm = None
        self._tokenizer = None
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

    def tokenizer(self):
        """The model's tokenizer alone (chat templates, token counts), without loading any weights."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(self.model.path),
                                                            trust_remote_code=self.model.policy.trust_remote_code)
        return self._tokenizer

    def count_tokens(self, context: str, continuation: str) -> int:
        if self._counter is None:
            from harness.backends.hf import token_counter

            self._counter = token_counter(self.tokenizer())
        return self._counter(context, continuation)


class Runner:
    def __init__(self, store: Store, settings: EvalSettings, results_dir: Path, display: Display | None = None):
        self.store = store
        # 'auto' is settled once here, so run ids name the backend and dtype that actually compute.
        self.settings = settle(settings)
        self.results_dir = results_dir
        self.display = display or Display("none")

    def run(self, models: list[ModelRef], tasks: list[EvalTask], members: list[GroupMember] = ()) -> list[JobOutcome]:
        task_manager = self._register_tasks(tasks, members)
        outcomes: list[JobOutcome] = []
        with self.display.session():
            for ref in models:
                resolved = self._register(ref)
                session = ModelSession(resolved, self.settings)
                warn_chat_model(session, self.settings, self.display)
                for task in tasks:
                    outcomes.append(self._job(session, task, task_manager))
        return outcomes

    def _register_tasks(self, tasks: list[EvalTask], members: list[GroupMember] = ()):
        """Store the task records and group edges; returns the lm-eval TaskManager every job shares (tasks reach
        lm-eval as full configs, so it needs no index)."""
        quiet_lm_eval()
        from lm_eval.tasks import TaskManager

        for task in tasks:
            self.store.register_task(_task_record(task))
        self.store.register_group_members(members)
        return TaskManager(include_defaults=False)

    def _register(self, ref: ModelRef) -> ResolvedModel:
        resolved = materialize(ref, self.results_dir / "models")
        self.store.register_model(ModelRecord(
            model_id=resolved.model_id, name=resolved.name, kind=resolved.kind, source=resolved.source,
            fingerprint=resolved.fingerprint, n_params=resolved.n_params,
        ))
        return resolved

    def _job(self, session: ModelSession, task: EvalTask, task_manager) -> JobOutcome:
        model = session.model
        run_id = run_id_for(model, task, self.settings)
        if (skipped := self._skipped(model, task, run_id)) is not None:
            return skipped
        started = time.perf_counter()
        self._start(model, task, run_id)
        job = self.display.job(f"{model.name} · {task.name}")
        lm = StoreCachedLM(
            inner_factory=session.lm, count_tokens=session.count_tokens, store=self.store, run_id=run_id,
            chunk_size=self.settings.chunk_size, tokenizer=session.tokenizer,
            on_total=job.add_total, on_advance=job.advance,
        )
        return self._finish(model, task, run_id, lm, task_manager, job, started)

    def _skipped(self, model: ResolvedModel, task: EvalTask, run_id: str) -> JobOutcome | None:
        """The outcome of a run that is already done (nothing to do), else None."""
        if self.store.run_status(run_id) != "done":
            return None
        metric = task.primary_metric
        return JobOutcome(model.name, task.name, "skipped", metric, self.store.score(run_id, metric))

    def _start(self, model: ResolvedModel, task: EvalTask, run_id: str) -> None:
        self.store.start_run(run_id, model.model_id, task.task_id, self.settings.backend,
                             self.settings.model_dump(), self.settings.limit, environment())

    def _finish(self, model: ResolvedModel, task: EvalTask, run_id: str, lm: StoreCachedLM, task_manager,
                job, started: float, computed: int | None = None) -> JobOutcome:
        """Evaluate through `lm` (answers from the store, the rest computed), store samples and scores, mark
        the run done; any error marks it failed instead. `computed` replaces lm's count when the model work
        happened elsewhere (Ray workers); everything else was then answered from the store."""
        name, metric = task.name, task.primary_metric
        try:
            results = lm_eval_run(lm, task.build_config(), task_manager, self.settings)
            samples = sample_rows(run_id, results["samples"][name], self.store.requests_for_run(run_id))
            n_docs = int(results["n-samples"][name]["effective"])
            if task.n_items is None:
                self.store.set_task_items(task.task_id, int(results["n-samples"][name]["original"]))
            scores = score_rows(run_id, results["results"][name], samples, n_docs)
            counts = {"requests": lm.n_requests, "cached": lm.n_cached, "computed": lm.n_computed}
            if computed is not None:
                counts |= {"cached": lm.n_requests - computed, "computed": computed}
            self.store.finish_run(run_id, to_arrow(samples, SAMPLE_SCHEMA), to_arrow(scores, SCORE_SCHEMA), counts)
        except Exception as exc:  # one bad job must not stop the others
            return self._failed(model, task, run_id, job, started, error_line(exc, name), lm.n_cached,
                                lm.n_computed)
        value = scores.loc[scores["metric"] == metric, "value"]
        return JobOutcome(model.name, name, "done", metric, float(value.iloc[0]) if len(value) else None,
                          counts["cached"], counts["computed"], time.perf_counter() - started)

    def _failed(self, model: ResolvedModel, task: EvalTask, run_id: str, job, started: float, message: str,
                n_cached: int = 0, n_computed: int = 0) -> JobOutcome:
        self.store.fail_run(run_id, message)
        job.failed()
        return JobOutcome(model.name, task.name, "failed", task.primary_metric, None, n_cached, n_computed,
                          time.perf_counter() - started, message)


def error_line(exc: BaseException, task: str | None = None) -> str:
    """An exception as one line: its type and the first line of its message (missing task data: the fix)."""
    from harness.tasks.data import missing_data_hint

    if (hint := missing_data_hint(exc, task)) is not None:
        return hint
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def lm_eval_run(lm, config: dict, task_manager, settings: EvalSettings, docs: list[int] | None = None) -> dict:
    """lm-eval over the task's first `settings.limit` items (logged, with bootstrap), or, for a Ray shard, over
    exactly `docs` (sorted; lm-eval numbers them 0..m-1), where only the requests matter."""
    from lm_eval import simple_evaluate

    prompting = dict(num_fewshot=settings.num_fewshot, fewshot_random_seed=settings.fewshot_seed,
                     apply_chat_template=settings.apply_chat_template, fewshot_as_multiturn=settings.multiturn,
                     system_instruction=settings.system_instruction, gen_kwargs=settings.gen_kwargs)
    if docs is not None:
        return simple_evaluate(model=lm, tasks=[config], task_manager=task_manager, samples={config["task"]: docs},
                               log_samples=False, bootstrap_iters=0, **prompting)
    return simple_evaluate(model=lm, tasks=[config], task_manager=task_manager, limit=settings.limit,
                           log_samples=True, bootstrap_iters=settings.bootstrap_iters, **prompting)


def warn_chat_model(session: ModelSession, settings: EvalSettings, display: Display) -> None:
    """One line when a model made for chat is evaluated without its chat template (as lm-eval warns)."""
    name = f"{session.model.name} {session.model.source}".lower()
    if settings.apply_chat_template or not any(word in name for word in ("instruct", "chat", "-it")):
        return
    display.note(f"{session.model.name} looks like a chat/instruct model but no chat template is applied "
                 "(--apply-chat-template); scores may differ a lot either way")


def _task_record(task: EvalTask) -> TaskRecord:
    return TaskRecord(
        task_id=task.task_id, name=task.name, version=task.version, source=task.source,
        config_hash=task.config_hash, primary_metric=task.primary_metric,
        higher_is_better=task.higher_is_better, n_items=task.n_items, config=task.identity,
    )


def quiet_lm_eval() -> None:
    for name in ("lm_eval", "lm-eval", "datasets", "transformers", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
