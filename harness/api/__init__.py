"""The Python API: evaluate into a store, read it back as ScoreTables, rank them; the CLI verbs wrap these."""

from harness.api._evaluate import evaluate
from harness.api._rank import csv_scores, rank, scores
from harness.api._store import open_store

__all__ = ["csv_scores", "evaluate", "open_store", "rank", "scores"]
