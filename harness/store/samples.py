"""A run's items as it answered them: the stored requests with their texts, and the per-item values lm-eval gave."""

from __future__ import annotations

import difflib

import pandas as pd

from harness.common.errors import HarnessError
from harness.store.connection import Connection


def _unknown(kind: str, name: str, known: list[str], of: str = "") -> HarnessError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return HarnessError(f"{kind} {name!r}: no finished run{of}{hint} (known: {', '.join(known) or 'none'})")


class Samples(Connection):
    def sample_run(self, model: str, task: str) -> dict:
        """The finished run of `model` on `task` that the `leaderboard` view picks, the one covering the most items
        where it picks several; an unknown model or task is refused in one line naming the known ones."""
        models = [r[0] for r in self.con.execute("SELECT DISTINCT model FROM leaderboard ORDER BY model").fetchall()]
        if model not in models:
            raise _unknown("model", model, models)
        tasks = [r[0] for r in self.con.execute(
            "SELECT DISTINCT task FROM leaderboard WHERE model = ? ORDER BY task", [model]).fetchall()]
        if task not in tasks:
            raise _unknown("task", task, tasks, of=f" of model {model!r}")
        run_id, metric, n = self.con.execute(
            """SELECT l.run_id, l.metric, l.n FROM leaderboard l JOIN runs r USING (run_id)
               WHERE l.model = ? AND l.task = ?
               ORDER BY l.n DESC, l.item_limit IS NULL DESC, r.finished_at DESC LIMIT 1""", [model, task]).fetchone()
        return {"run_id": run_id, "metric": metric, "n": n}

    def sample_requests(self, run_id: str, docs: list[int] | None = None) -> pd.DataFrame:
        """The run's requests by item and choice (of the items `docs` only, when given: a page of them), with their
        prompt and continuation texts (NULL where the row names none, and `texts_stored` false for rows written
        before schema v3, which name no text at all)."""
        return self.con.execute(
            """SELECT q.doc_id, q.idx, q.request_type, q.logprob, q.generation, c.text AS context,
                      k.text AS continuation, (q.context_sha IS NOT NULL OR q.continuation_sha IS NOT NULL)
                      AS texts_stored
               FROM requests q LEFT JOIN texts c ON c.text_sha = q.context_sha
               LEFT JOIN texts k ON k.text_sha = q.continuation_sha
               WHERE q.run_id = ? AND (?::INTEGER[] IS NULL OR list_contains(?::INTEGER[], q.doc_id))
               ORDER BY q.doc_id, q.idx""", [run_id, docs, docs]).df()

    def sample_values(self, run_id: str, metrics: list[str]) -> pd.DataFrame:
        """The run's per-item values of `metrics`, one column each (NaN where an item has none)."""
        frame = self.con.execute(
            "SELECT doc_id, metric, value FROM samples WHERE run_id = ? AND list_contains(?, metric)",
            [run_id, metrics]).df()
        if frame.empty:
            return pd.DataFrame(columns=["doc_id", *metrics])
        wide = frame.pivot_table(index="doc_id", columns="metric", values="value", aggfunc="first")
        return wide.reindex(columns=metrics).reset_index()

    def sample_metrics(self, run_id: str) -> list[str]:
        """The per-item metrics stored for the run."""
        return [r[0] for r in self.con.execute(
            "SELECT DISTINCT metric FROM samples WHERE run_id = ? ORDER BY metric", [run_id]).fetchall()]
