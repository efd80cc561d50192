"""Where things live by default: one results folder, overridable by environment or flags."""

from __future__ import annotations

import os
from pathlib import Path


def results_dir() -> Path:
    return Path(os.environ.get("HARNESS_RESULTS", "results"))


def default_db() -> Path:
    return Path(os.environ.get("HARNESS_DB", results_dir() / "harness.duckdb"))
