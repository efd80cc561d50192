"""Evaluate language models and their variants into DuckDB, and rank them defensibly.

    import harness
    results = harness.evaluate(["smollm2-135m"], ["core"], limit=20)
    ranking = harness.rank(method="csd")            # the evaluated models in the default store
    table = harness.scores(tasks=["mmlu"])          # a tournaments.ScoreTable, for any ranker or plot

Names load on first use, so `import harness` stays cheap for the CLI and for workers.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "evaluate": "harness.api", "rank": "harness.api", "scores": "harness.api", "csv_scores": "harness.api",
    "open_store": "harness.api", "EvalSettings": "harness.evaluation.config", "ModelSpec": "harness.evaluation.config",
    "RunResult": "harness.evaluation.recorder", "Store": "harness.store", "HarnessError": "harness.common.errors",
    "ScoreTable": "tournaments", "Ranking": "tournaments", "CSDResult": "tournaments.swiss",
}

if TYPE_CHECKING:
    from harness.api import csv_scores, evaluate, open_store, rank, scores
    from harness.common.errors import HarnessError
    from harness.evaluation.config import EvalSettings, ModelSpec
    from harness.evaluation.recorder import RunResult
    from harness.store import Store
    from tournaments import Ranking, ScoreTable
    from tournaments.swiss import CSDResult


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = ["CSDResult", "EvalSettings", "HarnessError", "ModelSpec", "Ranking", "RunResult", "ScoreTable", "Store",
           "csv_scores", "evaluate", "open_store", "rank", "scores"]
