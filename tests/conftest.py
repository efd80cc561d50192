"""Shared fixtures. Tests never touch the network: the hub is switched off before anything imports it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

# Hypothesis (tests/test_fuzz_parsers.py): the same inputs on every run, no example database, and its
# caches in the temp folder rather than a .hypothesis folder in the repository. Every health check stays on:
# a test that needs one off says so itself (@settings(suppress_health_check=[...])), for that check only.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "harness-hypothesis"))
try:
    from hypothesis import settings
except ImportError:  # the test extra is not installed: only the fuzz tests need it
    pass
else:
    settings.register_profile("harness", derandomize=True, database=None, deadline=None, max_examples=40)
    settings.load_profile("harness")

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    return Path(os.environ.get("HARNESS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Real published results (../shared/data, or $HARNESS_SHARED_DATA)."""
    path = _shared_data()
    if not path.is_dir():
        pytest.fail(f"real test data not found at {path}; set HARNESS_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Llama (head_dim 64) with a trained BPE tokenizer, built once per test session."""
    from tests.tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture()
def results_env(tmp_path, monkeypatch) -> Path:
    """An empty results folder and database for one test, selected the way users do (environment)."""
    monkeypatch.setenv("HARNESS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("HARNESS_DB", str(tmp_path / "results" / "harness.duckdb"))
    return tmp_path / "results"
