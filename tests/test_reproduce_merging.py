"""scripts/reproduce_merging.py's Expert Merging check: kept gains from a hand-made score table (closed
form: kept = (merge − base) / (expert − base)) and the one-line reasons it fails with."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("reproduce_merging", REPO / "scripts" / "reproduce_merging.py")
rm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rm)

EXPERTS = {"arith": "expert-a", "compare": "expert-c"}
MERGES = [("lin", "linear"), ("em", "expert_merging")]


def _rows(em: tuple[float, float]) -> list[dict]:
    """Base 0.5 / 0.5, each expert 0.9 on its own task (a gain of 0.4), linear 0.7 / 0.8 (kept 50% / 75%)."""
    acc = {"base": (0.5, 0.5), "expert-a": (0.9, 0.5), "expert-c": (0.5, 0.9), "lin": (0.7, 0.8), "em": em}
    items = {(model, task): pd.Series([1.0] * round(100 * value) + [0.0] * (100 - round(100 * value)))
             for model, values in acc.items() for task, value in zip(EXPERTS, values)}
    return rm.table(rm.as_scores(items), "base", EXPERTS, MERGES)


def test_kept_gain_is_the_closed_form():
    rows = {row["model"]: row for row in _rows((0.8, 0.8))}
    assert abs(rows["lin"]["tasks"]["arith"]["kept_gain"] - 0.5) < 1e-12
    assert abs(rows["lin"]["mean_kept_gain"] - 0.625) < 1e-12
    assert abs(rows["em"]["mean_kept_gain"] - 0.75) < 1e-12


def test_check_passes_only_when_more_is_kept_and_no_task_is_below_linear():
    assert rm.learnt_check(_rows((0.8, 0.8)), "em", "lin", moved=0.2) is None
    assert "stayed at their uniform start" in rm.learnt_check(_rows((0.8, 0.8)), "em", "lin", moved=0.0)
    worse = rm.learnt_check(_rows((0.9, 0.75)), "em", "lin", moved=0.2)  # more kept on average, less on compare
    assert "keeps 81% of the experts' gains against lin's 62%, and less on compare" in worse
    assert "keeps 62%" in rm.learnt_check(_rows((0.7, 0.8)), "em", "lin", moved=0.2)  # a tie is not more
