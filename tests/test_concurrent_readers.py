"""Read-only verbs run while `harness eval` writes the same store (issue 17: they were refused with "database is
busy" for as long as the eval ran). The eval lets go of the DuckDB file after each committed chunk and holds an
advisory writer lock instead (harness.store.connection.WriterLock), so readers get in between chunks and other
writers are still refused, naming the eval's pid."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.store import Store
from tests.test_cli import fill_store

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
LIMIT = 300  # all of arith_add_2d's items; 4 choices each, in chunks of 4 requests: 300 committed chunks


@pytest.fixture()
def eval_running(tiny_model, tmp_path):
    """A store with finished runs (models A, B, C) and a slow `harness eval` of the tiny model writing into it."""
    db = tmp_path / "h.duckdb"
    fill_store(db)
    env = {**os.environ, "HARNESS_RESULTS": str(tmp_path / "results"), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "harness.cli", "eval", "--models", f"{tiny_model}=tiny", "--tasks",
               "arith_add_2d", "--limit", str(LIMIT), "--chunk-size", "4", "--display", "plain", "--db", str(db)]
    writer = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = writer.stderr.readline()  # "0/1200 requests" comes first; wait for its first committed chunk
        while re.search(r": [1-9]\d*/\d+ requests", line) is None:
            assert "requests" in line, line + writer.stderr.read()
            line = writer.stderr.readline()
        yield db, writer
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.communicate()


def _requests(db: Path) -> int:
    result = runner.invoke(app, ["query", "--db", str(db), "SELECT count(*) AS n FROM requests", "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["rows"][0]["n"]


def test_readers_run_while_an_eval_writes(eval_running):
    db, writer = eval_running
    seen, ranked = [], 0
    while writer.poll() is None and ranked < 3:
        seen.append(_requests(db))
        result = runner.invoke(app, ["rank", "--db", str(db), "--method", "mean", "-f", "json"])
        assert result.exit_code == 0, result.output
        assert {"A", "B", "C"} <= {row["competitor"] for row in json.loads(result.stdout)["rows"]}
        listed = runner.invoke(app, ["models", "list", "--db", str(db)])
        assert listed.exit_code == 0 and "tiny" in listed.stdout, listed.output
        ranked += 1
        time.sleep(0.5)
    assert ranked >= 3, "the eval ended before three readers could overlap it; raise LIMIT"
    assert seen == sorted(seen) and seen[-1] > seen[0], seen  # it went on writing meanwhile
    _, error = writer.communicate(timeout=600)
    assert writer.returncode == 0, error
    with Store.open(db, read_only=True) as store:
        assert store.count("requests") == 4 * LIMIT
        assert store.con.execute("SELECT status FROM runs r JOIN models m USING (model_id) WHERE m.name = 'tiny'"
                                 ).fetchall() == [("done",)]


def test_writers_are_still_refused_while_an_eval_writes(eval_running, tmp_path):
    db, writer = eval_running
    board = tmp_path / "board.csv"
    board.write_text("model,x\nalpha,1\nbeta,2\n")
    before = _requests(db)
    imported = runner.invoke(app, ["import", "csv", str(board), "--wide", "--name", "b", "--db", str(db)])
    assert imported.exit_code == 2 and writer.poll() is None, imported.output
    assert "database is busy" in imported.output and f"harness process (pid {writer.pid})" in imported.output
    written = runner.invoke(app, ["query", "--db", str(db), "--write", "DELETE FROM requests"])
    assert written.exit_code == 2 and "database is busy" in written.output, written.output
    assert _requests(db) >= before  # nothing deleted
    writer.kill()  # a killed eval leaves no lock behind: the kernel drops it with the process
    writer.communicate()
    imported = runner.invoke(app, ["import", "csv", str(board), "--wide", "--name", "b", "--db", str(db)])
    assert imported.exit_code == 0, imported.output
