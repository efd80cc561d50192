"""`--executor local`: every job in this process, one model at a time, answers straight into the store."""

from __future__ import annotations

from harness.backends import StoreCachedLM
from harness.common.display import Display
from harness.evaluation.config import EvalSettings
from harness.evaluation.recorder import Job, RunResult, RunRecorder
from harness.evaluation.session import ModelSession, warn_chat_model


class LocalExecutor:
    def execute(self, jobs: list[Job], recorder: RunRecorder, settings: EvalSettings,
                display: Display) -> list[RunResult]:
        outcomes, sessions = [], {}
        for job in jobs:
            if (session := sessions.get(job.model.model_id)) is None:
                sessions.clear()  # jobs come model by model: the previous model's weights can go
                session = sessions[job.model.model_id] = ModelSession(job.model, settings)
                warn_chat_model(job.model, settings, display)
            started = recorder.start(job)
            progress = display.job(job.label)
            lm = StoreCachedLM(inner_factory=session.lm, count_tokens=session.count_tokens, store=recorder.store,
                               run_id=job.run_id, chunk_size=settings.chunk_size, tokenizer=session.tokenizer,
                               on_total=progress.add_total, on_advance=progress.advance,
                               only_docs=None if settings.items is None else frozenset(settings.items))
            outcomes.append(recorder.finish(job, lm, progress, started))
        return outcomes
