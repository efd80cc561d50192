"""`--executor ray` on a local Ray instance (CPU only): a run split over two Ray workers stores exactly the rows
of a local run; a worker SIGKILLed mid-run leaves shards that the re-run reuses, with no duplicate rows; ingesting
a shard again adds nothing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from harness.backends.cached import REQUEST_SCHEMA
from harness.backends import settle
from harness.evaluation.config import EvalSettings
from harness.common.errors import HarnessError
from harness.executors.shards import read_shards, run_folder, shard_files, split_docs, write_shard
from harness.store import Store

REPO = Path(__file__).resolve().parents[1]
MC_TASK, PPL_TASK = "arith_add_2d", "english_flores"
# Settled as the runner settles them (backend and dtype 'auto' made concrete), so run ids match the runner's.
SETTINGS = settle(EvalSettings(limit=10, batch_size=8, chunk_size=8, bootstrap_iters=0))
# The tiny model computes in float32, and a shard batches other documents together than the whole task does (and
# a Ray worker runs one torch thread): sums of hundreds of token log-probs may differ in their last float32 bit.
RTOL = 1e-6
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="ray is not installed (the `distributed` extra: pip install -e '.[distributed]')")


# ---------------------------------------------------------------- shards alone (no Ray needed)
def _rows(run_id: str, docs: list[int], logprob: float) -> pa.Table:
    n = len(docs)
    return pa.table({
        "run_id": [run_id] * n, "req_hash": [f"h{d}" for d in docs], "request_type": ["loglikelihood"] * n,
        "doc_id": docs, "idx": [0] * n, "logprob": [logprob] * n, "is_greedy": [False] * n, "n_tokens": [1] * n,
        "n_chars": [2] * n, "n_bytes": [2] * n, "n_words": [1] * n, "generation": [None] * n,
        "context_sha": [None] * n, "continuation_sha": [None] * n,
    }, schema=REQUEST_SCHEMA)


def test_shard_ingest_is_idempotent(tmp_path):
    folder = tmp_path / "shards" / "run1" / "1-of-2"
    first = write_shard(_rows("run1", [0, 2, 4], -1.0), folder, "loglikelihood")
    write_shard(_rows("run1", [4, 6], -9.0), folder, "loglikelihood")  # doc 4 again, as a retried worker writes it
    (folder / ".half-written.parquet.tmp").write_bytes(b"PAR1 not finished")  # a temporary a killed worker left
    assert [p.name.startswith(".") for p in shard_files(tmp_path / "shards")] == [False, False]
    with Store.open(tmp_path / "h.duckdb") as store:
        for _ in range(2):
            store.add_requests(read_shards(shard_files(tmp_path / "shards")))
            rows = store.requests_for_run("run1")
            assert rows["doc_id"].tolist() == [0, 2, 4, 6]
        assert store.count("requests") == 4
        # Re-ingesting one file on its own changes nothing either.
        store.add_requests(read_shards([first]))
        assert store.count("requests") == 4


def test_a_foreign_file_among_shards_is_named(tmp_path):
    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(HarnessError, match="x.parquet: not readable as Parquet"):
        read_shards([bad])
    write_shard(pa.table({"a": [1]}), tmp_path / "f", "loglikelihood")
    with pytest.raises(HarnessError, match="not a request shard"):
        read_shards(shard_files(tmp_path / "f"))


def test_split_docs_interleaves_and_drops_empty_shards():
    shards = split_docs(5, 2)
    assert [s.docs for s in shards] == [(0, 2, 4), (1, 3)] and [s.name for s in shards] == ["1-of-2", "2-of-2"]
    assert [s.docs for s in split_docs(2, 4)] == [(0,), (1,)]


# ---------------------------------------------------------------- on a local Ray instance
@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def prepared(tiny_model, tmp_path_factory):
    from harness.weights import models as registry
    from harness.tasks.registry import resolve_tasks

    root = tmp_path_factory.mktemp("ray")
    tasks = {t.name: t for t in resolve_tasks([MC_TASK, PPL_TASK], root / "tasks").tasks}
    return root, registry.resolve(str(tiny_model)), tasks


@pytest.fixture(scope="module")
def local_db(prepared):
    """The reference: the same model and tasks, evaluated by the local executor."""
    from harness.evaluation.runner import Runner

    root, ref, tasks = prepared
    with Store.open(root / "local.duckdb") as store:
        outcomes = Runner(store, SETTINGS, root / "local").run([ref], list(tasks.values()))
    assert [o.status for o in outcomes] == ["done", "done"]
    return root / "local.duckdb"


def _ray_run(root: Path, ref, tasks, db: str, **options):
    from harness.evaluation.runner import Runner
    from harness.executors.ray_executor import RayExecutor

    with Store.open(root / db) as store:
        return Runner(store, SETTINGS, root / "ray", executor=RayExecutor(root / "ray", **options)).run([ref], tasks)


def _tables(db: Path, task: str | None = None) -> dict[str, pd.DataFrame]:
    where = "" if task is None else f"WHERE run_id IN (SELECT run_id FROM runs JOIN tasks USING (task_id) " \
                                    f"WHERE tasks.name = '{task}')"
    with Store.open(db, read_only=True) as store:
        return {
            "requests": store.query(f"SELECT * FROM requests {where} ORDER BY ALL"),
            "samples": store.query(f"SELECT * FROM samples {where} ORDER BY run_id, doc_id, metric"),
            "scores": store.query(f"SELECT * FROM scores {where} ORDER BY run_id, metric"),
            "runs": store.query(f"SELECT run_id, status, n_requests FROM runs {where} ORDER BY run_id"),
        }


def _nulls_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    """Parquet and DuckDB hand pandas different kinds of null (NaN in a string column vs None)."""
    return frame.astype(object).where(frame.notna(), None)


def _assert_same_rows(ours: dict[str, pd.DataFrame], reference: dict[str, pd.DataFrame]) -> None:
    exact = [c for c in REQUEST_SCHEMA.names if c != "logprob"]
    mine, theirs = ours["requests"], reference["requests"]
    assert len(mine) == len(theirs) > 0
    pd.testing.assert_frame_equal(mine[exact], theirs[exact])
    np.testing.assert_allclose(mine["logprob"], theirs["logprob"], rtol=RTOL, atol=0)
    for table in ("samples", "scores"):
        mine, theirs = ours[table], reference[table]
        keys = [c for c in mine.columns if c not in ("value", "stderr")]
        pd.testing.assert_frame_equal(mine[keys], theirs[keys])
        np.testing.assert_allclose(mine["value"], theirs["value"], rtol=RTOL, atol=0)
    pd.testing.assert_frame_equal(ours["runs"], reference["runs"])
    assert set(ours["runs"]["status"]) == {"done"}


def test_a_shard_worker_writes_the_task_doc_ids_and_reuses_what_is_known(prepared, local_db, tmp_path):
    """compute_shard in this process (what a Ray task runs): lm-eval numbers a shard's documents 0..m-1, the
    shard files must carry the task's own doc ids; a finished shard, or one whose rows are known, computes nothing."""
    from harness.executors.shards import done_counts
    from harness.executors.worker import compute_shard
    from harness.weights.models import materialize
    from harness.evaluation.runner import run_id_for

    root, ref, tasks = prepared
    task, model = tasks[MC_TASK], materialize(ref, root / "local" / "models")
    run_id = run_id_for(model, task, SETTINGS)
    shard = split_docs(SETTINGS.limit, 2)[1]  # docs 1, 3, 5, 7, 9
    empty = _tables(local_db)["requests"].iloc[:0]
    counts = compute_shard(model, task.build_config, SETTINGS, run_id, shard, str(tmp_path / "a"), empty)
    assert counts == {"requests": 20, "cached": 0, "computed": 20} == done_counts(tmp_path / "a")
    written = read_shards(shard_files(tmp_path / "a")).to_pandas().sort_values(["doc_id", "idx"], ignore_index=True)
    reference = _tables(local_db, MC_TASK)["requests"]
    reference = reference[reference["doc_id"].isin(shard.docs)].sort_values(["doc_id", "idx"], ignore_index=True)
    exact = [c for c in REQUEST_SCHEMA.names if c != "logprob"]
    pd.testing.assert_frame_equal(_nulls_as_none(written[exact]), _nulls_as_none(reference[exact]), check_dtype=False)
    np.testing.assert_allclose(written["logprob"], reference["logprob"], rtol=RTOL, atol=0)
    # Done already: nothing recomputed, nothing written.
    again = compute_shard(model, task.build_config, SETTINGS, run_id, shard, str(tmp_path / "a"), empty)
    assert again["computed"] == 0 and len(shard_files(tmp_path / "a")) == 3
    # Every row already in the store (passed in as `known`): nothing computed, no file written.
    known = compute_shard(model, task.build_config, SETTINGS, run_id, shard, str(tmp_path / "b"), reference)
    assert known == {"requests": 20, "cached": 20, "computed": 0} and not shard_files(tmp_path / "b")


@needs_ray
def test_two_ray_workers_store_exactly_the_rows_of_a_local_run(ray_local, prepared, local_db):
    root, ref, tasks = prepared
    outcomes = _ray_run(root, ref, list(tasks.values()), "ray.duckdb", shards=2)
    assert [(o.task, o.status) for o in outcomes] == [(MC_TASK, "done"), (PPL_TASK, "done")]
    reference = _tables(local_db)
    _assert_same_rows(_tables(root / "ray.duckdb"), reference)
    assert sum(o.n_computed for o in outcomes) == reference["runs"]["n_requests"].sum()
    assert not shard_files(root / "ray" / "shards")  # finished runs keep no shards: their rows are in the store
    # A second run finds every run done and starts no Ray task.
    again = _ray_run(root, ref, list(tasks.values()), "ray.duckdb", shards=2)
    assert [o.status for o in again] == ["skipped", "skipped"]


@needs_ray
def test_a_killed_worker_leaves_shards_that_the_rerun_reuses_without_duplicates(ray_local, prepared, local_db,
                                                                                 tiny_model, monkeypatch):
    """The crash runs in this process; the re-run is the CLI (`--executor ray --ray-address`) joining the same
    Ray instance, as a user re-running the command would."""
    from harness.executors.worker import KILL_AFTER_ENV
    from harness.weights.models import materialize
    from harness.evaluation.runner import run_id_for

    root, ref, tasks = prepared
    task = tasks[MC_TASK]
    run_id = run_id_for(materialize(ref, root / "models"), task, SETTINGS)
    # Each shard has 5 questions x 4 choices = 20 requests, 3 chunks of 8. Shard 1's worker dies after its first
    # file; shard 2 finishes.
    monkeypatch.setenv(KILL_AFTER_ENV, "1-of-2:1")
    [crashed] = _ray_run(root, ref, [task], "crash.duckdb", shards=2, retries=0)
    monkeypatch.delenv(KILL_AFTER_ENV)
    assert crashed.status == "failed" and "shard 1-of-2" in crashed.error and "2-of-2" not in crashed.error
    assert "WorkerCrashedError" in crashed.error, crashed.error
    folder = run_folder(root / "ray", run_id)
    assert [len(shard_files(folder / name)) for name in ("1-of-2", "2-of-2")] == [1, 3]  # kept for the re-run
    with Store.open(root / "crash.duckdb") as store:  # what both workers wrote is already in the store
        assert store.count("requests") == read_shards(shard_files(folder)).num_rows == 8 + 20
        assert store.run_status(run_id) == "failed"

    env = os.environ | {"HARNESS_RESULTS": str(root / "ray"), "HARNESS_DB": str(root / "crash.duckdb")}
    address = ray_local.get_runtime_context().gcs_address
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "eval", "--models", str(tiny_model), "--tasks", MC_TASK,
         "--limit", str(SETTINGS.limit), "--batch-size", "8", "--chunk-size", "8", "--display", "plain",
         "--executor", "ray", "--shards", "2", "--ray-address", address],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    # Progress counts finished shards: one line, for shard 1's 20 requests; the finished shard 2 did not run again.
    assert [line for line in done.stderr.splitlines() if "requests" in line] == [f"tiny · {MC_TASK}: 20/20 requests"]
    reference = _tables(local_db, MC_TASK)
    _assert_same_rows(_tables(root / "crash.duckdb"), reference)
    # Shard 1 computed only what its dead worker had not written: 20 - 8 requests.
    with Store.open(root / "crash.duckdb", read_only=True) as store:
        counts = store.query(f"SELECT n_requests, n_cached, n_computed FROM runs WHERE run_id = '{run_id}'")
    assert counts.iloc[0].tolist() == [40, 28, 12]
    assert not run_folder(root / "ray", run_id).exists()


def test_cli_refuses_ray_options_without_ray_executor(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from harness.cli import app

    monkeypatch.setenv("HARNESS_RESULTS", str(tmp_path))
    monkeypatch.setenv("HARNESS_DB", str(tmp_path / "h.duckdb"))
    for args, message in ((["--shards", "2"], "--shards: only with --executor ray"),
                          (["--executor", "dask"], "--executor 'dask': choose one of local, ray"),
                          (["--ray-address", "10.0.0.1:6379"], "--ray-address: only with --executor ray")):
        result = CliRunner().invoke(app, ["eval", "--tasks", MC_TASK, *args])
        assert result.exit_code != 0 and message in result.output, result.output
    assert not (tmp_path / "h.duckdb").exists()
