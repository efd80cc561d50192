"""Library noise stays out of normal output and comes back with `harness -v` (issue 17): lm-eval's tqdm bars and
"metric ... is defined, but aggregation is not" lines, `fatal: not a git repository` (lm-eval ran `git describe` in
the working folder), matplotlib's "Glyph ... missing from font" warnings, numpy/scipy warnings. Real verbs in
subprocesses, run from a folder that is not a git repository; our own progress lines and tables stay.
The evaluation summary is also checked at COLUMNS=80: a long model name is printed whole in every row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.test_cli import fill_store

REPO = Path(__file__).resolve().parents[1]
LONG_NAME = "tiny-llama-with-a-name-longer-than-any-cell"
# What the libraries print, and nothing of ours says.
NOISE = ("is defined, but aggregation is not", "it/s]", "Running loglikelihood requests", "fatal: not a git",
         "Warning:", "Glyph")


def harness(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("HARNESS_VERBOSE", "COLUMNS", "PYTHONWARNINGS",
                                                                 "TQDM_DISABLE", "TRANSFORMERS_VERBOSITY")}
    environ.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", **env)
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=environ, timeout=600)


def noise(text: str) -> list[str]:
    return [marker for marker in NOISE if marker in text]


@pytest.fixture(scope="module")
def evals(tiny_model, tmp_path_factory):
    """One `harness eval` quiet and one with -v: a multiple-choice task and a perplexity task (lm-eval's rolling
    log-likelihood shows its own tqdm bar), in a folder outside any git repository."""
    work = tmp_path_factory.mktemp("quiet")
    runs = {}
    for flag in ("", "-v"):
        args = [*([flag] if flag else []), "eval", "--models", f"{tiny_model}={LONG_NAME}", "--tasks",
                "compare_yes_no,english_flores", "--limit", "2", "--display", "plain", "--db",
                str(work / f"h{flag}.duckdb")]
        runs[flag] = harness(args, work, HARNESS_RESULTS=str(work / "results"), COLUMNS="80")
        assert runs[flag].returncode == 0, runs[flag].stderr
    return runs


def test_eval_prints_no_library_noise_by_default(evals):
    quiet = evals[""]
    assert noise(quiet.stdout + quiet.stderr) == []
    lines = [line for line in quiet.stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith(f"{LONG_NAME} · ") and line.endswith("requests") for line in lines), lines


def test_eval_with_verbose_shows_the_libraries(evals):
    """lm-eval's own log records come back with -v. (Its "Running loglikelihood requests" bars do not: the harness
    scores shared prefixes and rolling windows itself, so those requests never reach lm-eval's bar.)"""
    loud = evals["-v"].stdout + evals["-v"].stderr
    assert "is defined, but aggregation is not" in loud and "is defined, but higher_is_better is not" in loud


def test_eval_summary_keeps_names_whole_in_80_columns(evals):
    out = evals[""].stdout
    assert max(map(len, out.splitlines())) <= 80 and "…" not in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert rows and all(f"│ {LONG_NAME} │" in line for line in rows), out
    assert {"compare_yes_no", "english_flores"} <= {part.strip() for line in rows for part in line.split("│")}


@pytest.fixture(scope="module")
def glyph_db(tmp_path_factory):
    """A store whose model names need glyphs matplotlib's default font lacks (CJK), as its plots draw them."""
    db = tmp_path_factory.mktemp("glyphs") / "h.duckdb"
    fill_store(db)
    with duckdb.connect(str(db)) as con:
        for old, new in zip("ABC", ("模型甲", "模型乙", "模型丙")):
            con.execute("UPDATE models SET name = ? WHERE name = ?", [new, old])
    return db


def test_report_hides_matplotlib_glyph_warnings_unless_verbose(glyph_db, tmp_path):
    quiet = harness(["report", "--db", str(glyph_db), "--out", str(tmp_path / "q.html"), "--n-boot", "20"], tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert noise(quiet.stdout + quiet.stderr) == []
    assert quiet.stderr.strip().splitlines() == [f"report written to {tmp_path / 'q.html'} (3 sections: "
                                                 "leaderboard, cd, heatmap)"]
    loud = harness(["-v", "report", "--db", str(glyph_db), "--out", str(tmp_path / "v.html"), "--n-boot", "20"],
                   tmp_path)
    assert loud.returncode == 0, loud.stderr
    assert "missing from font" in loud.stderr


def test_rank_hides_numerical_warnings_unless_verbose(tmp_path):
    """Two competitors under --robustness: the IIA check averages an empty slice (numpy's RuntimeWarning)."""
    db = tmp_path / "h.duckdb"
    fill_store(db)
    args = ["rank", "--db", str(db), "--models", "A,C", "--robustness"]
    quiet, loud = harness(args, tmp_path), harness(["-v", *args], tmp_path)
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    assert quiet.stderr == "" and quiet.stdout == loud.stdout
    assert "RuntimeWarning" in loud.stderr
